// Input generation for the fuzz targets: mutations of valid samples (bit flips, interesting
// bytes, truncation, extension, length-field corruption, splices of two samples, chunk
// duplication) and plain random bytes. Everything is drawn from one seeded PRNG, so a seed
// replays a run exactly (main.ts prints it).
import { SeededRandom } from '../gossip/transport.js';

/** Byte values that sit on parser boundaries. */
const INTERESTING8 = [0x00, 0x01, 0x02, 0x07, 0x08, 0x0f, 0x10, 0x20, 0x40, 0x7f, 0x80, 0x81, 0xfe, 0xff];
/** Values written over a 16/32-bit field: zero, one, max, sign edges, and lengths near the input's. */
const INTERESTING16 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x7fff, 0x8000, 0xfffe, 0xffff];

export class Mutator {
  readonly rng: SeededRandom;
  /** Scratch: the generated input lives in out[0..len) until the next call. */
  readonly out: Buffer;

  constructor(seed: number, private readonly samples: readonly Buffer[], readonly maxLen = 2048) {
    if (samples.length === 0) throw new Error('a mutator needs at least one valid sample');
    this.rng = new SeededRandom(seed);
    this.out = Buffer.alloc(maxLen * 2 + 64);
  }

  int(n: number): number {
    return this.rng.u32() % n;
  }

  sample(): Buffer {
    return this.samples[this.int(this.samples.length)];
  }

  /** Random bytes, length biased to small (most parsers gate on a few header bytes). */
  random(): number {
    const len = this.int(8) === 0 ? this.int(this.maxLen) : this.int(96);
    for (let i = 0; i < len; i++) this.out[i] = this.rng.u32() & 0xff;
    return len;
  }

  /** One to four stacked mutations of a valid sample; returns the length in `out`. */
  mutate(): number {
    const s = this.sample();
    let len = Math.min(s.length, this.maxLen);
    s.copy(this.out, 0, 0, len);
    const rounds = 1 + this.int(4);
    for (let r = 0; r < rounds; r++) len = this.once(len);
    return len;
  }

  /** `rounds` more stacked mutations of out[0..len) (a target's own mutation first, then these). */
  stack(len: number, rounds: number): number {
    for (let r = 0; r < rounds; r++) len = this.once(len);
    return len;
  }

  /** 1 in 8 random, else a mutated sample (the parsers' deeper code is only reached that way). */
  next(): number {
    return this.int(8) === 0 ? this.random() : this.mutate();
  }

  private once(len: number): number {
    const o = this.out;
    const at = len > 0 ? this.int(len) : 0;
    switch (this.int(9)) {
      case 0: // bit flip
        if (len > 0) o[at] ^= 1 << this.int(8);
        return len;
      case 1: // interesting byte
        if (len > 0) o[at] = INTERESTING8[this.int(INTERESTING8.length)];
        return len;
      case 2: // random byte
        if (len > 0) o[at] = this.rng.u32() & 0xff;
        return len;
      case 3: // truncation
        return this.int(len + 1);
      case 4: { // extension with random bytes
        const add = Math.min(1 + this.int(64), this.maxLen - len);
        for (let i = 0; i < add; i++) o[len + i] = this.rng.u32() & 0xff;
        return len + Math.max(0, add);
      }
      case 5: { // length-field corruption: a 16-bit (or 32-bit) field set to an edge or to len +- small
        if (len < 2) return len;
        const p = this.int(len - 1);
        const v = this.int(3) === 0 ? (len + this.int(9) - 4) & 0xffff : INTERESTING16[this.int(INTERESTING16.length)];
        if (this.int(4) === 0 && p + 4 <= len) o.writeUInt32BE(v === 0xffff ? 0xffffffff : v, p);
        else if (this.int(2) === 0) o.writeUInt16BE(v, p);
        else o.writeUInt16LE(v, p);
        return len;
      }
      case 6: { // splice: head of this input, tail of another sample
        const other = this.sample();
        if (other.length === 0) return len;
        const from = this.int(other.length);
        const n = Math.min(other.length - from, this.maxLen - at);
        other.copy(o, at, from, from + n);
        return at + n;
      }
      case 7: { // duplicate a chunk (repeated options, nested lengths)
        if (len === 0) return len;
        const n = Math.min(1 + this.int(Math.min(len - at, 32)), this.maxLen - len);
        if (n <= 0) return len;
        o.copyWithin(at + n, at, len);
        return len + n;
      }
      default: { // zero a run
        const n = Math.min(1 + this.int(8), len - at);
        o.fill(0, at, at + n);
        return len;
      }
    }
  }
}

/** One target's figures: every input is either accepted or rejected, and rejections are counted. */
export interface FuzzResult {
  name: string;
  inputs: number;
  /** Inputs the code under test refused (as it counted them, where it counts). */
  rejected: number;
  accepted: number;
  seconds: number;
  /** What went wrong: exceptions that escaped, counter sums that do not add up. Empty = pass. */
  failures: string[];
  note?: string;
}

export interface FuzzTarget {
  name: string;
  /** Full-run input count (the quick run divides it). */
  count: number;
  /** Run `count` inputs, or fewer if performance.now() passes `until` (ms; --minutes). */
  run(count: number, seed: number, until: number): Promise<FuzzResult>;
}

/** True every 1024 inputs once the time budget is spent. */
export function outOfTime(i: number, until: number): boolean {
  return (i & 1023) === 0 && performance.now() > until;
}

/** Records up to a few distinct failures, with the seed and input index to replay them. */
export class Failures {
  readonly list: string[] = [];
  private total = 0;

  add(what: string): void {
    this.total++;
    if (this.list.length < 5) this.list.push(what);
  }

  done(): string[] {
    return this.total > this.list.length ? [...this.list, `... ${this.total - this.list.length} more`] : this.list;
  }
}

export function hex(b: Buffer, len: number): string {
  return b.subarray(0, Math.min(len, 256)).toString('hex');
}
