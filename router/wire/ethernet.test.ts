import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ETH_HEADER_LEN, EtherType, MAC_BROADCAST, checkEth, emitEth, ethDst, ethHasVlan, ethHeaderLen, ethHeaderLenAt,
  ethPayloadOff, ethPayloadType, ethSrc, ethType, ethVlanTci, macIsBroadcast, macIsLocal, macIsMulticast,
  parseEth, setEthDst, setEthSrc, writeEthHeader, type EthernetRepr,
} from './ethernet.js';
import { WireError, WireParseError } from './error.js';
import { attempt, embed, guarded, hex } from './testkit.js';

const macArb = fc.tuple(fc.nat(0xffff), fc.nat(0xffffffff)).map(([h, l]) => h * 2 ** 32 + l);
const isTpid = (t: number): boolean => t === 0x8100 || t === 0x88a8;
const reprArb: fc.Arbitrary<EthernetRepr> = fc.record({
  dst: macArb,
  src: macArb,
  ethertype: fc.nat(0xffff),
  vlan: fc.option(fc.record({ tpid: fc.constantFrom(0x8100, 0x88a8), tci: fc.nat(0xffff) }), { nil: null }),
}).filter((r) => r.vlan !== null || !isTpid(r.ethertype));

function build(repr: EthernetRepr, payload: number): Uint8Array {
  const b = new Uint8Array(ethHeaderLen(repr) + payload).fill(0x33);
  emitEth(repr, b, 0);
  return b;
}

describe('ethernet', () => {
  it('parse(emit(x)) == x at any offset, payload delimited', () => {
    fc.assert(fc.property(reprArb, fc.nat(100), fc.nat(40), (repr, pl, pre) => {
      const buf = embed(build(repr, pl), pre, 7);
      const hl = ethHeaderLen(repr);
      expect(parseEth(guarded(buf, pre, pre + hl + pl), pre, hl + pl))
        .toEqual({ ...repr, payloadOff: pre + hl, payloadLen: pl });
    }));
  });

  it('every truncated header is rejected by check and parse, reading only the window', () => {
    fc.assert(fc.property(reprArb, fc.nat(20), (repr, pre) => {
      const buf = embed(build(repr, 0), pre, 30);
      for (let k = 0; k < ethHeaderLen(repr); k++) {
        const g = guarded(buf, pre, pre + k);
        expect(checkEth(g, pre, k)).toBe(WireError.Truncated);
        expect(attempt(() => parseEth(g, pre, k))).toEqual({ ok: false, reason: WireError.Truncated });
      }
    }));
  });

  it('random bytes: parse returns a consistent repr or throws WireParseError; views agree', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(9), (data, pre) => {
      const buf = embed(data, pre, 5);
      const g = guarded(buf, pre, pre + data.length);
      const r = attempt(() => parseEth(g, pre, data.length));
      expect(r.ok).toBe(checkEth(g, pre, data.length) === 0);
      if (!r.ok) return;
      const p = r.value;
      expect(p.payloadOff + p.payloadLen).toBe(pre + data.length);
      expect(p.dst).toBe(ethDst(g, pre));
      expect(p.src).toBe(ethSrc(g, pre));
      expect(p.ethertype).toBe(ethPayloadType(g, pre));
      expect(p.vlan !== null).toBe(ethHasVlan(g, pre));
      expect(p.payloadOff).toBe(ethPayloadOff(g, pre));
      expect(ethHeaderLenAt(g, pre)).toBe(ethHeaderLen(p));
      if (p.vlan) expect(p.vlan).toEqual({ tpid: ethType(g, pre), tci: ethVlanTci(g, pre) });
      else expect(p.ethertype).toBe(ethType(g, pre));
    }), { numRuns: 1000 });
  });

  it('byte corruption never makes parse throw anything but WireParseError', () => {
    fc.assert(fc.property(reprArb, fc.nat(30), fc.nat(), fc.nat(255), (repr, pl, pos, val) => {
      const b = build(repr, pl);
      b[pos % b.length] = val;
      attempt(() => parseEth(guarded(b, 0, b.length), 0, b.length));
    }));
  });

  it('known answer: hand-built ARP broadcast and 802.1Q-tagged IPv4 headers', () => {
    const arp = hex('ffffffffffff 525400123456 0806');
    expect(checkEth(arp, 0, 14)).toBe(0);
    expect(ethDst(arp, 0)).toBe(MAC_BROADCAST);
    expect(ethSrc(arp, 0)).toBe(0x525400123456);
    expect(ethType(arp, 0)).toBe(EtherType.Arp);
    expect(ethHasVlan(arp, 0)).toBe(false);
    const tagged = hex('02000000000b 02000000000a 8100 a064 0800 45');
    expect(parseEth(tagged, 0, tagged.length)).toEqual({
      dst: 0x02000000000b, src: 0x02000000000a, ethertype: EtherType.Ipv4,
      vlan: { tpid: 0x8100, tci: 0xa064 }, payloadOff: 18, payloadLen: 1,
    });
    expect(checkEth(tagged, 0, 17)).toBe(WireError.Truncated);
    const out = new Uint8Array(18);
    emitEth({ dst: 0x02000000000b, src: 0x02000000000a, ethertype: 0x0800, vlan: { tpid: 0x8100, tci: 0xa064 } }, out, 0);
    expect(out).toEqual(tagged.subarray(0, 18));
  });

  it('setters and writeEthHeader write in place at an offset', () => {
    const b = new Uint8Array(40).fill(0xee);
    expect(writeEthHeader(b, 5, 0x0180c2000000, 0xfeedfacecafe, 0x86dd)).toBe(ETH_HEADER_LEN);
    expect(b.subarray(5, 19)).toEqual(hex('0180c2000000 feedfacecafe 86dd'));
    expect(b[4]).toBe(0xee);
    expect(b[19]).toBe(0xee);
    setEthDst(b, 5, 0x000000000001);
    setEthSrc(b, 5, MAC_BROADCAST);
    expect(ethDst(b, 5)).toBe(1);
    expect(ethSrc(b, 5)).toBe(MAC_BROADCAST);
    fc.assert(fc.property(macArb, macArb, (d, s) => {
      setEthDst(b, 3, d);
      setEthSrc(b, 3, s);
      expect([ethDst(b, 3), ethSrc(b, 3)]).toEqual([d, s]);
    }));
  });

  it('bad (off, len) is BadBounds, never a read', () => {
    const b = new Uint8Array(20);
    const g = guarded(b, 0, 0);
    for (const [off, len] of [[-1, 14], [0, 21], [7, 14], [1.5, 14], [0, -1], [NaN, 14], [0, Infinity]]) {
      expect(checkEth(g, off, len)).toBe(WireError.BadBounds);
      expect(attempt(() => parseEth(g, off, len))).toEqual({ ok: false, reason: WireError.BadBounds });
    }
  });

  it('emit rejects bad reprs and short buffers with RangeError', () => {
    const ok: EthernetRepr = { dst: 1, src: 2, ethertype: 0x0800, vlan: null };
    expect(() => emitEth(ok, new Uint8Array(13), 0)).toThrow(RangeError);
    expect(() => emitEth({ ...ok, dst: 2 ** 48 }, new Uint8Array(14), 0)).toThrow(RangeError);
    expect(() => emitEth({ ...ok, ethertype: 0x8100 }, new Uint8Array(14), 0)).toThrow(RangeError);
    expect(() => emitEth({ ...ok, vlan: { tpid: 0x9100, tci: 0 } }, new Uint8Array(18), 0)).toThrow(RangeError);
    expect(() => emitEth({ ...ok, vlan: { tpid: 0x8100, tci: 0 } }, new Uint8Array(17), 0)).toThrow(RangeError);
  });
});

describe('MAC helpers', () => {
  it('group / broadcast / locally administered bits', () => {
    expect(macIsMulticast(MAC_BROADCAST)).toBe(true);
    expect(macIsBroadcast(MAC_BROADCAST)).toBe(true);
    expect(macIsMulticast(0x01005e000001)).toBe(true);
    expect(macIsMulticast(0x525400123456)).toBe(false);
    expect(macIsLocal(0x525400123456)).toBe(true);
    expect(macIsLocal(0x00005e005301)).toBe(false);
    fc.assert(fc.property(macArb, (m) => {
      expect(macIsMulticast(m)).toBe((Math.floor(m / 2 ** 40) & 1) === 1);
    }));
  });
});
