// IPv4 (RFC 791). Addresses are unsigned 32-bit numbers in host order (10.0.0.1 = 0x0a000001).
// checkIpv4 validates version, IHL, total length and the header checksum; options are not
// interpreted, only delimited by IHL. Trailing bytes past the total length (Ethernet padding)
// are allowed and excluded from the payload.
import { checksum, checksumUpdate16, onesSum } from './checksum.js';
import { rd16, rd32, rd32s, wr16, wr32 } from './bytes.js';
import { WireError, WireParseError, assertRoom, assertUint, inBounds } from './error.js';

export const IPV4_MIN_HEADER_LEN = 20;
export const IPV4_MAX_HEADER_LEN = 60;

export const IpProto = {
  Icmp: 1,
  Tcp: 6,
  Udp: 17,
  Icmpv6: 58,
  Sctp: 132,
} as const;

export interface Ipv4Repr {
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  /** The whole second byte: DSCP << 2 | ECN. */
  tos: number;
  ident: number;
  dontFrag: boolean;
  moreFrags: boolean;
  /** Fragment offset in bytes (the field times 8): a multiple of 8, at most 65528. */
  fragOffset: number;
  /** Bytes of options after the fixed header: a multiple of 4, at most 40. */
  optionsLen: number;
  payloadLen: number;
}

export interface Ipv4Parsed extends Ipv4Repr {
  optionsOff: number;
  payloadOff: number;
}

// ---- hot-path views (call checkIpv4 first) ----

export function ipv4Version(buf: Uint8Array, off: number): number {
  return buf[off] >> 4;
}
/** Header length in bytes (IHL * 4). */
export function ipv4HeaderLenAt(buf: Uint8Array, off: number): number {
  return (buf[off] & 0x0f) << 2;
}
export function ipv4Tos(buf: Uint8Array, off: number): number {
  return buf[off + 1];
}
export function ipv4TotalLen(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 2);
}
export function ipv4Ident(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 4);
}
export function ipv4DontFrag(buf: Uint8Array, off: number): boolean {
  return (buf[off + 6] & 0x40) !== 0;
}
export function ipv4MoreFrags(buf: Uint8Array, off: number): boolean {
  return (buf[off + 6] & 0x20) !== 0;
}
/** Fragment offset in bytes. */
export function ipv4FragOffset(buf: Uint8Array, off: number): number {
  return (rd16(buf, off + 6) & 0x1fff) << 3;
}
/** True for any fragment (MF set or nonzero offset): L4 ports may be absent. */
export function ipv4IsFragment(buf: Uint8Array, off: number): boolean {
  return (rd16(buf, off + 6) & 0x3fff) !== 0;
}
export function ipv4Ttl(buf: Uint8Array, off: number): number {
  return buf[off + 8];
}
export function ipv4Proto(buf: Uint8Array, off: number): number {
  return buf[off + 9];
}
export function ipv4Checksum(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 10);
}
export function ipv4Src(buf: Uint8Array, off: number): number {
  return rd32(buf, off + 12);
}
export function ipv4Dst(buf: Uint8Array, off: number): number {
  return rd32(buf, off + 16);
}
/** Source as a signed int32 (the table key form). */
export function ipv4SrcKey(buf: Uint8Array, off: number): number {
  return rd32s(buf, off + 12);
}
export function ipv4DstKey(buf: Uint8Array, off: number): number {
  return rd32s(buf, off + 16);
}
/** Absolute offset of the payload (after options). */
export function ipv4PayloadOff(buf: Uint8Array, off: number): number {
  return off + ((buf[off] & 0x0f) << 2);
}
/** Payload length from the total-length field. */
export function ipv4PayloadLen(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 2) - ((buf[off] & 0x0f) << 2);
}
/** Setters do not touch the checksum: follow with ipv4FillChecksum (or patch incrementally). */
export function setIpv4Src(buf: Uint8Array, off: number, ip: number): void {
  wr32(buf, off + 12, ip);
}
export function setIpv4Dst(buf: Uint8Array, off: number, ip: number): void {
  wr32(buf, off + 16, ip);
}
export function setIpv4TotalLen(buf: Uint8Array, off: number, len: number): void {
  wr16(buf, off + 2, len);
}
export function setIpv4Ident(buf: Uint8Array, off: number, id: number): void {
  wr16(buf, off + 4, id);
}
/** Recomputes and stores the header checksum over IHL*4 bytes. */
export function ipv4FillChecksum(buf: Uint8Array, off: number): void {
  wr16(buf, off + 10, 0);
  wr16(buf, off + 10, checksum(buf, off, (buf[off] & 0x0f) << 2));
}
/**
 * Router TTL step: if TTL <= 1 returns 0 and changes nothing (caller drops / sends Time
 * Exceeded); otherwise decrements TTL, patches the checksum incrementally and returns the new TTL.
 */
export function ipv4DecTtl(buf: Uint8Array, off: number): number {
  const ttl = buf[off + 8];
  if (ttl <= 1) return 0;
  const oldWord = (ttl << 8) | buf[off + 9];
  buf[off + 8] = ttl - 1;
  wr16(buf, off + 10, checksumUpdate16(rd16(buf, off + 10), oldWord, oldWord - 0x100));
  return ttl - 1;
}

/** 0 when buf[off, off+len) holds a valid IPv4 header and its whole total length. */
export function checkIpv4(buf: Uint8Array, off: number, len: number): number {
  if (!inBounds(buf, off, len)) return WireError.BadBounds;
  if (len < IPV4_MIN_HEADER_LEN) return WireError.Truncated;
  const b0 = buf[off];
  if (b0 >> 4 !== 4) return WireError.BadVersion;
  const hl = (b0 & 0x0f) << 2;
  if (hl < IPV4_MIN_HEADER_LEN) return WireError.BadHeaderLen;
  if (hl > len) return WireError.Truncated;
  const total = rd16(buf, off + 2);
  if (total < hl) return WireError.BadLength;
  if (total > len) return WireError.Truncated;
  if (onesSum(buf, off, hl) !== 0xffff) return WireError.BadChecksum;
  return 0;
}

// ---- checked representation ----

export function ipv4HeaderLen(repr: Ipv4Repr): number {
  return IPV4_MIN_HEADER_LEN + repr.optionsLen;
}

export function parseIpv4Packet(buf: Uint8Array, off: number, len: number): Ipv4Parsed {
  const err = checkIpv4(buf, off, len);
  if (err) throw new WireParseError(err, 'ipv4');
  const hl = ipv4HeaderLenAt(buf, off);
  return {
    src: ipv4Src(buf, off),
    dst: ipv4Dst(buf, off),
    protocol: ipv4Proto(buf, off),
    ttl: ipv4Ttl(buf, off),
    tos: ipv4Tos(buf, off),
    ident: ipv4Ident(buf, off),
    dontFrag: ipv4DontFrag(buf, off),
    moreFrags: ipv4MoreFrags(buf, off),
    fragOffset: ipv4FragOffset(buf, off),
    optionsLen: hl - IPV4_MIN_HEADER_LEN,
    payloadLen: ipv4TotalLen(buf, off) - hl,
    optionsOff: off + IPV4_MIN_HEADER_LEN,
    payloadOff: off + hl,
  };
}

/**
 * Writes the header (20 + optionsLen bytes) with a correct checksum; returns its length.
 * Options are copied from `options` (length must equal optionsLen) or zero-filled (End of
 * Option List). The payload is not touched. Throws RangeError on bad repr or insufficient room.
 */
export function emitIpv4(repr: Ipv4Repr, buf: Uint8Array, off: number, options?: Uint8Array): number {
  const ol = repr.optionsLen;
  if (!(Number.isInteger(ol) && ol >= 0 && ol <= 40 && (ol & 3) === 0)) {
    throw new RangeError(`IPv4 optionsLen must be a multiple of 4 in 0..40: ${ol}`);
  }
  if (options && options.length !== ol) throw new RangeError('IPv4 options length != optionsLen');
  const hl = IPV4_MIN_HEADER_LEN + ol;
  assertRoom(buf, off, hl, 'ipv4');
  assertUint(repr.payloadLen, 0xffff - hl, 'IPv4 payloadLen');
  assertUint(repr.src, 0xffffffff, 'IPv4 src');
  assertUint(repr.dst, 0xffffffff, 'IPv4 dst');
  assertUint(repr.protocol, 0xff, 'IPv4 protocol');
  assertUint(repr.ttl, 0xff, 'IPv4 ttl');
  assertUint(repr.tos, 0xff, 'IPv4 tos');
  assertUint(repr.ident, 0xffff, 'IPv4 ident');
  assertUint(repr.fragOffset, 0xfff8, 'IPv4 fragOffset');
  if (repr.fragOffset & 7) throw new RangeError(`IPv4 fragOffset not a multiple of 8: ${repr.fragOffset}`);
  buf[off] = 0x40 | (hl >> 2);
  buf[off + 1] = repr.tos;
  wr16(buf, off + 2, hl + repr.payloadLen);
  wr16(buf, off + 4, repr.ident);
  wr16(buf, off + 6, (repr.dontFrag ? 0x4000 : 0) | (repr.moreFrags ? 0x2000 : 0) | (repr.fragOffset >> 3));
  buf[off + 8] = repr.ttl;
  buf[off + 9] = repr.protocol;
  wr16(buf, off + 10, 0);
  wr32(buf, off + 12, repr.src);
  wr32(buf, off + 16, repr.dst);
  if (options) buf.set(options, off + IPV4_MIN_HEADER_LEN);
  else buf.fill(0, off + IPV4_MIN_HEADER_LEN, off + hl);
  wr16(buf, off + 10, checksum(buf, off, hl));
  return hl;
}
