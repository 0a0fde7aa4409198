// Issue 11, metrics on real namespaces: two agents in a gossip cluster, each with
// --metrics-addr 127.0.0.1:9464 inside its host namespace; `curl` from inside that namespace
// fetches /metrics, a strict Prometheus text parser reads it, the counters move with a ping
// between containers on the two hosts and with hostile datagrams, and /healthz answers 200.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, repoRoot, requireRoot, waitFor } from './harness/lab.js';
import { buildOverlay, type Overlay } from './harness/overlay.js';
import { parsePrometheusText, valueOf, type Family } from './harness/prom-text.js';

const root = requireRoot('metrics integration');
const INJECT = path.join(repoRoot, 'test/harness/inject.py');
const ADDR = '127.0.0.1:9464';

describe.skipIf(!root)('--metrics-addr: Prometheus metrics and /healthz', () => {
  const lab = new Lab();
  let ov: Overlay;

  const curl = async (ns: string, p: string): Promise<{ code: number; body: string; type: string }> => {
    const r = await lab.exec(ns, 'curl', ['-sS', '-o', '-', '-w', '\n%{http_code} %{content_type}', `http://${ADDR}${p}`], 10_000);
    if (r.code !== 0) throw new Error(`curl ${p} in ${ns}: exit ${r.code} ${r.stderr}`);
    const cut = r.stdout.lastIndexOf('\n');
    const [code, ...type] = r.stdout.slice(cut + 1).split(' ');
    return { code: Number(code), body: r.stdout.slice(0, cut), type: type.join(' ') };
  };
  const scrape = async (ns: string): Promise<Map<string, Family>> => {
    const r = await curl(ns, '/metrics');
    expect(r.code).toBe(200);
    expect(r.type).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheusText(r.body);
  };
  const net = (path2: string) => ({ network: 'overnet', vni: String(ov.vni), path: path2 });

  beforeAll(async () => {
    try {
      ov = await buildOverlay(lab, { hosts: 2, containersPerHost: 1, mode: 'gossip', agentArgs: ['--metrics-addr', ADDR] });
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  });
  afterAll(() => lab.cleanup());

  it('serves every family in strict text format: datapath, tables, gossip, IPAM, process', async () => {
    const [h1] = ov.hosts;
    const m = await scrape(h1.ns);
    expect(valueOf(m, 'tapmesh_datapath_up')).toBe(1);
    for (const p of ['tap_rx', 'tap_tx', 'vxlan_rx', 'vxlan_tx']) {
      expect(m.get('tapmesh_network_packets_total')?.type).toBe('counter');
      expect(valueOf(m, 'tapmesh_network_packets_total', net(p)), p).toBeGreaterThanOrEqual(0);
      expect(valueOf(m, 'tapmesh_network_bytes_total', net(p)), p).toBeGreaterThanOrEqual(0);
    }
    expect(valueOf(m, 'tapmesh_network_drops_total', { network: 'overnet', reason: 'spoofedSrcMac' })).toBeGreaterThanOrEqual(0);
    expect(valueOf(m, 'tapmesh_datapath_drops_total', { reason: 'vxlanBadFlags' })).toBeGreaterThanOrEqual(0);
    expect(valueOf(m, 'tapmesh_gossip_members', { state: 'alive' })).toBe(2);
    expect(valueOf(m, 'tapmesh_gossip_members', { state: 'dead' })).toBe(0);
    // The agent's own count (`tapmesh stats`), read after the scrape: equal unless a suspect came in between.
    const stats = (await lab.mustCli(h1, ['stats', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l));
    const suspects = stats.find((l) => l.Gossip).Gossip.suspectEvents as number;
    expect(m.get('tapmesh_gossip_suspect_events_total')?.type).toBe('counter');
    expect(valueOf(m, 'tapmesh_gossip_suspect_events_total')).toBeLessThanOrEqual(suspects);
    expect(valueOf(m, 'tapmesh_gossip_packets_total', { direction: 'in' })).toBeGreaterThan(0);
    expect(valueOf(m, 'tapmesh_gossip_drops_total', { reason: 'auth' })).toBe(0);
    // One container per host: one local endpoint, two in the cluster, one forwarding entry
    // (the other host's container), two addresses allocated by the cluster IPAM.
    expect(valueOf(m, 'tapmesh_endpoints', { network: 'overnet', scope: 'local' })).toBe(1);
    expect(valueOf(m, 'tapmesh_endpoints', { network: 'overnet', scope: 'cluster' })).toBe(2);
    expect(valueOf(m, 'tapmesh_forwarding_entries', { network: 'overnet', kind: 'dynamic' })).toBe(1);
    expect(valueOf(m, 'tapmesh_ipam_allocated_addresses', { network: 'overnet' })).toBe(2);
    expect(valueOf(m, 'process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    expect(m.get('process_cpu_seconds_total')?.type).toBe('counter');
    expect(m.get('nodejs_eventloop_lag_seconds')?.type).toBe('gauge');
  });

  it('packet and byte counters move with a ping between containers on the two hosts', async () => {
    const [a, b] = ov.containers;
    const before = [await scrape(a.host.ns), await scrape(b.host.ns)];
    const r = await lab.exec(a.ns, 'ping', ['-c', '5', '-i', '0.2', '-W', '2', b.ip], 20_000);
    expect(r.code, r.stdout).toBe(0);
    const after = [await scrape(a.host.ns), await scrape(b.host.ns)];
    const delta = (i: number, name: string, p: string) => valueOf(after[i], name, net(p))! - valueOf(before[i], name, net(p))!;
    // h1 sent 5 echo requests out and got 5 replies in; h2 the reverse. (ARP stays local.)
    for (const i of [0, 1]) {
      expect(delta(i, 'tapmesh_network_packets_total', 'vxlan_tx'), `host ${i + 1} vxlan_tx`).toBeGreaterThanOrEqual(5);
      expect(delta(i, 'tapmesh_network_packets_total', 'vxlan_rx'), `host ${i + 1} vxlan_rx`).toBeGreaterThanOrEqual(5);
      expect(delta(i, 'tapmesh_network_packets_total', 'tap_tx'), `host ${i + 1} tap_tx`).toBeGreaterThanOrEqual(5);
      // An echo request is 98 bytes on the inner Ethernet (14 + 20 + 8 + 56).
      expect(delta(i, 'tapmesh_network_bytes_total', 'vxlan_rx'), `host ${i + 1} bytes`).toBeGreaterThanOrEqual(5 * 98);
    }
  });

  it('drops move by reason with hostile datagrams', async () => {
    const [h1, h2] = ov.hosts;
    const reason = (m: Map<string, Family>, r: string) => valueOf(m, 'tapmesh_datapath_drops_total', { reason: r })!;
    const before = await scrape(h1.ns);
    const junk = Buffer.from('not vxlan, long enough to pass the length gate').toString('hex');
    await lab.mustExec(h2.ns, 'python3', [INJECT, 'udp', h2.addr, h1.addr, '4789', junk, junk, Buffer.alloc(6).toString('hex')]);
    await waitFor('drop counters on h1', async () => {
      const m = await scrape(h1.ns);
      return reason(m, 'vxlanBadFlags') - reason(before, 'vxlanBadFlags') === 2 && reason(m, 'vxlanShort') - reason(before, 'vxlanShort') === 1;
    }, 10_000, 100);
  });

  it('GET /healthz answers 200 with the datapath and gossip alive; other paths 404', async () => {
    const r = await curl(ov.hosts[1].ns, '/healthz');
    expect(r.code).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ ok: true, datapath: true, gossip: true, members: 2 });
    expect((await curl(ov.hosts[1].ns, '/nope')).code).toBe(404);
  });

  it('listens only where asked: inside the host namespace, on loopback', async () => {
    const ss = await lab.exec(ov.hosts[0].ns, 'ss', ['-Hltn', 'sport = :9464'], 5000);
    expect(ss.stdout.trim().split('\n')).toHaveLength(1);
    expect(ss.stdout).toMatch(/127\.0\.0\.1:9464/);
  });
});
