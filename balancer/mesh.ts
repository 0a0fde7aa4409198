// The routing mesh: every published port listens on every host, in the agent's host namespace,
// and each new connection goes to a task of the service on any host, through the overlay
// (issue 9 §3). No iptables, TPROXY or IPVS: the connection to the task is opened from a socket
// inside the network's sandbox namespace, so it leaves the host as ordinary overlay traffic
// (docs/services.md "Routing mesh" has the source address and how replies find their way).
//   1. update(targets): per published port, open, keep or close its listeners (TCP here, UDP
//      in balancer/mesh-udp.ts), on each listen address (IPv4, IPv6 where the host has it).
//   2. admit(): a new TCP connection is refused (reset) while maxPendingConnects are still
//      connecting or maxConnections are open; before accept, the kernel's SYN queue (with SYN
//      cookies) and the listen backlog bound a SYN flood: half-open ones never reach the agent.
//   3. dial(): pick a task (balancer/mesh-pick.ts: weights, 0 drains), connect from the
//      sandbox; a task that refuses is counted and the next one tried.
//   4. splice(): the optional PROXY v2 header, then pipe() both ways. No idle timer; a FIN from
//      either side is passed on and the other direction keeps flowing (allowHalfOpen).
//   5. finish(): counters; an error on either side resets the other.
//   6. reset a vanished task's connections when its host is down (not when it drains).
import net from 'node:net';
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
  connectTcp(ns: string, ip: string, port: number, timeoutMs: number): Promise<net.Socket>;
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

/** Connections from sockets made ahead in batches (native/netns-pool.ts): no setns per connection. */
export function nativeTcpDialer(): Pick<MeshEnv, 'connectTcp' | 'keepSandboxes'> {
  const pool = new NetnsTcpPool();
  return { connectTcp: (ns, ip, port, timeoutMs) => pool.connect(ns, ip, port, timeoutMs), keepSandboxes: (ns) => pool.drain(ns) };
}

interface Conn { client: net.Socket; backend: net.Socket | null; task: MeshTask | null }

interface TcpPort { spec: MeshPort; picker: MeshPicker; servers: net.Server[]; conns: Set<Conn> }

export class Mesh {
  readonly cfg: MeshConfig;
  private readonly tcp = new Map<number, TcpPort>();
  private readonly udp = new Map<number, MeshUdpPort>();
  private readonly counters = new Map<string, ServiceCounters>();
  private pending = 0;
  /** TCP connections admitted and not yet closed (client side), all ports. */
  private open = 0;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly env: MeshEnv, cfg: Partial<MeshConfig> = {}) {
    this.cfg = { ...DEFAULT_MESH_CONFIG, ...cfg };
  }

  /** 1. The whole set of published ports (call on every onMeshChange); serialized. */
  update(ports: readonly MeshPort[]): Promise<void> {
    const run = this.chain.then(() => this.apply(ports));
    this.chain = run.catch(() => undefined);
    return run;
  }

  close(): Promise<void> {
    return this.update([]);
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

  private async openTcp(spec: MeshPort): Promise<TcpPort | undefined> {
    const tp: TcpPort = { spec, picker: new MeshPicker(), servers: [], conns: new Set() };
    for (const host of this.cfg.listen) {
      const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (c) => this.admit(tp, c));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host, port: spec.published, backlog: this.cfg.backlog, ipv6Only: host.includes(':') }, () => {
            server.off('error', reject);
            resolve();
          });
        });
        server.on('error', (e) => this.env.warn?.('mesh listener error', { port: spec.published, error: e.message }));
        tp.servers.push(server);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // No IPv6 on this host: IPv4 only, as the issue allows.
        if (!(host.includes(':') && (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL'))) {
          this.env.warn?.('mesh port not published here', { port: spec.published, host, error: (e as Error).message });
        }
      }
    }
    if (tp.servers.length === 0) return undefined;
    this.tcp.set(spec.published, tp);
    return tp;
  }

  private closeTcp(port: number, tp: TcpPort): void {
    for (const s of tp.servers) s.close();
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
      c.client.resetAndDestroy();
      c.backend?.destroy();
    }
  }

  /** 2. Admission: bounded concurrent connects. */
  private admit(tp: TcpPort, client: net.Socket): void {
    const cnt = this.counter(tp.spec.service);
    client.on('error', () => undefined); // a reset client: the 'close' path cleans up
    if (this.pending >= this.cfg.maxPendingConnects || this.open >= this.cfg.maxConnections) {
      cnt.overload++;
      client.resetAndDestroy();
      return;
    }
    const conn: Conn = { client, backend: null, task: null };
    tp.conns.add(conn);
    this.open++;
    cnt.active++;
    cnt.total++;
    let closed = false;
    client.once('close', () => {
      if (closed) return;
      closed = true;
      tp.conns.delete(conn);
      this.open--;
      this.finish(tp.spec.service, conn);
    });
    this.pending++;
    this.dial(tp, conn).finally(() => this.pending--).catch(() => undefined);
  }

  /** 3. Pick and connect, moving on to another task on refusal. */
  private async dial(tp: TcpPort, conn: Conn): Promise<void> {
    const spec = tp.spec;
    const cnt = this.counter(spec.service);
    const ns = this.env.sandboxOf(spec.network);
    const tried = new Set<string>();
    for (let attempt = 0; ns !== undefined && attempt < this.cfg.maxAttempts; attempt++) {
      const task = tp.picker.pick(tried);
      if (!task) break;
      tried.add(task.endpoint);
      if (attempt > 0) cnt.retries++;
      try {
        const backend = await this.env.connectTcp(ns, task.ip, spec.target, this.cfg.connectTimeoutMs);
        if (conn.client.destroyed) {
          backend.destroy();
          return;
        }
        this.splice(spec, conn, backend, task);
        return;
      } catch {
        cnt.refused++;
        if (conn.client.destroyed) return;
      }
    }
    cnt.noTask++;
    conn.client.resetAndDestroy();
  }

  /** 4. PROXY v2, then bytes both ways with half-close. */
  private splice(spec: MeshPort, conn: Conn, backend: net.Socket, task: MeshTask): void {
    const { client } = conn;
    conn.backend = backend;
    conn.task = task;
    const t = (this.counter(spec.service).tasks[task.endpoint] ??= { active: 0, total: 0 });
    t.active++;
    t.total++;
    backend.allowHalfOpen = true;
    backend.setNoDelay(true);
    client.setNoDelay(true);
    // 5. An error on one side resets the other (the peer learns, nothing hangs).
    backend.on('error', () => client.resetAndDestroy());
    client.on('error', () => backend.resetAndDestroy());
    backend.once('close', () => {
      t.active--;
      if (!client.destroyed && !client.writableEnded) client.end();
    });
    if (spec.proxyProtocol === 'v2' && client.remoteAddress && client.localAddress) {
      backend.write(encodeProxyV2(proxyV2For(client.remoteAddress, client.remotePort ?? 0, client.localAddress, client.localPort ?? 0)));
    }
    client.pipe(backend);
    backend.pipe(client);
    client.resume();
  }

  private finish(service: string, conn: Conn): void {
    const cnt = this.counter(service);
    cnt.active--;
    cnt.bytesIn += conn.client.bytesRead;
    cnt.bytesOut += conn.client.bytesWritten;
    if (conn.backend && !conn.backend.destroyed) conn.backend.end();
  }
}
