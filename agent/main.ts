// `tapmesh agent`: runs in the foreground, logs JSON lines to stderr, serves the API.
import path from 'node:path';
import { ipv4ToNum } from '../native/index.js';
import { WorkerEngine } from '../router/engine.js';
import { Agent } from './agent.js';
import { serveApi } from './api.js';
import { Cluster, GOSSIP_PORT } from './cluster.js';
import { hostname } from 'node:os';
import { jsonLogger } from './log.js';
import { UsageError, bool, multi, parseArgs, port, str, type FlagSpec } from '../cli/args.js';

export const AGENT_FLAGS: FlagSpec[] = [
  { name: 'advertise-addr', kind: 'string' },
  { name: 'data-path-addr', kind: 'string' },
  { name: 'listen-addr', kind: 'string' },
  { name: 'join', kind: 'multi' },
  { name: 'vxlan-port', kind: 'string' },
  { name: 'state-dir', kind: 'string' },
  { name: 'socket', kind: 'string' },
  { name: 'netns-prefix', kind: 'string' },
  { name: 'tx-sockets', kind: 'string' },
  { name: 'no-offload', kind: 'bool' },
  { name: 'secret-file', kind: 'string' },
  { name: 'node-name', kind: 'string' },
  { name: 'gossip-profile', kind: 'string' },
  { name: 'busy-poll', kind: 'string' },
];

export const DEFAULT_SOCKET = '/run/tapmesh/tapmesh.sock';
export const DEFAULT_STATE_DIR = '/var/lib/tapmesh';
export const VERSION = '0.1.0';
/** Long enough to catch the reply of a request/response exchange without sleeping. */
export const DEFAULT_BUSY_POLL_US = 2500;

function addr(v: string | undefined, flag: string): string | undefined {
  if (v === undefined) return undefined;
  try {
    ipv4ToNum(v);
  } catch {
    throw new UsageError(`invalid ${flag} "${v}": expected an IPv4 address`);
  }
  return v;
}

export async function runAgent(argv: string[], socketFromGlobal: string | undefined): Promise<void> {
  const p = parseArgs(argv, AGENT_FLAGS, 'agent');
  if (p.positional.length > 0) throw new UsageError(`tapmesh agent takes no arguments (got "${p.positional[0]}")`);
  const advertiseAddr = addr(str(p, 'advertise-addr'), '--advertise-addr');
  if (!advertiseAddr) throw new UsageError('--advertise-addr is required');
  const dataPathAddr = addr(str(p, 'data-path-addr'), '--data-path-addr') ?? advertiseAddr;
  const vxlanPort = port(str(p, 'vxlan-port') ?? '4789', '--vxlan-port');
  const txSockets = Number(str(p, 'tx-sockets') ?? '4');
  if (!Number.isInteger(txSockets) || txSockets < 1 || txSockets > 64) throw new UsageError('--tx-sockets must be 1-64');
  const socket = str(p, 'socket') ?? socketFromGlobal ?? process.env.TAPMESH_SOCKET ?? DEFAULT_SOCKET;
  const stateDir = str(p, 'state-dir') ?? DEFAULT_STATE_DIR;
  const listen = str(p, 'listen-addr') ?? `0.0.0.0:${GOSSIP_PORT}`;
  const [listenAddr, listenPortText] = listen.includes(':') ? listen.split(':') : [listen, String(GOSSIP_PORT)];
  addr(listenAddr, '--listen-addr');
  const listenPort = port(listenPortText, '--listen-addr');
  const profile = str(p, 'gossip-profile') ?? 'lan';
  if (profile !== 'lan' && profile !== 'fast') throw new UsageError(`invalid --gossip-profile "${profile}" (lan or fast)`);
  const log = jsonLogger('agent');

  const offload = !bool(p, 'no-offload');
  const busyPollUs = Number(str(p, 'busy-poll') ?? String(DEFAULT_BUSY_POLL_US));
  if (!Number.isInteger(busyPollUs) || busyPollUs < 0 || busyPollUs > 1_000_000) throw new UsageError('--busy-poll takes microseconds, 0-1000000');
  const engine = new WorkerEngine({ bindAddr: 0, vxlanPort, txSockets, srcAddr: ipv4ToNum(dataPathAddr), offload, busyPollUs }, (e) => {
    log.error('datapath failed', { error: e.message });
    process.exit(1);
  });
  await engine.start();
  const agent = new Agent({ advertiseAddr, dataPathAddr, vxlanPort, stateDir, netnsPrefix: str(p, 'netns-prefix'), offload }, engine, log);
  await agent.restore();
  const cluster = new Cluster({
    id: agent.nodeId, name: str(p, 'node-name') ?? hostname(), listenAddr, listenPort, advertiseAddr,
    join: multi(p, 'join'), secretFile: str(p, 'secret-file'), stateDir, profile,
    meta: { vtep: dataPathAddr, vxlanPort, version: VERSION },
  }, log);
  await cluster.start();
  agent.attachCluster(cluster);
  const server = await serveApi(path.resolve(socket), agent, cluster, log);
  log.info('agent started', {
    nodeId: agent.nodeId, advertiseAddr, dataPathAddr, vxlanPort, socket, stateDir, listen,
    join: multi(p, 'join'), networks: agent.state.networks.length, offload,
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
    cluster.stop().finally(() => engine.close().finally(() => process.exit(0)));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
