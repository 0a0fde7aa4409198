// The VIP connection table: bounded, allocation-free on the hot path. An entry is keyed by the
// client's 5-tuple (proto, client IP:port, VIP:port) and holds the chosen backend (IP, MAC,
// port, service slot, backend slot); a second index by the reply tuple (proto, backend IP:port,
// client IP:port) lets replies find it. Both indexes are open addressing with linear probing
// and backward-shift deletion over typed arrays (no tombstones, so churn never degrades them).
//
// Lifetimes (times are caller-supplied milliseconds, e.g. performance.now() once per batch):
// - TCP half-open (client SYN seen, nothing back yet): expires after halfOpenMs; at most
//   maxHalfOpen of them, the oldest evicted first when a new SYN needs room (a SYN flood only
//   ever displaces other half-open entries, never an established one).
// - TCP established: no idle timer at all; it lives while both ends keep it. One FIN is a
//   half-close: still no timer. Both FINs: the entry lingers finLingerMs for the last ACKs and
//   retransmitted FINs, then goes. An RST ends it at once (after that packet is forwarded). A
//   new SYN on a closing entry (port reuse) ends it so the flow is scheduled afresh.
// - UDP: expires udpIdleMs after its last packet; at most maxUdp, oldest-idle evicted first.
// - At maxEntries, after reclaiming what has expired and the oldest half-open entry, a new
//   flow is refused (the stage answers RST / ICMP port unreachable, counted): established
//   connections are never evicted to make room.
// Connection counts per backend (IPVS activeconns/inactconns) are reported to a listener:
// established TCP and UDP flows are active, half-open and closing TCP ones inactive.

import { NO_LIST, PoolLists } from './lists.js';
import { SlotIndex } from './slot-index.js';

export const CtProto = { Tcp: 6, Udp: 17 } as const;

/** Entry states (0 = free slot). */
export const CtState = {
  HalfOpen: 1,
  Established: 2,
  /** One side sent FIN: half-closed, no timer. */
  HalfClosed: 3,
  /** Both sides sent FIN: lingering. */
  Closing: 4,
  Udp: 5,
} as const;

/** What forward()/reply() tell the stage. */
export const CtVerdict = {
  /** Translate and pass. */
  Pass: 0,
  /** Translate and pass; the entry is gone (RST). */
  PassLast: 1,
  /** A SYN on a closing entry: it was removed; schedule the packet as a new flow. */
  Stale: 2,
} as const;

/** insert() failures (negative, so a slot >= 0 means success). */
export const CtRefuse = {
  /** Table full of entries that may not be evicted. */
  Full: -1,
  /** Another entry already owns the reply tuple (same client IP:port to the same backend). */
  ReplyTupleTaken: -2,
  /** The forward tuple already has an entry. */
  Exists: -3,
} as const;

export interface ConnTableConfig {
  /** Entries in all (the memory bound: ~80 bytes each plus two index slots). */
  maxEntries: number;
  /** TCP entries with a SYN but no reply yet (SYN-flood bound). */
  maxHalfOpen: number;
  /** UDP flows. */
  maxUdp: number;
  /** Half-open TCP lifetime, ms (a client's SYN retransmits refresh it). */
  halfOpenMs: number;
  /** Linger after both FINs, ms. */
  finLingerMs: number;
  /** UDP idle expiry, ms. */
  udpIdleMs: number;
}

export const DEFAULT_CONNTABLE_CONFIG: Readonly<ConnTableConfig> = {
  maxEntries: 262144,
  maxHalfOpen: 16384,
  maxUdp: 65536,
  halfOpenMs: 10_000,
  finLingerMs: 10_000,
  udpIdleMs: 120_000,
};

export interface ConnListener {
  /** Backend (svc, backend) gains/loses active and inactive connections. */
  countChange(svc: number, backend: number, dActive: number, dInactive: number): void;
}

export interface ConnStats {
  inserted: number;
  refusedFull: number;
  refusedReplyTuple: number;
  evictedHalfOpen: number;
  evictedUdp: number;
  expiredHalfOpen: number;
  expiredUdp: number;
  closedFin: number;
  closedRst: number;
  stale: number;
  removed: number;
}

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;
const FIN_CLIENT = 1;
const FIN_BACKEND = 2;

/** Timed lists; an entry is on at most one (established TCP is on none). */
const L_HALF = 0;
const L_UDP = 1;
const L_CLOSING = 2;

function hash5(proto: number, a: number, pa: number, b: number, pb: number): number {
  let h = Math.imul(a ^ 0x9e3779b9, 0xcc9e2d51);
  h = Math.imul((h << 15) | (h >>> 17), 0x1b873593) ^ b;
  h = Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64;
  h ^= (pa << 16) | pb;
  h = Math.imul(h ^ proto, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

export class ConnTable {
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
  private readonly fins: Uint8Array;
  private readonly expires: Float64Array;
  private readonly lists: PoolLists;
  private readonly free: Int32Array;
  private freeTop: number;
  private used = 0;
  private hairpinCursor = 0;
  /** By the client tuple and by the reply tuple. */
  private readonly fwd: SlotIndex;
  private readonly rev: SlotIndex;

  constructor(config: Partial<ConnTableConfig> = {}, private readonly listener?: ConnListener) {
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
   * New flow (after lookup() missed and the scheduler picked a backend): returns the slot or a
   * CtRefuse code. TCP flows start half-open (the first packet should be a SYN; the stage
   * answers anything else without an entry with an RST); UDP flows start timed. For a hairpin
   * flow pass snatIp/snatPort (the VIP and allocHairpinPort's port): the backend then sees and
   * answers that address instead of the client's.
   */
  insert(
    proto: number, cIp: number, cPort: number, vip: number, vPort: number,
    bIp: number, bPort: number, bMacHi: number, bMacLo: number, svc: number, backend: number, now: number,
    snatIp = cIp, snatPort = cPort,
  ): number {
    if (this.lookup(proto, cIp, cPort, vip, vPort) >= 0) return CtRefuse.Exists;
    if (this.lookupReply(proto, bIp, bPort, snatIp, snatPort) >= 0) {
      this.stats.refusedReplyTuple++;
      return CtRefuse.ReplyTupleTaken;
    }
    const tcp = proto === CtProto.Tcp;
    const l = tcp ? L_HALF : L_UDP;
    const bound = tcp ? this.config.maxHalfOpen : this.config.maxUdp;
    if (this.lists.length[l] >= bound) {
      this.expireList(l, now, 16);
      if (this.lists.length[l] >= bound) this.evictOldest(l);
    }
    if (this.freeTop === 0) {
      this.sweep(now, 64);
      if (this.freeTop === 0 && this.lists.length[L_HALF] > 0) this.evictOldest(L_HALF);
      if (this.freeTop === 0) {
        this.stats.refusedFull++;
        return CtRefuse.Full;
      }
    }
    const e = this.free[--this.freeTop];
    this.used++;
    this.proto[e] = proto;
    this.clientIp[e] = cIp;
    this.clientPort[e] = cPort;
    this.vip[e] = vip;
    this.vipPort[e] = vPort;
    this.backendIp[e] = bIp;
    this.backendPort[e] = bPort;
    this.backendMacHi[e] = bMacHi;
    this.backendMacLo[e] = bMacLo;
    this.replyIp[e] = snatIp;
    this.replyPort[e] = snatPort;
    this.svc[e] = svc;
    this.backend[e] = backend;
    this.state[e] = tcp ? CtState.HalfOpen : CtState.Udp;
    this.fins[e] = 0;
    this.clientAck[e] = 0;
    this.backendAck[e] = 0;
    this.expires[e] = now + (tcp ? this.config.halfOpenMs : this.config.udpIdleMs);
    this.lists.pushTail(l, e);
    this.fwd.insert(hash5(proto, cIp, cPort, vip, vPort), e);
    this.rev.insert(hash5(proto, bIp, bPort, snatIp, snatPort), e);
    this.stats.inserted++;
    if (tcp) this.listener?.countChange(svc, backend, 0, 1);
    else this.listener?.countChange(svc, backend, 1, 0);
    return e;
  }

  /**
   * A client packet on entry e (read the backend fields first: PassLast/Stale free the slot).
   * `tcpFlags`/`ack` from the TCP header (ignored for UDP).
   */
  forward(e: number, tcpFlags: number, ack: number, now: number): number {
    if (this.proto[e] !== CtProto.Tcp) {
      this.touchUdp(e, now);
      return CtVerdict.Pass;
    }
    const st = this.state[e];
    if (tcpFlags & TCP_RST) {
      this.stats.closedRst++;
      this.remove(e);
      return CtVerdict.PassLast;
    }
    if ((tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN) {
      if (st === CtState.HalfOpen) {
        // Retransmitted SYN: keep the entry alive a little longer.
        this.expires[e] = now + this.config.halfOpenMs;
        this.lists.moveToTail(L_HALF, e);
      } else if (st === CtState.Closing || st === CtState.HalfClosed) {
        this.stats.stale++;
        this.remove(e);
        return CtVerdict.Stale;
      }
      return CtVerdict.Pass;
    }
    if (tcpFlags & TCP_ACK) this.clientAck[e] = ack;
    if (tcpFlags & TCP_FIN) this.finSeen(e, FIN_CLIENT, now);
    return CtVerdict.Pass;
  }

  /** A backend packet (reply) on entry e; see forward(). */
  reply(e: number, tcpFlags: number, ack: number, now: number): number {
    if (this.proto[e] !== CtProto.Tcp) {
      this.touchUdp(e, now);
      return CtVerdict.Pass;
    }
    if (tcpFlags & TCP_RST) {
      this.stats.closedRst++;
      this.remove(e);
      return CtVerdict.PassLast;
    }
    if (this.state[e] === CtState.HalfOpen) {
      this.lists.unlink(e);
      this.state[e] = CtState.Established;
      this.listener?.countChange(this.svc[e], this.backend[e], 1, -1);
    }
    if (tcpFlags & TCP_ACK) this.backendAck[e] = ack;
    if (tcpFlags & TCP_FIN) this.finSeen(e, FIN_BACKEND, now);
    return CtVerdict.Pass;
  }

  /**
   * A source port for hairpin SNAT to `snatIp` toward backend bIp:bPort that no entry uses as its
   * reply tuple: up to 64 probes in 32768..60999 (Linux's ephemeral range) from `seed` (e.g. the
   * client port); -1 when none was free. Allocation-free.
   */
  allocHairpinPort(proto: number, bIp: number, bPort: number, snatIp: number, seed: number): number {
    const lo = 32768;
    const span = 61000 - lo;
    // The start rotates with every allocation so equal seeds do not walk the same probe chain.
    this.hairpinCursor = (this.hairpinCursor + 40503) % span;
    let p = ((seed >>> 0) + this.hairpinCursor) % span;
    for (let k = 0; k < 64; k++) {
      if (this.lookupReply(proto, bIp, bPort, snatIp, lo + p) < 0) return lo + p;
      p = (p + 7919) % span;
    }
    return -1;
  }

  /** True when entry e is a hairpin flow (its backend answers the VIP, not the client). */
  isHairpin(e: number): boolean {
    return this.replyIp[e] !== this.clientIp[e] || this.replyPort[e] !== this.clientPort[e];
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

  // ---- internals ----

  private finSeen(e: number, side: number, now: number): void {
    const f = this.fins[e] | side;
    this.fins[e] = f;
    const st = this.state[e];
    if (f === (FIN_CLIENT | FIN_BACKEND)) {
      if (st !== CtState.Closing) {
        if (st === CtState.Established) this.listener?.countChange(this.svc[e], this.backend[e], -1, 1);
        this.lists.unlink(e);
        this.state[e] = CtState.Closing;
        this.expires[e] = now + this.config.finLingerMs;
        this.lists.pushTail(L_CLOSING, e);
      }
    } else if (st === CtState.Established) {
      this.state[e] = CtState.HalfClosed;
      this.listener?.countChange(this.svc[e], this.backend[e], -1, 1);
    }
  }

  private touchUdp(e: number, now: number): void {
    this.expires[e] = now + this.config.udpIdleMs;
    this.lists.moveToTail(L_UDP, e);
  }

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
