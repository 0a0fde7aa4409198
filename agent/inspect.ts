// `network inspect` output in Docker's shape.
import { createHash } from 'node:crypto';
import { parseCidr } from './ipam.js';
import type { NetworkRecord } from './state.js';

/** Docker-shaped `network inspect` object of a network as this host sees it. */
export function dockerInspect(net: NetworkRecord): Record<string, unknown> {
  const prefixLen = parseCidr(net.subnet).prefixLen;
  const containers: Record<string, unknown> = {};
  for (const ep of net.endpoints) {
    containers[createHash('sha256').update(ep.container).digest('hex')] = {
      Name: ep.name, EndpointID: ep.id, MacAddress: ep.mac, IPv4Address: `${ep.ip}/${prefixLen}`, IPv6Address: '',
      Interface: ep.ifname, Aliases: ep.aliases,
    };
  }
  const ipamCfg: Record<string, string> = { Subnet: net.subnet, Gateway: net.gateway };
  if (net.ipRange) ipamCfg.IPRange = net.ipRange;
  return {
    Name: net.name, Id: net.id, Created: net.created, Scope: 'swarm', Driver: 'overlay', EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: [ipamCfg] },
    Internal: false, Attachable: net.attachable, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false,
    Containers: containers, Options: net.options, Labels: net.labels,
    StaticPeers: net.peers.map((p) => ({ VTEP: p.vtep, MacAddress: p.mac ?? '', IPv4Address: p.ip ?? '' })),
  };
}

/** `network inspect --verbose`: adds the hosts on the network, every endpoint cluster-wide (`names`: node id -> name), and this host's forwarding table. */
export function verboseInspect(
  net: NetworkRecord, eps: { id: string; name: string; mac: string; ip: string; host: string; vtep: string }[],
  names: Map<string, string>, forwarding: { mac: string; vtep: string; static: boolean }[],
): Record<string, unknown> {
  const prefixLen = parseCidr(net.subnet).prefixLen;
  const hosts = new Map<string, { Name: string; IP: string }>();
  for (const e of eps) hosts.set(e.host, { Name: names.get(e.host) ?? e.host, IP: e.vtep });
  return {
    ...dockerInspect(net),
    Peers: [...hosts.values()],
    Endpoints: eps.map((e) => ({ Name: e.name, EndpointID: e.id, MacAddress: e.mac, IPv4Address: `${e.ip}/${prefixLen}`, Host: e.host, HostName: names.get(e.host) ?? '' })),
    Forwarding: forwarding.map((f) => ({ MacAddress: f.mac, VTEP: f.vtep, Static: f.static })),
  };
}
