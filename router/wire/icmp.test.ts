import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { WireError } from './error.js';
import {
  ICMP_HEADER_LEN, IcmpType, checkIcmp, emitIcmp, icmpChecksum, icmpCode, icmpEchoIdent, icmpEchoSeq,
  icmpEchoToReply, icmpFillChecksum, icmpHeaderLen, icmpIsEchoRequest, icmpType, parseIcmp, type IcmpRepr,
} from './icmp.js';
import { attempt, embed, guarded, hex, refChecksum } from './testkit.js';

const reprArb: fc.Arbitrary<IcmpRepr> = fc.record({
  type: fc.oneof(fc.constantFrom(0, 8, 3, 11), fc.nat(255)), code: fc.oneof(fc.constant(0), fc.nat(255)),
  ident: fc.nat(0xffff), seq: fc.nat(0xffff), payloadLen: fc.nat(80),
});
const withPayload = reprArb.chain((r) =>
  fc.tuple(fc.constant(r), fc.uint8Array({ minLength: r.payloadLen, maxLength: r.payloadLen })));

function build(repr: IcmpRepr, payload: Uint8Array): Uint8Array {
  const b = embed(payload, ICMP_HEADER_LEN, 0, 0xee);
  expect(emitIcmp(repr, b, 0)).toBe(ICMP_HEADER_LEN);
  return b;
}

describe('icmp', () => {
  it('parse(emit(x)) == x at any offset; views agree; checksum matches reference', () => {
    fc.assert(fc.property(withPayload, fc.nat(30), ([repr, pl], pre) => {
      const pkt = build(repr, pl);
      expect(refChecksum(pkt)).toBe(0);
      const buf = embed(pkt, pre, 5);
      const g = guarded(buf, pre, pre + pkt.length);
      const p = parseIcmp(g, pre, pkt.length);
      expect(p).toEqual({ ...repr, payloadOff: pre + 8 });
      expect([icmpType(g, pre), icmpCode(g, pre), icmpEchoIdent(g, pre), icmpEchoSeq(g, pre)])
        .toEqual([repr.type, repr.code, repr.ident, repr.seq]);
      expect(buf.subarray(p.payloadOff, p.payloadOff + p.payloadLen)).toEqual(pl);
    }));
  });

  it('truncation: header prefixes always rejected; payload prefixes accepted iff their checksum still holds', () => {
    fc.assert(fc.property(withPayload, fc.nat(5), ([repr, pl], pre) => {
      const pkt = build(repr, pl);
      const buf = embed(pkt, pre, 3);
      for (let k = 0; k < pkt.length; k++) {
        const g = guarded(buf, pre, pre + k);
        const want = k < 8 ? WireError.Truncated : refChecksum(pkt.subarray(0, k)) === 0 ? 0 : WireError.BadChecksum;
        expect(checkIcmp(g, pre, k)).toBe(want);
        expect(attempt(() => parseIcmp(g, pre, k)).ok).toBe(want === 0);
      }
    }), { numRuns: 60 });
  });

  it('every single-bit error anywhere in the message is BadChecksum', () => {
    fc.assert(fc.property(withPayload, fc.nat(), ([repr, pl], bit) => {
      const b = build(repr, pl);
      const i = bit % (b.length * 8);
      b[i >> 3] ^= 1 << (i & 7);
      expect(checkIcmp(b, 0, b.length)).toBe(WireError.BadChecksum);
      expect(attempt(() => parseIcmp(guarded(b, 0, b.length), 0, b.length))).toEqual({ ok: false, reason: WireError.BadChecksum });
    }), { numRuns: 1000 });
  });

  it('random bytes: repr or WireParseError, consistent with checkIcmp', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), fc.boolean(), fc.nat(5), (raw, fix, pre) => {
      const data = Uint8Array.from(raw);
      if (fix && data.length >= 8) icmpFillChecksum(data, 0, data.length);
      const buf = embed(data, pre, 2);
      const g = guarded(buf, pre, pre + data.length);
      const r = attempt(() => parseIcmp(g, pre, data.length));
      expect(r.ok).toBe(checkIcmp(g, pre, data.length) === 0);
      if (fix && data.length >= 8) expect(r.ok).toBe(true);
      if (r.ok) expect(r.value.payloadLen).toBe(data.length - 8);
    }), { numRuns: 1000 });
  });

  it('known answer: Windows-style ping id 1 seq 1 has checksum 0x4d5a, its reply 0x555a', () => {
    const payload = new TextEncoder().encode('abcdefghijklmnopqrstuvwabcdefghi');
    const pkt = build({ type: IcmpType.EchoRequest, code: 0, ident: 1, seq: 1, payloadLen: payload.length }, payload);
    expect(pkt.subarray(0, 8)).toEqual(hex('0800 4d5a 0001 0001'));
    expect(icmpIsEchoRequest(pkt, 0)).toBe(true);
    icmpEchoToReply(pkt, 0);
    expect(pkt.subarray(0, 8)).toEqual(hex('0000 555a 0001 0001'));
    expect(icmpIsEchoRequest(pkt, 0)).toBe(false);
    expect(checkIcmp(pkt, 0, pkt.length)).toBe(0);
    expect(icmpHeaderLen()).toBe(8);
  });

  it('icmpEchoToReply keeps any echo request valid and preserves ident, seq and payload', () => {
    fc.assert(fc.property(withPayload, fc.nat(16), ([repr, pl], pre) => {
      const pkt = build({ ...repr, type: 8, code: 0 }, pl);
      const buf = embed(pkt, pre, 4);
      icmpEchoToReply(buf, pre);
      expect(parseIcmp(buf, pre, pkt.length)).toEqual({ ...repr, type: 0, code: 0, payloadOff: pre + 8 });
      const c = icmpChecksum(buf, pre);
      icmpFillChecksum(buf, pre, pkt.length);
      expect(c % 0xffff).toBe(icmpChecksum(buf, pre) % 0xffff); // same value up to +0/-0
    }));
  });

  it('emit rejects bad reprs and missing payload room', () => {
    const r: IcmpRepr = { type: 8, code: 0, ident: 0, seq: 0, payloadLen: 4 };
    expect(() => emitIcmp(r, new Uint8Array(11), 0)).toThrow(RangeError);
    expect(() => emitIcmp({ ...r, type: 256 }, new Uint8Array(12), 0)).toThrow(RangeError);
    expect(() => emitIcmp({ ...r, seq: 65536 }, new Uint8Array(12), 0)).toThrow(RangeError);
    expect(checkIcmp(new Uint8Array(8), 0, 9)).toBe(WireError.BadBounds);
  });
});
