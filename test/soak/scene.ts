// The soak's cluster: five hosts in namespaces, agents started both ways (nsenter --net and
// ip netns exec) on one gossip profile (lan, the default users run, or fast), one overlay, two
// long-lived containers per host.
// The scene also holds the ground truth the checks compare the agents against: which agent
// process runs where, which hosts can reach which (kills and partitions), and which endpoints
// exist (every connect the soak made and was acknowledged, minus every disconnect).
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { request } from '../../cli/client.js';
import { PROFILES, suspicionMin, type ProfileName } from '../../gossip/config.js';
import { Lab, run, waitFor, type Host } from '../harness/lab.js';

export type StartStyle = 'nsenter' | 'ip-netns-exec';
export const NETWORK = 'soaknet';
export const SUBNET = '10.0.40.0/24';

/** A container the soak connected and the agent acknowledged: what it must keep. */
export interface Ctr {
  host: Host;
  ns: string;
  ip: string;
  mac: string;
  stable: boolean; // long-lived (transfers and pings use these); churn containers come and go
}

export interface AgentProc {
  host: Host;
  via: StartStyle;
  child?: ChildProcess; // undefined while killed
  startedAt: number;
}

type Ep = { Name: string; MacAddress: string; IPv4Address: string; Host: string; HostName: string };
export type Verbose = { Containers: Record<string, { Name: string; IPv4Address: string; MacAddress: string }>; Endpoints: Ep[]; Forwarding: { MacAddress: string; VTEP: string; Static: boolean }[] };
export type NodeRow = { ID: string; Hostname: string; Status: string; Addr: string };

/**
 * Longest time a failure may take to show everywhere (ms). The cut-off side is the slow one:
 * its probes all fail, so Lifeguard's local health stretches its probe interval up to
 * awarenessMaxMultiplier times while it probes each other member once; then the longest
 * suspicion (suspicionMaxTimeoutMult × the minimum) and a few gossip rounds to spread it;
 * × 1.5 for scheduling delays on a loaded machine.
 */
export function detectionMs(n: number, profile: ProfileName = 'fast'): number {
  const c = PROFILES[profile];
  return Math.round(1.5 * ((n - 1) * c.probeInterval * c.awarenessMaxMultiplier + c.suspicionMaxTimeoutMult * suspicionMin(c, n) + 10 * c.gossipInterval));
}

export class Scene {
  readonly lab = new Lab('192.0.2');
  readonly hosts: Host[] = [];
  readonly agents = new Map<Host, AgentProc>();
  readonly ctrs = new Map<string, Ctr>(); // by namespace name
  /** Hosts whose underlay link is down (partitioned from all others). */
  readonly partitioned = new Set<Host>();
  /** When every agent first showed every other Ready: false Downs count from here. */
  formedAt = 0;
  private secret = '';
  private nextCtr = 0;
  /** Serialises container connect/disconnect with faults and snapshots (see checks.ts). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly log: (msg: string) => void, readonly profile: ProfileName = 'fast') {
    this.lab.agentStartTimeoutMs = 60_000; // restarts under load: measured, reported, not failed at 15 s
  }

  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  api<T>(h: Host, method: string, p: string, body?: unknown): Promise<T> {
    return request(h.socket, method, p, body) as Promise<T>;
  }

  isUp(h: Host): boolean {
    return this.agents.get(h)?.child !== undefined;
  }

  /** Can a's agent talk to b's right now (both running, neither cut off)? */
  reach(a: Host, b: Host): boolean {
    if (!this.isUp(a) || !this.isUp(b)) return false;
    return a === b || (!this.partitioned.has(a) && !this.partitioned.has(b));
  }

  private args(h: Host): string[] {
    const join = h === this.hosts[0] ? [] : ['--join', this.hosts[0].addr];
    return ['--node-name', h.name, '--gossip-profile', this.profile, '--secret-file', this.secret, ...join];
  }

  async start(h: Host): Promise<void> {
    const a = this.agents.get(h)!;
    a.child = await this.lab.startAgent(h, this.args(h), a.via);
    a.startedAt = Date.now();
  }

  async kill9(h: Host): Promise<void> {
    const a = this.agents.get(h)!;
    if (a.child) await this.lab.stopProcess(a.child, 'SIGKILL');
    a.child = undefined;
  }

  /** Five hosts; odd ones start with nsenter --net, even ones with ip netns exec. */
  async build(nHosts: number, perHost: number): Promise<void> {
    await this.lab.start();
    for (let i = 1; i <= nHosts; i++) {
      const h = await this.lab.addHost(`h${i}`);
      this.hosts.push(h);
      this.agents.set(h, { host: h, via: i % 2 === 1 ? 'nsenter' : 'ip-netns-exec', startedAt: 0 });
    }
    const [seed] = this.hosts;
    this.secret = path.join(this.lab.dir, 'join.token');
    const a = this.agents.get(seed)!;
    a.child = await this.lab.startAgent(seed, ['--node-name', seed.name, '--gossip-profile', this.profile], a.via);
    a.startedAt = Date.now();
    writeFileSync(this.secret, (await this.api<{ Token: string }>(seed, 'GET', '/v1/join-token')).Token + '\n', { mode: 0o600 });
    await Promise.all(this.hosts.slice(1).map((h) => this.start(h)));
    this.log(`agents: ${this.hosts.map((h) => `${h.name} (${this.agents.get(h)!.via})`).join(', ')}`);
    await waitFor(`${nHosts} Ready everywhere`, async () => {
      for (const h of this.hosts) if ((await this.nodes(h)).filter((n) => n.Status === 'Ready').length !== nHosts) return false;
      return true;
    }, 20_000, 200);
    this.formedAt = Date.now();
    await this.api(seed, 'POST', '/v1/networks', { name: NETWORK, driver: 'overlay', subnet: SUBNET });
    for (const h of this.hosts) await waitFor(`${NETWORK} on ${h.name}`, () => this.api(h, 'GET', `/v1/networks/${NETWORK}`).then(() => true), 10_000, 100);
    for (const h of this.hosts) for (let c = 0; c < perHost; c++) await this.connect(h, true);
  }

  /** Connect a fresh container on h; on success it joins the truth. Throws when the agent refuses. */
  async connect(h: Host, stable = false): Promise<Ctr> {
    const ns = await this.lab.addContainer(h, `${stable ? 's' : 'x'}${++this.nextCtr}`);
    try {
      const r = await this.api<{ IPv4Address: string; MacAddress: string }>(h, 'POST', `/v1/networks/${NETWORK}/connect`, { container: ns });
      const c: Ctr = { host: h, ns, ip: r.IPv4Address.split('/')[0], mac: r.MacAddress, stable };
      this.ctrs.set(ns, c);
      return c;
    } catch (e) {
      await run('ip', ['netns', 'del', ns]); // keep nothing half-made

      throw e;
    }
  }

  async disconnect(c: Ctr): Promise<void> {
    await this.api(c.host, 'POST', `/v1/networks/${NETWORK}/disconnect`, { container: c.ns });
    this.ctrs.delete(c.ns);
    await run('ip', ['netns', 'del', c.ns]);
  }

  nodes(h: Host): Promise<NodeRow[]> {
    return this.api<NodeRow[]>(h, 'GET', '/v1/nodes');
  }

  verbose(h: Host): Promise<Verbose> {
    return this.api<Verbose>(h, 'GET', `/v1/networks/${NETWORK}?verbose=1`);
  }

  stable(): Ctr[] {
    return [...this.ctrs.values()].filter((c) => c.stable);
  }
}
