import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ETH_HEADER_LEN, EtherType, ethDst, ethPayloadType, ethSrc, writeEthHeader } from './ethernet.js';
import { checkIcmp, icmpCode, icmpType } from './icmp.js';
import { IpProto, checkIpv4, emitIpv4, ipv4Dst, ipv4Proto, ipv4Src, ipv4TotalLen } from './ipv4.js';
import { TCP_RST_FRAME_LEN, writeIcmpPortUnreachable, writeTcpRstReply } from './reject.js';
import { TcpFlag, checkTcp, emitTcp, parseTcp } from './tcp.js';
import { checkUdp, emitUdp } from './udp.js';

const CLIENT_MAC = 0x02420a000005;
const ROUTER_MAC = 0x02aabbccddee;
const CLIENT = 0x0a000005;
const VIP = 0x0a0000fe;

function tcpFrame(flags: number, seq: number, ack: number, payload: number): Uint8Array {
  const b = new Uint8Array(ETH_HEADER_LEN + 40 + payload);
  writeEthHeader(b, 0, ROUTER_MAC, CLIENT_MAC, EtherType.Ipv4);
  emitIpv4({ src: CLIENT, dst: VIP, protocol: IpProto.Tcp, ttl: 64, tos: 0, ident: 1, dontFrag: true,
    moreFrags: false, fragOffset: 0, optionsLen: 0, payloadLen: 20 + payload }, b, 14);
  emitTcp({ srcPort: 40000, dstPort: 81, seq, ack, flags, window: 1000, urgent: 0, optionsLen: 0, payloadLen: payload },
    b, 34, CLIENT, VIP);
  return b;
}

describe('reject replies', () => {
  it('RST to a SYN: ACK = ISN + 1, swapped addresses, ports and MACs, checksums right', () => {
    fc.assert(fc.property(fc.nat(0xffffffff), fc.nat(40), fc.boolean(), (seq, payload, fin) => {
      const flags = TcpFlag.Syn | (fin ? TcpFlag.Fin : 0);
      const inb = tcpFrame(flags, seq, 0, payload);
      const out = new Uint8Array(100);
      expect(writeTcpRstReply(inb, 0, 14, out, 3)).toBe(TCP_RST_FRAME_LEN);
      const o = 3;
      expect(ethDst(out, o)).toBe(CLIENT_MAC);
      expect(ethSrc(out, o)).toBe(ROUTER_MAC);
      expect(ethPayloadType(out, o)).toBe(EtherType.Ipv4);
      expect(checkIpv4(out, o + 14, 40)).toBe(0);
      expect(ipv4Src(out, o + 14)).toBe(VIP);
      expect(ipv4Dst(out, o + 14)).toBe(CLIENT);
      expect(checkTcp(out, o + 34, 20, VIP, CLIENT)).toBe(0);
      const t = parseTcp(out, o + 34, 20, VIP, CLIENT);
      expect(t).toMatchObject({ srcPort: 81, dstPort: 40000, seq: 0, flags: TcpFlag.Rst | TcpFlag.Ack });
      expect(t.ack).toBe((seq + payload + 1 + (fin ? 1 : 0)) >>> 0);
    }));
  });

  it('RST to a segment with ACK uses SEQ = SEG.ACK and no ACK; no RST for an RST', () => {
    const inb = tcpFrame(TcpFlag.Ack | TcpFlag.Psh, 5, 0xdeadbeef, 10);
    const out = new Uint8Array(64);
    expect(writeTcpRstReply(inb, 0, 14, out, 0)).toBe(TCP_RST_FRAME_LEN);
    expect(parseTcp(out, 34, 20, VIP, CLIENT)).toMatchObject({ seq: 0xdeadbeef, ack: 0, flags: TcpFlag.Rst });
    expect(writeTcpRstReply(tcpFrame(TcpFlag.Rst, 1, 0, 0), 0, 14, out, 0)).toBe(0);
    expect(writeTcpRstReply(inb, 0, 14, new Uint8Array(40), 0)).toBe(0); // no room
  });

  it('ICMP port unreachable quotes the datagram, parses and checksums right', () => {
    fc.assert(fc.property(fc.nat(700), fc.boolean(), (payload, same) => {
      const inb = new Uint8Array(2000);
      writeEthHeader(inb, 0, ROUTER_MAC, CLIENT_MAC, EtherType.Ipv4);
      emitIpv4({ src: CLIENT, dst: VIP, protocol: IpProto.Udp, ttl: 64, tos: 0, ident: 1, dontFrag: false,
        moreFrags: false, fragOffset: 0, optionsLen: 0, payloadLen: 8 + payload }, inb, 14);
      for (let i = 0; i < payload; i++) inb[42 + i] = i;
      emitUdp({ srcPort: 5353, dstPort: 9999, payloadLen: payload }, inb, 34, CLIENT, VIP);
      expect(checkUdp(inb, 34, 8 + payload, CLIENT, VIP)).toBe(0);
      const orig = inb.slice(14, 14 + 28 + payload);
      const out = same ? inb : new Uint8Array(2000);
      const o = same ? 0 : 5;
      const n = writeIcmpPortUnreachable(inb, 0, 14, out, o);
      const quote = Math.min(28 + payload, 576 - 28);
      expect(n).toBe(14 + 20 + 8 + quote);
      expect(ethDst(out, o)).toBe(CLIENT_MAC);
      expect(checkIpv4(out, o + 14, n - 14)).toBe(0);
      expect(ipv4TotalLen(out, o + 14)).toBe(n - 14);
      expect(ipv4Proto(out, o + 14)).toBe(IpProto.Icmp);
      expect(ipv4Src(out, o + 14)).toBe(VIP);
      expect(ipv4Dst(out, o + 14)).toBe(CLIENT);
      expect(checkIcmp(out, o + 34, n - 34)).toBe(0);
      expect([icmpType(out, o + 34), icmpCode(out, o + 34)]).toEqual([3, 3]);
      expect(out.subarray(o + 42, o + 42 + quote)).toEqual(orig.subarray(0, quote));
    }));
  });

  it('no ICMP for a non-first fragment', () => {
    const inb = new Uint8Array(14 + 28);
    emitIpv4({ src: CLIENT, dst: VIP, protocol: IpProto.Udp, ttl: 64, tos: 0, ident: 1, dontFrag: false,
      moreFrags: false, fragOffset: 8, optionsLen: 0, payloadLen: 8 }, inb, 14);
    expect(writeIcmpPortUnreachable(inb, 0, 14, new Uint8Array(200), 0)).toBe(0);
  });
});
