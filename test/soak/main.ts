// `npm run soak` (10 minutes; `-- --quick` for the 1-minute CI run; `--report FILE` writes the
// markdown report there too): the fault and soak test of issue 11.
// 1. build the scene: five hosts, agents started with nsenter --net and ip netns exec, one overlay;
//    gossip profile `--profile lan|fast|wan` (default lan, what users run, in --quick too; see
//    docs/reliability.md for what each showed);
// 2. start the load: checksummed TCP transfers, fping rounds, container churn (traffic.ts);
// 3. sample all along: duplicate addresses, forwarding at dead or wrong VTEPs, agent RSS;
// 4. inject the faults of the plan, one after the other, timing detection and convergence (faults.ts);
// 5. stop the load, wait for convergence, run the final checks (checks.ts);
// 6. print the report (report.ts); exit 0 only if every check held;
// 7. remove every namespace and process it made (also on error, SIGINT and SIGTERM).
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { requireRoot, sleep } from '../harness/lab.js';
import { badForwarding, duplicateAddresses, endpointDiff, falseDowns, memberEvents, rssVerdicts, sampleRss, snapshot, suspectBursts, type RssSample } from './checks.js';
import { killAndRestart, loss, partition, removeLoss, waitConverged, type FaultContext, type FaultRecord } from './faults.js';
import { passed, renderReport, type SoakResult } from './report.js';
import { PROFILE_NAMES, type ProfileName } from '../../gossip/config.js';
import { detectionMs, Scene, SUBNET } from './scene.js';
import { newStats, runTraffic } from './traffic.js';

interface Plan {
  mode: 'full' | 'quick';
  durationMs: number;
  warmupMs: number;
  sampleEveryMs: number;
  /** Offset from the start of the load (ms) and the fault to inject then (after the previous one ended). */
  faults: { at: number; run: (s: Scene, ctx: FaultContext) => Promise<FaultRecord> }[];
  traffic: { transferWorkers: number; transferBytes: number; transferTimeoutMs: number; pingEveryMs: number; churnEveryMs: number; maxChurn: number };
}

const MiB = 1 << 20;

function plan(quick: boolean): Plan {
  const h = (s: Scene, i: number) => s.hosts[i - 1];
  if (quick) {
    return {
      mode: 'quick', durationMs: 60_000, warmupMs: 8_000, sampleEveryMs: 2_000,
      faults: [
        { at: 8_000, run: (s, c) => killAndRestart(s, [h(s, 2)], 2_000, c) },
        { at: 20_000, run: (s, c) => killAndRestart(s, [h(s, 3)], 2_000, c) },
        { at: 30_000, run: (s, c) => partition(s, h(s, 4), 15_000, c) },
        { at: 46_000, run: (s, c) => loss(s, 12_000, c) },
      ],
      traffic: { transferWorkers: 2, transferBytes: 2 * MiB, transferTimeoutMs: 30_000, pingEveryMs: 1_000, churnEveryMs: 1_500, maxChurn: 4 },
    };
  }
  return {
    mode: 'full', durationMs: 600_000, warmupMs: 60_000, sampleEveryMs: 5_000,
    faults: [
      { at: 60_000, run: (s, c) => killAndRestart(s, [h(s, 2)], 5_000, c) },
      { at: 120_000, run: (s, c) => killAndRestart(s, [h(s, 3)], 5_000, c) },
      { at: 180_000, run: (s, c) => partition(s, h(s, 4), 30_000, c) },
      { at: 260_000, run: (s, c) => loss(s, 120_000, c) },
      { at: 400_000, run: (s, c) => killAndRestart(s, [h(s, 4), h(s, 5)], 10_000, c) },
      { at: 450_000, run: (s, c) => partition(s, h(s, 1), 30_000, c) },
    ],
    traffic: { transferWorkers: 2, transferBytes: 8 * MiB, transferTimeoutMs: 90_000, pingEveryMs: 2_000, churnEveryMs: 3_000, maxChurn: 6 },
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean' }, report: { type: 'string' }, profile: { type: 'string' } } });
  if (!requireRoot('soak')) return 1;
  const p = plan(values.quick === true);
  const wall0 = Date.now();
  const step = (msg: string) => process.stderr.write(`[${((Date.now() - wall0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
  const profile = values.profile ?? 'lan';
  if (!(PROFILE_NAMES as string[]).includes(profile)) {
    process.stderr.write(`soak: --profile must be one of ${PROFILE_NAMES.join(', ')}\n`);
    return 2;
  }
  const s = new Scene(step, profile as ProfileName);
  let cleaning: Promise<void> | undefined;
  const cleanup = () => (cleaning ??= (async () => {
    step(`cleaning up: processes and namespaces of run ${s.lab.tag}`);
    await removeLoss(s).catch(() => undefined);
    await s.lab.cleanup();
  })());
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void cleanup().then(() => process.exit(sig === 'SIGINT' ? 130 : 143)));
  try {
    // 1. The scene.
    step(`run tag ${s.lab.tag}, ${p.mode} soak: building 5 hosts, 2 containers each, overlay ${SUBNET}`);
    await s.build(5, 2);
    const detect = detectionMs(s.hosts.length, s.profile);
    const ctx: FaultContext = { detectionMs: detect, convergeTimeoutMs: Math.max(30_000, 2 * detect), windows: [] };
    const setup = [
      `5 hosts on one underlay bridge; agents ${s.hosts.map((h) => `${h.name} ${s.agents.get(h)!.via === 'nsenter' ? 'nsenter --net' : 'ip netns exec'}`).join(', ')}; \`--gossip-profile ${s.profile}\`.`,
      `One overlay (${SUBNET}, cluster IPAM), ${s.stable().length} long-lived containers; churn containers on random hosts (at most ${p.traffic.maxChurn} at once, one operation every ${p.traffic.churnEveryMs / 1000} s).`,
      `${p.traffic.transferWorkers} transfer loops of ${p.traffic.transferBytes / MiB} MiB TCP each between long-lived containers on different hosts, SHA-256 checked at both ends; fping rounds every ${p.traffic.pingEveryMs / 1000} s.`,
    ];
    const t0 = Date.now();
    let lastChange = t0;
    let active = 0;
    const st = newStats();
    const rss: RssSample[] = [];
    const load: number[] = [];
    const dups = new Set<string>();
    const badFwd = new Set<string>();
    let running = true;
    // 2. The load.
    step('load running: transfers, pings, churn');
    const traffic = runTraffic(s, { ...p.traffic, quiet: () => active === 0, t0 }, st, () => running);
    // 3. Sampling.
    const sampler = (async () => {
      while (running) {
        sampleRss(s, rss);
        load.push(Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]));
        await s.exclusive(async () => {
          const snap = await snapshot(s);
          for (const d of duplicateAddresses(s, snap)) dups.add(d);
          if (snap.at - lastChange > detect) for (const b of badForwarding(s, snap, st.gone, detect)) badFwd.add(`at ${((snap.at - t0) / 1000).toFixed(1)} s ${b}`);
        }).catch((e) => step(`sample failed: ${(e as Error).message}`));
        await sleep(p.sampleEveryMs);
      }
    })();
    // 4. The faults.
    const faults: FaultRecord[] = [];
    for (const f of p.faults) {
      await sleep(Math.max(0, t0 + f.at - Date.now()));
      active++;
      lastChange = Date.now();
      const rec = await f.run(s, ctx);
      lastChange = Date.now();
      active--;
      faults.push(rec);
      step(`${rec.kind} ${rec.target}: detected ${rec.detectedMs ?? '-'} ms, converged ${rec.convergedMs ?? 'NOT'} ms after lifting${rec.problems.length ? `; ${rec.problems.join('; ')}` : ''}`);
    }
    await sleep(Math.max(0, t0 + p.durationMs - Date.now()));
    // 5. Stop the load, converge, final checks.
    const durationMs = Date.now() - t0;
    running = false;
    step('load stopped; waiting for the transfers in flight, then the final checks');
    await Promise.all([traffic, sampler]);
    const end: FaultRecord = { kind: 'end of load', target: 'all', startedAt: Date.now(), liftedAt: Date.now(), problems: [], notes: [] };
    const fin = await waitConverged(s, end.liftedAt, ctx.convergeTimeoutMs);
    end.convergedMs = fin.ms;
    if (fin.ms === undefined) end.problems.push(`final convergence not within ${ctx.convergeTimeoutMs} ms: ${fin.left.slice(0, 4).join('; ')}`);
    faults.push(end);
    sampleRss(s, rss);
    const snap = await s.exclusive(() => snapshot(s));
    for (const d of duplicateAddresses(s, snap)) dups.add(d);
    for (const b of badForwarding(s, snap, st.gone, detect)) badFwd.add(`at the end ${b}`);
    const lost = endpointDiff(s, snap);
    const events = memberEvents(s);
    const result: SoakResult = {
      mode: p.mode, profile: s.profile, startedAt: t0, durationMs, wallMs: Date.now() - wall0, setup, detectionMs: detect, faults, traffic: st,
      duplicates: [...dups], badForwarding: [...badFwd], lost, events, falseDowns: falseDowns(events, ctx.windows, s.formedAt),
      rss, rssVerdicts: rssVerdicts(s, rss, p.warmupMs), warmupMs: p.warmupMs, load, hosts: s.hosts.length, suspectBursts: suspectBursts(events, s.hosts.length, s.formedAt),
    };
    await cleanup();
    result.wallMs = Date.now() - wall0;
    const md = renderReport(result);
    process.stdout.write(`\n${md}`);
    if (values.report) writeFileSync(values.report, md);
    return passed(result) ? 0 : 1;
  } catch (e) {
    step(`soak failed: ${(e as Error).stack ?? String(e)}`);
    await cleanup();
    return 1;
  }
}

void main().then((code) => process.exit(code));
