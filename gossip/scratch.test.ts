import { test } from 'vitest';
import { SimCluster } from './sim-cluster.js';

test('scratch', async () => {
  for (const n of [1000]) {
  const t0 = Date.now();
  const c = new SimCluster(n, { seed: 7, profile: 'lan' });
  await c.warmStart();
  console.log('warm', c.converged(), c.net.now(), Date.now() - t0, 'ms real', c.nodes[0].stats().queued, c.nodes[5].stats().queued);
  c.net.run(30_000);
  console.log('after 30s', c.converged(), Date.now() - t0, 'ms real', c.nodes[0].stats().queued, c.net.counters);
  const b0 = c.net.counters.bytesSent;
  c.net.run(30_000);
  console.log('bytes/node/s', (c.net.counters.bytesSent - b0) / n / 30, Date.now() - t0);
  c.crash(3);
  const crashAt = c.net.now();
  let first = -1;
  const ok2 = c.net.runUntil(() => { const st = c.live().map((x) => x.member(c.nodes[3].id)?.state); if (first < 0 && st.some((s) => s !== 'alive')) first = c.net.now() - crashAt; return st.every((s) => s === 'dead'); }, 120_000, 100);
  console.log('dead everywhere', ok2, first, c.net.now() - crashAt, Date.now() - t0);
  }
});
