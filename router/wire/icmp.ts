// ICMPv4 (RFC 792): 8-byte header (type, code, checksum, 4 bytes "rest of header") followed by
// a payload; the checksum covers the whole message, i.e. all `len` bytes (the IP payload).
// The rest-of-header word is exposed as two 16-bit halves, `ident` and `seq`: identifier and
// sequence number for echo; for Destination Unreachable / Fragmentation Needed (3/4) `seq` is
// the next-hop MTU (RFC 1191). Types are not restricted; the checksum is always verified.
import { checksum, checksumUpdate16, onesSum } from './checksum.js';
import { rd16, wr16 } from './bytes.js';
import { WireError, WireParseError, assertRoom, assertUint, inBounds } from './error.js';

export const ICMP_HEADER_LEN = 8;

export const IcmpType = {
  EchoReply: 0,
  DestUnreachable: 3,
  EchoRequest: 8,
  TimeExceeded: 11,
} as const;

export interface IcmpRepr {
  type: number;
  code: number;
  /** High 16 bits of the rest-of-header word (echo identifier). */
  ident: number;
  /** Low 16 bits of the rest-of-header word (echo sequence number; next-hop MTU for 3/4). */
  seq: number;
  payloadLen: number;
}

export interface IcmpParsed extends IcmpRepr {
  payloadOff: number;
}

// ---- hot-path views (call checkIcmp first) ----

export function icmpType(buf: Uint8Array, off: number): number {
  return buf[off];
}
export function icmpCode(buf: Uint8Array, off: number): number {
  return buf[off + 1];
}
export function icmpChecksum(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 2);
}
export function icmpEchoIdent(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 4);
}
export function icmpEchoSeq(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 6);
}
/** True for type 8 code 0. */
export function icmpIsEchoRequest(buf: Uint8Array, off: number): boolean {
  return buf[off] === IcmpType.EchoRequest && buf[off + 1] === 0;
}
/**
 * Turns a (checked) echo request into an echo reply in place: type 8 -> 0 with an incremental
 * checksum update (RFC 1624). Ident, seq and payload are kept, as RFC 792 requires. The IPv4
 * header only needs its addresses swapped, which leaves its checksum unchanged.
 */
export function icmpEchoToReply(buf: Uint8Array, off: number): void {
  const oldWord = rd16(buf, off);
  const newWord = oldWord & 0x00ff; // type 0, same code
  buf[off] = IcmpType.EchoReply;
  wr16(buf, off + 2, checksumUpdate16(rd16(buf, off + 2), oldWord, newWord));
}
/** Recomputes and stores the checksum over buf[off, off+len). */
export function icmpFillChecksum(buf: Uint8Array, off: number, len: number): void {
  wr16(buf, off + 2, 0);
  wr16(buf, off + 2, checksum(buf, off, len));
}

/** 0 when len >= 8 and the checksum over all len bytes is correct. */
export function checkIcmp(buf: Uint8Array, off: number, len: number): number {
  if (!inBounds(buf, off, len)) return WireError.BadBounds;
  if (len < ICMP_HEADER_LEN) return WireError.Truncated;
  if (onesSum(buf, off, len) !== 0xffff) return WireError.BadChecksum;
  return 0;
}

// ---- checked representation ----

export function icmpHeaderLen(_repr?: IcmpRepr): number {
  return ICMP_HEADER_LEN;
}

export function parseIcmp(buf: Uint8Array, off: number, len: number): IcmpParsed {
  const err = checkIcmp(buf, off, len);
  if (err) throw new WireParseError(err, 'icmp');
  return {
    type: icmpType(buf, off),
    code: icmpCode(buf, off),
    ident: icmpEchoIdent(buf, off),
    seq: icmpEchoSeq(buf, off),
    payloadLen: len - ICMP_HEADER_LEN,
    payloadOff: off + ICMP_HEADER_LEN,
  };
}

/**
 * Writes the header and the checksum over it and the payloadLen bytes already at off+8;
 * returns 8. Throws RangeError on bad repr or insufficient room.
 */
export function emitIcmp(repr: IcmpRepr, buf: Uint8Array, off: number): number {
  assertUint(repr.type, 0xff, 'ICMP type');
  assertUint(repr.code, 0xff, 'ICMP code');
  assertUint(repr.ident, 0xffff, 'ICMP ident');
  assertUint(repr.seq, 0xffff, 'ICMP seq');
  assertUint(repr.payloadLen, 0xffff, 'ICMP payloadLen');
  assertRoom(buf, off, ICMP_HEADER_LEN + repr.payloadLen, 'icmp');
  buf[off] = repr.type;
  buf[off + 1] = repr.code;
  wr16(buf, off + 4, repr.ident);
  wr16(buf, off + 6, repr.seq);
  icmpFillChecksum(buf, off, ICMP_HEADER_LEN + repr.payloadLen);
  return ICMP_HEADER_LEN;
}
