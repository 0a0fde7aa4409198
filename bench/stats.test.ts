import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { max, mean, median, medianOfRecords, min, percentile, summarize } from './stats.js';

describe('median', () => {
  it('odd and even counts, unsorted input', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([7])).toBe(7);
  });
  it('ignores NaN and is NaN when empty', () => {
    expect(median([NaN, 5, 1])).toBe(3);
    expect(median([])).toBeNaN();
    expect(median([NaN])).toBeNaN();
  });
  it('does not reorder its input', () => {
    const xs = [3, 1, 2];
    median(xs);
    expect(xs).toEqual([3, 1, 2]);
  });
});

describe('percentile (linear interpolation between closest ranks)', () => {
  const xs = [10, 20, 30, 40, 50];
  it('known values', () => {
    expect(percentile(xs, 0)).toBe(10);
    expect(percentile(xs, 100)).toBe(50);
    expect(percentile(xs, 50)).toBe(30);
    expect(percentile(xs, 25)).toBe(20);
    expect(percentile(xs, 90)).toBeCloseTo(46, 10);
    expect(percentile([1, 2], 50)).toBe(1.5);
  });
  it('p99 of 1..1000 is 990.01 (NumPy default)', () => {
    const seq = Array.from({ length: 1000 }, (_, i) => i + 1);
    expect(percentile(seq, 99)).toBeCloseTo(990.01, 6);
    expect(percentile(seq, 50)).toBe(500.5);
  });
  it('rejects p outside [0, 100]', () => {
    expect(() => percentile(xs, 101)).toThrow(RangeError);
    expect(() => percentile(xs, -1)).toThrow(RangeError);
    expect(() => percentile(xs, NaN)).toThrow(RangeError);
  });
  it('p50 equals the median; monotone in p; within [min, max]', () => {
    fc.assert(fc.property(fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 50 }),
      fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }), (arr, p, q) => {
        expect(percentile(arr, 50)).toBeCloseTo(median(arr), 6);
        const [lo, hi] = p <= q ? [p, q] : [q, p];
        expect(percentile(arr, lo)).toBeLessThanOrEqual(percentile(arr, hi) + 1e-9);
        expect(percentile(arr, p)).toBeGreaterThanOrEqual(min(arr));
        expect(percentile(arr, p)).toBeLessThanOrEqual(max(arr));
      }));
  });
});

describe('summaries', () => {
  it('summarize and mean', () => {
    const s = summarize([1, 2, 3, 4]);
    expect(s).toMatchObject({ n: 4, min: 1, max: 4, p50: 2.5, mean: 2.5 });
    expect(mean([])).toBeNaN();
  });
  it('medianOfRecords folds runs field by field and skips missing values', () => {
    const recs = [{ a: 1, b: 10 }, { a: 3 }, { a: 2, b: NaN }, { a: 100, b: 30 }];
    expect(medianOfRecords(recs, ['a', 'b', 'c'] as const)).toEqual({ a: 2.5, b: 20 });
  });
});
