// GossipNode: the facade the agent uses. It wires the pieces together, dispatches what
// arrives, and owns the timers:
//   transport -> wire (seal, codec, counters) -> dispatch below
//   membership + prober (SWIM/Lifeguard), gossiper (piggyback queues, push-pull)
//   tables (networkdb; each user defines its own tables)
//   services on top (gossip/ipam.ts) plug in from outside: handle() for their requests,
//   request() to ask a peer, onStop() to wind down
// Timers: probe (prober), gossip every gossipInterval, push-pull every pushPullInterval
// (scaled with cluster size), reconnect to dead members (heals partitions), reaping.

import { LIMITS, type Message, type MessageOf, type NodeState } from './codec.js';
import { pushPullInterval, resolveConfig, type GossipConfig, type ProfileName } from './config.js';
import { Awareness } from './lifeguard.js';
import { Gossiper } from './gossiper.js';
import { Membership, type Member, type MemberEvent, type MemberEventKind, type MemberState } from './membership.js';
import { Prober } from './probe.js';
import type { Keyring } from './security.js';
import { readState, StateFile } from './state-file.js';
import { Tables, type TableDef } from './tables.js';
import type { Transport } from './transport.js';
import { UdpTransport } from './udp-transport.js';
import { decodeValue, encodeValue, type JsonValue } from './value.js';
import { Wire, type GossipStats } from './wire.js';

export interface GossipNodeOptions {
  /** Node id (hex). Default: from stateDir, else 8 random bytes. */
  id?: string;
  /** Human name, usually the hostname. */
  name: string;
  /** Used only when no transport is passed (a UdpTransport is made from them). */
  bindAddr?: string;
  bindPort?: number;
  advertiseAddr?: string;
  advertisePort?: number;
  /** Cluster keys. null = plaintext, allowed only on the simulated transport. */
  keyring: Keyring | null;
  profile?: ProfileName | GossipConfig;
  /** Overrides of single profile values. */
  config?: Partial<GossipConfig>;
  /** Small JSON-able blob every member sees (data-path address, VXLAN port, version). */
  meta?: JsonValue;
  /** Directory for id/incarnation/Lamport persistence across restarts. */
  stateDir?: string;
  /** Scopes of the caller's tables (a table not listed is owner-scoped). */
  tables?: Record<string, TableDef>;
}

/** Answers one kind of reliable request (see GossipNode.handle). */
export type RequestHandler<T extends Message['t'] = Message['t']> = (from: string, m: MessageOf<T>, reply: (m: Message) => void) => void;

export interface MemberInfo {
  id: string;
  name: string;
  addr: string;
  meta: JsonValue;
  state: MemberState;
  incarnation: number;
  /** Clock time (ms) of the last state change. */
  since: number;
}

export interface MemberEventInfo {
  kind: MemberEventKind;
  member: MemberInfo;
  previous?: MemberState;
}

export interface NodeStats extends GossipStats {
  health: number;
  probes: number;
  /** Probes whose direct ack did not come in time (indirect probes were sent). */
  probeIndirect: number;
  probeFailures: number;
  queued: { membership: number; tables: number };
  members: Record<MemberState, number>;
}

function info(m: Member): MemberInfo {
  let meta: JsonValue = null;
  try {
    meta = m.meta.length ? decodeValue(m.meta) : null;
  } catch {
    meta = null;
  }
  return { id: m.id, name: m.name, addr: m.addr, meta, state: m.state, incarnation: m.inc, since: m.since };
}

export class GossipNode {
  readonly id: string;
  readonly name: string;
  readonly config: GossipConfig;
  readonly transport: Transport;
  readonly keyring: Keyring | null;
  readonly tables: Tables;
  private readonly wire: Wire;
  private readonly awareness: Awareness;
  private readonly gossiper: Gossiper;
  private readonly membership: Membership;
  private readonly prober: Prober;
  private readonly listeners = new Set<(e: MemberEventInfo) => void>();
  private readonly timers = new Set<() => void>();
  private readonly handlers = new Map<Message['t'], (from: string, m: Message, reply: (m: Message) => void) => void>();
  private readonly stopHooks: (() => void)[] = [];
  private readonly stateFile: StateFile | undefined;
  private running = false;
  private isSynced = true;

  constructor(opts: GossipNodeOptions, transport?: Transport) {
    this.transport = transport ?? new UdpTransport(opts);
    if (!opts.keyring && !this.transport.simulated) throw new Error('a cluster keyring is required (plaintext gossip exists only in the simulator)');
    this.keyring = opts.keyring;
    this.config = resolveConfig(opts.profile ?? 'lan', opts.config);
    const saved = opts.stateDir ? readState(opts.stateDir) : undefined;
    this.id = opts.id ?? saved?.id ?? this.transport.random.hex(8);
    this.name = opts.name;
    const meta = encodeValue(opts.meta ?? null);
    if (meta.length > LIMITS.meta) throw new Error(`meta is ${meta.length} bytes; at most ${LIMITS.meta}`);
    const inc = saved && saved.id === this.id ? saved.incarnation + 1 : 0;
    const clock = this.transport.clock;
    const random = this.transport.random;
    const config = this.config;
    this.wire = new Wire(this.transport, this.keyring);
    this.awareness = new Awareness(config.awarenessMaxMultiplier);
    this.gossiper = new Gossiper({
      config,
      random,
      wire: this.wire,
      membership: () => this.membership,
      tables: () => this.tables,
      onSynced: () => (this.isSynced = true),
    });
    this.membership = new Membership(
      { id: this.id, name: this.name, addr: '', meta, inc },
      {
        config,
        clock,
        random,
        awareness: this.awareness,
        broadcast: (key, m) => this.gossiper.enqueue('member', key, m),
        send: (addr, msgs) => this.gossiper.send(addr, msgs),
        emit: (e) => this.onMemberEvent(e),
        onIncarnation: (i) => this.stateFile?.incarnation(i),
      },
    );
    this.prober = new Prober({
      config,
      clock,
      awareness: this.awareness,
      membership: this.membership,
      send: (addr, msgs) => this.gossiper.send(addr, msgs),
      request: (addr, m, t, cb) => this.wire.request(addr, m, t, cb),
      onUnexpected: () => this.wire.stats.dropped.unexpected++,
    });
    this.tables = new Tables({
      selfId: this.id,
      clock,
      config,
      member: (id) => this.membership.get(id),
      broadcast: (key, m) => this.gossiper.enqueue('table', key, m),
      queueSize: () => this.gossiper.tableQueue.size,
      onLamport: (t) => this.stateFile?.lamport(t),
    });
    for (const [name, def] of Object.entries(opts.tables ?? {})) this.tables.define(name, def);
    if (saved && saved.id === this.id) this.tables.witness(saved.lamport);
    this.stateFile = opts.stateDir ? new StateFile(opts.stateDir, this.id, inc, this.tables.time()) : undefined;
    this.wire.setHandlers({ message: (from, m) => this.onMessage(from, m), request: (from, m, reply) => this.onRequest(from, m, reply) });
    this.handle('pushPull', (_from, m, reply) => {
      this.gossiper.merge(m.nodes, m.entries, 'sync');
      reply(this.gossiper.localState(false));
    });
    this.handle('ping', (_from, m, reply) => this.prober.onStreamPing(m, reply));
  }

  // ---- services on top ---------------------------------------------------------------------

  /** Answer reliable requests of type `t` (one handler per type). */
  handle<T extends Message['t']>(t: T, fn: RequestHandler<T>): void {
    if (this.handlers.has(t)) throw new Error(`a handler for ${t} requests is already registered`);
    this.handlers.set(t, (from, m, reply) => fn(from, m as MessageOf<T>, reply)); // dispatched by m.t === t
  }

  /** Ask a peer over the reliable channel; `cb` gets its reply or a timeout/transport error. */
  request(addr: string, m: Message, timeoutMs: number, cb: (err: Error | undefined, reply?: Message) => void): void {
    this.wire.request(addr, m, timeoutMs, cb);
  }

  /** Run `fn` when the node stops (a service winds down with it). */
  onStop(fn: () => void): void {
    this.stopHooks.push(fn);
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  async start(): Promise<void> {
    if (this.running) return;
    await this.transport.start({
      onPacket: (from, data) => this.wire.onPacket(from, data),
      onRequest: (from, data, reply) => this.wire.onRequest(from, data, reply),
    });
    this.membership.self.addr = this.transport.localAddr();
    this.membership.announceSelf();
    this.running = true;
    const c = this.config;
    const r = this.transport.random;
    this.prober.start(r.int(c.probeInterval) + 1);
    const g = this.gossiper;
    this.every(() => c.gossipInterval, () => g.gossip());
    this.every(() => pushPullInterval(c, this.membership.numLive()), () => g.periodicPushPull());
    this.every(() => c.reconnectInterval, () => g.reconnect());
    this.every(() => c.reapInterval, () => {
      this.membership.reap();
      this.tables.reap();
    });
  }

  /**
   * Repeating timer with a random first delay and +-10 % jitter on every period, so nodes
   * started together do not beat in step (push-pull rounds would come in bursts).
   */
  private every(interval: () => number, fn: () => void): void {
    const r = this.transport.random;
    let cancel: () => void = () => {};
    const arm = (ms: number): void => {
      this.timers.delete(cancel);
      cancel = this.transport.clock.setTimer(ms, () => {
        if (!this.running) return;
        arm(interval() * (0.9 + 0.2 * r.next()));
        fn();
      });
      this.timers.add(cancel);
    };
    arm(1 + r.int(interval()));
  }

  /** Push-pull with each address; resolves to how many answered. Rejects if none did. */
  join(addrs: string[]): Promise<number> {
    if (!this.running) return Promise.reject(new Error('join() before start()'));
    const targets = addrs.filter((a) => a !== this.transport.localAddr());
    this.gossiper.addSeeds(targets);
    if (targets.length === 0) return Promise.resolve(0);
    this.isSynced = false;
    return new Promise((resolve, reject) => {
      let pending = targets.length;
      let ok = 0;
      const errors: string[] = [];
      for (const addr of targets) {
        this.gossiper.pushPull(addr, true, (err) => {
          if (err) errors.push(`${addr}: ${err.message}`);
          else ok++;
          if (--pending > 0) return;
          if (ok > 0) resolve(ok);
          else reject(new Error(`could not join any of ${targets.join(', ')}: ${errors.join('; ')}`));
        });
      }
    });
  }

  /** Tell the cluster we are leaving and wait (bounded) until the news went out. */
  leave(timeoutMs = Math.max(2000, this.config.gossipInterval * 20)): Promise<void> {
    if (!this.running) return Promise.resolve();
    this.membership.leave();
    const key = `m:${this.id}`;
    const want = Math.min(this.config.gossipNodes, this.membership.retransmitLimit());
    const clock = this.transport.clock;
    const until = clock.now() + timeoutMs;
    return new Promise((resolve) => {
      const check = (): void => {
        const sent = this.gossiper.memberQueue.transmits(key);
        const alone = this.membership.numLive() === 0; // (we no longer count: we are "left")
        if (!this.running || alone || sent === undefined || sent >= want || clock.now() >= until) return resolve();
        clock.setTimer(this.config.gossipInterval, check);
      };
      check();
    });
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const c of this.timers) c();
    this.timers.clear();
    this.prober.stop();
    this.membership.stop();
    for (const fn of this.stopHooks) fn();
    await this.transport.stop();
  }

  // ---- views -------------------------------------------------------------------------------

  /** Every member this node knows (itself included), with its state. */
  members(): MemberInfo[] {
    return [...this.membership.all()].map(info);
  }

  member(id: string): MemberInfo | undefined {
    const m = this.membership.get(id);
    return m && info(m);
  }

  localMember(): MemberInfo {
    return info(this.membership.self);
  }

  setMeta(meta: JsonValue): void {
    const b = encodeValue(meta);
    if (b.length > LIMITS.meta) throw new Error(`meta is ${b.length} bytes; at most ${LIMITS.meta}`);
    this.membership.updateMeta(b);
  }

  /** Membership events: join, update, suspect, dead, left, alive-again, reap. */
  onMember(fn: (e: MemberEventInfo) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** This node's member list as push-pull states (see preload). */
  memberStates(): NodeState[] {
    return this.membership.localState();
  }

  /**
   * Add alive members without announcing them, as if long known (restoring a saved member
   * list; the simulator's warm start). Normal joins use join().
   */
  preload(states: NodeState[]): void {
    this.membership.preload(states);
  }

  /** True once this node has exchanged full state with a peer (or never asked to join). */
  get synced(): boolean {
    return this.isSynced;
  }

  get health(): number {
    return this.awareness.health;
  }

  stats(): NodeStats {
    const members: Record<MemberState, number> = { alive: 0, suspect: 0, dead: 0, left: 0 };
    for (const m of this.membership.all()) members[m.state]++;
    const s = this.wire.stats;
    return {
      ...s,
      dropped: { ...s.dropped },
      health: this.awareness.health,
      probes: this.prober.probes,
      probeIndirect: this.prober.indirect,
      probeFailures: this.prober.failures,
      queued: { membership: this.gossiper.memberQueue.size, tables: this.gossiper.tableQueue.size },
      members,
    };
  }

  // ---- internals ---------------------------------------------------------------------------

  private onMemberEvent(e: MemberEvent): void {
    this.tables.onMember(e);
    if (this.listeners.size === 0) return;
    const ev: MemberEventInfo = { kind: e.kind, member: info(e.member), previous: e.previous };
    for (const l of this.listeners) l(ev);
  }

  private onMessage(from: string, m: Message): void {
    if (!this.running) return;
    const ms = this.membership;
    switch (m.t) {
      case 'ping':
        return this.prober.onPing(from, m);
      case 'indirect':
        return this.prober.onIndirect(from, m);
      case 'ack':
        return this.prober.onAck(m);
      case 'nack':
        return this.prober.onNack(m);
      case 'alive':
        return ms.aliveNode(m);
      case 'suspect':
      case 'dead': {
        // Stale news (we know a newer incarnation): answer the sender with the fresh state.
        const fix = ms.correction(m.node, m.inc);
        if (fix) return this.gossiper.send(from, [fix]);
        return m.t === 'suspect' ? ms.suspectNode(m) : ms.deadNode(m);
      }
      case 'leave':
        return ms.leaveNode(m);
      case 'table':
        this.tables.apply(m.entry, 'gossip');
        return;
      default:
        this.wire.stats.dropped.unexpected++;
    }
  }

  private onRequest(from: string, m: Message, reply: (m: Message) => void): void {
    if (!this.running) return reply({ t: 'error', message: 'node is stopping' });
    const h = this.handlers.get(m.t);
    if (h) return h(from, m, reply);
    this.wire.stats.dropped.unexpected++;
    return reply({ t: 'error', message: `unexpected request ${m.t}` });
  }
}
