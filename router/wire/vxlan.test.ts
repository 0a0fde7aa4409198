import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { WireError } from './error.js';
import { attempt, embed, guarded, hex } from './testkit.js';
import {
  VXLAN_HEADER_LEN, VXLAN_MAX_VNI, checkVxlan, emitVxlan, parseVxlan, vxlanFlags, vxlanHeaderLen, vxlanVni,
  writeVxlanHeader,
} from './vxlan.js';

const vniArb = fc.nat(VXLAN_MAX_VNI);

function build(vni: number, payload: number): Uint8Array {
  const b = new Uint8Array(VXLAN_HEADER_LEN + payload).fill(0x77);
  expect(emitVxlan({ vni }, b, 0)).toBe(VXLAN_HEADER_LEN);
  return b;
}

describe('vxlan', () => {
  it('parse(emit(x)) == x at any offset; views agree', () => {
    fc.assert(fc.property(vniArb, fc.nat(64), fc.nat(40), (vni, pl, pre) => {
      const buf = embed(build(vni, pl), pre, 9);
      const g = guarded(buf, pre, pre + 8 + pl);
      expect(parseVxlan(g, pre, 8 + pl)).toEqual({ vni, payloadOff: pre + 8, payloadLen: pl });
      expect(checkVxlan(g, pre, 8 + pl)).toBe(0);
      expect(vxlanVni(g, pre)).toBe(vni);
      expect(vxlanFlags(g, pre)).toBe(0x08);
    }));
  });

  it('every truncated header is rejected', () => {
    fc.assert(fc.property(vniArb, fc.nat(10), (vni, pre) => {
      const buf = embed(build(vni, 0), pre, 20);
      for (let k = 0; k < VXLAN_HEADER_LEN; k++) {
        const g = guarded(buf, pre, pre + k);
        expect(checkVxlan(g, pre, k)).toBe(WireError.Truncated);
        expect(attempt(() => parseVxlan(g, pre, k))).toEqual({ ok: false, reason: WireError.Truncated });
      }
    }));
  });

  it('any flags byte other than exactly 0x08 is BadFlags (exhaustive)', () => {
    const b = build(0x123456, 0);
    for (let f = 0; f < 256; f++) {
      b[0] = f;
      expect(checkVxlan(b, 0, 8)).toBe(f === 0x08 ? 0 : WireError.BadFlags);
    }
  });

  it('any nonzero reserved bit is BadReserved (each of the 32 bits, exhaustive)', () => {
    for (const byte of [1, 2, 3, 7]) {
      for (let bit = 0; bit < 8; bit++) {
        const b = build(0xabcdef, 4);
        b[byte] = 1 << bit;
        expect(checkVxlan(b, 0, 12)).toBe(WireError.BadReserved);
        expect(attempt(() => parseVxlan(b, 0, 12))).toEqual({ ok: false, reason: WireError.BadReserved });
      }
    }
  });

  it('random headers: accepted iff flags == 0x08 and reserved bits are all zero', () => {
    const hdr = fc.oneof(
      fc.uint8Array({ minLength: 8, maxLength: 16 }),
      fc.tuple(vniArb, fc.nat(63), fc.nat(255)).map(([vni, bit, v]) => {
        const b = build(vni, 0);
        b[bit >> 3] ^= 1 << (bit & 7);
        if (v < 16) b[v % 8] = 0;
        return b;
      }),
    );
    fc.assert(fc.property(hdr, fc.nat(5), (data, pre) => {
      const buf = embed(data, pre, 2);
      const g = guarded(buf, pre, pre + data.length);
      const valid = data[0] === 0x08 && data[1] === 0 && data[2] === 0 && data[3] === 0 && data[7] === 0;
      expect(checkVxlan(g, pre, data.length) === 0).toBe(valid);
      const r = attempt(() => parseVxlan(g, pre, data.length));
      expect(r.ok).toBe(valid);
      if (r.ok) expect(r.value.vni).toBe((data[4] << 16) | (data[5] << 8) | data[6]);
    }), { numRuns: 1000 });
  });

  it('known answer: VNI 0x1234 header bytes; writeVxlanHeader overwrites stale bytes in place', () => {
    const pkt = hex('0800 0000 0012 3400');
    expect(parseVxlan(pkt, 0, 8)).toEqual({ vni: 0x1234, payloadOff: 8, payloadLen: 0 });
    const slab = new Uint8Array(64).fill(0xff);
    expect(writeVxlanHeader(slab, 42, 5000)).toBe(8);
    expect(slab.subarray(42, 50)).toEqual(hex('0800 0000 0013 8800'));
    expect(slab[41]).toBe(0xff);
    expect(slab[50]).toBe(0xff);
    expect(vxlanVni(slab, 42)).toBe(5000);
    expect(vxlanHeaderLen()).toBe(8);
  });

  it('emit rejects out-of-range VNIs and short buffers; check rejects bad windows', () => {
    expect(() => emitVxlan({ vni: 0x1000000 }, new Uint8Array(8), 0)).toThrow(RangeError);
    expect(() => emitVxlan({ vni: -1 }, new Uint8Array(8), 0)).toThrow(RangeError);
    expect(() => emitVxlan({ vni: 1 }, new Uint8Array(8), 1)).toThrow(RangeError);
    expect(checkVxlan(new Uint8Array(8), 1, 8)).toBe(WireError.BadBounds);
  });
});
