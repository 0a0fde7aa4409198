// SWIM/Lifeguard behaviour on the deterministic simulator.
import { describe, expect, test } from 'vitest';
import type { MemberEventInfo } from './node.js';
import { SimCluster, simAddr } from './sim-cluster.js';

/** Record every membership event of every node. */
function recordEvents(c: SimCluster): Array<{ viewer: number; ev: MemberEventInfo; at: number }> {
  const log: Array<{ viewer: number; ev: MemberEventInfo; at: number }> = [];
  c.nodes.forEach((n, i) => n.onMember((ev) => log.push({ viewer: i, ev, at: c.net.now() })));
  return log;
}

describe('membership on the simulator', () => {
  test('100 nodes converge to full membership, then a crashed node is declared dead by every member', async () => {
    const c = new SimCluster(100, { seed: 11, profile: 'fast' });
    await c.startAll(5);
    expect(c.net.runUntil(() => c.converged(), 30_000)).toBe(true);
    for (const n of c.nodes) expect(n.members().filter((m) => m.state === 'alive')).toHaveLength(100);
    // Meta travels with membership.
    expect(c.nodes[42].member(c.nodes[7].id)?.meta).toEqual({ i: 7 });

    const victim = c.nodes[37];
    c.crash(37);
    const t0 = c.net.now();
    const allKnow = () => c.live().every((n) => n.member(victim.id)?.state === 'dead');
    expect(c.net.runUntil(allKnow, 20_000, 50)).toBe(true);
    const took = c.net.now() - t0;
    // Lifeguard bounds (fast profile, n = 100): suspicion min = 4 * 2 * 200 ms = 1.6 s, max = 9.6 s.
    expect(took).toBeGreaterThanOrEqual(1600);
    expect(took).toBeLessThan(12_000);
    // Nobody else was harmed.
    for (const n of c.live()) expect(n.stats().members.alive).toBe(99);
  });

  test.each([
    { name: 'LAN profile', tcpPing: true },
    { name: 'LAN profile without the TCP fallback ping', tcpPing: false },
  ])('10 % loss on every link: no healthy member declared dead in 10 virtual minutes ($name)', async ({ tcpPing }) => {
    const c = new SimCluster(30, { seed: 3, profile: 'lan', loss: 0.1, latency: 2, jitter: 3, config: { tcpPing } });
    await c.startAll(20);
    expect(c.net.runUntil(() => c.converged(), 60_000)).toBe(true);
    const log = recordEvents(c);
    c.net.run(10 * 60_000);
    expect(log.filter((e) => e.ev.kind === 'dead')).toEqual([]);
    expect(c.converged()).toBe(true);
    // The failure detector was exercised: many direct pings went unanswered; without the TCP
    // fallback many members were even suspected, and every suspicion was refuted in time.
    const indirect = c.nodes.reduce((a, n) => a + n.stats().probeIndirect, 0);
    expect(indirect).toBeGreaterThan(500);
    if (!tcpPing) expect(log.filter((e) => e.ev.kind === 'suspect').length).toBeGreaterThan(100);
  });

  test('a host back from a partition does not get healthy members declared dead by its stale verdicts', async () => {
    // While cut off, the lone host suspects and then declares the other members dead, and its
    // broadcast queue fills with those deaths. After the heal they reach the majority, which
    // held those members alive all along: they must become suspicions that the members refute,
    // not deaths (the soak saw one such false Down ~2 s after a heal).
    const c = new SimCluster(5, { seed: 21, profile: 'lan' });
    await c.startAll(20);
    expect(c.net.runUntil(() => c.converged(), 60_000)).toBe(true);
    const ids = c.nodes.map((n) => n.id);
    const majority = [0, 1, 2, 3];
    c.net.partition([majority.map(simAddr), [simAddr(4)]]);
    // 30 s, as the soak's link-down: alone, the host's suspicions get no confirmation and run
    // their full timeout (24 s in the LAN profile at n = 5), so it declares the deaths shortly
    // before the heal and their broadcasts are still queued when the link comes back.
    c.net.run(30_000);
    expect(majority.filter((i) => c.nodes[4].member(ids[i])?.state === 'dead').length).toBeGreaterThan(0);
    expect(c.nodes[0].member(ids[4])?.state).toBe('dead');
    const log = recordEvents(c);
    c.net.heal();
    expect(c.net.runUntil(() => c.converged(), 120_000)).toBe(true);
    c.net.run(30_000);
    const falseDowns = log.filter((e) => majority.includes(e.viewer) && e.ev.kind === 'dead' && majority.some((i) => ids[i] === e.ev.member.id));
    expect(falseDowns).toEqual([]);
    // The stale news did arrive and was handled as a suspicion, which the member refuted.
    expect(log.some((e) => majority.includes(e.viewer) && e.ev.kind === 'suspect' && e.ev.member.id !== ids[4])).toBe(true);
    for (const i of majority) expect(c.nodes[i].stats().members.alive).toBe(5);
  });

  test('a member whose message handling is 1 s late gets no healthy member declared dead', async () => {
    const c = new SimCluster(20, { seed: 5, profile: 'lan' });
    await c.startAll(20);
    expect(c.net.runUntil(() => c.converged(), 60_000)).toBe(true);
    const log = recordEvents(c);
    const slow = 4;
    c.net.setSlow(simAddr(slow), 1000);
    let maxHealth = 0;
    for (let t = 0; t < 300; t++) {
      c.net.run(1000);
      maxHealth = Math.max(maxHealth, c.nodes[slow].health);
    }
    expect(log.filter((e) => e.ev.kind === 'dead')).toEqual([]);
    // Lifeguard at work: the slow node noticed it is the unhealthy one (missing nacks), and
    // the others did suspect it (its acks arrive after their deadline) but it refuted.
    expect(maxHealth).toBeGreaterThan(0);
    expect(log.some((e) => e.ev.kind === 'suspect' && e.ev.member.id === c.nodes[slow].id)).toBe(true);
    expect(c.nodes[slow].localMember().incarnation).toBeGreaterThan(0);
    // Everyone still has all 20 members, alive or (the slow one, at times) suspect.
    for (const n of c.nodes) expect(n.stats().members.alive + n.stats().members.suspect).toBe(20);
  });

  test('graceful leave: every member sees state left, the leaver is never declared dead', async () => {
    const c = new SimCluster(12, { seed: 8, profile: 'fast' });
    await c.startAll(5);
    expect(c.net.runUntil(() => c.converged(), 10_000)).toBe(true);
    const log = recordEvents(c);
    const leaver = c.nodes[6];
    const left = leaver.leave();
    c.net.run(2_000);
    await left;
    await leaver.stop();
    c.net.run(5_000);
    const others = c.nodes.filter((n) => n !== leaver);
    for (const n of others) expect(n.member(leaver.id)?.state).toBe('left');
    expect(log.filter((e) => e.ev.kind === 'dead')).toEqual([]);
    expect(log.filter((e) => e.ev.kind === 'left')).toHaveLength(11);
    // Left members are forgotten after leftNodeReap (10 s in the fast profile).
    c.net.run(12_000);
    for (const n of others) expect(n.member(leaver.id)).toBeUndefined();
  });

  test('a crashed node that comes back with the same id refutes and is alive again everywhere', async () => {
    const c = new SimCluster(10, { seed: 21, profile: 'fast' });
    await c.startAll(5);
    expect(c.net.runUntil(() => c.converged(), 10_000)).toBe(true);
    const log = recordEvents(c);
    const victim = c.nodes[3];
    c.crash(3);
    expect(c.net.runUntil(() => c.live().every((n) => n.member(victim.id)?.state === 'dead'), 20_000)).toBe(true);
    // Bring "the process" back: un-crash the address. Its view still says incarnation 0 while
    // everybody holds it dead at incarnation 0: a push-pull tells it so, it refutes.
    (c.net as unknown as { crashed: Set<string> }).crashed.delete(simAddr(3));
    expect(c.net.runUntil(() => c.converged(c.nodes), 20_000)).toBe(true);
    expect(victim.localMember().incarnation).toBeGreaterThan(0);
    expect(log.filter((e) => e.ev.kind === 'alive-again' && e.ev.member.id === victim.id).length).toBe(9);
  });

  test('setMeta: every member sees the new meta (update event, higher incarnation)', async () => {
    const c = new SimCluster(10, { seed: 12, profile: 'fast' });
    await c.startAll(5);
    expect(c.net.runUntil(() => c.converged(), 10_000)).toBe(true);
    const log = recordEvents(c);
    c.nodes[2].setMeta({ vtep: '192.168.1.12', vxlanPort: 4789 });
    c.net.run(2_000);
    for (const n of c.nodes) expect(n.member(c.nodes[2].id)?.meta).toEqual({ vtep: '192.168.1.12', vxlanPort: 4789 });
    expect(log.filter((e) => e.ev.kind === 'update')).toHaveLength(9);
    expect(() => c.nodes[2].setMeta('x'.repeat(600))).toThrow(/at most 512/);
  });

  test('same seed, same run: the simulator is deterministic', async () => {
    const run = async () => {
      const c = new SimCluster(20, { seed: 99, profile: 'fast', loss: 0.05 });
      await c.startAll(3);
      c.crash(2);
      c.net.run(8_000);
      return c.nodes.map((n) => {
        const s = n.stats();
        return [s.packetsOut, s.bytesOut, s.probeFailures, s.members.dead];
      });
    };
    expect(await run()).toEqual(await run());
  });
});
