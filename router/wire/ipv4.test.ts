import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { WireError } from './error.js';
import {
  IpProto, checkIpv4, emitIpv4, ipv4Checksum, ipv4DecTtl, ipv4DontFrag, ipv4Dst, ipv4FillChecksum, ipv4FragOffset,
  ipv4HeaderLen, ipv4HeaderLenAt, ipv4Ident, ipv4IsFragment, ipv4MoreFrags, ipv4PayloadLen, ipv4PayloadOff,
  ipv4Proto, ipv4Src, ipv4TotalLen, ipv4Tos, ipv4Ttl, ipv4Version, parseIpv4Packet,
  setIpv4Dst, setIpv4Src, type Ipv4Parsed, type Ipv4Repr,
} from './ipv4.js';
import { attempt, embed, guarded, hex, refChecksum } from './testkit.js';

const reprArb: fc.Arbitrary<Ipv4Repr> = fc.record({
  src: fc.nat(0xffffffff), dst: fc.nat(0xffffffff), protocol: fc.nat(255), ttl: fc.nat(255), tos: fc.nat(255),
  ident: fc.nat(0xffff), dontFrag: fc.boolean(), moreFrags: fc.boolean(),
  fragOffset: fc.nat(8191).map((x) => x * 8), optionsLen: fc.nat(10).map((x) => x * 4), payloadLen: fc.nat(120),
});
const withOptions = reprArb.chain((r) =>
  fc.tuple(fc.constant(r), fc.uint8Array({ minLength: r.optionsLen, maxLength: r.optionsLen })));

function build(repr: Ipv4Repr, options?: Uint8Array): Uint8Array {
  const b = new Uint8Array(ipv4HeaderLen(repr) + repr.payloadLen);
  for (let i = 0; i < b.length; i++) b[i] = (i * 37 + 11) & 0xff;
  expect(emitIpv4(repr, b, 0, options)).toBe(ipv4HeaderLen(repr));
  return b;
}

function viewsOf(b: Uint8Array, off: number): Ipv4Parsed {
  const hl = ipv4HeaderLenAt(b, off);
  return {
    src: ipv4Src(b, off), dst: ipv4Dst(b, off), protocol: ipv4Proto(b, off), ttl: ipv4Ttl(b, off), tos: ipv4Tos(b, off),
    ident: ipv4Ident(b, off), dontFrag: ipv4DontFrag(b, off), moreFrags: ipv4MoreFrags(b, off),
    fragOffset: ipv4FragOffset(b, off), optionsLen: hl - 20, payloadLen: ipv4PayloadLen(b, off),
    optionsOff: off + 20, payloadOff: ipv4PayloadOff(b, off),
  };
}

describe('ipv4', () => {
  it('parse(emit(x)) == x at any offset, options copied, trailing padding ignored', () => {
    fc.assert(fc.property(withOptions, fc.nat(30), fc.nat(20), ([repr, opts], pre, pad) => {
      const pkt = build(repr, opts);
      const buf = embed(pkt, pre, pad);
      const n = pkt.length + pad;
      const p = parseIpv4Packet(guarded(buf, pre, pre + n), pre, n);
      const hl = ipv4HeaderLen(repr);
      expect(p).toEqual({ ...repr, optionsOff: pre + 20, payloadOff: pre + hl });
      expect(buf.subarray(p.optionsOff, p.optionsOff + p.optionsLen)).toEqual(opts);
      expect(viewsOf(buf, pre)).toEqual(p);
      expect(ipv4Version(buf, pre)).toBe(4);
      expect(ipv4TotalLen(buf, pre)).toBe(pkt.length);
      expect(ipv4IsFragment(buf, pre)).toBe(repr.moreFrags || repr.fragOffset !== 0);
      expect(refChecksum(pkt.subarray(0, hl))).toBe(0);
    }));
  });

  it('emit without options zero-fills them', () => {
    const r: Ipv4Repr = { src: 1, dst: 2, protocol: 6, ttl: 64, tos: 0, ident: 0, dontFrag: true, moreFrags: false,
      fragOffset: 0, optionsLen: 8, payloadLen: 0 };
    const b = new Uint8Array(28).fill(0xff);
    emitIpv4(r, b, 0);
    expect(b.subarray(20)).toEqual(new Uint8Array(8));
    expect(checkIpv4(b, 0, 28)).toBe(0);
  });

  it('every prefix shorter than the total length is rejected as Truncated', () => {
    fc.assert(fc.property(reprArb.filter((r) => r.payloadLen < 40), fc.nat(8), (repr, pre) => {
      const pkt = build(repr);
      const buf = embed(pkt, pre, 4);
      for (let k = 0; k < pkt.length; k++) {
        const g = guarded(buf, pre, pre + k);
        expect(checkIpv4(g, pre, k)).toBe(WireError.Truncated);
        expect(attempt(() => parseIpv4Packet(g, pre, k))).toEqual({ ok: false, reason: WireError.Truncated });
      }
    }), { numRuns: 60 });
  });

  it('any single-bit error in the header is detected; payload bits are not covered', () => {
    fc.assert(fc.property(withOptions, fc.nat(), ([repr, opts], bit) => {
      const b = build(repr, opts);
      const hl = ipv4HeaderLen(repr);
      const i = bit % (hl * 8);
      b[i >> 3] ^= 1 << (i & 7);
      expect(checkIpv4(b, 0, b.length)).not.toBe(0);
      expect(attempt(() => parseIpv4Packet(guarded(b, 0, b.length), 0, b.length)).ok).toBe(false);
      b[i >> 3] ^= 1 << (i & 7);
      if (repr.payloadLen > 0) {
        b[hl + (bit % repr.payloadLen)] ^= 0x10;
        expect(checkIpv4(b, 0, b.length)).toBe(0);
      }
    }), { numRuns: 500 });
  });

  it('random bytes (and random headers with a fixed-up checksum): repr or WireParseError, views agree', () => {
    const fixed = fc.tuple(fc.uint8Array({ minLength: 20, maxLength: 90 }), fc.nat(10)).map(([raw, ihl]) => {
      const b = Uint8Array.from(raw);
      const hl = Math.min(20 + ihl * 4, b.length & ~3);
      b[0] = 0x40 | (hl >> 2);
      b[2] = 0;
      b[3] = hl + ((b[3] % (b.length - hl + 1)));
      ipv4FillChecksum(b, 0);
      return b;
    });
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), fixed), fc.nat(5), (data, pre) => {
      const buf = embed(data, pre, 3);
      const g = guarded(buf, pre, pre + data.length);
      const r = attempt(() => parseIpv4Packet(g, pre, data.length));
      expect(r.ok).toBe(checkIpv4(g, pre, data.length) === 0);
      if (r.ok) {
        expect(viewsOf(g, pre)).toEqual(r.value);
        expect(r.value.payloadOff + r.value.payloadLen).toBeLessThanOrEqual(pre + data.length);
      }
    }), { numRuns: 1000 });
  });

  it('specific reason codes', () => {
    const b = build({ src: 1, dst: 2, protocol: 17, ttl: 1, tos: 0, ident: 0, dontFrag: false, moreFrags: false,
      fragOffset: 0, optionsLen: 0, payloadLen: 8 });
    const mut = (f: (x: Uint8Array) => void, fix = true): number => {
      const x = Uint8Array.from(b);
      f(x);
      if (fix) ipv4FillChecksum(x, 0);
      return checkIpv4(x, 0, x.length);
    };
    expect(mut(() => {})).toBe(0);
    expect(mut((x) => { x[0] = 0x65; })).toBe(WireError.BadVersion);
    expect(mut((x) => { x[0] = 0x44; }, false)).toBe(WireError.BadHeaderLen);
    expect(mut((x) => { x[0] = 0x47; })).toBe(0); // 8 option bytes, still fits
    expect(mut((x) => { x[0] = 0x4f; })).toBe(WireError.Truncated);
    expect(mut((x) => { x[2] = 0; x[3] = 19; })).toBe(WireError.BadLength);
    expect(mut((x) => { x[3] = 29; })).toBe(WireError.Truncated);
    expect(mut((x) => { x[11] ^= 1; }, false)).toBe(WireError.BadChecksum);
    expect(checkIpv4(b, 0, b.length + 1)).toBe(WireError.BadBounds);
  });

  it('known answer: the classic 192.168.0.1 -> 192.168.0.199 UDP header (checksum b861)', () => {
    const pkt = embed(hex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7'), 0, 0x73 - 20, 0);
    expect(parseIpv4Packet(pkt, 0, pkt.length)).toEqual({
      src: 0xc0a80001, dst: 0xc0a800c7, protocol: IpProto.Udp, ttl: 64, tos: 0, ident: 0, dontFrag: true,
      moreFrags: false, fragOffset: 0, optionsLen: 0, payloadLen: 0x73 - 20, optionsOff: 20, payloadOff: 20,
    });
    expect(ipv4Checksum(pkt, 0)).toBe(0xb861);
    const out = new Uint8Array(20);
    emitIpv4(parseIpv4Packet(pkt, 0, pkt.length), out, 0);
    expect(out).toEqual(pkt.subarray(0, 20));
  });

  it('ipv4DecTtl patches the checksum incrementally; TTL <= 1 is left alone', () => {
    fc.assert(fc.property(reprArb, (repr) => {
      const b = build(repr);
      const before = Uint8Array.from(b);
      const got = ipv4DecTtl(b, 0);
      if (repr.ttl <= 1) {
        expect(got).toBe(0);
        expect(b).toEqual(before);
      } else {
        expect(got).toBe(repr.ttl - 1);
        expect(ipv4Ttl(b, 0)).toBe(repr.ttl - 1);
        expect(checkIpv4(b, 0, b.length)).toBe(0);
      }
    }));
  });

  it('address setters + ipv4FillChecksum', () => {
    fc.assert(fc.property(reprArb, fc.nat(0xffffffff), fc.nat(0xffffffff), (repr, s, d) => {
      const b = build(repr);
      setIpv4Src(b, 0, s);
      setIpv4Dst(b, 0, d);
      ipv4FillChecksum(b, 0);
      expect(parseIpv4Packet(b, 0, b.length)).toMatchObject({ ...repr, src: s, dst: d });
    }));
  });

  it('emit rejects bad reprs with RangeError', () => {
    const r: Ipv4Repr = { src: 1, dst: 2, protocol: 6, ttl: 64, tos: 0, ident: 0, dontFrag: false, moreFrags: false,
      fragOffset: 0, optionsLen: 0, payloadLen: 0 };
    const b = new Uint8Array(60);
    for (const bad of [{ optionsLen: 3 }, { optionsLen: 44 }, { fragOffset: 4 }, { fragOffset: 65536 }, { ttl: 256 },
      { payloadLen: 65516 }, { src: -1 }, { protocol: 1.5 }]) {
      expect(() => emitIpv4({ ...r, ...bad }, b, 0)).toThrow(RangeError);
    }
    expect(() => emitIpv4(r, b, 41)).toThrow(RangeError);
    expect(() => emitIpv4({ ...r, optionsLen: 4 }, b, 0, new Uint8Array(8))).toThrow(RangeError);
  });
});
