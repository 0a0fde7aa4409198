// `network inspect` output in Docker's shape.
import { createHash } from 'node:crypto';
import { parseCidr } from './ipam.js';
import type { NetworkRecord } from './state.js';

/** Docker-shaped `network inspect` object of a network as this host sees it. */
export function dockerInspect(net: NetworkRecord, gatewayAddress: (container: string) => string | undefined = () => undefined): Record<string, unknown> {
  const prefixLen = parseCidr(net.subnet).prefixLen;
  const containers: Record<string, unknown> = {};
  for (const ep of net.endpoints) {
    containers[createHash('sha256').update(ep.container).digest('hex')] = {
      Name: ep.name, EndpointID: ep.id, MacAddress: ep.mac, IPv4Address: `${ep.ip}/${prefixLen}`, IPv6Address: '',
      Interface: ep.ifname, Aliases: ep.aliases, GatewayBridgeIPv4Address: gatewayAddress(ep.container) ?? '',
    };
  }
  const ipamCfg: Record<string, string> = { Subnet: net.subnet, Gateway: net.gateway };
  if (net.ipRange) ipamCfg.IPRange = net.ipRange;
  return {
    Name: net.name, Id: net.id, Created: net.created, Scope: 'swarm', Driver: 'overlay', EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: [ipamCfg] },
    Internal: net.internal ?? false, Attachable: net.attachable, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false,
    Containers: containers, Options: net.options, Labels: net.labels,
    StaticPeers: net.peers.map((p) => ({ VTEP: p.vtep, MacAddress: p.mac ?? '', IPv4Address: p.ip ?? '' })),
  };
}
