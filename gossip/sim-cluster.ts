// A cluster of GossipNodes on one SimNetwork: what the tests and the bench build on.

import type { GossipConfig, ProfileName } from './config.js';
import type { MemberState } from './membership.js';
import { GossipNode } from './node.js';
import { generateKey, Keyring } from './security.js';
import { SimNetwork, type SimOptions } from './sim.js';
import type { JsonValue } from './value.js';

export interface SimClusterOptions extends SimOptions {
  profile?: ProfileName;
  config?: Partial<GossipConfig>;
  /** Seal every message with AES-256-GCM (slower; default off in the simulator). */
  crypto?: boolean;
  meta?: (i: number) => JsonValue;
}

export function simAddr(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7946`;
}

export class SimCluster {
  readonly net: SimNetwork;
  readonly nodes: GossipNode[] = [];
  private readonly key = generateKey();

  constructor(
    n: number,
    private readonly opts: SimClusterOptions = {},
  ) {
    this.net = new SimNetwork(opts);
    for (let i = 0; i < n; i++) this.add();
  }

  /** Add (but do not start) one more node. */
  add(): GossipNode {
    const i = this.nodes.length;
    const node = new GossipNode(
      {
        name: `node-${i}`,
        keyring: this.opts.crypto ? new Keyring(this.key) : null,
        profile: this.opts.profile ?? 'fast',
        config: this.opts.config,
        meta: this.opts.meta?.(i) ?? { i },
      },
      this.net.transport(simAddr(i)),
    );
    this.nodes.push(node);
    return node;
  }

  addr(i: number): string {
    return simAddr(i);
  }

  /** Start every node; node i > 0 joins node 0 at i * staggerMs. Runs until all joins answered. */
  async startAll(staggerMs = 1): Promise<void> {
    for (const n of this.nodes) await n.start();
    const joins: Promise<number>[] = [];
    this.nodes.slice(1).forEach((n, i) => {
      this.net.schedule(i * staggerMs, () => joins.push(n.join([simAddr(0)])));
    });
    this.net.run(this.nodes.length * staggerMs + 100);
    await Promise.all(joins);
  }

  /**
   * Fast bootstrap for big clusters: everyone joins node 0, then pulls node 0's (now full)
   * state once more, so every member list is complete without waiting for gossip.
   */
  async warmStart(): Promise<void> {
    await this.startAll(1);
    const again = this.nodes.slice(1).map((n) => n.join([simAddr(0)]));
    this.net.run(100);
    await Promise.all(again);
  }

  /** Does every node in `who` see exactly `expected` members alive (itself included)? */
  converged(who: GossipNode[] = this.live(), expected = who.length): boolean {
    return who.every((n) => n.stats().members.alive === expected);
  }

  /** Nodes whose address is not crashed. */
  live(): GossipNode[] {
    return this.nodes.filter((_, i) => !this.net.isCrashed(simAddr(i)));
  }

  /** State of node `about` in the view of `viewer`. */
  stateOf(viewer: GossipNode, about: GossipNode): MemberState | undefined {
    return viewer.member(about.id)?.state;
  }

  crash(i: number): void {
    this.net.crash(simAddr(i));
  }
}
