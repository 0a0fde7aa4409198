// The faults the soak injects, each one function that records what it did and how the cluster
// took it: detection (every other host shows the victim not Ready and forwards nothing to it)
// and convergence after the fault is lifted (membership, endpoint lists and forwarding equal
// the truth everywhere, and one container per host pings every container on the other hosts).
// 1. kill -9 of an agent, restart after a pause, the same start style as before;
// 2. partition: the host's underlay link down (`ip link set ul0 down`) and back up;
// 3. loss: nftables `numgen random mod 10 0 drop` on gossip and VXLAN packets in every host.
import { must, run, sleep, type Host } from '../harness/lab.js';
import { badForwarding, endpointDiff, membershipDiff, snapshot, type DownWindow } from './checks.js';
import type { Scene } from './scene.js';

export interface FaultRecord {
  kind: string;
  target: string;
  startedAt: number;
  liftedAt: number;
  /** ms from the fault to every other host noticing it (kill, partition). */
  detectedMs?: number;
  /** ms from lifting the fault to full convergence; undefined if it did not converge in time. */
  convergedMs?: number;
  problems: string[];
  notes: string[];
}

export interface FaultContext {
  detectionMs: number;
  convergeTimeoutMs: number;
  windows: DownWindow[];
}

/** Poll until every host noticed the change (membership and forwarding as the truth says). */
async function waitDetected(s: Scene, since: number, ctx: FaultContext): Promise<{ ms?: number; left: string[] }> {
  let left: string[] = [];
  while (Date.now() - since < ctx.detectionMs) {
    // No lock: membership and forwarding at known MACs do not depend on a churn operation in flight.
    const snap = await snapshot(s);
    left = [...membershipDiff(s, snap), ...badForwarding(s, snap, new Map(), Infinity)];
    if (left.length === 0) return { ms: snap.at - since, left };
    await sleep(200);
  }
  return { left };
}

/** Control plane equal to the truth, then the data plane: each host's first container reaches all others. */
export async function waitConverged(s: Scene, since: number, timeoutMs: number): Promise<{ ms?: number; left: string[] }> {
  let left: string[] = [];
  while (Date.now() - since < timeoutMs) {
    const snap = await s.exclusive(() => snapshot(s));
    left = [...membershipDiff(s, snap), ...endpointDiff(s, snap)];
    if (left.length === 0) left = await dataPlaneGaps(s);
    if (left.length === 0) return { ms: Date.now() - since, left };
    await sleep(250);
  }
  return { left };
}

async function dataPlaneGaps(s: Scene): Promise<string[]> {
  const stable = s.stable();
  const out: string[] = [];
  await Promise.all(s.hosts.map(async (h) => {
    const from = stable.find((c) => c.host === h);
    const targets = stable.filter((c) => c.host !== h).map((c) => c.ip);
    if (!from || targets.length === 0) return;
    const r = await s.lab.exec(from.ns, 'fping', ['-q', '-t', '300', '-r', '1', ...targets], 10_000);
    if (r.code !== 0) out.push(`${from.ns}: ${r.stderr.trim().split('\n').slice(0, 3).join('; ')}`);
  }));
  return out;
}

function finish(rec: FaultRecord, phase: string, r: { ms?: number; left: string[] }, limitMs: number): number | undefined {
  if (r.ms === undefined) rec.problems.push(`${phase} not within ${limitMs} ms: ${r.left.slice(0, 4).join('; ')}${r.left.length > 4 ? ` (+${r.left.length - 4})` : ''}`);
  else if (r.ms > limitMs) rec.problems.push(`${phase} took ${r.ms} ms, over ${limitMs} ms (the last poll began in time)`);
  return r.ms;
}

/** 1. kill -9, hold it down for downMs (at least until detected), restart the same way. */
export async function killAndRestart(s: Scene, hs: Host[], downMs: number, ctx: FaultContext): Promise<FaultRecord> {
  const rec: FaultRecord = { kind: 'kill -9, restart', target: hs.map((h) => `${h.name} (${s.agents.get(h)!.via})`).join(' + '), startedAt: Date.now(), liftedAt: 0, problems: [], notes: [] };
  const win: DownWindow = { from: rec.startedAt, to: Infinity, hosts: hs.map((h) => h.name) };
  ctx.windows.push(win);
  await s.exclusive(async () => {
    for (const h of hs) await s.kill9(h);
  });
  rec.detectedMs = finish(rec, 'detection', await waitDetected(s, rec.startedAt, ctx), ctx.detectionMs);
  await sleep(Math.max(0, rec.startedAt + downMs - Date.now()));
  rec.liftedAt = Date.now();
  await s.exclusive(() => Promise.all(hs.map((h) => s.start(h)))); // together, as after a host reboot
  rec.notes.push(`restart answered after ${Date.now() - rec.liftedAt} ms`);
  rec.convergedMs = finish(rec, 'convergence', await waitConverged(s, rec.liftedAt, ctx.convergeTimeoutMs), ctx.convergeTimeoutMs);
  win.to = Date.now() + ctx.detectionMs;
  return rec;
}

/** 2. The host's underlay link down for holdMs (a partition from every other host), then up. */
export async function partition(s: Scene, h: Host, holdMs: number, ctx: FaultContext): Promise<FaultRecord> {
  const rec: FaultRecord = { kind: 'underlay link down', target: `${h.name} for ${holdMs / 1000} s`, startedAt: Date.now(), liftedAt: 0, problems: [], notes: [] };
  const win: DownWindow = { from: rec.startedAt, to: Infinity, hosts: [h.name] };
  ctx.windows.push(win);
  await s.exclusive(async () => {
    await must('ip', ['-n', h.ns, 'link', 'set', 'ul0', 'down']);
    s.partitioned.add(h);
  });
  rec.detectedMs = finish(rec, 'detection (both sides)', await waitDetected(s, rec.startedAt, ctx), ctx.detectionMs);
  await sleep(Math.max(0, rec.startedAt + holdMs - Date.now()));
  await s.exclusive(async () => {
    await must('ip', ['-n', h.ns, 'link', 'set', 'ul0', 'up']);
    s.partitioned.delete(h);
  });
  rec.liftedAt = Date.now();
  rec.convergedMs = finish(rec, 'convergence', await waitConverged(s, rec.liftedAt, ctx.convergeTimeoutMs), ctx.convergeTimeoutMs);
  win.to = Date.now() + ctx.detectionMs;
  return rec;
}

const LOSS_TABLE = 'tmsoak_loss';

/** The loss rules of one host: 1 in 10 gossip (UDP/TCP 7946) and VXLAN (UDP 4789) packets in, dropped and counted. */
function lossRules(): string {
  return `table inet ${LOSS_TABLE} {
  chain input {
    type filter hook input priority 0; policy accept;
    meta l4proto { tcp, udp } th dport { 4789, 7946 } numgen random mod 10 0 counter drop
    meta l4proto tcp th sport 7946 numgen random mod 10 0 counter drop
  }
}
`;
}

export async function removeLoss(s: Scene): Promise<void> {
  for (const h of s.hosts) await run('ip', ['netns', 'exec', h.ns, 'nft', 'delete', 'table', 'inet', LOSS_TABLE]);
}

/** 3. 10% loss on gossip and data packets in every host for holdMs; membership sampled all along. */
export async function loss(s: Scene, holdMs: number, ctx: FaultContext): Promise<FaultRecord> {
  const rec: FaultRecord = { kind: '10% loss (gossip + VXLAN, every host)', target: `all for ${holdMs / 1000} s`, startedAt: Date.now(), liftedAt: 0, problems: [], notes: [] };
  for (const h of s.hosts) await run('ip', ['netns', 'exec', h.ns, 'nft', '-f', '-'], { input: lossRules() }).then((r) => {
    if (r.code !== 0) throw new Error(`nft in ${h.ns}: ${r.stderr.trim()}`);
  });
  const notReady = new Set<string>();
  while (Date.now() - rec.startedAt < holdMs) {
    const snap = await s.exclusive(() => snapshot(s));
    for (const d of membershipDiff(s, snap)) notReady.add(d);
    await sleep(500);
  }
  let dropped = 0;
  for (const h of s.hosts) {
    const r = await run('ip', ['netns', 'exec', h.ns, 'nft', 'list', 'table', 'inet', LOSS_TABLE]);
    for (const m of r.stdout.matchAll(/counter packets (\d+)/g)) dropped += Number(m[1]);
  }
  await removeLoss(s);
  rec.liftedAt = Date.now();
  rec.notes.push(`${dropped} packets dropped by the rules`);
  if (notReady.size > 0) rec.notes.push(`not Ready at some sample: ${[...notReady].slice(0, 5).join('; ')}`);
  rec.convergedMs = finish(rec, 'convergence', await waitConverged(s, rec.liftedAt, ctx.convergeTimeoutMs), ctx.convergeTimeoutMs);
  return rec;
}
