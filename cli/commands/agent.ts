// `tapmesh agent`: its flags (meaning, unit, default), their checks, and the typed options
// handed to runAgent (agent/main.ts), which knows nothing of the command line.
import { hostname } from 'node:os';
import { runAgent, type AgentOptions } from '../../agent/main.js';
import { GOSSIP_PORT } from '../../agent/cluster.js';
import { PROFILE_NAMES } from '../../gossip/config.js';
import type { Ctx } from '../client.js';
import { command, type Values } from '../table.js';
import { VERSION } from '../version.js';
import { integer, ipv4, oneOf, port } from '../values.js';

/** The --gossip-profile values: the one list to extend when gossip/config.ts gains a profile. */
export const GOSSIP_PROFILES = PROFILE_NAMES;

export const DEFAULT_STATE_DIR = '/var/lib/tapmesh';
/** Long enough to catch the reply of a request/response exchange without sleeping. */
export const DEFAULT_BUSY_POLL_US = 2500;

export const AGENT_OPTIONS = {
  'advertise-addr': { type: 'string', required: true, value: 'ADDR', help: 'IPv4 address other hosts reach this one at (gossip; also the VTEP unless --data-path-addr)' },
  'data-path-addr': { type: 'string', value: 'ADDR', help: 'IPv4 address VXLAN leaves from and peers check (default: the advertise address)' },
  'listen-addr': { type: 'string', value: 'ADDR[:PORT]', default: `0.0.0.0:${GOSSIP_PORT}`, help: `Gossip UDP+TCP bind address (port ${GOSSIP_PORT} if omitted)` },
  join: { type: 'string', multiple: true, value: 'ADDR[:PORT]', help: `A member to join at start (port ${GOSSIP_PORT} if omitted)` },
  'vxlan-port': { type: 'string', value: 'N', default: '4789', help: 'UDP port of VXLAN, sent to and received on' },
  'state-dir': { type: 'string', value: 'DIR', default: DEFAULT_STATE_DIR, help: 'Networks, endpoints, cluster keyring and gossip identity' },
  'netns-prefix': { type: 'string', value: 'PREFIX', help: 'Name prefix of the sandbox namespaces (default: derived from the node ID)' },
  'tx-sockets': { type: 'string', value: 'N', default: '4', help: "VXLAN send sockets, 1-64; a flow's hash picks one, so its UDP source port carries the flow entropy" },
  'no-offload': { type: 'boolean', help: 'Plain TAP and UDP, one frame per datagram (offloads are on by default)' },
  'secret-file': { type: 'string', value: 'FILE', help: 'Join token file (mode 0600) that seeds the cluster keyring on first start' },
  'node-name': { type: 'string', value: 'NAME', help: "Hostname shown in 'node ls' (default: this machine's host name)" },
  'gossip-profile': { type: 'string', value: GOSSIP_PROFILES.join('|'), default: 'lan', help: 'Gossip timings: lan (memberlist LAN), fast (5x faster, for tests), wan (memberlist WAN)' },
  'busy-poll': { type: 'string', value: 'USEC', default: String(DEFAULT_BUSY_POLL_US), help: 'Microseconds (0-1000000) the datapath thread stays awake after traffic before sleeping' },
  'udp-idle': { type: 'string', value: 'SECONDS', default: '120', help: 'Idle expiry of UDP flows through service VIPs and the routing mesh (1-86400 s; TCP has no idle timer)' },
} as const;

/** Flags → the agent's typed options; every bad value is a one-line usage error. */
export function agentOptions(o: Values<typeof AGENT_OPTIONS>, socket: string): AgentOptions {
  const advertiseAddr = ipv4(o['advertise-addr'], '--advertise-addr');
  const [listenAddr, listenPortText] = o['listen-addr'].includes(':') ? o['listen-addr'].split(':') : [o['listen-addr'], String(GOSSIP_PORT)];
  return {
    advertiseAddr,
    dataPathAddr: o['data-path-addr'] === undefined ? advertiseAddr : ipv4(o['data-path-addr'], '--data-path-addr'),
    listenAddr: ipv4(listenAddr, '--listen-addr'),
    listenPort: port(listenPortText, '--listen-addr'),
    join: o.join,
    vxlanPort: port(o['vxlan-port'], '--vxlan-port'),
    stateDir: o['state-dir'],
    socket,
    netnsPrefix: o['netns-prefix'],
    txSockets: integer(o['tx-sockets'], 1, 64, '--tx-sockets must be 1-64'),
    offload: !o['no-offload'],
    secretFile: o['secret-file'],
    nodeName: o['node-name'] ?? hostname(),
    // Until every listed name is a gossip/config.ts profile, the gossip layer refuses the others at start.
    profile: oneOf(o['gossip-profile'], GOSSIP_PROFILES, '--gossip-profile'),
    busyPollUs: integer(o['busy-poll'], 0, 1_000_000, '--busy-poll takes microseconds, 0-1000000'),
    udpIdleMs: integer(o['udp-idle'], 1, 86_400, '--udp-idle takes seconds, 1-86400') * 1000,
    version: VERSION,
  };
}

const agent = command({
  name: 'agent', summary: 'Run the agent (daemon) in the foreground',
  options: AGENT_OPTIONS,
  notes: 'The agent serves its API on the --socket path (a unix socket, mode 0600) and logs JSON lines to stderr.',
  async run(ctx: Ctx, o) {
    await runAgent(agentOptions(o, ctx.socket));
    return -1; // keeps running
  },
});

export const agentCommands = [agent];
