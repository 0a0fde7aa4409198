// Namespace sockets and the embedded resolver on a real namespace (tm<hex>-c1):
// - native/netns.ts: a TCP listener, a TCP client and UDP sockets created inside the namespace
//   from this (root-namespace) process; ECONNREFUSED surfaces as an error;
// - dns/: the resolver serving 127.0.0.11:53 UDP+TCP inside it from static records, queried by
//   dig (UDP, TCP, truncation), glibc getent hosts (via /etc/netns/<ns>/resolv.conf), a forward
//   to an upstream on the host's loopback, and hostile datagrams in between.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type net from 'node:net';
import dnsPacket from 'dns-packet';
import { must, requireRoot, run } from './harness/lab.js';
import { connectTcpInNetns, listenTcpInNetns, NetnsUdp } from '../native/netns.js';
import { DnsResolver, type ContainerDns } from '../dns/server.js';
import { fixture } from '../dns/testkit.js';

const root = requireRoot('test/dns.int.test.ts');
const TAG = `tm${randomBytes(3).toString('hex')}`;
const NS = `${TAG}-c1`;
const ETC = `/etc/netns/${NS}`;

const exec = (cmd: string, ...args: string[]) => run('ip', ['netns', 'exec', NS, cmd, ...args], { timeoutMs: 20_000 });

describe.skipIf(!root)('namespace sockets and DNS at 127.0.0.11 in a real namespace', () => {
  let upstream: dgram.Socket;
  let res: DnsResolver;
  let dns: ContainerDns;

  beforeAll(async () => {
    await must('ip', ['netns', 'add', NS]);
    await must('ip', ['-n', NS, 'link', 'set', 'lo', 'up']);
    // An address that exists only inside the namespace.
    await must('ip', ['-n', NS, 'addr', 'add', '10.200.0.1/32', 'dev', 'lo']);
    // A test upstream on the host's loopback (the agent's namespace): answers any A with 198.51.100.7.
    upstream = dgram.createSocket('udp4');
    upstream.on('message', (m, r) => {
      try {
        const q = dnsPacket.decode(m);
        upstream.send(dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: q.questions, answers: [{ type: 'A', name: q.questions![0].name, ttl: 30, data: '198.51.100.7' }] }), r.port, r.address);
      } catch { /* not DNS */ }
    });
    await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', r));
    res = new DnsResolver(fixture(), { upstreams: [{ host: '127.0.0.1', port: upstream.address().port }], upstreamTimeoutMs: 1000 });
    dns = await res.serve(NS, ['front']);
    mkdirSync(ETC, { recursive: true });
    writeFileSync(`${ETC}/resolv.conf`, 'nameserver 127.0.0.11\noptions ndots:0\n');
  });

  afterAll(async () => {
    await dns?.close();
    res?.close();
    upstream?.close();
    rmSync(ETC, { recursive: true, force: true });
    await run('ip', ['netns', 'del', NS]);
  });

  it('TCP: a listener and a client created inside the namespace talk over its own address', async () => {
    const server = await listenTcpInNetns(NS, '10.200.0.1', 0, (s) => s.end(`hello ${s.remoteAddress}`));
    const port = (server.address() as net.AddressInfo).port;
    // The listener is in the namespace, not in the root one.
    expect((await exec('ss', '-Htln', `sport = :${port}`)).stdout).toContain(`10.200.0.1:${port}`);
    expect((await run('ss', ['-Htln', `sport = :${port}`])).stdout).not.toContain('10.200.0.1');
    const c = await connectTcpInNetns(NS, '10.200.0.1', port);
    const got = await new Promise<string>((resolve) => {
      let s = '';
      c.on('data', (d) => (s += d));
      c.on('end', () => resolve(s));
    });
    expect(got).toBe('hello 10.200.0.1');
    c.destroy();
    await expect(connectTcpInNetns(NS, '10.200.0.1', port === 1 ? 2 : port - 1)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await new Promise((r) => server.close(r));
  });

  it('UDP: echo between two sockets bound inside the namespace', async () => {
    const echo = NetnsUdp.bind(NS, '10.200.0.1', 0, (data, addr, port) => echo.send(data, addr, port));
    const got: string[] = [];
    const client = NetnsUdp.bind(NS, '10.200.0.1', 0, (data) => got.push(Buffer.from(data).toString()));
    expect((await exec('ss', '-Huln', `sport = :${echo.port}`)).stdout).toContain(`10.200.0.1:${echo.port}`);
    for (let i = 0; i < 10; i++) client.send(Buffer.from(`ping ${i}`), '10.200.0.1', echo.port);
    const t0 = Date.now();
    while (got.length < 10 && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 10));
    expect(got.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `ping ${i}`).sort());
    echo.close();
    client.close();
  });

  it('dig @127.0.0.11 over UDP and TCP: service VIP, tasks., dnsrr, alias, PTR, SRV, AAAA', async () => {
    const short = async (...args: string[]) => {
      const r = await exec('dig', '@127.0.0.11', '+short', '+time=2', '+tries=1', ...args);
      expect(r.code).toBe(0);
      return r.stdout.trim().split('\n').filter(Boolean);
    };
    expect(await short('web')).toEqual(['10.0.0.2']);
    expect(await short('+tcp', 'web')).toEqual(['10.0.0.2']);
    expect((await short('tasks.web')).sort()).toEqual(['10.0.0.5', '10.0.0.6']);
    expect((await short('db')).sort()).toEqual(['10.0.0.21', '10.0.0.22', '10.0.0.23']);
    expect(await short('cache')).toEqual(['10.0.0.9']);
    expect(await short('-x', '10.0.0.9')).toEqual(['client.']);
    expect(await short('SRV', '_80._tcp.web')).toEqual(['0 0 80 web.']);
    expect(await short('AAAA', 'web')).toEqual([]);
    const aaaa = await exec('dig', '@127.0.0.11', '+time=2', '+tries=1', 'AAAA', 'web');
    expect(aaaa.stdout).toMatch(/status: NOERROR/);
  });

  it('a large dnsrr answer: UDP without EDNS is cut to 512 bytes with TC; TCP carries all 100', async () => {
    const udp = await exec('dig', '@127.0.0.11', '+noedns', '+ignore', '+time=2', '+tries=1', 'big');
    expect(udp.stdout).toMatch(/flags:[^;]*\btc\b/);
    const size = /MSG SIZE\s+rcvd: (\d+)/.exec(udp.stdout);
    expect(Number(size![1])).toBeLessThanOrEqual(512);
    const tcp = await exec('dig', '@127.0.0.11', '+tcp', '+short', '+time=2', '+tries=1', 'big');
    expect(tcp.stdout.trim().split('\n').length).toBe(100);
    // Plain dig retries over TCP by itself when TC is set.
    const auto = await exec('dig', '@127.0.0.11', '+noedns', '+short', '+time=2', '+tries=1', 'big');
    expect(auto.stdout.trim().split('\n').length).toBe(100);
  });

  it('glibc: getent hosts through /etc/netns/<ns>/resolv.conf', async () => {
    expect(existsSync(`${ETC}/resolv.conf`)).toBe(true);
    const web = await exec('getent', 'hosts', 'web');
    expect(web.code).toBe(0);
    expect(web.stdout.trim()).toMatch(/^10\.0\.0\.2\s+web$/);
    const alias = await exec('getent', 'hosts', 'cache');
    expect(alias.stdout).toMatch(/^10\.0\.0\.9\s/);
    const none = await exec('getent', 'hosts', 'secret');
    // 'secret' lives on a network this container is not on: forwarded, the test upstream
    // answers 198.51.100.7 for anything, never the overlay address 10.1.0.7.
    expect(none.stdout).not.toContain('10.1.0.7');
  });

  it('setNetworks widens the scope live; a second serve on the same namespace fails with EADDRINUSE', async () => {
    const q = () => exec('dig', '@127.0.0.11', '+short', '+time=2', '+tries=1', 'secret');
    expect((await q()).stdout.trim()).not.toBe('10.1.0.7');
    dns.setNetworks(['front', 'back']);
    expect((await q()).stdout.trim()).toBe('10.1.0.7');
    dns.setNetworks(['front']);
    expect((await q()).stdout.trim()).not.toBe('10.1.0.7');
    await expect(res.serve(NS, ['front'])).rejects.toMatchObject({ code: 'EADDRINUSE' });
    // The first listener is unaffected.
    expect((await exec('dig', '@127.0.0.11', '+short', '+tcp', '+time=2', '+tries=1', 'web')).stdout.trim()).toBe('10.0.0.2');
  });

  it('an unknown name is forwarded to the upstream and its answer comes back', async () => {
    const before = res.counters.forwarded;
    const r = await exec('dig', '@127.0.0.11', '+short', '+time=2', '+tries=1', 'example.org');
    expect(r.stdout.trim()).toBe('198.51.100.7');
    expect(res.counters.forwarded).toBe(before + 1);
  });

  it('hostile datagrams to 127.0.0.11:53: counted as dropped, good queries still answered', async () => {
    const before = res.counters.malformed;
    // Random bytes, a truncated header and a compression-pointer loop, sent from inside.
    const sender = NetnsUdp.bind(NS, '127.0.0.1', 0, () => {});
    const loop = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
    const bad = [loop, Buffer.from([1, 2, 3, 4, 5]), ...Array.from({ length: 200 }, () => Buffer.concat([Buffer.from([0, 0, 0x80]), randomBytes(40)]))];
    for (const b of bad) sender.send(b, '127.0.0.11', 53);
    await new Promise((r) => setTimeout(r, 300));
    sender.close();
    expect(res.counters.malformed - before).toBe(bad.length);
    const r = await exec('dig', '@127.0.0.11', '+short', '+time=2', '+tries=1', 'web');
    expect(r.stdout.trim()).toBe('10.0.0.2');
  });
});
