// CPU-time microbench of the encrypted datapath against the plain one, for a loaded machine where
// iperf3 figures swing: `node dist/bench/esp-micro.js [--bursts N] [--ms M]`. Each case runs the
// production Datapath (decode, stages, segmentation, seal / GRO split, open, coalescing) over
// bench ports that copy prebuilt frames into the slabs and count what is sent, plain and encrypted
// alternately in bursts of about M ms, and reports the median CPU time (process.cpuUsage) per
// unit over N bursts each. Units: one 64 KB TCP super-frame from the TAP (egress) and one GRO run
// of the datagrams it became (ingress), each at its network's default MTU (1450 plain, 1408
// encrypted), also given per payload KiB so that the two MSS compare.
// ESP_MICRO_ONLY=text runs only matching cases; ESP_MICRO_FIX=plain|enc runs one side only (for
// `node --cpu-prof`).
import { randomBytes } from 'node:crypto';
import { native } from '../native/index.js';
import { A, B, BenchTap, BenchUdp, DST, MAC_A, MAC_B, SRC, tcpFrame } from './bench-ports.js';
import { Datapath } from '../router/datapath.js';
import { macParts } from '../router/wire/addr.js';
import { ENCRYPTED_DEFAULT_MTU, ESP_UDP_PORT, PLAIN_DEFAULT_MTU, useNativeSum } from '../router/wire/index.js';
import { DEFAULT_SA_LIFETIMES } from '../crypto/sa.js';

const n = native();
useNativeSum(n.csumSum, n.csumBatch); // as the agent's native ports do

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const BURSTS = arg('bursts', 15);
const MS = arg('ms', 40);
const ONLY = process.env.ESP_MICRO_ONLY;
const FIX = process.env.ESP_MICRO_FIX;

const cpuNs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** One side of a case: a run() that does one unit of work and returns its payload bytes. */
type Side = () => number;

function ab(name: string, plain: Side, enc: Side): void {
  if (ONLY !== undefined && !name.includes(ONLY)) return;
  const sides = FIX === 'plain' ? [plain, plain] : FIX === 'enc' ? [enc, enc] : [plain, enc];
  const reps = [1, 1];
  for (let s = 0; s < 2; s++) {
    for (;;) {
      const t = cpuNs();
      for (let i = 0; i < reps[s]; i++) sides[s]();
      if (cpuNs() - t > MS * 1e6 / 4 || reps[s] > 1e6) break;
      reps[s] *= 2;
    }
    reps[s] *= 4;
  }
  for (let k = 0; k < 4; k++) for (let i = 0; i < reps[k & 1]; i++) sides[k & 1]();
  const ns: [number[], number[]] = [[], []];
  const perKiB: [number[], number[]] = [[], []];
  for (let k = 0; k < BURSTS * 2; k++) {
    const s = k & 1;
    let bytes = 0;
    const t = cpuNs();
    for (let i = 0; i < reps[s]; i++) bytes += sides[s]();
    const dt = cpuNs() - t;
    ns[s].push(dt / reps[s]);
    perKiB[s].push(dt / (bytes / 1024));
  }
  const [pu, eu] = [median(ns[0]), median(ns[1])];
  const [pk, ek] = [median(perKiB[0]), median(perKiB[1])];
  console.log(`${name.padEnd(40)} plain ${pu.toFixed(0).padStart(7)} ns (${pk.toFixed(0)} ns/KiB)   encrypted ${eu.toFixed(0).padStart(7)} ns (${ek.toFixed(0)} ns/KiB)   enc/plain per KiB ${(ek / pk).toFixed(2)}×`);
}

// ---- bench ports: bench-ports.ts ---------------------------------------------------------------


// ---- frames: bench-ports.ts (tcpFrame) -----------------------------------------------------------

const VNI = 4096;
const THL = 32; // TCP header with timestamps, as Linux sends

function host(addr: number, peer: number, encrypted: boolean, frame: Buffer, mtu: number) {
  const rx = new BenchUdp(4789, true, true, 'batch');
  const tx = new BenchUdp(40000, true, false, 'batch');
  const espRx = new BenchUdp(ESP_UDP_PORT, true, true, 'batch');
  rx.from = espRx.from = peer;
  const dp = new Datapath(rx, [tx], { vxlanPort: 4789, batch: 64, espRx });
  const tap = new BenchTap(true, frame);
  const net = dp.addNetwork(VNI, mtu, tap, encrypted);
  return { dp, tap, net, rx, tx, espRx };
}

/** Two hosts A → B on one network; with `encrypted`, an SA A → B. */
function pair(encrypted: boolean) {
  const mtu = encrypted ? ENCRYPTED_DEFAULT_MTU : PLAIN_DEFAULT_MTU;
  const mss = mtu - 20 - THL;
  const segs = Math.floor(65000 / mss);
  const frame = tcpFrame(segs * mss, mss); // TSO super-frame: virtio header (GSO TCPv4, NEEDS_CSUM)
  const a = host(A, B, encrypted, frame, mtu);
  const b = host(B, A, encrypted, frame, mtu);
  a.dp.setLocal(VNI, ...macParts(MAC_A), SRC);
  b.dp.setLocal(VNI, ...macParts(MAC_B), DST);
  a.dp.setRemote(VNI, ...macParts(MAC_B), DST, B, false);
  b.dp.setRemote(VNI, ...macParts(MAC_A), SRC, A, false);
  const km = { spi: 0x1234567, key: new Uint8Array(randomBytes(16)), salt: new Uint8Array(randomBytes(4)) };
  if (encrypted) {
    b.dp.sas.installInbound(A, km, 1000);
    a.dp.sas.setOutbound(B, km, { ...DEFAULT_SA_LIFETIMES, rekeyAfterMs: 1e12, rejectAfterMs: 1e12 });
  }
  const payload = segs * mss;
  // Record the run A sends, for B to receive.
  a.tap.pending = 1;
  a.dp.pumpTap(a.net);
  const run = a.tx.run;
  if (run === null) throw new Error(`${encrypted ? 'encrypted' : 'plain'}: A sent nothing`);
  const bRx = encrypted ? b.espRx : b.rx;
  bRx.run = run;
  bRx.seg = a.tx.seg;
  const window = encrypted ? b.dp.sas.inbound.get(km.spi)!.window : null;
  const egress = (): number => {
    a.tap.pending = 1;
    a.dp.pumpTap(a.net);
    return payload;
  };
  const ingress = (): number => {
    window?.reset(); // the same sealed run again: not a replay for this bench
    bRx.pending = 1;
    if (encrypted) b.dp.pumpEsp();
    else b.dp.pumpUdp();
    return payload;
  };
  // Check once that B delivers the whole super-frame.
  const before = b.tap.writtenBytes;
  ingress();
  if (b.tap.writtenBytes - before < payload) throw new Error(`${encrypted ? 'encrypted' : 'plain'}: B delivered ${b.tap.writtenBytes - before} of ${payload} payload bytes`);
  return { egress, ingress, segs, mss, runLen: run.length };
}

// ---- cases -----------------------------------------------------------------------------------

const os = await import('node:os');
if (FIX === undefined) console.log(`ESP CPU microbench: median of ${BURSTS} alternating bursts of ~${MS} ms each; node ${process.version}; load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
const plain = pair(false);
const enc = pair(true);
if (FIX === undefined) console.log(`plain: ${plain.segs} segments of MSS ${plain.mss}; encrypted: ${enc.segs} segments of MSS ${enc.mss}`);
ab(`egress: TSO super-frame → GSO run`, plain.egress, enc.egress);
ab(`ingress: GRO run → TAP super-frame`, plain.ingress, enc.ingress);
