// Gossip bench: failure detection and gossip traffic of simulated clusters (LAN profile,
// AES-GCM on, deterministic seeds). `node dist/bench/gossip.js [--quick] [--runs N] [--out DIR]`
// (`npm run bench -- gossip` runs it). Writes DIR/gossip-results.md, or bench/gossip-results.md without --out.
//
// Per cluster size n and run (seed):
// 1. bring the cluster up: n <= 100 by real joins (node i joins node 0 at 10*i ms; the time
//    until every member lists n alive members is reported), n = 1000 by a warm start (member
//    lists preloaded: simulating the join storm of 1000 nodes costs minutes of real time and
//    measures nothing about detection);
// 2. wait until every broadcast queue is empty, then measure one push-pull period of steady
//    traffic (30 s, x2 at 100, x6 at 1000 members): sealed bytes sent per node per second
//    (UDP + TCP, everything gossip sends);
// 3. crash one random member and measure, from the crash, the time until the first member
//    suspects it and until every live member holds it dead, and the traffic meanwhile.
// All times are virtual (simulated network: 1 ms + [0, 1) ms one way, no loss).

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROFILES, pushPullInterval, suspicionMin } from '../gossip/config.js';
import { SimCluster } from '../gossip/sim-cluster.js';

interface RunResult {
  joinMs: number | undefined;
  firstSuspectMs: number;
  allDeadMs: number;
  steadyBytes: number;
  detectBytes: number;
  realMs: number;
}

function totalBytesOut(c: SimCluster): number {
  return c.nodes.reduce((a, n) => a + n.stats().bytesOut, 0);
}

async function runOnce(n: number, seed: number): Promise<RunResult> {
  const t0 = Date.now();
  const c = new SimCluster(n, { seed, profile: 'lan', crypto: true });
  let joinMs: number | undefined;
  if (n <= 100) {
    await c.startAll(10);
    if (!c.net.runUntil(() => c.converged(), 120_000, 50)) throw new Error(`n=${n}: no convergence`);
    joinMs = c.net.now();
  } else {
    await c.warmStart();
    if (!c.converged()) throw new Error(`n=${n}: warm start incomplete`);
  }
  // Let every broadcast queue drain, and let the first push-pull round pass (a node schedules
  // its first one within the base interval, before it knows how big the cluster is).
  const upAt = c.net.now();
  c.net.runUntil(() => c.net.now() - upAt >= PROFILES.lan.pushPullInterval && c.nodes.every((x) => x.stats().queued.membership === 0), 300_000, 1000);

  const b0 = totalBytesOut(c);
  const window = pushPullInterval(PROFILES.lan, n);
  c.net.run(window);
  const steadyBytes = (totalBytesOut(c) - b0) / n / (window / 1000);

  const victimIdx = 1 + c.net.random.int(n - 1);
  const victim = c.nodes[victimIdx];
  const live = c.nodes.filter((x) => x !== victim);
  let first = -1;
  let deadCount = 0;
  const crashAt = c.net.now();
  for (const x of live) {
    x.onMember((e) => {
      if (e.member.id !== victim.id) return;
      if (first < 0 && (e.kind === 'suspect' || e.kind === 'dead')) first = c.net.now() - crashAt;
      if (e.kind === 'dead') deadCount++;
    });
  }
  const b1 = totalBytesOut(c);
  c.crash(victimIdx);
  if (!c.net.runUntil(() => deadCount === live.length, 300_000, 10)) throw new Error(`n=${n}: crash not detected everywhere`);
  const allDeadMs = c.net.now() - crashAt;
  const detectBytes = (totalBytesOut(c) - b1) / live.length / (allDeadMs / 1000);
  return { joinMs, firstSuspectMs: first, allDeadMs, steadyBytes, detectBytes, realMs: Date.now() - t0 };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function repoRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(d, 'package.json')) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
}

function parseArgs(argv: string[]): { quick: boolean; runs: number; out?: string } {
  let quick = false;
  let runs: number | undefined;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') quick = true;
    else if (a === '--runs') runs = Number(argv[++i]);
    else if (a === '--out') out = path.resolve(argv[++i] ?? '.');
    else throw new Error(`unknown argument: ${a}\nusage: node dist/bench/gossip.js [--quick] [--runs N] [--out DIR]`);
  }
  if (runs !== undefined && (!Number.isInteger(runs) || runs < 1)) throw new Error('--runs needs a positive integer');
  return { quick, runs: runs ?? (quick ? 1 : 3), out };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const sizes = [10, 100, 1000];
  const rows: string[] = [];
  const started = Date.now();
  for (const n of sizes) {
    const runs = args.runs;
    const results: RunResult[] = [];
    for (let r = 0; r < runs; r++) {
      const res = await runOnce(n, 1000 * n + r + 1);
      results.push(res);
      process.stderr.write(
        `gossip n=${n} run ${r + 1}/${runs}: first suspicion ${(res.firstSuspectMs / 1000).toFixed(2)} s, all dead ${(res.allDeadMs / 1000).toFixed(2)} s, ` +
          `${res.steadyBytes.toFixed(0)} B/node/s steady (${(res.realMs / 1000).toFixed(1)} s real)\n`,
      );
    }
    const m = (f: (x: RunResult) => number) => median(results.map(f));
    const min = suspicionMin(PROFILES.lan, n) / 1000;
    const join = results[0].joinMs === undefined ? 'warm start' : (m((x) => x.joinMs as number) / 1000).toFixed(2);
    rows.push(
      `| ${n} | ${runs} | ${join} | ${(m((x) => x.firstSuspectMs) / 1000).toFixed(2)} | ${(m((x) => x.allDeadMs) / 1000).toFixed(2)} | ` +
        `${min.toFixed(1)} .. ${(min * PROFILES.lan.suspicionMaxTimeoutMult).toFixed(1)} | ${m((x) => x.steadyBytes).toFixed(0)} | ${m((x) => x.detectBytes).toFixed(0)} | ` +
        `${(m((x) => x.realMs) / 1000).toFixed(1)} |`,
    );
  }
  const md = `# Gossip bench (simulated, LAN profile)

Command: \`node dist/bench/gossip.js${args.quick ? ' --quick' : ''} --runs ${args.runs}\` (\`npm run bench -- gossip\`). Medians over the runs
(different seeds). Virtual time on the deterministic simulator (gossip/sim.ts): one-way
delay 1 ms + [0, 1) ms, no loss, every message sealed with AES-256-GCM. LAN profile: probe 1 s, probe timeout 500 ms,
3 indirect probes, suspicion mult 4 (max x6), retransmit mult 4, gossip 200 ms to 3 members, push-pull 30 s (scaled
above 32 members), TCP fallback ping on.

- join: time until every member lists every other member alive (node i joins node 0 at 10 i ms); 1000 members
  start with preloaded member lists instead (warm start).
- first suspicion / all know dead: from the crash of one random member until the first member suspects it / until
  every live member holds it dead. The Lifeguard suspicion window for n members is given for reference: with
  independent confirmations the timeout falls from max to min.
- bytes/node/s: sealed bytes sent (datagrams and streams) per member per second, in steady state (one push-pull
  period, 30 s / 60 s / 180 s, after every broadcast queue drained and the first push-pull round passed) and during
  the detection window. At 1000 members the push-pull (full state both ways, ~60 kB every 180 s) dominates.

| members | runs | join (s) | first suspicion (s) | all know dead (s) | suspicion window (s) | bytes/node/s steady | bytes/node/s detecting | real time per run (s) |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|
${rows.join('\n')}

Machine: ${os.cpus()[0]?.model.trim() ?? 'unknown'} (${os.cpus().length} cores), Node ${process.version}. Total run time ${((Date.now() - started) / 1000).toFixed(0)} s.
`;
  // With --out the results go there only, so a quick smoke run never replaces committed ones.
  const targets = [args.out ? path.join(args.out, 'gossip-results.md') : path.join(repoRoot(), 'bench', 'gossip-results.md')];
  for (const t of targets) {
    mkdirSync(path.dirname(t), { recursive: true });
    writeFileSync(t, md);
  }
  process.stdout.write(md);
}

main().catch((e: unknown) => {
  process.stderr.write(`gossip bench failed: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
