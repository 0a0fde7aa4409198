// Where the routing mesh's connections start in a network's sandbox (docs/services.md "Where
// the mesh's connections come from"): br0 holds the network's gateway address, which IPAM
// reserved anyway, so no overlay address is spent per host (moby#43052), under the network's
// mesh MAC; each host takes its ephemeral ports from its own slice so two hosts' connections to
// one task never share a 4-tuple.
import { meshMacOf, vipMacOf } from '../balancer/vips.js';
import { macToString, parseIpv4 } from '../router/wire/addr.js';
import { parseCidr } from './ipam.js';
import type { NetworkRecord } from './state.js';

/** Ephemeral port slices; a host takes slice (data-path address mod this). */
export const MESH_PORT_SLICES = 8;
const EPHEMERAL_LO = 32768;
const EPHEMERAL_END = 61000;

export interface MeshSource {
  gateway: string;
  prefixLen: number;
  /** br0's MAC (06:7f:VNI). */
  mac: string;
  /** The VIP MAC (06:7e:VNI), pinned to tap0. */
  vipMac: string;
  /** ip_local_port_range of the sandbox. */
  ports: [number, number];
}

export function meshSourceOf(net: NetworkRecord, dataPathAddr: string): MeshSource {
  const slice = (parseIpv4(dataPathAddr) & (MESH_PORT_SLICES - 1)) >>> 0;
  const span = Math.floor((EPHEMERAL_END - EPHEMERAL_LO) / MESH_PORT_SLICES);
  const lo = EPHEMERAL_LO + slice * span;
  return {
    gateway: net.gateway, prefixLen: parseCidr(net.subnet).prefixLen, mac: macToString(meshMacOf(net.vni)),
    vipMac: macToString(vipMacOf(net.vni)), ports: [lo, lo + span - 1],
  };
}
