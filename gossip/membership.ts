// SWIM member list: states, incarnation rules, refutation, suspicion timers, push-pull merge,
// selection of probe/gossip targets and reaping. Probing itself lives in probe.ts.
//
// Rules (a message about node X with incarnation i):
// - alive: unknown X -> add (join). Known X -> applied only when i > X.inc; clears suspicion,
//   brings dead/left back (alive-again). About ourselves: a newer incarnation or different
//   data than ours is refuted.
// - suspect: ignored when i < X.inc or X is dead/left; confirms an existing suspicion of the
//   same incarnation; else X becomes suspect at i and a Lifeguard suspicion timer starts
//   (a suspect at a newer incarnation implies X refuted the old one). About ourselves: refute.
// - dead: ignored when i < X.inc or X is dead/left; else X is dead. About ourselves: refute.
// - leave: X is left (graceful), also from dead.
// Refute = incarnation := max(ours, accused) + 1, broadcast alive, awareness + 1.
// Every applied change is re-broadcast through the piggyback queue (infection-style).

import type { Message, MessageOf, NodeState } from './codec.js';
import { retransmitLimit, suspicionMin, type GossipConfig } from './config.js';
import { Suspicion, type Awareness } from './lifeguard.js';
import type { Clock, Random } from './transport.js';
import { bytesEqual } from './value.js';

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left';
export const STATE_NAMES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];

export interface Member {
  id: string;
  name: string;
  addr: string;
  /** Encoded meta (value.ts); decoded at the public edge. */
  meta: Uint8Array;
  inc: number;
  state: MemberState;
  /** Clock time of the last state change. */
  since: number;
  /** Learned from our own join's state pull and not yet re-broadcast (see aliveNode). */
  quiet?: boolean;
}

export type MemberEventKind = 'join' | 'update' | 'suspect' | 'dead' | 'left' | 'alive-again' | 'reap';

export interface MemberEvent {
  kind: MemberEventKind;
  member: Member;
  previous?: MemberState;
}

export interface MembershipDeps {
  config: GossipConfig;
  clock: Clock;
  random: Random;
  awareness: Awareness;
  /** Queue a membership broadcast; key invalidates older broadcasts about the same node. */
  broadcast(key: string, m: Message): void;
  /** Send one datagram now (with piggy-backed broadcasts). */
  send(addr: string, msgs: Message[]): void;
  emit(ev: MemberEvent): void;
  /** Our incarnation changed (persist it). */
  onIncarnation?(inc: number): void;
}

const isLive = (s: MemberState): boolean => s === 'alive' || s === 'suspect';

export class Membership {
  readonly self: Member;
  private readonly byId = new Map<string, Member>();
  private probeList: Member[] = [];
  private probeIndex = 0;
  private readonly suspicions = new Map<string, Suspicion>();
  private live = 1;
  private dead = 0;
  leaving = false;

  constructor(
    self: { id: string; name: string; addr: string; meta: Uint8Array; inc: number },
    private readonly d: MembershipDeps,
  ) {
    this.self = { ...self, state: 'alive', since: d.clock.now() };
    this.byId.set(self.id, this.self);
  }

  get(id: string): Member | undefined {
    return this.byId.get(id);
  }

  all(): IterableIterator<Member> {
    return this.byId.values();
  }

  /** Alive + suspect members, ourselves included: the n of every formula. */
  numLive(): number {
    return this.live;
  }

  /** Members currently dead (not yet reaped). */
  numDead(): number {
    return this.dead;
  }

  retransmitLimit(): number {
    return retransmitLimit(this.d.config, this.live);
  }

  private announce(m: Member): void {
    this.d.broadcast(`m:${m.id}`, { t: 'alive', inc: m.inc, node: m.id, name: m.name, addr: m.addr, meta: m.meta });
  }

  private setState(m: Member, state: MemberState): MemberState {
    const prev = m.state;
    if (isLive(prev) !== isLive(state)) this.live += isLive(state) ? 1 : -1;
    if ((prev === 'dead') !== (state === 'dead')) this.dead += state === 'dead' ? 1 : -1;
    m.state = state;
    if (prev !== state) m.since = this.d.clock.now();
    return prev;
  }

  private cancelSuspicion(id: string): void {
    const s = this.suspicions.get(id);
    if (s) {
      s.cancel();
      this.suspicions.delete(id);
    }
  }

  /** Queue our own alive message (at start: whoever does not know us yet learns us from it). */
  announceSelf(): void {
    this.announce(this.self);
  }

  refute(accused: number): void {
    this.self.inc = Math.max(this.self.inc, accused) + 1;
    this.announce(this.self);
    this.d.awareness.apply(1);
    this.d.onIncarnation?.(this.self.inc);
  }

  /** New meta for ourselves: bump the incarnation and tell everyone. */
  updateMeta(meta: Uint8Array): void {
    this.self.meta = meta;
    this.self.inc++;
    this.announce(this.self);
    this.d.onIncarnation?.(this.self.inc);
  }

  /**
   * quiet: a node learned from our own join's state pull is not re-broadcast at once: most of
   * the cluster knows it already, and re-announcing every member on every join floods the
   * queues (O(n) messages per join). If gossip about it reaches us later, it is still news to
   * someone, so we join the epidemic then.
   */
  aliveNode(a: Omit<MessageOf<'alive'>, 't'>, quiet = false): void {
    const self = this.self;
    if (a.node === self.id) {
      if (this.leaving) return;
      const differs = a.addr !== self.addr || a.name !== self.name || !bytesEqual(a.meta, self.meta);
      if (a.inc > self.inc || (a.inc === self.inc && differs)) this.refute(a.inc);
      return;
    }
    let m = this.byId.get(a.node);
    if (!m) {
      m = { id: a.node, name: a.name, addr: a.addr, meta: a.meta, inc: a.inc, state: 'alive', since: this.d.clock.now(), quiet };
      this.byId.set(m.id, m);
      this.live++;
      // Insert at a random position of the probe order (swap with a random slot).
      this.probeList.push(m);
      const j = this.d.random.int(this.probeList.length);
      const last = this.probeList.length - 1;
      [this.probeList[j], this.probeList[last]] = [this.probeList[last], this.probeList[j]];
      if (!quiet) this.announce(m);
      this.d.emit({ kind: 'join', member: m });
      return;
    }
    if (a.inc <= m.inc) {
      if (m.quiet && a.inc === m.inc && !quiet) {
        m.quiet = false;
        this.announce(m);
      }
      return;
    }
    m.quiet = false;
    const changed = a.addr !== m.addr || a.name !== m.name || !bytesEqual(a.meta, m.meta);
    this.cancelSuspicion(m.id);
    m.inc = a.inc;
    m.name = a.name;
    m.addr = a.addr;
    m.meta = a.meta;
    const prev = this.setState(m, 'alive');
    this.announce(m);
    if (prev !== 'alive') this.d.emit({ kind: 'alive-again', member: m, previous: prev });
    else if (changed) this.d.emit({ kind: 'update', member: m });
  }

  suspectNode(s: { inc: number; node: string; from: string }): void {
    if (s.node === this.self.id) {
      if (!this.leaving && s.inc >= this.self.inc) this.refute(s.inc);
      return;
    }
    const m = this.byId.get(s.node);
    if (!m || s.inc < m.inc) return;
    if (m.state === 'suspect' && s.inc === m.inc) {
      const susp = this.suspicions.get(m.id);
      if (susp?.confirm(s.from)) this.d.broadcast(`m:${m.id}`, { t: 'suspect', inc: m.inc, node: m.id, from: s.from });
      return;
    }
    if (!isLive(m.state)) return;
    // A suspicion about a newer incarnation than the one we suspect means X refuted ours in
    // between (its alive may have been superseded by this message in every queue): start over.
    const wasSuspect = m.state === 'suspect';
    this.cancelSuspicion(m.id);
    m.inc = s.inc;
    this.setState(m, 'suspect');
    const n = this.live;
    const k = n - 2 < this.d.config.suspicionMult - 2 ? 0 : this.d.config.suspicionMult - 2;
    const min = suspicionMin(this.d.config, n);
    const max = this.d.config.suspicionMaxTimeoutMult * min;
    const inc = m.inc;
    const timeout = (): void => {
      this.suspicions.delete(m.id);
      if (this.byId.get(m.id) === m && m.state === 'suspect' && m.inc === inc) {
        this.deadNode({ inc, node: m.id, from: this.self.id });
      }
    };
    // While suspected, remind the suspect now and then: it refutes, or (if it already did and
    // we missed the news) answers with its newer incarnation.
    const remind = { every: min / 2, fn: () => this.d.send(m.addr, [{ t: 'suspect', inc, node: m.id, from: '' }]) };
    const susp = new Suspicion(this.d.clock, s.from, k, min, max, timeout, remind);
    this.suspicions.set(m.id, susp);
    this.d.broadcast(`m:${m.id}`, { t: 'suspect', inc: m.inc, node: m.id, from: s.from });
    if (!wasSuspect) this.d.emit({ kind: 'suspect', member: m, previous: 'alive' });
  }

  deadNode(x: { inc: number; node: string; from: string }): void {
    if (x.node === this.self.id) {
      if (!this.leaving && x.inc >= this.self.inc) this.refute(x.inc);
      return;
    }
    const m = this.byId.get(x.node);
    if (!m || x.inc < m.inc || !isLive(m.state)) return;
    // Another member's verdict is evidence, not a fact: it may be stale (a host back from a
    // partition drains a queue of deaths it declared while cut off, about members alive all
    // along). It becomes our suspicion (or confirms the one we hold), which the member can
    // refute; only our own timer declares it dead here. Push-pull merge does the same.
    if (x.from !== this.self.id) {
      this.suspectNode({ inc: x.inc, node: x.node, from: x.from });
      return;
    }
    this.cancelSuspicion(m.id);
    m.inc = x.inc;
    const prev = this.setState(m, 'dead');
    this.d.broadcast(`m:${m.id}`, { t: 'dead', inc: m.inc, node: m.id, from: x.from });
    this.d.emit({ kind: 'dead', member: m, previous: prev });
  }

  leaveNode(l: { inc: number; node: string }): void {
    if (l.node === this.self.id) {
      if (!this.leaving && l.inc >= this.self.inc) this.refute(l.inc);
      return;
    }
    const m = this.byId.get(l.node);
    if (!m || l.inc < m.inc || m.state === 'left') return;
    this.cancelSuspicion(m.id);
    m.inc = l.inc;
    const prev = this.setState(m, 'left');
    this.d.broadcast(`m:${m.id}`, { t: 'leave', inc: m.inc, node: m.id });
    this.d.emit({ kind: 'left', member: m, previous: prev });
  }

  /** Graceful leave: mark ourselves left and queue the leave broadcast. */
  leave(): void {
    this.leaving = true;
    this.setState(this.self, 'left');
    this.d.broadcast(`m:${this.self.id}`, { t: 'leave', inc: this.self.inc, node: this.self.id });
  }

  /**
   * The sender of a suspect/dead about `node` at incarnation `inc` is behind if we know a newer
   * incarnation: the message to send back so its timer does not run out on stale news.
   */
  correction(node: string, inc: number): Message | undefined {
    const m = this.byId.get(node);
    if (!m || m.inc <= inc || (m === this.self && this.leaving)) return undefined;
    if (m.state === 'alive') return { t: 'alive', inc: m.inc, node: m.id, name: m.name, addr: m.addr, meta: m.meta };
    if (m.state === 'suspect') return { t: 'suspect', inc: m.inc, node: m.id, from: '' };
    return undefined;
  }

  /** Apply a remote full state (push-pull). A remote "dead" is only a suspicion here. */
  merge(nodes: NodeState[], quiet = false): void {
    for (const n of nodes) {
      const state = n.state;
      if (state === 0) this.aliveNode({ inc: n.inc, node: n.id, name: n.name, addr: n.addr, meta: n.meta }, quiet);
      else if (state === 3) this.leaveNode({ inc: n.inc, node: n.id });
      // Anonymous: a copied state is not an independent failure detection, so it must never
      // count as a confirmation that shortens anybody's suspicion timer.
      else this.suspectNode({ inc: n.inc, node: n.id, from: '' });
    }
  }

  /**
   * Add alive members silently, as if they had been known for long (no broadcast, no later
   * re-broadcast). For restoring a known member list; the simulator's warm start uses it.
   */
  preload(nodes: NodeState[]): void {
    for (const n of nodes) {
      if (n.state !== 0 || this.byId.has(n.id)) continue;
      this.aliveNode({ inc: n.inc, node: n.id, name: n.name, addr: n.addr, meta: n.meta }, true);
      const m = this.byId.get(n.id);
      if (m) m.quiet = false;
    }
  }

  localState(): NodeState[] {
    const out: NodeState[] = [];
    for (const m of this.byId.values()) {
      out.push({ id: m.id, name: m.name, addr: m.addr, meta: m.meta, inc: m.inc, state: STATE_NAMES.indexOf(m.state) as NodeState['state'] });
    }
    return out;
  }

  /** Next member to probe in shuffled round-robin order (alive or suspect only). */
  nextProbeTarget(): Member | undefined {
    for (let checked = 0; checked < this.probeList.length; checked++) {
      if (this.probeIndex >= this.probeList.length) {
        this.shuffle(this.probeList);
        this.probeIndex = 0;
      }
      const m = this.probeList[this.probeIndex++];
      if (isLive(m.state)) return m;
    }
    return undefined;
  }

  private shuffle(a: Member[]): void {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.d.random.int(i + 1);
      [a[i], a[j]] = [a[j], a[i]];
    }
  }

  /** Up to k distinct random members (never ourselves) that pass the filter. */
  randomMembers(k: number, filter: (m: Member) => boolean): Member[] {
    const list = this.probeList;
    const out: Member[] = [];
    if (k <= 0 || list.length === 0) return out;
    for (let tries = 0; tries < 3 * list.length && out.length < k; tries++) {
      const m = list[this.d.random.int(list.length)];
      if (filter(m) && !out.includes(m)) out.push(m);
    }
    return out;
  }

  /** Gossip targets: live members and recently dead ones (so they can still refute). */
  gossipTargets(k: number): Member[] {
    const now = this.d.clock.now();
    const horizon = this.d.config.gossipToTheDead;
    return this.randomMembers(k, (m) => isLive(m.state) || (m.state === 'dead' && now - m.since < horizon));
  }

  /** Forget members dead or left for longer than the reap times. */
  reap(): void {
    const now = this.d.clock.now();
    const c = this.d.config;
    let removed = false;
    for (const m of this.byId.values()) {
      if (m === this.self) continue;
      const age = now - m.since;
      if ((m.state === 'dead' && age >= c.deadNodeReap) || (m.state === 'left' && age >= c.leftNodeReap)) {
        this.byId.delete(m.id);
        if (m.state === 'dead') this.dead--;
        removed = true;
        this.d.emit({ kind: 'reap', member: m, previous: m.state });
      }
    }
    if (removed) {
      this.probeList = this.probeList.filter((m) => this.byId.get(m.id) === m);
      this.probeIndex = Math.min(this.probeIndex, this.probeList.length);
    }
  }

  stop(): void {
    for (const s of this.suspicions.values()) s.cancel();
    this.suspicions.clear();
  }
}
