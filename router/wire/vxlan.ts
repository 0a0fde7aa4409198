// VXLAN (RFC 7348) header, 8 bytes:
//   byte 0: flags, exactly 0x08 (I flag); bytes 1..3: reserved, zero;
//   bytes 4..6: 24-bit VNI; byte 7: reserved, zero.
// Like the Linux driver (without GBP/GPE extensions), a header is accepted only when the flags
// byte is exactly 0x08 and every reserved bit is zero. The payload is an Ethernet frame.
import { WireError, WireParseError, assertRoom, assertUint, inBounds } from './error.js';

export const VXLAN_HEADER_LEN = 8;
/** IANA-assigned UDP destination port. */
export const VXLAN_PORT = 4789;
export const VXLAN_FLAG_I = 0x08;
export const VXLAN_MAX_VNI = 0xffffff;

export interface VxlanRepr {
  vni: number;
}

export interface VxlanParsed extends VxlanRepr {
  payloadOff: number;
  payloadLen: number;
}

// ---- hot-path views ----

export function vxlanFlags(buf: Uint8Array, off: number): number {
  return buf[off];
}
export function vxlanVni(buf: Uint8Array, off: number): number {
  return (buf[off + 4] << 16) | (buf[off + 5] << 8) | buf[off + 6];
}
/**
 * Writes a complete header for `vni` (caller guarantees 0..0xffffff; higher bits are dropped).
 * No bounds check, no allocation; returns 8.
 */
export function writeVxlanHeader(buf: Uint8Array, off: number, vni: number): number {
  buf[off] = VXLAN_FLAG_I;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = vni >>> 16;
  buf[off + 5] = vni >>> 8;
  buf[off + 6] = vni;
  buf[off + 7] = 0;
  return VXLAN_HEADER_LEN;
}

/** Flags exactly 0x08 and every reserved bit zero (the hot-path form of checkVxlan: length checked by the caller). */
export function vxlanHeaderOk(buf: Uint8Array, off: number): boolean {
  return buf[off] === VXLAN_FLAG_I && (buf[off + 1] | buf[off + 2] | buf[off + 3] | buf[off + 7]) === 0;
}

/** 0 for a valid header; Truncated, BadFlags (flags != 0x08) or BadReserved. */
export function checkVxlan(buf: Uint8Array, off: number, len: number): number {
  if (!inBounds(buf, off, len)) return WireError.BadBounds;
  if (len < VXLAN_HEADER_LEN) return WireError.Truncated;
  if (buf[off] !== VXLAN_FLAG_I) return WireError.BadFlags;
  if ((buf[off + 1] | buf[off + 2] | buf[off + 3] | buf[off + 7]) !== 0) return WireError.BadReserved;
  return 0;
}

// ---- checked representation ----

export function vxlanHeaderLen(_repr?: VxlanRepr): number {
  return VXLAN_HEADER_LEN;
}

export function parseVxlan(buf: Uint8Array, off: number, len: number): VxlanParsed {
  const err = checkVxlan(buf, off, len);
  if (err) throw new WireParseError(err, 'vxlan');
  return { vni: vxlanVni(buf, off), payloadOff: off + VXLAN_HEADER_LEN, payloadLen: len - VXLAN_HEADER_LEN };
}

/** Writes the header; returns 8. Throws RangeError when vni is not 0..0xffffff or there is no room. */
export function emitVxlan(repr: VxlanRepr, buf: Uint8Array, off: number): number {
  assertUint(repr.vni, VXLAN_MAX_VNI, 'VXLAN VNI');
  assertRoom(buf, off, VXLAN_HEADER_LEN, 'vxlan');
  return writeVxlanHeader(buf, off, repr.vni);
}
