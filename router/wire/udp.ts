// UDP (RFC 768) over IPv4. `len` passed to check/parse is the IP payload length; the UDP
// length field must satisfy 8 <= length <= len (bytes beyond it are ignored, as Linux trims).
// A zero checksum field means "no checksum" and is accepted; a computed checksum of 0 is sent
// as 0xffff. Checksums are verified only when the pseudo-header addresses are supplied.
import { checksum, ipv4PseudoSum, onesSum } from './checksum.js';
import { rd16, wr16 } from './bytes.js';
import { WireError, WireParseError, assertRoom, assertUint, inBounds } from './error.js';

export const UDP_HEADER_LEN = 8;
/** Offset of the checksum field in the UDP header. */
export const UDP_CSUM_OFFSET = 6;
const PROTO_UDP = 17;

export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  payloadLen: number;
}

export interface UdpParsed extends UdpRepr {
  payloadOff: number;
  /** False when the checksum field was zero (no checksum). */
  hasChecksum: boolean;
}

// ---- hot-path views (call checkUdp first) ----

export function udpSrcPort(buf: Uint8Array, off: number): number {
  return rd16(buf, off);
}
export function udpDstPort(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 2);
}
/** The length field (header + payload). */
export function udpLength(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 4);
}
export function udpChecksum(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 6);
}
export function udpPayloadLen(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 4) - UDP_HEADER_LEN;
}
export function setUdpSrcPort(buf: Uint8Array, off: number, port: number): void {
  wr16(buf, off, port);
}
export function setUdpDstPort(buf: Uint8Array, off: number, port: number): void {
  wr16(buf, off + 2, port);
}
export function setUdpLength(buf: Uint8Array, off: number, len: number): void {
  wr16(buf, off + 4, len);
}
export function setUdpChecksum(buf: Uint8Array, off: number, c: number): void {
  wr16(buf, off + 6, c);
}

/** Writes an 8-byte header with checksum 0 (none); returns 8. No bounds check. */
export function writeUdpHeader(buf: Uint8Array, off: number, srcPort: number, dstPort: number, payloadLen: number): number {
  wr16(buf, off, srcPort);
  wr16(buf, off + 2, dstPort);
  wr16(buf, off + 4, UDP_HEADER_LEN + payloadLen);
  wr16(buf, off + 6, 0);
  return UDP_HEADER_LEN;
}

/**
 * Computes and stores the checksum over the header and the payload already in place, using the
 * length field; returns the stored value (never 0).
 */
export function udpFillChecksum(buf: Uint8Array, off: number, srcIp: number, dstIp: number): number {
  const ulen = rd16(buf, off + 4);
  wr16(buf, off + 6, 0);
  const c = checksum(buf, off, ulen, ipv4PseudoSum(srcIp, dstIp, PROTO_UDP, ulen)) || 0xffff;
  wr16(buf, off + 6, c);
  return c;
}

/**
 * 0 when the length field is consistent with len. When srcIp and dstIp are both given and the
 * checksum field is nonzero, also verifies the checksum (BadChecksum).
 */
export function checkUdp(buf: Uint8Array, off: number, len: number, srcIp?: number, dstIp?: number): number {
  if (!inBounds(buf, off, len)) return WireError.BadBounds;
  if (len < UDP_HEADER_LEN) return WireError.Truncated;
  const ulen = rd16(buf, off + 4);
  if (ulen < UDP_HEADER_LEN) return WireError.BadLength;
  if (ulen > len) return WireError.Truncated;
  if (srcIp !== undefined && dstIp !== undefined && rd16(buf, off + 6) !== 0) {
    if (onesSum(buf, off, ulen, ipv4PseudoSum(srcIp, dstIp, PROTO_UDP, ulen)) !== 0xffff) {
      return WireError.BadChecksum;
    }
  }
  return 0;
}

// ---- checked representation ----

export function udpHeaderLen(_repr?: UdpRepr): number {
  return UDP_HEADER_LEN;
}

/** Validates (and with addresses, checksum-verifies) a datagram; see checkUdp. */
export function parseUdp(buf: Uint8Array, off: number, len: number, srcIp?: number, dstIp?: number): UdpParsed {
  const err = checkUdp(buf, off, len, srcIp, dstIp);
  if (err) throw new WireParseError(err, 'udp');
  return {
    srcPort: udpSrcPort(buf, off),
    dstPort: udpDstPort(buf, off),
    payloadLen: udpPayloadLen(buf, off),
    payloadOff: off + UDP_HEADER_LEN,
    hasChecksum: udpChecksum(buf, off) !== 0,
  };
}

/**
 * Writes the 8-byte header; returns 8. With srcIp and dstIp, computes the checksum over the
 * header and the payloadLen bytes that must already be at off+8; without them writes 0 (none).
 * Throws RangeError on bad repr or insufficient room.
 */
export function emitUdp(repr: UdpRepr, buf: Uint8Array, off: number, srcIp?: number, dstIp?: number): number {
  assertUint(repr.srcPort, 0xffff, 'UDP srcPort');
  assertUint(repr.dstPort, 0xffff, 'UDP dstPort');
  assertUint(repr.payloadLen, 0xffff - UDP_HEADER_LEN, 'UDP payloadLen');
  const withSum = srcIp !== undefined && dstIp !== undefined;
  if (withSum) {
    assertUint(srcIp, 0xffffffff, 'UDP pseudo-header src');
    assertUint(dstIp, 0xffffffff, 'UDP pseudo-header dst');
  }
  assertRoom(buf, off, withSum ? UDP_HEADER_LEN + repr.payloadLen : UDP_HEADER_LEN, 'udp');
  writeUdpHeader(buf, off, repr.srcPort, repr.dstPort, repr.payloadLen);
  if (withSum) udpFillChecksum(buf, off, srcIp, dstIp);
  return UDP_HEADER_LEN;
}
