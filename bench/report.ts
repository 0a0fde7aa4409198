// Bench report: one JSON-able object, rendered as a markdown table (each figure with its ratio to
// kernel VXLAN measured in the same run) and as a hand-drawn SVG chart. No chart library.

export type SystemStatus = 'ok' | 'failed' | 'skipped' | 'not-built';

/** Medians over the runs. Throughput is payload (iperf3's view); loss is server-side. */
export interface Figures {
  tcp1Gbps?: number;
  tcp4Gbps?: number;
  udp1400Pps?: number;
  udp1400Gbps?: number;
  udp1400LossPct?: number;
  udp64Pps?: number;
  udp64Gbps?: number;
  udp64LossPct?: number;
  pingP50Ms?: number;
  pingP99Ms?: number;
  /** Agent CPU seconds (user+sys, both hosts' agents) per GB of payload in the TCP 1-stream test. */
  cpuSecPerGB?: number;
  /** Highest VmHWM of any agent process, MB. */
  peakRssMB?: number;
  // What users see (overlay --rate-pings, --paced-udp, --idle-seconds; absent otherwise).
  /** Ping p50/p99 at 1, 50 and 500 echo requests per second (ping -i 1, 0.02, 0.002). */
  ping1P50Ms?: number;
  ping1P99Ms?: number;
  ping50P50Ms?: number;
  ping50P99Ms?: number;
  ping500P50Ms?: number;
  ping500P99Ms?: number;
  /** Agent CPU during each fixed-rate ping test, % of one core per agent (what busy polling costs). */
  ping1CpuPct?: number;
  ping50CpuPct?: number;
  ping500CpuPct?: number;
  /** UDP 1400 B offered at kernel VXLAN's received rate of the same run (iperf3 -b), Gbit/s of payload. */
  udpPacedOfferedGbps?: number;
  /** Loss of that paced stream, server side. */
  udpPacedLossPct?: number;
  /** CPU of one agent with no traffic (mean over the system's datapath processes), % of one core. */
  idleCpuPct?: number;
}

export const FIGURE_KEYS: readonly (keyof Figures)[] = [
  'tcp1Gbps', 'tcp4Gbps', 'udp1400Pps', 'udp1400Gbps', 'udp1400LossPct', 'udp64Pps', 'udp64Gbps', 'udp64LossPct',
  'pingP50Ms', 'pingP99Ms', 'cpuSecPerGB', 'peakRssMB',
  'ping1P50Ms', 'ping1P99Ms', 'ping50P50Ms', 'ping50P99Ms', 'ping500P50Ms', 'ping500P99Ms',
  'ping1CpuPct', 'ping50CpuPct', 'ping500CpuPct', 'udpPacedOfferedGbps', 'udpPacedLossPct', 'idleCpuPct',
];

/** The rates of `--rate-pings` (per second) and the figures each fills. */
export const PING_RATES = [
  { perSec: 1, p50: 'ping1P50Ms', p99: 'ping1P99Ms', cpu: 'ping1CpuPct' },
  { perSec: 50, p50: 'ping50P50Ms', p99: 'ping50P99Ms', cpu: 'ping50CpuPct' },
  { perSec: 500, p50: 'ping500P50Ms', p99: 'ping500P99Ms', cpu: 'ping500CpuPct' },
] as const;

export interface SystemResult {
  id: string;
  label: string;
  status: SystemStatus;
  reason?: string;
  figures: Figures;
  /** Raw per-run records (figures plus whatever detail the runner kept). */
  runs: unknown[];
  notes: string[];
}

export interface CryptoRow {
  impl: string;
  size: number;
  status: 'ok' | 'not-built' | 'failed';
  reason?: string;
  pps?: number;
  gbps?: number;
  nsPerPacket?: number;
}

export interface Machine {
  hostname: string;
  cores: number;
  kernel: string;
  cpu: string;
  node: string;
}

export interface BenchReport {
  version: 1;
  date: string; // ISO timestamp of the start of the run
  machine: Machine;
  mode: { quick: boolean; runs: number; seconds: number; pings: number; parts: string[]; underlayOffload?: boolean };
  systems: SystemResult[];
  crypto?: CryptoRow[];
  durationSec?: number;
  /** The code measured: git commit and whether tracked files had uncommitted changes. */
  source?: { commit: string; dirty: boolean };
  /**
   * % of all cores busy (every process on the machine) in 1 s samples: before the run and after the
   * last measurement (before teardown). The bench's own idle agents are included, nothing else of it.
   */
  background?: { beforePct: number; afterPct?: number };
}

export const REFERENCE_ID = 'kernel-vxlan';

// ---------------------------------------------------------------------------------------------
// Number formatting

/** A figure with about three significant digits, no exponent notation; '—' when missing. */
export function fmtNum(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '—';
  const a = Math.abs(x);
  if (a === 0) return '0';
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  if (a >= 0.001) return Number(x.toFixed(Math.min(6, 2 - Math.floor(Math.log10(a))))).toString();
  return x.toExponential(1);
}

/** Packets per second as k/s or M/s. */
export function fmtPps(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '—';
  if (x >= 1e6) return `${fmtNum(x / 1e6)} M`;
  return `${fmtNum(x / 1e3)} k`;
}

/** value / reference. NaN when either side is missing or the reference is zero. */
export function ratio(value: number | undefined, ref: number | undefined): number {
  if (value === undefined || ref === undefined || !Number.isFinite(value) || !Number.isFinite(ref) || ref === 0) return NaN;
  return value / ref;
}

/** '0.15×', '1.00×', '3.4×', '12×'; '<0.001×' for tiny ratios; '—' when unknown. */
export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return '—';
  if (r === 0) return '0×';
  if (r < 0.001) return '<0.001×';
  if (r >= 10) return `${r.toFixed(0)}×`;
  if (r >= 1) return `${r.toFixed(2)}×`;
  return `${Number(r.toPrecision(2)).toString()}×`;
}

// ---------------------------------------------------------------------------------------------
// Markdown

function statusText(s: SystemResult): string {
  switch (s.status) {
    case 'ok': return '';
    case 'not-built': return 'not built yet';
    case 'skipped': return `skipped${s.reason ? `: ${s.reason}` : ''}`;
    case 'failed': return `FAILED${s.reason ? `: ${s.reason}` : ''}`;
  }
}

function mdEscape(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

interface Col {
  title: string;
  key: keyof Figures;
  fmt: (x: number | undefined) => string;
  withRatio: boolean;
}

function table(systems: SystemResult[], ref: SystemResult | undefined, cols: Col[]): string[] {
  const head = ['System'];
  for (const c of cols) {
    head.push(c.title);
    if (c.withRatio) head.push('× kernel');
  }
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? ':---' : '---:')).join('|')}|`];
  for (const s of systems) {
    const partial = s.status === 'failed' && Object.keys(s.figures).length > 0;
    const cells = [mdEscape(partial ? `${s.label} (partial: ${s.reason ?? 'failed'})` : s.label)];
    if (s.status !== 'ok' && !partial) {
      cells.push(mdEscape(statusText(s)));
      while (cells.length < head.length) cells.push('—');
    } else {
      for (const c of cols) {
        cells.push(c.fmt(s.figures[c.key]));
        if (c.withRatio) cells.push(s === ref ? '1×' : fmtRatio(ratio(s.figures[c.key], ref?.figures[c.key])));
      }
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines;
}

export const THROUGHPUT_COLS: Col[] = [
  { title: 'TCP 1 stream Gbit/s', key: 'tcp1Gbps', fmt: fmtNum, withRatio: true },
  { title: 'TCP 4 streams Gbit/s', key: 'tcp4Gbps', fmt: fmtNum, withRatio: true },
  { title: 'UDP 1400 B pkt/s', key: 'udp1400Pps', fmt: fmtPps, withRatio: true },
  { title: 'Gbit/s', key: 'udp1400Gbps', fmt: fmtNum, withRatio: false },
  { title: 'loss %', key: 'udp1400LossPct', fmt: fmtNum, withRatio: false },
  { title: 'UDP 64 B pkt/s', key: 'udp64Pps', fmt: fmtPps, withRatio: true },
  { title: 'Gbit/s', key: 'udp64Gbps', fmt: fmtNum, withRatio: false },
  { title: 'loss %', key: 'udp64LossPct', fmt: fmtNum, withRatio: false },
];

export const LATENCY_COLS: Col[] = [
  { title: 'ping p50 ms', key: 'pingP50Ms', fmt: fmtNum, withRatio: true },
  { title: 'ping p99 ms', key: 'pingP99Ms', fmt: fmtNum, withRatio: true },
  { title: 'agent CPU s/GB (TCP 1)', key: 'cpuSecPerGB', fmt: fmtNum, withRatio: false },
  { title: 'agent peak RSS MB', key: 'peakRssMB', fmt: fmtNum, withRatio: false },
];

export const USER_COLS: Col[] = [
  ...PING_RATES.flatMap((r): Col[] => [
    { title: `ping ${r.perSec}/s p50 ms`, key: r.p50, fmt: fmtNum, withRatio: true },
    { title: 'p99 ms', key: r.p99, fmt: fmtNum, withRatio: true },
    { title: 'agent CPU %', key: r.cpu, fmt: fmtNum, withRatio: false },
  ]),
  { title: 'UDP 1400 B paced Gbit/s', key: 'udpPacedOfferedGbps', fmt: fmtNum, withRatio: false },
  { title: 'loss %', key: 'udpPacedLossPct', fmt: fmtNum, withRatio: false },
  { title: 'idle CPU % of a core per agent', key: 'idleCpuPct', fmt: fmtNum, withRatio: false },
];

/** A system with figures to show: it ran, fully or partly. */
export function plotted(s: SystemResult): boolean {
  return s.status === 'ok' || (s.status === 'failed' && Object.keys(s.figures).length > 0);
}

export function referenceOf(r: BenchReport): SystemResult | undefined {
  return r.systems.find((s) => s.id === REFERENCE_ID && plotted(s));
}

export function machineLine(m: Machine): string {
  return `${m.cores} cores, ${m.cpu}, Linux ${m.kernel}, Node ${m.node}, host \`${m.hostname}\``;
}

export function renderMarkdown(r: BenchReport): string {
  const out: string[] = [];
  out.push(`# tapmesh bench — ${r.date.slice(0, 10)}`, '');
  out.push(`- Date: ${r.date}`);
  out.push(`- Machine: ${machineLine(r.machine)}`);
  const overlay = r.mode.parts.includes('overlay') ? `; ${r.mode.runs} run(s), medians; iperf3 ${r.mode.seconds} s per test; ${r.mode.pings} pings per run` +
    `${r.mode.underlayOffload === undefined ? '' : `; underlay tx offloads ${r.mode.underlayOffload ? 'on (veth default)' : 'off (software checksum and segmentation)'} for every system`}` : '';
  out.push(`- Mode: ${r.mode.quick ? 'quick' : 'full'}; parts: ${r.mode.parts.join(', ')}${overlay}`);
  if (r.source) out.push(`- Source: commit ${r.source.commit}${r.source.dirty ? ' plus uncommitted changes' : ''}`);
  if (r.durationSec !== undefined) out.push(`- Wall time: ${r.durationSec.toFixed(0)} s`);
  if (r.background) {
    out.push(`- Machine busy with other work (1 s samples, all cores): ${r.background.beforePct.toFixed(0)}% before the run` +
      `${r.background.afterPct !== undefined ? `, ${r.background.afterPct.toFixed(0)}% after the last measurement` : ''}` +
      `${Math.max(r.background.beforePct, r.background.afterPct ?? 0) > 10 ? ' — figures are disturbed by that load' : ''}`);
  }
  out.push('');
  if (r.systems.length) {
    const ref = referenceOf(r);
    out.push('## Overlay: container → container across two hosts', '');
    out.push('Same topology for every system: two host namespaces on a veth underlay (MTU 1500), one container per host, ' +
      'container eth0 MTU 1450, 10.0.9.2 → 10.0.9.3. Ratios are to kernel VXLAN in this same run ' +
      '(throughput: higher is better; latency: lower is better).', '');
    out.push('### Throughput', '', ...table(r.systems, ref, THROUGHPUT_COLS), '');
    out.push('### Latency and agent cost', '', ...table(r.systems, ref, LATENCY_COLS), '');
    const userCols = USER_COLS.filter((c) => r.systems.some((s) => s.figures[c.key] !== undefined));
    if (userCols.length) {
      out.push('### What users see', '', 'Ping at a fixed rate (not back to back), UDP 1400 B offered at the rate kernel VXLAN received in ' +
        'this run, agent CPU with no traffic.', '', ...table(r.systems, ref, userCols), '');
    }
    const tm = r.systems.find((s) => s.id === 'tapmesh' && plotted(s));
    if (ref && tm) {
      const t = ratio(tm.figures.tcp1Gbps, ref.figures.tcp1Gbps);
      const p = ratio(tm.figures.pingP50Ms, ref.figures.pingP50Ms);
      out.push(`Targets (issue 4): TCP 1 stream ≥ 0.15× kernel → ${fmtRatio(t)} ${t >= 0.15 ? 'met' : 'NOT met'}; ` +
        `ping p50 ≤ 4× kernel → ${fmtRatio(p)} ${p <= 4 ? 'met' : 'NOT met'}.`, '');
    }
    const notes = r.systems.flatMap((s) => s.notes.map((n) => `- ${s.label}: ${n}`));
    if (notes.length) out.push('Notes:', '', ...notes, '');
  }
  if (r.crypto?.length) out.push(...renderCryptoMarkdown(r.crypto), '');
  return out.join('\n');
}

export function renderCryptoMarkdown(rows: CryptoRow[]): string[] {
  const sizes = [...new Set(rows.map((r) => r.size))].sort((a, b) => a - b);
  const impls = [...new Set(rows.map((r) => r.impl))];
  const out = ['## AEAD seal, one packet per call (single core)', '',
    'Cells: packets/s · payload Gbit/s. Includes per-packet setup (cipher object, IV, AAD, tag).', '',
    `| Implementation | ${sizes.map((s) => `${s} B`).join(' | ')} |`, `|:---|${sizes.map(() => '---:').join('|')}|`];
  for (const impl of impls) {
    const cells = sizes.map((size) => {
      const row = rows.find((r) => r.impl === impl && r.size === size);
      if (!row) return '—';
      if (row.status === 'not-built') return 'not built yet';
      if (row.status === 'failed') return `failed: ${mdEscape(row.reason ?? '')}`;
      return `${fmtPps(row.pps)} · ${fmtNum(row.gbps)}`;
    });
    out.push(`| ${mdEscape(impl)} | ${cells.join(' | ')} |`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// SVG

export function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

interface Series {
  key: keyof Figures;
  label: string;
  color: string;
}

const THROUGHPUT_SERIES: Series[] = [
  { key: 'tcp1Gbps', label: 'TCP 1 stream', color: '#1f77b4' },
  { key: 'tcp4Gbps', label: 'TCP 4 streams', color: '#6baed6' },
  { key: 'udp1400Gbps', label: 'UDP 1400 B', color: '#ff7f0e' },
  { key: 'udp64Gbps', label: 'UDP 64 B', color: '#fdae6b' },
];

const LATENCY_SERIES: Series[] = [
  { key: 'pingP50Ms', label: 'ping p50', color: '#2ca02c' },
  { key: 'pingP99Ms', label: 'ping p99', color: '#98df8a' },
];

/** "Nice" axis maximum ≥ v: 1, 2, 2.5 or 5 times a power of ten. */
export function niceMax(v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function panel(x0: number, y0: number, w: number, h: number, title: string, unit: string, systems: SystemResult[], series: Series[]): string[] {
  const out: string[] = [];
  const left = 50;
  const top = 40;
  const bottom = 60;
  const plotW = w - left - 10;
  const plotH = h - top - bottom;
  const vals = systems.flatMap((s) => (plotted(s) ? series.map((k) => s.figures[k.key] ?? 0) : []));
  const yMax = niceMax(Math.max(0, ...vals.filter(Number.isFinite)));
  const px = x0 + left;
  const py = y0 + top;
  out.push(`<g class="panel">`);
  out.push(`<text x="${x0 + w / 2}" y="${y0 + 20}" text-anchor="middle" font-size="15" font-weight="bold">${xmlEscape(title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const y = py + plotH - (plotH * i) / 4;
    out.push(`<line x1="${px}" y1="${y}" x2="${px + plotW}" y2="${y}" stroke="#ddd"/>`);
    out.push(`<text x="${px - 6}" y="${y + 4}" text-anchor="end" font-size="11">${xmlEscape(fmtNum((yMax * i) / 4))}</text>`);
  }
  out.push(`<text x="${x0 + 12}" y="${py + plotH / 2}" font-size="11" transform="rotate(-90 ${x0 + 12} ${py + plotH / 2})" text-anchor="middle">${xmlEscape(unit)}</text>`);
  const groupW = plotW / Math.max(1, systems.length);
  const barW = Math.min(40, (groupW * 0.8) / series.length);
  systems.forEach((s, gi) => {
    const gx = px + gi * groupW + (groupW - barW * series.length) / 2;
    if (plotted(s)) {
      series.forEach((k, bi) => {
        const v = s.figures[k.key];
        if (v === undefined || !Number.isFinite(v)) return;
        const bh = Math.max(0.5, (plotH * v) / yMax);
        const bx = gx + bi * barW;
        out.push(`<rect x="${bx.toFixed(1)}" y="${(py + plotH - bh).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${bh.toFixed(1)}" fill="${k.color}"><title>${xmlEscape(`${s.label} ${k.label}: ${fmtNum(v)} ${unit}`)}</title></rect>`);
        out.push(`<text x="${(bx + barW / 2 - 1).toFixed(1)}" y="${(py + plotH - bh - 3).toFixed(1)}" text-anchor="middle" font-size="9">${xmlEscape(fmtNum(v))}</text>`);
      });
    } else {
      out.push(`<text x="${(px + gi * groupW + groupW / 2).toFixed(1)}" y="${py + plotH - 6}" text-anchor="middle" font-size="10" fill="#888">${xmlEscape(statusText(s).slice(0, 30))}</text>`);
    }
    out.push(`<text x="${(px + gi * groupW + groupW / 2).toFixed(1)}" y="${py + plotH + 16}" text-anchor="middle" font-size="11">${xmlEscape(s.label)}</text>`);
  });
  out.push(`<line x1="${px}" y1="${py + plotH}" x2="${px + plotW}" y2="${py + plotH}" stroke="#333"/>`);
  series.forEach((k, i) => {
    const lx = px + i * 110;
    const ly = y0 + h - 18;
    out.push(`<rect x="${lx}" y="${ly - 9}" width="10" height="10" fill="${k.color}"/>`);
    out.push(`<text x="${lx + 14}" y="${ly}" font-size="11">${xmlEscape(k.label)}</text>`);
  });
  out.push('</g>');
  return out;
}

export function renderSvg(r: BenchReport): string {
  const systems = r.systems;
  const w = 980;
  const h = 420;
  const pw = Math.round(w * 0.6);
  const out = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h + 30}" viewBox="0 0 ${w} ${h + 30}" font-family="sans-serif">`,
    `<rect x="0" y="0" width="${w}" height="${h + 30}" fill="#fff"/>`,
    ...panel(0, 0, pw, h, 'Throughput (payload)', 'Gbit/s', systems, THROUGHPUT_SERIES),
    ...panel(pw, 0, w - pw, h, 'Latency (ping RTT)', 'ms', systems, LATENCY_SERIES),
    `<text x="10" y="${h + 20}" font-size="10" fill="#555">${xmlEscape(`tapmesh bench ${r.date} — ${machineLine(r.machine).replace(/`/g, '')}${r.mode.quick ? ' — quick mode' : ''}`)}</text>`,
    '</svg>',
    '',
  ];
  return out.join('\n');
}

export function renderJson(r: BenchReport): string {
  return `${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2)}\n`;
}
