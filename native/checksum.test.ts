// The addon's checksums (native/checksum.cc) against the JS loops of router/wire/checksum.ts and
// the textbook RFC 1071 reference of router/wire/testkit.ts: random data, offsets (odd too),
// lengths (odd too), seeds; the batched fill and verify; argument checks.
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { fillChecksums, onesSum, onesSumBytes, useNativeSum } from '../router/wire/checksum.js';
import { native } from './index.js';

const n = native();

afterEach(() => {
  useNativeSum(null);
});

describe('native csumSum', () => {
  it('equals the JS sum on random data, offsets, lengths and seeds', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000 }), fc.nat(), fc.nat(), fc.integer({ min: 0, max: 0x3ffff }), (data, a, b, seed) => {
        // A Buffer over a larger ArrayBuffer at an odd byteOffset, so alignment varies too.
        const ab = new ArrayBuffer(data.length + 8);
        const buf = Buffer.from(ab, 3, data.length);
        buf.set(data);
        const off = data.length === 0 ? 0 : a % data.length;
        const len = data.length - off === 0 ? 0 : b % (data.length - off + 1);
        expect(n.csumSum(buf, off, len, seed)).toBe(onesSumBytes(buf, off, len, seed));
      }),
      { numRuns: 500 },
    );
  });

  it('handles 64 KB ranges and large seeds (fold)', () => {
    const buf = Buffer.alloc(65536, 0xff);
    expect(n.csumSum(buf, 0, 65536, 0)).toBe(0xffff);
    const seed = 2 ** 44 + 12345; // JS stays exact while the total is below 2^53
    expect(n.csumSum(buf, 1, 1001, seed)).toBe(onesSumBytes(buf, 1, 1001, seed));
  });

  it('onesSum routes through the addon once installed, with the same results', () => {
    const buf = Buffer.alloc(4096);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 131 + 7) & 0xff;
    const js = [onesSum(buf, 1, 1999, 5), onesSum(buf, 0, 4096), onesSum(buf, 2, 64)];
    let calls = 0;
    useNativeSum((b, o, l, s) => {
      calls++;
      return n.csumSum(b, o, l, s);
    });
    expect([onesSum(buf, 1, 1999, 5), onesSum(buf, 0, 4096), onesSum(buf, 2, 64)]).toEqual(js);
    expect(calls).toBe(2); // 64 bytes stays in JS (below NATIVE_MIN_LEN)
  });

  it('rejects ranges outside the buffer and bad types', () => {
    const buf = Buffer.alloc(100);
    expect(() => n.csumSum(buf, 50, 51, 0)).toThrow(RangeError);
    expect(() => n.csumSum(buf, -1, 5, 0)).toThrow(TypeError);
    expect(() => n.csumSum(new Uint16Array(4) as unknown as Uint8Array, 0, 2, 0)).toThrow(TypeError);
  });
});

describe('native csumBatch', () => {
  const gen = fc.array(fc.record({ len: fc.integer({ min: 2, max: 1500 }), seed: fc.integer({ min: 0, max: 0xffff }), gap: fc.nat({ max: 5 }) }), { minLength: 1, maxLength: 40 });

  it('fills like the JS fillChecksums, and verify sums the filled ranges to 0xffff', () => {
    fc.assert(
      fc.property(gen, fc.integer({ min: 0, max: 2 ** 31 }), (segs, salt) => {
        const total = segs.reduce((s, x) => s + x.len + x.gap, 0);
        const a = Buffer.alloc(total);
        for (let i = 0; i < total; i++) a[i] = (i * 2654435761 + salt) >>> 24;
        const b = Buffer.from(a);
        const offs = new Int32Array(segs.length);
        const lens = new Int32Array(segs.length);
        const seeds = new Uint32Array(segs.length);
        let o = 0;
        segs.forEach((x, i) => {
          o += x.gap;
          offs[i] = o;
          lens[i] = x.len;
          seeds[i] = x.seed;
          o += x.len;
        });
        fillChecksums(a, offs, lens, seeds, segs.length, 0); // JS
        expect(n.csumBatch(b, offs, lens, seeds.slice(), segs.length, 0)).toBe(segs.length);
        expect(b.equals(a)).toBe(true);
        const out = seeds.slice();
        n.csumBatch(b, offs, lens, out, segs.length, -1);
        expect([...out]).toEqual(segs.map(() => 0xffff));
      }),
      { numRuns: 200 },
    );
  });

  it('UDP form stores 0xffff for a computed 0', () => {
    const buf = Buffer.alloc(8); // sums to 0 with seed 0xffff... choose seed so ~sum == 0
    const seeds = new Uint32Array([0xffff]);
    n.csumBatch(buf, new Int32Array([0]), new Int32Array([8]), seeds, 1, -2 - 6);
    expect(buf.readUInt16BE(6)).toBe(0xffff);
    const buf2 = Buffer.alloc(8);
    n.csumBatch(buf2, new Int32Array([0]), new Int32Array([8]), new Uint32Array([0xffff]), 1, 6);
    expect(buf2.readUInt16BE(6)).toBe(0);
  });

  it('checks every range before touching any byte', () => {
    const buf = Buffer.alloc(100, 1);
    const copy = Buffer.from(buf);
    expect(() => n.csumBatch(buf, new Int32Array([0, 90]), new Int32Array([20, 20]), new Uint32Array(2), 2, 0)).toThrow(RangeError);
    expect(() => n.csumBatch(buf, new Int32Array([0]), new Int32Array([1]), new Uint32Array(1), 1, 0)).toThrow(RangeError);
    expect(() => n.csumBatch(buf, new Int32Array([0]), new Int32Array([10]), new Uint32Array(1), 2, 0)).toThrow(RangeError);
    expect(buf.equals(copy)).toBe(true);
  });
});
