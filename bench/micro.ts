// CPU-time microbench of the datapath's per-frame code, for a loaded machine where iperf3 figures
// swing: `node dist/bench/micro.js [--bursts N] [--ms M] [--procs N]`. Each case runs A and B alternately in
// bursts of about M ms of work and reports the median CPU time (process.cpuUsage, user+system)
// per unit over N bursts each, so load from other processes shifts both sides alike.
// Cases: checksum sums (JS vs addon); the egress path of a 64 KB TSO super-frame (segmentation
// and its TCP checksums); the ingress path of a GRO run of 46 VXLAN datagrams (GRO split, stages,
// coalescing with per-segment verification); plain 1400-byte frames through egress (stage cost).
// The datapath runs its production code over bench ports that copy prebuilt frames into the
// slabs and count what is sent, allocating nothing per frame.
import { spawnSync } from 'node:child_process';
import { native } from '../native/index.js';
import { A, B, BenchTap, BenchUdp, DST, MAC_A, MAC_B, SRC, tcpFrame } from './bench-ports.js';
import { Datapath } from '../router/datapath.js';
import { tuneJitForDatapath } from '../router/jit.js';
import { macParts } from '../router/wire/addr.js';
import { onesSum, onesSumBytes, useNativeSum } from '../router/wire/index.js';
import { useNativeCopy } from '../router/copy.js';

// As the datapath worker does (router/jit.ts); MICRO_INLINE=default measures V8's default budget.
if (process.env.MICRO_INLINE !== 'default') tuneJitForDatapath();
const n = native();
const useNative = (on: boolean): void => {
  useNativeSum(on ? n.csumSum : null, on ? n.csumBatch : null);
  useNativeCopy(on ? n.copyBatch : null);
};

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const BURSTS = arg('bursts', 15);
const MS = arg('ms', 40);
/** MICRO_ONLY=text: only cases whose name contains it; MICRO_FIX=a|b: both sides run A (or B), for profiling. */
const ONLY = process.env.MICRO_ONLY;
const FIX = process.env.MICRO_FIX;
/** --procs N: datapath cases as N+N alternating child processes (0, the default: in-process). */
const PROCS = arg('procs', 0);

const cpuNs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/**
 * Alternate A and B bursts of `reps` calls of run(); returns the median ns per unit (run() returns
 * units done). reps is calibrated once so a burst takes about MS ms.
 */
function ab(name: string, a: [string, () => void], b: [string, () => void], run: () => number, separate = false): void {
  if (ONLY !== undefined && !name.includes(ONLY)) return;
  if (separate && PROCS > 0 && FIX === undefined) return abProcesses(name, a[0], b[0]);
  if (FIX === 'a') b = a;
  if (FIX === 'b') a = b;
  a[1]();
  let reps = 1;
  for (;;) {
    const t = cpuNs();
    for (let i = 0; i < reps; i++) run();
    if (cpuNs() - t > MS * 1e6 / 4 || reps > 1e7) break;
    reps *= 2;
  }
  reps *= 4;
  // Warm-up (JIT tiers settle) before anything counts: two bursts per side.
  for (let k = 0; k < 4; k++) {
    (k & 1 ? b : a)[1]();
    for (let i = 0; i < reps; i++) run();
  }
  const res: [number[], number[]] = [[], []];
  for (let k = 0; k < BURSTS * 2; k++) {
    const side = k & 1;
    (side === 0 ? a : b)[1]();
    let units = 0;
    const t = cpuNs();
    for (let i = 0; i < reps; i++) units += run();
    res[side].push((cpuNs() - t) / units);
  }
  const [ma, mb] = [median(res[0]), median(res[1])];
  if (FIX !== undefined) {
    console.log(`RESULT ${median([...res[0], ...res[1]])}`);
    return;
  }
  console.log(`${name.padEnd(44)} ${a[0]} ${ma.toFixed(1).padStart(8)} ns   ${b[0]} ${mb.toFixed(1).padStart(8)} ns   (${(ma / mb).toFixed(2)}×)`);
}

/**
 * A and B in separate processes, alternately (PROCS times each): switching the checksum function
 * inside one process leaves the datapath's optimized code tuned for the other side. Reports the
 * median over the processes' medians.
 */
function abProcesses(name: string, an: string, bn: string): void {
  const res: [number[], number[]] = [[], []];
  for (let k = 0; k < PROCS * 2; k++) {
    const side = k & 1;
    const r = spawnSync(process.execPath, process.argv.slice(1), {
      env: { ...process.env, MICRO_ONLY: name, MICRO_FIX: side === 0 ? 'a' : 'b' }, encoding: 'utf8',
    });
    const m = /RESULT (\S+)/.exec(r.stdout);
    if (!m) throw new Error(`child failed: ${r.stderr}`);
    res[side].push(Number(m[1]));
  }
  const [ma, mb] = [median(res[0]), median(res[1])];
  console.log(`${name.padEnd(44)} ${an} ${ma.toFixed(1).padStart(8)} ns   ${bn} ${mb.toFixed(1).padStart(8)} ns   (${(ma / mb).toFixed(2)}×, ${PROCS}+${PROCS} processes)`);
}

// ---- bench ports: bench-ports.ts ---------------------------------------------------------------

// ---- frames: bench-ports.ts ---------------------------------------------------------------------

function pair(vnet: boolean, frame: Buffer) {
  const mk = (addr: number, tapFrame: Buffer) => {
    const rx = new BenchUdp(4789, true, true);
    const tx = new BenchUdp(40000, true, false);
    rx.from = addr === A ? B : A;
    const dp = new Datapath(rx, [tx], { vxlanPort: 4789, batch: 64 });
    const tap = new BenchTap(vnet, tapFrame);
    const net = dp.addNetwork(4096, 1450, tap);
    return { dp, tap, net, rx, tx };
  };
  const a = mk(A, frame);
  const b = mk(B, frame);
  a.dp.setLocal(4096, ...macParts(MAC_A), SRC);
  b.dp.setLocal(4096, ...macParts(MAC_B), DST);
  a.dp.setRemote(4096, ...macParts(MAC_B), DST, B, false);
  b.dp.setRemote(4096, ...macParts(MAC_A), SRC, A, false);
  return { a, b };
}

// ---- cases -----------------------------------------------------------------------------------

const JS: [string, () => void] = ['JS', () => useNative(false)];
const NATIVE: [string, () => void] = ['addon', () => useNative(true)];

if (FIX === undefined) console.log(`CPU microbench: median of ${BURSTS} alternating bursts of ~${MS} ms each; node ${process.version}; load ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);

const data = Buffer.alloc(65536 + 8);
for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
for (const len of [64, 128, 256, 1400, 9000, 65000]) {
  let sink = 0;
  let side = 0;
  ab(`sum ${len} B at offset 2 (ns/call)`, ['JS', () => (side = 0)], ['addon', () => (side = 1)], () => {
    sink += side === 0 ? onesSumBytesOrWord(len) : n.csumSum(data, 2, len, 0);
    return 1;
  });
  if (sink < 0) console.log(sink);
}
function onesSumBytesOrWord(len: number): number {
  useNativeSum(null);
  return len >= 64 ? onesSum(data, 2, len, 0) : onesSumBytes(data, 2, len, 0);
}

{
  // Egress: one 64 KB TSO super-frame (MSS 1398) per unit: decode, segment, 46 TCP checksums.
  const { a } = pair(true, tcpFrame(46 * 1398, 1398));
  ab('egress: 64 KB TSO super-frame (ns/super-frame)', JS, NATIVE, () => {
    a.tap.pending = 1;
    a.dp.pumpTap(a.net);
    return 1;
  }, true);
  // Ingress: the GRO run that super-frame became (46+ datagrams) per unit: split, stages,
  // coalescing with one verification per segment, one TAP write.
  a.tap.pending = 1;
  a.dp.pumpTap(a.net); // the run to replay (when the egress case was filtered out)
  const { b } = pair(true, tcpFrame(100, 0));
  b.rx.run = a.tx.run;
  b.rx.seg = a.tx.seg;
  ab(`ingress: GRO run of ${Math.ceil(a.tx.run!.length / a.tx.seg)} datagrams (ns/datagram)`, JS, NATIVE, () => {
    b.rx.pending = 1;
    b.dp.pumpUdp();
    return Math.ceil(b.rx.run!.length / b.rx.seg);
  }, true);
  if (FIX !== undefined && ONLY !== undefined && 'ingress'.includes(ONLY) && b.tap.written === 0) throw new Error('ingress bench delivered nothing');
}
{
  // Stage cost: 64 plain 1400-byte TCP frames per batch through egress (no checksum work).
  const { a } = pair(false, tcpFrame(1400, 0));
  ab('egress: 1400 B frames, no offload (ns/frame)', JS, NATIVE, () => {
    a.tap.pending = 64;
    a.dp.pumpTap(a.net);
    return 64;
  }, true);
}
