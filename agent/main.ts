// `tapmesh agent`: runs in the foreground, logs JSON lines to stderr, serves the API.
import path from 'node:path';
import { parseIpv4 as ipv4ToNum } from '../router/wire/addr.js';
import { WorkerEngine } from '../router/engine.js';
import type { Upstream } from '../dns/config.js';
import { Agent } from './agent.js';
import { ContainerServices } from './containers.js';
import { AgentDns, hostSearch } from './dns.js';
import { serviceNames } from './dns-services.js';
import { GatewayBridge } from './gwbridge.js';
import { exec } from './sandbox.js';
import { ClusterAllocator } from './allocator.js';
import { serveApi } from './api.js';
import { Cluster } from './cluster.js';
import { jsonLogger } from './log.js';
import { Metrics, serveMetrics } from './metrics.js';
import { Replication } from './replication.js';
import { Encryption, identityMeta } from './encryption.js';
import { keyId } from '../gossip/index.js';
import { ESP_UDP_PORT } from '../router/wire/esp.js';
import { Mesh, nativeTcpDialer } from '../balancer/mesh.js';
import { nativeUdpOpener } from '../balancer/mesh-udp.js';
import { TaskLoad, localTaskLoad } from './task-load.js';
import type { Logger } from './log.js';
import type { LearningConfig } from '../router/learned.js';
import type { ProfileName } from '../gossip/config.js';

/**
 * What the agent runs with, already parsed and checked (cli/commands/agent.ts owns the
 * `tapmesh agent` flags, their defaults and their validation).
 */
export interface AgentOptions {
  /** IPv4 address other hosts reach this one at (gossip; the VTEP unless dataPathAddr differs). */
  advertiseAddr: string;
  /** IPv4 address VXLAN leaves from and peers check as this host's VTEP. */
  dataPathAddr: string;
  /** Gossip UDP+TCP bind address and port. */
  listenAddr: string;
  listenPort: number;
  /** Members to join at start, ADDR[:PORT] each. */
  join: string[];
  /** UDP port of VXLAN, sent to and received on. */
  vxlanPort: number;
  /** Networks, endpoints, keyring and gossip identity live here. */
  stateDir: string;
  /** Path of the API's unix socket. */
  socket: string;
  /** Name prefix of the sandbox namespaces (default: derived from the node ID). */
  netnsPrefix?: string;
  /** VXLAN send sockets (a flow's hash picks one). */
  txSockets: number;
  /** TAP/UDP offloads (virtio headers, GSO/GRO). */
  offload: boolean;
  /** Join token file that seeds the keyring on first start. */
  secretFile?: string;
  /** Hostname shown in `node ls`. */
  nodeName: string;
  /** Gossip timings (gossip/config.ts). */
  profile: ProfileName;
  /** Microseconds the datapath thread stays awake after traffic before sleeping. */
  busyPollUs: number;
  /** Idle expiry of UDP flows through VIPs and the routing mesh, ms. */
  udpIdleMs: number;
  /** Cap (entries per network) and ageing (ms) of MACs learned from static VTEPs. */
  learning: LearningConfig;
  /** Software version, advertised to the other members. */
  version: string;
  /** Where to serve Prometheus metrics and /healthz over HTTP (absent: not served). */
  metrics?: { addr: string; port: number };
  /** Upstream DNS resolvers, at most 3 (default: the host's resolv.conf, read at start). */
  dnsUpstreams: Upstream[];
  /** IPv4 subnet of the gateway bridge (egress); this host's bridge holds its .1. */
  gwbridgeSubnet: string;
  /** Encrypted networks: age (ms) after which every SA is replaced. */
  rekeyIntervalMs: number;
  /** Encrypted networks: append every installed SA to this file (Wireshark esp_sa format). */
  keylog?: string;
}

export async function runAgent(o: AgentOptions): Promise<void> {
  const { advertiseAddr, dataPathAddr, vxlanPort, txSockets, socket, stateDir, listenAddr, listenPort, profile, offload, busyPollUs } = o;
  const listen = `${listenAddr}:${listenPort}`;
  const log = jsonLogger('agent');

  const engine = new WorkerEngine({ bindAddr: 0, vxlanPort, txSockets, srcAddr: ipv4ToNum(dataPathAddr), offload, busyPollUs, espPort: ESP_UDP_PORT, udpIdleMs: o.udpIdleMs, learning: o.learning }, (e) => {
    log.error('datapath failed', { error: e.message });
    process.exit(1);
  });
  await engine.start();
  const agent = new Agent({ advertiseAddr, dataPathAddr, vxlanPort, stateDir, netnsPrefix: o.netnsPrefix, offload }, engine, log);
  const networks = () => agent.state.networks;
  const dns = new AgentDns(networks, { upstreams: o.dnsUpstreams, search: hostSearch() }, log);
  const containers = new ContainerServices(networks, dns, new GatewayBridge(stateDir, o.gwbridgeSubnet, exec, log), log);
  agent.setHooks(containers);
  await agent.restore();
  await containers.restored();
  if (agent.state.networks.length === 0) await containers.gw?.probe();
  const { identity, x25519 } = identityMeta(stateDir);
  const cluster = new Cluster({
    id: agent.nodeId, name: o.nodeName, listenAddr, listenPort, advertiseAddr,
    join: o.join, secretFile: o.secretFile, stateDir, profile,
    meta: { vtep: dataPathAddr, vxlanPort, version: o.version, x25519 },
  }, log);
  await cluster.start();
  const enc = new Encryption({ stateDir, dataPathAddr, rekeyIntervalMs: o.rekeyIntervalMs, keylog: o.keylog }, identity, cluster.node,
    () => cluster.keyring.exportKeys().map((key) => ({ id: keyId(key), key })), engine, () => agent.state.networks.some((n) => n.encrypted), log);
  enc.start();
  agent.attachEncryption(enc);
  const alloc = new ClusterAllocator(cluster.ipam);
  const repl = new Replication(agent, cluster, engine, alloc, log);
  agent.attachCluster(cluster, alloc, repl);
  repl.start();
  dns.follow(cluster.node.tables);
  dns.useServices(serviceNames(agent.services, cluster.node.tables));
  const mesh = startMesh(agent, cluster, log, o.udpIdleMs);
  const load = new TaskLoad(cluster.node.tables, agent.nodeId,
    async () => localTaskLoad(mesh.stats(), await engine.stats(), agent.state.networks, agent.services.tasks()));
  agent.services.useLoad(load);
  load.start();
  const server = await serveApi(path.resolve(socket), agent, cluster, log, dns);
  const metrics = o.metrics && (await serveMetrics(o.metrics.addr, o.metrics.port, new Metrics({ engine, agent, cluster, repl }), log));
  log.info('agent started', {
    nodeId: agent.nodeId, advertiseAddr, dataPathAddr, vxlanPort, socket, stateDir, listen,
    join: o.join, networks: agent.state.networks.length, offload, dnsUpstreams: o.dnsUpstreams.map((u) => `${u.host}:${u.port}`),
    gwbridgeSubnet: o.gwbridgeSubnet, egress: containers.gw?.unavailable ?? 'ok',
    metrics: o.metrics ? `${o.metrics.addr}:${o.metrics.port}` : undefined,
  });

  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info('agent stopping', { signal: sig });
    // Sandboxes and container interfaces stay: a restarted agent adopts them. The leave is
    // broadcast first (others show this host Left at once); whatever remains is cut at 2 s.
    setTimeout(() => process.exit(0), 1900).unref();
    server.close();
    metrics?.close();
    enc.stop();
    load.stop();
    void Promise.allSettled([mesh.close(), containers.stop(), cluster.stop()]).then(() => engine.close().finally(() => process.exit(0)));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/**
 * The routing mesh (balancer/mesh.ts): published ports of every service on this host, following
 * the services' mesh targets; connections start in the network's sandbox.
 */
function startMesh(agent: Agent, cluster: Cluster, log: Logger, udpIdleMs: number): Mesh {
  const mesh = new Mesh({
    sandboxOf: (network) => agent.sandboxOf(network),
    setNeighbors: (network, add, remove) => agent.setMeshNeighbors(network, add, remove),
    ...nativeTcpDialer(),
    ...nativeUdpOpener,
    hostDown: (id) => {
      const st = cluster.node.members().find((m) => m.id === id)?.state;
      return st === undefined || st === 'dead' || st === 'left';
    },
    warn: (msg, fields) => log.warn(msg, fields),
  }, { udpIdleMs });
  const apply = (targets: Parameters<Mesh['update']>[0]) => mesh.update(targets).catch((e: Error) => log.error('routing mesh update failed', { error: e.message }));
  agent.services.onMeshChange((t) => void apply(t));
  void apply(agent.services.allMeshTargets());
  agent.mesh = mesh;
  return mesh;
}
