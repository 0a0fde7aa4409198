// Issue 10, egress on real namespaces: an agent in a host namespace, a server namespace on the
// underlay standing for the internet (an address outside every overlay). A container on an
// overlay pings it and opens TCP connections to it through the gateway bridge, masqueraded
// behind the host's address; a container on an --internal network cannot, and its resolver does
// not forward names upstream (REFUSED at once; a test upstream on the "internet" never sees
// them), while one on an internal and a public network still forwards; the agent's nft table
// and bridge live only in the host namespace, survive an agent restart's re-plug, and are removed
// on a clean stop and with the last network.
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { Lab, requireRoot, waitFor, type Host } from './harness/lab.js';
import { UPSTREAM_ANSWER, dig, writeUpstreamScript } from './harness/dns-tools.js';

const root = requireRoot('egress integration');
const SUBNET = '172.30.0.0/24';

describe.skipIf(!root)('egress through the gateway bridge', () => {
  const lab = new Lab();
  let h1: Host;
  let inet: Host;
  let agent: ChildProcess;
  let pub = '';
  let priv = '';
  let both = '';

  const agentArgs = () => ['--node-name', 'h1', '--gossip-profile', 'fast', '--gwbridge-subnet', SUBNET, '--dns-upstream', inet.addr];
  const upstreamLog = () => readFileSync(path.join(lab.dir, 'upstream.log'), 'utf8');
  const httpFrom = (ns: string) => lab.exec(ns, 'curl', ['-s', '--max-time', '3', `http://${inet.addr}:8080/`], 10_000);
  const ping = (ns: string) => lab.exec(ns, 'ping', ['-c', '1', '-W', '2', inet.addr], 10_000);
  const nftTable = () => lab.exec(h1.ns, 'nft', ['list', 'table', 'ip', 'tapmesh']);
  const bridge = () => lab.exec(h1.ns, 'ip', ['-br', 'addr', 'show', 'dev', 'tm_gwbridge']);
  const containers = async (net: string) =>
    Object.values(JSON.parse(await lab.mustCli(h1, ['network', 'inspect', net]))[0].Containers as Record<string, { Name: string; IPv4Address: string; GatewayBridgeIPv4Address: string }>);

  beforeAll(async () => {
    try {
      await lab.start();
      h1 = await lab.addHost('h1');
      inet = await lab.addHost('inet');
      // The "internet": an HTTP server answering with the address it sees the client at.
      const script = path.join(lab.dir, 'http.cjs');
      writeFileSync(script, "require('node:http').createServer((q, s) => s.end(q.socket.remoteAddress)).listen(8080, '0.0.0.0');\n");
      lab.spawnIn(inet.ns, process.execPath, [script], 'inet.log');
      // The internet's DNS server: the agent's upstream; logs every query it sees.
      lab.spawnIn(inet.ns, process.execPath, [writeUpstreamScript(lab.dir)], 'upstream.log');
      await waitFor('upstream listening', async () => existsSync(path.join(lab.dir, 'upstream.log')) && upstreamLog().includes('listening'), 10_000);
      agent = await lab.startAgent(h1, agentArgs());
      await lab.mustCli(h1, ['network', 'create', '-d', 'overlay', '--subnet', '10.0.20.0/24', 'pub']);
      await lab.mustCli(h1, ['network', 'create', '-d', 'overlay', '--subnet', '10.0.21.0/24', '--internal', 'priv']);
      pub = await lab.addContainer(h1, 'pub');
      priv = await lab.addContainer(h1, 'priv');
      both = await lab.addContainer(h1, 'both');
      await lab.mustCli(h1, ['network', 'connect', 'pub', pub]);
      await lab.mustCli(h1, ['network', 'connect', 'priv', priv]);
      await lab.mustCli(h1, ['network', 'connect', 'priv', both]);
      await lab.mustCli(h1, ['network', 'connect', 'pub', both]);
      await waitFor('http server', async () => (await lab.exec(h1.ns, 'curl', ['-s', '--max-time', '1', `http://${inet.addr}:8080/`])).code === 0, 10_000);
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  }, 120_000);
  afterAll(() => lab.cleanup());

  it('the agent installed table ip tapmesh and the bridge in its own namespace only', async () => {
    const t = await nftTable();
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(new RegExp(`ip saddr ${SUBNET.replace(/[./]/g, '\\$&')} oifname != "tm_gwbridge" masquerade`));
    expect((await bridge()).stdout).toContain('172.30.0.1/24');
    expect((await lab.exec(h1.ns, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).stdout.trim()).toBe('1');
  });

  it('network inspect shows the gateway-bridge address; an --internal network has none', async () => {
    const p = (await containers('pub')).find((x) => x.Name === pub)!;
    expect(p.GatewayBridgeIPv4Address).toMatch(/^172\.30\.0\.\d+\/24$/);
    const q = (await containers('priv')).find((x) => x.Name === priv)!;
    expect(q.GatewayBridgeIPv4Address).toBe('');
    expect(JSON.parse(await lab.mustCli(h1, ['network', 'inspect', 'priv']))[0].Internal).toBe(true);
  });

  it('a container on an overlay pings and opens TCP to the internet, masqueraded behind the host', async () => {
    const p = await ping(pub);
    expect(p.code, p.stdout + p.stderr).toBe(0);
    const r = await httpFrom(pub);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.replace('::ffff:', '')).toBe(h1.addr);
    // A container on an internal and a public network gets egress through the public one.
    expect((await httpFrom(both)).stdout.replace('::ffff:', '')).toBe(h1.addr);
  });

  it('a container only on an --internal network cannot reach outside', async () => {
    expect((await lab.exec(priv, 'ip', ['route', 'show', 'default'])).stdout.trim()).toBe('');
    expect((await ping(priv)).code).not.toBe(0);
    expect((await httpFrom(priv)).code).not.toBe(0);
  });

  it('a container only on --internal networks: unknown names REFUSED at once, never sent upstream; its local names resolve', async () => {
    const dnsStats = async (): Promise<Record<string, number>> =>
      (await lab.mustCli(h1, ['stats', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l)).find((l) => l.DNS).DNS;
    // The upstream answers the public containers (so it is up and reachable from the agent).
    expect((await dig(lab, pub, 'pub-asks.example')).lines).toEqual([UPSTREAM_ANSWER]);
    // A container on an internal and a public network still forwards.
    expect((await dig(lab, both, 'both-asks.example')).lines).toEqual([UPSTREAM_ANSWER]);
    const before = await dnsStats();
    for (const args of [['priv-asks.example'], ['+tcp', 'priv-asks-tcp.example'], ['-x', '192.0.2.1']]) {
      const r = await dig(lab, priv, ...args);
      expect(r.status, r.out).toBe('REFUSED');
      expect(r.ms).toBeLessThan(1000); // no upstream timeout (2 s) waited
      expect((/;; flags: ([a-z ]*);/.exec(r.out)?.[1] ?? '').split(' ')).not.toContain('ra');
    }
    const mid = await dnsStats();
    expect(mid.internal - before.internal).toBe(3);
    // glibc gives up at once too (REFUSED and no other server), not after its 5 s timeout.
    const t0 = Date.now();
    expect((await lab.exec(priv, 'getent', ['hosts', 'priv-getent.example'])).code).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(3000);
    // Names of its own network still resolve.
    const bothOnPriv = (await containers('priv')).find((x) => x.Name === both)!.IPv4Address.split('/')[0];
    expect((await dig(lab, priv, both)).lines).toEqual([bothOnPriv]);
    const after = await dnsStats();
    expect(after.internal).toBeGreaterThan(mid.internal); // getent's queries (AAAA, A, search domains)
    expect(after.forwarded).toBe(before.forwarded);
    const log = upstreamLog();
    expect(log).toContain('query pub-asks.example');
    expect(log).toContain('query both-asks.example');
    expect(log).not.toContain('priv-');
    expect(log).not.toContain('1.2.0.192.in-addr.arpa');
  });

  it('containers cannot reach each other through the gateway bridge (isolated ports)', async () => {
    const other = (await containers('pub')).find((x) => x.Name === both)!.GatewayBridgeIPv4Address.split('/')[0];
    expect((await lab.exec(pub, 'ping', ['-c', '1', '-W', '1', other])).code).not.toBe(0);
  });

  it('a clean stop removes the table and the bridge; a restart brings egress (and the container DNS) back with the same address', async () => {
    const digSelf = async () => (await lab.exec(pub, 'dig', ['@127.0.0.11', '+short', '+time=2', '+tries=1', pub])).stdout.trim();
    const ip = await digSelf();
    expect(ip).toMatch(/^10\.0\.20\.\d+$/);
    const before = (await containers('pub')).find((x) => x.Name === pub)!.GatewayBridgeIPv4Address;
    await lab.stopProcess(agent);
    expect((await nftTable()).code).not.toBe(0);
    expect((await bridge()).code).not.toBe(0);
    agent = await lab.startAgent(h1, agentArgs());
    expect((await nftTable()).code).toBe(0);
    expect((await containers('pub')).find((x) => x.Name === pub)!.GatewayBridgeIPv4Address).toBe(before);
    await waitFor('egress back after restart', async () => (await httpFrom(pub)).code === 0, 10_000, 200);
    expect((await ping(pub)).code).toBe(0);
    expect(await digSelf()).toBe(ip); // the resolver is served again for the restored container
  });

  it('disconnect removes the interface; rm of the last network removes the table and the bridge', async () => {
    await lab.mustCli(h1, ['network', 'disconnect', 'pub', pub]);
    expect((await lab.exec(pub, 'ip', ['route', 'show', 'default'])).stdout.trim()).toBe('');
    expect((await httpFrom(pub)).code).not.toBe(0);
    await lab.mustCli(h1, ['network', 'disconnect', 'pub', both]);
    await lab.mustCli(h1, ['network', 'disconnect', 'priv', both]);
    await lab.mustCli(h1, ['network', 'disconnect', 'priv', priv]);
    await lab.mustCli(h1, ['network', 'rm', 'pub']);
    expect((await nftTable()).code).toBe(0); // priv is still there
    await lab.mustCli(h1, ['network', 'rm', 'priv']);
    expect((await nftTable()).code).not.toBe(0);
    expect((await bridge()).code).not.toBe(0);
  });
});
