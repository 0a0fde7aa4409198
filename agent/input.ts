// Checking what users type: addresses, MTUs, peers, container references. Every failure is a
// UserError, which the API turns into a one-line message and a 4xx status.
import { ipv4ToString, macFromIp, macToString, parseIpv4, parseMac } from '../router/wire/addr.js';
import { UserError, type PeerRequest } from './requests.js';
import type { StaticPeerRecord } from './state.js';

/** An address the user typed, as a u32 (strict: see router/wire/addr.ts). */
export function parseIp(s: string): number {
  try {
    return parseIpv4(s);
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
  const vtep = ipv4ToString(parseIp(req.vtep));
  let mac: string | undefined;
  const ip = req.ip !== undefined ? ipv4ToString(parseIp(req.ip)) : undefined;
  if (req.mac !== undefined) {
    try {
      mac = macToString(parseMac(req.mac)); // canonical: lowercase, ':'
    } catch {
      throw new UserError(`invalid MAC address: ${req.mac}`);
    }
  } else if (ip !== undefined) {
    mac = macFromIp(parseIpv4(ip)); // tapmesh and Docker hosts derive MACs from IPs
  }
  return { vtep, ...(mac ? { mac } : {}), ...(ip ? { ip } : {}) };
}

export function containerName(spec: string): string {
  if (/^\d+$/.test(spec)) return `pid-${spec}`;
  const base = spec.split('/').filter(Boolean).pop() ?? spec;
  return base;
}
