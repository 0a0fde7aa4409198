import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ipv4PseudoSum, onesSum } from './checksum.js';
import { IpProto, checkIpv4, emitIpv4, ipv4Dst, ipv4Src } from './ipv4.js';
import { icmpIsError, l4DstPort, l4SrcPort, natRewriteDst, natRewriteIcmpErrorInnerDst, natRewriteSrc } from './nat.js';
import { checkIcmp, emitIcmp } from './icmp.js';
import { checkTcp, emitTcp } from './tcp.js';
import { checkUdp, emitUdp, udpChecksum } from './udp.js';

interface Pkt { buf: Uint8Array; ipOff: number; l4Off: number; l4Len: number; proto: number }

const pktArb = fc.record({
  tcp: fc.boolean(), src: fc.nat(0xffffffff), dst: fc.nat(0xffffffff), sport: fc.nat(0xffff), dport: fc.nat(0xffff),
  ipOpts: fc.nat(10).map((x) => x * 4), tcpOpts: fc.nat(10).map((x) => x * 4), seq: fc.nat(0xffffffff),
  payload: fc.uint8Array({ maxLength: 90 }), pre: fc.nat(20), udpNoSum: fc.boolean(),
});

type PktSpec = typeof pktArb extends fc.Arbitrary<infer T> ? T : never;

function build(p: PktSpec): Pkt {
  const l4h = p.tcp ? 20 + p.tcpOpts : 8;
  const l4Len = l4h + p.payload.length;
  const ipLen = 20 + p.ipOpts;
  const buf = new Uint8Array(p.pre + ipLen + l4Len + 4).fill(0x5a);
  const ipOff = p.pre;
  const l4Off = ipOff + ipLen;
  buf.set(p.payload, l4Off + l4h);
  const proto = p.tcp ? IpProto.Tcp : IpProto.Udp;
  emitIpv4({ src: p.src, dst: p.dst, protocol: proto, ttl: 64, tos: 0, ident: 7, dontFrag: true, moreFrags: false,
    fragOffset: 0, optionsLen: p.ipOpts, payloadLen: l4Len }, buf, ipOff, new Uint8Array(p.ipOpts).fill(1));
  if (p.tcp) {
    emitTcp({ srcPort: p.sport, dstPort: p.dport, seq: p.seq, ack: 1, flags: 0x18, window: 512, urgent: 0,
      optionsLen: p.tcpOpts, payloadLen: p.payload.length }, buf, l4Off, p.src, p.dst, new Uint8Array(p.tcpOpts).fill(1));
  } else if (p.udpNoSum) {
    emitUdp({ srcPort: p.sport, dstPort: p.dport, payloadLen: p.payload.length }, buf, l4Off);
  } else {
    emitUdp({ srcPort: p.sport, dstPort: p.dport, payloadLen: p.payload.length }, buf, l4Off, p.src, p.dst);
  }
  return { buf, ipOff, l4Off, l4Len, proto };
}

/** Full verification from scratch: IPv4 header checksum and L4 checksum over the pseudo-header. */
function verifies(k: Pkt): boolean {
  const { buf, ipOff, l4Off, l4Len } = k;
  if (checkIpv4(buf, ipOff, l4Off - ipOff + l4Len) !== 0) return false;
  const s = ipv4Src(buf, ipOff);
  const d = ipv4Dst(buf, ipOff);
  return (k.proto === IpProto.Tcp ? checkTcp(buf, l4Off, l4Len, s, d) : checkUdp(buf, l4Off, l4Len, s, d)) === 0;
}

/** The L4 field as a virtio TAP hands it over with NEEDS_CSUM: the pseudo-header sum only. */
function makePartial(k: Pkt): void {
  const at = k.l4Off + (k.proto === IpProto.Tcp ? 16 : 6);
  const ps = ipv4PseudoSum(ipv4Src(k.buf, k.ipOff), ipv4Dst(k.buf, k.ipOff), k.proto, k.l4Len);
  k.buf[at] = ps >>> 8;
  k.buf[at + 1] = ps & 255;
}

/** What the kernel (or offload.ts completeChecksum) does later: sum from csum_start, complement. */
function completePartial(k: Pkt): void {
  const at = k.l4Off + (k.proto === IpProto.Tcp ? 16 : 6);
  let c = ~onesSum(k.buf, k.l4Off, k.l4Len) & 0xffff;
  if (c === 0 && k.proto === IpProto.Udp) c = 0xffff;
  k.buf[at] = c >>> 8;
  k.buf[at + 1] = c & 255;
}

const addr = fc.nat(0xffffffff);
const port = fc.nat(0xffff);

describe('nat rewrites', () => {
  it('DNAT: fields set, full recomputation verifies, reverse restores the original bytes', () => {
    fc.assert(fc.property(pktArb, addr, port, (p, ip, pt) => {
      const k = build(p);
      const orig = k.buf.slice();
      expect(verifies(k)).toBe(true);
      expect(natRewriteDst(k.buf, k.ipOff, ip, pt)).toBe(true);
      expect(ipv4Dst(k.buf, k.ipOff)).toBe(ip);
      expect(l4DstPort(k.buf, k.l4Off)).toBe(pt);
      expect(ipv4Src(k.buf, k.ipOff)).toBe(p.src);
      expect(verifies(k)).toBe(true);
      if (!p.tcp && p.udpNoSum) expect(udpChecksum(k.buf, k.l4Off)).toBe(0);
      natRewriteDst(k.buf, k.ipOff, p.dst, p.dport);
      expect(k.buf).toEqual(orig);
    }), { numRuns: 500 });
  });

  it('SNAT on replies: fields set, verifies, reverse restores the original bytes', () => {
    fc.assert(fc.property(pktArb, addr, port, (p, ip, pt) => {
      const k = build(p);
      const orig = k.buf.slice();
      natRewriteSrc(k.buf, k.ipOff, ip, pt);
      expect(ipv4Src(k.buf, k.ipOff)).toBe(ip);
      expect(l4SrcPort(k.buf, k.l4Off)).toBe(pt);
      expect(verifies(k)).toBe(true);
      natRewriteSrc(k.buf, k.ipOff, p.src, p.sport);
      expect(k.buf).toEqual(orig);
    }), { numRuns: 500 });
  });

  it('CHECKSUM_PARTIAL: the seed follows the address only, so the later completion verifies', () => {
    fc.assert(fc.property(pktArb, addr, port, fc.boolean(), (p, ip, pt, dnat) => {
      const k = build({ ...p, udpNoSum: false });
      makePartial(k);
      const orig = k.buf.slice();
      if (dnat) natRewriteDst(k.buf, k.ipOff, ip, pt, true);
      else natRewriteSrc(k.buf, k.ipOff, ip, pt, true);
      // The seed equals the pseudo-header sum of the new addresses (what the kernel would write).
      const at = k.l4Off + (p.tcp ? 16 : 6);
      const seed = (k.buf[at] << 8) | k.buf[at + 1];
      const want = ipv4PseudoSum(ipv4Src(k.buf, k.ipOff), ipv4Dst(k.buf, k.ipOff), k.proto, k.l4Len);
      expect(seed % 0xffff).toBe(want % 0xffff); // 0 and 0xffff are the same one's-complement sum
      const copy = { ...k, buf: k.buf.slice() };
      completePartial(copy);
      expect(verifies(copy)).toBe(true);
      if (dnat) natRewriteDst(k.buf, k.ipOff, p.dst, p.dport, true);
      else natRewriteSrc(k.buf, k.ipOff, p.src, p.sport, true);
      expect(k.buf).toEqual(orig);
    }), { numRuns: 500 });
  });

  it('treating a partial field as a full checksum would break (the case is real)', () => {
    const k = build({ tcp: true, src: 0x0a000005, dst: 0x0a0000fe, sport: 40000, dport: 80, ipOpts: 0, tcpOpts: 0,
      seq: 1, payload: new Uint8Array([1, 2, 3]), pre: 0, udpNoSum: false });
    makePartial(k);
    natRewriteDst(k.buf, k.ipOff, 0x0a000009, 8080, false);
    completePartial(k);
    expect(verifies(k)).toBe(false);
  });

  it('leaves non-TCP/UDP packets alone', () => {
    const b = new Uint8Array(28);
    emitIpv4({ src: 1, dst: 2, protocol: IpProto.Icmp, ttl: 64, tos: 0, ident: 0, dontFrag: false, moreFrags: false,
      fragOffset: 0, optionsLen: 0, payloadLen: 8 }, b, 0);
    const o = b.slice();
    expect(natRewriteDst(b, 0, 9, 9)).toBe(false);
    expect(b).toEqual(o);
  });
});

describe('ICMP errors about a translated flow', () => {
  const CLIENT = 0x0a000005;
  const VIP = 0x0a0000fe;
  const TASK = 0x0a000011;
  it('quoted destination and outer source become the VIP; every checksum stays right', () => {
    fc.assert(fc.property(fc.boolean(), fc.nat(60), fc.integer({ min: 20, max: 200 }), fc.boolean(), (tcp, payload, keep, fromTask) => {
      // The datagram the task received (client -> task) and an ICMP error quoting its first `keep` bytes.
      const k = build({ tcp, src: CLIENT, dst: TASK, sport: 40000, dport: 80, ipOpts: 0, tcpOpts: 0, seq: 3,
        payload: new Uint8Array(payload).fill(7), pre: 0, udpNoSum: false });
      const dgramLen = k.l4Off + k.l4Len;
      const quote = Math.min(keep, dgramLen);
      const icmpLen = 8 + quote;
      const b = new Uint8Array(20 + icmpLen);
      emitIpv4({ src: fromTask ? TASK : 0x0a000001, dst: CLIENT, protocol: IpProto.Icmp, ttl: 64, tos: 0, ident: 0,
        dontFrag: false, moreFrags: false, fragOffset: 0, optionsLen: 0, payloadLen: icmpLen }, b, 0);
      b.set(k.buf.subarray(0, quote), 28);
      emitIcmp({ type: 3, code: 3, ident: 0, seq: 0, payloadLen: quote }, b, 20);
      const ok = natRewriteIcmpErrorInnerDst(b, 0, VIP, 8080);
      const minQuote = 20 + 4;
      expect(ok).toBe(quote >= minQuote);
      if (!ok) return;
      expect(checkIpv4(b, 0, b.length)).toBe(0);
      expect(checkIcmp(b, 20, icmpLen)).toBe(0);
      expect(ipv4Src(b, 0)).toBe(fromTask ? VIP : 0x0a000001);
      expect(onesSum(b, 28, 20)).toBe(0xffff); // quoted IP header checksum
      expect(ipv4Dst(b, 28)).toBe(VIP);
      expect(l4DstPort(b, 48)).toBe(8080);
      if (quote === dgramLen) {
        // The whole datagram was quoted: its L4 checksum verifies against the VIP.
        const l4 = b.subarray(48, 48 + k.l4Len);
        expect((tcp ? checkTcp : checkUdp)(l4, 0, k.l4Len, CLIENT, VIP)).toBe(0);
      }
    }), { numRuns: 300 });
  });

  it('icmpIsError knows the quoting types', () => {
    expect([0, 3, 4, 5, 8, 11, 12].map(icmpIsError)).toEqual([false, true, true, true, false, true, true]);
  });
});
