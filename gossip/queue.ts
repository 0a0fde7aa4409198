// Transmit-limited broadcast queue (the piggyback queue of SWIM).
//
// Each item is an encoded message with an invalidation key (e.g. "m:<node id>" for membership
// messages, "t:<table>\0<key>" for table entries): enqueuing a newer message with the same key
// drops the older one. take() fills a byte budget preferring items sent the fewest times and,
// among those, the newest; an item is dropped after retransmitLimit() sends.
//
// Items live in one array per transmit count. Moving or invalidating an item leaves a stale
// reference behind (recognised by `live` / `transmits`), which compaction removes once stale
// references outnumber live ones, so every operation is amortised O(1) per item touched.

interface Item {
  key: string;
  msg: Uint8Array;
  transmits: number;
  live: boolean;
}

/** Smallest message worth looking for when the remaining budget is this small. */
const MIN_MSG = 8;
/** Stop scanning a bucket after this many items that did not fit. */
const MAX_SKIPS = 32;

export class BroadcastQueue {
  private readonly byKey = new Map<string, Item>();
  private buckets: Item[][] = [];
  private stale = 0;

  constructor(private readonly limit: () => number) {}

  get size(): number {
    return this.byKey.size;
  }

  enqueue(key: string, msg: Uint8Array): void {
    const old = this.byKey.get(key);
    if (old) {
      old.live = false;
      this.stale++;
    }
    const item: Item = { key, msg, transmits: 0, live: true };
    this.byKey.set(key, item);
    (this.buckets[0] ??= []).push(item);
  }

  /** Times the item queued under key has been sent, or undefined when none is queued. */
  transmits(key: string): number | undefined {
    return this.byKey.get(key)?.transmits;
  }

  /**
   * Append messages to `out` while their total cost (message length + perMsg each) fits in
   * budget and out has fewer than maxParts entries. Returns the bytes used.
   */
  take(budget: number, perMsg: number, out: Uint8Array[], maxParts: number): number {
    const limit = this.limit();
    const taken: Item[] = [];
    let used = 0;
    outer: for (let t = 0; t < this.buckets.length; t++) {
      const arr = this.buckets[t];
      if (!arr) continue;
      let skips = 0;
      for (let i = arr.length - 1; i >= 0; i--) {
        if (budget - used < perMsg + MIN_MSG || out.length >= maxParts) break outer;
        const it = arr[i];
        const atTail = i === arr.length - 1;
        if (!it.live || it.transmits !== t) {
          // A stale slot; trim it when it is at the tail (where takes happen).
          if (atTail) {
            arr.pop();
            this.stale--;
          }
          continue;
        }
        if (it.transmits >= limit) {
          this.drop(it);
          continue;
        }
        const cost = it.msg.length + perMsg;
        if (used + cost > budget) {
          if (++skips > MAX_SKIPS) break;
          continue;
        }
        used += cost;
        taken.push(it);
        out.push(it.msg);
        if (atTail) arr.pop();
        else this.stale++;
      }
    }
    // Taken newest-first; append oldest-first so the next bucket keeps the same recency order.
    for (let i = taken.length - 1; i >= 0; i--) {
      const it = taken[i];
      it.transmits++;
      if (it.transmits >= limit) {
        it.live = false;
        if (this.byKey.get(it.key) === it) this.byKey.delete(it.key);
      } else (this.buckets[it.transmits] ??= []).push(it);
    }
    if (this.stale > 1024 && this.stale > this.byKey.size) this.compact();
    return used;
  }

  private drop(it: Item): void {
    it.live = false;
    this.stale++;
    if (this.byKey.get(it.key) === it) this.byKey.delete(it.key);
  }

  private compact(): void {
    this.buckets = this.buckets.map((arr, t) => (arr ? arr.filter((it) => it.live && it.transmits === t) : arr));
    this.stale = 0;
  }

  clear(): void {
    this.byKey.clear();
    this.buckets = [];
    this.stale = 0;
  }
}
