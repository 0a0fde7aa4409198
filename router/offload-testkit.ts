// Frames for the offload tests (offload.test.ts, coalesce.test.ts): TCP and UDP frames of one
// flow with valid checksums, a TSO super-frame as the TAP hands it over, and the kernel's UDP GSO
// cut of a UDP_L4 super-frame.
import { expect } from 'vitest';
import { ip } from './testframes.js';
import { VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_HDR_LEN, completeChecksum } from './offload.js';
import { emitEth, emitIpv4, onesSum, parseMac, ipv4PseudoSum } from './wire/index.js';

export const SRC = ip('10.0.9.2');
export const DST = ip('10.0.9.3');
export const MAC_A = '02:42:0a:00:09:02';
export const MAC_B = '02:42:0a:00:09:03';

/** A TCP/IPv4 frame with `payload`, TCP options of optLen bytes, valid checksums. */
export function tcpFrame(payload: Buffer, seq: number, flags = 0x18, optLen = 12, ack = 777): Buffer {
  const thl = 20 + optLen;
  const buf = Buffer.alloc(14 + 20 + thl + payload.length);
  emitEth({ dst: parseMac(MAC_B), src: parseMac(MAC_A), ethertype: 0x0800, vlan: null }, buf, 0);
  emitIpv4({ src: SRC, dst: DST, protocol: 6, ttl: 64, tos: 0, ident: 100, dontFrag: true, moreFrags: false, fragOffset: 0, optionsLen: 0, payloadLen: thl + payload.length }, buf, 14);
  const t = 34;
  buf.writeUInt16BE(40000, t);
  buf.writeUInt16BE(5201, t + 2);
  buf.writeUInt32BE(seq >>> 0, t + 4);
  buf.writeUInt32BE(ack, t + 8);
  buf[t + 12] = (thl / 4) << 4;
  buf[t + 13] = flags;
  buf.writeUInt16BE(500, t + 14);
  for (let i = 0; i < optLen; i++) buf[t + 20 + i] = i === 0 ? 1 : 0x42; // NOPs and junk-but-fixed option bytes
  payload.copy(buf, t + thl);
  const c = ~onesSum(buf, t, thl + payload.length, ipv4PseudoSum(SRC, DST, 6, thl + payload.length)) & 0xffff;
  buf.writeUInt16BE(c, t + 16);
  return buf;
}

/** The same frame as the TAP would hand it over with TSO: partial checksum, virtio GSO header. */
export function tsoFrame(payload: Buffer, seq: number, mss: number): Buffer {
  const f = tcpFrame(payload, seq);
  const thl = 32;
  f.writeUInt16BE(fold16(ipv4PseudoSum(SRC, DST, 6, thl + payload.length)), 34 + 16);
  const v = Buffer.alloc(VNET_HDR_LEN);
  v[0] = VNET_F_NEEDS_CSUM;
  v[1] = VNET_GSO_TCPV4;
  v.writeUInt16LE(14 + 20 + thl, 2);
  v.writeUInt16LE(mss, 4);
  v.writeUInt16LE(34, 6);
  v.writeUInt16LE(16, 8);
  return Buffer.concat([v, f]);
}
export const fold16 = (x: number) => x & 0xffff;

/** A UDP/IPv4 frame with `payload` and a valid checksum (or none: `csum` false). */
export function udpFrame(payload: Buffer, o: { srcPort?: number; ttl?: number; csum?: boolean } = {}): Buffer {
  const buf = Buffer.alloc(14 + 20 + 8 + payload.length);
  emitEth({ dst: parseMac(MAC_B), src: parseMac(MAC_A), ethertype: 0x0800, vlan: null }, buf, 0);
  emitIpv4({ src: SRC, dst: DST, protocol: 17, ttl: o.ttl ?? 64, tos: 0, ident: 7, dontFrag: false, moreFrags: false, fragOffset: 0, optionsLen: 0, payloadLen: 8 + payload.length }, buf, 14);
  buf.writeUInt16BE(o.srcPort ?? 40001, 34);
  buf.writeUInt16BE(5201, 36);
  buf.writeUInt16BE(8 + payload.length, 38);
  payload.copy(buf, 42);
  if (o.csum !== false) buf.writeUInt16BE(~onesSum(buf, 34, 8 + payload.length, ipv4PseudoSum(SRC, DST, 17, 8 + payload.length)) & 0xffff || 0xffff, 40);
  return buf;
}

/**
 * What the kernel's UDP GSO makes of a UDP_L4 super-frame (__udp_gso_segment): datagrams of
 * gso_size payload bytes, each with the headers copied, its own lengths and a finished checksum.
 */
export function udpGsoSegment(frame: Buffer, gsoSize: number): Buffer[] {
  const payload = frame.subarray(42);
  const out: Buffer[] = [];
  for (let at = 0; at < payload.length; at += gsoSize) {
    const chunk = payload.subarray(at, Math.min(payload.length, at + gsoSize));
    const d = Buffer.concat([frame.subarray(0, 42), chunk]);
    d.writeUInt16BE(20 + 8 + chunk.length, 16);
    d.writeUInt16BE(8 + chunk.length, 38);
    d.writeUInt16BE(fold16(ipv4PseudoSum(SRC, DST, 17, 8 + chunk.length)), 40);
    expect(completeChecksum(d, 0, d.length, 34, 6, true)).toBe(true);
    out.push(d);
  }
  return out;
}
