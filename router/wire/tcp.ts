// TCP (RFC 9293) header only as far as flow handling needs: ports, sequence numbers, flags,
// window and the data offset. Options are delimited but not interpreted. `len` is the IP payload
// length (TCP has no length field). The checksum is verified only when the pseudo-header
// addresses are supplied.
import { checksum, ipv4PseudoSum, onesSum } from './checksum.js';
import { rd16, rd32, wr16, wr32 } from './bytes.js';
import { WireError, WireParseError, assertRoom, assertUint, inBounds } from './error.js';

export const TCP_MIN_HEADER_LEN = 20;
export const TCP_MAX_HEADER_LEN = 60;
/** Where the checksum field sits in the header (a virtio csum_offset names it). */
export const TCP_CHECKSUM_OFFSET = 16;
const PROTO_TCP = 6;

/** Flag bits as returned by tcpFlags (NS is bit 8, from the data-offset byte). */
export const TcpFlag = {
  Fin: 0x001,
  Syn: 0x002,
  Rst: 0x004,
  Psh: 0x008,
  Ack: 0x010,
  Urg: 0x020,
  Ece: 0x040,
  Cwr: 0x080,
  Ns: 0x100,
} as const;

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** 9-bit flag set, see TcpFlag. */
  flags: number;
  window: number;
  urgent: number;
  /** Option bytes after the fixed header: a multiple of 4, at most 40. */
  optionsLen: number;
  payloadLen: number;
}

export interface TcpParsed extends TcpRepr {
  optionsOff: number;
  payloadOff: number;
}

// ---- hot-path views (call checkTcp first) ----

export function tcpSrcPort(buf: Uint8Array, off: number): number {
  return rd16(buf, off);
}
export function tcpDstPort(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 2);
}
export function tcpSeq(buf: Uint8Array, off: number): number {
  return rd32(buf, off + 4);
}
export function tcpAck(buf: Uint8Array, off: number): number {
  return rd32(buf, off + 8);
}
/** Header length in bytes (data offset * 4). */
export function tcpHeaderLenAt(buf: Uint8Array, off: number): number {
  return (buf[off + 12] >> 4) << 2;
}
/** 9-bit flags: byte 13 plus NS (bit 8) from the low bit of byte 12. */
export function tcpFlags(buf: Uint8Array, off: number): number {
  return ((buf[off + 12] & 1) << 8) | buf[off + 13];
}
export function tcpWindow(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 14);
}
export function tcpChecksum(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 16);
}
export function tcpUrgent(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 18);
}
/** Absolute offset of the payload. */
export function tcpPayloadOff(buf: Uint8Array, off: number): number {
  return off + ((buf[off + 12] >> 4) << 2);
}
export function setTcpSeq(buf: Uint8Array, off: number, seq: number): void {
  wr32(buf, off + 4, seq);
}
/** Writes the eight flag bits of byte 13 (FIN..CWR); NS is left as it is. */
export function setTcpFlags(buf: Uint8Array, off: number, flags: number): void {
  buf[off + 13] = flags;
}
export function setTcpChecksum(buf: Uint8Array, off: number, c: number): void {
  wr16(buf, off + TCP_CHECKSUM_OFFSET, c);
}
/** Offset of the options (right after the fixed header). */
export function tcpOptionsOff(off: number): number {
  return off + TCP_MIN_HEADER_LEN;
}
/** Computes and stores the checksum over the whole segment buf[off, off+len). */
export function tcpFillChecksum(buf: Uint8Array, off: number, len: number, srcIp: number, dstIp: number): void {
  wr16(buf, off + 16, 0);
  wr16(buf, off + 16, checksum(buf, off, len, ipv4PseudoSum(srcIp, dstIp, PROTO_TCP, len)));
}

/**
 * 0 when len covers the header as given by the data offset (>= 5 words). With srcIp and dstIp,
 * also verifies the checksum over all len bytes.
 */
export function checkTcp(buf: Uint8Array, off: number, len: number, srcIp?: number, dstIp?: number): number {
  if (!inBounds(buf, off, len)) return WireError.BadBounds;
  if (len < TCP_MIN_HEADER_LEN) return WireError.Truncated;
  const hl = (buf[off + 12] >> 4) << 2;
  if (hl < TCP_MIN_HEADER_LEN) return WireError.BadHeaderLen;
  if (hl > len) return WireError.Truncated;
  if (srcIp !== undefined && dstIp !== undefined) {
    if (onesSum(buf, off, len, ipv4PseudoSum(srcIp, dstIp, PROTO_TCP, len)) !== 0xffff) return WireError.BadChecksum;
  }
  return 0;
}

// ---- checked representation ----

export function tcpHeaderLen(repr: TcpRepr): number {
  return TCP_MIN_HEADER_LEN + repr.optionsLen;
}

export function parseTcp(buf: Uint8Array, off: number, len: number, srcIp?: number, dstIp?: number): TcpParsed {
  const err = checkTcp(buf, off, len, srcIp, dstIp);
  if (err) throw new WireParseError(err, 'tcp');
  const hl = tcpHeaderLenAt(buf, off);
  return {
    srcPort: tcpSrcPort(buf, off),
    dstPort: tcpDstPort(buf, off),
    seq: tcpSeq(buf, off),
    ack: tcpAck(buf, off),
    flags: tcpFlags(buf, off),
    window: tcpWindow(buf, off),
    urgent: tcpUrgent(buf, off),
    optionsLen: hl - TCP_MIN_HEADER_LEN,
    payloadLen: len - hl,
    optionsOff: off + TCP_MIN_HEADER_LEN,
    payloadOff: off + hl,
  };
}

/**
 * Writes the header (20 + optionsLen bytes); returns its length. Options are copied from
 * `options` or zero-filled (End of Option List); reserved bits are written as zero. With srcIp
 * and dstIp the checksum is computed over the header and the payloadLen bytes already in place
 * after it; otherwise the checksum field is 0. Throws RangeError on bad repr or no room.
 */
export function emitTcp(
  repr: TcpRepr, buf: Uint8Array, off: number, srcIp?: number, dstIp?: number, options?: Uint8Array,
): number {
  const ol = repr.optionsLen;
  if (!(Number.isInteger(ol) && ol >= 0 && ol <= 40 && (ol & 3) === 0)) {
    throw new RangeError(`TCP optionsLen must be a multiple of 4 in 0..40: ${ol}`);
  }
  if (options && options.length !== ol) throw new RangeError('TCP options length != optionsLen');
  const hl = TCP_MIN_HEADER_LEN + ol;
  assertUint(repr.srcPort, 0xffff, 'TCP srcPort');
  assertUint(repr.dstPort, 0xffff, 'TCP dstPort');
  assertUint(repr.seq, 0xffffffff, 'TCP seq');
  assertUint(repr.ack, 0xffffffff, 'TCP ack');
  assertUint(repr.flags, 0x1ff, 'TCP flags');
  assertUint(repr.window, 0xffff, 'TCP window');
  assertUint(repr.urgent, 0xffff, 'TCP urgent');
  assertUint(repr.payloadLen, 0xffff - hl, 'TCP payloadLen');
  const withSum = srcIp !== undefined && dstIp !== undefined;
  if (withSum) {
    assertUint(srcIp, 0xffffffff, 'TCP pseudo-header src');
    assertUint(dstIp, 0xffffffff, 'TCP pseudo-header dst');
  }
  assertRoom(buf, off, withSum ? hl + repr.payloadLen : hl, 'tcp');
  wr16(buf, off, repr.srcPort);
  wr16(buf, off + 2, repr.dstPort);
  wr32(buf, off + 4, repr.seq);
  wr32(buf, off + 8, repr.ack);
  buf[off + 12] = ((hl >> 2) << 4) | (repr.flags >> 8);
  buf[off + 13] = repr.flags;
  wr16(buf, off + 14, repr.window);
  wr16(buf, off + 16, 0);
  wr16(buf, off + 18, repr.urgent);
  if (options) buf.set(options, off + TCP_MIN_HEADER_LEN);
  else buf.fill(0, off + TCP_MIN_HEADER_LEN, off + hl);
  if (withSum) tcpFillChecksum(buf, off, hl + repr.payloadLen, srcIp, dstIp);
  return hl;
}
