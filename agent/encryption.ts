// The agent's side of `--opt encrypted`: this host's X25519 identity (published in its gossip
// meta), one crypto/handshake.ts PairHandshake per peer host, carried over gossip requests (the
// cluster key seals them), and the SAs it derives installed into the datapath through engine
// commands. The datapath never waits for any of this: until an SA is installed, an encrypted
// network simply sends nothing to that peer (counted as noSa), never cleartext.
//
// Transport: a handshake message is the JSON payload of a gossip `user` request; the reply
// carries the answer (an accept or a reject), or nothing. This module registers the node's only
// `user` request handler.
//
// Flow, every TICK_MS:
//   1. peers        alive members with an identity key and a VTEP get a PairHandshake; the SAs
//                   of members that are gone are removed
//   2. poll         the datapath's SA list: packets sealed per peer (volume rekey), inbound SAs
//                   past their grace expired
//   3. tick         each handshake's timers: first offer, retries, rekey by age or volume
//   4. deliver      offers go out as requests; replies come back through receive()
// A received offer: install the inbound SA, then answer (so the peer switches only once we have
// it). A received accept: install the outbound SA (sending switches).
import { randomBytes } from 'node:crypto';
import type { GossipNode, MemberInfo } from '../gossip/index.js';
import { ipv4ToString, parseIpv4 } from '../router/wire/addr.js';
import type { DatapathEngine, DpStats } from '../router/engine.js';
import { PairHandshake, asHsMessage, type HsActions, type HsMessage } from '../crypto/handshake.js';
import { loadOrCreateIdentity, randomSpi, type X25519Pair } from '../crypto/keys.js';
import { appendKeylog } from '../crypto/keylog.js';
import { DEFAULT_SA_LIFETIMES, lifetimesForInterval, type SaLifetimes } from '../crypto/sa.js';
import type { SaRow } from '../crypto/sa-store.js';
import type { Logger } from './log.js';

const TICK_MS = 250;
const REQUEST_TIMEOUT_MS = 2000;

export interface EncryptionOptions {
  stateDir: string;
  /** This host's VTEP (data-path address). */
  dataPathAddr: string;
  /** Rekey interval (ms); default 120 s. */
  rekeyIntervalMs?: number;
  /** Append every installed SA to this file in Wireshark's esp_sa format (debugging). */
  keylog?: string;
}

interface Peer {
  hs: PairHandshake;
  vtep: number;
  addr: string;
  /** The last inbound install, which an answer to a repeated offer must also wait for. */
  installed: Promise<void>;
}

/** Identity public key as gossip meta carries it. */
export function identityMeta(stateDir: string): { identity: X25519Pair; x25519: string } {
  const identity = loadOrCreateIdentity(stateDir);
  return { identity, x25519: Buffer.from(identity.publicKey).toString('base64') };
}

function metaOf(m: MemberInfo): { vtep: number; pub: Uint8Array } | undefined {
  const meta = m.meta as { vtep?: unknown; x25519?: unknown } | null;
  if (!meta || typeof meta.vtep !== 'string' || typeof meta.x25519 !== 'string') return undefined;
  try {
    const pub = new Uint8Array(Buffer.from(meta.x25519, 'base64'));
    return pub.length === 32 ? { vtep: parseIpv4(meta.vtep), pub } : undefined;
  } catch {
    return undefined;
  }
}

export class Encryption {
  readonly boot = randomBytes(8).toString('hex');
  readonly life: SaLifetimes;
  private readonly peers = new Map<string, Peer>();
  private readonly vtep: number;
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private rows: SaRow[] = [];
  private readonly t0 = performance.now();

  constructor(
    private readonly o: EncryptionOptions,
    private readonly identity: X25519Pair,
    private readonly node: GossipNode,
    private readonly clusterKeys: () => { id: string; key: Uint8Array }[],
    private readonly engine: DatapathEngine,
    /** True while this host has an encrypted network (only then are SAs set up). */
    private readonly wanted: () => boolean,
    private readonly log: Logger,
  ) {
    this.life = o.rekeyIntervalMs === undefined ? { ...DEFAULT_SA_LIFETIMES } : lifetimesForInterval(o.rekeyIntervalMs);
    this.vtep = parseIpv4(o.dataPathAddr);
  }

  private now(): number {
    return performance.now() - this.t0;
  }

  start(): void {
    this.node.handle('user', (_from, m, reply) => {
      let msg: HsMessage | undefined;
      try {
        msg = asHsMessage((JSON.parse(Buffer.from(m.payload).toString('utf8')) as { esp?: unknown }).esp);
      } catch {
        msg = undefined;
      }
      if (!msg) return reply({ t: 'error', message: 'not a handshake message' });
      void this.onMessage(msg).then((answer) => reply(answer ? this.wrap(answer) : { t: 'user', payload: new Uint8Array(0) }));
    });
    this.timer = setInterval(() => void this.round(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** The SAs as the datapath last reported them (stats, inspect --verbose). */
  async sas(): Promise<(SaRow & { peerVtep: string; peerName: string })[]> {
    this.rows = await this.engine.call({ op: 'saList' });
    const names = new Map<number, string>();
    for (const m of this.node.members()) {
      const mm = metaOf(m);
      if (mm) names.set(mm.vtep >>> 0, m.name);
    }
    return this.rows.map((r) => ({ ...r, peerVtep: ipv4ToString(r.peer), peerName: names.get(r.peer >>> 0) ?? '' }));
  }

  private wrap(m: HsMessage): { t: 'user'; payload: Uint8Array } {
    return { t: 'user', payload: new Uint8Array(Buffer.from(JSON.stringify({ esp: m }))) };
  }

  // 1.
  private syncPeers(): void {
    const seen = new Set<string>();
    for (const m of this.node.members()) {
      if (m.id === this.node.id || (m.state !== 'alive' && m.state !== 'suspect')) continue;
      const mm = metaOf(m);
      if (!mm) continue;
      seen.add(m.id);
      const p = this.peers.get(m.id);
      if (p && p.vtep === mm.vtep) {
        p.hs.setRemoteStatic(mm.pub);
        p.addr = m.addr;
        continue;
      }
      if (p) void this.dropPeer(m.id, p);
      this.peers.set(m.id, { hs: this.newHandshake(m.id, mm.pub), vtep: mm.vtep, addr: m.addr, installed: Promise.resolve() });
    }
    for (const [id, p] of this.peers) if (!seen.has(id)) void this.dropPeer(id, p);
  }

  private newHandshake(id: string, pub: Uint8Array): PairHandshake {
    return new PairHandshake({
      localId: this.node.id, boot: this.boot, identity: this.identity, clusterKeys: this.clusterKeys,
      newSpi: () => randomSpi((spi) => this.rows.some((r) => r.dir === 'in' && r.spi === spi)),
      rekeyAfterMs: this.life.rekeyAfterMs, rekeyAfterPackets: this.life.rekeyAfterPackets,
      retryMs: Math.min(1000, this.life.rekeyAfterMs / 5),
    }, id, pub);
  }

  private async dropPeer(id: string, p: Peer): Promise<void> {
    this.peers.delete(id);
    await this.engine.call({ op: 'removePeerSas', peerVtep: p.vtep }).catch(() => undefined);
    this.log.info('SAs of a departed host removed', { peer: id, vtep: ipv4ToString(p.vtep) });
  }

  private async round(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      this.syncPeers();
      // No encrypted network here and no SA left to age out: the datapath thread stays asleep
      // (this poll, 4 times a second, was the only thing waking an idle agent's datapath).
      if (!this.wanted() && this.rows.length === 0) return;
      // 2.
      this.rows = await this.engine.call({ op: 'saList' });
      if (!this.wanted()) return;
      // 3. and 4.
      const now = this.now();
      for (const [id, p] of this.peers) {
        const sent = this.rows.find((r) => r.dir === 'out' && r.peer >>> 0 === p.vtep >>> 0 && r.current)?.packets ?? 0;
        const act = p.hs.tick(now, sent);
        if (act.send) this.send(id, p, act.send);
      }
    } catch (e) {
      this.log.warn('encryption round failed', { error: (e as Error).message });
    } finally {
      this.polling = false;
    }
  }

  private send(id: string, p: Peer, m: HsMessage): void {
    this.node.request(p.addr, this.wrap(m), REQUEST_TIMEOUT_MS, (err, reply) => {
      if (err || !reply || reply.t !== 'user' || reply.payload.length === 0) return; // lost: the handshake retries
      let answer: HsMessage | undefined;
      try {
        answer = asHsMessage((JSON.parse(Buffer.from(reply.payload).toString('utf8')) as { esp?: unknown }).esp);
      } catch {
        answer = undefined;
      }
      if (answer && this.peers.get(id) === p) void this.onMessage(answer);
    });
  }

  /** A message from a peer; resolves to the answer to send back (after any install). */
  private async onMessage(m: HsMessage): Promise<HsMessage | undefined> {
    let p = this.peers.get(m.from);
    if (!p) {
      this.syncPeers();
      p = this.peers.get(m.from);
    }
    if (!p) return m.k === 'offer' ? { k: 'reject', from: this.node.id, boot: m.boot, gen: m.gen, reason: 'unknown host' } : undefined;
    const act = p.hs.receive(m, this.now());
    if (act.ignored && act.ignored !== 'stale reject') this.log.info('handshake input ignored', { peer: m.from, kind: m.k, why: act.ignored });
    await this.apply(m.from, p, act);
    return act.send;
  }

  private async apply(id: string, p: Peer, act: HsActions): Promise<void> {
    if (act.installIn) {
      const km = act.installIn;
      p.installed = this.engine.call({ op: 'installInboundSa', peerVtep: p.vtep, spi: km.spi, key: km.key, salt: km.salt, graceMs: this.life.inboundGraceMs })
        .then(() => this.keylog(p.vtep, this.vtep, km))
        .then(() => this.log.info('inbound SA installed', { peer: id, spi: hex(km.spi), gen: km.gen }))
        .catch((e: Error) => this.log.error('inbound SA install failed', { peer: id, error: e.message }));
    }
    // An answer (new or repeated) goes out only once the inbound SA it names is installed.
    await p.installed;
    if (act.installOut) {
      const km = act.installOut;
      await this.engine.call({ op: 'setOutboundSa', peerVtep: p.vtep, spi: km.spi, key: km.key, salt: km.salt, lifetimes: this.life })
        .then(() => this.keylog(this.vtep, p.vtep, km))
        .then(() => this.log.info('outbound SA switched', { peer: id, spi: hex(km.spi), gen: km.gen }))
        .catch((e: Error) => this.log.error('outbound SA install failed', { peer: id, error: e.message }));
    }
    if (act.peerRestarted) {
      this.log.info('peer restarted: rekeying towards it', { peer: id });
      const r = p.hs.rekey(this.now());
      if (r.send) this.send(id, p, r.send);
    }
  }

  private keylog(src: number, dst: number, km: { spi: number; key: Uint8Array; salt: Uint8Array }): void {
    if (this.o.keylog) appendKeylog(this.o.keylog, [{ src: src >>> 0, dst: dst >>> 0, spi: km.spi, key: km.key, salt: km.salt }]);
  }
}

/** ESP counters summed over the datapath (ingress, before the VNI) and every network (egress). */
export interface EspStats {
  counters: Record<'sealed' | 'opened' | 'authFail' | 'replay' | 'noSa' | 'cleartextOnEncrypted' | 'malformed' | 'wrongPeer', number>;
  sas: ReturnType<typeof saView>;
}

export function espStats(s: DpStats, rows: Awaited<ReturnType<Encryption['sas']>>): EspStats {
  const nets = Object.values(s.networks);
  const sum = (f: (x: Record<string, number>) => number | undefined, from: Record<string, number>[]) => from.reduce((a, x) => a + (f(x) ?? 0), 0);
  const drops = [s.drops, ...nets.map((n) => n.drops)];
  return {
    counters: {
      sealed: sum((c) => c.espSealed, nets.map((n) => n.counters)),
      opened: sum((c) => c.espOpened, nets.map((n) => n.counters)),
      authFail: sum((d) => d.espAuthFail, drops),
      replay: sum((d) => d.espReplay, drops),
      noSa: sum((d) => d.espNoSa, drops),
      cleartextOnEncrypted: sum((d) => d.cleartextOnEncrypted, drops),
      malformed: sum((d) => d.espMalformed, drops),
      wrongPeer: sum((d) => d.espWrongPeer, drops),
    },
    sas: saView(rows),
  };
}

/** SAs as `network inspect --verbose` and `stats` show them: never a key. */
export function saView(rows: Awaited<ReturnType<Encryption['sas']>>) {
  return rows.map((r) => ({
    SPI: hex(r.spi), Direction: r.dir, Peer: r.peerVtep, PeerName: r.peerName, AgeSeconds: Math.round(r.ageMs / 100) / 10, Packets: r.packets, Current: r.current,
  }));
}

const hex = (spi: number): string => `0x${spi.toString(16).padStart(8, '0')}`;
