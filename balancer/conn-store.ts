// The connection table's storage: a fixed pool of entries in typed arrays (the memory bound),
// two open-addressing indexes over it (by the client tuple and by the reply tuple, SlotIndex:
// backward-shift deletion, so churn never degrades them) and the timed lists (half-open TCP,
// UDP, closing TCP) in last-activity order, so expiry and eviction read list heads only.
// Allocation-free after construction. The rules for when an entry changes list or state are
// balancer/conntrack.ts's; this file only stores, finds, times out and frees.
import { NO_LIST, PoolLists } from './lists.js';
import { SlotIndex } from './slot-index.js';
import { CtState, DEFAULT_CONNTABLE_CONFIG, type ConnListener, type ConnStats, type ConnTableConfig } from './conntrack-types.js';

/** Timed lists; an entry is on at most one (established TCP is on none). */
export const L_HALF = 0;
export const L_UDP = 1;
export const L_CLOSING = 2;

export function hash5(proto: number, a: number, pa: number, b: number, pb: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0xcc9e2d51);
  h = Math.imul((h << 15) | (h >>> 17), 0x1b873593) ^ b;
  h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
  h ^= (pa << 16) | pb;
  h = Math.imul(h ^ proto, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class ConnStore {
  readonly config: Readonly<ConnTableConfig>;
  readonly stats: ConnStats = {
    inserted: 0, refusedFull: 0, refusedReplyTuple: 0, evictedHalfOpen: 0, evictedUdp: 0, expiredHalfOpen: 0,
    expiredUdp: 0, closedFin: 0, closedRst: 0, stale: 0, removed: 0,
  };
  // Per-entry fields: read them at the slot lookup()/lookupReply() returns.
  readonly proto: Uint8Array;
  readonly clientIp: Int32Array;
  readonly clientPort: Uint16Array;
  readonly vip: Int32Array;
  readonly vipPort: Uint16Array;
  readonly backendIp: Int32Array;
  readonly backendPort: Uint16Array;
  readonly backendMacHi: Int32Array;
  readonly backendMacLo: Int32Array;
  /**
   * Where the backend sends replies: the client itself, or (hairpin SNAT for a backend on the
   * client's own host) the VIP and a port from allocHairpinPort.
   */
  readonly replyIp: Int32Array;
  readonly replyPort: Uint16Array;
  readonly svc: Int32Array;
  readonly backend: Int32Array;
  readonly state: Uint8Array;
  /** Last ACK number the client sent (its RCV.NXT): the seq of an RST toward the client. */
  readonly clientAck: Uint32Array;
  /** Last ACK number the backend sent: the seq of an RST toward the backend. */
  readonly backendAck: Uint32Array;
  protected readonly fins: Uint8Array;
  protected readonly expires: Float64Array;
  protected readonly lists: PoolLists;
  private readonly free: Int32Array;
  private freeTop: number;
  private used = 0;
  /** By the client tuple and by the reply tuple. */
  private readonly fwd: SlotIndex;
  private readonly rev: SlotIndex;

  constructor(config: Partial<ConnTableConfig>, protected readonly listener?: ConnListener) {
    const c = { ...DEFAULT_CONNTABLE_CONFIG, ...config };
    for (const [k, v] of Object.entries(c)) {
      if (!(Number.isFinite(v) && v > 0)) throw new RangeError(`conntrack ${k} must be > 0: ${v}`);
    }
    if (!Number.isInteger(c.maxEntries) || c.maxEntries > 1 << 24) throw new RangeError('conntrack maxEntries: integer <= 2^24');
    this.config = Object.freeze(c);
    const n = c.maxEntries;
    this.proto = new Uint8Array(n);
    this.clientIp = new Int32Array(n);
    this.clientPort = new Uint16Array(n);
    this.vip = new Int32Array(n);
    this.vipPort = new Uint16Array(n);
    this.backendIp = new Int32Array(n);
    this.backendPort = new Uint16Array(n);
    this.backendMacHi = new Int32Array(n);
    this.backendMacLo = new Int32Array(n);
    this.replyIp = new Int32Array(n);
    this.replyPort = new Uint16Array(n);
    this.svc = new Int32Array(n);
    this.backend = new Int32Array(n);
    this.state = new Uint8Array(n);
    this.clientAck = new Uint32Array(n);
    this.backendAck = new Uint32Array(n);
    this.fins = new Uint8Array(n);
    this.expires = new Float64Array(n);
    this.lists = new PoolLists(n, 3);
    this.free = new Int32Array(n);
    for (let i = 0; i < n; i++) this.free[i] = n - 1 - i;
    this.freeTop = n;
    this.fwd = new SlotIndex(n, (e) =>
      hash5(this.proto[e], this.clientIp[e], this.clientPort[e], this.vip[e], this.vipPort[e]));
    this.rev = new SlotIndex(n, (e) =>
      hash5(this.proto[e], this.backendIp[e], this.backendPort[e], this.replyIp[e], this.replyPort[e]));
  }

  get size(): number {
    return this.used;
  }
  get halfOpen(): number {
    return this.lists.length[L_HALF];
  }
  get udpFlows(): number {
    return this.lists.length[L_UDP];
  }

  // ---- hot path ----

  /** Entry for a client packet (proto, client ip:port -> vip:port), or -1. */
  lookup(proto: number, cIp: number, cPort: number, vip: number, vPort: number): number {
    const slots = this.fwd.slots;
    const mask = this.fwd.mask;
    let i = hash5(proto, cIp, cPort, vip, vPort) & mask;
    for (;;) {
      const e = slots[i] - 1;
      if (e < 0) return -1;
      if (this.clientIp[e] === (cIp | 0) && this.vip[e] === (vip | 0) && this.clientPort[e] === cPort
        && this.vipPort[e] === vPort && this.proto[e] === proto) return e;
      i = (i + 1) & mask;
    }
  }

  /** Entry for a reply (proto, backend ip:port -> reply ip:port, normally the client), or -1. */
  lookupReply(proto: number, bIp: number, bPort: number, rIp: number, rPort: number): number {
    const slots = this.rev.slots;
    const mask = this.rev.mask;
    let i = hash5(proto, bIp, bPort, rIp, rPort) & mask;
    for (;;) {
      const e = slots[i] - 1;
      if (e < 0) return -1;
      if (this.backendIp[e] === (bIp | 0) && this.replyIp[e] === (rIp | 0) && this.backendPort[e] === bPort
        && this.replyPort[e] === rPort && this.proto[e] === proto) return e;
      i = (i + 1) & mask;
    }
  }

  /**
   * A free slot for a new entry that will go on timed list l (bounded by `bound` entries): past
   * the bound the list's expired entries go, then its oldest; with no free slot, expired entries
   * of every list, then the oldest half-open one. -1 when nothing may be evicted (the table is
   * full of established connections, which are never evicted).
   */
  protected claim(l: number, bound: number, now: number): number {
    if (this.lists.length[l] >= bound) {
      this.expireList(l, now, 16);
      if (this.lists.length[l] >= bound) this.evictOldest(l);
    }
    if (this.freeTop === 0) {
      this.sweep(now, 64);
      if (this.freeTop === 0 && this.lists.length[L_HALF] > 0) this.evictOldest(L_HALF);
      if (this.freeTop === 0) return -1;
    }
    this.used++;
    return this.free[--this.freeTop];
  }

  /** Indexes entry e once its tuple fields are written. */
  protected index(e: number): void {
    this.fwd.insert(hash5(this.proto[e], this.clientIp[e], this.clientPort[e], this.vip[e], this.vipPort[e]), e);
    this.rev.insert(hash5(this.proto[e], this.backendIp[e], this.backendPort[e], this.replyIp[e], this.replyPort[e]), e);
  }

  /** Removes timed-out entries, at most `budget` (call once per batch). Returns how many. */
  sweep(now: number, budget = 64): number {
    let n = this.expireList(L_HALF, now, budget);
    n += this.expireList(L_UDP, now, budget - n);
    n += this.expireList(L_CLOSING, now, budget - n);
    return n;
  }

  /** Frees entry e (control path, or the stage after it reset a flow). */
  remove(e: number): void {
    const st = this.state[e];
    if (st === 0) return;
    this.fwd.delete(e);
    this.rev.delete(e);
    this.lists.unlink(e);
    const active = st === CtState.Established || st === CtState.Udp;
    this.listener?.countChange(this.svc[e], this.backend[e], active ? -1 : 0, active ? 0 : -1);
    this.state[e] = 0;
    this.free[this.freeTop++] = e;
    this.used--;
    this.stats.removed++;
  }

  // ---- control path ----

  /** Slots of all entries for which pred(slot) holds (e.g. a vanished backend's flows). */
  select(pred: (e: number) => boolean): number[] {
    const out: number[] = [];
    for (let e = 0; e < this.state.length; e++) if (this.state[e] !== 0 && pred(e)) out.push(e);
    return out;
  }

  /** Milliseconds until entry e expires (Infinity for untimed states), for inspection/tests. */
  ttl(e: number, now: number): number {
    return this.lists.listOf[e] === NO_LIST ? Infinity : this.expires[e] - now;
  }

  // ---- timed lists ----

  private expireList(l: number, now: number, budget: number): number {
    let n = 0;
    while (n < budget) {
      const e = this.lists.head[l];
      if (e < 0 || this.expires[e] > now) break;
      if (l === L_HALF) this.stats.expiredHalfOpen++;
      else if (l === L_UDP) this.stats.expiredUdp++;
      else this.stats.closedFin++;
      this.remove(e);
      n++;
    }
    return n;
  }

  private evictOldest(l: number): void {
    const e = this.lists.head[l];
    if (e < 0) return;
    if (l === L_HALF) this.stats.evictedHalfOpen++;
    else this.stats.evictedUdp++;
    this.remove(e);
  }
}
