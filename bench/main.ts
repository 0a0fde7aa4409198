// Bench entry point: `node dist/bench/main.js [crypto|overlay|gossip|all|profile|dns]... [--quick]
// [--runs N] [--peers] [--out DIR] [--seconds S] [--pings N] [--systems id,id]`. Progress goes to stderr
// (one line per step with elapsed time); results to bench/results/ (markdown, JSON, SVG, and
// latest.* copies). Exit status: 0 when everything that was asked for ran, 1 when a system failed
// to set up or a measurement failed, 2 on bad usage. Ctrl-C / SIGTERM remove every namespace and
// process this run made (by name and PID) before exiting.
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, command, commandHelp, parse, runCommand, type Program, type Values } from '../cli/table.js';
import { integer, oneOf } from '../cli/values.js';
import { isRoot, repoRoot, run, type Lab } from '../test/harness/lab.js';
import { benchCrypto } from './crypto.js';
import { STEPS, abort, benchSystems } from './overlay.js';
import { profileSystem } from './profile.js';
import { machineLine, renderJson, renderMarkdown, renderSvg, type BenchReport, type Machine } from './report.js';
import { fastdSystems } from './systems/fastd.js';
import { kernelVxlan } from './systems/kernel-vxlan.js';
import { nullRelaySystems } from './systems/null-relay.js';
import type { OverlaySystem } from './systems/system.js';
import { tapmesh } from './systems/tapmesh.js';
import { wireguardGo } from './systems/wireguard-go.js';

const PARTS = ['crypto', 'overlay', 'gossip', 'services', 'all', 'profile', 'dns'] as const;

const BENCH_OPTIONS = {
  quick: { type: 'boolean', help: 'CI mode: 1 run, 2 s per iperf3 test, 200 pings, tiny crypto time boxes (< 2 minutes)' },
  runs: { type: 'string', value: 'N', help: 'Repeats per system, medians reported (default 3; quick 1)' },
  seconds: { type: 'string', value: 'S', help: 'Seconds per iperf3 test (default 10; quick 2)' },
  pings: { type: 'string', value: 'N', help: 'Pings per latency test (default 1000; quick 200)' },
  peers: { type: 'boolean', help: 'Also the peer systems: fastd and wireguard-go' },
  floor: { type: 'boolean', help: 'Also the floor: a null C relay through the same TAP and UDP sockets, sleeping and spinning (bench/systems/null-relay.ts)' },
  out: { type: 'string', value: 'DIR', help: 'Results directory (default bench/results)' },
  systems: { type: 'string', value: 'id,id,...', help: 'Only these systems (ids as in the report: kernel-vxlan, tapmesh, tapmesh-encrypted, …)' },
  'rate-pings': { type: 'boolean', help: 'overlay: also ping at 1, 50 and 500 per second (p50/p99 each; about --rate-seconds each)' },
  'warm-pings': { type: 'string', value: 'N', help: 'profile: pings at 2 ms before the hop-latency pings (warms the agents\' code; default 0)' },
  'ping-interval': { type: 'string', value: 'MS', help: 'profile: milliseconds between the hop-latency pings (default 2; 1000 = as users ping, the datapath asleep at each)' },
  'rate-seconds': { type: 'string', value: 'S', help: 'Seconds per fixed-rate ping test (default 10; at least 10 pings)' },
  'paced-udp': { type: 'boolean', help: 'overlay: also UDP 1400 B offered at the rate kernel VXLAN received in the same run (loss)' },
  steps: { type: 'string', value: 'tcp1,tcp4,udp1400,udp64', help: 'overlay: only these iperf3 tests (default all)' },
  'idle-seconds': { type: 'string', value: 'S', help: 'overlay: agent CPU with no traffic over S seconds at the start of each run (default 0 = not measured)' },
  'underlay-offload': { type: 'string', value: 'on|off', default: 'on', help: 'ul0 tx checksum/segmentation offload for every system' },
} as const;

const BENCH = command({
  name: '', usage: `[${PARTS.join('|')}]...`, summary: 'Throughput, latency and crypto cost of tapmesh, side by side with kernel VXLAN in the same run.',
  options: BENCH_OPTIONS,
  notes: `Parts:
  crypto    AEAD microbench (one packet per call) at 64/512/1400/8900 bytes
  overlay   kernel VXLAN vs tapmesh (and tapmesh encrypted; fastd, wireguard-go with --peers; the null relays with --floor), needs root
  gossip    runs dist/bench/gossip.js when it exists
  dns       the embedded resolver with dnsperf: local and forwarded queries/s, p50/p99 (dist/bench/dns.js, --seconds), not in 'all'
  services  new TCP connections/s and one stream through the routing mesh and a VIP next to the plain overlay (bench/services.ts), needs root
  all       all of the above (default); parts can be combined: \`crypto overlay\`
  profile   where the time goes: per-hop latency (tcpdump) and agent CPU by syscall (perf), not in 'all'`,
  run: (_ctx, o, args): Promise<number> => bench(toArgs(o, args)),
});
const GLOBALS = { help: { type: 'boolean', short: 'h', help: 'Show this help' } } as const;
const PROGRAM: Program<void> = { name: 'node dist/bench/main.js', summary: BENCH.summary, globals: GLOBALS, commands: [BENCH] };
const USAGE = commandHelp(PROGRAM, BENCH).trimEnd();

export interface Args {
  /** Parts in order; `all` expands to crypto, overlay, gossip. */
  parts: ('crypto' | 'overlay' | 'gossip' | 'services' | 'profile' | 'dns')[];
  quick: boolean;
  runs: number;
  seconds: number;
  pings: number;
  peers: boolean;
  /** Also the null relays (bench/systems/null-relay.ts). */
  floor: boolean;
  out: string;
  systems?: string[];
  underlayOffload: boolean;
  ratePings: boolean;
  rateSeconds: number;
  pacedUdp: boolean;
  idleSeconds: number;
  steps?: string[];
  /** profile: ms between hop-latency pings. */
  pingIntervalMs: number;
  /** profile: pings at 2 ms before the hop-latency pings. */
  warmPings: number;
}

function toArgs(o: Values<typeof BENCH_OPTIONS>, args: string[]): Args {
  const num = (v: string | undefined, name: string): number | undefined =>
    v === undefined ? undefined : integer(v, 1, Number.MAX_SAFE_INTEGER, `--${name} needs a positive integer, got ${v}`);
  const parts: Args['parts'] = [];
  for (const a of args) {
    const part = oneOf(a, PARTS, 'part');
    if (part === 'all') parts.push('crypto', 'overlay', 'gossip');
    else parts.push(part);
  }
  if (parts.length === 0) parts.push('crypto', 'overlay', 'gossip');
  if (parts.includes('profile') && parts.length > 1) throw new UsageError('profile runs on its own');
  const quick = o.quick;
  const runs = num(o.runs, 'runs');
  const seconds = num(o.seconds, 'seconds');
  const pings = num(o.pings, 'pings');
  return {
    parts: [...new Set(parts)], quick, peers: o.peers, floor: o.floor === true, out: path.resolve(o.out ?? path.join(repoRoot, 'bench/results')),
    systems: o.systems?.split(',').filter(Boolean), underlayOffload: oneOf(o['underlay-offload'], ['on', 'off'], '--underlay-offload') === 'on',
    runs: runs ?? (quick ? 1 : 3), seconds: seconds ?? (quick ? 2 : 10), pings: pings ?? (quick ? 200 : 1000),
    ratePings: o['rate-pings'] ?? false, rateSeconds: num(o['rate-seconds'], 'rate-seconds') ?? 10, pacedUdp: o['paced-udp'] ?? false,
    steps: o.steps === undefined ? undefined : o.steps.split(',').filter(Boolean).map((x) => oneOf(x, STEPS.map((st) => st.name), '--steps')),
    warmPings: o['warm-pings'] === undefined ? 0 : integer(o['warm-pings'], 0, 1_000_000, `--warm-pings needs 0..1000000, got ${o['warm-pings']}`),
    pingIntervalMs: o['ping-interval'] === undefined ? 2 : integer(o['ping-interval'], 2, 10_000, `--ping-interval needs 2..10000 ms, got ${o['ping-interval']}`),
    idleSeconds: o['idle-seconds'] === undefined ? 0 : integer(o['idle-seconds'], 0, 3600, `--idle-seconds needs 0..3600, got ${o['idle-seconds']}`),
  };
}

const t0 = Date.now();
function progress(msg: string): void {
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
}

/** Share of all cores busy over `ms`, from /proc/stat (idle + iowait count as not busy). */
async function busyPct(ms = 1000): Promise<number> {
  const read = (): number[] => readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const a = read();
  await new Promise((r) => setTimeout(r, ms));
  const d = read().map((v, i) => v - a[i]);
  const total = d.reduce((x, y) => x + y, 0);
  return total > 0 ? (100 * (total - d[3] - d[4])) / total : NaN;
}

/** git commit of the checkout and whether tracked files differ (read-only: no index refresh). */
async function source(): Promise<{ commit: string; dirty: boolean } | undefined> {
  const c = await run('git', ['-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  if (c.code !== 0) return undefined;
  const d = await run('git', ['--no-optional-locks', '-C', repoRoot, 'status', '--porcelain', '--untracked-files=no']);
  return { commit: c.stdout.trim(), dirty: d.code !== 0 || d.stdout.trim() !== '' };
}

function machine(): Machine {
  return { hostname: os.hostname(), cores: os.cpus().length, kernel: os.release(), cpu: os.cpus()[0]?.model.trim() ?? 'unknown', node: process.version };
}

// ---------------------------------------------------------------------------------------------
// Cleanup on exit, error and signals: labs remove their namespaces and processes; a part run
// as a child (gossip, dns) is stopped by its PID.

const labs = new Set<Lab>();
let childPart: ChildProcess | undefined;
let stopping = false;

async function emergencyCleanup(signal: string): Promise<void> {
  if (stopping) {
    progress(`${signal} again: cleanup already in progress`);
    return;
  }
  stopping = true;
  abort.requested = true;
  progress(`${signal}: stopping, cleaning up ${[...labs].map((l) => `${l.tag}-*`).join(' ') || 'nothing'} …`);
  if (childPart?.pid && childPart.exitCode === null) childPart.kill('SIGTERM');
  await Promise.allSettled([...labs].map((l) => l.cleanup()));
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

/** A part that is its own script (dist/bench/NAME.js), run as a child; its output goes to ours. */
function runScript(name: 'gossip' | 'dns' | 'services', args: string[], alone: boolean): Promise<number> {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), `${name}.js`);
  if (!existsSync(script)) {
    progress(`${name}: ${script} not built yet; skipped`);
    return Promise.resolve(alone ? 1 : 0); // asked for on its own: that is a failure
  }
  progress(`${name}: node ${[script, ...args].join(' ')}`);
  return new Promise((resolve) => {
    childPart = spawn(process.execPath, [script, ...args], { stdio: 'inherit' });
    childPart.on('exit', (code, sig) => {
      childPart = undefined;
      progress(`${name}: exited ${code ?? sig}`);
      resolve(code ?? 1);
    });
  });
}

function systemsFor(a: Args): OverlaySystem[] {
  const all = [kernelVxlan(), tapmesh(false), tapmesh(true), ...(a.peers ? [...fastdSystems(), wireguardGo()] : []), ...(a.floor || a.systems?.some((id) => id.startsWith('null-relay')) ? nullRelaySystems() : [])];
  if (!a.systems) return all;
  const chosen = all.filter((s) => a.systems?.includes(s.id));
  const unknown = a.systems.filter((id) => !all.some((s) => s.id === id));
  if (unknown.length) throw new Error(`unknown system(s): ${unknown.join(', ')}; known: ${all.map((s) => s.id).join(', ')}`);
  return chosen;
}

async function runProfile(a: Args, date: Date): Promise<number> {
  if (!isRoot) {
    progress('profile: needs root');
    return 1;
  }
  const m = machine();
  const src = await source();
  const lines = [`# tapmesh profile — ${date.toISOString()}`, '', `Machine: ${machineLine(m)}. ` +
    `Source: ${src ? `${src.commit}${src.dirty ? ' plus uncommitted changes' : ''}` : 'unknown'}. Busy with other work before start: ${(await busyPct()).toFixed(0)}%. Underlay tx offloads: ${a.underlayOffload ? 'on' : 'off'} for every system.`, ''];
  const opts = { seconds: a.seconds, pings: a.pings, pingIntervalMs: a.pingIntervalMs, warmPings: a.warmPings, underlayOffload: a.underlayOffload, progress, onLab: (lab: Lab, alive: boolean) => (alive ? labs.add(lab) : labs.delete(lab)) };
  for (const sys of systemsFor({ ...a, systems: a.systems ?? ['kernel-vxlan', 'tapmesh'] })) lines.push(...(await profileSystem(sys, opts)));
  const text = `${lines.join('\n')}\n`;
  mkdirSync(a.out, { recursive: true });
  const f = path.join(a.out, `profile-${date.toISOString().slice(0, 10)}-${m.hostname}.md`);
  writeFileSync(f, text);
  copyFileSync(f, path.join(a.out, 'profile-latest.md'));
  process.stdout.write(text);
  progress(`wrote ${f} and profile-latest.md`);
  return text.includes('FAILED') ? 1 : 0;
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  try {
    if (parse(argv, GLOBALS, PROGRAM.name, true).values.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    return await runCommand(PROGRAM, BENCH, argv, () => undefined);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message}\n${USAGE}\n`);
    return 2;
  }
}

async function bench(a: Args): Promise<number> {
  process.on('SIGINT', () => void emergencyCleanup('SIGINT'));
  process.on('SIGTERM', () => void emergencyCleanup('SIGTERM'));
  const parts = a.parts;
  const date = new Date();
  const report: BenchReport = {
    version: 1, date: date.toISOString(), machine: machine(),
    mode: { quick: a.quick, runs: a.runs, seconds: a.seconds, pings: a.pings, parts: parts.filter((p) => p !== 'gossip' && p !== 'dns' && p !== 'services'), underlayOffload: a.underlayOffload },
    systems: [],
  };
  if (parts.includes('profile')) return runProfile(a, date);
  let failed = false;
  report.source = await source();
  report.background = { beforePct: await busyPct() };
  progress(`machine busy before start: ${report.background.beforePct.toFixed(0)}% of all cores (other work on this machine)`);
  progress(`bench ${parts.join(', ')}: ${a.quick ? 'quick' : 'full'} mode, ${a.runs} run(s), ${a.seconds} s per iperf3 test, ${a.pings} pings`);

  if (parts.includes('crypto')) {
    report.crypto = await benchCrypto({ budgetMs: a.quick ? 50 : 400, progress });
    if (report.crypto.some((r) => r.status === 'failed')) failed = true;
  }
  if (parts.includes('overlay')) {
    if (!isRoot) {
      progress('overlay: needs root (network namespaces, veth, vxlan); not run');
      failed = true;
    } else {
      report.systems = await benchSystems(systemsFor(a), {
        runs: a.runs, seconds: a.seconds, pings: a.pings, underlayOffload: a.underlayOffload, progress,
        ratePings: a.ratePings, rateSeconds: a.rateSeconds, pacedUdp: a.pacedUdp, idleSeconds: a.idleSeconds, steps: a.steps,
        afterRuns: async () => {
          if (report.background) report.background.afterPct = await busyPct();
        },
        onLab: (lab, alive) => (alive ? labs.add(lab) : labs.delete(lab)),
      });
      for (const r of report.systems) {
        if (r.status === 'failed') failed = true;
        progress(`${r.label}: ${r.status}${r.reason ? ` (${r.reason})` : ''}`);
      }
    }
  }
  report.background.afterPct ??= await busyPct();
  report.durationSec = (Date.now() - t0) / 1000;
  if (report.crypto || report.systems.length) {
    mkdirSync(a.out, { recursive: true });
    const base = `${date.toISOString().slice(0, 10)}-${os.hostname()}${a.quick ? '-quick' : ''}`;
    const files: [string, string][] = [['md', renderMarkdown(report)], ['json', renderJson(report)], ['svg', renderSvg(report)]];
    for (const [ext, text] of files) {
      const f = path.join(a.out, `${base}.${ext}`);
      writeFileSync(f, text);
      // latest.* stays the latest full run: a --quick smoke run must not replace committed results.
      if (!a.quick) copyFileSync(f, path.join(a.out, `latest.${ext}`));
    }
    process.stdout.write(`${files[0][1]}\n`);
    progress(`wrote ${path.join(a.out, base)}.{md,json,svg}${a.quick ? '' : ' and latest.*'}`);
  }
  if (parts.includes('gossip') && (await runScript('gossip', [...(a.quick ? ['--quick'] : []), '--runs', String(a.runs), '--out', a.out], parts.length === 1)) !== 0) failed = true;
  if (parts.includes('dns') && (await runScript('dns', ['--seconds', String(a.quick ? 2 : a.seconds)], parts.length === 1)) !== 0) failed = true;
  if (parts.includes('services') && (await runScript('services', ['--seconds', String(a.quick ? 2 : Math.min(a.seconds, 10))], parts.length === 1)) !== 0) failed = true;
  progress(`done in ${((Date.now() - t0) / 1000).toFixed(1)} s${failed ? ' — with failures' : ''}`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  async (e: unknown) => {
    progress(`fatal: ${(e as Error).stack ?? String(e)}`);
    await Promise.allSettled([...labs].map((l) => l.cleanup()));
    process.exit(1);
  },
);
