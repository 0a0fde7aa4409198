import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ARP_LEN, ArpOp, arpHeaderLen, arpOp, arpSenderIp, arpSenderMac, arpTargetIp, arpTargetMac, checkArp, emitArp,
  parseArp, writeArp, type ArpRepr,
} from './arp.js';
import { WireError } from './error.js';
import { parseIpv4 } from './addr.js';
import { attempt, embed, guarded, hex } from './testkit.js';

const macArb = fc.tuple(fc.nat(0xffff), fc.nat(0xffffffff)).map(([h, l]) => h * 2 ** 32 + l);
const ipArb = fc.nat(0xffffffff);
const reprArb: fc.Arbitrary<ArpRepr> = fc.record({
  op: fc.constantFrom(ArpOp.Request, ArpOp.Reply),
  senderMac: macArb, senderIp: ipArb, targetMac: macArb, targetIp: ipArb,
});

function build(repr: ArpRepr): Uint8Array {
  const b = new Uint8Array(ARP_LEN);
  expect(emitArp(repr, b, 0)).toBe(ARP_LEN);
  return b;
}

describe('arp', () => {
  it('parse(emit(x)) == x at any offset, with trailing padding', () => {
    fc.assert(fc.property(reprArb, fc.nat(40), fc.nat(18), (repr, pre, pad) => {
      const buf = embed(build(repr), pre, pad);
      expect(parseArp(guarded(buf, pre, pre + ARP_LEN + pad), pre, ARP_LEN + pad)).toEqual(repr);
    }));
  });

  it('every truncation is rejected by check and parse without reading past the window', () => {
    fc.assert(fc.property(reprArb, fc.nat(10), (repr, pre) => {
      const buf = embed(build(repr), pre, 10);
      for (let k = 0; k < ARP_LEN; k++) {
        const g = guarded(buf, pre, pre + k);
        expect(checkArp(g, pre, k)).toBe(WireError.Truncated);
        expect(attempt(() => parseArp(g, pre, k))).toEqual({ ok: false, reason: WireError.Truncated });
      }
    }));
  });

  it('random bytes and corruption: repr or WireParseError; views agree with parse', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ maxLength: 40 }),
      fc.tuple(reprArb, fc.nat(), fc.nat(255)).map(([r, pos, v]) => {
        const b = build(r);
        b[pos % ARP_LEN] = v;
        return b;
      }),
    );
    fc.assert(fc.property(bytes, fc.nat(7), (data, pre) => {
      const buf = embed(data, pre, 3);
      const g = guarded(buf, pre, pre + data.length);
      const r = attempt(() => parseArp(g, pre, data.length));
      expect(r.ok).toBe(checkArp(g, pre, data.length) === 0);
      if (!r.ok) return;
      expect(r.value).toEqual({
        op: arpOp(g, pre), senderMac: arpSenderMac(g, pre), senderIp: arpSenderIp(g, pre),
        targetMac: arpTargetMac(g, pre), targetIp: arpTargetIp(g, pre),
      });
      expect([ArpOp.Request, ArpOp.Reply]).toContain(r.value.op);
    }), { numRuns: 1000 });
  });

  it('rejects non-Ethernet/IPv4 variants and unknown opcodes as Unsupported', () => {
    const base = build({ op: 1, senderMac: 1, senderIp: 2, targetMac: 0, targetIp: 3 });
    for (const [i, v] of [[1, 6], [3, 0xdd], [4, 8], [5, 16], [7, 3], [7, 0], [6, 1]] as const) {
      const b = Uint8Array.from(base);
      b[i] = v;
      expect(checkArp(b, 0, ARP_LEN)).toBe(WireError.Unsupported);
    }
  });

  it('known answer: hand-built who-has 192.168.1.1 tell 192.168.1.100', () => {
    const pkt = hex('0001 0800 06 04 0001 525400123456 c0a80164 000000000000 c0a80101');
    expect(parseArp(pkt, 0, pkt.length)).toEqual({
      op: ArpOp.Request, senderMac: 0x525400123456, senderIp: parseIpv4('192.168.1.100'),
      targetMac: 0, targetIp: parseIpv4('192.168.1.1'),
    });
    // The reply an in-place responder would write: swap roles, fill in the answer.
    const out = embed(new Uint8Array(ARP_LEN), 14, 0);
    expect(writeArp(out, 14, ArpOp.Reply, 0x0200c0a80101, arpTargetIp(pkt, 0), arpSenderMac(pkt, 0), arpSenderIp(pkt, 0)))
      .toBe(ARP_LEN);
    expect(out.subarray(14)).toEqual(hex('0001 0800 06 04 0002 0200c0a80101 c0a80101 525400123456 c0a80164'));
    expect(arpHeaderLen()).toBe(28);
  });

  it('bad bounds and bad reprs', () => {
    expect(checkArp(new Uint8Array(28), 1, 28)).toBe(WireError.BadBounds);
    expect(() => emitArp({ op: 3, senderMac: 0, senderIp: 0, targetMac: 0, targetIp: 0 }, new Uint8Array(28), 0))
      .toThrow(RangeError);
    expect(() => emitArp({ op: 1, senderMac: 0, senderIp: 2 ** 32, targetMac: 0, targetIp: 0 }, new Uint8Array(28), 0))
      .toThrow(RangeError);
    expect(() => emitArp({ op: 1, senderMac: 0, senderIp: 0, targetMac: 0, targetIp: 0 }, new Uint8Array(28), 1))
      .toThrow(RangeError);
  });
});
