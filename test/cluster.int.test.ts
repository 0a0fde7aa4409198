// Issue 3, on real namespaces: five agents form a cluster through one seed by gossip alone
// (default LAN settings), replicate networks and endpoints, allocate addresses without
// conflicts, notice a killed agent, take it back, refuse a wrong key, and stay calm under a flood.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, requireRoot, sleep, waitFor, type Host } from './harness/lab.js';

const root = requireRoot('cluster integration');

type Node = { ID: string; Hostname: string; Status: string };
type Inspect = { Endpoints: { Name: string; IPv4Address: string; MacAddress: string; Host: string }[]; Forwarding: { MacAddress: string; VTEP: string }[] };

describe.skipIf(!root)('a five-host cluster by gossip', () => {
  const lab = new Lab();
  const hosts: Host[] = [];
  const agents: ChildProcess[] = [];
  let secret = '';
  const containers: { host: Host; ns: string; ip: string; mac: string }[] = [];

  const nodes = async (h: Host): Promise<Node[]> =>
    (await lab.mustCli(h, ['node', 'ls', '--format', 'json'])).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const joinArgs = (h: Host) => ['--node-name', h.name, '--join', hosts[0].addr, '--secret-file', secret];
  const inspect = async (h: Host): Promise<Inspect> => JSON.parse(await lab.mustCli(h, ['network', 'inspect', '--verbose', 'clusternet']))[0];
  const suspectEvents = async (h: Host): Promise<number> => {
    const lines = (await lab.mustCli(h, ['stats', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l));
    return lines.find((l) => l.Gossip).Gossip.suspectEvents as number;
  };

  beforeAll(async () => {
    try {
      await lab.start();
      for (let i = 1; i <= 5; i++) hosts.push(await lab.addHost(`h${i}`));
      agents.push(await lab.startAgent(hosts[0], ['--node-name', 'h1']));
      secret = path.join(lab.dir, 'join.token');
      writeFileSync(secret, await lab.mustCli(hosts[0], ['join-token', '-q']), { mode: 0o600 });
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  });
  afterAll(() => lab.cleanup());

  it('five agents join through one seed; node ls on each shows 5 Ready within 5 s', async () => {
    const started = await Promise.all(hosts.slice(1).map((h) => lab.startAgent(h, joinArgs(h))));
    agents.push(...started);
    const t0 = Date.now();
    for (const h of hosts) {
      await waitFor(`5 Ready on ${h.name}`, async () => {
        const n = await nodes(h);
        return n.length === 5 && n.every((x) => x.Status === 'Ready');
      }, Math.max(100, 5000 - (Date.now() - t0)), 100);
    }
    const names = (await nodes(hosts[2])).map((n) => n.Hostname).sort();
    expect(names).toEqual(['h1', 'h2', 'h3', 'h4', 'h5']);
  });

  it('a network created on one host is listed by all within 3 s', async () => {
    await lab.mustCli(hosts[2], ['network', 'create', '-d', 'overlay', '--subnet', '10.0.9.0/24', '--gateway', '10.0.9.99', 'clusternet']);
    const t0 = Date.now();
    for (const h of hosts) {
      await waitFor(`clusternet on ${h.name}`, async () => (await lab.cli(h, ['network', 'ls', '--filter', 'name=clusternet', '-q'])).stdout.trim() !== '', Math.max(100, 3000 - (Date.now() - t0)), 100);
    }
    const vnis = await Promise.all(hosts.map(async (h) => JSON.parse(await lab.mustCli(h, ['network', 'inspect', 'clusternet']))[0].Options['com.docker.network.driver.overlay.vxlanid_list']));
    expect(new Set(vnis).size).toBe(1);
  });

  it('30 containers connected concurrently across the hosts get 30 distinct addresses and reach each other', async () => {
    const made = await Promise.all(hosts.flatMap((h) => [1, 2, 3, 4, 5, 6].map(async (i) => ({ host: h, ns: await lab.addContainer(h, `c${i}`) }))));
    await Promise.all(made.map((c) => lab.mustCli(c.host, ['network', 'connect', 'clusternet', c.ns], 60_000)));
    const eps = (await inspect(hosts[0])).Endpoints;
    // Broadcasts usually converge in seconds; anti-entropy (push-pull, every 30 s on the LAN
    // profile) repairs any entry a lost or crowded-out broadcast missed.
    await waitFor('30 endpoints everywhere', async () => {
      for (const h of hosts) if ((await inspect(h)).Endpoints.length !== 30) return false;
      return true;
    }, 45_000, 250);
    const all = (await inspect(hosts[0])).Endpoints;
    expect(new Set(all.map((e) => e.IPv4Address)).size).toBe(30);
    for (const c of made) {
      const e = all.find((x) => x.Name === c.ns)!;
      containers.push({ ...c, ip: e.IPv4Address.split('/')[0], mac: e.MacAddress });
    }
    expect(eps.length).toBeGreaterThan(0);
    // Every container reaches every other (fping: one probe per target, retried twice).
    const ips = containers.map((c) => c.ip);
    for (const c of containers) {
      const r = await lab.exec(c.ns, 'fping', ['-q', '-r', '2', '-t', '300', ...ips.filter((x) => x !== c.ip)], 60_000);
      expect(r.code, `${c.ns}: ${r.stderr}`).toBe(0);
    }
  });

  it('kill -9 of an agent: every other shows it Down within 10 s and forgets its endpoints', async () => {
    const victim = hosts[4];
    await lab.stopProcess(agents[4], 'SIGKILL');
    const t0 = Date.now();
    for (const h of hosts.slice(0, 4)) {
      await waitFor(`h5 Down on ${h.name}`, async () => (await nodes(h)).find((n) => n.Hostname === 'h5')?.Status === 'Down', Math.max(100, 10_000 - (Date.now() - t0)), 200);
    }
    for (const h of hosts.slice(0, 4)) {
      await waitFor(`h5's endpoints gone on ${h.name}`, async () => {
        const i = await inspect(h);
        return !i.Forwarding.some((f) => f.VTEP === victim.addr) && !i.Endpoints.some((e) => containers.some((c) => c.host === victim && c.mac === e.MacAddress));
      }, 3000, 200);
    }
  });

  it('restarting it with the same state dir brings it and its endpoints back', async () => {
    const victim = hosts[4];
    agents[4] = await lab.startAgent(victim, joinArgs(victim));
    for (const h of hosts) {
      await waitFor(`h5 Ready on ${h.name}`, async () => (await nodes(h)).find((n) => n.Hostname === 'h5')?.Status === 'Ready', 10_000, 200);
    }
    const mine = containers.filter((c) => c.host === victim);
    await waitFor('h5 endpoints back in h1 forwarding', async () => {
      const f = (await inspect(hosts[0])).Forwarding;
      return mine.every((c) => f.some((x) => x.MacAddress === c.mac && x.VTEP === victim.addr));
    }, 10_000, 200);
    const from = containers.find((c) => c.host === hosts[0])!;
    const r = await lab.exec(from.ns, 'fping', ['-q', '-r', '3', '-t', '300', ...mine.map((c) => c.ip)], 30_000);
    expect(r.code, r.stderr).toBe(0);
  });

  it('an agent with a wrong key is refused', async () => {
    const intruder = await lab.addHost('h6');
    const before = JSON.parse((await lab.mustCli(hosts[0], ['stats', '--format', 'json'])).trim().split('\n').pop()!).Gossip.dropped.auth as number;
    await lab.startAgent(intruder, ['--node-name', 'h6', '--join', hosts[0].addr]); // its own, different key
    await sleep(3000);
    for (const h of hosts) expect((await nodes(h)).map((n) => n.Hostname)).not.toContain('h6');
    expect((await nodes(intruder)).map((n) => n.Hostname)).toEqual(['h6']);
    const after = JSON.parse((await lab.mustCli(hosts[0], ['stats', '--format', 'json'])).trim().split('\n').pop()!).Gossip.dropped.auth as number;
    expect(after).toBeGreaterThan(before);
  });

  it('under an iperf3 flood between two hosts no member is ever marked Suspect', async () => {
    const before = await Promise.all(hosts.map(suspectEvents));
    const a = containers.find((c) => c.host === hosts[0])!;
    const b = containers.find((c) => c.host === hosts[1])!;
    lab.spawnIn(b.ns, 'iperf3', ['-s', '-1'], 'flood-server.log');
    await sleep(500);
    const r = await lab.exec(a.ns, 'iperf3', ['-c', b.ip, '-t', '8', '-P', '2', '-J'], 60_000);
    expect(r.code, r.stderr).toBe(0);
    const gbps = JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9;
    expect(gbps).toBeGreaterThan(0);
    await sleep(1000);
    const after = await Promise.all(hosts.map(suspectEvents));
    expect(after).toEqual(before);
    for (const h of hosts) expect((await nodes(h)).filter((n) => n.Hostname !== 'h6').every((n) => n.Status === 'Ready')).toBe(true);
  });

  it('network rm is refused while endpoints exist on any host, then removes it everywhere', async () => {
    const [h1, h2] = hosts;
    await lab.mustCli(h1, ['network', 'create', '--subnet', '10.0.50.0/24', 'other']);
    await waitFor('other on h2', async () => (await lab.cli(h2, ['network', 'ls', '-q', '--filter', 'name=other'])).stdout.trim() !== '', 3000, 100);
    const ctr = await lab.addContainer(h2, 'x1');
    await lab.mustCli(h2, ['network', 'connect', 'other', ctr]);
    await waitFor('endpoint seen on h1', async () => (JSON.parse(await lab.mustCli(h1, ['network', 'inspect', '-v', 'other']))[0].Endpoints as unknown[]).length === 1, 3000, 100);
    const refused = await lab.cli(h1, ['network', 'rm', 'other']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/has active endpoints/);
    await lab.mustCli(h2, ['network', 'disconnect', 'other', ctr]);
    await waitFor('rm accepted once the endpoint is gone', async () => (await lab.cli(h1, ['network', 'rm', 'other'])).code === 0, 3000, 200);
    for (const h of hosts) {
      await waitFor(`other gone on ${h.name}`, async () => (await lab.mustCli(h, ['network', 'ls', '-q', '--filter', 'name=other'])).trim() === '', 3000, 100);
    }
  });

  it('rolls the cluster key without a partition; the old key no longer gets in', async () => {
    const oldToken = (await lab.mustCli(hosts[0], ['join-token', '-q'])).trim();
    const fresh = (await lab.mustCli(hosts[0], ['key', 'new'])).trim();
    const before = await Promise.all(hosts.map(suspectEvents));
    for (const h of hosts) await lab.mustCli(h, ['key', 'add', fresh]);
    for (const h of hosts) await lab.mustCli(h, ['key', 'use', fresh]);
    await sleep(1500);
    for (const h of hosts) await lab.mustCli(h, ['key', 'rm', oldToken]);
    await sleep(2000);
    for (const h of hosts) {
      const n = (await nodes(h)).filter((x) => x.Hostname !== 'h6');
      expect(n.map((x) => x.Status)).toEqual(Array(5).fill('Ready'));
      expect((await lab.mustCli(h, ['key', 'ls'])).trim().split('\n')).toHaveLength(2); // header + the new key
    }
    expect(await Promise.all(hosts.map(suspectEvents))).toEqual(before);
    expect((await lab.mustCli(hosts[3], ['join-token', '-q'])).trim()).toBe(fresh);
    // A host still holding only the old key is refused now.
    const late = await lab.addHost('h7');
    const oldFile = path.join(lab.dir, 'old.token');
    writeFileSync(oldFile, `${oldToken}\n`, { mode: 0o600 });
    await lab.startAgent(late, ['--node-name', 'h7', '--join', hosts[0].addr, '--secret-file', oldFile]);
    await sleep(3000);
    expect((await nodes(hosts[0])).map((n) => n.Hostname)).not.toContain('h7');
  });
});
