// Small, dependency-free statistics for the bench. Every function ignores NaN inputs and
// returns NaN when nothing is left, so a failed run never turns into a fake zero.

function clean(xs: readonly number[]): number[] {
  return xs.filter((x) => typeof x === 'number' && !Number.isNaN(x)).sort((a, b) => a - b);
}

/** Median; the mean of the two middle values for an even count. */
export function median(xs: readonly number[]): number {
  const s = clean(xs);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Percentile p in [0, 100] by linear interpolation between closest ranks (the "R-7" / NumPy
 * default definition): rank = p/100 * (n-1). percentile(xs, 50) equals median(xs).
 */
export function percentile(xs: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be in [0, 100], got ${p}`);
  const s = clean(xs);
  if (s.length === 0) return NaN;
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

export function mean(xs: readonly number[]): number {
  const s = clean(xs);
  if (s.length === 0) return NaN;
  return s.reduce((a, b) => a + b, 0) / s.length;
}

export function min(xs: readonly number[]): number {
  const s = clean(xs);
  return s.length ? s[0] : NaN;
}

export function max(xs: readonly number[]): number {
  const s = clean(xs);
  return s.length ? s[s.length - 1] : NaN;
}

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(xs: readonly number[]): Summary {
  return {
    n: clean(xs).length,
    min: min(xs),
    p50: percentile(xs, 50),
    p90: percentile(xs, 90),
    p99: percentile(xs, 99),
    max: max(xs),
    mean: mean(xs),
  };
}

/**
 * Median of each numeric field over several run records (undefined / NaN values are skipped).
 * Used to fold `--runs N` repeats into one figure per field.
 */
export function medianOfRecords<K extends string>(records: readonly Partial<Record<K, number>>[], keys: readonly K[]): Partial<Record<K, number>> {
  const out: Partial<Record<K, number>> = {};
  for (const k of keys) {
    const vals = records.map((r) => r[k]).filter((v): v is number => typeof v === 'number' && !Number.isNaN(v));
    if (vals.length) out[k] = median(vals);
  }
  return out;
}
