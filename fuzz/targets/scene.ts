// The datapath the VXLAN and TAP targets drive: one host (VTEP A) with two networks, a plain TAP
// (VNI 4096) and a virtio-header TAP (VNI 4097, offloads on), a local endpoint on each, a remote
// endpoint behind tapmesh peer B and a static (kernel VXLAN) VTEP S with a known MAC, so that
// every branch of the receive and send paths has valid samples to start from.
import { C, D, DROP_NAMES } from '../../router/counters.js';
import { Datapath, type Network } from '../../router/datapath.js';
import { macParts } from '../../router/wire/addr.js';
import { arpFrame, ip, ipv4Frame, vxlan } from '../../router/testframes.js';
import { FuzzTap, FuzzUdp, type Generate } from '../ports.js';

export const VNI = 4096;
export const VNI_VNET = 4097;
export const A = ip('192.0.2.1');
export const B = ip('192.0.2.2');
export const S = ip('192.0.2.9');
export const STRANGER = ip('198.51.100.7');
export const MAC_A = '02:42:0a:00:09:02';
export const MAC_B = '02:42:0a:00:09:03';
export const MAC_S = '66:77:88:99:aa:bb';
export const IP_A = ip('10.0.9.2');
export const IP_B = ip('10.0.9.3');
export const IP_S = ip('10.0.9.50');
/** Learned-MAC cap per network, below the default so that a run reaches it (and ageing frees room). */
export const LEARN_CAP = 1024;

export interface Scene {
  dp: Datapath;
  rx: FuzzUdp;
  tx: FuzzUdp;
  plain: { net: Network; tap: FuzzTap };
  vnet: { net: Network; tap: FuzzTap };
}

export function scene(udpGen: Generate, tapGen: Generate, gro = false): Scene {
  const rx = new FuzzUdp(4789, udpGen, gro);
  const tx = new FuzzUdp(40000, () => 0);
  const dp = new Datapath(rx, [tx], { vxlanPort: 4789, batch: 64, learning: { maxLearned: LEARN_CAP } });
  const mk = (vni: number, vnet: boolean) => {
    const tap = new FuzzTap(vnet, tapGen);
    const net = dp.addNetwork(vni, 1450, tap);
    dp.setLocal(vni, ...macParts(MAC_A), IP_A);
    dp.setRemote(vni, ...macParts(MAC_B), IP_B, B, false);
    dp.addStaticVtep(vni, S);
    dp.setRemote(vni, ...macParts(MAC_S), IP_S, S, true);
    return { net, tap };
  };
  return { dp, rx, tx, plain: mk(VNI, false), vnet: mk(VNI_VNET, true) };
}

/** Valid inner frames between the scene's endpoints (both directions, IPv4 UDP/TCP, ARP). */
export function innerFrames(toLocal: boolean): Buffer[] {
  const [dst, src, dip, sip] = toLocal ? [MAC_A, MAC_B, IP_A, IP_B] : [MAC_B, MAC_A, IP_B, IP_A];
  return [
    ipv4Frame(dst, src, sip, dip, 17, 1234, 53, 40),
    ipv4Frame(dst, src, sip, dip, 6, 40000, 80, 200),
    ipv4Frame(dst, src, sip, dip, 17, 5000, 5001, 1000),
    arpFrame(1, src, sip, '00:00:00:00:00:00', dip),
    arpFrame(2, src, sip, dst, dip),
    toLocal ? ipv4Frame(MAC_A, MAC_S, IP_S, IP_A, 17, 9, 9, 64) : arpFrame(1, MAC_A, IP_A, '00:00:00:00:00:00', IP_S),
  ];
}

/** VXLAN datagrams a peer would send to A (on both VNIs). */
export function vxlanSamples(): Buffer[] {
  return [VNI, VNI_VNET].flatMap((v) => innerFrames(true).map((f) => vxlan(v, f)));
}

export function sum(values: Float64Array, names: readonly (keyof typeof D)[]): number {
  let s = 0;
  for (const n of names) s += values[D[n]];
  return s;
}

export function counter(net: Network, name: keyof typeof C): number {
  return net.counters[C[name]];
}

export { D, DROP_NAMES };
