import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { WireError } from './error.js';
import { parseIpv4 } from './addr.js';
import { attempt, embed, guarded, hex, pseudoWords, refChecksum } from './testkit.js';
import {
  UDP_HEADER_LEN, checkUdp, emitUdp, parseUdp, setUdpDstPort, setUdpSrcPort, udpChecksum, udpDstPort,
  udpFillChecksum, udpHeaderLen, udpLength, udpPayloadLen, udpSrcPort, writeUdpHeader, type UdpRepr,
} from './udp.js';

const reprArb: fc.Arbitrary<UdpRepr> = fc.record({ srcPort: fc.nat(0xffff), dstPort: fc.nat(0xffff), payloadLen: fc.nat(100) });
const ip = fc.nat(0xffffffff);

function build(repr: UdpRepr, src?: number, dst?: number): Uint8Array {
  const b = new Uint8Array(UDP_HEADER_LEN + repr.payloadLen);
  for (let i = 0; i < b.length; i++) b[i] = (i * 53 + 7) & 0xff;
  expect(emitUdp(repr, b, 0, src, dst)).toBe(UDP_HEADER_LEN);
  return b;
}

describe('udp', () => {
  it('parse(emit(x)) == x, with and without checksum, at any offset', () => {
    fc.assert(fc.property(reprArb, ip, ip, fc.boolean(), fc.nat(30), fc.nat(6),
      (repr, s, d, sum, pre, pad) => {
        const pkt = sum ? build(repr, s, d) : build(repr);
        const buf = embed(pkt, pre, pad);
        const n = pkt.length + pad;
        const g = guarded(buf, pre, pre + n);
        const want = { ...repr, payloadOff: pre + 8, hasChecksum: sum };
        expect(parseUdp(g, pre, n, s, d)).toEqual(want);
        expect(parseUdp(g, pre, n)).toEqual(want);
        expect([udpSrcPort(g, pre), udpDstPort(g, pre), udpLength(g, pre), udpPayloadLen(g, pre)])
          .toEqual([repr.srcPort, repr.dstPort, pkt.length, repr.payloadLen]);
        if (sum) {
          expect(udpChecksum(g, pre)).not.toBe(0);
          expect(refChecksum(pkt, pseudoWords(s, d, 17, pkt.length))).toBe(0);
        } else {
          expect(udpChecksum(g, pre)).toBe(0);
        }
      }));
  });

  it('every prefix shorter than the UDP length is rejected as Truncated', () => {
    fc.assert(fc.property(reprArb.filter((r) => r.payloadLen < 40), ip, ip, fc.nat(5), (repr, s, d, pre) => {
      const pkt = build(repr, s, d);
      const buf = embed(pkt, pre, 4);
      for (let k = 0; k < pkt.length; k++) {
        const g = guarded(buf, pre, pre + k);
        expect(checkUdp(g, pre, k)).toBe(WireError.Truncated);
        expect(checkUdp(g, pre, k, s, d)).toBe(WireError.Truncated);
        expect(attempt(() => parseUdp(g, pre, k, s, d))).toEqual({ ok: false, reason: WireError.Truncated });
      }
    }), { numRuns: 60 });
  });

  it('single-bit errors are caught by the checksum (except ones that zero it or hit the length field)', () => {
    fc.assert(fc.property(reprArb, ip, ip, fc.nat(), (repr, s, d, bit) => {
      const b = build(repr, s, d);
      const i = bit % (b.length * 8);
      b[i >> 3] ^= 1 << (i & 7);
      const r = attempt(() => parseUdp(guarded(b, 0, b.length), 0, b.length, s, d));
      const byte = i >> 3;
      if (byte === 4 || byte === 5) return; // length changed: any outcome but a crash is fine
      if (udpChecksum(b, 0) === 0) {
        expect(r.ok).toBe(true); // checksum flipped to "none": accepted by design (RFC 768)
      } else {
        expect(r).toEqual({ ok: false, reason: WireError.BadChecksum });
        expect(parseUdp(b, 0, b.length).hasChecksum).toBe(true); // structural parse still fine
      }
    }), { numRuns: 1000 });
  });

  it('a different pseudo-header (wrong address) fails verification', () => {
    fc.assert(fc.property(reprArb, ip, ip, fc.nat(31), (repr, s, d, bit) => {
      const b = build(repr, s, d);
      expect(checkUdp(b, 0, b.length, (s ^ (1 << bit)) >>> 0, d)).toBe(WireError.BadChecksum);
      expect(checkUdp(b, 0, b.length, s, (d ^ (1 << bit)) >>> 0)).toBe(WireError.BadChecksum);
    }));
  });

  it('random bytes: repr or WireParseError consistent with checkUdp; views agree', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(5), fc.option(fc.tuple(ip, ip)), (data, pre, ips) => {
      const buf = embed(data, pre, 3);
      const g = guarded(buf, pre, pre + data.length);
      const [s, d] = ips ?? [undefined, undefined];
      const r = attempt(() => parseUdp(g, pre, data.length, s, d));
      expect(r.ok).toBe(checkUdp(g, pre, data.length, s, d) === 0);
      if (r.ok) {
        expect(r.value.payloadLen).toBe(udpLength(g, pre) - 8);
        expect(r.value.payloadOff + r.value.payloadLen).toBeLessThanOrEqual(pre + data.length);
      }
    }), { numRuns: 1000 });
  });

  it('reason codes: BadLength for length < 8, BadBounds for a bad window', () => {
    const b = hex('0035 0035 0007 0000 00');
    expect(checkUdp(b, 0, 9)).toBe(WireError.BadLength);
    expect(checkUdp(b, 2, 8)).toBe(WireError.BadBounds);
    expect(checkUdp(b, 0, 7)).toBe(WireError.Truncated);
  });

  it('known answer: 10.0.0.1:12345 -> 10.0.0.2:53 "hello" has checksum 0x7791', () => {
    const src = parseIpv4('10.0.0.1');
    const dst = parseIpv4('10.0.0.2');
    const pkt = embed(new TextEncoder().encode('hello'), 8, 0);
    emitUdp({ srcPort: 12345, dstPort: 53, payloadLen: 5 }, pkt, 0, src, dst);
    expect(pkt.subarray(0, 8)).toEqual(hex('3039 0035 000d 7791'));
    expect(checkUdp(pkt, 0, 13, src, dst)).toBe(0);
  });

  it('a computed checksum of zero is transmitted as 0xffff', () => {
    // Choose the payload word so the sum is exactly 0xffff: checksum would be 0.
    const b = new Uint8Array(10);
    writeUdpHeader(b, 0, 0, 0, 2);
    const partial = ~refChecksum(b, pseudoWords(0, 0, 17, 10)) & 0xffff;
    const word = 0xffff - partial;
    b[8] = word >> 8;
    b[9] = word & 0xff;
    expect(udpFillChecksum(b, 0, 0, 0)).toBe(0xffff);
    expect(checkUdp(b, 0, 10, 0, 0)).toBe(0);
  });

  it('hot-path writers', () => {
    const b = new Uint8Array(32).fill(0xcc);
    expect(writeUdpHeader(b, 4, 40000, 4789, 12)).toBe(8);
    expect(b.subarray(4, 12)).toEqual(hex('9c40 12b5 0014 0000'));
    setUdpSrcPort(b, 4, 1);
    setUdpDstPort(b, 4, 2);
    expect([udpSrcPort(b, 4), udpDstPort(b, 4)]).toEqual([1, 2]);
    expect(udpHeaderLen()).toBe(8);
  });

  it('emit rejects bad reprs and short buffers with RangeError', () => {
    const r: UdpRepr = { srcPort: 1, dstPort: 2, payloadLen: 4 };
    expect(() => emitUdp({ ...r, srcPort: 65536 }, new Uint8Array(12), 0)).toThrow(RangeError);
    expect(() => emitUdp({ ...r, payloadLen: 65528 }, new Uint8Array(12), 0)).toThrow(RangeError);
    expect(() => emitUdp(r, new Uint8Array(7), 0)).toThrow(RangeError);
    expect(() => emitUdp(r, new Uint8Array(11), 0, 1, 2)).toThrow(RangeError); // payload must be in the buffer
    expect(emitUdp(r, new Uint8Array(8), 0)).toBe(8); // header only without checksum
  });
});
