// Issue 10, DNS on real namespaces: three agents (fast gossip profile), two overlays, a test
// upstream resolver in a namespace on the underlay. Inside the containers, dig and glibc's
// getent hosts (through the /etc/netns/<ns>/resolv.conf the agent writes) resolve container
// names, aliases and PTR on every host; names of networks a container is not on do not resolve;
// a disconnected container and a killed host's containers stop resolving within the detection
// time; unknown names are forwarded and come back; upstream down is SERVFAIL within the timeout;
// hostile input to 127.0.0.11 is dropped and counted while good queries are answered; a dnsrr
// answer larger than 512 bytes is truncated (TC) over UDP and complete over TCP.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, requireRoot, sleep, waitFor, type Host } from './harness/lab.js';
import { UPSTREAM_ANSWER, dig, writeHostileScript, writeUpstreamScript } from './harness/dns-tools.js';

const root = requireRoot('DNS cluster integration');

type Ctr = { host: Host; ns: string; ip: string };

describe.skipIf(!root)('embedded DNS on three hosts', () => {
  const lab = new Lab();
  const hosts: Host[] = [];
  const agents: ChildProcess[] = [];
  let upHost: Host;
  let upstream: ChildProcess;
  const c: Record<string, Ctr> = {};

  const connect = async (h: Host, key: string, net: string, aliases: string[] = []): Promise<Ctr> => {
    const ns = c[key]?.ns ?? (await lab.addContainer(h, key));
    await lab.mustCli(h, ['network', 'connect', ...aliases.flatMap((a) => ['--alias', a]), net, ns], 60_000);
    const inspect = JSON.parse(await lab.mustCli(h, ['network', 'inspect', net]))[0] as { Containers: Record<string, { Name: string; IPv4Address: string }> };
    const ip = Object.values(inspect.Containers).find((x) => x.Name === ns)!.IPv4Address.split('/')[0];
    c[key] = { host: h, ns, ip };
    return c[key];
  };
  const dnsStats = async (h: Host): Promise<Record<string, number>> =>
    (await lab.mustCli(h, ['stats', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l)).find((l) => l.DNS).DNS;

  beforeAll(async () => {
    try {
      await lab.start();
      for (let i = 1; i <= 3; i++) hosts.push(await lab.addHost(`h${i}`));
      upHost = await lab.addHost('dnsup');
      upstream = lab.spawnIn(upHost.ns, process.execPath, [writeUpstreamScript(lab.dir)], 'upstream.log');
      await waitFor('upstream listening', async () => existsSync(path.join(lab.dir, 'upstream.log')) && readFileSync(path.join(lab.dir, 'upstream.log'), 'utf8').includes('listening'), 10_000);
      const common = (h: Host) => ['--node-name', h.name, '--gossip-profile', 'fast', '--dns-upstream', upHost.addr];
      agents.push(await lab.startAgent(hosts[0], common(hosts[0])));
      const secret = path.join(lab.dir, 'join.token');
      writeFileSync(secret, await lab.mustCli(hosts[0], ['join-token', '-q']), { mode: 0o600 });
      for (const h of hosts.slice(1)) agents.push(await lab.startAgent(h, [...common(h), '--join', hosts[0].addr, '--secret-file', secret]));
      await lab.mustCli(hosts[0], ['network', 'create', '-d', 'overlay', '--subnet', '10.0.10.0/24', 'front']);
      await lab.mustCli(hosts[0], ['network', 'create', '-d', 'overlay', '--subnet', '10.0.11.0/24', 'back']);
      for (const h of hosts) {
        await waitFor(`networks on ${h.name}`, async () => (await lab.mustCli(h, ['network', 'ls', '-q'])).trim().split('\n').length === 2, 10_000);
      }
      await connect(hosts[0], 'c1', 'front', ['web']);
      await connect(hosts[1], 'c2', 'front', ['api']);
      await connect(hosts[2], 'c3', 'front');
      await connect(hosts[2], 'c4', 'back', ['secret']);
      await connect(hosts[1], 'c5', 'front', ['victim']);
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  }, 120_000);
  afterAll(() => lab.cleanup());

  const onFront = () => [c.c1, c.c2, c.c3];

  it('network connect writes the container resolv.conf (nameserver 127.0.0.11, ndots:0, marked)', () => {
    const text = readFileSync(`/etc/netns/${c.c1.ns}/resolv.conf`, 'utf8');
    expect(text).toMatch(/^nameserver 127\.0\.0\.11$/m);
    expect(text).toMatch(/^options ndots:0$/m);
    expect(text).toContain('written by tapmesh');
  });

  it('container names and aliases resolve on every host (dig and getent hosts)', async () => {
    for (const from of onFront()) {
      for (const [name, want] of [['web', c.c1.ip], ['api', c.c2.ip], [c.c3.ns, c.c3.ip], ['victim', c.c5.ip]] as const) {
        await waitFor(`${name} from ${from.ns}`, async () => (await dig(lab, from.ns, name)).lines.join() === want, 10_000, 200);
        const g = await lab.exec(from.ns, 'getent', ['hosts', name]);
        expect(g.stdout.trim().split(/\s+/)[0], `getent hosts ${name} in ${from.ns}`).toBe(want);
      }
    }
  });

  it('PTR names a container by its name on every host', async () => {
    for (const from of onFront()) {
      const r = await dig(lab, from.ns, '-x', c.c2.ip);
      expect(r.lines).toEqual([`${c.c2.ns}.`]);
    }
  });

  it('a name on a network the container is not attached to does not resolve; from that network it does', async () => {
    for (const from of onFront()) {
      const r = await dig(lab, from.ns, 'secret');
      expect(r.status).toBe('NXDOMAIN'); // forwarded: the upstream does not know it either
      expect(r.out).not.toContain(c.c4.ip);
    }
    expect((await dig(lab, c.c4.ns, 'secret')).lines).toEqual([c.c4.ip]);
    expect((await dig(lab, c.c4.ns, 'web')).status).toBe('NXDOMAIN');
  });

  it('an unknown name is forwarded to the upstream on the underlay and its answer comes back', async () => {
    const before = (await dnsStats(hosts[1])).forwarded;
    const r = await dig(lab, c.c2.ns, 'www.outside.example');
    expect(r.lines).toEqual([UPSTREAM_ANSWER]);
    expect(readFileSync(path.join(lab.dir, 'upstream.log'), 'utf8')).toContain('query www.outside.example');
    expect((await dnsStats(hosts[1])).forwarded).toBe(before + 1);
  });

  it('tapmesh dns query asks a container resolver; stats show the DNS counters', async () => {
    const out = await lab.mustCli(hosts[0], ['dns', 'query', '--container', c.c1.ns, 'api']);
    expect(out).toContain('status: NOERROR');
    expect(out).toMatch(new RegExp(`^api\\.\\s+5\\s+IN\\s+A\\s+${c.c2.ip.replace(/\./g, '\\.')}$`, 'm'));
    const scoped = await lab.mustCli(hosts[2], ['dns', 'query', '--container', c.c4.ns, 'web']);
    expect(scoped).toContain('status: NXDOMAIN');
    const text = await lab.mustCli(hosts[0], ['stats']);
    expect(text).toMatch(/dns: \d+ queries, \d+ local answers, \d+ forwarded, \d+ upstream failures/);
  });

  it('hostile input to 127.0.0.11 (random, truncated, pointer loop, flood): dropped and counted, good queries answered', async () => {
    const before = await dnsStats(hosts[0]);
    const r = await lab.exec(c.c1.ns, process.execPath, [writeHostileScript(lab.dir), 'web', '3000'], 30_000);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout.trim()) as { junk: number; asked: number; answered: number };
    const after = await dnsStats(hosts[0]);
    console.log(`hostile: ${res.junk} junk datagrams, ${res.answered}/${res.asked} good queries answered, malformed +${after.malformed - before.malformed}`);
    expect(res.asked).toBeGreaterThan(50); // every 20 ms, slowed by the flood from the same process
    expect(res.answered / res.asked).toBeGreaterThan(0.9);
    expect(after.malformed - before.malformed).toBeGreaterThan(0);
    expect(after.malformed - before.malformed).toBeLessThanOrEqual(res.junk);
    expect(agents[0].exitCode).toBeNull();
    expect((await dig(lab, c.c1.ns, 'api')).lines).toEqual([c.c2.ip]);
  });

  it('services: a vip service name is its VIP, tasks.NAME and a dnsrr name every task, on every host', async () => {
    await lab.mustCli(hosts[0], ['service', 'create', '--name', 'websvc', '--network', 'front']);
    await lab.mustCli(hosts[0], ['service', 'create', '--name', 'rrsvc', '--network', 'front', '--endpoint-mode', 'dnsrr']);
    const vip = (JSON.parse(await lab.mustCli(hosts[0], ['service', 'inspect', 'websvc']))[0].Endpoint.VirtualIPs[0].Addr as string).split('/')[0];
    const task = async (h: Host, key: string, svc: string) => {
      const ns = await lab.addContainer(h, key);
      await lab.mustCli(h, ['network', 'connect', '--service', svc, 'front', ns], 60_000);
      const ip = (Object.values(JSON.parse(await lab.mustCli(h, ['network', 'inspect', 'front']))[0].Containers) as { Name: string; IPv4Address: string }[]).find((x) => x.Name === ns)!.IPv4Address.split('/')[0];
      return ip;
    };
    const web = [await task(hosts[1], 't1', 'websvc'), await task(hosts[2], 't2', 'websvc')].sort();
    const rr = [await task(hosts[0], 't3', 'rrsvc'), await task(hosts[2], 't4', 'rrsvc')].sort();
    for (const from of [c.c1, c.c3]) {
      await waitFor(`services from ${from.ns}`, async () => (await dig(lab, from.ns, 'tasks.websvc')).lines.sort().join() === web.join(), 10_000, 200);
      expect((await dig(lab, from.ns, 'websvc')).lines).toEqual([vip]);
      await waitFor(`rrsvc from ${from.ns}`, async () => (await dig(lab, from.ns, 'rrsvc')).lines.sort().join() === rr.join(), 10_000, 200);
      expect((await dig(lab, from.ns, '-x', vip)).lines).toEqual(['websvc.']);
      expect((await lab.exec(from.ns, 'getent', ['hosts', 'websvc'])).stdout.trim().split(/\s+/)[0]).toBe(vip);
    }
    expect((await dig(lab, c.c4.ns, 'websvc')).status).toBe('NXDOMAIN'); // c4 is only on back
  });

  it('a dnsrr answer over 512 bytes: TC and part of it over UDP, every task over TCP (dig, and glibc retrying over TCP)', async () => {
    // No name compression in our answers (dns-packet): with a 63-byte name (the longest label a
    // service name may be) each A record is 65 + 14 bytes after a 81-byte header + question, so
    // 5 tasks fit in 512 bytes and 6 do not.
    const name = `bigrr-${'x'.repeat(57)}`;
    await lab.mustCli(hosts[0], ['service', 'create', '--name', name, '--network', 'front', '--endpoint-mode', 'dnsrr']);
    const ips: string[] = [];
    for (let i = 0; i < 6; i++) {
      const h = hosts[i % 3];
      const ns = await lab.addContainer(h, `big${i}`);
      await lab.mustCli(h, ['network', 'connect', '--service', name, 'front', ns], 60_000);
      const ctrs = Object.values(JSON.parse(await lab.mustCli(h, ['network', 'inspect', 'front']))[0].Containers) as { Name: string; IPv4Address: string }[];
      ips.push(ctrs.find((x) => x.Name === ns)!.IPv4Address.split('/')[0]);
    }
    ips.sort();
    const flags = (out: string) => (/;; flags: ([a-z ]*);/.exec(out)?.[1] ?? '').split(' ');
    const size = (out: string) => Number(/MSG SIZE\s+rcvd: (\d+)/.exec(out)?.[1] ?? NaN);
    for (const from of [c.c1, c.c3]) {
      await waitFor(`all ${ips.length} tasks from ${from.ns}`, async () => (await dig(lab, from.ns, '+tcp', name)).lines.sort().join() === ips.join(), 10_000, 200);
      const before = (await dnsStats(from.host)).truncated;
      // UDP, no EDNS (512 bytes), and do not retry over TCP: what came over UDP.
      const udp = await dig(lab, from.ns, '+notcp', '+noedns', '+ignore', name);
      expect(udp.status).toBe('NOERROR');
      expect(flags(udp.out), udp.out).toContain('tc');
      expect(size(udp.out)).toBeLessThanOrEqual(512);
      expect(udp.lines.length).toBeLessThan(ips.length);
      for (const ip of udp.lines) expect(ips).toContain(ip);
      expect((await dnsStats(from.host)).truncated).toBe(before + 1);
      // TCP: the whole answer, larger than any UDP answer without EDNS may be.
      const tcp = await dig(lab, from.ns, '+tcp', name);
      expect(flags(tcp.out)).not.toContain('tc');
      expect(size(tcp.out)).toBeGreaterThan(512);
      expect(tcp.lines.sort()).toEqual(ips);
      // dig's default (EDNS 1232) fits it in one datagram, untruncated.
      const edns = await dig(lab, from.ns, name);
      expect(flags(edns.out)).not.toContain('tc');
      expect(edns.lines.sort()).toEqual(ips);
      // glibc's stub (no EDNS unless asked): TC over UDP, retried over TCP, every address.
      const g = await lab.exec(from.ns, 'getent', ['ahostsv4', name]);
      expect(g.code, g.stderr).toBe(0);
      expect([...new Set(g.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]))].sort()).toEqual(ips);
    }
  }, 120_000);

  it('after network disconnect, its name stops resolving on every host within the detection time', async () => {
    await lab.mustCli(hosts[1], ['network', 'disconnect', 'front', c.c2.ns]);
    const t0 = Date.now();
    for (const from of [c.c1, c.c3]) {
      await waitFor(`api gone from ${from.ns}`, async () => (await dig(lab, from.ns, 'api')).status === 'NXDOMAIN', 5000, 100);
    }
    console.log(`disconnect → name gone everywhere in ${Date.now() - t0} ms`);
    expect(existsSync(`/etc/netns/${c.c2.ns}/resolv.conf`)).toBe(false);
  });

  it('upstream down: SERVFAIL within the upstream timeout', async () => {
    await lab.stopProcess(upstream);
    const r = await dig(lab, c.c1.ns, 'gone.example');
    expect(r.status).toBe('SERVFAIL');
    expect(r.ms).toBeLessThan(4000); // 2 s upstream timeout, one upstream
    expect((await dnsStats(hosts[0])).upstreamFailures).toBeGreaterThan(0);
    // Back up: forwarding works again.
    upstream = lab.spawnIn(upHost.ns, process.execPath, [writeUpstreamScript(lab.dir)], 'upstream2.log');
    await waitFor('upstream back', async () => (await dig(lab, c.c1.ns, 'back.example')).lines.join() === UPSTREAM_ANSWER, 10_000, 200);
  });

  it('kill -9 of a host: its containers stop resolving on the others within the detection time', async () => {
    await lab.stopProcess(agents[1], 'SIGKILL');
    const t0 = Date.now();
    for (const from of [c.c1, c.c3]) {
      await waitFor(`victim gone from ${from.ns}`, async () => (await dig(lab, from.ns, 'victim')).status === 'NXDOMAIN', 10_000, 200);
    }
    console.log(`host killed → its names gone everywhere in ${Date.now() - t0} ms`);
    // Local names are unaffected.
    await sleep(100);
    expect((await dig(lab, c.c3.ns, 'web')).lines).toEqual([c.c1.ip]);
  });
});
