// `tapmesh agent`: runs in the foreground, logs JSON lines to stderr, serves the API.
import path from 'node:path';
import { ipv4ToNum } from '../native/index.js';
import { WorkerEngine } from '../router/engine.js';
import { Agent } from './agent.js';
import { serveApi } from './api.js';
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
];

export const DEFAULT_SOCKET = '/run/tapmesh/tapmesh.sock';
export const DEFAULT_STATE_DIR = '/var/lib/tapmesh';

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
  const listen = str(p, 'listen-addr');
  const log = jsonLogger('agent');

  const offload = !bool(p, 'no-offload');
  const engine = new WorkerEngine({ bindAddr: 0, vxlanPort, txSockets, srcAddr: ipv4ToNum(dataPathAddr), offload }, (e) => {
    log.error('datapath failed', { error: e.message });
    process.exit(1);
  });
  await engine.start();
  const agent = new Agent({ advertiseAddr, dataPathAddr, vxlanPort, stateDir, netnsPrefix: str(p, 'netns-prefix'), offload }, engine, log);
  await agent.restore();
  const server = await serveApi(path.resolve(socket), agent, log);
  log.info('agent started', {
    nodeId: agent.nodeId, advertiseAddr, dataPathAddr, vxlanPort, socket, stateDir, listen,
    join: multi(p, 'join'), networks: agent.state.networks.length, offload,
  });

  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    log.info('agent stopping', { signal: sig });
    // Sandboxes and container interfaces stay: a restarted agent adopts them.
    server.close();
    engine.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
