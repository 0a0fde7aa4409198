// mh: Maglev consistent hashing (Eisenbud et al., NSDI 2016, §3.4) as IPVS ip_vs_mh.c uses it.
// Each backend has a permutation of the table positions given by two hashes of its identity
// (ip:port, not its slot, so a backend's permutation never depends on who else is in the set):
// offset = h1 % M, skip = h2 % (M - 1) + 1. Backends take turns claiming their next unclaimed
// position until the table is full; a heavier backend takes weight/gcd turns per round (IPVS
// mh), so it owns proportionally more of the table. Removing one of N backends moves about 1/N
// of the keys (those it owned plus a small churn). The table size M is prime (>= 65537;
// M > 100·N keeps the imbalance near 1%).
import { fmix32 } from '../router/wire/flow.js';
import { BackendSet, gcd } from './backends.js';

export const MH_DEFAULT_TABLE_SIZE = 65537;
/** Turns per round are scaled so the heaviest backend takes at most this many. */
const MAX_TURNS = 256;

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/** 32-bit finaliser (murmur3 fmix32) over two words and a seed. */
export function mix32(a: number, b: number, seed: number): number {
  let h = Math.imul(a ^ seed, 0xcc9e2d51);
  return fmix32(Math.imul((h << 15) | (h >>> 17), 0x1b873593) ^ b);
}

export class MaglevScheduler {
  readonly name = 'mh';
  /** Position -> backend slot (-1 when the set has no weighted backend). */
  readonly table: Int32Array;
  private readonly m: number;
  /** Per backend slot: current position in its permutation, skip, turns per round. */
  private pos: Int32Array;
  private skip: Int32Array;
  private turns: Int32Array;

  constructor(private readonly set: BackendSet, size = MH_DEFAULT_TABLE_SIZE, private readonly hashPort = false) {
    if (!(isPrime(size) && size >= MH_DEFAULT_TABLE_SIZE && size <= 1 << 24)) {
      throw new RangeError(`mh table size must be a prime in 65537..2^24: ${size}`);
    }
    this.m = size;
    this.table = new Int32Array(size).fill(-1);
    this.pos = new Int32Array(set.capacity);
    this.skip = new Int32Array(set.capacity);
    this.turns = new Int32Array(set.capacity);
    this.rebuild();
  }

  /** Repopulates the table (control path; ~M·ln M steps, a few ms at M = 65537). */
  rebuild(): void {
    const set = this.set;
    const m = this.m;
    const t = this.table;
    t.fill(-1);
    let g = 0;
    let mw = 0;
    let n = 0;
    for (let i = 0; i < set.count; i++) {
      const w = set.weight[i];
      if (w <= 0) continue;
      g = gcd(g, w);
      mw = Math.max(mw, w);
      n++;
    }
    if (n === 0) return;
    const scale = mw / g > MAX_TURNS ? MAX_TURNS / (mw / g) : 1;
    for (let i = 0; i < set.count; i++) {
      const w = set.weight[i];
      if (w <= 0) continue;
      const ip = set.ip[i];
      const port = set.port[i];
      this.pos[i] = mix32(ip, port, 0x2545f491) % m;
      this.skip[i] = (mix32(ip, port, 0x9e3779b9) % (m - 1)) + 1;
      this.turns[i] = Math.max(1, Math.round((w / g) * scale));
    }
    let filled = 0;
    for (;;) {
      for (let i = 0; i < set.count; i++) {
        if (set.weight[i] <= 0) continue;
        for (let k = this.turns[i]; k > 0; k--) {
          let c = this.pos[i];
          const s = this.skip[i];
          while (t[c] >= 0) {
            c += s;
            if (c >= m) c -= m;
          }
          t[c] = i;
          c += s;
          if (c >= m) c -= m;
          this.pos[i] = c;
          if (++filled === m) return;
        }
      }
    }
  }

  /** Backend slot for the source, -1 when none. A drained-since-rebuild owner falls through. */
  pick(srcIp: number, srcPort: number): number {
    const t = this.table;
    const m = this.m;
    let c = mix32(srcIp, this.hashPort ? srcPort : 0, 0x7f4a7c15) % m;
    for (let k = 0; k < m; k++) {
      const i = t[c];
      if (i < 0) return -1;
      if (this.set.weight[i] > 0) return i;
      if (++c === m) c = 0;
    }
    return -1;
  }
}
