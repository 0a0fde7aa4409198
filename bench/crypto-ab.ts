// A/B of the batched native AEAD rows (AES-128-GCM vs AES-256-GCM) that survives a busy machine:
// the two alternate in short bursts (8 rounds per size) and each burst is read as CPU time per
// packet (process.cpuUsage), which descheduling does not inflate; the median is reported, with
// the best wall-clock time beside it. Run: `node dist/bench/crypto-ab.js` (no root needed).
import { batchSealers } from '../crypto/bench-batch.js';

/** bench/crypto.ts's CRYPTO_SIZES, repeated so this file needs no dev dependency (noble). */
const CRYPTO_SIZES = [64, 512, 1400, 8900];
const ROUNDS = 8;
const BURST_MS = 60;

function burst(fn: () => number, ms: number): { cpuNs: number; wallNs: number } {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const end = performance.now() + ms;
  let p = 0;
  while (performance.now() < end) for (let i = 0; i < 8; i++) p += fn();
  const c = process.cpuUsage(c0);
  return { cpuNs: ((c.user + c.system) * 1000) / p, wallNs: Number(process.hrtime.bigint() - t0) / p };
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[a.length >> 1];

const all = batchSealers();
// Pairs by name: seal 128/256, open 128/256.
const pairs = [['seal aes-128', 'seal aes-256'], ['open aes-128', 'open aes-256']].map((p) => p.map((k) => all.find((s) => s.name.includes(k))!));
console.log('| per packet: CPU ns median (best wall ns) | ' + CRYPTO_SIZES.map((s) => `${s} B`).join(' | ') + ' |');
console.log('|:---|' + CRYPTO_SIZES.map(() => '---:').join('|') + '|');
for (const pair of pairs) {
  const cells = pair.map(() => [] as string[]);
  for (const size of CRYPTO_SIZES) {
    const fns = pair.map((s) => s.make(size));
    fns.forEach((f) => burst(f, BURST_MS / 2)); // warm-up
    const cpu = pair.map(() => [] as number[]), wall = pair.map(() => [] as number[]);
    for (let r = 0; r < ROUNDS; r++) {
      fns.forEach((f, k) => {
        const m = burst(f, BURST_MS);
        cpu[k].push(m.cpuNs);
        wall[k].push(m.wallNs);
      });
    }
    pair.forEach((_, k) => cells[k].push(`${median(cpu[k]).toFixed(0)} (${Math.min(...wall[k]).toFixed(0)})`));
  }
  pair.forEach((s, k) => console.log(`| ${s.name.split(' (')[0]} | ${cells[k].join(' | ')} |`));
}
