// The routing mesh for UDP published ports: one host socket per listen address; per client
// flow (address, port) a socket inside the network's sandbox, connected in spirit to one task
// (replies from anyone else are ignored), closed after udpIdleMs without a datagram either way.
//   1. a datagram from a client: find its flow, or pick a task and open one (oldest-idle flow
//      closed when maxUdpFlows are open);
//   2. forward it from the sandbox socket to task:target;
//   3. a reply from the task goes back to the client from the published port;
//   4. a sweep closes idle flows and flows whose task is gone.
// PROXY v2 is not sent on UDP (no common server reads it per datagram).
import dgram from 'node:dgram';
import { NetnsUdp, type UdpHandler } from '../native/netns.js';
import { parseIpv4 } from '../router/wire/addr.js';
import { MeshPicker, type MeshTask } from './mesh-pick.js';
import type { MeshConfig, MeshPort, ServiceCounters } from './mesh-config.js';

/** A UDP socket inside a sandbox (NetnsUdp in production). */
export interface MeshUdpSocket {
  send(data: Uint8Array, addr: number, port: number): boolean;
  close(): void;
}

export interface MeshUdpEnv {
  sandboxOf(network: string): string | undefined;
  /** Open an unbound-port UDP socket in the namespace; replies arrive at onMessage. */
  openUdp(ns: string, onMessage: UdpHandler): MeshUdpSocket;
  warn?(msg: string, fields: Record<string, unknown>): void;
}

export const nativeUdpOpener: Pick<MeshUdpEnv, 'openUdp'> = {
  openUdp: (ns, onMessage) => NetnsUdp.bind(ns, '0.0.0.0', 0, onMessage),
};

interface Flow { sock: MeshUdpSocket; task: MeshTask; taskIp: number; last: number }

export class MeshUdpPort {
  private readonly picker = new MeshPicker();
  private readonly flows = new Map<string, Flow>();
  private readonly timer: NodeJS.Timeout;

  private constructor(private spec: MeshPort, private readonly env: MeshUdpEnv, private readonly cfg: MeshConfig,
    private cnt: ServiceCounters, private readonly socks: dgram.Socket[]) {
    for (const s of socks) s.on('message', (msg, rinfo) => this.fromClient(s, msg, rinfo));
    this.timer = setInterval(() => this.sweep(), Math.max(200, Math.min(5000, cfg.udpIdleMs / 4)));
    this.timer.unref();
  }

  static async open(spec: MeshPort, env: MeshUdpEnv, cfg: MeshConfig, cnt: ServiceCounters): Promise<MeshUdpPort | undefined> {
    const socks: dgram.Socket[] = [];
    for (const host of cfg.listen) {
      const six = host.includes(':');
      const s = dgram.createSocket({ type: six ? 'udp6' : 'udp4', ipv6Only: six });
      try {
        await new Promise<void>((resolve, reject) => {
          s.once('error', reject);
          s.bind(spec.published, host, () => {
            s.off('error', reject);
            resolve();
          });
        });
        s.on('error', (e) => env.warn?.('mesh UDP socket error', { port: spec.published, error: e.message }));
        socks.push(s);
      } catch (e) {
        s.close();
        if (!six) env.warn?.('mesh UDP port not published here', { port: spec.published, host, error: (e as Error).message });
      }
    }
    return socks.length === 0 ? undefined : new MeshUdpPort(spec, env, cfg, cnt, socks);
  }

  retarget(spec: MeshPort, cnt: ServiceCounters): void {
    this.spec = spec;
    this.cnt = cnt;
    this.picker.set(spec.tasks);
  }

  get size(): number {
    return this.flows.size;
  }

  close(): void {
    clearInterval(this.timer);
    for (const k of [...this.flows.keys()]) this.drop(k);
    for (const s of this.socks) s.close();
  }

  /** 1–2. */
  private fromClient(host: dgram.Socket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`;
    let f = this.flows.get(key);
    if (!f) {
      f = this.openFlow(host, key, rinfo.address, rinfo.port);
      if (!f) return;
    }
    f.last = Date.now();
    this.cnt.udpDatagrams++;
    this.cnt.bytesIn += msg.length;
    f.sock.send(msg, f.taskIp, this.spec.target);
  }

  private openFlow(host: dgram.Socket, key: string, addr: string, port: number): Flow | undefined {
    const ns = this.env.sandboxOf(this.spec.network);
    const task = this.picker.pick();
    if (ns === undefined || !task) {
      this.cnt.noTask++;
      return undefined;
    }
    if (this.flows.size >= this.cfg.maxUdpFlows) this.evictOldest();
    const taskIp = parseIpv4(task.ip);
    const target = this.spec.target;
    // 3. Only the task's own replies go back; the slab view is copied for dgram's async send.
    const onReply: UdpHandler = (data, from, fromPort) => {
      if (from !== taskIp || fromPort !== target) return;
      const fl = this.flows.get(key);
      if (fl) fl.last = Date.now();
      this.cnt.bytesOut += data.length;
      host.send(Buffer.from(data), port, addr);
    };
    let sock: MeshUdpSocket;
    try {
      sock = this.env.openUdp(ns, onReply);
    } catch (e) {
      this.env.warn?.('mesh UDP flow could not be opened', { port: this.spec.published, error: (e as Error).message });
      this.cnt.refused++;
      return undefined;
    }
    const f: Flow = { sock, task, taskIp, last: Date.now() };
    this.flows.set(key, f);
    this.cnt.udpFlows++;
    this.cnt.total++;
    const t = (this.cnt.tasks[task.endpoint] ??= { active: 0, total: 0 });
    t.active++;
    t.total++;
    return f;
  }

  /** 4. */
  private sweep(): void {
    const now = Date.now();
    const live = new Set(this.spec.tasks.map((t) => t.endpoint));
    for (const [k, f] of this.flows) if (now - f.last >= this.cfg.udpIdleMs || !live.has(f.task.endpoint)) this.drop(k);
  }

  private evictOldest(): void {
    let oldest: string | undefined;
    let at = Infinity;
    for (const [k, f] of this.flows) {
      if (f.last < at) {
        at = f.last;
        oldest = k;
      }
    }
    if (oldest !== undefined) this.drop(oldest);
  }

  private drop(key: string): void {
    const f = this.flows.get(key);
    if (!f) return;
    this.flows.delete(key);
    f.sock.close();
    this.cnt.udpFlows--;
    const t = this.cnt.tasks[f.task.endpoint];
    if (t) t.active--;
  }
}
