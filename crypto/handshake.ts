// The SA exchange of one ordered pair of hosts, as a pure state machine (no I/O, no clock of its
// own): the agent (agent/encryption.ts) carries the messages over gossip requests and installs
// what it derives into the datapath. Each host drives the direction it sends on:
//
//   initiator (sender S)                          responder (receiver R)
//   1. offer {boot, gen, eph_S, keyId}  ------->  2. fresh eph_R, picks the SPI, derives the key,
//                                                    installs the inbound SA (old ones from S
//                                                    retire after the grace period), then:
//   3. derives the same key, switches   <-------     accept {boot, gen, eph_R, spi}
//      sending to the new SA
//
// So S sends on a new SA only once R has it (no packet lost), and R keeps the old inbound SA for a
// grace period (packets in flight still open). Rules that make loss, duplication and reordering
// harmless:
// - An offer is retried (same gen, same ephemeral) until an accept for that gen arrives; R answers
//   a repeated offer with the accept it already gave (installing nothing twice).
// - An accept for another gen than the one on offer is ignored; an offer older than the newest one
//   R saw from that boot of S is refused as stale.
// - `boot` is random per agent start. R seeing a new boot of S (S restarted and lost its SAs)
//   reports `peerRestarted`, so R's own initiator towards S rekeys at once.
// - Keys come from crypto/keys.ts (ephemeral + static X25519, cluster key as HKDF salt); anything
//   that cannot be derived gives no SA, and no SA means the datapath sends nothing (fail closed).
// Times are ms on the caller's monotonic clock.
import { derivePairKeys, generateX25519, type SaKeyMaterial, type X25519Pair } from './keys.js';

export type HsOffer = { k: 'offer'; from: string; boot: string; gen: number; eph: string; keyId: string };
export type HsAccept = { k: 'accept'; from: string; boot: string; gen: number; eph: string; spi: number; rboot: string };
export type HsReject = { k: 'reject'; from: string; boot: string; gen: number; reason: string };
export type HsMessage = HsOffer | HsAccept | HsReject;

export interface HandshakeConfig {
  /** This host's node ID and its boot ID (random per start). */
  localId: string;
  boot: string;
  identity: X25519Pair;
  /** Cluster keys by id, primary first (the HKDF salt; a host without it derives nothing). */
  clusterKeys(): { id: string; key: Uint8Array }[];
  /** SPI chooser for inbound SAs (unique on this host). */
  newSpi(): number;
  /** Age (ms) after which the outbound SA is replaced. */
  rekeyAfterMs: number;
  /** Packets after which the outbound SA is replaced (soft limit). */
  rekeyAfterPackets: number;
  /** ms between two sends of an unanswered offer. */
  retryMs: number;
}

/** What the driver must do after an input, in this order: install, then send. */
export interface HsActions {
  /** Install this inbound SA (retiring older ones from the peer), before sending `send`. */
  installIn?: SaKeyMaterial & { gen: number };
  /** Seal everything for the peer with this SA from now on. */
  installOut?: SaKeyMaterial & { gen: number };
  send?: HsMessage;
  /** The peer restarted: its old inbound SAs are gone (the driver rekeys our direction). */
  peerRestarted?: boolean;
  /** Why an input was ignored (for the log and tests). */
  ignored?: string;
}

const b64 = (u: Uint8Array): string => Buffer.from(u).toString('base64');
const unb64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));

/** Both halves of the exchange with one peer. */
export class PairHandshake {
  // ---- initiator: our outbound direction ----
  private gen = 0;
  private offer: { msg: HsOffer; eph: X25519Pair; sentAt: number } | undefined;
  /** When the current outbound SA was installed (-1: none yet). */
  private outSince = -1;
  /** Generation of the current outbound SA (0: none). */
  outGen = 0;
  /** After a refused offer: no new one before this time. */
  private backoffUntil = -Infinity;
  /** A rekey was asked for (peer restarted, refused offer) and is still to be done. */
  private wanted = false;
  // ---- responder: the peer's direction to us ----
  private peerBoot: string | undefined;
  private lastAccept: { gen: number; eph: string; accept: HsAccept } | undefined;

  constructor(private readonly cfg: HandshakeConfig, readonly remoteId: string, private remoteStatic: Uint8Array) {}

  /** The peer's identity key changed (gossip meta): every later derivation uses it. */
  setRemoteStatic(pub: Uint8Array): void {
    this.remoteStatic = pub;
  }

  /** True while an offer is unanswered. */
  get offering(): boolean {
    return this.offer !== undefined;
  }

  /** Start a new generation now (first contact, rekey, peer restarted): a fresh offer. */
  rekey(now: number): HsActions {
    const eph = generateX25519();
    const keys = this.cfg.clusterKeys();
    if (keys.length === 0) return { ignored: 'no cluster key' };
    this.wanted = false;
    this.gen = (this.gen + 1) >>> 0 || 1;
    const msg: HsOffer = { k: 'offer', from: this.cfg.localId, boot: this.cfg.boot, gen: this.gen, eph: b64(eph.publicKey), keyId: keys[0].id };
    this.offer = { msg, eph, sentAt: now };
    return { send: msg };
  }

  /**
   * Timers: the first offer, a retry of an unanswered one, or a rekey when the outbound SA is old
   * or has sealed `sentPackets` past the soft limit.
   */
  tick(now: number, sentPackets = 0): HsActions {
    if (this.offer) {
      if (now - this.offer.sentAt < this.cfg.retryMs) return {};
      this.offer.sentAt = now;
      return { send: this.offer.msg };
    }
    if (now < this.backoffUntil) return {};
    const due = this.outSince < 0 || now - this.outSince >= this.cfg.rekeyAfterMs || sentPackets >= this.cfg.rekeyAfterPackets;
    return due || this.wanted ? this.rekey(now) : {};
  }

  /** A message from the peer (a request it sent us, or the reply to ours). */
  receive(m: HsMessage, now: number): HsActions {
    if (m.from !== this.remoteId) return { ignored: 'message from another host' };
    if (m.k === 'offer') return this.onOffer(m);
    if (m.k === 'accept') return this.onAccept(m, now);
    if (!this.offer || m.boot !== this.cfg.boot || m.gen !== this.offer.msg.gen) return { ignored: 'stale reject' };
    // Refused (e.g. the peer lacks our cluster key yet): a fresh offer after a pause.
    this.offer = undefined;
    this.wanted = true;
    this.backoffUntil = now + this.cfg.retryMs;
    return { ignored: `rejected: ${m.reason}` };
  }

  // Responder, step 2.
  private onOffer(m: HsOffer): HsActions {
    const restarted = this.peerBoot !== undefined && this.peerBoot !== m.boot;
    if (this.peerBoot === m.boot && this.lastAccept) {
      if (m.gen < this.lastAccept.gen) return { ignored: 'stale offer', send: this.reject(m, 'stale offer') };
      if (m.gen === this.lastAccept.gen) {
        return m.eph === this.lastAccept.eph ? { send: this.lastAccept.accept } : { ignored: 'offer replaced under one gen', send: this.reject(m, 'gen reused') };
      }
    }
    const key = this.cfg.clusterKeys().find((k) => k.id === m.keyId);
    if (!key) return { ignored: 'unknown cluster key', send: this.reject(m, 'unknown cluster key') };
    const eph = generateX25519();
    const spi = this.cfg.newSpi();
    let km: SaKeyMaterial;
    try {
      km = derivePairKeys({
        clusterKey: key.key, generation: m.gen, localId: this.cfg.localId, remoteId: this.remoteId,
        localStatic: this.cfg.identity, remoteStatic: this.remoteStatic, localEphemeral: eph, remoteEphemeral: unb64(m.eph),
        inSpi: spi, outSpi: spi,
      }).in;
    } catch (e) {
      return { ignored: `no keys: ${(e as Error).message}`, send: this.reject(m, 'key agreement failed') };
    }
    const accept: HsAccept = { k: 'accept', from: this.cfg.localId, boot: m.boot, gen: m.gen, eph: b64(eph.publicKey), spi, rboot: this.cfg.boot };
    this.peerBoot = m.boot;
    this.lastAccept = { gen: m.gen, eph: m.eph, accept };
    return { installIn: { ...km, gen: m.gen }, send: accept, ...(restarted ? { peerRestarted: true } : {}) };
  }

  // Initiator, step 3.
  private onAccept(m: HsAccept, now: number): HsActions {
    const o = this.offer;
    if (!o || m.boot !== this.cfg.boot || m.gen !== o.msg.gen) return { ignored: 'accept for no pending offer' };
    const key = this.cfg.clusterKeys().find((k) => k.id === o.msg.keyId);
    if (!key) return { ignored: 'cluster key gone' };
    let km: SaKeyMaterial;
    try {
      km = derivePairKeys({
        clusterKey: key.key, generation: m.gen, localId: this.cfg.localId, remoteId: this.remoteId,
        localStatic: this.cfg.identity, remoteStatic: this.remoteStatic, localEphemeral: o.eph, remoteEphemeral: unb64(m.eph),
        inSpi: m.spi, outSpi: m.spi,
      }).out;
    } catch (e) {
      this.offer = undefined; // a fresh offer on the next tick
      this.wanted = true;
      return { ignored: `no keys: ${(e as Error).message}` };
    }
    this.offer = undefined;
    this.outSince = now;
    this.outGen = m.gen;
    return { installOut: { ...km, gen: m.gen } };
  }

  private reject(m: HsOffer, reason: string): HsReject {
    return { k: 'reject', from: this.cfg.localId, boot: m.boot, gen: m.gen, reason };
  }
}

/** A received JSON value as a handshake message, or undefined when it is not one. */
export function asHsMessage(v: unknown): HsMessage | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  const s = (k: string) => typeof o[k] === 'string' && (o[k] as string).length <= 255;
  const u32 = (k: string) => Number.isInteger(o[k]) && (o[k] as number) >= 0 && (o[k] as number) <= 0xffffffff;
  if (!s('from') || !s('boot') || !u32('gen')) return undefined;
  if (o.k === 'offer' && s('eph') && s('keyId')) return o as HsOffer;
  if (o.k === 'accept' && s('eph') && u32('spi') && s('rboot')) return o as HsAccept;
  if (o.k === 'reject' && s('reason')) return o as HsReject;
  return undefined;
}
