// Security associations as the datapath uses them: an outbound SA per peer (seals; owns the
// sequence counter), inbound SAs by SPI (open; own the replay window), and the limits that make
// the control path rekey long before anything runs out.
//
// Rules:
// - The sequence number never wraps: reserve() refuses a batch that would pass 2^32-1 (the
//   sender must then wait for the new SA; nothing goes out in cleartext), and rekeyDue() turns
//   true at the soft limit (2^31 by default) or at the rekey age, whichever comes first.
// - An inbound SA replaced by a newer one lives on until its grace expiry, so packets sealed
//   just before the peer switched still open; after it they are refused as "no SA".
// - The AEAD key lives only in the addon (the SA holds its handle); release() frees it.
// Times are milliseconds on one monotonic clock chosen by the caller (e.g. performance.now()).
import type { NativeAddon } from '../native/index.js';
import { NumTable } from '../router/numtable.js';
import { ReplayWindow } from './replay.js';
import type { SaKeyMaterial } from './keys.js';

/** The two addon calls SAs need (the real addon, or a stand-in in unit tests). */
export type AeadBackend = Pick<NativeAddon, 'aeadCreate' | 'aeadDestroy'>;

/** Largest sequence number ever sent on one SA (RFC 4303 §3.3.3: replace before the 2^32nd). */
export const SEQ_HARD_LIMIT = 0xffffffff;

export interface SaLifetimes {
  /** Age (ms) after which the outbound SA asks for a rekey. WireGuard's REKEY_AFTER_TIME: 120 s. */
  rekeyAfterMs: number;
  /** Age (ms) after which the outbound SA refuses to seal, if no rekey succeeded. Default 180 s. */
  rejectAfterMs: number;
  /** Packets after which the outbound SA asks for a rekey (soft limit), far below SEQ_HARD_LIMIT. */
  rekeyAfterPackets: number;
  /** How long (ms) a replaced inbound SA keeps opening packets sealed before the switch. */
  inboundGraceMs: number;
}

export const DEFAULT_SA_LIFETIMES: Readonly<SaLifetimes> = {
  rekeyAfterMs: 120_000,
  rejectAfterMs: 180_000,
  rekeyAfterPackets: 2 ** 31,
  inboundGraceMs: 10_000,
};

/**
 * Lifetimes for a rekey interval (the agent's --rekey-interval): the base with the time limits
 * scaled to it (reject at 1.5x, grace at most half the interval, at least 1 s).
 */
export function lifetimesForInterval(intervalMs: number, base: Readonly<SaLifetimes> = DEFAULT_SA_LIFETIMES): SaLifetimes {
  if (!(Number.isFinite(intervalMs) && intervalMs >= 1000)) throw new RangeError(`rekey interval must be >= 1 s: ${intervalMs} ms`);
  return {
    ...base,
    rekeyAfterMs: intervalMs,
    rejectAfterMs: intervalMs * 1.5,
    inboundGraceMs: Math.max(1000, Math.min(base.inboundGraceMs, intervalMs / 2)),
  };
}

export class OutboundSa {
  /** Last sequence number handed out (0: none yet; the first packet carries 1). */
  private seq = 0;
  private readonly rekeyAt: number;
  private readonly rejectAt: number;
  private readonly softSeq: number;
  private released = false;

  constructor(
    readonly spi: number,
    readonly handle: number,
    /** Underlay IPv4 of the peer (host-order u32). */
    readonly peerAddr: number,
    readonly createdAt: number,
    life: Readonly<SaLifetimes>,
  ) {
    this.rekeyAt = createdAt + life.rekeyAfterMs;
    this.rejectAt = createdAt + life.rejectAfterMs;
    this.softSeq = Math.min(life.rekeyAfterPackets, SEQ_HARD_LIMIT);
  }

  /** Packets sealed so far. */
  get sent(): number {
    return this.seq;
  }

  /**
   * Reserves n consecutive sequence numbers for a batch and returns the first (>= 1); 0 when the
   * SA cannot take n more (hard limit) or is released: do not send on it. Allocation-free.
   */
  reserve(n: number): number {
    if (this.released || this.seq + n > SEQ_HARD_LIMIT) return 0;
    const first = this.seq + 1;
    this.seq += n;
    return first;
  }

  /** True at the soft packet limit or the rekey age: start a rekey (keep sending meanwhile). */
  rekeyDue(now: number): boolean {
    return this.seq >= this.softSeq || now >= this.rekeyAt;
  }

  /** False once past the reject age or the hard limit: the datapath must stop sealing with it. */
  usable(now: number): boolean {
    return !this.released && now < this.rejectAt && this.seq < SEQ_HARD_LIMIT;
  }

  release(aead: AeadBackend): void {
    if (this.released) return;
    this.released = true;
    aead.aeadDestroy(this.handle);
  }
}

export class InboundSa {
  readonly window = new ReplayWindow();
  /** Packets opened and accepted (after the replay commit). */
  packets = 0;
  /** When this SA stops opening packets; Infinity while it is the current one. */
  expiresAt = Infinity;

  constructor(
    readonly spi: number,
    readonly handle: number,
    /** Underlay IPv4 of the only sender allowed to use this SPI (host-order u32). */
    readonly peerAddr: number,
    readonly createdAt: number,
  ) {}

  /** A newer SA from this peer is installed: keep opening until now + grace. */
  retire(now: number, graceMs: number): void {
    this.expiresAt = Math.min(this.expiresAt, now + graceMs);
  }

  /** Still allowed to open packets at `now`. */
  live(now: number): boolean {
    return now < this.expiresAt;
  }
}

/** Outbound SA for key material (spi = the SPI the peer chose), key set once in the addon. */
export function createOutboundSa(aead: AeadBackend, km: SaKeyMaterial, peerAddr: number, now: number,
  life: Readonly<SaLifetimes> = DEFAULT_SA_LIFETIMES): OutboundSa {
  return new OutboundSa(km.spi, aead.aeadCreate(km.key, km.salt), peerAddr, now, life);
}

export function createInboundSa(aead: AeadBackend, km: SaKeyMaterial, peerAddr: number, now: number): InboundSa {
  return new InboundSa(km.spi, aead.aeadCreate(km.key, km.salt), peerAddr, now);
}

/**
 * SPI -> inbound SA, looked up per packet without allocation (open addressing over typed
 * arrays); add/remove/expire are control-path operations.
 */
export class InboundSaTable {
  private readonly index = new NumTable(64);
  private readonly slots: (InboundSa | undefined)[] = [];
  private readonly free: number[] = [];

  get size(): number {
    return this.index.size;
  }

  /** The SA for an SPI, or undefined (count as "no SA"). Hot path. */
  get(spi: number): InboundSa | undefined {
    const i = this.index.find(0, spi | 0);
    return i < 0 ? undefined : this.slots[this.index.a[i]];
  }

  /** Installs an SA; throws when its SPI is taken (SPIs are unique per host). */
  add(sa: InboundSa): void {
    if (this.index.has(0, sa.spi | 0)) throw new Error(`inbound SPI 0x${sa.spi.toString(16)} already installed`);
    const slot = this.free.length ? this.free.pop()! : this.slots.length;
    this.slots[slot] = sa;
    this.index.set(0, sa.spi | 0, slot);
  }

  /** Removes and returns the SA (the caller releases its handle). */
  remove(spi: number): InboundSa | undefined {
    const i = this.index.find(0, spi | 0);
    if (i < 0) return undefined;
    const slot = this.index.a[i];
    const sa = this.slots[slot];
    this.slots[slot] = undefined;
    this.free.push(slot);
    this.index.delete(0, spi | 0);
    return sa;
  }

  /** Retires every current SA of `peerAddr` except `keepSpi` (a new one was installed). */
  retirePeer(peerAddr: number, keepSpi: number, now: number, graceMs: number): number {
    let n = 0;
    for (const sa of this) {
      if (sa.peerAddr === peerAddr && sa.spi !== keepSpi && sa.expiresAt === Infinity) {
        sa.retire(now, graceMs);
        n++;
      }
    }
    return n;
  }

  /** Removes and releases every SA past its grace expiry; returns how many. */
  expire(now: number, aead: AeadBackend): number {
    const dead: number[] = [];
    for (const sa of this) if (!sa.live(now)) dead.push(sa.spi);
    for (const spi of dead) {
      const sa = this.remove(spi);
      if (sa) aead.aeadDestroy(sa.handle);
    }
    return dead.length;
  }

  /** Whether an SPI is in use (for randomSpi's `taken`). */
  has(spi: number): boolean {
    return this.index.has(0, spi | 0);
  }

  *[Symbol.iterator](): Generator<InboundSa> {
    for (const sa of this.slots) if (sa) yield sa;
  }
}
