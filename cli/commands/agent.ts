// `tapmesh agent`: its flags (meaning, unit, default), their checks, and the typed options
// handed to runAgent (agent/main.ts), which knows nothing of the command line.
import { hostname } from 'node:os';
import { runAgent, type AgentOptions } from '../../agent/main.js';
import { GOSSIP_PORT } from '../../agent/cluster.js';
import { PROFILE_NAMES } from '../../gossip/config.js';
import type { Ctx } from '../client.js';
import { UsageError, command, type Values } from '../table.js';
import { ipv4ToString } from '../../router/wire/addr.js';
import { VERSION } from '../version.js';
import { duration, integer, ipv4, oneOf, port } from '../values.js';
import { hostUpstreams, parseUpstream, type Upstream } from '../../dns/config.js';
import { DEFAULT_GWBRIDGE_SUBNET } from '../../agent/gwbridge.js';
import { parseCidr } from '../../agent/ipam.js';

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
  'dns-upstream': { type: 'string', multiple: true, value: 'ADDR[:PORT]', help: "Upstream DNS resolver for names the embedded DNS does not know, up to 3 (default: the host's /etc/resolv.conf)" },
  'gwbridge-subnet': { type: 'string', value: 'CIDR', default: DEFAULT_GWBRIDGE_SUBNET, help: 'IPv4 subnet of this host\'s gateway bridge (egress NAT); the host side holds its .1' },
  'rekey-interval': { type: 'string', value: 'DURATION', default: '120s', help: 'Encrypted networks: replace every SA after this long (1s-1h; e.g. 5s for tests)' },
  keylog: { type: 'string', value: 'FILE', help: "Encrypted networks: append every SA's keys to FILE (mode 0600) in Wireshark's esp_sa format, for debugging" },
  'busy-poll': { type: 'string', value: 'USEC', default: String(DEFAULT_BUSY_POLL_US), help: 'Microseconds (0-1000000) the datapath thread stays awake after traffic before sleeping' },
  'metrics-addr': { type: 'string', value: 'ADDR:PORT', help: 'Serve Prometheus metrics (/metrics) and a health check (/healthz) over HTTP here (default: off)' },
  'udp-idle': { type: 'string', value: 'SECONDS', default: '120', help: 'Idle expiry of UDP flows through service VIPs and the routing mesh (1-86400 s; TCP has no idle timer)' },
  'mac-learning-max': { type: 'string', value: 'N', default: '4096', help: 'Per network: MACs learned from static VTEPs (kernel VXLAN peers) kept at most (0-1000000; 0 = learn none); a full table learns no more until entries age out' },
  'mac-ageing': { type: 'string', value: 'SECONDS', default: '300', help: 'A learned MAC is forgotten after this long without a frame from it (0-86400 s; 0 = never)' },
} as const;

/** --metrics-addr ADDR:PORT → its parts; both are required (no default port to guess at). */
function metricsAddr(v: string | undefined): { addr: string; port: number } | undefined {
  if (v === undefined) return undefined;
  const i = v.lastIndexOf(':');
  if (i < 0) throw new UsageError(`invalid --metrics-addr "${v}": expected ADDR:PORT`);
  return { addr: ipv4(v.slice(0, i), '--metrics-addr'), port: port(v.slice(i + 1), '--metrics-addr') };
}

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
    learning: {
      maxLearned: integer(o['mac-learning-max'], 0, 1_000_000, '--mac-learning-max takes a count, 0-1000000'),
      ageingMs: integer(o['mac-ageing'], 0, 86_400, '--mac-ageing takes seconds, 0-86400') * 1000,
    },
    version: VERSION,
    metrics: metricsAddr(o['metrics-addr']),
    rekeyIntervalMs: rekeyInterval(o['rekey-interval']),
    keylog: o.keylog,
    dnsUpstreams: dnsUpstreams(o['dns-upstream']),
    gwbridgeSubnet: gwbridgeSubnet(o['gwbridge-subnet']),
  };
}

function dnsUpstreams(given: string[]): Upstream[] {
  if (given.length > 3) throw new UsageError(`--dns-upstream takes at most 3 resolvers (got ${given.length})`);
  if (given.length === 0) return hostUpstreams();
  return given.map((s) => {
    try {
      return parseUpstream(s);
    } catch (e) {
      throw new UsageError(`--dns-upstream: ${(e as Error).message}`);
    }
  });
}

function gwbridgeSubnet(s: string): string {
  let c;
  try {
    c = parseCidr(s);
  } catch (e) {
    throw new UsageError(`--gwbridge-subnet: ${(e as Error).message}`);
  }
  if (c.prefixLen > 30) throw new UsageError(`--gwbridge-subnet ${s}: /30 or larger needed (a gateway and containers)`);
  return `${ipv4ToString(c.base)}/${c.prefixLen}`;
}

function rekeyInterval(v: string): number {
  const ms = duration(v, '--rekey-interval');
  if (ms < 1000 || ms > 3_600_000) throw new UsageError(`invalid --rekey-interval "${v}": must be between 1s and 1h`);
  return ms;
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
