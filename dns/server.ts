// The embedded resolver: one DnsResolver per agent (records, upstreams, counters), serving
// one ContainerDns per container namespace at 127.0.0.11:53 over UDP and TCP.
// Per query:
//   1. gate: at least a header, not a response (never answer answers: no reflection loops),
//      section counts a query can have
//   2. decode with dns-packet; undecodable: drop and count malformed
//   3. check: opcode QUERY and one question, else FORMERR / NOTIMP
//   4. answer locally from the records in the container's network scope (answer.ts)
//   5. otherwise forward upstream (forward.ts): REFUSED when the container's scope does not
//      forward (only --internal networks), or too many in flight; SERVFAIL when every
//      upstream failed
//   6. encode; over UDP fit 512 bytes or the client's EDNS0 size, dropping answers and
//      setting TC when cut (the client retries over TCP, which carries the full answer)
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet } from 'dns-packet';
import type net from 'node:net';
import { answerQuestion, ednsOf, RCODE, responseTo } from './answer.js';
import { DEFAULT_DNS_CONFIG, newCounters, type DnsConfig, type DnsCounters } from './config.js';
import { Forwarder } from './forward.js';
import type { RecordsSource } from './records.js';
import { serveTcp } from './tcp.js';
import { listenTcpInNetns, NetnsUdp } from '../native/netns.js';

export type Transport = 'udp' | 'tcp';
export type Reply = (msg: Buffer) => void;

export interface ServeOptions {
  /** Listen address inside the namespace (Docker's 127.0.0.11). */
  addr?: string;
  /** Listen port (53). */
  port?: number;
  /** Forward names not known locally upstream (false: only --internal networks). Default true. */
  forward?: boolean;
}

export interface ContainerDns {
  /** UDP and TCP ports bound (the same unless port 0 was asked). */
  readonly udpPort: number;
  readonly tcpPort: number;
  /** Replace the network scope (after network connect / disconnect). */
  setNetworks(networks: readonly string[]): void;
  /** Forward unknown names upstream, or answer them REFUSED (after network connect / disconnect). */
  setForwarding(on: boolean): void;
  /** Close both sockets and every TCP connection. */
  close(): Promise<void>;
}

export class DnsResolver {
  readonly counters: DnsCounters = newCounters();
  readonly cfg: DnsConfig;
  private readonly forwarder: Forwarder;

  constructor(private readonly source: RecordsSource, cfg: Partial<DnsConfig> = {}) {
    this.cfg = { ...DEFAULT_DNS_CONFIG, ...cfg };
    this.forwarder = new Forwarder(this.cfg, this.counters);
  }

  /** Replace the upstream list (e.g. the host's resolv.conf changed). */
  setUpstreams(ups: DnsConfig['upstreams']): void {
    this.cfg.upstreams = ups.slice(0, 3);
  }

  /**
   * Handles one DNS message; reply runs at most once (never for a dropped message). `forward`
   * false: names not known locally get REFUSED and never leave the host (a container only on
   * --internal networks has no external DNS, as in Docker 25.0.4+).
   */
  handle(msg: Buffer, networks: readonly string[], transport: Transport, reply: Reply, forward = true): void {
    const c = this.counters;
    c.queries++;
    // 1. gate
    if (msg.length < 12 || (msg[2] & 0x80) !== 0) {
      c.malformed++;
      return;
    }
    // Section counts a query can carry (dns-packet sizes its arrays from them before reading:
    // a forged 65535 costs milliseconds): one question, no answers, a few authority/extra RRs.
    const qd = msg.readUInt16BE(4);
    if (msg.readUInt16BE(6) !== 0 || msg.readUInt16BE(8) > 8 || msg.readUInt16BE(10) > 8 || qd > 8) {
      c.malformed++;
      return;
    }
    // 2. decode
    let q: DecodedPacket;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      c.malformed++;
      return;
    }
    // 3. check
    const opcode = (msg[2] >> 3) & 0x0f;
    if (opcode !== 0 || (q.questions?.length ?? 0) !== 1) {
      c.formerr++;
      this.send(q, opcode !== 0 ? RCODE.NOTIMP : RCODE.FORMERR, [], [], transport, reply);
      return;
    }
    // 4. local
    const local = answerQuestion(q.questions![0], this.source, networks, this.cfg.ttl);
    if (local) {
      c.local++;
      this.send(q, local.rcode, local.answers, local.additionals, transport, reply);
      return;
    }
    // 5. forward
    if (!forward) {
      c.internal++;
      // Docker's answer here: REFUSED with RA clear (no recursion for this client).
      this.send(q, RCODE.REFUSED, [], [], transport, reply, false);
      return;
    }
    const ok = this.forwarder.forward(msg, transport === 'tcp', (up) => {
      if (!up) {
        c.servfail++;
        this.send(q, RCODE.SERVFAIL, [], [], transport, reply);
        return;
      }
      if ((up[3] & 0x0f) === RCODE.NXDOMAIN) c.nxdomain++;
      if (transport === 'udp' && (up[2] & 0x02) !== 0) c.truncated++;
      reply(up);
    });
    if (!ok) {
      c.refused++;
      this.send(q, RCODE.REFUSED, [], [], transport, reply);
    }
  }

  // 6. encode and fit
  private send(q: DecodedPacket, rcode: number, answers: Answer[], extra: Answer[], transport: Transport, reply: Reply, ra = true): void {
    if (rcode === RCODE.NXDOMAIN) this.counters.nxdomain++;
    const pkt = responseTo(q, rcode, answers, extra, this.cfg.ednsSize, ra);
    let out: Buffer;
    try {
      out = dnsPacket.encode(pkt);
    } catch {
      // A question we decoded but cannot re-encode (e.g. a label dns-packet rejects).
      this.counters.malformed++;
      return;
    }
    if (transport === 'udp') {
      const edns = ednsOf(q);
      const limit = edns ? Math.max(512, Math.min(edns.udpPayloadSize, 65535)) : 512;
      if (out.length > limit) out = this.truncate(pkt, limit);
    }
    reply(out);
  }

  /** The response with as many answers as fit in limit bytes (additionals dropped but OPT), TC set. */
  private truncate(pkt: Packet, limit: number): Buffer {
    this.counters.truncated++;
    const opt = (pkt.additionals ?? []).filter((a) => a.type === 'OPT');
    const all = pkt.answers ?? [];
    const cut: Packet = { ...pkt, flags: (pkt.flags ?? 0) | dnsPacket.TRUNCATED_RESPONSE, additionals: opt, answers: [] };
    let lo = 0;
    let hi = all.length;
    // Largest prefix of the answers that fits.
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      cut.answers = all.slice(0, mid);
      if (dnsPacket.encodingLength(cut) <= limit) lo = mid;
      else hi = mid - 1;
    }
    cut.answers = all.slice(0, lo);
    return dnsPacket.encode(cut);
  }

  /**
   * Serves 127.0.0.11:53 (UDP and TCP) inside the namespace `ns` (name, PID or path) for a
   * container attached to `networks`. Throws EADDRINUSE when the container already has a :53.
   */
  async serve(ns: string | number, networks: readonly string[], o: ServeOptions = {}): Promise<ContainerDns> {
    const addr = o.addr ?? '127.0.0.11';
    let scope = networks.slice();
    let forward = o.forward ?? true;
    const udp = NetnsUdp.bind(ns, addr, o.port ?? 53, (data, raddr, rport) => {
      this.handle(data, scope, 'udp', (msg) => udp.send(msg, raddr, rport), forward);
    });
    let server: net.Server;
    try {
      server = await listenTcpInNetns(ns, addr, o.port ?? udp.port);
    } catch (err) {
      udp.close();
      throw err;
    }
    const conns = new Set<net.Socket>();
    server.on('connection', (s) => {
      conns.add(s);
      s.on('close', () => conns.delete(s));
    });
    serveTcp(server, { idleMs: this.cfg.tcpIdleMs, maxConnections: this.cfg.maxTcpConnections }, (q, reply) =>
      this.handle(q, scope, 'tcp', reply, forward));
    const tcpPort = (server.address() as net.AddressInfo).port;
    return {
      udpPort: udp.port,
      tcpPort,
      setNetworks(n) {
        scope = n.slice();
      },
      setForwarding(on) {
        forward = on;
      },
      close() {
        udp.close();
        for (const s of conns) s.destroy();
        return new Promise((resolve) => server.close(() => resolve()));
      },
    };
  }

  /** Stops forwarding (pending forwards are dropped). Containers' listeners are closed by their own close(). */
  close(): void {
    this.forwarder.close();
  }
}
