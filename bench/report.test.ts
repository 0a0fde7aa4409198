import { describe, expect, it } from 'vitest';
import {
  fmtNum, fmtPps, fmtRatio, niceMax, ratio, renderJson, renderMarkdown, renderSvg, xmlEscape,
  type BenchReport, type SystemResult,
} from './report.js';

function sys(id: string, label: string, figures: SystemResult['figures'], status: SystemResult['status'] = 'ok', reason?: string): SystemResult {
  return { id, label, status, reason, figures, runs: [], notes: [] };
}

function sample(): BenchReport {
  return {
    version: 1,
    date: '2026-01-02T03:04:05.000Z',
    machine: { hostname: 'box', cores: 2, kernel: '6.18.0', cpu: 'AMD EPYC <test> & co', node: 'v20.0.0' },
    mode: { quick: true, runs: 1, seconds: 2, pings: 200, parts: ['crypto', 'overlay'] },
    systems: [
      sys('kernel-vxlan', 'kernel VXLAN', { tcp1Gbps: 16, tcp4Gbps: 20, udp1400Pps: 80000, udp1400Gbps: 0.9, udp1400LossPct: 0.2, udp64Pps: 78000, udp64Gbps: 0.04, udp64LossPct: 0, pingP50Ms: 0.02, pingP99Ms: 0.04 }),
      sys('tapmesh', 'tapmesh', { tcp1Gbps: 2.4, tcp4Gbps: 2, udp1400Pps: 40000, udp1400Gbps: 0.45, udp1400LossPct: 30, udp64Pps: 39000, udp64Gbps: 0.02, udp64LossPct: 50, pingP50Ms: 0.1, pingP99Ms: 0.5, cpuSecPerGB: 1.5, peakRssMB: 80 }),
      sys('tapmesh-encrypted', 'tapmesh encrypted', {}, 'not-built', 'no --opt encrypted yet'),
      sys('fastd-null', 'fastd | null', {}, 'skipped', 'fastd is not installed'),
    ],
    crypto: [
      { impl: 'node:crypto aes-128-gcm', size: 64, status: 'ok', pps: 200000, gbps: 0.1024 },
      { impl: 'node:crypto aes-128-gcm', size: 1400, status: 'ok', pps: 1.5e6, gbps: 16.8 },
      { impl: 'batched native AEAD (tapmesh addon)', size: 64, status: 'not-built', reason: 'not built yet' },
      { impl: 'batched native AEAD (tapmesh addon)', size: 1400, status: 'not-built', reason: 'not built yet' },
    ],
  };
}

describe('number and ratio formatting', () => {
  it('fmtNum keeps about three significant digits without exponents in the usual range', () => {
    expect(fmtNum(16.3456)).toBe('16.3');
    expect(fmtNum(1234.5)).toBe('1235');
    expect(fmtNum(2.345)).toBe('2.35');
    expect(fmtNum(0.021)).toBe('0.021');
    expect(fmtNum(0.0321)).toBe('0.0321');
    expect(fmtNum(0)).toBe('0');
    expect(fmtNum(undefined)).toBe('—');
    expect(fmtNum(NaN)).toBe('—');
  });
  it('fmtPps uses k and M', () => {
    expect(fmtPps(78123)).toBe('78.1 k');
    expect(fmtPps(1.5e6)).toBe('1.50 M');
  });
  it('ratio and fmtRatio', () => {
    expect(ratio(2.4, 16)).toBeCloseTo(0.15, 10);
    expect(ratio(1, 0)).toBeNaN();
    expect(ratio(undefined, 1)).toBeNaN();
    expect(fmtRatio(0.15)).toBe('0.15×');
    expect(fmtRatio(0.1534)).toBe('0.15×');
    expect(fmtRatio(0.0042)).toBe('0.0042×');
    expect(fmtRatio(1)).toBe('1.00×');
    expect(fmtRatio(3.456)).toBe('3.46×');
    expect(fmtRatio(12.4)).toBe('12×');
    expect(fmtRatio(0.0001)).toBe('<0.001×');
    expect(fmtRatio(NaN)).toBe('—');
  });
  it('niceMax', () => {
    expect(niceMax(16.3)).toBe(20);
    expect(niceMax(0.04)).toBe(0.05);
    expect(niceMax(2.1)).toBe(2.5);
    expect(niceMax(0)).toBe(1);
  });
});

describe('markdown', () => {
  const md = renderMarkdown(sample());
  const rows = md.split('\n').filter((l) => l.startsWith('| '));
  it('has one row per system in each overlay table, with ratios to kernel VXLAN', () => {
    const tm = rows.filter((l) => l.startsWith('| tapmesh |'));
    expect(tm).toHaveLength(2);
    // TCP 1: 2.4 / 16 = 0.15; TCP 4: 2 / 20 = 0.1; UDP 1400 pps 0.5×; ping p50 5×.
    expect(tm[0]).toContain('| 2.40 | 0.15× | 2.00 | 0.1× | 40.0 k | 0.5× |');
    expect(tm[1]).toContain('| 0.1 | 5.00× | 0.5 | 13× | 1.50 | 80.0 |');
    expect(rows.find((l) => l.startsWith('| kernel VXLAN |'))).toContain('| 16.0 | 1× |');
  });
  it('every table row has as many cells as its header', () => {
    const tables = md.split('\n\n').filter((b) => b.startsWith('|'));
    expect(tables.length).toBeGreaterThanOrEqual(3);
    for (const t of tables) {
      const lines = t.split('\n').filter((l) => l.trim() !== '');
      const cells = (l: string): number => l.replace(/\\\|/g, '').split('|').length;
      for (const l of lines) expect(cells(l)).toBe(cells(lines[0]));
    }
  });
  it('the users table appears only with its figures, with ratios per ping rate', () => {
    expect(md).not.toContain('### What users see');
    const r = sample();
    Object.assign(r.systems[0].figures, { ping1P50Ms: 0.12, ping1P99Ms: 0.2, ping50P50Ms: 0.1, udpPacedOfferedGbps: 0.9, udpPacedLossPct: 0.1 });
    Object.assign(r.systems[1].figures, { ping1P50Ms: 0.6, ping1P99Ms: 1, ping1CpuPct: 2.5, ping50P50Ms: 0.3, udpPacedOfferedGbps: 0.9, udpPacedLossPct: 12, idleCpuPct: 0.4 });
    const users = renderMarkdown(r).split('### What users see')[1];
    expect(users).toBeDefined();
    const head = users.split('\n').find((l) => l.startsWith('| System'))!;
    // Columns without a figure in any system (ping 500/s, 50/s p99) are left out.
    expect(head).toBe('| System | ping 1/s p50 ms | × kernel | p99 ms | × kernel | agent CPU % | ping 50/s p50 ms | × kernel | UDP 1400 B paced Gbit/s | loss % | idle CPU % of a core per agent |');
    expect(users.split('\n').find((l) => l.startsWith('| tapmesh |'))).toBe('| tapmesh | 0.6 | 5.00× | 1.00 | 5.00× | 2.50 | 0.3 | 3.00× | 0.9 | 12.0 | 0.4 |');
  });
  it('shows status for systems that did not run and escapes pipes', () => {
    expect(md).toContain('| tapmesh encrypted | not built yet |');
    expect(md).toContain('| fastd \\| null | skipped: fastd is not installed |');
    expect(md).toContain('ping p50 ≤ 4× kernel → 5.00× NOT met');
    expect(md).toContain('TCP 1 stream ≥ 0.15× kernel → 0.15× met');
  });
  it('crypto table has a column per size and the batched slot', () => {
    expect(md).toContain('| Implementation | 64 B | 1400 B |');
    expect(md).toContain('| node:crypto aes-128-gcm | 200 k · 0.102 | 1.50 M · 16.8 |');
    expect(md).toContain('| batched native AEAD (tapmesh addon) | not built yet | not built yet |');
  });
  it('header names the underlay offload state, the source and the background load', () => {
    const r = sample();
    r.mode.underlayOffload = false;
    r.source = { commit: 'abc1234', dirty: true };
    r.background = { beforePct: 55, afterPct: 3 };
    const text = renderMarkdown(r);
    expect(text).toContain('underlay tx offloads off (software checksum and segmentation) for every system');
    expect(text).toContain('- Source: commit abc1234 plus uncommitted changes');
    expect(text).toContain('55% before the run, 3% after the last measurement — figures are disturbed by that load');
  });
  it('a partial run still shows its figures', () => {
    const r = sample();
    r.systems[1].status = 'failed';
    r.systems[1].reason = '1 measurement(s) failed';
    expect(renderMarkdown(r)).toContain('| tapmesh (partial: 1 measurement(s) failed) | 2.40 | 0.15× |');
  });
});

/** Minimal well-formedness check: balanced tags, escaped text, one root <svg>. */
function checkXml(xml: string): void {
  const body = xml.replace(/^<\?xml[^>]*\?>\s*/, '');
  const stack: string[] = [];
  let roots = 0;
  const re = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<|>/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(body))) {
    if (m[0] === '<' || m[0] === '>') throw new Error(`stray ${m[0]} at ${m.index}: ${body.slice(m.index - 30, m.index + 30)}`);
    const [, close, name, , self] = m;
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}>`);
    } else if (!self) {
      if (stack.length === 0) roots++;
      stack.push(name);
    }
  }
  if (stack.length) throw new Error(`unclosed: ${stack.join(',')}`);
  if (roots !== 1) throw new Error(`${roots} root elements`);
  for (const amp of body.matchAll(/&(?!(amp|lt|gt|quot|apos);)/g)) throw new Error(`bare & at ${amp.index}`);
}

describe('svg', () => {
  it('is well-formed with one root svg, bars for systems that ran and escaped labels', () => {
    const svg = renderSvg(sample());
    expect(svg.startsWith('<?xml')).toBe(true);
    expect(() => checkXml(svg)).not.toThrow();
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/m);
    // 2 systems ran × (4 throughput + 2 latency) bars, plus legend swatches (6) and the background.
    expect((svg.match(/<rect /g) ?? []).length).toBe(12 + 6 + 1);
    expect(svg).toContain('AMD EPYC &lt;test&gt; &amp; co');
    expect(svg).toContain('not built yet');
  });
  it('checkXml catches broken documents', () => {
    expect(() => checkXml('<svg><g></svg>')).toThrow();
    expect(() => checkXml('<svg>a & b</svg>')).toThrow();
    expect(() => checkXml('<svg></svg><svg></svg>')).toThrow();
  });
  it('xmlEscape', () => {
    expect(xmlEscape(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
  });
  it('renders an empty report without NaN coordinates', () => {
    const r = sample();
    r.systems = [];
    const svg = renderSvg(r);
    expect(() => checkXml(svg)).not.toThrow();
    expect(svg).not.toContain('NaN');
  });
});

describe('json', () => {
  it('round-trips and writes non-finite numbers as null', () => {
    const r = sample();
    r.systems[0].figures.udp64LossPct = NaN;
    const back = JSON.parse(renderJson(r)) as BenchReport;
    expect(back.systems[0].figures.udp64LossPct).toBeNull();
    expect(back.systems[1].figures.tcp1Gbps).toBe(2.4);
  });
});
