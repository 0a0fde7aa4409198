import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { sameBytes } from './bytes.js';

describe('sameBytes', () => {
  it('agrees with Buffer.compare on any two ranges', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 48 }), fc.nat(48), fc.nat(48), fc.nat(24), (bytes, ai, bi, n) => {
      // Two copies, one with a byte changed half of the time, so both answers occur.
      const a = Buffer.concat([Buffer.from(bytes), Buffer.from(bytes)]);
      const b = Buffer.from(a);
      if (n > 0 && bi + n <= b.length && (ai & 1) === 0) b[bi + (ai % n)] ^= 1;
      if (ai + n > a.length || bi + n > b.length) return;
      expect(sameBytes(a, ai, b, bi, n)).toBe(a.compare(b, bi, bi + n, ai, ai + n) === 0);
    }));
  });

  it('an empty range is equal; one differing byte is not', () => {
    expect(sameBytes(Buffer.from([1]), 0, Buffer.from([2]), 0, 0)).toBe(true);
    expect(sameBytes(Buffer.from([1, 2, 3]), 0, Buffer.from([9, 1, 2, 4]), 1, 3)).toBe(false);
    expect(sameBytes(Buffer.from([1, 2, 3]), 0, Buffer.from([9, 1, 2, 3]), 1, 3)).toBe(true);
  });
});
