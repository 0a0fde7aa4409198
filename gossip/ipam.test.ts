import { describe, expect, test } from 'vitest';
import { ipv4ToString, parseIpv4 } from '../router/wire/addr.js';
import { IpamError, attachIpam } from './ipam.js';
import { Layout, type IpPool } from './ipam-layout.js';
import { SimCluster, simAddr } from './sim-cluster.js';

function poolOf(cidr: string, gateway: string): IpPool {
  const [net, len] = cidr.split('/');
  const base = parseIpv4(net);
  const size = 2 ** (32 - Number(len));
  return { subnet: { base, prefixLen: Number(len) }, gateway: parseIpv4(gateway), first: base + 1, last: base + size - 2 };
}

const POOL = poolOf('10.0.9.0/24', '10.0.9.99');

async function cluster(n: number, seed: number): Promise<SimCluster> {
  const c = new SimCluster(n, { seed, profile: 'fast' });
  await c.startAll(5);
  expect(c.net.runUntil(() => c.converged(), 10_000)).toBe(true);
  return c;
}

/** Settle allocation promises on the simulator; failures come back as IpamError values. */
async function settleAll(c: SimCluster, ps: Promise<string>[], maxMs = 30_000): Promise<Array<string | IpamError>> {
  const wrapped = ps.map((p) => p.catch((e: unknown) => (e instanceof IpamError ? e : Promise.reject(e))));
  return c.settle(wrapped, maxMs);
}

function expectDistinct(ips: string[]): void {
  expect(new Set(ips).size).toBe(ips.length);
  for (const ip of ips) {
    const n = parseIpv4(ip);
    expect(n).toBeGreaterThan(POOL.subnet.base);
    expect(n).toBeLessThan(POOL.subnet.base + 255);
    expect(n).not.toBe(POOL.gateway);
  }
}

describe('pool layout', () => {
  test('blocks are aligned on the subnet and never hand out network, broadcast or gateway', () => {
    const l = Layout.of(POOL, 16);
    expect(l.blocks).toBe(16);
    expect([...l.addresses(0)].map(ipv4ToString)).toEqual(Array.from({ length: 15 }, (_, i) => `10.0.9.${i + 1}`));
    expect([...l.addresses(6)]).not.toContain(POOL.gateway); // 10.0.9.96-111 holds .99
    expect([...l.addresses(6)]).toHaveLength(15);
    expect([...l.addresses(15)].map(ipv4ToString).at(-1)).toBe('10.0.9.254');
    expect(l.blockOf(parseIpv4('10.0.9.99'))).toBe(6);
    expect(Layout.of(poolOf('10.1.0.0/29', '10.1.0.1'), 16).blocks).toBe(1);
    expect(() => Layout.of({ ...POOL, first: POOL.subnet.base + 300 })).toThrow(RangeError);
  });
});

describe('conflict-free IPAM on the simulator', () => {
  test('30 allocations racing on 5 nodes get 30 distinct addresses', async () => {
    const c = await cluster(5, 31);
    const ps: Promise<string>[] = [];
    for (let i = 0; i < 30; i++) ps.push(c.ipamOf(c.nodes[i % 5]).allocate('net1', POOL, { endpoint: `ep${i}` }));
    const ips = (await settleAll(c, ps)) as string[];
    expect(ips.every((ip) => typeof ip === 'string')).toBe(true);
    expectDistinct(ips);
    // Each node allocated from blocks it won by quorum; the records reached everybody.
    c.net.run(2_000);
    for (const n of c.nodes) expect(c.ipamOf(n).allocations('net1')).toHaveLength(30);
    const holders = new Set(c.ipamOf(c.nodes[0]).blocks('net1').map((b) => b.holder));
    expect(holders.size).toBe(5);
  });

  test('heavy contention (8 blocks for 5 nodes, 5 % loss, many seeds): never a duplicate', async () => {
    const base = parseIpv4('10.3.0.0');
    const tight: IpPool = { subnet: { base, prefixLen: 27 }, gateway: base + 1, first: base + 1, last: base + 30 };
    for (let seed = 1; seed <= 6; seed++) {
      const c = new SimCluster(5, { seed, profile: 'fast', loss: 0.05 });
      await c.startAll(5);
      c.net.runUntil(() => c.converged(), 10_000);
      const ps: Promise<string>[] = [];
      for (let i = 0; i < 25; i++) ps.push(c.ipamOf(c.nodes[i % 5]).allocate('net1', tight, { blockSize: 4 }));
      // Everyone wants an address of the same (free) block at once: one wins the block, the
      // others are served by the winner.
      const same = c.nodes.map((n, i) => c.ipamOf(n).allocate('net2', tight, { ip: `10.3.0.${i + 2}` }));
      const got = await settleAll(c, ps);
      expect(got.every((x) => typeof x === 'string')).toBe(true);
      expect(new Set(got).size).toBe(25);
      expect(await settleAll(c, same)).toEqual(['10.3.0.2', '10.3.0.3', '10.3.0.4', '10.3.0.5', '10.3.0.6']);
      const won = c.nodes.reduce((a, n) => a + c.ipamOf(n).claims.won, 0);
      const started = c.nodes.reduce((a, n) => a + c.ipamOf(n).claims.started, 0);
      expect(won).toBe(9); // 8 blocks of net1 + 1 of net2
      expect(started).toBeGreaterThan(won); // claims did collide and lose
    }
  });

  test('claims on both sides at the very moment of a split (nobody suspects anybody yet)', async () => {
    for (let seed = 1; seed <= 4; seed++) {
      const c = await cluster(5, 100 + seed);
      c.net.partition([[0, 1, 2].map(simAddr), [3, 4].map(simAddr)]);
      const ps = c.nodes.flatMap((n) => Array.from({ length: 6 }, () => c.ipamOf(n).allocate('net1', POOL, { blockSize: 4 })));
      const res = await settleAll(c, ps);
      const ok = res.filter((x): x is string => typeof x === 'string');
      const codes = new Set(res.filter((x) => x instanceof IpamError).map((e) => (e as IpamError).code));
      expect(ok.length).toBe(18); // the majority side: all of them
      expect([...codes]).toEqual(['NO_QUORUM']); // the minority side: every one refused
      expectDistinct(ok);
    }
  });

  test('partition 3|2: the minority cannot claim blocks (NO_QUORUM), uses only blocks it holds; no collision after heal', async () => {
    const c = await cluster(5, 17);
    // Before the split node 3 holds one block.
    const [pre] = (await settleAll(c, [c.ipamOf(c.nodes[3]).allocate('net1', POOL)])) as string[];
    c.net.run(1_000);
    const major = [0, 1, 2];
    const minor = [3, 4];
    c.net.partition([major.map(simAddr), minor.map(simAddr)]);
    c.net.run(5_000); // long enough for both sides to declare the other dead
    expect(c.nodes[0].member(c.nodes[3].id)?.state).toBe('dead');

    const majority = major.flatMap((i) => Array.from({ length: 12 }, () => c.ipamOf(c.nodes[i]).allocate('net1', POOL)));
    const fromHeldBlock = Array.from({ length: 5 }, () => c.ipamOf(c.nodes[3]).allocate('net1', POOL));
    const needsBlock = c.ipamOf(c.nodes[4]).allocate('net1', POOL);
    const [a, b, [blocked]] = await Promise.all([settleAll(c, majority), settleAll(c, fromHeldBlock), settleAll(c, [needsBlock])]);
    expect(a.every((x) => typeof x === 'string')).toBe(true);
    expect(b.every((x) => typeof x === 'string')).toBe(true);
    expect(blocked).toBeInstanceOf(IpamError);
    expect((blocked as IpamError).code).toBe('NO_QUORUM');
    expect((blocked as IpamError).message).toMatch(/2 of 5 voters reachable.*need 3.*minority/);

    c.net.heal();
    expect(c.net.runUntil(() => c.converged(), 30_000)).toBe(true);
    const all = [pre, ...(a as string[]), ...(b as string[])];
    expectDistinct(all);
    // After healing every node sees all 42 allocations, and the minority can claim again.
    c.net.run(2_000);
    for (const n of c.nodes) expect(c.ipamOf(n).allocations('net1')).toHaveLength(42);
    const [after] = await settleAll(c, [c.ipamOf(c.nodes[4]).allocate('net1', POOL)]);
    expect(typeof after).toBe('string');
    expectDistinct([...all, after as string]);
  });

  test('--ip: two nodes asking for the same address at once: one gets it, the other IP_IN_USE', async () => {
    const c = await cluster(5, 23);
    const [x, y] = await settleAll(c, [c.ipamOf(c.nodes[1]).allocate('net1', POOL, { ip: '10.0.9.42' }), c.ipamOf(c.nodes[2]).allocate('net1', POOL, { ip: '10.0.9.42' })]);
    const ok = [x, y].filter((r) => r === '10.0.9.42');
    const refused = [x, y].filter((r) => r instanceof IpamError) as IpamError[];
    expect(ok).toHaveLength(1);
    expect(refused.map((e) => e.code)).toEqual(['IP_IN_USE']);
    // An address in someone else's block is allocated by that block's holder.
    const [z] = await settleAll(c, [c.ipamOf(c.nodes[4]).allocate('net1', POOL, { ip: '10.0.9.43' })]);
    expect(z).toBe('10.0.9.43');
    c.net.run(1_000);
    expect(c.ipamOf(c.nodes[0]).allocations('net1').find((r) => r.ip === '10.0.9.43')?.holder).toBe(c.nodes[4].id);
    const bad = await settleAll(c, ['10.0.9.99', '10.0.10.1', 'nonsense'].map((ip) => c.ipamOf(c.nodes[0]).allocate('net1', POOL, { ip })));
    expect(bad.map((e) => (e as IpamError).code)).toEqual(['IP_OUT_OF_RANGE', 'IP_OUT_OF_RANGE', 'IP_OUT_OF_RANGE']);
  });

  test('more nodes than blocks: nodes without a block borrow from holders; then POOL_EXHAUSTED; release frees', async () => {
    const c = await cluster(6, 41);
    const small = poolOf('10.2.0.0/27', '10.2.0.1'); // 29 usable addresses, 4 blocks of 8
    const ps = c.nodes.flatMap((n) => Array.from({ length: 4 }, () => c.ipamOf(n).allocate('tiny', small, { blockSize: 8 })));
    const got = (await settleAll(c, ps)) as string[];
    expect(got.every((x) => typeof x === 'string')).toBe(true);
    expect(new Set(got).size).toBe(24);
    c.net.run(1_000);
    const rest = await settleAll(c, Array.from({ length: 8 }, () => c.ipamOf(c.nodes[5]).allocate('tiny', small, { blockSize: 8 })));
    const more = rest.filter((x): x is string => typeof x === 'string');
    expect(more).toHaveLength(5); // 29 - 24
    expect(new Set([...got, ...more]).size).toBe(29);
    expect(rest.filter((x) => x instanceof IpamError).map((e) => (e as IpamError).code)).toEqual(Array(3).fill('POOL_EXHAUSTED'));
    expect(c.ipamOf(c.nodes[5]).release('tiny', got[0])).toBe(true);
    c.net.run(1_000);
    const [again] = await settleAll(c, [c.ipamOf(c.nodes[2]).allocate('tiny', small, { blockSize: 8 })]);
    expect(again).toBe(got[0]);
  });

  test('a dead holder keeps its block until it is reaped; then the block is claimable again', async () => {
    const c = await cluster(3, 5);
    const [ip] = (await settleAll(c, [c.ipamOf(c.nodes[2]).allocate('net1', POOL, { blockSize: 128 })])) as string[];
    c.net.run(1_000);
    c.crash(2);
    c.net.run(5_000);
    // 2 blocks of 128: node 2 holds one; the survivors fill the other and then must wait.
    const first = await settleAll(c, Array.from({ length: 126 }, () => c.ipamOf(c.nodes[0]).allocate('net1', POOL, { blockSize: 128 })));
    expect(first.filter((x) => typeof x === 'string')).toHaveLength(126);
    const [full] = await settleAll(c, [c.ipamOf(c.nodes[1]).allocate('net1', POOL, { blockSize: 128 })]);
    expect(full).toBeInstanceOf(IpamError);
    c.net.run(65_000); // deadNodeReap (fast profile: 60 s)
    expect(c.nodes[0].member(c.nodes[2].id)).toBeUndefined();
    const [reclaimed] = await settleAll(c, [c.ipamOf(c.nodes[1]).allocate('net1', POOL, { blockSize: 128 })]);
    expect(typeof reclaimed).toBe('string');
    expect(parseIpv4(reclaimed as string) >= parseIpv4('10.0.9.128')).toBe(parseIpv4(ip) >= parseIpv4('10.0.9.128'));
  });

  test('a single-node cluster is its own majority', async () => {
    const c = await cluster(1, 2);
    const got = await settleAll(c, [c.ipamOf(c.nodes[0]).allocate('n', POOL), c.ipamOf(c.nodes[0]).allocate('n', POOL)]);
    expect(got.every((x) => typeof x === 'string')).toBe(true);
    expectDistinct(got as string[]);
    expect(c.ipamOf(c.nodes[0]).blocks('n')).toEqual([{ block: expect.any(Number), holder: c.nodes[0].id }]);
  });
});

describe('IPAM plugged into the node from outside', () => {
  test('its request types take one handler each, and it stops with the node', async () => {
    const c = new SimCluster(3, { seed: 4, profile: 'fast' });
    await c.startAll(5);
    expect(() => attachIpam(c.nodes[1])).toThrow(/claim requests/);
    const [ok] = await c.settle([c.ipamOf(c.nodes[1]).allocate('n', POOL)]);
    expect(ok).toMatch(/^10\.0\.9\.\d+$/);
    await c.nodes[1].stop();
    await expect(c.ipamOf(c.nodes[1]).allocate('n', POOL)).rejects.toMatchObject({ code: 'STOPPED' });
  });
});
