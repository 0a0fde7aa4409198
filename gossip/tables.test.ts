import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import type { EntryWire } from './codec.js';
import { PROFILES } from './config.js';
import type { MemberState } from './membership.js';
import { SimCluster, simAddr } from './sim-cluster.js';
import { Tables, type TableDef, type TableEvent } from './tables.js';
import { encodeValue } from './value.js';

/** A Tables instance with hand-driven membership and clock. */
function standalone(members: Record<string, MemberState> = {}) {
  let now = 0;
  const states = new Map(Object.entries(members).map(([k, v]) => [k, { state: v, since: 0 }]));
  const broadcasts: string[] = [];
  const t = new Tables({
    selfId: 'self',
    clock: { now: () => now, setTimer: () => () => {} },
    config: PROFILES.fast,
    member: (id) => (id === 'self' ? { state: 'alive', since: 0 } : states.get(id)),
    broadcast: (key) => broadcasts.push(key),
    queueSize: () => 0,
  });
  t.define('networks', { scope: 'cluster' });
  return { t, broadcasts, advance: (ms: number) => (now += ms), states };
}

/** The agent's two tables, as agent/tables.ts defines them. */
const tables: Record<string, TableDef> = { networks: { scope: 'cluster' }, endpoints: { scope: 'owner' } };

const wire = (e: Partial<EntryWire> & { ltime: number; owner: string }, value: unknown = e.ltime): EntryWire => ({
  table: 'endpoints',
  key: 'k',
  deleted: false,
  ...e,
  value: e.deleted ? new Uint8Array(0) : encodeValue(value as never),
});

describe('tables: last writer wins', () => {
  test('the final entry is the max (ltime, owner) whatever the delivery order or duplication', () => {
    const owners = ['a', 'b', 'c'];
    // (ltime, owner) identifies a write: one owner never stamps two writes with one time.
    const arb = fc.uniqueArray(fc.record({ ltime: fc.integer({ min: 1, max: 6 }), owner: fc.constantFrom(...owners), deleted: fc.boolean() }), {
      minLength: 1,
      maxLength: 12,
      selector: (e) => `${e.ltime}/${e.owner}`,
    });
    fc.assert(
      fc.property(arb, fc.func(fc.integer()), (entries, order) => {
        const run = (list: typeof entries) => {
          const { t } = standalone({ a: 'alive', b: 'alive', c: 'alive' });
          for (const e of list) t.apply(wire(e), 'gossip');
          return t.entry('endpoints', 'k');
        };
        const shuffled = [...entries, ...entries].sort((x, y) => order(x) - order(y));
        const winner = entries.reduce((w, e) => (e.ltime > w.ltime || (e.ltime === w.ltime && e.owner > w.owner) ? e : w));
        const a = run(entries);
        const b = run(shuffled);
        expect(a).toEqual(b);
        expect(a).toMatchObject({ ltime: winner.ltime, owner: winner.owner });
      }),
      { numRuns: 500 },
    );
  });

  test('local writes witness remote Lamport times, so they always win; events follow visibility', () => {
    const { t } = standalone({ a: 'alive' });
    const events: TableEvent[] = [];
    t.subscribe((e) => events.push(e));
    t.apply(wire({ ltime: 41, owner: 'a' }, { ip: '10.0.9.2' }), 'gossip');
    t.set('endpoints', 'k', { ip: '10.0.9.3' });
    expect(t.entry('endpoints', 'k')).toMatchObject({ owner: 'self', ltime: 42 });
    t.apply(wire({ ltime: 42, owner: 'a' }, { ip: 'late' }), 'gossip'); // 'a' < 'self': loses the tie
    expect(t.get('endpoints', 'k')).toEqual({ ip: '10.0.9.3' });
    t.delete('endpoints', 'k');
    expect(events.map((e) => [e.kind, e.cause, e.value])).toEqual([
      ['create', 'write', { ip: '10.0.9.2' }],
      ['update', 'write', { ip: '10.0.9.3' }],
      ['delete', 'write', undefined],
    ]);
  });

  test('a tombstone beats older writes until it is reaped; values that cannot fit a packet are refused', () => {
    const { t, advance } = standalone({ a: 'alive' });
    t.apply(wire({ ltime: 5, owner: 'a' }), 'gossip');
    t.apply(wire({ ltime: 7, owner: 'a', deleted: true }), 'gossip');
    expect(t.apply(wire({ ltime: 6, owner: 'a' }), 'gossip')).toBe(false);
    expect(t.get('endpoints', 'k')).toBeUndefined();
    expect(t.entry('endpoints', 'k')).toMatchObject({ deleted: true, ltime: 7 });
    advance(PROFILES.fast.tombstoneReap - 1);
    t.reap();
    expect(t.entry('endpoints', 'k')).toBeDefined();
    advance(1);
    t.reap();
    expect(t.entry('endpoints', 'k')).toBeUndefined();
    expect(() => t.set('endpoints', 'big', 'x'.repeat(2000))).toThrow(/exceeds/);
  });

  test('owner-scoped entries from unknown or departed owners are not stored; cluster-scoped ones are', () => {
    const { t } = standalone({ gone: 'left' });
    expect(t.apply(wire({ ltime: 1, owner: 'stranger' }), 'gossip')).toBe(false);
    expect(t.apply(wire({ ltime: 1, owner: 'gone' }), 'gossip')).toBe(false);
    expect(t.apply({ ...wire({ ltime: 1, owner: 'gone' }), table: 'networks' }, 'gossip')).toBe(true);
  });
});

describe('tables on the simulator', () => {
  test('a dead owner: entries suspended (delete events), back on return (create events), dropped after the reap time', async () => {
    const c = new SimCluster(6, { tables, seed: 2, profile: 'fast' });
    await c.startAll(5);
    expect(c.net.runUntil(() => c.converged(), 10_000)).toBe(true);
    const [reader, owner] = [c.nodes[0], c.nodes[3]];
    owner.tables.set('endpoints', 'ep1', { ip: '10.0.9.2', host: owner.id });
    owner.tables.set('networks', 'net1', { name: 'overnet', vni: 4096 });
    c.net.run(1_000);
    expect(reader.tables.get('endpoints', 'ep1')).toEqual({ ip: '10.0.9.2', host: owner.id });
    const events: TableEvent[] = [];
    reader.tables.subscribe((e) => events.push(e));

    c.crash(3);
    expect(c.net.runUntil(() => reader.member(owner.id)?.state === 'dead', 10_000)).toBe(true);
    expect(reader.tables.get('endpoints', 'ep1')).toBeUndefined(); // the datapath stops using it
    expect(reader.tables.entry('endpoints', 'ep1')).toMatchObject({ visible: false, deleted: false });
    expect(reader.tables.get('networks', 'net1')).toEqual({ name: 'overnet', vni: 4096 }); // cluster scope
    (c.net as unknown as { crashed: Set<string> }).crashed.delete(simAddr(3));
    expect(c.net.runUntil(() => reader.member(owner.id)?.state === 'alive', 10_000)).toBe(true);
    expect(reader.tables.get('endpoints', 'ep1')).toEqual({ ip: '10.0.9.2', host: owner.id });
    expect(events.map((e) => [e.kind, e.key, e.cause])).toEqual([
      ['delete', 'ep1', 'suspended'],
      ['create', 'ep1', 'resumed'],
    ]);

    c.crash(3);
    expect(c.net.runUntil(() => reader.member(owner.id)?.state === 'dead', 10_000)).toBe(true);
    c.net.run(PROFILES.fast.deadOwnerReap + 2 * PROFILES.fast.reapInterval);
    expect(reader.tables.entry('endpoints', 'ep1')).toBeUndefined();
    expect(reader.tables.get('networks', 'net1')).toBeDefined();
  });

  test('an owner that leaves gracefully takes its entries along (delete, cause owner-left)', async () => {
    const c = new SimCluster(4, { tables, seed: 6, profile: 'fast' });
    await c.startAll(5);
    c.net.runUntil(() => c.converged(), 10_000);
    c.nodes[2].tables.set('endpoints', 'ep2', { ip: '10.0.9.5' });
    c.net.run(1_000);
    const events: TableEvent[] = [];
    c.nodes[0].tables.subscribe((e) => events.push(e));
    const p = c.nodes[2].leave();
    c.net.run(1_000);
    await p;
    await c.nodes[2].stop();
    c.net.run(1_000);
    expect(c.nodes[0].tables.entry('endpoints', 'ep2')).toBeUndefined();
    expect(events.map((e) => [e.kind, e.cause])).toEqual([['delete', 'owner-left']]);
  });

  test('broadcasts alone spread writes (no push-pull); push-pull alone repairs what broadcasts missed', async () => {
    const c = new SimCluster(30, { tables, seed: 9, profile: 'fast', config: { pushPullInterval: 3_600_000 } });
    await c.startAll(5);
    c.net.runUntil(() => c.converged(), 10_000);
    for (let i = 0; i < 30; i++) c.nodes[i].tables.set('endpoints', `ep${i}`, { i });
    expect(c.net.runUntil(() => c.nodes.every((n) => n.tables.entries('endpoints').length === 30), 5_000)).toBe(true);

    // Node 7 is cut off for a moment (shorter than any suspicion timeout): it misses the
    // broadcasts of 10 writes, which exhaust their retransmits meanwhile.
    c.net.partition([[simAddr(7)], c.nodes.map((_, i) => simAddr(i)).filter((a) => a !== simAddr(7))]);
    for (let i = 0; i < 10; i++) c.nodes[(i * 3) % 30 === 7 ? 8 : (i * 3) % 30].tables.set('endpoints', `late${i}`, { i });
    c.net.run(1_000);
    c.net.heal();
    c.net.run(3_000);
    const missing = () => 10 - c.nodes[7].tables.entries('endpoints', 'late').length;
    expect(missing()).toBeGreaterThan(0);
    // One push-pull with anyone repairs everything.
    await c.settle([c.nodes[7].join([simAddr(0)])]);
    expect(missing()).toBe(0);
  });

  test('partition into two halves heals: every entry written on either side is everywhere afterwards (crypto on)', async () => {
    const c = new SimCluster(16, { tables, seed: 13, profile: 'fast', crypto: true });
    await c.startAll(5);
    expect(c.net.runUntil(() => c.converged(), 10_000)).toBe(true);
    c.nodes[0].tables.set('networks', 'before', { name: 'overnet' });
    c.net.run(1_000);
    const left = c.nodes.slice(0, 8);
    const right = c.nodes.slice(8);
    c.net.partition([left.map((_, i) => simAddr(i)), right.map((_, i) => simAddr(i + 8))]);
    // Both halves see the other half dead.
    expect(c.net.runUntil(() => left.every((n) => n.stats().members.dead === 8) && right.every((n) => n.stats().members.dead === 8), 30_000)).toBe(true);
    const written: string[] = [];
    c.nodes.forEach((n, i) => {
      n.tables.set('endpoints', `ep-${i}`, { host: n.id, i });
      n.tables.set('networks', `net-${i}`, { by: i });
      written.push(`endpoints/ep-${i}`, `networks/net-${i}`);
    });
    written.push('networks/before');
    c.net.run(5_000);
    // Still split: each side sees only its own side's endpoints.
    expect(left[0].tables.entries('endpoints')).toHaveLength(8);
    c.net.heal();
    const everywhere = () =>
      c.nodes.every((n) => written.every((w) => n.tables.get(w.split('/')[0], w.split('/')[1]) !== undefined));
    expect(c.net.runUntil(() => c.converged() && everywhere(), 30_000)).toBe(true);
    expect(c.nodes.every((n) => n.stats().dropped.auth === 0)).toBe(true);
  });
});
