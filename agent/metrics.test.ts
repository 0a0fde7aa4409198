import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parsePrometheusText, valueOf } from '../test/harness/prom-text.js';
import { C, COUNTER_NAMES, D, DROP_NAMES, snapshot } from '../router/counters.js';
import type { DatapathEngine, DpStats } from '../router/engine.js';
import type { Agent } from './agent.js';
import type { Cluster } from './cluster.js';
import { Metrics, serveMetrics, type MetricsSources } from './metrics.js';

const silent = { info() {}, warn() {}, error() {} };

function sources(o: { hang?: boolean; selfState?: string } = {}) {
  const counters = new Float64Array(COUNTER_NAMES.length);
  const drops = new Float64Array(DROP_NAMES.length);
  const global = new Float64Array(DROP_NAMES.length);
  const networks = [{ id: 'n1', name: 'web', vni: 4096, endpoints: [{}, {}] }];
  const stats = (): DpStats => ({ drops: snapshot(DROP_NAMES, global), networks: Object.fromEntries(networks.map((n) => [n.vni, { counters: snapshot(COUNTER_NAMES, counters), drops: snapshot(DROP_NAMES, drops) }])) });
  const engine = {
    stats: () => (o.hang ? new Promise<DpStats>(() => undefined) : Promise.resolve(stats())),
    call: async () => [{ mac: 'm1', vtep: '192.0.2.2', static: false }, { mac: 'm2', vtep: '192.0.2.9', static: true }, { mac: 'm3', vtep: '192.0.2.2', static: false }],
    close: async () => undefined,
  } as unknown as DatapathEngine;
  const node = {
    stats: () => ({ packetsIn: 10, packetsOut: 11, bytesIn: 1000, bytesOut: 1100, messagesIn: 20, messagesOut: 21, requestsIn: 2, requestsOut: 3,
      dropped: { malformed: 1, auth: 2, unexpected: 0, error: 0, oversize: 0 }, health: 0, members: { alive: 3, suspect: 1, dead: 0, left: 1 } }),
    localMember: () => ({ state: o.selfState ?? 'alive' }),
    members: () => [{ state: 'alive' }, { state: 'alive' }, { state: 'suspect' }],
  };
  const cluster = { node, suspectEvents: 4, ipam: { allocations: () => [1, 2, 3, 4, 5] } } as unknown as Cluster;
  const src: MetricsSources = { engine, agent: { state: { networks } } as unknown as Agent, cluster, repl: { endpointsOf: () => [1, 2, 3] as never } };
  return { src, counters, drops, global, networks };
}

describe('agent metrics (prom-client registry read from the counter snapshots)', () => {
  it('renders every family in valid text format with the snapshot values', async () => {
    const s = sources();
    s.counters[C.vxlanRxPackets] = 7;
    s.counters[C.vxlanRxBytes] = 700;
    s.counters[C.arpReplied] = 2;
    s.drops[D.spoofedSrcMac] = 3;
    s.global[D.vxlanBadFlags] = 9;
    const m = parsePrometheusText(await new Metrics(s.src).render());
    const l = { network: 'web', vni: '4096' };
    expect(valueOf(m, 'tapmesh_datapath_up')).toBe(1);
    expect(valueOf(m, 'tapmesh_network_packets_total', { ...l, path: 'vxlan_rx' })).toBe(7);
    expect(valueOf(m, 'tapmesh_network_bytes_total', { ...l, path: 'vxlan_rx' })).toBe(700);
    expect(valueOf(m, 'tapmesh_network_packets_total', { ...l, path: 'tap_tx' })).toBe(0);
    expect(valueOf(m, 'tapmesh_network_events_total', { ...l, event: 'arpReplied' })).toBe(2);
    expect(valueOf(m, 'tapmesh_network_drops_total', { ...l, reason: 'spoofedSrcMac' })).toBe(3);
    expect(m.get('tapmesh_network_drops_total')!.samples).toHaveLength(DROP_NAMES.length);
    expect(valueOf(m, 'tapmesh_datapath_drops_total', { reason: 'vxlanBadFlags' })).toBe(9);
    expect(valueOf(m, 'tapmesh_forwarding_entries', { ...l, kind: 'static' })).toBe(1);
    expect(valueOf(m, 'tapmesh_forwarding_entries', { ...l, kind: 'dynamic' })).toBe(2);
    expect(valueOf(m, 'tapmesh_endpoints', { ...l, scope: 'local' })).toBe(2);
    expect(valueOf(m, 'tapmesh_endpoints', { ...l, scope: 'cluster' })).toBe(3);
    expect(valueOf(m, 'tapmesh_ipam_allocated_addresses', l)).toBe(5);
    expect(valueOf(m, 'tapmesh_gossip_members', { state: 'suspect' })).toBe(1);
    expect(valueOf(m, 'tapmesh_gossip_suspect_events_total')).toBe(4);
    expect(valueOf(m, 'tapmesh_gossip_drops_total', { reason: 'auth' })).toBe(2);
    expect(valueOf(m, 'tapmesh_gossip_bytes_total', { direction: 'out' })).toBe(1100);
    expect(m.get('process_cpu_user_seconds_total')?.type).toBe('counter');
  });

  it('follows the snapshot: a counter that moved, a network that went away', async () => {
    const s = sources();
    const metrics = new Metrics(s.src);
    await metrics.render();
    s.counters[C.tapRxFrames] = 5;
    let m = parsePrometheusText(await metrics.render());
    expect(valueOf(m, 'tapmesh_network_packets_total', { network: 'web', path: 'tap_rx' })).toBe(5);
    s.networks.length = 0;
    m = parsePrometheusText(await metrics.render());
    expect(m.get('tapmesh_network_packets_total')!.samples).toHaveLength(0);
    expect(m.get('tapmesh_endpoints')!.samples).toHaveLength(0);
  });

  it('a datapath thread that does not answer: datapath_up 0, no datapath series, /healthz 503', async () => {
    const metrics = new Metrics(sources({ hang: true }).src);
    const m = parsePrometheusText(await metrics.render());
    expect(valueOf(m, 'tapmesh_datapath_up')).toBe(0);
    expect(m.get('tapmesh_network_packets_total')!.samples).toHaveLength(0);
    expect(valueOf(m, 'tapmesh_gossip_members', { state: 'alive' })).toBe(3);
    expect(await metrics.health()).toEqual({ ok: false, datapath: false, gossip: true, members: 2 });
  });

  it('serves /metrics, /healthz (200, or 503 when this host is not alive in gossip) and 404/405 over HTTP', async () => {
    const get = (port: number, p: string, method = 'GET') => new Promise<{ code: number; type: string; body: string }>((resolve, reject) => {
      http.request({ host: '127.0.0.1', port, path: p, method }, (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ code: res.statusCode!, type: String(res.headers['content-type']), body }));
      }).on('error', reject).end();
    });
    for (const [state, code] of [['alive', 200], ['left', 503]] as const) {
      const server = await serveMetrics('127.0.0.1', 0, new Metrics(sources({ selfState: state }).src), silent);
      const port = (server.address() as AddressInfo).port;
      try {
        const h = await get(port, '/healthz');
        expect(h.code).toBe(code);
        expect(JSON.parse(h.body)).toMatchObject({ datapath: true, gossip: state === 'alive' });
        const m = await get(port, '/metrics');
        expect(m.code).toBe(200);
        expect(m.type).toMatch(/^text\/plain; version=0\.0\.4/);
        expect(() => parsePrometheusText(m.body)).not.toThrow();
        expect((await get(port, '/other')).code).toBe(404);
        expect((await get(port, '/metrics', 'POST')).code).toBe(405);
      } finally {
        await new Promise((r) => server.close(r));
      }
    }
  });

  it('refuses to start on an address in use (the agent exits with that error)', async () => {
    const a = await serveMetrics('127.0.0.1', 0, new Metrics(sources().src), silent);
    const port = (a.address() as AddressInfo).port;
    await expect(serveMetrics('127.0.0.1', port, new Metrics(sources().src), silent)).rejects.toThrow(/EADDRINUSE/);
    await new Promise((r) => a.close(r));
  });
});

describe('the strict Prometheus text parser the tests use', () => {
  const bad: [string, RegExp][] = [
    ['x 1', /newline/],
    ['# TYPE x counter\nx -1\n', /counter x is -1/],
    ['x{a="1" 2\n', /','|'}'/],
    ['x{a=1} 2\n', /not quoted/],
    ['x 1\nx 2\n', /duplicate series/],
    ['x 1\ny 1\nx{a="b"} 1\n', /not contiguous/],
    ['# TYPE x counter\nx 1\n# TYPE x counter\n', /after its samples/],
    ['x one\n', /bad value/],
    ['9x 1\n', /bad metric name/],
    ['# TYPE h histogram\nh_bucket{le="1"} 5\nh_bucket{le="+Inf"} 3\nh_count 3\nh_sum 1\n', /cumulative/],
    ['# TYPE x wat\n', /unknown type/],
  ];
  it.each(bad)('rejects %j', (text, msg) => {
    expect(() => parsePrometheusText(text)).toThrow(msg);
  });

  it('reads labels with escapes, special values and timestamps', () => {
    const m = parsePrometheusText('# HELP x A help\n# TYPE x gauge\nx{a="q\\"u\\\\o\\n",b="2",} +Inf 1700000000\nx{a="z"} NaN\n');
    expect(m.get('x')!.help).toBe('A help');
    expect(m.get('x')!.samples[0]).toEqual({ name: 'x', labels: { a: 'q"u\\o\n', b: '2' }, value: Infinity });
    expect(valueOf(m, 'x', { a: 'z' })).toBeNaN();
  });
});
