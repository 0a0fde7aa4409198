// What the soak checks, against the scene's ground truth (scene.ts):
// 1. no address handed out twice: the acknowledged containers and every host's local endpoints;
// 2. no forwarding entry at a dead or wrong VTEP once detection time has passed;
// 3. no endpoint lost: every host's local list and cluster-wide view equal the truth;
// 4. no false Down: every `dead` member event in the agents' logs falls inside a fault window;
// 5. memory bounded: every agent's VmRSS at the end within 20% of its value after warm-up.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Host } from '../harness/lab.js';
import type { Scene, Verbose, NodeRow } from './scene.js';

export interface Snapshot {
  at: number;
  views: Map<Host, { verbose: Verbose; nodes: NodeRow[] }>;
}

/** Every running agent's view, read in one pass (callers hold scene.exclusive). */
export async function snapshot(s: Scene): Promise<Snapshot> {
  const at = Date.now();
  const views = new Map<Host, { verbose: Verbose; nodes: NodeRow[] }>();
  await Promise.all(s.hosts.filter((h) => s.isUp(h)).map(async (h) => {
    views.set(h, { verbose: await s.verbose(h), nodes: await s.nodes(h) });
  }));
  return { at, views };
}

const ipOf = (cidr: string) => cidr.split('/')[0];

/** 1. Addresses held by two endpoints at once: in the truth, and in the hosts' local lists together. */
export function duplicateAddresses(s: Scene, snap: Snapshot): string[] {
  const out: string[] = [];
  const holders = new Map<string, Set<string>>();
  const add = (ip: string, who: string) => holders.set(ip, (holders.get(ip) ?? new Set()).add(who));
  for (const c of s.ctrs.values()) add(c.ip, c.ns);
  for (const [h, v] of snap.views) for (const l of Object.values(v.verbose.Containers)) add(ipOf(l.IPv4Address), l.Name || h.name);
  for (const [ip, who] of holders) if (who.size > 1) out.push(`${ip} held by ${[...who].join(', ')}`);
  return out;
}

/**
 * 2. Forwarding entries that point at a VTEP the host cannot reach (agent killed, link down) or
 * at another host than the endpoint's, or at an endpoint disconnected longer ago than `settleMs`.
 * Entries for MACs the soak never made (static peers) are not its business.
 */
export function badForwarding(s: Scene, snap: Snapshot, gone: Map<string, number>, settleMs: number): string[] {
  const out: string[] = [];
  const byMac = new Map([...s.ctrs.values()].map((c) => [c.mac, c]));
  const byAddr = new Map(s.hosts.map((h) => [h.addr, h]));
  for (const [h, v] of snap.views) {
    for (const f of v.verbose.Forwarding) {
      if (f.Static) continue;
      const owner = byMac.get(f.MacAddress);
      const vtepHost = byAddr.get(f.VTEP);
      if (!owner) {
        const t = gone.get(f.MacAddress);
        if (t !== undefined && snap.at - t > settleMs) out.push(`${h.name}: ${f.MacAddress} → ${f.VTEP}, disconnected ${snap.at - t} ms ago`);
      } else if (owner.host.addr !== f.VTEP) out.push(`${h.name}: ${f.MacAddress} → ${f.VTEP}, but ${owner.ns} is on ${owner.host.name} (${owner.host.addr})`);
      else if (!vtepHost || !s.reach(h, vtepHost)) out.push(`${h.name}: ${f.MacAddress} → ${f.VTEP}, a VTEP it cannot reach`);
    }
  }
  return out;
}

/**
 * 3. Differences between what the agents show and the truth: each host's own endpoints, its
 * cluster-wide list (endpoints of the hosts it can reach) and its forwarding table (one entry,
 * at the owner's VTEP, per endpoint on another reachable host). Empty = converged.
 */
export function endpointDiff(s: Scene, snap: Snapshot): string[] {
  const out: string[] = [];
  for (const [h, v] of snap.views) {
    const local = new Map(Object.values(v.verbose.Containers).map((l) => [l.Name, ipOf(l.IPv4Address)]));
    const seen = new Map(v.verbose.Endpoints.map((e) => [e.Name, ipOf(e.IPv4Address)]));
    const fwd = new Map(v.verbose.Forwarding.filter((f) => !f.Static).map((f) => [f.MacAddress, f.VTEP]));
    for (const c of s.ctrs.values()) {
      if (c.host === h && local.get(c.ns) !== c.ip) out.push(`${h.name}: own endpoint ${c.ns} ${c.ip} ${local.has(c.ns) ? `has ${local.get(c.ns)}` : 'missing'}`);
      if (!s.reach(h, c.host)) continue;
      if (seen.get(c.ns) !== c.ip) out.push(`${h.name}: view lacks ${c.ns} ${c.ip} (on ${c.host.name})`);
      if (c.host !== h && fwd.get(c.mac) !== c.host.addr) out.push(`${h.name}: no forwarding ${c.mac} → ${c.host.addr}`);
    }
    for (const [name] of local) if (!s.ctrs.has(name)) out.push(`${h.name}: unknown own endpoint ${name}`);
    for (const [name] of seen) if (!s.ctrs.has(name)) out.push(`${h.name}: view has unknown ${name}`);
  }
  return out;
}

/** Membership as the truth says: Ready where reachable, not Ready where not. */
export function membershipDiff(s: Scene, snap: Snapshot): string[] {
  const out: string[] = [];
  for (const [h, v] of snap.views) {
    for (const o of s.hosts) {
      const st = v.nodes.find((n) => n.Hostname === o.name)?.Status ?? 'absent';
      const want = s.reach(h, o);
      if (want && st !== 'Ready') out.push(`${h.name} shows ${o.name} ${st}`);
      if (!want && st === 'Ready') out.push(`${h.name} still shows ${o.name} Ready`);
    }
  }
  return out;
}

/** A time window in which a member may rightly be declared Down, and by whom. */
export interface DownWindow {
  from: number;
  to: number;
  /** Events about these members, or seen by these members, are expected inside the window. */
  hosts: string[];
}

export interface MemberEvent {
  at: number;
  observer: string;
  kind: string;
  node: string;
}

/** Member events from every agent's JSON log (all incarnations append to one file per host). */
export function memberEvents(s: Scene): MemberEvent[] {
  const out: MemberEvent[] = [];
  for (const h of s.hosts) {
    let text = '';
    try {
      text = readFileSync(path.join(s.lab.dir, `${h.name}-agent.log`), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      if (!line.includes('"member event"')) continue;
      try {
        const j = JSON.parse(line) as { ts: string; kind: string; node: string };
        out.push({ at: Date.parse(j.ts), observer: h.name, kind: j.kind, node: j.node });
      } catch {
        // a line cut by kill -9 is not an event
      }
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

/** 4. `dead` events outside every fault window (a Down of a member nothing was done to). */
export function falseDowns(events: MemberEvent[], windows: DownWindow[], since: number): MemberEvent[] {
  return events.filter((e) => e.kind === 'dead' && e.at >= since &&
    !windows.some((w) => e.at >= w.from && e.at <= w.to && (w.hosts.includes(e.node) || w.hosts.includes(e.observer))));
}

/**
 * Suspicions raised by nearly every other member within `withinMs` of each other: the suspect
 * went silent to all at once (a stalled process), unlike a lost packet, which one prober sees.
 */
export function suspectBursts(events: MemberEvent[], members: number, since: number, withinMs = 400): number {
  const sus = events.filter((e) => e.kind === 'suspect' && e.at >= since);
  let bursts = 0;
  for (let i = 0; i < sus.length; i++) {
    const seen = new Set<string>();
    let j = i;
    for (; j < sus.length && sus[j].at - sus[i].at <= withinMs; j++) if (sus[j].node === sus[i].node) seen.add(sus[j].observer);
    if (seen.size >= members - 2) {
      bursts++;
      while (i + 1 < j) i++; // one burst per window
    }
  }
  return bursts;
}

export interface RssSample {
  at: number;
  host: string;
  pid: number;
  kb: number;
}

/** VmRSS of a process in kB, or undefined once it is gone. */
export function vmRssKb(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

export function sampleRss(s: Scene, into: RssSample[]): void {
  const at = Date.now();
  for (const [h, a] of s.agents) {
    const pid = a.child?.pid;
    if (pid === undefined) continue;
    const kb = vmRssKb(pid);
    if (kb !== undefined) into.push({ at, host: h.name, pid, kb });
  }
}

export interface RssVerdict {
  host: string;
  pid: number;
  warmKb?: number;
  endKb: number;
  growth?: number; // (end - warm) / warm
  ok: boolean;
}

/** Samples that make up the RSS after warm-up: their median, so one sample taken right after a GC is not the baseline. */
export const WARM_SAMPLES = 3;

/**
 * 5. Per agent process alive at the end: its RSS after warm-up (the median of the first
 * WARM_SAMPLES samples at least warmupMs after it started, the last sample excluded) against its
 * last sample. A process restarted too late for a warm-up sample has no verdict of its own
 * (reported, not counted).
 */
export function rssVerdicts(s: Scene, samples: RssSample[], warmupMs: number, maxGrowth = 0.2): RssVerdict[] {
  const out: RssVerdict[] = [];
  for (const [h, a] of s.agents) {
    const pid = a.child?.pid;
    const mine = samples.filter((x) => x.pid === pid);
    if (pid === undefined || mine.length === 0) continue;
    const end = mine[mine.length - 1];
    const warmKbs = mine.slice(0, -1).filter((x) => x.at >= a.startedAt + warmupMs).slice(0, WARM_SAMPLES).map((x) => x.kb).sort((x, y) => x - y);
    const warmKb = warmKbs.length > 0 ? warmKbs[(warmKbs.length - 1) >> 1] : undefined;
    const growth = warmKb !== undefined ? (end.kb - warmKb) / warmKb : undefined;
    out.push({ host: h.name, pid, warmKb, endKb: end.kb, growth, ok: growth === undefined || growth <= maxGrowth });
  }
  return out;
}
