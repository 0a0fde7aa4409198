// Checking what users type: addresses, MTUs, peers, container references. Every failure is a
// UserError, which the API turns into a one-line message and a 4xx status.
import { ipv4ToString, macFromIp, macToString, parseIpv4, parseMac } from '../router/wire/addr.js';
import { espEncryptedMtu } from '../router/wire/esp.js';
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

/** Docker's option name; `--opt encrypted` (value "") or `encrypted=true`. */
export const OPT_ENCRYPTED = 'encrypted';

/**
 * Whether the options ask for encryption; normalizes the option to "" as Docker shows it. Any
 * other value is refused rather than guessed (an "encrypted=false" network must not be quietly
 * encrypted, nor quietly left in cleartext).
 */
export function encryptedOption(options: Record<string, string>): boolean {
  if (!(OPT_ENCRYPTED in options)) return false;
  const v = options[OPT_ENCRYPTED].trim().toLowerCase();
  if (v !== '' && v !== 'true') throw new UserError(`invalid --opt encrypted="${options[OPT_ENCRYPTED]}": use --opt encrypted (or encrypted=true), or leave it out`);
  options[OPT_ENCRYPTED] = '';
  return true;
}

/**
 * Container MTU from the options: com.docker.network.mtu if given; else the driver MTU (or 1500)
 * minus VXLAN's 50 bytes and, when encrypted, minus ESP-in-UDP's exact overhead rounded down to 4
 * (1408 by default).
 */
export function networkMtu(options: Record<string, string>, encrypted: boolean, keys: { mtu: string; driverMtu: string }): number {
  let plain = 1500 - VXLAN_OVERHEAD;
  if (options[keys.driverMtu] !== undefined) plain = parseMtu(options[keys.driverMtu], keys.driverMtu) - VXLAN_OVERHEAD;
  let mtu = encrypted ? espEncryptedMtu(plain) : plain;
  if (options[keys.mtu] !== undefined) mtu = parseMtu(options[keys.mtu], keys.mtu);
  if (mtu < 576 || mtu > 9000) throw new UserError(`MTU ${mtu} out of range (576-9000)`);
  return mtu;
}

/** Outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;
