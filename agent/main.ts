// `tapmesh agent`: runs in the foreground, logs JSON lines to stderr, serves the API.
import path from 'node:path';
import { parseIpv4 as ipv4ToNum } from '../router/wire/addr.js';
import { WorkerEngine } from '../router/engine.js';
import { Agent } from './agent.js';
import { ClusterAllocator } from './allocator.js';
import { serveApi } from './api.js';
import { Cluster } from './cluster.js';
import { jsonLogger } from './log.js';
import { Replication } from './replication.js';
import { Mesh, nativeTcpDialer } from '../balancer/mesh.js';
import { nativeUdpOpener } from '../balancer/mesh-udp.js';
import type { Logger } from './log.js';
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
  /** Software version, advertised to the other members. */
  version: string;
}

export async function runAgent(o: AgentOptions): Promise<void> {
  const { advertiseAddr, dataPathAddr, vxlanPort, txSockets, socket, stateDir, listenAddr, listenPort, profile, offload, busyPollUs } = o;
  const listen = `${listenAddr}:${listenPort}`;
  const log = jsonLogger('agent');

  const engine = new WorkerEngine({ bindAddr: 0, vxlanPort, txSockets, srcAddr: ipv4ToNum(dataPathAddr), offload, busyPollUs, udpIdleMs: o.udpIdleMs }, (e) => {
    log.error('datapath failed', { error: e.message });
    process.exit(1);
  });
  await engine.start();
  const agent = new Agent({ advertiseAddr, dataPathAddr, vxlanPort, stateDir, netnsPrefix: o.netnsPrefix, offload }, engine, log);
  await agent.restore();
  const cluster = new Cluster({
    id: agent.nodeId, name: o.nodeName, listenAddr, listenPort, advertiseAddr,
    join: o.join, secretFile: o.secretFile, stateDir, profile,
    meta: { vtep: dataPathAddr, vxlanPort, version: o.version },
  }, log);
  await cluster.start();
  const alloc = new ClusterAllocator(cluster.ipam);
  const repl = new Replication(agent, cluster, engine, alloc, log);
  agent.attachCluster(cluster, alloc, repl);
  repl.start();
  const mesh = startMesh(agent, cluster, log, o.udpIdleMs);
  const server = await serveApi(path.resolve(socket), agent, cluster, log);
  log.info('agent started', {
    nodeId: agent.nodeId, advertiseAddr, dataPathAddr, vxlanPort, socket, stateDir, listen,
    join: o.join, networks: agent.state.networks.length, offload,
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
    void mesh.close();
    cluster.stop().finally(() => engine.close().finally(() => process.exit(0)));
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
    ...nativeTcpDialer,
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
