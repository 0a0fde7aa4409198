// An open-addressing index from a key hash to a pool entry, over one Int32Array: linear probing,
// slots hold entry + 1 (0 = empty), and deletion by backward shift (later members of the probe
// run move up into the hole), so there are no tombstones and heavy churn never lengthens probe
// runs. The key itself lives in the pool: callers probe `slots` from `hash & mask` comparing
// their own fields, and give delete() a function that recomputes an entry's hash.

export class SlotIndex {
  readonly slots: Int32Array;
  readonly mask: number;

  /** Room for `entries` keys at most 50 % load. */
  constructor(entries: number, private readonly hashOf: (e: number) => number) {
    let cap = 16;
    while (cap < entries * 2) cap <<= 1;
    this.mask = cap - 1;
    this.slots = new Int32Array(cap);
  }

  insert(hash: number, e: number): void {
    const mask = this.mask;
    let i = hash & mask;
    while (this.slots[i] !== 0) i = (i + 1) & mask;
    this.slots[i] = e + 1;
  }

  delete(e: number): void {
    const mask = this.mask;
    const idx = this.slots;
    let i = this.hashOf(e) & mask;
    while (idx[i] !== e + 1) {
      if (idx[i] === 0) return;
      i = (i + 1) & mask;
    }
    let hole = i;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const x = idx[j];
      if (x === 0) break;
      const home = this.hashOf(x - 1) & mask;
      // Move x into the hole unless its home lies cyclically in (hole, j].
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        idx[hole] = x;
        hole = j;
      }
    }
    idx[hole] = 0;
  }
}
