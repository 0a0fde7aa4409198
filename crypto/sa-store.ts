// The datapath's SAs (one store per datapath thread; the addon's AEAD handles belong to that
// thread): per peer VTEP the outbound SA that seals what goes there, and the inbound SAs by SPI.
// SAs are per peer host, not per network: every encrypted network of the host points its
// `net.sa` slot at this one store. The control plane (agent/encryption.ts, through engine
// commands) installs and removes SAs; keys arrive as bytes and become addon handles here.
import { NumTable } from '../router/numtable.js';
import { InboundSaTable, createInboundSa, createOutboundSa, type AeadBackend, type OutboundSa, type SaLifetimes } from './sa.js';
import type { SaKeyMaterial } from './keys.js';
import { SealBatch } from './seal-batch.js';
import type { NativeAddon } from '../native/index.js';

/** One SA as `network inspect --verbose` and `stats` show it (never its key). */
export interface SaRow {
  dir: 'in' | 'out';
  spi: number;
  /** Peer VTEP (host-order u32). */
  peer: number;
  ageMs: number;
  packets: number;
  /** In: still the current SA from that peer (false: retired, opening until its grace ends). */
  current: boolean;
}

export class SaStore {
  readonly feature = 'sa' as const;
  readonly inbound = new InboundSaTable();
  /** (0, VTEP) → a = slot in `outSlots`. */
  private readonly outIndex = new NumTable(16);
  private readonly outSlots: (OutboundSa | undefined)[] = [];
  /** Records waiting for the batch's one AEAD call (crypto/seal.ts). */
  readonly sealer: SealBatch;
  /** The clock of the current batch (ms, the caller's monotonic clock), set by the loop. */
  now = 0;

  constructor(private readonly aead: AeadBackend & Pick<NativeAddon, 'aeadSeal'>, private readonly clock: () => number) {
    this.sealer = new SealBatch(aead);
  }

  /** Time for this batch (one clock read per batch, not per packet). */
  tick(): number {
    this.now = this.clock();
    return this.now;
  }

  /** The SA sealing what goes to `vtep` (int32 or u32), if it may still be used. Hot path. */
  outbound(vtep: number): OutboundSa | undefined {
    const i = this.outIndex.find(0, vtep | 0);
    if (i < 0) return undefined;
    const sa = this.outSlots[this.outIndex.a[i]];
    return sa !== undefined && sa.usable(this.now) ? sa : undefined;
  }

  /** A new inbound SA from `peer`; the peer's older ones keep opening for graceMs. */
  installInbound(peer: number, km: SaKeyMaterial, graceMs: number): void {
    const now = this.tick();
    const old = this.inbound.remove(km.spi);
    if (old) this.aead.aeadDestroy(old.handle);
    this.inbound.add(createInboundSa(this.aead, km, peer >>> 0, now));
    this.inbound.retirePeer(peer >>> 0, km.spi, now, graceMs);
  }

  /** Seal everything for `peer` with this SA from now on (the old one is released). */
  setOutbound(peer: number, km: SaKeyMaterial, life: Readonly<SaLifetimes>): void {
    const now = this.tick();
    const sa = createOutboundSa(this.aead, km, peer >>> 0, now, life);
    const i = this.outIndex.find(0, peer | 0);
    if (i >= 0) {
      const slot = this.outIndex.a[i];
      this.outSlots[slot]?.release(this.aead);
      this.outSlots[slot] = sa;
    } else {
      this.outSlots.push(sa);
      this.outIndex.set(0, peer | 0, this.outSlots.length - 1);
    }
  }

  /** Every SA of a peer goes (it left the cluster). */
  removePeer(peer: number): void {
    const i = this.outIndex.find(0, peer | 0);
    if (i >= 0) {
      const slot = this.outIndex.a[i];
      this.outSlots[slot]?.release(this.aead);
      this.outSlots[slot] = undefined;
    }
    for (const sa of [...this.inbound]) {
      if (sa.peerAddr === peer >>> 0) this.aead.aeadDestroy(this.inbound.remove(sa.spi)!.handle);
    }
  }

  /** Inbound SAs past their grace are removed (called from the control path's periodic poll). */
  expire(): number {
    return this.inbound.expire(this.tick(), this.aead);
  }

  list(): SaRow[] {
    const now = this.tick();
    const rows: SaRow[] = [];
    for (const sa of this.outSlots) {
      if (sa) rows.push({ dir: 'out', spi: sa.spi, peer: sa.peerAddr, ageMs: Math.round(now - sa.createdAt), packets: sa.sent, current: sa.usable(now) });
    }
    for (const sa of this.inbound) {
      rows.push({ dir: 'in', spi: sa.spi, peer: sa.peerAddr, ageMs: Math.round(now - sa.createdAt), packets: sa.packets, current: sa.expiresAt === Infinity });
    }
    return rows;
  }

  close(): void {
    for (const sa of this.outSlots) sa?.release(this.aead);
    this.outSlots.length = 0;
    for (const sa of [...this.inbound]) this.aead.aeadDestroy(this.inbound.remove(sa.spi)!.handle);
  }
}
