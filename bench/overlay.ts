// Overlay bench runner: for each system, build the standard two-host topology in fresh namespaces
// and let the system wire the containers together; then measure ping, TCP and UDP container →
// container, `runs` times (systems interleaved), and fold the runs into medians. Everything it made
// is removed before it returns.
import { Lab, run, sleep } from '../test/harness/lab.js';
import {
  clockTicks, cpuTicksAll, iperf, peakRssKB, ping, startIperfServer, waitReachable, type IperfFigures,
} from './measure.js';
import { FIGURE_KEYS, PING_RATES, type Figures, type SystemResult } from './report.js';
import { medianOfRecords } from './stats.js';
import { NotBuiltError, OVERLAY, setUnderlayOffload, type OverlaySystem, type Topology } from './systems/system.js';

export interface OverlayOpts {
  runs: number;
  /** iperf3 duration per test. */
  seconds: number;
  pings: number;
  /** Underlay (ul0) transmit offloads for every system: see setUnderlayOffload. */
  underlayOffload: boolean;
  /** Also ping at 1, 50 and 500 per second (PING_RATES), each for about rateSeconds (at least 10 pings). */
  ratePings?: boolean;
  rateSeconds?: number;
  /** Also UDP 1400 B offered at kernel VXLAN's received rate of the same run (needs kernel-vxlan). */
  pacedUdp?: boolean;
  /** Agent CPU with no traffic, measured over this many seconds at the start of each run (0 = not). */
  idleSeconds?: number;
  /** Only these iperf3 steps (names of STEPS: tcp1, tcp4, udp1400, udp64); absent: all. */
  steps?: readonly string[];
  progress: (msg: string) => void;
  /** Called after the last run, before any topology is removed (teardown itself costs CPU). */
  afterRuns?: () => Promise<void>;
  /** Called with each lab as soon as it exists (true) and once it is cleaned up (false). */
  onLab: (lab: Lab, alive: boolean) => void;
}

/** Set by the signal handler: no new step or retry starts once cleanup has begun. */
export const abort = { requested: false };

class Aborted extends Error {}

interface StepFigures extends IperfFigures {
  cpuSec?: number;
  cpuSecPerGB?: number;
}

interface RunRecord {
  run: number;
  figures: Figures;
  ping?: { sent: number; received: number; p50Ms: number; p99Ms: number; maxMs: number };
  steps: Record<string, StepFigures>;
  errors: string[];
}

export const STEPS = [
  { name: 'tcp1', what: 'TCP 1 stream', streams: 1 },
  { name: 'tcp4', what: 'TCP 4 streams', streams: 4 },
  { name: 'udp1400', what: 'UDP 1400 B', udpLen: 1400 },
  { name: 'udp64', what: 'UDP 64 B', udpLen: 64 },
] as const;

function describe(f: StepFigures): string {
  const parts = [`${f.gbps.toFixed(3)} Gbit/s`];
  if (f.pps !== undefined) parts.push(`${(f.pps / 1000).toFixed(1)} kpps`, `loss ${f.lossPct?.toFixed(1)}%`);
  if (f.retransmits !== undefined) parts.push(`retr ${f.retransmits}`);
  if (f.cpuSecPerGB !== undefined) parts.push(`agent ${f.cpuSecPerGB.toFixed(2)} CPU s/GB`);
  return parts.join(', ');
}

function diffCounters(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const delta = v - (before[k] ?? 0);
    if (delta !== 0) d[k] = delta;
  }
  return d;
}

/** eth0 MTU inside a container (the overlay MTU the system chose). */
async function containerMtu(t: Topology, i: number): Promise<number> {
  const r = await t.lab.exec(t.containers[i], 'cat', ['/sys/class/net/eth0/mtu']);
  const n = Number(r.stdout.trim());
  return r.code === 0 && n > 0 ? n : OVERLAY.mtu;
}

async function oneRun(sys: OverlaySystem, t: Topology, o: OverlayOpts, run: number, tag: string, mtu: number): Promise<RunRecord> {
  const rec: RunRecord = { run, figures: {}, steps: {}, errors: [] };
  const [src] = t.containers;
  const dst = OVERLAY.ips[1];
  const tck = await clockTicks();
  const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
    for (let i = 0; i < 2; i++) {
      if (abort.requested) throw new Aborted('interrupted');
      try {
        return await fn();
      } catch (e) {
        if (abort.requested) throw new Aborted('interrupted');
        o.progress(`${tag} ${what}: ${i === 0 ? 'failed, retrying once' : 'failed again'}: ${(e as Error).message}`);
        if (i === 1) rec.errors.push(`run ${run} ${what}: ${(e as Error).message}`);
      }
    }
    return undefined;
  };

  if ((o.idleSeconds ?? 0) > 0 && sys.pids().length) {
    // After 2 s of quiet (busy-poll windows end, the previous system's traffic is over).
    await sleep(2000);
    const pids = sys.pids();
    const before = cpuTicksAll(pids);
    await sleep(o.idleSeconds! * 1000);
    // Per agent (the mean over the system's datapath processes): "an idle agent uses x% of a core".
    rec.figures.idleCpuPct = (100 * (cpuTicksAll(pids) - before)) / tck / o.idleSeconds! / pids.length;
    o.progress(`${tag} idle ${o.idleSeconds} s: ${rec.figures.idleCpuPct.toFixed(2)}% of a core per agent (${pids.length})`);
  }
  o.progress(`${tag} ping ×${o.pings} …`);
  const p = await attempt('ping', () => ping(t.lab, src, dst, o.pings));
  if (p) {
    rec.ping = { sent: p.sent, received: p.received, p50Ms: p.p50Ms, p99Ms: p.p99Ms, maxMs: Math.max(...p.rttsMs) };
    rec.figures.pingP50Ms = p.p50Ms;
    rec.figures.pingP99Ms = p.p99Ms;
    o.progress(`${tag} ping: p50 ${p.p50Ms.toFixed(3)} ms, p99 ${p.p99Ms.toFixed(3)} ms, ${p.received}/${p.sent} replies`);
  }
  for (const r of o.ratePings ? PING_RATES : []) {
    const count = Math.max(10, Math.round(r.perSec * (o.rateSeconds ?? 10)));
    const pids = sys.pids();
    const before = cpuTicksAll(pids);
    const t0 = performance.now();
    const q = await attempt(`ping ${r.perSec}/s`, () => ping(t.lab, src, dst, count, 1 / r.perSec));
    if (!q) continue;
    rec.figures[r.p50] = q.p50Ms;
    rec.figures[r.p99] = q.p99Ms;
    if (pids.length) rec.figures[r.cpu] = (100 * (cpuTicksAll(pids) - before)) / tck / ((performance.now() - t0) / 1000) / pids.length;
    const cpu = rec.figures[r.cpu];
    o.progress(`${tag} ping ${r.perSec}/s ×${count}: p50 ${q.p50Ms.toFixed(3)} ms, p99 ${q.p99Ms.toFixed(3)} ms, ${q.received}/${q.sent} replies` +
      `${cpu === undefined ? '' : `, ${cpu.toFixed(1)}% of a core per agent`}`);
  }
  for (const s of STEPS) {
    if (o.steps && !o.steps.includes(s.name)) continue;
    o.progress(`${tag} ${s.what} for ${o.seconds} s …`);
    const pids = sys.pids();
    const udp = 'udpLen' in s;
    const dropsBefore = udp ? await dropCounters(t.lab) : {};
    const f = await attempt(s.what, async () => {
      const before = cpuTicksAll(pids);
      // A UDP payload that would not fit the system's MTU is shrunk to fit (IP 20 + UDP 8).
      const udpLen = 'udpLen' in s ? Math.min(s.udpLen, mtu - 28) : undefined;
      const r: StepFigures = await iperf(t.lab, src, dst, { seconds: o.seconds, streams: 'streams' in s ? s.streams : undefined, udpLen });
      if (pids.length) {
        r.cpuSec = (cpuTicksAll(pids) - before) / tck;
        if (r.bytes > 0 && Number.isFinite(r.cpuSec)) r.cpuSecPerGB = r.cpuSec / (r.bytes / 1e9);
      }
      return r;
    });
    if (!f) continue;
    rec.steps[s.name] = f;
    o.progress(`${tag} ${s.what}: ${describe(f)}`);
    if (udp) {
      // Which queue dropped the datagrams that were lost (as for the paced test).
      const after = await dropCounters(t.lab);
      const lost = Object.entries(after).map(([k, v]) => [k, v - (dropsBefore[k] ?? 0)] as const).filter(([, d]) => d > 0);
      if (lost.length) o.progress(`${tag} ${s.what} drops: ${lost.map(([k, d]) => `${k} ${d}`).join(', ')}`);
    }
    switch (s.name) {
      case 'tcp1':
        rec.figures.tcp1Gbps = f.gbps;
        rec.figures.cpuSecPerGB = f.cpuSecPerGB;
        break;
      case 'tcp4':
        rec.figures.tcp4Gbps = f.gbps;
        break;
      case 'udp1400':
        Object.assign(rec.figures, { udp1400Pps: f.pps, udp1400Gbps: f.gbps, udp1400LossPct: f.lossPct });
        break;
      case 'udp64':
        Object.assign(rec.figures, { udp64Pps: f.pps, udp64Gbps: f.gbps, udp64LossPct: f.lossPct });
        break;
    }
  }
  return rec;
}

interface Prepared {
  sys: OverlaySystem;
  lab: Lab;
  t: Topology;
  mtu: number;
  result: SystemResult;
  records: RunRecord[];
  countersBefore: Record<string, number>;
}

/** Build the topology and the system's overlay. Returns the finished result when it cannot run. */
async function prepare(sys: OverlaySystem, o: OverlayOpts): Promise<Prepared | SystemResult> {
  const result: SystemResult = { id: sys.id, label: sys.label, status: 'ok', figures: {}, runs: [], notes: [] };
  const probe = await sys.probe();
  if (!probe.ok) {
    o.progress(`${sys.label}: ${probe.status === 'not-built' ? 'not built yet' : 'skipped'}: ${probe.reason}`);
    return { ...result, status: probe.status, reason: probe.reason };
  }
  const lab = new Lab();
  o.onLab(lab, true);
  const fail = async (status: 'failed' | 'not-built', reason: string): Promise<SystemResult> => {
    o.progress(`${sys.label}: ${status === 'failed' ? 'FAILED' : 'not built yet'}: ${reason}`);
    await lab.cleanup();
    o.onLab(lab, false);
    return { ...result, status, reason };
  };
  try {
    o.progress(`${sys.label}: building topology (namespaces ${lab.tag}-*) …`);
    await lab.start();
    const h1 = await lab.addHost('h1');
    const h2 = await lab.addHost('h2');
    const t: Topology = { lab, hosts: [h1, h2], containers: [await lab.addContainer(h1, 'c'), await lab.addContainer(h2, 'c')] };
    await sys.setup(t, (m) => o.progress(`${sys.label}: ${m}`));
    await setUnderlayOffload(t, o.underlayOffload);
    await waitReachable(lab, t.containers[0], OVERLAY.ips[1], 20_000);
    const mtu = await containerMtu(t, 0);
    if (mtu !== OVERLAY.mtu) result.notes.push(`container MTU is ${mtu}, not ${OVERLAY.mtu}${mtu < 1428 ? `; UDP 1400 B test used ${mtu - 28} B payloads` : ''}`);
    await startIperfServer(lab, t.containers[1]);
    const countersBefore = sys.counters ? await sys.counters() : {};
    return { sys, lab, t, mtu, result, records: [], countersBefore };
  } catch (e) {
    return fail(e instanceof NotBuiltError ? 'not-built' : 'failed', (e as Error).message);
  }
}

/** Fold the runs into medians, read peak RSS and counter deltas, and remove the lab. */
async function finish(p: Prepared, o: OverlayOpts): Promise<SystemResult> {
  const { sys, result, records } = p;
  try {
    const pids = sys.pids();
    if (pids.length) {
      const rss = Math.max(...pids.map(peakRssKB));
      if (Number.isFinite(rss)) for (const r of records) r.figures.peakRssMB = rss / 1024;
      const alive = pids.filter((pid) => Number.isFinite(peakRssKB(pid))).length;
      if (alive < pids.length) result.notes.push(`${pids.length - alive} of ${pids.length} datapath processes were gone at the end`);
    }
    if (sys.counters) {
      const d = diffCounters(p.countersBefore, await sys.counters());
      const drops = Object.entries(d).filter(([k]) => /drop/i.test(k));
      if (drops.length) result.notes.push(`drops during the bench: ${drops.map(([k, v]) => `${k} ${v}`).join(', ')}`);
      result.runs.push({ counterDeltas: d });
    }
  } catch (e) {
    result.notes.push(`reading final counters failed: ${(e as Error).message}`);
  }
  result.figures = medianOfRecords(records.map((r) => r.figures), FIGURE_KEYS) as Figures;
  result.runs.unshift(...records);
  const errors = records.flatMap((r) => r.errors);
  if (errors.length) {
    result.status = 'failed';
    result.reason = `${errors.length} measurement(s) failed`;
    result.notes.push(...errors);
  }
  o.progress(`${sys.label}: cleaning up ${p.lab.tag}-* …`);
  await p.lab.cleanup();
  o.onLab(p.lab, false);
  return result;
}

/**
 * Where datagrams were dropped, per namespace of the lab: UDP receive-buffer overflows
 * (/proc/net/snmp RcvbufErrors) and link tx/rx drops (TAP and veth queues). Summed per
 * namespace so that a paced run can say which queue overflowed.
 */
async function dropCounters(lab: Lab): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const list = await run('ip', ['netns', 'list']);
  const names = list.stdout.split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(`${lab.tag}-`));
  for (const ns of names) {
    const snmp = await lab.exec(ns, 'cat', ['/proc/net/snmp']);
    const udp = snmp.stdout.split('\n').filter((l) => l.startsWith('Udp:'));
    if (udp.length === 2) {
      const [h, v] = udp.map((l) => l.trim().split(/\s+/));
      const i = h.indexOf('RcvbufErrors');
      if (i > 0 && Number(v[i]) > 0) out[`${ns} udp RcvbufErrors`] = Number(v[i]);
    }
    const links = await lab.exec(ns, 'ip', ['-s', '-o', 'link']);
    for (const l of links.stdout.split('\n')) {
      // "N: name: ... RX: bytes packets errors dropped ... TX: bytes packets errors dropped ..."
      const m = /^\d+: ([^:@]+)[^]*?RX:[^\\]*\\\s+\d+\s+\d+\s+\d+\s+(\d+)[^]*?TX:[^\\]*\\\s+\d+\s+\d+\s+\d+\s+(\d+)/.exec(l);
      if (!m) continue;
      if (Number(m[2]) > 0) out[`${ns} ${m[1]} rx_dropped`] = Number(m[2]);
      if (Number(m[3]) > 0) out[`${ns} ${m[1]} tx_dropped`] = Number(m[3]);
    }
  }
  return out;
}

/**
 * UDP 1400 B offered to every system at the rate kernel VXLAN received in this run's unpaced
 * UDP 1400 B test: the loss a stream sees that the kernel carries.
 */
const PACED_WINDOW = 2 << 20;

async function pacedRun(ready: Prepared[], o: OverlayOpts, runNo: number): Promise<void> {
  const kernel = ready.find((p) => p.sys.id === 'kernel-vxlan')?.records[runNo - 1];
  const gbps = kernel?.steps.udp1400?.gbps;
  if (gbps === undefined || !(gbps > 0)) {
    o.progress(`run ${runNo}: no kernel VXLAN UDP 1400 B figure in this run; paced UDP not measured`);
    return;
  }
  for (const p of ready) {
    const rec = p.records[runNo - 1];
    const tag = `${p.sys.label} run ${runNo}/${o.runs}:`;
    o.progress(`${tag} UDP 1400 B paced at ${gbps.toFixed(3)} Gbit/s for ${o.seconds} s …`);
    try {
      const before = await dropCounters(p.t.lab);
      // Both ends with 2 MB socket buffers, every system alike: the loss measured is the overlay's,
      // not the default 208 KB buffer of an iperf3 server that a 2-core host deschedules.
      const f = await iperf(p.t.lab, p.t.containers[0], OVERLAY.ips[1], { seconds: o.seconds, udpLen: Math.min(1400, p.mtu - 28), bitsPerSec: gbps * 1e9, window: PACED_WINDOW });
      const after = await dropCounters(p.t.lab);
      const lost = Object.entries(after).map(([k, v]) => [k, v - (before[k] ?? 0)] as const).filter(([, d]) => d > 0);
      if (lost.length) o.progress(`${tag} paced UDP drops: ${lost.map(([k, d]) => `${k} ${d}`).join(', ')}`);
      rec.steps.udpPaced = f;
      rec.figures.udpPacedOfferedGbps = gbps;
      rec.figures.udpPacedLossPct = f.lossPct;
      o.progress(`${tag} UDP paced: ${describe(f)}`);
    } catch (e) {
      rec.errors.push(`run ${runNo} UDP paced: ${(e as Error).message}`);
      o.progress(`${tag} UDP paced failed: ${(e as Error).message}`);
    }
  }
}

/**
 * Bench several systems. All topologies are built first and stay up; then run by run every system
 * is measured in turn (order reversed on every other run), so each system's repeats are spread
 * over the same period and slow drifts in background load hit all of them alike. Never throws:
 * a system that fails comes back with status 'failed' and a reason.
 */
export async function benchSystems(systems: OverlaySystem[], o: OverlayOpts): Promise<SystemResult[]> {
  const prepared: (Prepared | SystemResult)[] = [];
  try {
    for (const sys of systems) prepared.push(await prepare(sys, o));
    const ready = prepared.filter((p): p is Prepared => 'lab' in p);
    for (let run = 1; run <= o.runs; run++) {
      const order = run % 2 === 1 ? ready : [...ready].reverse();
      for (const p of order) p.records.push(await oneRun(p.sys, p.t, o, run, `${p.sys.label} run ${run}/${o.runs}:`, p.mtu));
      if (o.pacedUdp) await pacedRun(ready, o, run);
    }
    await o.afterRuns?.();
    const out: SystemResult[] = [];
    for (const p of prepared) out.push('lab' in p ? await finish(p, o) : p);
    return out;
  } finally {
    for (const p of prepared) if ('lab' in p) await p.lab.cleanup(); // idempotent; covers a throw mid-way
  }
}
