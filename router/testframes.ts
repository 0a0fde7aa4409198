// Frame builders for datapath tests (control-path code; uses the wire codecs' emitters).
import { emitArp, emitEth, emitIpv4, parseIpv4, parseMac, writeVxlanHeader } from './wire/index.js';

export const ip = (s: string): number => parseIpv4(s);

export function ipv4Frame(dst: string, src: string, srcIp: number, dstIp: number, proto: number, sport: number, dport: number, payloadLen: number): Buffer {
  const l4 = proto === 6 ? 20 : 8;
  const buf = Buffer.alloc(14 + 20 + l4 + payloadLen);
  emitEth({ dst: parseMac(dst), src: parseMac(src), ethertype: 0x0800, vlan: null }, buf, 0);
  emitIpv4({ src: srcIp, dst: dstIp, protocol: proto, ttl: 64, payloadLen: l4 + payloadLen, ident: 1, dontFrag: true, moreFrags: false, fragOffset: 0, tos: 0, optionsLen: 0 }, buf, 14);
  buf.writeUInt16BE(sport, 34);
  buf.writeUInt16BE(dport, 36);
  if (proto === 17) buf.writeUInt16BE(8 + payloadLen, 38);
  else buf[46] = 0x50; // TCP data offset: 5 words
  return buf;
}

export function arpFrame(op: number, senderMac: string, senderIp: number, targetMac: string, targetIp: number): Buffer {
  const buf = Buffer.alloc(14 + 28);
  const dst = op === 1 ? 0xffffffffffff : parseMac(targetMac);
  emitEth({ dst, src: parseMac(senderMac), ethertype: 0x0806, vlan: null }, buf, 0);
  emitArp({ op, senderMac: parseMac(senderMac), senderIp, targetMac: parseMac(targetMac), targetIp }, buf, 14);
  return buf;
}

export function vxlan(vni: number, frame: Buffer): Buffer {
  const out = Buffer.alloc(8 + frame.length);
  writeVxlanHeader(out, 0, vni);
  frame.copy(out, 8);
  return out;
}
