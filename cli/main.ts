// `tapmesh`: the command line. `agent` runs the daemon; every other command is a client of the
// agent's API on its unix socket (--socket PATH or TAPMESH_SOCKET).
import { DEFAULT_SOCKET, runAgent } from '../agent/main.js';
import { UsageError, bool, keyValues, multi, parseArgs, str, type FlagSpec } from './args.js';
import { DaemonError, NotRunningError, request } from './client.js';
import { humanBytes, jsonLines, table } from './format.js';
import { newSecretFileText } from '../gossip/index.js';

const USAGE = `Usage: tapmesh [--socket PATH] COMMAND

A userspace overlay network router for container hosts.

Commands:
  agent                 Run the agent (daemon) in the foreground
  network create        Create an overlay network
  network ls            List networks
  network inspect       Show networks in detail (JSON)
  network rm            Remove networks
  network connect       Connect a container (network namespace) to a network
  network disconnect    Disconnect a container from a network
  peer add | rm         Static VXLAN peers (kernel VXLAN hosts, hardware VTEPs)
  node ls | inspect     Hosts of the cluster (gossip membership)
  join-token            Print what another host needs to join this cluster
  key ls|new|add|use|rm Cluster key rotation (each step on every host before the next)
  stats                 Packet, byte and drop counters
  version               Show the version

Global options:
  --socket PATH         Agent API socket (default $TAPMESH_SOCKET or ${DEFAULT_SOCKET})
`;

const HELP: Record<string, string> = {
  agent: `Usage: tapmesh agent --advertise-addr ADDR [--data-path-addr ADDR] [--listen-addr ADDR[:PORT]]
                     [--join ADDR[:PORT]]... [--vxlan-port N] [--state-dir DIR] [--socket PATH]
                     [--netns-prefix PREFIX] [--tx-sockets N] [--no-offload]
                     [--secret-file FILE] [--node-name NAME] [--gossip-profile lan|fast]
                     [--busy-poll USEC]
`,
  'network create': `Usage: tapmesh network create [-d overlay] [--subnet CIDR] [--gateway IP] [--ip-range CIDR]
                              [--opt KEY=VALUE]... [--label KEY=VALUE]... [--attachable] NAME
Options: com.docker.network.driver.overlay.vxlanid_list=VNI, com.docker.network.mtu=MTU (container MTU),
         com.docker.network.driver.mtu=MTU (underlay MTU; 50 bytes of VXLAN are subtracted)
`,
  'network ls': 'Usage: tapmesh network ls [-q] [--filter KEY=VALUE]... [--format json]\nFilters: name, id, driver, scope\n',
  'network inspect': 'Usage: tapmesh network inspect [-v|--verbose] NETWORK...\n',
  'network rm': 'Usage: tapmesh network rm NETWORK...\n',
  'network connect': 'Usage: tapmesh network connect [--ip IP] [--alias NAME]... NETWORK CONTAINER\nCONTAINER: a netns name under /run/netns, a PID, or a namespace path\n',
  'network disconnect': 'Usage: tapmesh network disconnect NETWORK CONTAINER\n',
  'peer add': 'Usage: tapmesh peer add NETWORK --vtep ADDR [--mac MAC] [--ip IP]\n(--ip alone derives the MAC 02:42:<ip bytes>, as tapmesh and Docker do)\n',
  'peer rm': 'Usage: tapmesh peer rm NETWORK --vtep ADDR [--mac MAC | --ip IP]\n',
  stats: 'Usage: tapmesh stats [NETWORK] [--format json]\n',
  'node ls': 'Usage: tapmesh node ls [-q] [--format json]\n',
  'node inspect': 'Usage: tapmesh node inspect NODE...\n',
  'join-token': 'Usage: tapmesh join-token [-q]\n',
  key: 'Usage: tapmesh key ls | key new | key add TOKEN | key use ID|TOKEN | key rm ID|TOKEN\nRotate without a partition: `key add` on every host, then `key use` on every host, then `key rm` of the old key on every host.\n',
};

interface Ctx {
  socket: string;
  out: (s: string) => void;
}

type NetInspect = {
  Name: string; Id: string; Created: string; Driver: string; Scope: string; Labels: Record<string, string>;
};

async function networkCreate(ctx: Ctx, argv: string[]): Promise<void> {
  const p = parseArgs(argv, [
    { name: 'driver', short: 'd', kind: 'string' }, { name: 'subnet', kind: 'string' }, { name: 'gateway', kind: 'string' },
    { name: 'ip-range', kind: 'string' }, { name: 'opt', short: 'o', kind: 'multi' }, { name: 'label', kind: 'multi' },
    { name: 'attachable', kind: 'bool' },
  ], 'network create');
  if (p.positional.length !== 1) throw new UsageError('"tapmesh network create" requires exactly 1 argument: NAME');
  const r = (await request(ctx.socket, 'POST', '/v1/networks', {
    name: p.positional[0], driver: str(p, 'driver'), subnet: str(p, 'subnet'), gateway: str(p, 'gateway'),
    ipRange: str(p, 'ip-range'), options: keyValues(multi(p, 'opt'), '--opt'), labels: keyValues(multi(p, 'label'), '--label'),
    attachable: bool(p, 'attachable'),
  })) as { Id: string };
  ctx.out(`${r.Id}\n`);
}

async function networkLs(ctx: Ctx, argv: string[]): Promise<void> {
  const p = parseArgs(argv, [{ name: 'quiet', short: 'q', kind: 'bool' }, { name: 'filter', short: 'f', kind: 'multi' }, { name: 'format', kind: 'string' }, { name: 'no-trunc', kind: 'bool' }], 'network ls');
  if (p.positional.length > 0) throw new UsageError('"tapmesh network ls" accepts no arguments');
  const format = str(p, 'format');
  if (format !== undefined && format !== 'json' && format !== 'table') throw new UsageError(`unsupported --format "${format}" (use json or table)`);
  const filters = multi(p, 'filter').map((f) => {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new UsageError(`bad format of filter (expected name=value): ${f}`);
    const key = f.slice(0, eq);
    if (!['name', 'id', 'driver', 'scope'].includes(key)) throw new UsageError(`invalid filter '${key}'`);
    return [key, f.slice(eq + 1)] as const;
  });
  let nets = (await request(ctx.socket, 'GET', '/v1/networks')) as NetInspect[];
  nets = nets.filter((n) => filters.every(([k, v]) =>
    k === 'name' ? n.Name.includes(v) : k === 'id' ? n.Id.startsWith(v) : k === 'driver' ? n.Driver === v : n.Scope === v));
  const id = (n: NetInspect) => (bool(p, 'no-trunc') ? n.Id : n.Id.slice(0, 12));
  if (bool(p, 'quiet')) return ctx.out(nets.map((n) => `${id(n)}\n`).join(''));
  if (format === 'json') {
    return ctx.out(jsonLines(nets.map((n) => ({
      CreatedAt: n.Created, Driver: n.Driver, ID: id(n), IPv6: 'false', Internal: 'false',
      Labels: Object.entries(n.Labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','), Name: n.Name, Scope: n.Scope,
    }))));
  }
  ctx.out(table(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], nets.map((n) => [id(n), n.Name, n.Driver, n.Scope])));
}

async function networkInspect(ctx: Ctx, argv: string[]): Promise<void> {
  const p = parseArgs(argv, [{ name: 'format', short: 'f', kind: 'string' }, { name: 'verbose', short: 'v', kind: 'bool' }], 'network inspect');
  if (p.positional.length === 0) throw new UsageError('"tapmesh network inspect" requires at least 1 argument: NETWORK');
  const found: unknown[] = [];
  const missing: string[] = [];
  const q = bool(p, 'verbose') ? '?verbose=1' : '';
  for (const ref of p.positional) {
    try {
      found.push(await request(ctx.socket, 'GET', `/v1/networks/${encodeURIComponent(ref)}${q}`));
    } catch (e) {
      if (e instanceof DaemonError && e.status === 404) missing.push(ref);
      else throw e;
    }
  }
  ctx.out(`${JSON.stringify(found, null, 4)}\n`);
  if (missing.length) throw new DaemonError(`No such network: ${missing.join(', ')}`, 404);
}

async function networkRm(ctx: Ctx, argv: string[]): Promise<void> {
  const p = parseArgs(argv, [], 'network rm');
  if (p.positional.length === 0) throw new UsageError('"tapmesh network rm" requires at least 1 argument: NETWORK');
  const errors: string[] = [];
  for (const ref of p.positional) {
    try {
      await request(ctx.socket, 'DELETE', `/v1/networks/${encodeURIComponent(ref)}`);
      ctx.out(`${ref}\n`);
    } catch (e) {
      if (e instanceof DaemonError) errors.push(e.message);
      else throw e;
    }
  }
  if (errors.length) throw new DaemonError(errors.join('; '), 400);
}

async function networkConnect(ctx: Ctx, argv: string[]): Promise<void> {
  const p = parseArgs(argv, [{ name: 'ip', kind: 'string' }, { name: 'alias', kind: 'multi' }], 'network connect');
  if (p.positional.length !== 2) throw new UsageError('"tapmesh network connect" requires exactly 2 arguments: NETWORK CONTAINER');
  const [net, container] = p.positional;
  await request(ctx.socket, 'POST', `/v1/networks/${encodeURIComponent(net)}/connect`, { container, ip: str(p, 'ip'), aliases: multi(p, 'alias') });
}

async function networkDisconnect(ctx: Ctx, argv: string[]): Promise<void> {
  const p = parseArgs(argv, [], 'network disconnect');
  if (p.positional.length !== 2) throw new UsageError('"tapmesh network disconnect" requires exactly 2 arguments: NETWORK CONTAINER');
  const [net, container] = p.positional;
  await request(ctx.socket, 'POST', `/v1/networks/${encodeURIComponent(net)}/disconnect`, { container });
}

const PEER_FLAGS: FlagSpec[] = [{ name: 'vtep', kind: 'string' }, { name: 'mac', kind: 'string' }, { name: 'ip', kind: 'string' }];

async function peer(ctx: Ctx, sub: string, argv: string[]): Promise<void> {
  const p = parseArgs(argv, PEER_FLAGS, `peer ${sub}`);
  if (p.positional.length !== 1) throw new UsageError(`"tapmesh peer ${sub}" requires exactly 1 argument: NETWORK`);
  const vtep = str(p, 'vtep');
  if (!vtep) throw new UsageError('--vtep is required');
  const net = encodeURIComponent(p.positional[0]);
  if (sub === 'add') {
    await request(ctx.socket, 'POST', `/v1/networks/${net}/peers`, { vtep, mac: str(p, 'mac'), ip: str(p, 'ip') });
  } else {
    const q = new URLSearchParams({ vtep });
    const mac = str(p, 'mac');
    const ip = str(p, 'ip');
    if (mac) q.set('mac', mac);
    if (ip) q.set('ip', ip);
    await request(ctx.socket, 'DELETE', `/v1/networks/${net}/peers?${q.toString()}`);
  }
}

type NodeReply = { ID: string; Hostname: string; Status: string; Addr: string; Self: boolean };

async function nodeCmd(ctx: Ctx, sub: string | undefined, argv: string[]): Promise<void> {
  if (sub === 'ls' || sub === 'list') {
    const p = parseArgs(argv, [{ name: 'quiet', short: 'q', kind: 'bool' }, { name: 'format', kind: 'string' }], 'node ls');
    if (p.positional.length > 0) throw new UsageError('"tapmesh node ls" accepts no arguments');
    const format = str(p, 'format');
    if (format !== undefined && format !== 'json' && format !== 'table') throw new UsageError(`unsupported --format "${format}" (use json or table)`);
    const nodes = ((await request(ctx.socket, 'GET', '/v1/nodes')) as NodeReply[]).sort((a, b) => a.Hostname.localeCompare(b.Hostname));
    if (bool(p, 'quiet')) return ctx.out(nodes.map((n) => `${n.ID}\n`).join(''));
    if (format === 'json') return ctx.out(jsonLines(nodes.map((n) => ({ ID: n.ID, Hostname: n.Hostname, Status: n.Status, Addr: n.Addr, Self: n.Self }))));
    return ctx.out(table(['ID', 'HOSTNAME', 'STATUS', 'ADDR'], nodes.map((n) => [`${n.ID}${n.Self ? ' *' : ''}`, n.Hostname, n.Status, n.Addr])));
  }
  if (sub === 'inspect') {
    const p = parseArgs(argv, [], 'node inspect');
    if (p.positional.length === 0) throw new UsageError('"tapmesh node inspect" requires at least 1 argument: NODE');
    const out: unknown[] = [];
    for (const ref of p.positional) out.push(await request(ctx.socket, 'GET', `/v1/nodes/${encodeURIComponent(ref)}`));
    return ctx.out(`${JSON.stringify(out, null, 4)}\n`);
  }
  throw new UsageError('"tapmesh node" requires a subcommand: ls, inspect');
}

async function keyCmd(ctx: Ctx, sub: string | undefined, argv: string[]): Promise<void> {
  if (sub === 'new') {
    ctx.out(newSecretFileText());
    return;
  }
  if (sub === 'ls') {
    const r = (await request(ctx.socket, 'GET', '/v1/keys')) as { Primary: string; Keys: string[] };
    return ctx.out(table(['KEY ID', 'PRIMARY'], r.Keys.map((k) => [k, k === r.Primary ? '*' : ''])));
  }
  if (sub === 'add' || sub === 'use' || sub === 'rm') {
    if (argv.length !== 1) throw new UsageError(`"tapmesh key ${sub}" requires exactly 1 argument`);
    await request(ctx.socket, 'POST', `/v1/keys/${sub}`, { key: argv[0] });
    return;
  }
  throw new UsageError('"tapmesh key" requires a subcommand: ls, new, add, use, rm');
}

async function joinToken(ctx: Ctx, argv: string[]): Promise<void> {
  const p = parseArgs(argv, [{ name: 'quiet', short: 'q', kind: 'bool' }], 'join-token');
  if (p.positional.length > 0) throw new UsageError('"tapmesh join-token" accepts no arguments');
  const r = (await request(ctx.socket, 'GET', '/v1/join-token')) as { Token: string; Addr: string };
  if (bool(p, 'quiet')) return ctx.out(`${r.Token}\n`);
  ctx.out(`To add a host to this cluster, put this token in a file (mode 0600) on it and run:\n\n` +
    `    tapmesh agent --advertise-addr <its address> --join ${r.Addr} --secret-file <that file>\n\n${r.Token}\n`);
}

type StatsReply = {
  gossip: { members: Record<string, number>; dropped: Record<string, number>; suspectEvents: number; health: number };
  drops: Record<string, number>;
  networks: { Name: string; Id: string; VNI: number; counters: Record<string, number>; drops: Record<string, number> }[];
};

async function stats(ctx: Ctx, argv: string[]): Promise<void> {
  const p = parseArgs(argv, [{ name: 'format', kind: 'string' }], 'stats');
  if (p.positional.length > 1) throw new UsageError('"tapmesh stats" accepts at most 1 argument: NETWORK');
  const format = str(p, 'format');
  if (format !== undefined && format !== 'json' && format !== 'table') throw new UsageError(`unsupported --format "${format}" (use json or table)`);
  const s = (await request(ctx.socket, 'GET', '/v1/stats')) as StatsReply;
  let nets = s.networks;
  const ref = p.positional[0];
  if (ref !== undefined) {
    nets = nets.filter((n) => n.Name === ref || n.Id.startsWith(ref));
    if (nets.length === 0) throw new DaemonError(`network ${ref} not found`, 404);
  }
  const sum = (d: Record<string, number>) => Object.values(d).reduce((a, b) => a + b, 0);
  if (format === 'json') {
    const lines: unknown[] = nets.map((n) => ({ Network: n.Name, ID: n.Id, VNI: n.VNI, ...n.counters, Drops: n.drops }));
    if (ref === undefined) lines.push({ Network: '', ID: '', VNI: 0, Drops: s.drops, Gossip: s.gossip });
    return ctx.out(jsonLines(lines));
  }
  ctx.out(table(['NETWORK', 'VNI', 'TX PKTS', 'TX BYTES', 'RX PKTS', 'RX BYTES', 'ARP REPLIED', 'DROPS'], nets.map((n) => [
    n.Name, String(n.VNI), String(n.counters.vxlanTxPackets ?? 0), humanBytes(n.counters.vxlanTxBytes ?? 0),
    String(n.counters.vxlanRxPackets ?? 0), humanBytes(n.counters.vxlanRxBytes ?? 0), String(n.counters.arpReplied ?? 0), String(sum(n.drops)),
  ])));
  const reasons: string[][] = [];
  for (const n of nets) for (const [k, v] of Object.entries(n.drops)) if (v > 0) reasons.push([n.Name, k, String(v)]);
  if (ref === undefined) for (const [k, v] of Object.entries(s.drops)) if (v > 0) reasons.push(['(before network lookup)', k, String(v)]);
  if (reasons.length) ctx.out(`\n${table(['NETWORK', 'DROP REASON', 'COUNT'], reasons)}`);
  if (ref === undefined) {
    const g = s.gossip;
    const dropped = Object.entries(g.dropped).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    ctx.out(`\ngossip: ${g.members.alive ?? 0} ready, ${g.members.suspect ?? 0} suspect, ${g.members.dead ?? 0} down; health ${g.health}; suspect events ${g.suspectEvents}; dropped: ${dropped}\n`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const out = (s: string) => void process.stdout.write(s);
  let socket: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--socket' || argv[i] === '-H') {
      if (i + 1 >= argv.length) throw new UsageError('flag needs an argument: --socket');
      socket = argv[++i];
    } else if (argv[i].startsWith('--socket=')) socket = argv[i].slice('--socket='.length);
    else rest.push(argv[i]);
  }
  const [cmd, sub, ...args] = rest;
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  if (!cmd || cmd === 'help' || (wantsHelp && !HELP[cmd] && !HELP[`${cmd} ${sub}`])) {
    out(USAGE);
    return cmd || wantsHelp || cmd === 'help' ? 0 : 1;
  }
  if (wantsHelp) {
    out(HELP[`${cmd} ${sub}`] ?? HELP[cmd]);
    return 0;
  }
  if (cmd === 'version') {
    out('tapmesh 0.1.0\n');
    return 0;
  }
  if (cmd === 'agent') {
    await runAgent(sub === undefined ? [] : [sub, ...args], socket);
    return -1; // keeps running
  }
  const ctx: Ctx = { socket: socket ?? process.env.TAPMESH_SOCKET ?? DEFAULT_SOCKET, out };
  if (cmd === 'network') {
    const handlers: Record<string, (c: Ctx, a: string[]) => Promise<void>> = {
      create: networkCreate, ls: networkLs, list: networkLs, inspect: networkInspect, rm: networkRm, remove: networkRm,
      connect: networkConnect, disconnect: networkDisconnect,
    };
    const h = sub ? handlers[sub] : undefined;
    if (!h) throw new UsageError(sub ? `unknown command "network ${sub}" (see 'tapmesh --help')` : '"tapmesh network" requires a subcommand: create, ls, inspect, rm, connect, disconnect');
    await h(ctx, args);
    return 0;
  }
  if (cmd === 'peer') {
    if (sub !== 'add' && sub !== 'rm') throw new UsageError('"tapmesh peer" requires a subcommand: add, rm');
    await peer(ctx, sub, args);
    return 0;
  }
  if (cmd === 'node') {
    await nodeCmd(ctx, sub, args);
    return 0;
  }
  if (cmd === 'key') {
    await keyCmd(ctx, sub, args);
    return 0;
  }
  if (cmd === 'join-token') {
    await joinToken(ctx, sub === undefined ? [] : [sub, ...args]);
    return 0;
  }
  if (cmd === 'stats') {
    await stats(ctx, sub === undefined ? [] : [sub, ...args]);
    return 0;
  }
  throw new UsageError(`unknown command "${cmd}" (see 'tapmesh --help')`);
}

export function runCli(argv: string[]): void {
  main(argv).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (e: Error) => {
      if (e instanceof UsageError) process.stderr.write(`tapmesh: ${e.message}\n`);
      else if (e instanceof DaemonError) process.stderr.write(`Error response from agent: ${e.message}\n`);
      else if (e instanceof NotRunningError) process.stderr.write(`${e.message}\n`);
      else process.stderr.write(`tapmesh: ${e.message.split('\n')[0]}\n`);
      // exit() rather than exitCode: a half-started agent may hold a worker thread open.
      process.exit(e instanceof UsageError ? 2 : 1);
    },
  );
}
