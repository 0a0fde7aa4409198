// ARP (RFC 826) for Ethernet hardware / IPv4 protocol addresses only: 28 bytes.
// Anything else (other htype/ptype/lengths, opcodes other than request/reply) is Unsupported.
import { rd16, rd32, rd32s, rd48, wr16, wr32, wr48 } from './bytes.js';
import { WireError, WireParseError, assertRoom, assertUint, inBounds } from './error.js';

export const ARP_LEN = 28;

export const ArpOp = {
  Request: 1,
  Reply: 2,
} as const;

export interface ArpRepr {
  /** ArpOp.Request or ArpOp.Reply. */
  op: number;
  senderMac: number;
  senderIp: number;
  targetMac: number;
  targetIp: number;
}

// ---- hot-path views (call checkArp first) ----

export function arpOp(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 6);
}
export function arpSenderMac(buf: Uint8Array, off: number): number {
  return rd48(buf, off + 8);
}
export function arpSenderIp(buf: Uint8Array, off: number): number {
  return rd32(buf, off + 14);
}
export function arpTargetMac(buf: Uint8Array, off: number): number {
  return rd48(buf, off + 18);
}
export function arpTargetIp(buf: Uint8Array, off: number): number {
  return rd32(buf, off + 24);
}

/** Sender / target protocol address as a signed int32 (the table key form). */
export function arpSenderIpKey(buf: Uint8Array, off: number): number {
  return rd32s(buf, off + 14);
}
export function arpTargetIpKey(buf: Uint8Array, off: number): number {
  return rd32s(buf, off + 24);
}

/**
 * Writes a complete Ethernet/IPv4 ARP packet at off (no bounds check, no allocation) and returns
 * 28. For a reply in place: writeArp(buf, off, ArpOp.Reply, myMac, ip, reqSenderMac, reqSenderIp).
 */
export function writeArp(
  buf: Uint8Array, off: number, op: number,
  senderMac: number, senderIp: number, targetMac: number, targetIp: number,
): number {
  wr16(buf, off, 1);
  wr16(buf, off + 2, 0x0800);
  buf[off + 4] = 6;
  buf[off + 5] = 4;
  wr16(buf, off + 6, op);
  wr48(buf, off + 8, senderMac);
  wr32(buf, off + 14, senderIp);
  wr48(buf, off + 18, targetMac);
  wr32(buf, off + 24, targetIp);
  return ARP_LEN;
}

/** 0 when buf[off, off+len) is an Ethernet/IPv4 request or reply (trailing padding allowed). */
export function checkArp(buf: Uint8Array, off: number, len: number): number {
  if (!inBounds(buf, off, len)) return WireError.BadBounds;
  if (len < ARP_LEN) return WireError.Truncated;
  if (rd16(buf, off) !== 1 || rd16(buf, off + 2) !== 0x0800 || buf[off + 4] !== 6 || buf[off + 5] !== 4) {
    return WireError.Unsupported;
  }
  const op = rd16(buf, off + 6);
  if (op !== ArpOp.Request && op !== ArpOp.Reply) return WireError.Unsupported;
  return 0;
}

// ---- checked representation ----

export function arpHeaderLen(_repr?: ArpRepr): number {
  return ARP_LEN;
}

export function parseArp(buf: Uint8Array, off: number, len: number): ArpRepr {
  const err = checkArp(buf, off, len);
  if (err) throw new WireParseError(err, 'arp');
  return {
    op: arpOp(buf, off),
    senderMac: arpSenderMac(buf, off),
    senderIp: arpSenderIp(buf, off),
    targetMac: arpTargetMac(buf, off),
    targetIp: arpTargetIp(buf, off),
  };
}

/** Writes the 28-byte packet; returns 28. Throws RangeError on bad repr or insufficient room. */
export function emitArp(repr: ArpRepr, buf: Uint8Array, off: number): number {
  assertRoom(buf, off, ARP_LEN, 'arp');
  if (repr.op !== ArpOp.Request && repr.op !== ArpOp.Reply) throw new RangeError(`ARP op: ${repr.op}`);
  assertUint(repr.senderMac, 0xffffffffffff, 'ARP sender MAC');
  assertUint(repr.targetMac, 0xffffffffffff, 'ARP target MAC');
  assertUint(repr.senderIp, 0xffffffff, 'ARP sender IP');
  assertUint(repr.targetIp, 0xffffffff, 'ARP target IP');
  return writeArp(buf, off, repr.op, repr.senderMac, repr.senderIp, repr.targetMac, repr.targetIp);
}
