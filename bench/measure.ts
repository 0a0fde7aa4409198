// The measuring tools: iperf3 (server in the destination container, client with JSON output and
// the server's own JSON), ping with per-packet times, and /proc readings for CPU and peak RSS.
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Lab } from '../test/harness/lab.js';
import { run, sleep } from '../test/harness/lab.js';
import { percentile } from './stats.js';

export const IPERF_PORT = 5201;

/** Start `iperf3 -s` in a namespace (PID remembered by the lab) and wait until it listens. */
export async function startIperfServer(lab: Lab, ns: string, port = IPERF_PORT): Promise<ChildProcess> {
  // -J makes the server's report JSON, which the client fetches with --get-server-output.
  const child = lab.spawnIn(ns, 'iperf3', ['-s', '-J', '-p', String(port)], `iperf3-server-${ns}.log`);
  const deadline = Date.now() + 5000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`iperf3 server in ${ns} exited with ${child.exitCode}`);
    const r = await lab.exec(ns, 'ss', ['-Hltn', `sport = :${port}`]);
    if (r.code === 0 && r.stdout.trim() !== '') return child;
    if (Date.now() > deadline) throw new Error(`iperf3 server in ${ns} not listening after 5 s`);
    await sleep(50);
  }
}

export interface IperfFigures {
  gbps: number;
  /** Payload bytes the receiver got. */
  bytes: number;
  seconds: number;
  /** UDP only: packets received per second and loss, both from the server side. */
  pps?: number;
  lossPct?: number;
  /** TCP only: sender retransmits. */
  retransmits?: number;
}

type Json = Record<string, unknown>;

function obj(x: unknown, what: string): Json {
  if (typeof x !== 'object' || x === null) throw new Error(`iperf3 JSON: missing ${what}`);
  return x as Json;
}

function num(x: unknown, what: string): number {
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new Error(`iperf3 JSON: missing number ${what}`);
  return x;
}

/** TCP figures from a client `-J` report (receiver side totals). */
export function parseIperfTcp(text: string): IperfFigures {
  const j = obj(JSON.parse(text), 'report');
  if (typeof j.error === 'string') throw new Error(`iperf3: ${j.error}`);
  const end = obj(j.end, 'end');
  const rcv = obj(end.sum_received, 'end.sum_received');
  const snt = obj(end.sum_sent, 'end.sum_sent');
  return {
    gbps: num(rcv.bits_per_second, 'sum_received.bits_per_second') / 1e9,
    bytes: num(rcv.bytes, 'sum_received.bytes'),
    seconds: num(rcv.seconds, 'sum_received.seconds'),
    retransmits: typeof snt.retransmits === 'number' ? snt.retransmits : undefined,
  };
}

/** UDP figures from the server's own report, as embedded by `--get-server-output`. */
export function parseIperfUdp(text: string): IperfFigures {
  const j = obj(JSON.parse(text), 'report');
  if (typeof j.error === 'string') throw new Error(`iperf3: ${j.error}`);
  const server = obj(j.server_output_json, 'server_output_json (needs --get-server-output)');
  if (typeof server.error === 'string') throw new Error(`iperf3 server: ${server.error}`);
  // The receiving server's totals are in end.sum_received (iperf3 3.12 leaves bytes 0 in end.sum).
  const end = obj(server.end, 'server end');
  const sum = obj(end.sum_received ?? end.sum, 'server end.sum_received');
  const packets = num(sum.packets, 'sum.packets');
  const lost = num(sum.lost_packets, 'sum.lost_packets');
  const seconds = num(sum.seconds, 'sum.seconds');
  const received = Math.max(0, packets - lost);
  return {
    gbps: num(sum.bits_per_second, 'sum.bits_per_second') / 1e9,
    bytes: num(sum.bytes, 'sum.bytes'),
    seconds,
    pps: seconds > 0 ? received / seconds : NaN,
    lossPct: packets > 0 ? (100 * lost) / packets : NaN,
  };
}

export interface IperfOpts {
  seconds: number;
  streams?: number;
  udpLen?: number;
  /** UDP target rate of payload, bit/s (iperf3 -b); absent: unlimited. */
  bitsPerSec?: number;
  /** Socket buffer of both ends, bytes (iperf3 -w; the server takes the client's); absent: the default. */
  window?: number;
  port?: number;
}

/** One iperf3 test from container `ns` to `dst`; throws with iperf3's own message on failure. */
export async function iperf(lab: Lab, ns: string, dst: string, o: IperfOpts): Promise<IperfFigures> {
  const args = ['-c', dst, '-p', String(o.port ?? IPERF_PORT), '-t', String(o.seconds), '-J', '--get-server-output',
    '--connect-timeout', '3000'];
  if (o.streams && o.streams > 1) args.push('-P', String(o.streams));
  if (o.udpLen !== undefined) args.push('-u', '-b', String(Math.round(o.bitsPerSec ?? 0)), '-l', String(o.udpLen));
  if (o.window !== undefined) args.push('-w', String(o.window));
  const r = await lab.exec(ns, 'iperf3', args, (o.seconds + 20) * 1000);
  if (r.code !== 0) {
    let msg = r.stderr.trim();
    try {
      const e = (JSON.parse(r.stdout) as Json).error;
      if (typeof e === 'string') msg = e;
    } catch {
      /* not JSON */
    }
    throw new Error(`iperf3 ${args.join(' ')} → exit ${r.code}: ${msg || 'no output (timeout?)'}`);
  }
  return o.udpLen !== undefined ? parseIperfUdp(r.stdout) : parseIperfTcp(r.stdout);
}

export interface PingFigures {
  sent: number;
  received: number;
  rttsMs: number[];
  p50Ms: number;
  p99Ms: number;
}

/** Per-reply RTTs (ms) from ping's normal, per-line output. */
export function parsePingTimes(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(/\btime[=<]([0-9.]+) ?ms\b/g)) out.push(Number(m[1]));
  return out;
}

export async function ping(lab: Lab, ns: string, dst: string, count: number, intervalS = 0.002): Promise<PingFigures> {
  const r = await lab.exec(ns, 'ping', ['-n', '-i', String(intervalS), '-c', String(count), '-W', '1', dst],
    Math.ceil(count * intervalS * 1000) + 15_000);
  const rtts = parsePingTimes(r.stdout);
  if (rtts.length === 0) throw new Error(`ping ${dst} from ${ns}: no replies (exit ${r.code}) ${r.stderr.trim()}`);
  return { sent: count, received: rtts.length, rttsMs: rtts, p50Ms: percentile(rtts, 50), p99Ms: percentile(rtts, 99) };
}

/** Wait until `dst` answers a ping from `ns` (setup check); throws after timeoutMs. */
export async function waitReachable(lab: Lab, ns: string, dst: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const r = await lab.exec(ns, 'ping', ['-n', '-c', '1', '-W', '1', dst], 5000);
    if (r.code === 0) return;
    last = (r.stdout + r.stderr).trim().split('\n').slice(-2).join(' ');
    if (Date.now() > deadline) throw new Error(`${dst} not reachable from ${ns} within ${timeoutMs / 1000} s: ${last}`);
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------------
// /proc readings for the agent processes

let clkTck: number | undefined;
export async function clockTicks(): Promise<number> {
  if (clkTck === undefined) {
    const r = await run('getconf', ['CLK_TCK']);
    const v = Number(r.stdout.trim());
    clkTck = r.code === 0 && v > 0 ? v : 100;
  }
  return clkTck;
}

/** utime+stime in clock ticks of a whole process (all threads); NaN when it is gone. */
export function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at field 3.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[11]) + Number(rest[12]); // fields 14 (utime) and 15 (stime)
  } catch {
    return NaN;
  }
}

/** Peak resident set (VmHWM) in kB; NaN when unavailable. */
export function peakRssKB(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Sum of CPU ticks over several PIDs. */
export function cpuTicksAll(pids: readonly number[]): number {
  return pids.reduce((a, p) => a + cpuTicks(p), 0);
}
