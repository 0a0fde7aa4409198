// Test hosts in network namespaces on this machine. Every name carries a per-run random tag
// (tm<6 hex>), every process we start is remembered by PID, and cleanup() removes exactly what
// this lab made: its namespaces by name and its processes by PID. Used by integration tests,
// the demo and the bench.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..').replace(/\/dist$/, '');
export const tapmeshBin = path.join(repoRoot, 'bin/tapmesh');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command; never throws on a non-zero exit (the result carries the code). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string; onSpawn?: (child: ChildProcess) => void } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 60_000, env: opts.env ?? process.env, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    opts.onSpawn?.(child);
  });
}

/** Run and throw with the command's stderr when it fails. */
export async function must(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} → exit ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

export const isRoot = process.getuid?.() === 0;

/**
 * Root-only suites call this first. Outside CI a non-root run skips with a visible reason;
 * under CI=true a skip would hide a failure, so it throws instead.
 */
export function requireRoot(what: string): boolean {
  if (isRoot) return true;
  const reason = `${what}: needs root (network namespaces, veth, TAP); skipped`;
  if (process.env.CI === 'true') throw new Error(`${reason}, and CI=true does not allow skipping`);
  console.warn(`SKIP ${reason}`);
  return false;
}

export interface Host {
  name: string; // e.g. h1
  ns: string; // netns name
  addr: string; // underlay address
  dir: string; // scratch dir (state, socket, logs)
  socket: string;
}

export class Lab {
  readonly tag: string;
  readonly dir: string;
  readonly underlayNs: string;
  readonly hosts: Host[] = [];
  private readonly namespaces: string[] = [];
  private readonly procs = new Set<ChildProcess>();
  private nextPort = 1;
  /** How long startAgent waits for the API (a restart rebuilds its sandboxes first; slow on a loaded machine). */
  agentStartTimeoutMs = 15_000;
  /** Set by cleanup(): from then on nothing new is started or created. */
  private closed = false;

  constructor(readonly underlayPrefix = '192.0.2') {
    this.tag = `tm${randomBytes(3).toString('hex')}`;
    this.dir = path.join('/tmp', this.tag);
    this.underlayNs = `${this.tag}-ul`;
  }

  ns(suffix: string): string {
    return `${this.tag}-${suffix}`;
  }

  async addNamespace(name: string): Promise<string> {
    if (this.closed) throw new Error(`lab ${this.tag} is cleaned up; not adding ${name}`);
    await must('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    await must('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
    return name;
  }

  /** The shared underlay: a bridge in its own namespace that every host plugs into. */
  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    await this.addNamespace(this.underlayNs);
    await must('ip', ['-n', this.underlayNs, 'link', 'add', 'br0', 'type', 'bridge']);
    await must('ip', ['-n', this.underlayNs, 'link', 'set', 'br0', 'up']);
  }

  /** A host namespace with an underlay interface `ul0` (MTU 1500) on the underlay bridge. */
  async addHost(name: string): Promise<Host> {
    const ns = await this.addNamespace(this.ns(name));
    const idx = this.nextPort++;
    const addr = `${this.underlayPrefix}.${idx}`;
    const peer = `p${idx}`;
    await must('ip', ['link', 'add', 'ul0', 'netns', ns, 'type', 'veth', 'peer', 'name', peer, 'netns', this.underlayNs]);
    await must('ip', ['-n', this.underlayNs, 'link', 'set', peer, 'master', 'br0', 'up']);
    await must('ip', ['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'ul0']);
    await must('ip', ['-n', ns, 'link', 'set', 'ul0', 'up']);
    const dir = path.join(this.dir, name);
    mkdirSync(dir, { recursive: true });
    const host: Host = { name, ns, addr, dir, socket: path.join(dir, 'agent.sock') };
    this.hosts.push(host);
    return host;
  }

  /** A bare "container": an empty namespace the agent will plug an eth0 into. */
  async addContainer(host: Host, name: string): Promise<string> {
    return this.addNamespace(this.ns(`${host.name}-${name}`));
  }

  /** Start a long-running process and remember its PID for cleanup. Output goes to a log file. */
  spawn(cmd: string, args: string[], logName: string, env?: NodeJS.ProcessEnv): ChildProcess {
    const log = openSync(path.join(this.dir, logName), 'a');
    const child = spawn(cmd, args, { stdio: ['ignore', log, log], env: env ?? process.env });
    closeSync(log); // the child has its own copy
    this.track(child);
    return child;
  }

  spawnIn(ns: string, cmd: string, args: string[], logName: string): ChildProcess {
    return this.spawn('ip', ['netns', 'exec', ns, cmd, ...args], logName);
  }

  /** Run a command inside a namespace to completion. While it runs, cleanup() stops it too (by PID). */
  exec(ns: string, cmd: string, args: string[], timeoutMs?: number): Promise<RunResult> {
    return run('ip', ['netns', 'exec', ns, cmd, ...args], { timeoutMs, onSpawn: (c) => this.track(c) });
  }

  private track(child: ChildProcess): void {
    if (this.closed) {
      child.kill('SIGKILL'); // started by a loop that has not yet noticed the cleanup
      return;
    }
    this.procs.add(child);
    child.on('exit', () => this.procs.delete(child));
  }

  async mustExec(ns: string, cmd: string, args: string[], timeoutMs?: number): Promise<string> {
    return must('ip', ['netns', 'exec', ns, cmd, ...args], { timeoutMs });
  }

  /** Start `tapmesh agent` inside a host namespace; resolves once its API answers. */
  async startAgent(host: Host, extra: string[] = [], via: 'nsenter' | 'ip-netns-exec' = 'nsenter'): Promise<ChildProcess> {
    const args = [tapmeshBin, 'agent', '--advertise-addr', host.addr, '--socket', host.socket,
      '--state-dir', path.join(host.dir, 'state'), '--netns-prefix', host.ns, ...extra];
    // Both ways users run it: nsenter switches only the network namespace; `ip netns exec` also
    // gives the agent a private mount namespace (the agent mounts its sandboxes in PID 1's).
    // TAPMESH_AGENT_NODE_FLAGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the agents.
    const nodeFlags = (process.env.TAPMESH_AGENT_NODE_FLAGS ?? '').split(' ').filter(Boolean);
    const launcher = via === 'nsenter' ? ['nsenter', `--net=/run/netns/${host.ns}`] : ['ip', 'netns', 'exec', host.ns];
    const child = this.spawn(launcher[0], [...launcher.slice(1), process.execPath, ...nodeFlags, ...args], `${host.name}-agent.log`);
    const deadline = Date.now() + this.agentStartTimeoutMs;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`agent on ${host.name} exited with ${child.exitCode}; see ${this.dir}/${host.name}-agent.log`);
      if (existsSync(host.socket)) {
        const r = await this.cli(host, ['network', 'ls', '-q']);
        if (r.code === 0) return child;
      }
      if (Date.now() > deadline) throw new Error(`agent on ${host.name} did not answer within ${this.agentStartTimeoutMs / 1000} s`);
      await sleep(100);
    }
  }

  async stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 5000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await done;
    clearTimeout(t);
  }

  /** Run the tapmesh CLI against a host's agent. */
  cli(host: Host, args: string[], timeoutMs = 30_000): Promise<RunResult> {
    return run(process.execPath, [tapmeshBin, '--socket', host.socket, ...args], { timeoutMs });
  }

  async mustCli(host: Host, args: string[], timeoutMs = 30_000): Promise<string> {
    const r = await this.cli(host, args, timeoutMs);
    if (r.code !== 0) throw new Error(`tapmesh ${args.join(' ')} on ${host.name} → exit ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Remove everything this lab made: processes by PID, namespaces by name (ours and the agents'). */
  async cleanup(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.procs].map((p) => this.stopProcess(p, 'SIGTERM', 3000)));
    // Agents create sandbox namespaces named with their --netns-prefix, i.e. under our tag.
    let all: string[] = [];
    try {
      all = readdirSync('/run/netns');
    } catch {
      all = [];
    }
    const ours = new Set([...this.namespaces, ...all.filter((n) => n.startsWith(`${this.tag}-`))]);
    for (const n of ours) await run('ip', ['netns', 'del', n]);
    if (process.env.TAPMESH_KEEP_LOGS !== '1') rmSync(this.dir, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Poll until fn returns a truthy value or the deadline passes. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(everyMs);
  }
}
