// Where the time goes: `node dist/bench/main.js profile`. For each system on the bench topology:
// (1) latency per hop: tcpdump on the container eth0s and the host underlay ul0s while 1000
// pings run, matched by ICMP sequence number (one clock: all namespaces share this machine);
// (2) for systems with datapath processes (tapmesh): during an iperf3 TCP stream, CPU per thread
// from /proc and CPU seconds per GB, and — when `perf` is installed — perf samples of the agents
// split by syscall (inclusive: the kernel work a syscall does inline, such as delivering a written
// TAP frame through the bridge into the container's TCP stack) and their hottest user-space symbols
// (the agents run with --perf-basic-prof so JIT-compiled JS has names).
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { Lab, run, sleep } from '../test/harness/lab.js';
import { clockTicks, startIperfServer, waitReachable } from './measure.js';
import { fmtNum } from './report.js';
import { percentile } from './stats.js';
import { which } from './systems/peer-util.js';
import { OVERLAY, setUnderlayOffload, type OverlaySystem, type Topology } from './systems/system.js';

export interface ProfileOpts {
  seconds: number;
  pings: number;
  /** Between hop-latency pings, ms (2: back to back, the datapath kept awake by busy polling). */
  pingIntervalMs: number;
  /** Pings at 2 ms before the measured ones, uncaptured (the agents' code optimized first). */
  warmPings: number;
  underlayOffload: boolean;
  progress: (msg: string) => void;
  onLab: (lab: Lab, alive: boolean) => void;
}

const HOPS: [string, string, string][] = [
  ['request', 'c1', 'u1'], ['request', 'u1', 'u2'], ['request', 'u2', 'c2'],
  ['reply', 'c2', 'u2'], ['reply', 'u2', 'u1'], ['reply', 'u1', 'c1'],
];
const POINT_NAMES: Record<string, string> = { c1: 'container 1 eth0', u1: 'host 1 ul0', u2: 'host 2 ul0', c2: 'container 2 eth0' };

/** ICMP echo sequence → capture point → first timestamp (s). Handles tcpdump's two-line VXLAN output. */
export function parseTcpdump(text: string, point: string, into: Map<string, Record<string, number>>): void {
  let ts = 0;
  for (const line of text.split('\n')) {
    const t = /^(\d+\.\d+) /.exec(line);
    if (t) ts = Number(t[1]);
    const m = /ICMP echo (request|reply), id \d+, seq (\d+)/.exec(line);
    if (!m) continue;
    const rec = into.get(`${m[1]}:${m[2]}`) ?? {};
    rec[point] ??= ts;
    into.set(`${m[1]}:${m[2]}`, rec);
  }
}

async function hopLatency(t: Topology, o: ProfileOpts): Promise<string[]> {
  const points: [string, string, string][] = [['c1', t.containers[0], 'eth0'], ['u1', t.hosts[0].ns, 'ul0'], ['u2', t.hosts[1].ns, 'ul0'], ['c2', t.containers[1], 'eth0']];
  if (o.warmPings > 0) await t.lab.exec(t.containers[0], 'ping', ['-n', '-q', '-i', '0.002', '-c', String(o.warmPings), OVERLAY.ips[1]], o.warmPings * 10 + 15_000);
  const caps = points.map(([n, ns, dev]) => t.lab.spawnIn(ns, 'tcpdump', ['-i', dev, '--immediate-mode', '-U', '-n', '-w', `${t.lab.dir}/${n}.pcap`, 'icmp or udp port 4789'], `${n}-tcpdump.log`));
  await sleep(1500);
  await t.lab.exec(t.containers[0], 'ping', ['-n', '-i', String(o.pingIntervalMs / 1000), '-c', String(o.pings), OVERLAY.ips[1]], o.pings * (o.pingIntervalMs + 10) + 15_000);
  await sleep(300);
  for (const c of caps) await t.lab.stopProcess(c, 'SIGINT');
  const times = new Map<string, Record<string, number>>();
  for (const [n] of points) parseTcpdump((await run('tcpdump', ['-r', `${t.lab.dir}/${n}.pcap`, '-tt', '-n'])).stdout, n, times);
  const rows = ['| Direction | Hop | p50 µs | p90 µs | p99 µs | max µs | n |', '|:---|:---|---:|---:|---:|---:|---:|'];
  for (const [kind, a, b] of HOPS) {
    const ds: number[] = [];
    for (const [k, rec] of times) if (k.startsWith(kind) && rec[a] && rec[b]) ds.push((rec[b] - rec[a]) * 1e6);
    rows.push(`| ${kind} | ${POINT_NAMES[a]} → ${POINT_NAMES[b]} | ${fmtNum(percentile(ds, 50))} | ${fmtNum(percentile(ds, 90))} | ${fmtNum(percentile(ds, 99))} | ${fmtNum(ds.length > 0 ? Math.max(...ds) : NaN)} | ${ds.length} |`);
  }
  return rows;
}

/** /proc/stat "cpu" line: user nice system idle iowait irq softirq steal … (ticks). */
function procStat(): number[] {
  return readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
}

function threadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const s = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
      out.set(`${pid}/${tid}`, Number(f[11]) + Number(f[12]));
    }
  } catch {
    /* process gone */
  }
  return out;
}

const BUCKETS: [string, RegExp][] = [
  ['write() to TAP (incl. bridge + container stack inline)', /^ksys_write$/],
  ['read() from TAP', /^ksys_read$/],
  ['sendmmsg() VXLAN out (incl. underlay delivery inline)', /^__x64_sys_sendmmsg$/],
  ['recvmmsg() VXLAN in', /^__x64_sys_recvmmsg$/],
  ['epoll wait / wakeup', /^do_epoll_wait$/],
];

/** Per-thread (perf's "pid" column) split of perf samples: syscall buckets (inclusive) and user space (self, non-kernel). */
export function perfBreakdown(children: string, dsos: string): Map<number, { total: number; user: number; kernel: number; buckets: Map<string, number> }> {
  const out = new Map<number, { total: number; user: number; kernel: number; buckets: Map<string, number> }>();
  for (const line of dsos.split('\n')) {
    const m = /^\s*([\d.]+)%\s+(\d+):\S+\s+(.+?)\s*$/.exec(line);
    if (!m) continue;
    const pid = Number(m[2]);
    const e = out.get(pid) ?? { total: 0, user: 0, kernel: 0, buckets: new Map<string, number>() };
    const v = Number(m[1]);
    e.total += v;
    if (m[3] === '[kernel.kallsyms]') e.kernel += v;
    else e.user += v;
    out.set(pid, e);
  }
  for (const line of children.split('\n')) {
    const m = /^\s*([\d.]+)%\s+[\d.]+%\s+(\d+):\S+\s+\[.\]\s+(\S+)/.exec(line);
    if (!m) continue;
    const e = out.get(Number(m[2]));
    const b = BUCKETS.find(([, re]) => re.test(m[3]));
    if (e && b) e.buckets.set(b[0], (e.buckets.get(b[0]) ?? 0) + Number(m[1]));
  }
  return out;
}

async function cpuProfile(sys: OverlaySystem, t: Topology, o: ProfileOpts): Promise<string[]> {
  const out: string[] = [];
  const pids = sys.pids();
  await startIperfServer(t.lab, t.containers[1]);
  const client = t.lab.exec(t.containers[0], 'iperf3', ['-c', OVERLAY.ips[1], '-t', String(o.seconds), '-J'], (o.seconds + 20) * 1000);
  await sleep(1000);
  const window = Math.max(1, o.seconds - 2);
  const s0 = procStat();
  const t0 = new Map(pids.flatMap((p) => [...threadTicks(p)]));
  const perfFile = `${t.lab.dir}/perf.data`;
  const perf = which('perf')
    ? run('perf', ['record', '-q', '-o', perfFile, '-g', '-F', '999', '-p', pids.join(','), '--', 'sleep', String(window)], { timeoutMs: (window + 30) * 1000 })
    : undefined;
  await sleep(window * 1000);
  const t1 = new Map(pids.flatMap((p) => [...threadTicks(p)]));
  const s1 = procStat();
  const r = await client;
  const tck = await clockTicks();
  let gbps = NaN;
  try {
    gbps = (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
  } catch {
    /* reported below as — */
  }
  out.push(`TCP 1 stream for ${o.seconds} s: ${fmtNum(gbps)} Gbit/s. Agent threads busy during a ${window} s window:`, '');
  out.push('| Host | Thread | % of one core | CPU s per GB carried |', '|:---|:---|---:|---:|');
  const gb = (gbps * window) / 8; // payload GB over the window, at the test's average rate
  pids.forEach((pid, i) => {
    const host = t.hosts[i].name;
    let total = 0;
    for (const [tid, v] of t1) {
      if (!tid.startsWith(`${pid}/`)) continue;
      const d = v - (t0.get(tid) ?? 0);
      total += d;
      if (d / tck / window > 0.02) out.push(`| ${host} | ${tid} | ${fmtNum((100 * d) / tck / window)} | |`);
    }
    out.push(`| ${host} | all threads | ${fmtNum((100 * total) / tck / window)} | ${fmtNum(total / tck / gb)} |`);
  });
  const ds = s1.map((v, i) => v - (s0[i] ?? 0));
  const all = ds.reduce((x, y) => x + y, 0) || 1;
  const share = (i: number): string => fmtNum((100 * ds[i]) / all);
  out.push('', `Whole machine over the window (all ${os.cpus().length} cores, every process incl. other tenants): user ${share(0)}%, ` +
    `system ${share(2)}%, softirq ${share(6)}%, idle ${share(3)}%.`, '');
  if (!perf) return [...out, '`perf` is not installed: no per-syscall split.'];
  const pr = await perf;
  if (pr.code !== 0) return [...out, `perf record failed: ${pr.stderr.trim().split('\n').slice(-1)[0]}`];
  const children = await run('perf', ['report', '-i', perfFile, '--children', '--sort', 'pid,sym', '-g', 'none', '--stdio'], { timeoutMs: 120_000 });
  const dsos = await run('perf', ['report', '-i', perfFile, '--no-children', '--sort', 'pid,dso', '-g', 'none', '--stdio'], { timeoutMs: 120_000 });
  // perf's "pid" column is the thread id: fold threads into their agent process.
  const byTid = perfBreakdown(children.stdout, dsos.stdout);
  const b = new Map<number, { total: number; user: number; kernel: number; buckets: Map<string, number> }>();
  const ownerOf = (tid: number): number => {
    const owner = [...t1.keys()].find((k) => k.endsWith(`/${tid}`));
    return owner ? Number(owner.split('/')[0]) : tid;
  };
  for (const [tid, e] of byTid) {
    const pid = ownerOf(tid);
    const acc = b.get(pid) ?? { total: 0, user: 0, kernel: 0, buckets: new Map<string, number>() };
    acc.total += e.total;
    acc.user += e.user;
    acc.kernel += e.kernel;
    for (const [k, v] of e.buckets) acc.buckets.set(k, (acc.buckets.get(k) ?? 0) + v);
    b.set(pid, acc);
  }
  out.push('perf samples of each agent, % of that agent\'s samples (syscalls inclusive of the kernel work they trigger):', '');
  const heads = t.hosts.map((h) => h.name);
  out.push(`| Where | ${heads.join(' | ')} |`, `|:---|${heads.map(() => '---:').join('|')}|`);
  const cols = pids.map((p) => b.get(p));
  const pct = (x: number | undefined, tot: number | undefined): string => (x !== undefined && tot ? fmtNum((100 * x) / tot) : '—');
  for (const [name] of BUCKETS) out.push(`| ${name} | ${cols.map((c) => pct(c?.buckets.get(name) ?? 0, c?.total)).join(' | ')} |`);
  out.push(`| user space (JS, V8, libuv, addon, libc) | ${cols.map((c) => pct(c?.user, c?.total)).join(' | ')} |`);
  out.push(`| kernel, all | ${cols.map((c) => pct(c?.kernel, c?.total)).join(' | ')} |`);
  // Hottest user-space symbols (JS names resolve through the agents' --perf-basic-prof maps).
  const syms = await run('perf', ['report', '-i', perfFile, '--no-children', '--sort', 'pid,sym', '-g', 'none', '--stdio'], { timeoutMs: 120_000 });
  pids.forEach((pid, i) => {
    const rows = topUserSymbols(syms.stdout, (tid) => ownerOf(tid) === pid, b.get(pid)?.total ?? 0, 10);
    if (rows.length) out.push('', `Hottest user-space symbols on ${t.hosts[i].name} (% of that agent's samples):`, '', '| % | Symbol |', '|---:|:---|', ...rows);
  });
  return out;
}

/** Top `n` user-space ([.]) symbols of the threads `mine` selects, as markdown rows. */
export function topUserSymbols(report: string, mine: (tid: number) => boolean, total: number, n: number): string[] {
  const acc = new Map<string, number>();
  for (const line of report.split('\n')) {
    const m = /^\s*([\d.]+)%\s+(\d+):\S+\s+\[\.\]\s+(.+?)\s*$/.exec(line);
    if (m && mine(Number(m[2]))) acc.set(m[3], (acc.get(m[3]) ?? 0) + Number(m[1]));
  }
  return [...acc].sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([sym, v]) => `| ${total ? fmtNum((100 * v) / total) : '—'} | \`${sym.replace(/\|/g, '\\|').slice(0, 110)}\` |`);
}

/** Profile one system; returns markdown lines. Cleans up its lab. */
export async function profileSystem(sys: OverlaySystem, o: ProfileOpts): Promise<string[]> {
  const out = [`## ${sys.label}`, ''];
  const pidsToUnmap: number[] = [];
  const lab = new Lab();
  o.onLab(lab, true);
  try {
    await lab.start();
    const h1 = await lab.addHost('h1');
    const h2 = await lab.addHost('h2');
    const t: Topology = { lab, hosts: [h1, h2], containers: [await lab.addContainer(h1, 'c'), await lab.addContainer(h2, 'c')] };
    // Agents write /tmp/perf-<pid>.map so that perf can name JIT-compiled JS functions.
    if (which('perf') && process.env.TAPMESH_AGENT_NODE_FLAGS === undefined) process.env.TAPMESH_AGENT_NODE_FLAGS = '--perf-basic-prof';
    await sys.setup(t, (m) => o.progress(`${sys.label}: ${m}`));
    pidsToUnmap.push(...sys.pids());
    await setUnderlayOffload(t, o.underlayOffload);
    await waitReachable(lab, t.containers[0], OVERLAY.ips[1], 20_000);
    o.progress(`${sys.label}: hop latency, ${o.pings} pings under tcpdump …`);
    out.push(`Per-hop latency (${o.pings} pings at ${o.pingIntervalMs} ms${o.warmPings > 0 ? ` after ${o.warmPings} at 2 ms` : ''}, tcpdump timestamps; capturing adds a little to every hop):`, '', ...(await hopLatency(t, o)), '');
    if (sys.pids().length) {
      o.progress(`${sys.label}: CPU profile during TCP 1 stream for ${o.seconds} s …`);
      out.push(...(await cpuProfile(sys, t, o)), '');
    }
    return out;
  } catch (e) {
    o.progress(`${sys.label}: profile FAILED: ${(e as Error).message}`);
    return [...out, `FAILED: ${(e as Error).message}`, ''];
  } finally {
    await lab.cleanup();
    for (const pid of pidsToUnmap) rmSync(`/tmp/perf-${pid}.map`, { force: true });
    o.onLab(lab, false);
  }
}
