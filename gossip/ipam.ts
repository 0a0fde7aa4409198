// Conflict-free IPv4 allocation across the cluster (scheme and safety argument: docs/gossip.md).
//
// - A network's pool is cut into blocks (ipam-layout.ts). Only the node holding a block hands
//   out addresses from it, so allocation inside an owned block is local and instant.
// - Holding a block takes a quorum claim: grants from a strict majority of the voters (every
//   member this node knows that has not left: alive, suspect and dead-but-not-reaped, itself
//   included). A voter grants a block to at most one live claimant. The won claim is recorded
//   as a cluster-scoped table entry ipam.blocks["<net>/<block>"] = {holder}.
// - Addresses are table entries ipam.addrs["<net>/<ip>"] = {holder, endpoint}, written by the
//   block holder. `--ip` in someone else's block is asked of that block's holder; in a free
//   block it claims the block first. With no free block left, a node borrows an address from
//   a holder that still has room.
// - A holder is "gone" once membership has forgotten it (dead for deadNodeReap or left for
//   leftNodeReap); only then are its blocks and addresses free again.

import type { Message, MessageOf } from './codec.js';
import type { GossipConfig } from './config.js';
import { ipv4ToString, parseIpv4 } from '../router/wire/addr.js';
import { Layout, type IpPool } from './ipam-layout.js';
import type { MemberState } from './membership.js';
import type { GossipNode } from './node.js';
import type { TableDef, Tables } from './tables.js';
import type { Clock, Random } from './transport.js';

export type IpamErrorCode =
  | 'NO_QUORUM'
  | 'CONTENDED'
  | 'POOL_EXHAUSTED'
  | 'IP_IN_USE'
  | 'IP_OUT_OF_RANGE'
  | 'OWNER_UNREACHABLE'
  | 'NOT_SYNCED'
  | 'BAD_POOL'
  | 'STOPPED';

export class IpamError extends Error {
  constructor(
    readonly code: IpamErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'IpamError';
  }
}

export interface AllocateOptions {
  /** A specific address (`--ip`). */
  ip?: string;
  /** Endpoint id recorded with the address (informative). */
  endpoint?: string;
  /** Addresses per block (default 16; every node must use the same value for a network). */
  blockSize?: number;
}

export interface IpamDeps {
  selfId: string;
  config: GossipConfig;
  random: Random;
  clock: Clock;
  tables: Tables;
  /** The node's member list (itself included). */
  members: { get(id: string): MemberView | undefined; all(): Iterable<MemberView> };
  request(addr: string, m: Message, timeoutMs: number, cb: (err: Error | undefined, reply?: Message) => void): void;
  synced(): boolean;
}

export interface MemberView {
  id: string;
  addr: string;
  state: MemberState;
}

type Done = (err: IpamError | undefined, ip?: number) => void;

/** Rounds of claims that lost a race before an allocation gives up. */
const MAX_CLAIM_ROUNDS = 6;

const BLOCKS = 'ipam.blocks';
const ADDRS = 'ipam.addrs';
/** IPAM records outlive the node that wrote them (a holder is gone only once reaped). */
export const IPAM_TABLES: Record<string, TableDef> = { [BLOCKS]: { scope: 'cluster' }, [ADDRS]: { scope: 'cluster' } };

/**
 * Plug an IPAM into a node (before it starts): its tables, its two requests (a block claim
 * to a voter, an allocation to a block holder), and its stop.
 */
export function attachIpam(node: GossipNode): Ipam {
  for (const [name, def] of Object.entries(IPAM_TABLES)) node.tables.define(name, def);
  const ipam = new Ipam({
    selfId: node.id,
    config: node.config,
    random: node.transport.random,
    clock: node.transport.clock,
    tables: node.tables,
    members: { get: (id) => node.member(id), all: () => node.members() },
    request: (addr, m, t, cb) => node.request(addr, m, t, cb),
    synced: () => node.synced,
  });
  node.handle('claim', (_from, m, reply) => ipam.onClaim(m, reply));
  node.handle('alloc', (_from, m, reply) => ipam.onAlloc(m, reply));
  node.onStop(() => ipam.stop());
  return ipam;
}

export class Ipam {
  /** "<net>/<block>" -> claimant this node (as a voter) granted the block to. */
  private readonly grants = new Map<string, string>();
  /** Per-network FIFO of allocation work on this node (one at a time per network). */
  private readonly queues = new Map<string, Array<() => void>>();
  private stopped = false;
  /** Quorum claims this node started / won (for stats and tests). */
  claims = { started: 0, won: 0 };

  constructor(private readonly d: IpamDeps) {}

  /** Allocate an address in `network`; resolves to the dotted quad. Rejects with IpamError. */
  allocate(network: string, pool: IpPool, opts: AllocateOptions = {}): Promise<string> {
    return new Promise((resolve, reject) => {
      let layout: Layout;
      let want = 0;
      try {
        layout = Layout.of(pool, opts.blockSize);
      } catch (e) {
        return reject(new IpamError('BAD_POOL', (e as Error).message));
      }
      if (opts.ip !== undefined) {
        try {
          want = parseIpv4(opts.ip);
        } catch {
          want = -1;
        }
        if (!layout.allocatable(want)) return reject(new IpamError('IP_OUT_OF_RANGE', `address ${opts.ip} is not allocatable in this network`));
      }
      this.serial(network, (next) =>
        this.allocateNow(network, layout, want, this.d.selfId, opts.endpoint ?? '', 0, (err, ip) => {
          next();
          if (err) reject(err);
          else resolve(ipv4ToString(ip as number));
        }),
      );
    });
  }

  /** Give an address back (any node may). False when it was not allocated. */
  release(network: string, ip: string): boolean {
    return this.d.tables.delete(ADDRS, `${network}/${ip}`);
  }

  /** Addresses in use in a network (records of gone holders are free and not listed). */
  allocations(network: string): Array<{ ip: string; holder: string; endpoint: string }> {
    const out: Array<{ ip: string; holder: string; endpoint: string }> = [];
    for (const [k, v] of this.d.tables.entries(ADDRS, `${network}/`)) {
      const o = v as { holder: string; endpoint: string };
      if (!this.gone(o.holder)) out.push({ ip: k.slice(network.length + 1), holder: o.holder, endpoint: o.endpoint });
    }
    return out;
  }

  blocks(network: string): Array<{ block: number; holder: string }> {
    return this.d.tables.entries(BLOCKS, `${network}/`).map(([k, v]) => ({ block: Number(k.slice(network.length + 1)), holder: (v as { holder: string }).holder }));
  }

  stop(): void {
    this.stopped = true;
  }

  private serial(network: string, task: (next: () => void) => void): void {
    let q = this.queues.get(network);
    const run = (): void => task(() => {
      q?.shift();
      if (q && q.length > 0) q[0]();
      else this.queues.delete(network);
    });
    if (!q) {
      this.queues.set(network, (q = [run]));
      run();
    } else q.push(run);
  }

  private gone(id: string): boolean {
    return id !== this.d.selfId && this.d.members.get(id) === undefined;
  }

  /** Committed live holder of a block, if any. */
  private holderOf(network: string, block: number): string | undefined {
    const v = this.d.tables.get(BLOCKS, `${network}/${block}`) as { holder?: string } | undefined;
    return v?.holder && !this.gone(v.holder) ? v.holder : undefined;
  }

  private used(network: string): Set<number> {
    const out = new Set<number>();
    for (const [k, v] of this.d.tables.entries(ADDRS, `${network}/`)) {
      if (!this.gone((v as { holder: string }).holder)) out.add(parseIpv4(k.slice(network.length + 1)));
    }
    return out;
  }

  private record(network: string, ip: number, holder: string, endpoint: string): void {
    this.d.tables.set(ADDRS, `${network}/${ipv4ToString(ip)}`, { holder, endpoint });
  }

  private firstFree(layout: Layout, block: number, used: Set<number>): number | undefined {
    for (const ip of layout.addresses(block)) if (!used.has(ip)) return ip;
    return undefined;
  }

  /** Lost a race for a block: try again after a random back-off (the winner's entry spreads). */
  private retry(round: number, again: (round: number) => void, err: IpamError, done: Done): void {
    if (round + 1 >= MAX_CLAIM_ROUNDS) return done(err);
    const ms = this.d.config.gossipInterval * (1 + round + this.d.random.next() * 4);
    this.d.clock.setTimer(ms, () => again(round + 1));
  }

  private allocateNow(network: string, layout: Layout, want: number, holder: string, endpoint: string, round: number, done: Done): void {
    if (this.stopped) return done(new IpamError('STOPPED', 'gossip node stopped'));
    if (!this.d.synced()) return done(new IpamError('NOT_SYNCED', 'not yet synchronised with the cluster (join pending)'));
    const self = this.d.selfId;
    const used = this.used(network);
    const take = (ip: number): void => {
      this.record(network, ip, holder, endpoint);
      done(undefined, ip);
    };
    if (want !== 0) {
      const b = layout.blockOf(want);
      const h = this.holderOf(network, b);
      if (h === self) return used.has(want) ? done(new IpamError('IP_IN_USE', `address ${ipv4ToString(want)} is already in use`)) : take(want);
      if (h !== undefined) return this.askHolder(h, network, layout, want, holder, endpoint, done);
      const again = (r: number): void => this.allocateNow(network, layout, want, holder, endpoint, r, done);
      return this.claim(network, layout, [b], (err) => {
        if (!err) return again(round);
        if (err.code === 'CONTENDED') return this.retry(round, again, err, done);
        done(err);
      });
    }
    for (let b = 0; b < layout.blocks; b++) {
      if (this.holderOf(network, b) !== self) continue;
      const ip = this.firstFree(layout, b, used);
      if (ip !== undefined) return take(ip);
    }
    if (holder !== self) return done(new IpamError('POOL_EXHAUSTED', 'no free address in the blocks this node holds'));
    const free: number[] = [];
    for (let b = 0; b < layout.blocks; b++) if (this.holderOf(network, b) === undefined && this.voterFree(network, b) && layout.hasAddresses(b)) free.push(b);
    if (free.length === 0) return this.borrow(network, layout, used, endpoint, done);
    for (let i = free.length - 1; i > 0; i--) {
      const j = this.d.random.int(i + 1);
      [free[i], free[j]] = [free[j], free[i]];
    }
    this.claim(network, layout, free.slice(0, 4), (err, b) => {
      if (err?.code === 'CONTENDED') return this.retry(round, (r) => this.allocateNow(network, layout, 0, holder, endpoint, r, done), err, done);
      if (err) return done(err);
      const ip = this.firstFree(layout, b as number, this.used(network));
      if (ip === undefined) return done(new IpamError('POOL_EXHAUSTED', 'claimed block has no free address'));
      take(ip);
    });
  }

  /** No free block: ask holders that (as far as we know) still have room. */
  private borrow(network: string, layout: Layout, used: Set<number>, endpoint: string, done: Done): void {
    const lenders: string[] = [];
    for (let b = 0; b < layout.blocks; b++) {
      const h = this.holderOf(network, b);
      if (h && h !== this.d.selfId && !lenders.includes(h) && this.firstFree(layout, b, used) !== undefined) lenders.push(h);
    }
    const next = (i: number): void => {
      if (i >= lenders.length) return done(new IpamError('POOL_EXHAUSTED', `no free address left in network ${network}`));
      this.askHolder(lenders[i], network, layout, 0, this.d.selfId, endpoint, (err, ip) => (err ? next(i + 1) : done(undefined, ip)));
    };
    next(0);
  }

  private askHolder(h: string, network: string, layout: Layout, ip: number, holder: string, endpoint: string, done: Done): void {
    const m = this.d.members.get(h);
    if (!m || (m.state !== 'alive' && m.state !== 'suspect')) {
      return done(new IpamError('OWNER_UNREACHABLE', `the block of ${ipv4ToString(ip || layout.pool.first)} is held by ${h}, which is ${m?.state ?? 'unknown'}`));
    }
    this.d.request(m.addr, { t: 'alloc', network, pool: layout.pool, ip, holder, endpoint }, this.d.config.tcpTimeout, (err, r) => {
      if (err || r?.t !== 'allocReply') return done(new IpamError('OWNER_UNREACHABLE', `block holder ${h} did not answer: ${err?.message ?? 'bad reply'}`));
      if (!r.ok) return done(new IpamError(r.code as IpamErrorCode, r.message));
      done(undefined, r.ip);
    });
  }

  /** Block holder side of askHolder. */
  onAlloc(m: MessageOf<'alloc'>, reply: (m: Message) => void): void {
    let layout: Layout;
    try {
      layout = new Layout(m.pool);
    } catch (e) {
      return reply({ t: 'allocReply', ok: false, ip: 0, code: 'IP_OUT_OF_RANGE', message: (e as Error).message });
    }
    if (m.ip !== 0 && !layout.allocatable(m.ip)) return reply({ t: 'allocReply', ok: false, ip: 0, code: 'IP_OUT_OF_RANGE', message: 'address not allocatable' });
    if (m.ip !== 0 && this.holderOf(m.network, layout.blockOf(m.ip)) !== this.d.selfId) {
      return reply({ t: 'allocReply', ok: false, ip: 0, code: 'OWNER_UNREACHABLE', message: 'this node does not hold that block' });
    }
    this.serial(m.network, (next) =>
      this.allocateNow(m.network, layout, m.ip, m.holder, m.endpoint, 0, (err, ip) => {
        next();
        reply(err ? { t: 'allocReply', ok: false, ip: 0, code: err.code, message: err.message } : { t: 'allocReply', ok: true, ip: ip as number, code: '', message: '' });
      }),
    );
  }

  // ---- quorum claims -----------------------------------------------------------------------

  /** Would this node, as a voter, grant block b to us? (Used to pick candidate blocks.) */
  private voterFree(network: string, b: number): boolean {
    const g = this.grants.get(`${network}/${b}`);
    return g === undefined || g === this.d.selfId || this.gone(g);
  }

  /** The voter rule. */
  vote(network: string, block: number, claimant: string): { granted: boolean; holder: string } {
    if (!this.d.synced()) return { granted: false, holder: '' };
    const c = this.d.members.get(claimant);
    if (!c || c.state === 'left') return { granted: false, holder: '' };
    const committed = this.holderOf(network, block);
    if (committed && committed !== claimant) return { granted: false, holder: committed };
    const key = `${network}/${block}`;
    const g = this.grants.get(key);
    if (!committed && g !== undefined && g !== claimant && !this.gone(g)) return { granted: false, holder: g };
    this.grants.set(key, claimant);
    return { granted: true, holder: claimant };
  }

  onClaim(m: MessageOf<'claim'>, reply: (m: Message) => void): void {
    const voters = this.voters().length;
    if (m.release) {
      const key = `${m.network}/${m.block}`;
      if (this.grants.get(key) === m.claimant && this.holderOf(m.network, m.block) !== m.claimant) this.grants.delete(key);
      return reply({ t: 'vote', granted: false, holder: '', voters });
    }
    const v = this.vote(m.network, m.block, m.claimant);
    reply({ t: 'vote', granted: v.granted, holder: v.holder, voters });
  }

  private voters(): Array<{ id: string; addr: string; state: string }> {
    return [...this.d.members.all()].filter((m) => m.state !== 'left' || m.id === this.d.selfId);
  }

  /** Try candidate blocks in order until one is won; CONTENDED when another claimant had each. */
  private claim(network: string, layout: Layout, candidates: number[], done: (err: IpamError | undefined, block?: number) => void): void {
    const next = (i: number, contended: string[]): void => {
      if (this.stopped) return done(new IpamError('STOPPED', 'gossip node stopped'));
      if (i >= candidates.length) {
        return done(new IpamError('CONTENDED', `address blocks are being claimed by other nodes right now (${contended.join(', ')}); try again`));
      }
      this.claimOne(network, candidates[i], (err, holder) => {
        if (!err) {
          this.d.tables.set(BLOCKS, `${network}/${candidates[i]}`, { holder: this.d.selfId, range: layout.describe(candidates[i]) });
          this.claims.won++;
          return done(undefined, candidates[i]);
        }
        if (err.code !== 'CONTENDED') return done(err);
        next(i + 1, [...contended, `${layout.describe(candidates[i])}: ${holder || 'contended'}`]);
      });
    };
    next(0, []);
  }

  /**
   * Ask every live voter for block b. Won when grants (ours included) reach a strict majority
   * of the largest voter count seen (ours or any voter's). Lost claims are released.
   */
  private claimOne(network: string, block: number, done: (err: IpamError | undefined, holder?: string) => void): void {
    this.claims.started++;
    const self = this.d.selfId;
    const all = this.voters();
    const mine = this.vote(network, block, self);
    if (!mine.granted) return done(new IpamError('CONTENDED', 'contended'), mine.holder);
    const asked = all.filter((m) => m.id !== self && (m.state === 'alive' || m.state === 'suspect'));
    let granted = 1;
    let maxVoters = all.length;
    let pending = asked.length;
    let contendedBy = '';
    let decided = false;
    const need = (): number => Math.floor(maxVoters / 2) + 1;
    const release = (addr: string): void =>
      this.d.request(addr, { t: 'claim', network, block, claimant: self, release: true }, this.d.config.tcpTimeout, () => {});
    const decide = (): void => {
      if (decided) return;
      if (granted >= need()) {
        decided = true;
        return done(undefined);
      }
      if (pending > 0 && granted + pending >= need()) return;
      decided = true;
      if (this.grants.get(`${network}/${block}`) === self) this.grants.delete(`${network}/${block}`);
      for (const m of asked) release(m.addr);
      if (contendedBy) return done(new IpamError('CONTENDED', 'contended'), contendedBy);
      const reachable = asked.length + 1;
      done(
        new IpamError(
          'NO_QUORUM',
          `no quorum for a new address block in network ${network}: ${reachable} of ${maxVoters} voters reachable, ${granted} granted, need ${need()}; ` +
            'this node is probably on the minority side of a partition (addresses in blocks it already holds still work)',
        ),
      );
    };
    for (const m of asked) {
      this.d.request(m.addr, { t: 'claim', network, block, claimant: self, release: false }, this.d.config.tcpTimeout, (err, r) => {
        pending--;
        if (!err && r?.t === 'vote') {
          maxVoters = Math.max(maxVoters, r.voters);
          if (r.granted) {
            granted++;
            if (decided && this.holderOf(network, block) !== self) release(m.addr);
          } else if (r.holder) contendedBy = r.holder;
        }
        decide();
      });
    }
    decide();
  }
}
