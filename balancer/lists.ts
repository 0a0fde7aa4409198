// Intrusive doubly-linked lists over typed arrays: entries 0..n-1 of a pool, each on at most one
// of `count` lists, O(1) push-to-tail / unlink / move-to-tail, no allocation. The connection
// table keeps one list per timeout class in last-activity order, so expiry and eviction read
// only list heads.

export const NO_LIST = 255;

export class PoolLists {
  /** Which list entry e is on (NO_LIST for none). */
  readonly listOf: Uint8Array;
  /** Per list: first (oldest) entry or -1, last entry or -1, length. */
  readonly head: Int32Array;
  readonly tail: Int32Array;
  readonly length: Int32Array;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;

  constructor(entries: number, count: number) {
    if (!(count >= 1 && count < NO_LIST)) throw new RangeError(`list count must be 1..254: ${count}`);
    this.listOf = new Uint8Array(entries).fill(NO_LIST);
    this.prev = new Int32Array(entries);
    this.next = new Int32Array(entries);
    this.head = new Int32Array(count).fill(-1);
    this.tail = new Int32Array(count).fill(-1);
    this.length = new Int32Array(count);
  }

  /** Appends e (which must be on no list) to list l. */
  pushTail(l: number, e: number): void {
    this.listOf[e] = l;
    this.next[e] = -1;
    this.prev[e] = this.tail[l];
    if (this.tail[l] >= 0) this.next[this.tail[l]] = e;
    else this.head[l] = e;
    this.tail[l] = e;
    this.length[l]++;
  }

  /** Takes e off its list, if any. */
  unlink(e: number): void {
    const l = this.listOf[e];
    if (l === NO_LIST) return;
    const p = this.prev[e];
    const n = this.next[e];
    if (p >= 0) this.next[p] = n;
    else this.head[l] = n;
    if (n >= 0) this.prev[n] = p;
    else this.tail[l] = p;
    this.listOf[e] = NO_LIST;
    this.length[l]--;
  }

  /** Moves e to the tail of list l (from wherever it was). */
  moveToTail(l: number, e: number): void {
    if (this.tail[l] === e) return;
    this.unlink(e);
    this.pushTail(l, e);
  }
}
