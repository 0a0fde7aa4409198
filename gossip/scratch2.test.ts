import { test } from 'vitest';
import { SimCluster, simAddr } from './sim-cluster.js';
import { SimNetwork } from './sim.js';
import { decodePacket } from './codec.js';

test('scratch', async () => {
  const c = new SimCluster(50, { seed: 2, profile: 'lan', loss: 0.1, latency: 2, jitter: 3, config: { tcpPing: false } });
  await c.startAll(20);
  c.net.runUntil(() => c.converged(), 60_000);
  const target = c.nodes[11].id;
  const names = new Map(c.nodes.map((n, i) => [simAddr(i), i]));
  const sends: string[] = [];
  const orig = SimNetwork.prototype.sendPacket;
  SimNetwork.prototype.sendPacket = function (from, to, data) {
    const now = c.net.now();
    if (now > 557800 && now < 600000) {
      const msgs = decodePacket(data, () => {});
      const m = msgs.find((m) => m.t === 'alive' && m.node === target && m.inc === 4);
      if (m) sends.push(`${now.toFixed(0)} v${names.get(from)}->v${names.get(to)} [${msgs.map((x) => x.t).join(',')}]`);
    }
    return orig.call(this, from, to, data);
  };
  c.net.run(600_000 - c.net.now());
  const dest = new Map<string, number>();
  for (const s of sends) { const d = s.split('->')[1].split(' ')[0]; dest.set(d, (dest.get(d) ?? 0) + 1); }
  console.log(sends.length, [...dest].sort().join(' '));
  console.log(sends.slice(0, 30).join('\n'));
}, 600000);
