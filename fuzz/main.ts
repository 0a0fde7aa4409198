// `npm run fuzz`: hostile input at volume into every parser that faces the outside, on the real
// code paths. Mutations of valid samples and random bytes from one seeded PRNG (the seed is
// printed; `--seed N` replays a run). Exit status 1 if any target saw an exception escape or
// counters that do not add up.
//   npm run fuzz                      full run (10 M inputs per parser)
//   npm run fuzz -- --quick           a CI-sized run (1/200 of that)
//   npm run fuzz -- --only dns --count 100000 --seed 7
//   npm run fuzz -- --minutes 5       at most 5 minutes per target (the report says where it stopped)
import { parseArgs } from 'node:util';
import type { FuzzResult, FuzzTarget } from './mutate.js';
import { apiTarget } from './targets/api.js';
import { dnsTarget } from './targets/dns.js';
import { espTarget } from './targets/esp.js';
import { gossipPacketTarget, gossipStreamTarget } from './targets/gossip.js';
import { tapTarget } from './targets/tap.js';
import { vxlanTarget } from './targets/vxlan.js';

const TARGETS: Record<string, FuzzTarget> = {
  vxlan: vxlanTarget, tap: tapTarget, 'gossip-packet': gossipPacketTarget, 'gossip-stream': gossipStreamTarget, dns: dnsTarget, esp: espTarget, api: apiTarget,
};
const QUICK_DIVISOR = 200;

function fmt(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(Math.round(n));
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      seed: { type: 'string' },
      only: { type: 'string', multiple: true },
      count: { type: 'string' },
      minutes: { type: 'string' },
    },
  });
  const seed = values.seed !== undefined ? Number(values.seed) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
  const names = values.only ?? Object.keys(TARGETS);
  for (const n of names) if (!TARGETS[n]) throw new Error(`unknown target ${n} (${Object.keys(TARGETS).join(', ')})`);
  console.log(`fuzz: seed ${seed} (replay with --seed ${seed}); targets ${names.join(', ')}${values.quick ? ' (quick)' : ''}`);
  const results: FuzzResult[] = [];
  for (const [i, name] of names.entries()) {
    const t = TARGETS[name];
    const count = values.count !== undefined ? Number(values.count) : values.quick ? Math.ceil(t.count / QUICK_DIVISOR) : t.count;
    const until = values.minutes !== undefined ? performance.now() + Number(values.minutes) * 60_000 : Infinity;
    const r = await t.run(count, (seed + i * 0x9e3779b9) >>> 0, until);
    if (r.inputs < count) r.note = `${r.note ? `${r.note}; ` : ''}stopped by --minutes after ${fmt(r.inputs)} of ${fmt(count)}`;
    results.push(r);
    const status = r.failures.length === 0 ? 'ok' : 'FAIL';
    console.log(`${status.padEnd(4)} ${name.padEnd(14)} ${fmt(r.inputs).padStart(8)} inputs in ${r.seconds.toFixed(1).padStart(6)} s = ${fmt(r.inputs / r.seconds).padStart(8)}/s; ` +
      `rejected ${fmt(r.rejected)}, accepted ${fmt(r.accepted)}${r.note ? `; ${r.note}` : ''}`);
    for (const f of r.failures) console.log(`     ${f}`);
  }
  const failed = results.filter((r) => r.failures.length > 0);
  console.log(failed.length === 0 ? 'fuzz: no crash, no exception escaped, every rejection counted' : `fuzz: ${failed.length} target(s) failed (seed ${seed})`);
  return failed.length === 0 ? 0 : 1;
}

process.on('uncaughtException', (e) => {
  console.error('fuzz: uncaught exception (a crash of the code under test):', e);
  process.exit(2);
});
main().then((code) => process.exit(code), (e: Error) => {
  console.error(`fuzz: ${e.message}`);
  process.exit(2);
});
