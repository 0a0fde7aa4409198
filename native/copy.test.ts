// The addon's batched copy (native/copy.cc) against Buffer.copyWithin applied range by range, and
// router/copy.ts routing through it: random ranges (overlapping ones too), argument checks.
// (router/offload.test.ts checks that segmentTcp4 writes the same bytes with and without it.)
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { copyRanges, nativeCopyActive, useNativeCopy } from '../router/copy.js';
import { native } from './index.js';

const n = native();

afterEach(() => {
  useNativeCopy(null);
});

const range = fc.record({ src: fc.nat(511), dst: fc.nat(511), len: fc.nat(511) });

describe('native copyBatch', () => {
  it('equals copyWithin applied in order, overlapping ranges included (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1024, maxLength: 1024 }), fc.array(range, { maxLength: 40 }), (data, rs) => {
        const a = Buffer.from(data);
        const b = Buffer.from(data);
        const src = Int32Array.from(rs, (r) => r.src);
        const dst = Int32Array.from(rs, (r) => r.dst);
        const lens = Int32Array.from(rs, (r) => r.len);
        for (let i = 0; i < rs.length; i++) a.copyWithin(dst[i], src[i], src[i] + lens[i]);
        expect(n.copyBatch(b, src, dst, lens, rs.length)).toBe(rs.length);
        expect(b.equals(a)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a range outside the buffer before moving anything, and arguments of the wrong kind', () => {
    const buf = Buffer.alloc(100, 7);
    buf[0] = 1;
    const ok = [0, 50, 10];
    const bad = [90, 0, 11]; // 90 + 11 > 100
    const src = Int32Array.from([ok[0], bad[0]]);
    const dst = Int32Array.from([ok[1], bad[1]]);
    const lens = Int32Array.from([ok[2], bad[2]]);
    expect(() => n.copyBatch(buf, src, dst, lens, 2)).toThrow(RangeError);
    expect(buf[50]).toBe(7); // the first, valid, range was not copied either
    expect(() => n.copyBatch(buf, Int32Array.of(-1), Int32Array.of(0), Int32Array.of(1), 1)).toThrow(RangeError);
    expect(() => n.copyBatch(buf, src, dst, lens, 3)).toThrow(RangeError); // count beyond the arrays
    expect(() => n.copyBatch(buf, Uint32Array.of(0) as unknown as Int32Array, dst, lens, 1)).toThrow(TypeError);
    expect(() => n.copyBatch([] as unknown as Buffer, src, dst, lens, 1)).toThrow(TypeError);
    expect(n.copyBatch(buf, src, dst, lens, 0)).toBe(0);
  });

  it('copyRanges routes through the addon once installed, with the results of copyWithin', () => {
    const run = (): string => {
      const buf = Buffer.from('abcdef');
      copyRanges(buf, Int32Array.of(0, 4), Int32Array.of(2, 0), Int32Array.of(2, 2), 2);
      return buf.toString();
    };
    expect(nativeCopyActive()).toBe(false);
    expect(run()).toBe('efabef');
    useNativeCopy(n.copyBatch);
    expect(nativeCopyActive()).toBe(true);
    expect(run()).toBe('efabef');
    // Routed for real: the addon's argument check answers, not copyWithin's clamping.
    expect(() => copyRanges(Buffer.alloc(4), Int32Array.of(0), Int32Array.of(2), Int32Array.of(4), 1)).toThrow(RangeError);
  });
});
