// The soak's verdicts on made-up views: each check flags what it names and passes the legitimate case.
import type { ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { Host } from '../harness/lab.js';
import { badForwarding, duplicateAddresses, endpointDiff, falseDowns, membershipDiff, rssVerdicts, suspectBursts, type Snapshot } from './checks.js';
import { detectionMs, Scene, type Verbose } from './scene.js';

const host = (i: number): Host => ({ name: `h${i}`, ns: `tm000000-h${i}`, addr: `192.0.2.${i}`, dir: '/nonexistent', socket: '/nonexistent' });

function scene(): Scene {
  const s = new Scene(() => undefined);
  for (const i of [1, 2, 3]) {
    const h = host(i);
    s.hosts.push(h);
    s.agents.set(h, { host: h, via: 'nsenter', child: { pid: 1000 + i } as ChildProcess, startedAt: 0 });
  }
  const [h1, h2] = s.hosts;
  s.ctrs.set('a', { host: h1, ns: 'a', ip: '10.0.40.2', mac: '02:42:0a:00:28:02', stable: true });
  s.ctrs.set('b', { host: h2, ns: 'b', ip: '10.0.40.3', mac: '02:42:0a:00:28:03', stable: true });
  return s;
}

/** What a converged host h would show: its own endpoints, all endpoints, forwarding to the others. */
function view(s: Scene, h: Host): Verbose {
  const all = [...s.ctrs.values()];
  return {
    Containers: Object.fromEntries(all.filter((c) => c.host === h).map((c) => [c.ns, { Name: c.ns, IPv4Address: `${c.ip}/24`, MacAddress: c.mac }])),
    Endpoints: all.map((c) => ({ Name: c.ns, MacAddress: c.mac, IPv4Address: `${c.ip}/24`, Host: c.host.name, HostName: c.host.name })),
    Forwarding: all.filter((c) => c.host !== h).map((c) => ({ MacAddress: c.mac, VTEP: c.host.addr, Static: false })),
  };
}

function snap(s: Scene, at = 1000): Snapshot {
  const views = new Map(s.hosts.filter((h) => s.isUp(h)).map((h) => [h, { verbose: view(s, h), nodes: s.hosts.map((o) => ({ ID: o.name, Hostname: o.name, Status: s.reach(h, o) ? 'Ready' : 'Down', Addr: o.addr })) }]));
  return { at, views };
}

describe('soak checks', () => {
  it('a converged cluster passes every check', () => {
    const s = scene();
    const x = snap(s);
    expect(duplicateAddresses(s, x)).toEqual([]);
    expect(badForwarding(s, x, new Map(), 0)).toEqual([]);
    expect(endpointDiff(s, x)).toEqual([]);
    expect(membershipDiff(s, x)).toEqual([]);
  });

  it('an address held by two endpoints is a duplicate', () => {
    const s = scene();
    const x = snap(s);
    x.views.get(s.hosts[2])!.verbose.Containers.z = { Name: 'z', IPv4Address: '10.0.40.3/24', MacAddress: '02:42:0a:00:28:99' };
    expect(duplicateAddresses(s, x)).toEqual(['10.0.40.3 held by b, z']);
  });

  it('forwarding at a wrong VTEP, at a partitioned one, or at a container gone longer than the settle time is bad', () => {
    const s = scene();
    const x = snap(s, 10_000);
    const fwd = x.views.get(s.hosts[2])!.verbose.Forwarding;
    fwd[0].VTEP = '192.0.2.3';
    fwd.push({ MacAddress: '02:42:0a:00:28:77', VTEP: '192.0.2.1', Static: false });
    const gone = new Map([['02:42:0a:00:28:77', 2_000]]);
    expect(badForwarding(s, x, gone, 5_000)).toHaveLength(2);
    expect(badForwarding(s, x, gone, 9_000)).toHaveLength(1); // gone only 8 s ago: not yet due
    s.partitioned.add(s.hosts[1]);
    expect(badForwarding(s, snap(s), new Map(), 0).some((b) => b.includes('cannot reach'))).toBe(true);
  });

  it('an endpoint missing from its own host, from a view, or from forwarding is reported', () => {
    const s = scene();
    const x = snap(s);
    delete x.views.get(s.hosts[0])!.verbose.Containers.a;
    x.views.get(s.hosts[2])!.verbose.Forwarding.pop();
    expect(endpointDiff(s, x)).toEqual(['h1: own endpoint a 10.0.40.2 missing', 'h3: no forwarding 02:42:0a:00:28:03 → 192.0.2.2']);
  });

  it('a dead event counts as false unless it falls in a window naming its member or observer', () => {
    const ev = (at: number, observer: string, node: string) => ({ at, observer, node, kind: 'dead' });
    const windows = [{ from: 100, to: 200, hosts: ['h2'] }];
    const events = [ev(150, 'h1', 'h2'), ev(150, 'h2', 'h3'), ev(150, 'h1', 'h3'), ev(250, 'h1', 'h2'), { ...ev(150, 'h1', 'h3'), kind: 'suspect' }];
    expect(falseDowns(events, windows, 0).map((e) => `${e.at} ${e.observer}:${e.node}`)).toEqual(['150 h1:h3', '250 h1:h2']);
  });

  it('a member suspected by nearly all others at once is a burst; scattered suspicions are not', () => {
    const sus = (at: number, observer: string, node: string) => ({ at, observer, node, kind: 'suspect' });
    const burst = [sus(1000, 'h1', 'h5'), sus(1100, 'h2', 'h5'), sus(1300, 'h3', 'h5'), sus(1350, 'h4', 'h5')];
    const scattered = [sus(5000, 'h1', 'h2'), sus(5100, 'h3', 'h4'), sus(7000, 'h5', 'h2'), sus(9000, 'h4', 'h2')];
    expect(suspectBursts([...burst, ...scattered], 5, 0)).toBe(1);
    expect(suspectBursts(scattered, 5, 0)).toBe(0);
  });

  it('RSS grown more than 20% after warm-up fails; a process without a warm-up sample has no verdict', () => {
    const s = scene();
    const rss = [
      { at: 0, host: 'h1', pid: 1001, kb: 50_000 }, { at: 60, host: 'h1', pid: 1001, kb: 60_000 }, { at: 600, host: 'h1', pid: 1001, kb: 73_000 },
      { at: 60, host: 'h2', pid: 1002, kb: 60_000 }, { at: 600, host: 'h2', pid: 1002, kb: 71_000 },
      { at: 600, host: 'h3', pid: 1003, kb: 90_000 },
    ];
    s.agents.get(s.hosts[2])!.startedAt = 590;
    const v = rssVerdicts(s, rss, 60);
    expect(v.map((x) => [x.host, x.ok, x.growth === undefined ? undefined : Math.round(100 * x.growth)])).toEqual([['h1', false, 22], ['h2', true, 18], ['h3', true, undefined]]);
  });

  it('the RSS after warm-up is the median of its first samples: one sample in a GC trough is not the baseline', () => {
    const s = scene();
    const kb = (host: string, pid: number, pts: [number, number][]) => pts.map(([at, v]) => ({ at, host, pid, kb: v }));
    const rss = [
      // h1: a trough right after warm-up (73.6 MB, then 81 and 84), 88.7 at the end: +9.5% on the median, not +20.5%.
      ...kb('h1', 1001, [[0, 70_000], [60, 73_600], [62, 81_000], [64, 84_000], [600, 88_700]]),
      // h2: steady growth still fails: 60, 61, 62 after warm-up, 80 at the end: +31%.
      ...kb('h2', 1002, [[60, 60_000], [62, 61_000], [64, 62_000], [600, 80_000]]),
    ];
    const v = rssVerdicts(s, rss, 60);
    expect(v.map((x) => [x.host, x.ok, x.warmKb, x.growth === undefined ? undefined : Math.round(1000 * x.growth) / 10])).toEqual([['h1', true, 81_000, 9.5], ['h2', false, 61_000, 31.1]]);
  });

  it('the detection bound covers the cut-off side slowed by local health', () => {
    // 4 × 200 ms × 8 + 6 × 800 ms + 10 × 50 ms = 11.7 s, × 1.5
    expect(detectionMs(5)).toBe(17_550);
    // lan (the full soak's default): 4 × 1000 ms × 8 + 6 × 4000 ms + 10 × 200 ms = 58 s, × 1.5
    expect(detectionMs(5, 'lan')).toBe(87_000);
  });
});
