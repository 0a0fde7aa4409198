// The soak's report as markdown: faults with detection and convergence times, transfer counts,
// the checks with their numbers, member events, and every agent's RSS over time.
import type { MemberEvent, RssSample, RssVerdict } from './checks.js';
import type { FaultRecord } from './faults.js';
import type { TrafficStats } from './traffic.js';

export interface SoakResult {
  mode: string;
  startedAt: number;
  durationMs: number;
  wallMs: number;
  setup: string[];
  detectionMs: number;
  /** Gossip profile the agents ran (gossip/config.ts). */
  profile: string;
  faults: FaultRecord[];
  traffic: TrafficStats;
  duplicates: string[];
  badForwarding: string[];
  lost: string[];
  events: MemberEvent[];
  falseDowns: MemberEvent[];
  rss: RssSample[];
  rssVerdicts: RssVerdict[];
  warmupMs: number;
  /** 1-minute load average of the machine, sampled with the RSS. */
  load: number[];
  hosts: number;
  suspectBursts: number;
}

export function passed(r: SoakResult): boolean {
  return r.traffic.transfers.corrupt === 0 && r.duplicates.length === 0 && r.badForwarding.length === 0 && r.lost.length === 0 &&
    r.falseDowns.length === 0 && r.rssVerdicts.every((v) => v.ok) && r.faults.every((f) => f.problems.length === 0);
}

const s1 = (ms: number) => (ms / 1000).toFixed(1);
const ms = (v?: number) => (v === undefined ? '**not reached**' : `${v}`);
const mb = (kb: number) => (kb / 1024).toFixed(1);
const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
const list = (xs: string[], max = 10) => xs.slice(0, max).map((x) => `  - ${x}`).concat(xs.length > max ? [`  - … ${xs.length - max} more`] : []);

export function renderReport(r: SoakResult): string {
  const t = r.traffic.transfers;
  const out: string[] = [];
  out.push(`Run: \`npm run soak${r.mode === 'quick' ? ' -- --quick' : ''}\` on ${new Date(r.startedAt).toISOString().slice(0, 16)}Z; ${s1(r.durationMs)} s of load and faults, ${s1(r.wallMs)} s wall time with setup, checks and cleanup. Verdict: **${passed(r) ? 'PASS' : 'FAIL'}**.`, '');
  out.push(...r.setup.map((x) => `- ${x}`), `- Detection bound (${r.profile} profile, 5 members, derived from gossip/config.ts): ${r.detectionMs} ms.`,
    `- Machine (2 cores, shared): 1-minute load average during the run ${loadText(r.load)}.`, '');
  out.push('### Faults', '', row(['#', 'at (s)', 'fault', 'target', 'detected by all (ms)', 'converged after lifting (ms)', 'notes']), row(['---', '---', '---', '---', '---', '---', '---']));
  r.faults.forEach((f, i) => out.push(row([i + 1, s1(f.startedAt - r.startedAt), f.kind, f.target, f.detectedMs === undefined && !/^(kill|underlay)/.test(f.kind) ? '—' : ms(f.detectedMs), ms(f.convergedMs), [...f.notes, ...f.problems.map((p) => `PROBLEM: ${p}`)].join('; ') || ''])));
  out.push('', 'Converged = every running host shows every reachable host Ready, its own endpoints, every reachable endpoint and a forwarding entry at the right VTEP for each, and one container per host pings all containers on the other hosts.', '');
  out.push('### Checks', '', row(['check', 'result']), row(['---', '---']));
  out.push(row(['transfers intact / failed / corrupt', `${t.intact} / ${t.failed} / **${t.corrupt}** (${mb(t.bytesIntact / 1024)} MiB intact)`]));
  out.push(row(['addresses handed out twice (sampled all along and at the end)', `**${r.duplicates.length}**`]));
  out.push(row(['forwarding entries at a dead or wrong VTEP, once detection time had passed', `**${r.badForwarding.length}**`]));
  out.push(row(['endpoints lost (own list, cluster-wide view, forwarding; at the end)', `**${r.lost.length}**`]));
  const inLoss = (at: number) => r.faults.some((f) => f.kind.startsWith('10%') && at >= f.startedAt && at <= f.liftedAt + r.detectionMs);
  const underLoss = r.falseDowns.filter((e) => inLoss(e.at)).length;
  out.push(row(['false Down events (dead outside a kill/partition window, from cluster formation on)', `**${r.falseDowns.length}** (under 10% loss: ${underLoss}; elsewhere: ${r.falseDowns.length - underLoss})`]));
  const grown = r.rssVerdicts.filter((v) => v.growth !== undefined);
  out.push(row(['RSS growth, end vs after warm-up (limit +20%)', grown.map((v) => `${v.host} ${(100 * v.growth!).toFixed(1)}%`).join(', ') || 'n/a']));
  const p = r.traffic.pings;
  out.push(row(['pings answered (all / outside faults)', `${p.answered}/${p.sent} / ${p.quietAnswered}/${p.quietSent}`]));
  const c = r.traffic.churn;
  out.push(row(['container churn: connected / disconnected / refused', `${c.connected} / ${c.disconnected} / ${c.refused}`]), '');
  const details: [string, string[]][] = [['Corrupt transfers', t.corruptions], ['Duplicate addresses', r.duplicates], ['Bad forwarding', r.badForwarding],
    ['Lost endpoints', r.lost], ['False Down', r.falseDowns.map((e) => `${new Date(e.at).toISOString()} ${e.observer} saw ${e.node} dead`)],
    ['Failed transfers (reported by the client or server, never silent)', t.failures], ['Refused container operations', c.refusals]];
  for (const [title, xs] of details) if (xs.length) out.push(`- ${title}:`, ...list(xs));
  const kinds = new Map<string, number>();
  for (const e of r.events.filter((x) => x.at >= r.startedAt)) kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
  out.push('', `Member events logged by the agents during the run: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}; ${r.suspectBursts} times a member was suspected by at least ${r.hosts - 2} others within 400 ms (it went silent to all at once: a stalled process, not a lost packet).`, '');
  out.push(...rssTable(r));
  return `${out.join('\n')}\n`;
}

function loadText(xs: number[]): string {
  if (xs.length === 0) return 'not sampled';
  return `min ${Math.min(...xs).toFixed(1)}, mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1)}, max ${Math.max(...xs).toFixed(1)}`;
}

/** RSS in MiB per host over time, about 12 rows; a * marks a new process (restart). */
function rssTable(r: SoakResult): string[] {
  const hosts = [...new Set(r.rss.map((x) => x.host))].sort();
  const step = Math.max(1, Math.round(r.durationMs / 12));
  const out = ['### Agent RSS (MiB) over time', '', row(['t (s)', ...hosts]), row(['---', ...hosts.map(() => '---')])];
  const lastPid = new Map<string, number>();
  for (let at = r.startedAt; at <= r.startedAt + r.durationMs + step; at += step) {
    const cells = hosts.map((h) => {
      const x = [...r.rss].reverse().find((y) => y.host === h && y.at <= at);
      if (!x) return '—';
      const mark = lastPid.has(h) && lastPid.get(h) !== x.pid ? '*' : '';
      lastPid.set(h, x.pid);
      return `${mb(x.kb)}${mark}`;
    });
    out.push(row([s1(Math.min(at, r.startedAt + r.durationMs) - r.startedAt), ...cells]));
  }
  out.push('', `Warm-up: ${s1(r.warmupMs)} s after each process start. Per process alive at the end: ${r.rssVerdicts.map((v) => `${v.host} ${v.warmKb === undefined ? '(restarted too late for a warm-up sample)' : `${mb(v.warmKb)} → ${mb(v.endKb)} MiB`}`).join(', ')}. * = a new process after kill -9.`);
  return out;
}
