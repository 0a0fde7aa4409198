// IPVS-equivalent schedulers over a BackendSet (net/netfilter/ipvs/ip_vs_{rr,wrr,lc,wlc,sh}.c;
// mh lives in maglev.ts). pick(srcIp, srcPort) is the hot-path call: numbers in, a backend slot
// out, -1 when no backend can take a new flow; it never allocates. Weight 0 (drained, removed or
// free slot) is never picked. Control path: after changing the set, call rebuild().
import { BackendSet, gcd } from './backends.js';
import { MaglevScheduler } from './maglev.js';

export { gcd };

export type SchedulerName = 'rr' | 'wrr' | 'lc' | 'wlc' | 'sh' | 'mh';
export const SCHEDULER_NAMES: readonly SchedulerName[] = ['rr', 'wrr', 'lc', 'wlc', 'sh', 'mh'];

export interface Scheduler {
  readonly name: SchedulerName;
  /** Backend slot for a new flow from srcIp:srcPort, or -1. Allocation-free. */
  pick(srcIp: number, srcPort: number): number;
  /** Recompute derived state after the set's membership or weights changed (control path). */
  rebuild(): void;
}

export interface SchedulerOptions {
  /** sh/mh: hash the source port too (IPVS sh-port / mh-port flags). Default false. */
  hashPort?: boolean;
  /** sh: bucket count, a power of two (IPVS: 256). */
  shBuckets?: number;
  /** mh: lookup table size, a prime >= 65537. */
  mhTableSize?: number;
}

export function createScheduler(name: SchedulerName, set: BackendSet, opts: SchedulerOptions = {}): Scheduler {
  switch (name) {
    case 'rr': return new RoundRobin(set);
    case 'wrr': return new WeightedRoundRobin(set);
    case 'lc': return new LeastConn(set);
    case 'wlc': return new WeightedLeastConn(set);
    case 'sh': return new SourceHash(set, opts.shBuckets ?? 256, opts.hashPort ?? false);
    case 'mh': return new MaglevScheduler(set, opts.mhTableSize, opts.hashPort ?? false);
    default: throw new RangeError(`unknown scheduler: ${String(name)}`);
  }
}

/** rr: equal rotation over backends with weight > 0. */
export class RoundRobin implements Scheduler {
  readonly name = 'rr';
  private last = -1;
  constructor(private readonly set: BackendSet) {}
  rebuild(): void {}
  pick(_srcIp: number, _srcPort: number): number {
    const n = this.set.count;
    const w = this.set.weight;
    let i = this.last;
    for (let k = 0; k < n; k++) {
      i = i + 1 >= n ? 0 : i + 1;
      if (w[i] > 0) return (this.last = i);
    }
    return -1;
  }
}

/**
 * wrr: IPVS's interleaved weighted round robin. A current weight cw steps down from the max
 * weight by the gcd of all weights on each pass over the set; a backend is chosen on a pass
 * when its weight >= cw. Over max/gcd passes each backend is chosen weight/gcd times.
 */
export class WeightedRoundRobin implements Scheduler {
  readonly name = 'wrr';
  private i = -1;
  private cw = 0;
  private mw = 0;
  private di = 1;
  constructor(private readonly set: BackendSet) {
    this.rebuild();
  }
  rebuild(): void {
    let mw = 0;
    let g = 0;
    for (let i = 0; i < this.set.count; i++) {
      const w = this.set.weight[i];
      if (w > 0) {
        mw = Math.max(mw, w);
        g = gcd(g, w);
      }
    }
    this.mw = mw;
    this.di = g || 1;
    if (this.cw > mw) this.cw = mw;
  }
  pick(_srcIp: number, _srcPort: number): number {
    const n = this.set.count;
    const w = this.set.weight;
    if (this.mw === 0 || n === 0) return -1;
    // Bounded: every max/gcd passes of n steps choose each weighted backend at least once.
    const limit = n * (Math.floor(this.mw / this.di) + 1);
    let i = this.i;
    let cw = this.cw;
    for (let k = 0; k < limit; k++) {
      i = i + 1 >= n ? 0 : i + 1;
      if (i === 0) {
        cw -= this.di;
        if (cw <= 0) cw = this.mw;
      }
      if (w[i] >= cw && w[i] > 0) {
        this.i = i;
        this.cw = cw;
        return i;
      }
    }
    this.i = i;
    this.cw = cw;
    return -1;
  }
}

/** IPVS overhead of a backend: active * 256 + inactive (ip_vs_dest_conn_overhead). */
function overhead(set: BackendSet, i: number): number {
  return set.active[i] * 256 + set.inactive[i];
}

/** lc: least overhead among backends with weight > 0; ties go to the lowest slot. */
export class LeastConn implements Scheduler {
  readonly name = 'lc';
  constructor(private readonly set: BackendSet) {}
  rebuild(): void {}
  pick(_srcIp: number, _srcPort: number): number {
    const set = this.set;
    let best = -1;
    let loh = 0;
    for (let i = 0; i < set.count; i++) {
      if (set.weight[i] <= 0) continue;
      const doh = overhead(set, i);
      if (best < 0 || doh < loh) {
        best = i;
        loh = doh;
      }
    }
    return best;
  }
}

/**
 * wlc: least overhead/weight, compared as loh * w_d > doh * w_least (no division). Products stay
 * below 2^53 (overhead < 2^37 for any realistic count, weight < 2^16), so plain doubles are exact.
 */
export class WeightedLeastConn implements Scheduler {
  readonly name = 'wlc';
  constructor(private readonly set: BackendSet) {}
  rebuild(): void {}
  pick(_srcIp: number, _srcPort: number): number {
    const set = this.set;
    let best = -1;
    let loh = 0;
    let lw = 0;
    for (let i = 0; i < set.count; i++) {
      const w = set.weight[i];
      if (w <= 0) continue;
      const doh = overhead(set, i);
      if (best < 0 || loh * w > doh * lw) {
        best = i;
        loh = doh;
        lw = w;
      }
    }
    return best;
  }
}

/** IPVS hash_32: multiplicative hash by the 32-bit golden ratio, top `bits` bits. */
export function hash32(v: number, bits: number): number {
  return Math.imul(v, 0x61c88647) >>> (32 - bits);
}

/**
 * sh: a bucket table (IPVS: 256) filled in slot order, each backend taking weight/gcd
 * consecutive buckets, indexed by a hash of the source address (and port with hashPort). If a
 * bucket's backend has been drained since the last rebuild, the next buckets are tried (IPVS
 * sh-fallback), so a drained backend never gets a new flow.
 */
export class SourceHash implements Scheduler {
  readonly name = 'sh';
  private readonly table: Int32Array;
  private readonly bits: number;
  constructor(private readonly set: BackendSet, buckets: number, private readonly hashPort: boolean) {
    if (!(Number.isInteger(buckets) && buckets >= 2 && (buckets & (buckets - 1)) === 0 && buckets <= 1 << 20)) {
      throw new RangeError(`sh buckets must be a power of two in 2..2^20: ${buckets}`);
    }
    this.bits = Math.log2(buckets);
    this.table = new Int32Array(buckets).fill(-1);
    this.rebuild();
  }
  rebuild(): void {
    const set = this.set;
    const live: number[] = [];
    let g = 0;
    for (let i = 0; i < set.count; i++) {
      if (set.weight[i] > 0) {
        live.push(i);
        g = gcd(g, set.weight[i]);
      }
    }
    if (live.length === 0) {
      this.table.fill(-1);
      return;
    }
    let d = 0;
    let used = 0;
    for (let b = 0; b < this.table.length; b++) {
      this.table[b] = live[d];
      if (++used >= set.weight[live[d]] / g) {
        d = (d + 1) % live.length;
        used = 0;
      }
    }
  }
  pick(srcIp: number, srcPort: number): number {
    const t = this.table;
    const mask = t.length - 1;
    let b = hash32(this.hashPort ? (srcIp + srcPort) | 0 : srcIp, this.bits);
    for (let k = 0; k <= mask; k++) {
      const i = t[b];
      if (i < 0) return -1;
      if (this.set.weight[i] > 0) return i;
      b = (b + 1) & mask;
    }
    return -1;
  }
}
