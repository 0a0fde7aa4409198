// The VIP connection table's vocabulary: protocols, entry states, verdicts, refusals, its
// configuration (the memory bound and the lifetimes) and its counters. balancer/conntrack.ts
// has the lifetimes' rules; balancer/conn-store.ts the storage.

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
