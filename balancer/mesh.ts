// The routing mesh: every published port listens on every host, in the agent's host namespace,
// and each new connection goes to a task of the service on any host, through the overlay
// (issue 9 §3). No iptables, TPROXY or IPVS: the connection to the task is opened from a socket
// inside the network's sandbox namespace, so it leaves the host as ordinary overlay traffic
// (docs/services.md "Routing mesh" has the source address and how replies find their way).
//   1. update(targets): per published port, open, keep or close its listeners (TCP here, UDP
//      in balancer/mesh-udp.ts), on each listen address (IPv4, IPv6 where the host has it).
//   2. admit(): a new TCP connection (accepted by the native relay, native/relay.cc) is reset
//      while maxPendingConnects are still connecting or maxConnections are open; before
//      accept, the kernel's SYN queue (with SYN cookies) and the listen backlog bound a SYN
//      flood: half-open ones never reach the agent.
//   3. dial(): pick a task (balancer/mesh-pick.ts: weights, 0 drains) and hand the relay a
//      socket made in the sandbox; a task that refuses is counted and the next one tried.
//   4. connected(): the relay splices both ways (after the optional PROXY v2 header). No idle
//      timer; a FIN from either side is passed on and the other direction keeps flowing.
//   5. closed(): counters; an error or RST on either side reset the other (in the relay).
//   6. reset a vanished task's connections when its host is down (not when it drains).
// The relay moves the bytes in C++ on the main thread's loop: a connection costs this file a
// few events and no net.Socket (the Node streams version cost ~0.4 ms of CPU per connection).
import { native, RELAY, type PollHandle, type RelayEvent, type RelayHandle } from '../native/index.js';
import { familyOf } from '../native/netns.js';
import { NetnsTcpPool } from '../native/netns-pool.js';
import { MeshPicker, type MeshTask } from './mesh-pick.js';
import { MeshUdpPort, type MeshUdpEnv } from './mesh-udp.js';
import { DEFAULT_MESH_CONFIG, newCounters, type MeshConfig, type MeshPort, type ServiceCounters } from './mesh-config.js';
import { encodeProxyV2, proxyV2For } from './proxy-v2.js';

export type { MeshTask } from './mesh-pick.js';
export { DEFAULT_MESH_CONFIG, type MeshConfig, type MeshPort, type ServiceCounters } from './mesh-config.js';

/** What the mesh needs from its host: where networks' sandboxes are, how to dial into them. */
export interface MeshEnv extends MeshUdpEnv {
  /** The sandbox namespace of a network on this host, or undefined if it is not up here. */
  sandboxOf(network: string): string | undefined;
  /**
   * How to reach task ip:port from sandbox ns: a TCP socket made in it (-1: one made in this
   * namespace) and the address to connect it to (ip:port itself, but for tests on loopback).
   */
  dialer(ns: string, ip: string, port: number): TcpDial;
  /** The sandboxes the mesh dials into now (after every update): resources for others may go. */
  keepSandboxes?(ns: readonly string[]): void;
  /**
   * Pin the tasks' MACs in the network's sandbox (permanent neighbours on br0), so br0 never
   * ARPs: a broadcast ARP from br0 would teach every container on the bridge the gateway IP at
   * br0's MAC, and their replies to other hosts' mesh connections would stop at this br0.
   */
  setNeighbors?(network: string, add: { ip: string; mac: string }[], remove: string[]): Promise<void>;
  /** True if the host (node id) is known to be down: its tasks' connections are reset. */
  hostDown?(host: string): boolean;
  warn?(msg: string, fields: Record<string, unknown>): void;
}

export interface TcpDial { fd: number; ip: string; port: number }

/** Connections from sockets made ahead in batches (native/netns-pool.ts): no setns per connection. */
export function nativeTcpDialer(): Pick<MeshEnv, 'dialer' | 'keepSandboxes'> {
  const pool = new NetnsTcpPool();
  return { dialer: (ns, ip, port) => ({ fd: pool.take(ns, familyOf(ip)), ip, port }), keepSandboxes: (ns) => pool.drain(ns) };
}

interface Conn {
  id: number;
  tp: TcpPort;
  /** Where the client came from and went to (PROXY v2). */
  remote: string; remotePort: number; local: string; localPort: number;
  /** The task being dialled or spliced to. */
  task: MeshTask | null;
  spliced: boolean;
  tried: Set<string>;
}

interface TcpPort { spec: MeshPort; picker: MeshPicker; listeners: number[]; conns: Set<Conn> }

export class Mesh {
  readonly cfg: MeshConfig;
  private readonly tcp = new Map<number, TcpPort>();
  private readonly udp = new Map<number, MeshUdpPort>();
  private readonly counters = new Map<string, ServiceCounters>();
  private pending = 0;
  /** TCP connections admitted and not yet closed (client side), all ports. */
  private open = 0;
  private chain: Promise<unknown> = Promise.resolve();
  /** The relay, made with the first TCP port; its listeners map back to their port. */
  private relay: { h: RelayHandle; poll: PollHandle } | null = null;
  /** Runs the relay while connects are pending, so their deadlines pass with no traffic. */
  private deadlines: NodeJS.Timeout | null = null;
  private readonly byListener = new Map<number, TcpPort>();
  private readonly conns = new Map<number, Conn>();

  constructor(private readonly env: MeshEnv, cfg: Partial<MeshConfig> = {}) {
    this.cfg = { ...DEFAULT_MESH_CONFIG, ...cfg };
  }

  /** 1. The whole set of published ports (call on every onMeshChange); serialized. */
  update(ports: readonly MeshPort[]): Promise<void> {
    const run = this.chain.then(() => this.apply(ports));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Closes every listener; connections already spliced live on until their ends close them. */
  close(): Promise<void> {
    return this.update([]);
  }

  /** Closes every listener and connection now (agent exit, tests). */
  async destroy(): Promise<void> {
    await this.close();
    if (!this.relay) return;
    this.relay.poll.close();
    if (this.deadlines) clearInterval(this.deadlines);
    native().relayDestroy(this.relay.h);
    this.relay = null;
  }

  /** Counters per service id. */
  stats(): Record<string, ServiceCounters> {
    return Object.fromEntries(this.counters);
  }

  /** The TCP and UDP ports listening now. */
  listening(): { tcp: number[]; udp: number[] } {
    return { tcp: [...this.tcp.keys()], udp: [...this.udp.keys()] };
  }

  private counter(service: string): ServiceCounters {
    let c = this.counters.get(service);
    if (!c) this.counters.set(service, (c = newCounters()));
    return c;
  }

  /** Per network: task IP → MAC pinned in its sandbox. */
  private readonly pinned = new Map<string, Map<string, string>>();

  private async pin(ports: readonly MeshPort[]): Promise<void> {
    const want = new Map<string, Map<string, string>>();
    for (const p of ports) {
      const m = want.get(p.network) ?? new Map<string, string>();
      for (const t of p.tasks) m.set(t.ip, t.mac);
      want.set(p.network, m);
    }
    for (const network of new Set([...want.keys(), ...this.pinned.keys()])) {
      const now = want.get(network) ?? new Map<string, string>();
      const was = this.pinned.get(network) ?? new Map<string, string>();
      const add = [...now].filter(([ip, mac]) => was.get(ip) !== mac).map(([ip, mac]) => ({ ip, mac }));
      const remove = [...was.keys()].filter((ip) => !now.has(ip));
      if (add.length === 0 && remove.length === 0) continue;
      try {
        if (this.env.sandboxOf(network) !== undefined) await this.env.setNeighbors?.(network, add, remove);
        if (now.size > 0) this.pinned.set(network, now);
        else this.pinned.delete(network);
      } catch (e) {
        this.env.warn?.('mesh: pinning task MACs failed', { network, error: (e as Error).message });
      }
    }
  }

  private async apply(ports: readonly MeshPort[]): Promise<void> {
    await this.pin(ports);
    const sandboxes = new Set<string>();
    for (const p of ports) {
      const ns = this.env.sandboxOf(p.network);
      if (ns !== undefined) sandboxes.add(ns);
    }
    this.env.keepSandboxes?.([...sandboxes]);
    const want = { tcp: new Map<number, MeshPort>(), udp: new Map<number, MeshPort>() };
    for (const p of ports) want[p.protocol].set(p.published, p);
    for (const [port, tp] of this.tcp) if (!want.tcp.has(port)) this.closeTcp(port, tp);
    for (const [port, up] of this.udp) {
      if (want.udp.has(port)) continue;
      up.close();
      this.udp.delete(port);
    }
    for (const [port, spec] of want.tcp) {
      const tp = this.tcp.get(port) ?? (await this.openTcp(spec));
      if (tp) this.retarget(tp, spec);
    }
    for (const [port, spec] of want.udp) {
      let up = this.udp.get(port);
      if (!up) {
        up = await MeshUdpPort.open(spec, this.env, this.cfg, this.counter(spec.service));
        if (!up) continue;
        this.udp.set(port, up);
      }
      up.retarget(spec, this.counter(spec.service));
    }
  }

  private relayOf(): RelayHandle {
    if (this.relay) return this.relay.h;
    const n = native();
    const h = n.relayCreate();
    const poll = n.pollReadable(n.relayFd(h), () => this.run(), true);
    this.relay = { h, poll };
    return h;
  }

  private async openTcp(spec: MeshPort): Promise<TcpPort | undefined> {
    const tp: TcpPort = { spec, picker: new MeshPicker(), listeners: [], conns: new Set() };
    const h = this.relayOf();
    for (const host of this.cfg.listen) {
      try {
        const id = native().relayListen(h, host, spec.published, this.cfg.backlog, spec.proxyProtocol === 'v2');
        tp.listeners.push(id);
        this.byListener.set(id, tp);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // No IPv6 on this host: IPv4 only, as the issue allows.
        if (!(host.includes(':') && (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL'))) {
          this.env.warn?.('mesh port not published here', { port: spec.published, host, error: (e as Error).message });
        }
      }
    }
    if (tp.listeners.length === 0) return undefined;
    this.tcp.set(spec.published, tp);
    return tp;
  }

  private closeTcp(port: number, tp: TcpPort): void {
    for (const id of tp.listeners) {
      native().relayUnlisten(this.relay!.h, id);
      this.byListener.delete(id);
    }
    // Connections already spliced live on until their ends close them (drain on removal).
    this.tcp.delete(port);
  }

  /** New task list for a port; step 6 for tasks that vanished with their host. */
  private retarget(tp: TcpPort, spec: MeshPort): void {
    const live = new Set(spec.tasks.map((t) => t.endpoint));
    tp.spec = spec;
    tp.picker.set(spec.tasks);
    for (const c of tp.conns) {
      if (c.task === null || live.has(c.task.endpoint) || this.env.hostDown?.(c.task.host) !== true) continue;
      this.counter(spec.service).resetHostDown++;
      this.reset(c);
    }
  }

  /** What the relay reports, in order. */
  private run(): void {
    if (!this.relay) return;
    const events = native().relayRun(this.relay.h);
    for (const e of events) this.event(e);
  }

  private event(e: RelayEvent): void {
    if (e[0] === RELAY.ACCEPT) return this.admit(e[1], e[2], e[3] ?? '', e[4] ?? 0, e[5] ?? '', e[6] ?? 0);
    const c = this.conns.get(e[1]);
    if (!c) return;
    if (e[0] === RELAY.CONNECTED) return this.connected(c);
    if (e[0] === RELAY.CONNECT_FAILED) {
      this.pending--;
      this.counter(c.tp.spec.service).refused++;
      c.task = null;
      return this.dial(c);
    }
    this.closed(c, e[2], e[3]);
  }

  /** 2. Admission: bounded concurrent connects and open connections. */
  private admit(id: number, listener: number, remote: string, remotePort: number, local: string, localPort: number): void {
    const tp = this.byListener.get(listener);
    const h = this.relay!.h;
    if (!tp) {
      native().relayReset(h, id);
      return;
    }
    const cnt = this.counter(tp.spec.service);
    if (this.pending >= this.cfg.maxPendingConnects || this.open >= this.cfg.maxConnections) {
      cnt.overload++;
      native().relayReset(h, id);
      return;
    }
    const c: Conn = { id, tp, remote, remotePort, local, localPort, task: null, spliced: false, tried: new Set() };
    this.conns.set(id, c);
    tp.conns.add(c);
    this.open++;
    cnt.active++;
    cnt.total++;
    this.dial(c);
  }

  /** 3. Pick a task not yet tried and start connecting; reset when none is left. */
  private dial(c: Conn): void {
    const spec = c.tp.spec;
    const cnt = this.counter(spec.service);
    const ns = this.env.sandboxOf(spec.network);
    while (ns !== undefined && c.tried.size < this.cfg.maxAttempts) {
      const task = c.tp.picker.pick(c.tried);
      if (!task) break;
      if (c.tried.size > 0) cnt.retries++;
      c.tried.add(task.endpoint);
      let header: Uint8Array | undefined;
      if (spec.proxyProtocol === 'v2') header = encodeProxyV2(proxyV2For(c.remote, c.remotePort, c.local, c.localPort));
      try {
        const d = this.env.dialer(ns, task.ip, spec.target);
        if (!native().relayConnect(this.relay!.h, c.id, d.fd, d.ip, d.port, this.cfg.connectTimeoutMs, header)) return;
      } catch (e) {
        cnt.refused++;
        this.env.warn?.('mesh: dial failed', { task: task.endpoint, error: (e as Error).message });
        continue;
      }
      c.task = task;
      this.pending++;
      // 5. The relay checks connect deadlines on every run; this makes runs happen while it is
      // quiet, and stops once nothing is connecting (an idle agent does not wake for it).
      this.deadlines ??= setInterval(() => {
        if (this.pending > 0) return this.run();
        clearInterval(this.deadlines!);
        this.deadlines = null;
      }, Math.max(50, this.cfg.connectTimeoutMs / 4)).unref();
      return;
    }
    cnt.noTask++;
    this.reset(c);
  }

  /** 4. The relay splices from here on. */
  private connected(c: Conn): void {
    this.pending--;
    c.spliced = true;
    const t = (this.counter(c.tp.spec.service).tasks[c.task!.endpoint] ??= { active: 0, total: 0 });
    t.active++;
    t.total++;
  }

  private reset(c: Conn): void {
    const bytes = native().relayReset(this.relay!.h, c.id);
    this.closed(c, bytes?.[0] ?? 0, bytes?.[1] ?? 0);
  }

  /** 5. Counters, once per connection. */
  private closed(c: Conn, up: number, down: number): void {
    if (!this.conns.delete(c.id)) return;
    c.tp.conns.delete(c);
    this.open--;
    if (c.task !== null && !c.spliced) this.pending--;
    const cnt = this.counter(c.tp.spec.service);
    cnt.active--;
    cnt.bytesIn += up;
    cnt.bytesOut += down;
    if (c.spliced) cnt.tasks[c.task!.endpoint].active--;
  }
}
