// VXLAN datagrams into the datapath's receive path (Datapath.pumpUdp → processUdp), claiming to
// come from the tapmesh peer, the static VTEP, the host itself or a stranger. Every datagram
// must end in exactly one place: a drop counter, or vxlanRxPackets (accepted for a TAP).
// MACs learned from the static VTEP stay within the cap (scene.ts LEARN_CAP, which a run
// reaches), and an ageing sweep runs every SWEEP_EVERY pumps of 256 datagram slots (the agent's
// runs on a timer), so entries are also forgotten and learned again.
import { FLAG_LEARNED } from '../../router/learned.js';
import { Failures, Mutator, hex, type FuzzResult, type FuzzTarget } from '../mutate.js';
import { A, B, D, LEARN_CAP, S, STRANGER, counter, scene, sum, vxlanSamples } from './scene.js';

const GLOBAL = ['udpTruncated', 'vxlanShort', 'vxlanBadFlags', 'unknownVni'] as const;
const PER_NET = ['unknownVtep', 'spoofedSrcMac', 'spoofedSrcIp', 'remoteUnknownDst', 'remoteBroadcast', 'learnedFull'] as const;
const SWEEP_EVERY = 512;
const SOURCES = [B, B, B, B, S, S, S, A, STRANGER, STRANGER];

export const vxlanTarget: FuzzTarget = {
  name: 'vxlan datagrams (Datapath.processUdp)',
  count: 10_000_000,
  async run(count, seed) {
    // Half the inputs as single datagrams, half through a GRO-capable port (1 slot in 8 a run,
    // split by gro-split.ts as the native port does).
    const half = Math.floor(count / 2);
    const a = phase(half, seed, false);
    const b = phase(count - half, seed ^ 0x2468ace, true);
    return {
      name: this.name, inputs: count, rejected: a.rejected + b.rejected, accepted: a.accepted + b.accepted,
      seconds: a.seconds + b.seconds, failures: [...a.failures, ...b.failures],
      note: `${a.listed + b.listed} datagrams listed (GRO runs split); ${a.learned + b.learned} MACs learned from the static VTEP, ` +
        `${a.aged + b.aged} aged out, ${a.full + b.full} refused at the cap`,
    } satisfies FuzzResult;
  },
};

function phase(count: number, seed: number, gro: boolean) {
  const m = new Mutator(seed, vxlanSamples(), 9000);
  let last = 0;
  const sc = scene((dst, at, max) => {
    const len = Math.min(m.next(), max);
    m.out.copy(dst, at, 0, len);
    last = len;
    return len;
  }, () => 0, gro);
  sc.rx.from = () => SOURCES[m.int(SOURCES.length)];
  sc.rx.groSize = (len) => (m.int(8) === 0 && len > 1 ? 1 + m.int(len) : 0);
  const failures = new Failures();
  const t0 = performance.now();
  let done = 0;
  let pumps = 0;
  while (done < count) {
    const n = Math.min(256, count - done);
    sc.rx.pending = n;
    try {
      sc.dp.pumpUdp();
    } catch (e) {
      failures.add(`exception after input ${done}${gro ? ' (GRO)' : ''}: ${(e as Error).stack?.split('\n').slice(0, 3).join(' | ')} (last input ${hex(m.out, last)})`);
    }
    if (sc.rx.pending !== 0) failures.add(`the datapath left ${sc.rx.pending} slots unread in one pump`);
    sc.rx.pending = 0;
    done += n;
    if (++pumps % SWEEP_EVERY === 0) sc.dp.sweepLearned();
  }
  const seconds = (performance.now() - t0) / 1000;
  const nets = [sc.plain.net, sc.vnet.net];
  const rejected = sum(sc.dp.drops, GLOBAL) + nets.reduce((s, n) => s + sum(n.drops, PER_NET), 0);
  const accepted = nets.reduce((s, n) => s + counter(n, 'vxlanRxPackets'), 0);
  const listed = sc.rx.listed;
  if (rejected + accepted !== listed) failures.add(`counters do not add up: ${rejected} dropped + ${accepted} accepted != ${listed} datagrams`);
  for (const n of nets) {
    const delivered = counter(n, 'tapTxFrames') + n.drops[D.tapTxFull] + counter(n, 'groMerged');
    if (delivered !== counter(n, 'vxlanRxPackets')) failures.add(`VNI ${n.vni}: ${counter(n, 'vxlanRxPackets')} accepted but ${delivered} written, merged or counted tapTxFull`);
  }
  for (const n of nets) {
    let entries = 0;
    for (const [, , , flags] of n.remote.entries()) if (flags & FLAG_LEARNED) entries++;
    if (entries !== n.learned.count || entries > LEARN_CAP) failures.add(`VNI ${n.vni}: ${entries} learned entries, count ${n.learned.count}, cap ${LEARN_CAP}`);
  }
  const learned = nets.reduce((s, n) => s + counter(n, 'learned'), 0);
  const aged = nets.reduce((s, n) => s + counter(n, 'learnedAged'), 0);
  const full = nets.reduce((s, n) => s + n.drops[D.learnedFull], 0);
  return { rejected, accepted, seconds, failures: failures.done(), listed, learned, aged, full };
}
