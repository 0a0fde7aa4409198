// Dissemination: the two piggyback queues and how their contents leave the node (on every
// datagram, and to GossipNodes random members every GossipInterval), plus push-pull
// anti-entropy (periodic, at join, and towards dead members/seeds to heal partitions).

import { MalformedError } from './buf.js';
import { encodeMessage, type EntryWire, type Message, type NodeState } from './codec.js';
import type { GossipConfig } from './config.js';
import type { Membership } from './membership.js';
import { BroadcastQueue } from './queue.js';
import type { Tables } from './tables.js';
import type { Random } from './transport.js';
import type { Wire } from './wire.js';

export interface GossiperDeps {
  config: GossipConfig;
  random: Random;
  wire: Wire;
  /** Late bound: membership and tables are built after the gossiper they broadcast through. */
  membership(): Membership;
  tables(): Tables;
  /** A full state exchange with a peer completed. */
  onSynced(): void;
}

export class Gossiper {
  /** Membership news first (failure detection must not starve), table changes after. */
  readonly memberQueue: BroadcastQueue;
  readonly tableQueue: BroadcastQueue;
  private seeds: string[] = [];

  constructor(private readonly d: GossiperDeps) {
    this.memberQueue = new BroadcastQueue(() => d.membership().retransmitLimit());
    this.tableQueue = new BroadcastQueue(() => d.membership().retransmitLimit());
  }

  /** Queue a broadcast. One that could never fit a datagram would sit there forever: refuse it. */
  enqueue(queue: 'member' | 'table', key: string, m: Message): void {
    const b = encodeMessage(m);
    if (b.length + 4 > this.d.wire.budget) {
      this.d.wire.stats.dropped.oversize++;
      return;
    }
    (queue === 'member' ? this.memberQueue : this.tableQueue).enqueue(key, b);
  }

  /** Fill the rest of a datagram with queued broadcasts: membership first, then tables. */
  private piggyback(parts: Uint8Array[], used: number): void {
    const budget = this.d.wire.budget - 2 - used;
    const got = this.memberQueue.take(budget, 2, parts, 255);
    this.tableQueue.take(budget - got, 2, parts, 255);
  }

  /** Send messages as one datagram, with as many broadcasts as fit. */
  send(addr: string, msgs: Message[]): void {
    const parts = msgs.map(encodeMessage);
    let used = 0;
    for (const p of parts) used += p.length + 2;
    this.piggyback(parts, used);
    this.d.wire.sendParts(addr, parts);
  }

  /** One gossip round: queued broadcasts to GossipNodes random members. */
  gossip(): void {
    for (const m of this.d.membership().gossipTargets(this.d.config.gossipNodes)) {
      const parts: Uint8Array[] = [];
      this.piggyback(parts, 0);
      if (parts.length === 0) return;
      this.d.wire.sendParts(m.addr, parts);
    }
  }

  localState(join: boolean): Message {
    return { t: 'pushPull', join, nodes: this.d.membership().localState(), entries: this.d.tables().snapshot() };
  }

  pushPull(addr: string, join: boolean, cb: (err?: Error) => void): void {
    this.d.wire.request(addr, this.localState(join), this.d.config.tcpTimeout, (err, r) => {
      if (err) return cb(err);
      if (r?.t !== 'pushPull') return cb(new Error(`unexpected answer ${r?.t}`));
      this.merge(r.nodes, r.entries, join ? 'join' : 'sync');
      cb();
    });
  }

  /** Apply a peer's full state. After our own join nothing learned is re-broadcast at once. */
  merge(nodes: NodeState[], entries: EntryWire[], src: 'join' | 'sync'): void {
    this.d.membership().merge(nodes, src === 'join');
    const tables = this.d.tables();
    for (const e of entries) {
      try {
        tables.apply(e, src);
      } catch (err) {
        if (!(err instanceof MalformedError)) throw err;
        this.d.wire.stats.dropped.malformed++;
      }
    }
    this.d.onSynced();
  }

  periodicPushPull(): void {
    const [m] = this.d.membership().randomMembers(1, (x) => x.state === 'alive');
    if (m) this.pushPull(m.addr, false, () => {});
  }

  addSeeds(addrs: string[]): void {
    this.seeds = [...new Set([...this.seeds, ...addrs])];
  }

  /** Heal partitions: push-pull with a random dead member, or a seed when we know no one. */
  reconnect(): void {
    const ms = this.d.membership();
    if (ms.numDead() > 0) {
      const [dead] = ms.randomMembers(1, (x) => x.state === 'dead');
      if (dead) this.pushPull(dead.addr, false, () => {});
    }
    if (ms.numLive() <= 1 && this.seeds.length > 0) {
      this.pushPull(this.seeds[this.d.random.int(this.seeds.length)], false, () => {});
    }
  }
}
