// IPv4 and MAC addresses as text and as numbers: the one module for both, at the bottom of the
// import graph (it imports only error.ts), so the agent, the gossip layer, the datapath and the
// bench all read and write addresses the same way.
//
// Numbers: an IPv4 address is a host-order u32 (0..2^32-1); the hash tables key it as the
// signed int32 view of the same bits (ipv4I32 / ipv4U32). A MAC is a 48-bit integer (exact in a
// double); the tables key it as hi16 (first 2 bytes) and lo32 (last 4 bytes, signed int32).
//
// Text is strict, as Go's net.ParseIP has been since Go 1.17 (and so Docker): a leading zero
// ("010") is refused rather than read as octal or decimal, and so are out-of-range octets, empty
// parts, signs, whitespace and non-ASCII digits. Bad text throws WireParseError(BadAddress).
import { WireError, WireParseError } from './error.js';

// ---- IPv4 ----

const IPV4_RE = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

/** Strict dotted quad to a host-order u32; throws WireParseError(BadAddress). */
export function parseIpv4(s: string): number {
  const m = typeof s === 'string' ? IPV4_RE.exec(s) : null;
  if (!m) throw new WireParseError(WireError.BadAddress, 'IPv4 address');
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) throw new WireParseError(WireError.BadAddress, 'IPv4 address');
    v = v * 256 + o;
  }
  return v;
}

/** True when parseIpv4 would accept s. */
export function isIpv4(s: string): boolean {
  try {
    parseIpv4(s);
    return true;
  } catch {
    return false;
  }
}

/** Dotted quad of an address given as u32 or as its int32 view. */
export function ipv4ToString(ip: number): string {
  return `${ip >>> 24}.${(ip >>> 16) & 255}.${(ip >>> 8) & 255}.${ip & 255}`;
}

/** The signed int32 view of an address (what NumTable keys and Int32Array cells hold). */
export function ipv4I32(ip: number): number {
  return ip | 0;
}

/** The u32 of an address given as its int32 view. */
export function ipv4U32(ip: number): number {
  return ip >>> 0;
}

// ---- MAC ----

const HEX = '0123456789abcdef';
const MAC_RE = /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i;
const TWO32 = 0x1_0000_0000;

/** Six 2-digit hex octets separated by ':' or '-' (the same throughout) to a 48-bit number. */
export function parseMac(s: string): number {
  const m = typeof s === 'string' ? MAC_RE.exec(s) : null;
  if (!m) throw new WireParseError(WireError.BadAddress, 'MAC address');
  let v = 0;
  for (const i of [1, 3, 4, 5, 6, 7]) v = v * 256 + parseInt(m[i], 16);
  return v;
}

/** "aa:bb:cc:dd:ee:ff" (lowercase) for a 48-bit MAC number. */
export function macToString(mac: number): string {
  let s = '';
  for (let shift = 40; shift >= 0; shift -= 8) {
    const b = Math.floor(mac / 2 ** shift) % 256;
    s += (shift === 40 ? '' : ':') + HEX[b >> 4] + HEX[b & 15];
  }
  return s;
}

/** First 2 bytes of a 48-bit MAC (0..0xffff). */
export function macHi16(mac: number): number {
  return Math.floor(mac / TWO32);
}

/** Last 4 bytes of a 48-bit MAC as a signed int32. */
export function macLo32(mac: number): number {
  return mac % TWO32 | 0;
}

/** The 48-bit MAC of (hi16, lo32); lo32 may be given signed or unsigned. */
export function macFromHiLo(hi: number, lo: number): number {
  return (hi & 0xffff) * TWO32 + (lo >>> 0);
}

/** MAC text to its table key [hi16, lo32 (int32)]; throws WireParseError(BadAddress). */
export function macParts(s: string): [number, number] {
  const mac = parseMac(s);
  return [macHi16(mac), macLo32(mac)];
}

/** MAC text of a table key (hi16, lo32). */
export function macFromParts(hi: number, lo: number): string {
  return macToString(macFromHiLo(hi, lo));
}

/** Docker's container MAC for an IPv4 address: 02:42 followed by the four address bytes. */
export function macFromIp(ip: number): string {
  return macToString(0x0242 * TWO32 + (ip >>> 0));
}
