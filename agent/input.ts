// Checking what users type: addresses, MTUs, peers, container references. Every failure is a
// UserError, which the API turns into a one-line message and a 4xx status.
import { ipv4ToNum, numToIpv4 } from '../native/index.js';
import { macParts } from '../router/numtable.js';
import { UserError, type PeerRequest } from './requests.js';
import type { StaticPeerRecord } from './state.js';

/** Docker's MAC scheme: 02:42 followed by the IPv4 address bytes. */
export function macFromIp(ip: number): string {
  return ['02', '42', ...[24, 16, 8, 0].map((s) => ((ip >>> s) & 255).toString(16).padStart(2, '0'))].join(':');
}

export function parseIp(s: string): number {
  try {
    return ipv4ToNum(s);
  } catch {
    throw new UserError(`invalid IPv4 address: ${s}`);
  }
}

export function parseMtu(v: string, key: string): number {
  if (!/^\d+$/.test(v)) throw new UserError(`invalid ${key} "${v}": expected a number`);
  return Number(v);
}

export function normalizePeer(req: PeerRequest): StaticPeerRecord {
  if (!req.vtep) throw new UserError('--vtep is required');
  const vtep = numToIpv4(parseIp(req.vtep));
  let mac = req.mac?.toLowerCase();
  const ip = req.ip !== undefined ? numToIpv4(parseIp(req.ip)) : undefined;
  if (mac !== undefined) {
    try {
      macParts(mac);
    } catch {
      throw new UserError(`invalid MAC address: ${req.mac}`);
    }
  } else if (ip !== undefined) {
    mac = macFromIp(ipv4ToNum(ip)); // tapmesh and Docker hosts derive MACs from IPs
  }
  return { vtep, ...(mac ? { mac } : {}), ...(ip ? { ip } : {}) };
}

export function containerName(spec: string): string {
  if (/^\d+$/.test(spec)) return `pid-${spec}`;
  const base = spec.split('/').filter(Boolean).pop() ?? spec;
  return base;
}
