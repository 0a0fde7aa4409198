import { test } from 'vitest';
import { SimCluster, simAddr } from './sim-cluster.js';
import { Membership } from './membership.js';

test('scratch', async () => {
  const c = new SimCluster(50, { seed: 1, profile: 'lan', loss: 0.1, latency: 2, jitter: 3, config: { tcpPing: false } });
  await c.startAll(20);
  c.net.runUntil(() => c.converged(), 60_000);
  const idx = new Map(c.nodes.map((n, i) => [n.id, i]));
  const trace: Array<[number, number, number, string]> = [];
  const oS = Membership.prototype.suspectNode, oA = Membership.prototype.aliveNode, oR = Membership.prototype.refute;
  Membership.prototype.suspectNode = function (s) { trace.push([c.net.now(), idx.get(this.self.id)!, idx.get(s.node)!, `suspect inc ${s.inc} from ${idx.get(s.from) ?? "''"} (have ${this.get(s.node)?.state}/${this.get(s.node)?.inc})`]); return oS.call(this, s); };
  Membership.prototype.aliveNode = function (a, q) { const m = this.get(a.node); if (m && a.inc > m.inc) trace.push([c.net.now(), idx.get(this.self.id)!, idx.get(a.node)!, `alive inc ${a.inc} (have ${m.state}/${m.inc})`]); return oA.call(this, a, q); };
  Membership.prototype.refute = function (x) { trace.push([c.net.now(), idx.get(this.self.id)!, idx.get(this.self.id)!, `REFUTE accused ${x}`]); return oR.call(this, x); };
  const deads: Array<[number, number, number, number]> = [];
  c.nodes.forEach((n, i) => n.onMember((ev) => { if (ev.kind === 'dead') deads.push([c.net.now(), i, idx.get(ev.member.id)!, ev.member.incarnation]); }));
  c.net.run(600_000);
  for (const [t, v, x, inc] of deads) {
    console.log(`DEAD at ${t.toFixed(0)} viewer ${v} about ${x} inc ${inc}`);
    console.log(trace.filter(([tt, vv, xx, s]) => tt > t - 45000 && tt <= t + 100 && xx === x && (vv === v || s.startsWith('REFUTE'))).map(([tt, vv, xx, s]) => `  ${tt.toFixed(0)} v${vv}: ${s}`).join('\n'));
  }
}, 600000);
