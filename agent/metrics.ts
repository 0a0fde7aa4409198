// Prometheus metrics and a health check over HTTP (--metrics-addr), on the main thread.
// Flow of one scrape:
//   1. snapshot: the datapath's counters (one `stats` round trip to its thread), the forwarding
//      tables, gossip stats and members, IPAM records; all read now, nothing cached
//   2. publish: every metric is reset and set from the snapshot, so a removed network's
//      series disappear with it
//   3. render: prom-client's text format, plus its default process metrics
// The datapath counts in Float64Arrays (router/counters.ts); they are exported under the names
// given there (reason="vxlanBadFlags"), so `tapmesh stats` and Prometheus speak the same words.
import http from 'node:http';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { COUNTER_NAMES, C, DROP_NAMES } from '../router/counters.js';
import type { DatapathEngine, DpStats } from '../router/engine.js';
import type { Agent } from './agent.js';
import type { Cluster } from './cluster.js';
import type { Logger } from './log.js';
import type { Publisher } from './agent.js';

/** A scrape or health check waits this long for the datapath thread before calling it dead. */
export const DATAPATH_PING_MS = 1000;

export interface MetricsSources {
  engine: DatapathEngine;
  agent: Agent;
  cluster: Cluster;
  repl: Pick<Publisher, 'endpointsOf'>;
}

/** The per-network counters that count packets, and the bytes counter that goes with each. */
const PATHS = [
  { path: 'tap_rx', packets: C.tapRxFrames, bytes: C.tapRxBytes },
  { path: 'tap_tx', packets: C.tapTxFrames, bytes: C.tapTxBytes },
  { path: 'vxlan_rx', packets: C.vxlanRxPackets, bytes: C.vxlanRxBytes },
  { path: 'vxlan_tx', packets: C.vxlanTxPackets, bytes: C.vxlanTxBytes },
] as const;
const PATH_SLOTS = new Set<number>(PATHS.flatMap((p) => [p.packets, p.bytes]));
/** The other per-network counters (ARP answered, learned MACs, offload work): events by name. */
const EVENTS = COUNTER_NAMES.filter((n) => !PATH_SLOTS.has(C[n]));

/** Resolves to fn's result, or rejects after ms (the thread may be stuck in a loop). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

export class Metrics {
  readonly registry = new Registry();
  private readonly up: Gauge;
  private readonly packets: Counter;
  private readonly bytes: Counter;
  private readonly drops: Counter;
  private readonly events: Counter;
  private readonly globalDrops: Counter;
  private readonly forwarding: Gauge;
  private readonly endpoints: Gauge;
  private readonly ipam: Gauge;
  private readonly members: Gauge;
  private readonly suspects: Counter;
  private readonly healthScore: Gauge;
  private readonly gossipPackets: Counter;
  private readonly gossipBytes: Counter;
  private readonly gossipMessages: Counter;
  private readonly gossipRequests: Counter;
  private readonly gossipDrops: Counter;

  constructor(private readonly src: MetricsSources) {
    const registers = [this.registry];
    const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers });
    const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers });
    const net = ['network', 'vni'];
    this.up = gauge('tapmesh_datapath_up', '1 if the datapath thread answered this scrape within the ping timeout');
    this.packets = counter('tapmesh_network_packets_total', 'Frames/datagrams per network and path (tap_rx from containers, vxlan_tx to peers, vxlan_rx accepted, tap_tx delivered)', [...net, 'path']);
    this.bytes = counter('tapmesh_network_bytes_total', 'Bytes per network and path (inner frame bytes on the TAP side, VXLAN payload on the UDP side)', [...net, 'path']);
    this.drops = counter('tapmesh_network_drops_total', 'Packets dropped per network, by reason (router/counters.ts)', [...net, 'reason']);
    this.events = counter('tapmesh_network_events_total', 'Other datapath work per network (ARP answered, MACs learned, segmentation, coalescing)', [...net, 'event']);
    this.globalDrops = counter('tapmesh_datapath_drops_total', 'Datagrams dropped before their network was known, by reason', ['reason']);
    this.forwarding = gauge('tapmesh_forwarding_entries', "Entries in a network's forwarding table (remote MAC -> VTEP), static or from gossip", [...net, 'kind']);
    this.endpoints = gauge('tapmesh_endpoints', 'Endpoints of a network: on this host (local) and on every host (cluster)', [...net, 'scope']);
    this.ipam = gauge('tapmesh_ipam_allocated_addresses', "Addresses allocated in a network's pool, cluster-wide (IPAM records)", net);
    this.members = gauge('tapmesh_gossip_members', 'Cluster members this host knows, by state (itself included)', ['state']);
    this.suspects = counter('tapmesh_gossip_suspect_events_total', 'Times any member was suspected since the agent started');
    this.healthScore = gauge('tapmesh_gossip_health', 'Lifeguard local health score (0 = healthy; higher = this host is slow to answer)');
    this.gossipPackets = counter('tapmesh_gossip_packets_total', 'Gossip datagrams', ['direction']);
    this.gossipBytes = counter('tapmesh_gossip_bytes_total', 'Gossip bytes (datagrams and streams, sealed)', ['direction']);
    this.gossipMessages = counter('tapmesh_gossip_messages_total', 'Gossip messages (each part of a compound datagram counts)', ['direction']);
    this.gossipRequests = counter('tapmesh_gossip_requests_total', 'Reliable (TCP) gossip exchanges', ['direction']);
    this.gossipDrops = counter('tapmesh_gossip_drops_total', 'Gossip input dropped, by reason (malformed, auth, unexpected, error, oversize)', ['reason']);
    collectDefaultMetrics({ register: this.registry });
  }

  /** Whether the datapath thread answers a ping (a `stats` round trip) in time. */
  async datapathStats(): Promise<DpStats | undefined> {
    try {
      return await within(this.src.engine.stats(), DATAPATH_PING_MS, 'datapath');
    } catch {
      return undefined;
    }
  }

  /** Steps 1-3 above: the whole exposition text. */
  async render(): Promise<string> {
    const dp = await this.datapathStats();
    const fwd = dp ? await this.forwardingSizes() : undefined;
    this.publishDatapath(dp, fwd);
    this.publishCluster();
    return this.registry.metrics();
  }

  private async forwardingSizes(): Promise<Map<number, { static: number; dynamic: number }>> {
    const out = new Map<number, { static: number; dynamic: number }>();
    for (const n of this.src.agent.state.networks) {
      try {
        const entries = await within(this.src.engine.call({ op: 'forwarding', vni: n.vni }), DATAPATH_PING_MS, 'datapath');
        const s = entries.filter((e) => e.static).length;
        out.set(n.vni, { static: s, dynamic: entries.length - s });
      } catch {
        /* removed between the two reads: no series for it */
      }
    }
    return out;
  }

  private publishDatapath(dp: DpStats | undefined, fwd: Map<number, { static: number; dynamic: number }> | undefined): void {
    for (const m of [this.packets, this.bytes, this.drops, this.events, this.globalDrops]) m.reset();
    this.forwarding.reset();
    this.up.set(dp ? 1 : 0);
    if (!dp) return;
    for (const r of DROP_NAMES) this.globalDrops.inc({ reason: r }, dp.drops[r] ?? 0);
    for (const n of this.src.agent.state.networks) {
      const s = dp.networks[n.vni];
      if (!s) continue;
      const l = { network: n.name, vni: String(n.vni) };
      for (const p of PATHS) {
        this.packets.inc({ ...l, path: p.path }, s.counters[COUNTER_NAMES[p.packets]] ?? 0);
        this.bytes.inc({ ...l, path: p.path }, s.counters[COUNTER_NAMES[p.bytes]] ?? 0);
      }
      for (const e of EVENTS) this.events.inc({ ...l, event: e }, s.counters[e] ?? 0);
      for (const r of DROP_NAMES) this.drops.inc({ ...l, reason: r }, s.drops[r] ?? 0);
      const f = fwd?.get(n.vni);
      if (f) {
        this.forwarding.set({ ...l, kind: 'static' }, f.static);
        this.forwarding.set({ ...l, kind: 'dynamic' }, f.dynamic);
      }
    }
  }

  private publishCluster(): void {
    const { agent, cluster, repl } = this.src;
    for (const m of [this.endpoints, this.ipam, this.members, this.healthScore]) m.reset();
    for (const m of [this.suspects, this.gossipPackets, this.gossipBytes, this.gossipMessages, this.gossipRequests, this.gossipDrops]) m.reset();
    for (const n of agent.state.networks) {
      const l = { network: n.name, vni: String(n.vni) };
      this.endpoints.set({ ...l, scope: 'local' }, n.endpoints.length);
      this.endpoints.set({ ...l, scope: 'cluster' }, repl.endpointsOf(n.id).length);
      this.ipam.set(l, cluster.ipam.allocations(n.id).length);
    }
    const g = cluster.node.stats();
    for (const [state, count] of Object.entries(g.members)) this.members.set({ state }, count);
    this.suspects.inc(cluster.suspectEvents);
    this.healthScore.set(g.health);
    this.gossipPackets.inc({ direction: 'in' }, g.packetsIn);
    this.gossipPackets.inc({ direction: 'out' }, g.packetsOut);
    this.gossipBytes.inc({ direction: 'in' }, g.bytesIn);
    this.gossipBytes.inc({ direction: 'out' }, g.bytesOut);
    this.gossipMessages.inc({ direction: 'in' }, g.messagesIn);
    this.gossipMessages.inc({ direction: 'out' }, g.messagesOut);
    this.gossipRequests.inc({ direction: 'in' }, g.requestsIn);
    this.gossipRequests.inc({ direction: 'out' }, g.requestsOut);
    for (const [reason, count] of Object.entries(g.dropped)) this.gossipDrops.inc({ reason }, count);
  }

  /** /healthz: the datapath thread answers a ping in time and gossip runs with this host alive. */
  async health(): Promise<{ ok: boolean; datapath: boolean; gossip: boolean; members: number }> {
    const datapath = (await this.datapathStats()) !== undefined;
    const self = this.src.cluster.node.localMember();
    const gossip = self.state === 'alive';
    const members = this.src.cluster.node.members().filter((m) => m.state === 'alive').length;
    return { ok: datapath && gossip, datapath, gossip, members };
  }
}

/** Serve /metrics and /healthz on addr:port; rejects (e.g. EADDRINUSE) if it cannot listen. */
export async function serveMetrics(addr: string, port: number, metrics: Metrics, log: Logger): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'only GET\n');
    const work = path === '/metrics'
      ? metrics.render().then((text) => send(200, metrics.registry.contentType, text))
      : path === '/healthz'
        ? metrics.health().then((h) => send(h.ok ? 200 : 503, 'application/json', JSON.stringify(h) + '\n'))
        : Promise.resolve(send(404, 'text/plain', 'try /metrics or /healthz\n'));
    work.catch((e: Error) => {
      log.error('metrics request failed', { path, error: e.message });
      if (!res.headersSent) send(500, 'text/plain', `${e.message}\n`);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, addr, () => resolve());
  });
  return server;
}
