// The tapmesh command line without an agent: help, version, usage errors, and the agent's flags
// turned into typed options.
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { agentOptions, AGENT_OPTIONS, GOSSIP_PROFILES } from './commands/agent.js';
import { main } from './main.js';
import { UsageError, parse } from './table.js';

let stdout = '';
beforeEach(() => {
  stdout = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    stdout += String(s);
    return true;
  });
});
afterEach(() => vi.restoreAllMocks());

describe('tapmesh', () => {
  it('prints the version from package.json', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(await main(['version'])).toBe(0);
    expect(stdout).toBe(`tapmesh ${version}\n`);
  });

  it('prints help: the program, a group, a command (--help anywhere, or help CMD)', async () => {
    expect(await main(['--help'])).toBe(0);
    expect(stdout).toMatch(/^Usage: tapmesh \[OPTIONS\] COMMAND/);
    expect(stdout).toMatch(/^ {2}network create +Create an overlay network$/m);
    stdout = '';
    expect(await main(['network', '--help'])).toBe(0);
    expect(stdout).toMatch(/^Usage: tapmesh network COMMAND/);
    stdout = '';
    expect(await main(['network', 'create', '--bogus', '-h'])).toBe(0);
    expect(stdout).toMatch(/^Usage: tapmesh network create \[OPTIONS\] NAME/);
    const viaFlag = stdout;
    stdout = '';
    expect(await main(['help', 'network', 'create'])).toBe(0);
    expect(stdout).toBe(viaFlag);
  });

  it('prints the usage and fails without a command', async () => {
    expect(await main([])).toBe(1);
    expect(stdout).toMatch(/^Usage: tapmesh/);
  });

  it('refuses unknown commands, missing subcommands and bad flags before contacting an agent', async () => {
    const socket = ['--socket', '/nonexistent/tapmesh-test.sock'];
    await expect(main([...socket, 'nosuch'])).rejects.toThrow(UsageError);
    await expect(main([...socket, 'network'])).rejects.toThrow('"tapmesh network" requires a subcommand: create, ls, inspect, rm, connect, disconnect');
    await expect(main([...socket, 'network', 'nosuch'])).rejects.toThrow('unknown command "network nosuch"');
    await expect(main([...socket, 'network', 'create', '--bogus', 'x'])).rejects.toThrow("unknown flag: --bogus (see 'tapmesh network create --help')");
    await expect(main(['network', 'ls', '--format', 'yaml', ...socket])).rejects.toThrow('unsupported --format "yaml" (use json or table)');
    await expect(main(['--socket'])).rejects.toThrow('flag needs an argument: --socket');
    await expect(main([...socket, 'help', 'nosuch'])).rejects.toThrow(UsageError);
  });
});

describe('tapmesh agent flags', () => {
  const parsed = (argv: string[]) => agentOptions(parse(argv, AGENT_OPTIONS, 'tapmesh agent').values, '/run/x.sock');

  it('keeps the defaults', () => {
    expect(parsed(['--advertise-addr', '192.0.2.1'])).toMatchObject({
      advertiseAddr: '192.0.2.1', dataPathAddr: '192.0.2.1', listenAddr: '0.0.0.0', listenPort: 7946, join: [], vxlanPort: 4789,
      stateDir: '/var/lib/tapmesh', socket: '/run/x.sock', txSockets: 4, offload: true, profile: 'lan', busyPollUs: 2500,
      netnsPrefix: undefined, secretFile: undefined, metrics: undefined, learning: { maxLearned: 4096, ageingMs: 300_000 },
    });
  });

  it('reads every flag', () => {
    const o = parsed(['--advertise-addr', '192.0.2.1', '--data-path-addr', '198.51.100.1', '--listen-addr', '192.0.2.1:8000',
      '--join', '192.0.2.2', '--join', '192.0.2.3:7000', '--vxlan-port', '8472', '--state-dir', '/tmp/s', '--netns-prefix', 'p',
      '--tx-sockets', '2', '--no-offload', '--secret-file', '/tmp/k', '--node-name', 'h1', '--gossip-profile', 'fast', '--busy-poll', '0', '--metrics-addr', '127.0.0.1:9464',
      '--mac-learning-max', '100', '--mac-ageing', '30']);
    expect(o).toMatchObject({
      dataPathAddr: '198.51.100.1', listenAddr: '192.0.2.1', listenPort: 8000, join: ['192.0.2.2', '192.0.2.3:7000'], vxlanPort: 8472,
      stateDir: '/tmp/s', netnsPrefix: 'p', txSockets: 2, offload: false, secretFile: '/tmp/k', nodeName: 'h1', profile: 'fast', busyPollUs: 0,
      metrics: { addr: '127.0.0.1', port: 9464 }, learning: { maxLearned: 100, ageingMs: 30_000 },
    });
    const d = parsed(['--advertise-addr', '192.0.2.1', '--dns-upstream', '192.0.2.53', '--dns-upstream', '198.51.100.1:5353', '--gwbridge-subnet', '172.30.0.9/24']);
    expect(d.dnsUpstreams).toEqual([{ host: '192.0.2.53', port: 53 }, { host: '198.51.100.1', port: 5353 }]);
    expect(d.gwbridgeSubnet).toBe('172.30.0.0/24');
    expect(parsed(['--advertise-addr', '192.0.2.1']).gwbridgeSubnet).toBe('172.18.0.0/16');
  });

  it('accepts every listed gossip profile, wan among them, and refuses others', () => {
    expect(GOSSIP_PROFILES).toContain('wan');
    for (const p of GOSSIP_PROFILES) expect(parsed(['--advertise-addr', '192.0.2.1', '--gossip-profile', p]).profile).toBe(p);
    expect(() => parsed(['--advertise-addr', '192.0.2.1', '--gossip-profile', 'mars'])).toThrow(`invalid --gossip-profile "mars" (${GOSSIP_PROFILES.slice(0, -1).join(", ")} or ${GOSSIP_PROFILES.at(-1)})`);
  });

  it('refuses bad values with one-line usage errors', () => {
    const bad: [string[], string][] = [
      [[], '--advertise-addr is required'],
      [['--advertise-addr', '192.0.2'], 'invalid --advertise-addr "192.0.2": expected an IPv4 address'],
      [['--advertise-addr', '192.0.2.1', '--vxlan-port', '70000'], 'invalid --vxlan-port "70000": expected a port 1-65535'],
      [['--advertise-addr', '192.0.2.1', '--tx-sockets', '65'], '--tx-sockets must be 1-64'],
      [['--advertise-addr', '192.0.2.1', '--busy-poll', '-1'], '--busy-poll takes microseconds, 0-1000000'],
      [['--advertise-addr', '192.0.2.1', '--mac-learning-max', 'many'], '--mac-learning-max takes a count, 0-1000000'],
      [['--advertise-addr', '192.0.2.1', '--mac-ageing', '-5'], '--mac-ageing takes seconds, 0-86400'],
      [['--advertise-addr', '192.0.2.1', '--listen-addr', 'x:1'], 'invalid --listen-addr "x": expected an IPv4 address'],
      [['--advertise-addr', '192.0.2.1', '--metrics-addr', '9464'], 'invalid --metrics-addr "9464": expected ADDR:PORT'],
      [['--advertise-addr', '192.0.2.1', '--metrics-addr', 'localhost:9464'], 'invalid --metrics-addr "localhost": expected an IPv4 address'],
      [['--advertise-addr', '192.0.2.1', '--metrics-addr', '127.0.0.1:0'], 'invalid --metrics-addr "0": expected a port 1-65535'],
      [['--advertise-addr', '192.0.2.1', ...['1.1.1.1', '1.0.0.1', '8.8.8.8', '9.9.9.9'].flatMap((u) => ['--dns-upstream', u])], '--dns-upstream takes at most 3 resolvers (got 4)'],
      [['--advertise-addr', '192.0.2.1', '--dns-upstream', 'dns.example'], '--dns-upstream: invalid DNS upstream: dns.example'],
      [['--advertise-addr', '192.0.2.1', '--gwbridge-subnet', '172.18.0.0'], '--gwbridge-subnet: invalid CIDR address: 172.18.0.0'],
      [['--advertise-addr', '192.0.2.1', '--gwbridge-subnet', '172.18.0.0/31'], '--gwbridge-subnet 172.18.0.0/31: /30 or larger needed'],
    ];
    for (const [argv, msg] of bad) expect(() => parsed(argv), argv.join(' ')).toThrow(msg);
  });
});
