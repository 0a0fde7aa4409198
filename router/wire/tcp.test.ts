import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { WireError } from './error.js';
import { parseIpv4 } from './addr.js';
import {
  TcpFlag, checkTcp, emitTcp, parseTcp, tcpAck, tcpChecksum, tcpDstPort, tcpFillChecksum, tcpFlags, tcpHeaderLen,
  tcpHeaderLenAt, tcpPayloadOff, tcpSeq, tcpSrcPort, tcpUrgent, tcpWindow, type TcpParsed, type TcpRepr,
} from './tcp.js';
import { attempt, embed, guarded, hex, pseudoWords, refChecksum } from './testkit.js';

const reprArb: fc.Arbitrary<TcpRepr> = fc.record({
  srcPort: fc.nat(0xffff), dstPort: fc.nat(0xffff), seq: fc.nat(0xffffffff), ack: fc.nat(0xffffffff),
  flags: fc.nat(0x1ff), window: fc.nat(0xffff), urgent: fc.nat(0xffff),
  optionsLen: fc.nat(10).map((x) => x * 4), payloadLen: fc.nat(60),
});
const withOptions = reprArb.chain((r) =>
  fc.tuple(fc.constant(r), fc.uint8Array({ minLength: r.optionsLen, maxLength: r.optionsLen })));
const ip = fc.nat(0xffffffff);

function build(repr: TcpRepr, opts?: Uint8Array, src?: number, dst?: number): Uint8Array {
  const b = new Uint8Array(tcpHeaderLen(repr) + repr.payloadLen);
  for (let i = 0; i < b.length; i++) b[i] = (i * 29 + 3) & 0xff;
  expect(emitTcp(repr, b, 0, src, dst, opts)).toBe(tcpHeaderLen(repr));
  return b;
}

function viewsOf(b: Uint8Array, off: number, len: number): TcpParsed {
  const hl = tcpHeaderLenAt(b, off);
  return {
    srcPort: tcpSrcPort(b, off), dstPort: tcpDstPort(b, off), seq: tcpSeq(b, off), ack: tcpAck(b, off),
    flags: tcpFlags(b, off), window: tcpWindow(b, off), urgent: tcpUrgent(b, off), optionsLen: hl - 20,
    payloadLen: len - hl, optionsOff: off + 20, payloadOff: tcpPayloadOff(b, off),
  };
}

describe('tcp', () => {
  it('parse(emit(x)) == x at any offset, with options and checksum; views agree', () => {
    fc.assert(fc.property(withOptions, ip, ip, fc.nat(30), ([repr, opts], s, d, pre) => {
      const pkt = build(repr, opts, s, d);
      expect(refChecksum(pkt, pseudoWords(s, d, 6, pkt.length))).toBe(0);
      const buf = embed(pkt, pre, 6);
      const g = guarded(buf, pre, pre + pkt.length);
      const p = parseTcp(g, pre, pkt.length, s, d);
      expect(p).toEqual({ ...repr, optionsOff: pre + 20, payloadOff: pre + tcpHeaderLen(repr) });
      expect(viewsOf(g, pre, pkt.length)).toEqual(p);
      expect(buf.subarray(p.optionsOff, p.payloadOff)).toEqual(opts);
    }));
  });

  it('without addresses: checksum field 0, options zero-filled, structural parse only', () => {
    fc.assert(fc.property(reprArb, (repr) => {
      const pkt = build(repr);
      expect(tcpChecksum(pkt, 0)).toBe(0);
      expect(pkt.subarray(20, tcpHeaderLen(repr))).toEqual(new Uint8Array(repr.optionsLen));
      expect(parseTcp(pkt, 0, pkt.length)).toMatchObject(repr);
    }));
  });

  it('every prefix shorter than the header is Truncated', () => {
    fc.assert(fc.property(withOptions, fc.nat(6), ([repr, opts], pre) => {
      const buf = embed(build(repr, opts), pre, 5);
      for (let k = 0; k < tcpHeaderLen(repr); k++) {
        const g = guarded(buf, pre, pre + k);
        expect(checkTcp(g, pre, k)).toBe(WireError.Truncated);
        expect(attempt(() => parseTcp(g, pre, k))).toEqual({ ok: false, reason: WireError.Truncated });
      }
    }), { numRuns: 60 });
  });

  it('with addresses, shortened payload and every single-bit error are rejected', () => {
    fc.assert(fc.property(withOptions, ip, ip, fc.nat(), ([repr, opts], s, d, bit) => {
      const b = build(repr, opts, s, d);
      if (repr.payloadLen > 0) expect(checkTcp(b, 0, b.length - 1, s, d)).not.toBe(0);
      const i = bit % (b.length * 8);
      b[i >> 3] ^= 1 << (i & 7);
      expect(checkTcp(b, 0, b.length, s, d)).not.toBe(0);
      expect(attempt(() => parseTcp(guarded(b, 0, b.length), 0, b.length, s, d)).ok).toBe(false);
    }), { numRuns: 1000 });
  });

  it('random bytes: repr or WireParseError consistent with checkTcp; views agree', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(5), (data, pre) => {
      const buf = embed(data, pre, 3);
      const g = guarded(buf, pre, pre + data.length);
      const r = attempt(() => parseTcp(g, pre, data.length));
      expect(r.ok).toBe(checkTcp(g, pre, data.length) === 0);
      if (r.ok) expect(viewsOf(g, pre, data.length)).toEqual(r.value);
    }), { numRuns: 1000 });
  });

  it('reason codes', () => {
    const b = new Uint8Array(24);
    b[12] = 0x40;
    expect(checkTcp(b, 0, 24)).toBe(WireError.BadHeaderLen);
    b[12] = 0x60;
    expect(checkTcp(b, 0, 24)).toBe(0);
    b[12] = 0x70;
    expect(checkTcp(b, 0, 24)).toBe(WireError.Truncated);
    expect(checkTcp(b, 0, 25)).toBe(WireError.BadBounds);
  });

  it('known answer: SYN 10.0.0.1:40000 -> 10.0.0.2:80 with MSS 1460 has checksum 0x83f6', () => {
    const src = parseIpv4('10.0.0.1');
    const dst = parseIpv4('10.0.0.2');
    const want = hex('9c40 0050 12345678 00000000 6002 faf0 83f6 0000 020405b4');
    const out = new Uint8Array(24);
    emitTcp({ srcPort: 40000, dstPort: 80, seq: 0x12345678, ack: 0, flags: TcpFlag.Syn, window: 64240, urgent: 0,
      optionsLen: 4, payloadLen: 0 }, out, 0, src, dst, hex('020405b4'));
    expect(out).toEqual(want);
    expect(tcpFlags(want, 0) & TcpFlag.Syn).toBeTruthy();
    expect(tcpHeaderLenAt(want, 0)).toBe(24);
    tcpFillChecksum(out, 0, 24, src, dst);
    expect(out).toEqual(want);
    const all = Object.values(TcpFlag).reduce((a, f) => a | f, 0);
    expect(all).toBe(0x1ff);
  });

  it('emit rejects bad reprs with RangeError', () => {
    const r: TcpRepr = { srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: 0, window: 0, urgent: 0, optionsLen: 0, payloadLen: 0 };
    const b = new Uint8Array(64);
    for (const bad of [{ optionsLen: 2 }, { optionsLen: 44 }, { flags: 0x200 }, { seq: 2 ** 32 }, { window: -1 }]) {
      expect(() => emitTcp({ ...r, ...bad }, b, 0)).toThrow(RangeError);
    }
    expect(() => emitTcp({ ...r, payloadLen: 50 }, b, 0, 1, 2)).toThrow(RangeError);
    expect(() => emitTcp(r, b, 50)).toThrow(RangeError);
  });
});
