// A cluster of GossipNodes on one SimNetwork: what the tests and the bench build on.

import type { NodeState } from './codec.js';
import type { GossipConfig, ProfileName } from './config.js';
import { attachIpam, type Ipam } from './ipam.js';
import type { MemberState } from './membership.js';
import { GossipNode } from './node.js';
import { generateKey, Keyring } from './security.js';
import { SimNetwork, type SimOptions } from './sim.js';
import type { TableDef } from './tables.js';
import type { JsonValue } from './value.js';

export interface SimClusterOptions extends SimOptions {
  profile?: ProfileName;
  config?: Partial<GossipConfig>;
  /** Seal every message with AES-256-GCM (slower; default off in the simulator). */
  crypto?: boolean;
  meta?: (i: number) => JsonValue;
  /** Table scopes every node defines. */
  tables?: Record<string, TableDef>;
}

export function simAddr(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}:7946`;
}

export class SimCluster {
  readonly net: SimNetwork;
  readonly nodes: GossipNode[] = [];
  /** Every node carries the quorum IPAM. */
  private readonly ipams = new Map<GossipNode, Ipam>();
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
        tables: this.opts.tables,
      },
      this.net.transport(simAddr(i)),
    );
    this.ipams.set(node, attachIpam(node));
    this.nodes.push(node);
    return node;
  }

  ipamOf(node: GossipNode): Ipam {
    const ipam = this.ipams.get(node);
    if (!ipam) throw new Error(`${node.name} is not a node of this cluster`);
    return ipam;
  }

  addr(i: number): string {
    return simAddr(i);
  }

  /**
   * Run the simulator until every promise settled (or maxMs passed), then await them. Promises
   * of the simulated nodes only settle while virtual time advances.
   */
  async settle<T>(promises: Promise<T>[], maxMs = 60_000): Promise<T[]> {
    let settled = 0;
    const tracked = promises.map((p) => p.finally(() => settled++));
    for (let waited = 0; waited < maxMs; waited += 10) {
      await Promise.resolve(); // let finished promises report before checking
      if (settled === promises.length) break;
      this.net.run(10);
    }
    return Promise.all(tracked);
  }

  /** Start every node; node i > 0 joins node 0 at i * staggerMs. Runs until all joins answered. */
  async startAll(staggerMs = 1): Promise<void> {
    for (const n of this.nodes) await n.start();
    const joins: Promise<number>[] = [];
    this.nodes.slice(1).forEach((n, i) => {
      this.net.schedule(i * staggerMs, () => joins.push(n.join([simAddr(0)])));
    });
    this.net.run(this.nodes.length * staggerMs + 1);
    await this.settle(joins);
  }

  /**
   * Bootstrap big clusters without simulating the join storm: every node starts with every
   * member already in its list (as if the cluster had been running for a while).
   */
  async warmStart(): Promise<void> {
    for (const n of this.nodes) await n.start();
    const states = this.nodes.map((n) => n.memberStates().find((s) => s.id === n.id) as NodeState);
    for (const n of this.nodes) n.preload(states);
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
