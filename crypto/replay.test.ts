import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { REPLAY_WINDOW, Replay, ReplayWindow } from './replay.js';

/** The obvious model: a set of accepted numbers and the highest one. */
class Model {
  seen = new Set<number>();
  top = 0;
  accept(seq: number): number {
    if (seq === 0) return Replay.TooOld;
    if (seq <= this.top && this.top - seq >= REPLAY_WINDOW) return Replay.TooOld;
    if (this.seen.has(seq)) return Replay.Duplicate;
    this.seen.add(seq);
    if (seq > this.top) this.top = seq;
    return Replay.Ok;
  }
}

describe('ReplayWindow', () => {
  it('window is at least 1024 packets (4064)', () => {
    expect(REPLAY_WINDOW).toBeGreaterThanOrEqual(1024);
    expect(REPLAY_WINDOW).toBe(4064);
  });

  it('in order: each accepted once, second copy a Duplicate', () => {
    const w = new ReplayWindow();
    for (let s = 1; s <= 10_000; s++) {
      expect(w.check(s)).toBe(Replay.Ok);
      expect(w.commit(s)).toBe(Replay.Ok);
      expect(w.commit(s)).toBe(Replay.Duplicate);
    }
    expect(w.highest).toBe(10_000);
  });

  it('seq 0 is never accepted', () => {
    const w = new ReplayWindow();
    expect(w.check(0)).toBe(Replay.TooOld);
    expect(w.commit(0)).toBe(Replay.TooOld);
  });

  it('edges: top-REPLAY_WINDOW+1 accepted, top-REPLAY_WINDOW too old', () => {
    const w = new ReplayWindow();
    const top = 100_000;
    w.commit(top);
    expect(w.check(top - REPLAY_WINDOW)).toBe(Replay.TooOld);
    expect(w.commit(top - REPLAY_WINDOW + 1)).toBe(Replay.Ok);
    expect(w.commit(top - REPLAY_WINDOW + 1)).toBe(Replay.Duplicate);
  });

  it('check changes nothing: only commit advances', () => {
    const w = new ReplayWindow();
    w.commit(5);
    expect(w.check(1_000_000)).toBe(Replay.Ok);
    expect(w.highest).toBe(5);
    expect(w.check(4)).toBe(Replay.Ok); // still inside the window: the failed packet did not move it
  });

  it('a jump past the whole ring clears it: old bits do not alias onto new numbers', () => {
    const w = new ReplayWindow();
    for (let s = 1; s <= 4096; s++) w.commit(s);
    const far = 4096 * 3 + 7;
    expect(w.commit(far)).toBe(Replay.Ok);
    for (let s = far - REPLAY_WINDOW + 1; s < far; s++) expect(w.check(s)).toBe(Replay.Ok);
  });

  it('near 2^32-1', () => {
    const w = new ReplayWindow();
    const max = 0xffffffff;
    expect(w.commit(max - 1)).toBe(Replay.Ok);
    expect(w.commit(max)).toBe(Replay.Ok);
    expect(w.commit(max)).toBe(Replay.Duplicate);
    expect(w.commit(max - 2)).toBe(Replay.Ok);
    expect(w.check(max - REPLAY_WINDOW)).toBe(Replay.TooOld);
  });

  it('property: agrees with the set model on random streams (duplicates, reordering, jumps)', () => {
    const step = fc.oneof(
      fc.integer({ min: 1, max: 40 }).map((d) => ({ kind: 'fwd' as const, d })),
      fc.integer({ min: 0, max: REPLAY_WINDOW + 50 }).map((d) => ({ kind: 'back' as const, d })),
      fc.integer({ min: 1, max: 20_000 }).map((d) => ({ kind: 'jump' as const, d })),
    );
    fc.assert(fc.property(fc.array(step, { maxLength: 400 }), fc.integer({ min: 0, max: 0xfff00000 }), (steps, base) => {
      const w = new ReplayWindow();
      const m = new Model();
      let cur = base;
      for (const s of steps) {
        const seq = s.kind === 'back' ? Math.max(0, cur - s.d) : (cur = cur + s.d);
        if (seq > 0xffffffff) break;
        const expected = m.accept(seq);
        expect(w.check(seq)).toBe(expected); // check predicts commit
        expect(w.commit(seq)).toBe(expected);
      }
    }), { numRuns: 300 });
  });

  it('property: any permutation of a window-sized burst is accepted exactly once', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: 2000 }), fc.nat(), (base, n, seed) => {
      const seqs = Array.from({ length: n }, (_, i) => base + i);
      let x = seed | 1;
      for (let i = seqs.length - 1; i > 0; i--) {
        x = (Math.imul(x, 1103515245) + 12345) >>> 0;
        const j = x % (i + 1);
        [seqs[i], seqs[j]] = [seqs[j], seqs[i]];
      }
      const w = new ReplayWindow();
      for (const s of seqs) expect(w.commit(s)).toBe(Replay.Ok);
      for (const s of seqs) expect(w.commit(s)).toBe(Replay.Duplicate);
    }), { numRuns: 50 });
  });
});
