import { test } from 'vitest';
import { SimCluster, simAddr } from './sim-cluster.js';

test('scratch', async () => {
  for (const tcpPing of [false, true]) {
  let tot = 0;
  for (let seed = 1; seed <= 16; seed++) {
    const t0 = Date.now();
    const c = new SimCluster(50, { seed, profile: 'lan', loss: 0.1, latency: 2, jitter: 3, config: { tcpPing } });
    await c.startAll(20);
    c.net.runUntil(() => c.converged(), 60_000);
    let dead = 0, susp = 0;
    c.nodes.forEach((n) => n.onMember((ev) => { if (ev.kind === 'dead') dead++; if (ev.kind === 'suspect') susp++; }));
    c.net.run(600_000);
    tot += dead;
    if (dead) console.log(`tcp ${tcpPing} seed ${seed}: loss dead=${dead} suspects=${susp}; ${Date.now() - t0} ms`);
  }
  console.log(`tcp ${tcpPing} total dead ${tot}`);
  }
}, 600000);
