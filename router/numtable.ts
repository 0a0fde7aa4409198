// Open-addressing hash tables keyed by numbers, for lookups on the hot path without allocation.
// A key is (hi, lo): a MAC is hi = first 2 bytes, lo = last 4 bytes as int32; an IPv4 address
// is hi = 0, lo = the address as int32. Each entry carries two int32 values (e.g. VTEP address
// and a flags word). Inserts and deletes are control-path operations (they may grow the
// arrays); find() only reads typed arrays.

const EMPTY = 0;
const USED = 1;
const DELETED = 2;

export class NumTable {
  private hi: Int32Array;
  private lo: Int32Array;
  private state: Uint8Array;
  /** First value per slot; read it at the index find() returns. */
  a: Int32Array;
  /** Second value per slot. */
  b: Int32Array;
  private mask: number;
  private used = 0;
  private tombstones = 0;

  constructor(capacity = 64) {
    let cap = 16;
    while (cap < capacity * 2) cap <<= 1;
    this.mask = cap - 1;
    this.hi = this.lo = this.a = this.b = new Int32Array(0);
    this.state = new Uint8Array(0);
    this.allocate(cap);
  }

  /** Fresh arrays of `cap` slots (control path). */
  private allocate(cap: number): void {
    this.mask = cap - 1;
    this.hi = new Int32Array(cap);
    this.lo = new Int32Array(cap);
    this.state = new Uint8Array(cap);
    this.a = new Int32Array(cap);
    this.b = new Int32Array(cap);
  }

  get size(): number {
    return this.used;
  }

  private static hash(hi: number, lo: number): number {
    let h = Math.imul(lo ^ (hi << 16), 0x9e3779b1);
    h ^= h >>> 15;
    h = Math.imul(h, 0x85ebca77);
    return (h ^ (h >>> 13)) >>> 0;
  }

  /** Slot index of the key, or -1. Allocation-free. */
  find(hi: number, lo: number): number {
    const mask = this.mask;
    let i = NumTable.hash(hi, lo) & mask;
    for (let n = 0; n <= mask; n++) {
      const s = this.state[i];
      if (s === EMPTY) return -1;
      if (s === USED && this.lo[i] === (lo | 0) && this.hi[i] === (hi | 0)) return i;
      i = (i + 1) & mask;
    }
    return -1;
  }

  has(hi: number, lo: number): boolean {
    return this.find(hi, lo) >= 0;
  }

  /** Insert or replace; returns the slot. */
  set(hi: number, lo: number, a: number, b = 0): number {
    const found = this.find(hi, lo);
    if (found >= 0) {
      this.a[found] = a;
      this.b[found] = b;
      return found;
    }
    if ((this.used + this.tombstones + 1) * 2 > this.mask + 1) this.rehash();
    const mask = this.mask;
    let i = NumTable.hash(hi, lo) & mask;
    while (this.state[i] === USED) i = (i + 1) & mask;
    if (this.state[i] === DELETED) this.tombstones--;
    this.state[i] = USED;
    this.hi[i] = hi | 0;
    this.lo[i] = lo | 0;
    this.a[i] = a;
    this.b[i] = b;
    this.used++;
    return i;
  }

  delete(hi: number, lo: number): boolean {
    const i = this.find(hi, lo);
    if (i < 0) return false;
    this.state[i] = DELETED;
    this.used--;
    this.tombstones++;
    return true;
  }

  clear(): void {
    this.state.fill(EMPTY);
    this.used = 0;
    this.tombstones = 0;
  }

  /** Control path: every (hi, lo, a, b). */
  *entries(): Generator<[number, number, number, number]> {
    for (let i = 0; i <= this.mask; i++) {
      if (this.state[i] === USED) yield [this.hi[i], this.lo[i], this.a[i], this.b[i]];
    }
  }

  private rehash(): void {
    const old = { hi: this.hi, lo: this.lo, state: this.state, a: this.a, b: this.b };
    let cap = this.mask + 1;
    while ((this.used + 1) * 4 > cap) cap <<= 1;
    if (cap === this.mask + 1 && this.tombstones === 0) cap <<= 1;
    this.allocate(cap);
    this.used = 0;
    this.tombstones = 0;
    for (let i = 0; i < old.state.length; i++) {
      if (old.state[i] === USED) this.set(old.hi[i], old.lo[i], old.a[i], old.b[i]);
    }
  }
}
