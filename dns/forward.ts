// Forwarding to the upstream resolvers, from the agent's own (host) namespace, where the
// host's resolv.conf servers (127.0.0.53 included) are reachable.
//   1. admit: at most maxInFlight forwards pending, else the caller answers REFUSED
//   2. send to upstream i (UDP with a fresh random ID on one shared socket, or TCP when the
//      client came over TCP)
//   3. accept only a reply from that upstream's address and port, with our ID
//   4. timeout, SERVFAIL/REFUSED from upstream, or a connection error: count, try upstream i+1
//   5. all failed: done(undefined), the caller answers SERVFAIL
// Replies are passed through unchanged except the ID (restored to the client's).
import dgram from 'node:dgram';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import type { DnsConfig, DnsCounters, Upstream } from './config.js';
import { readFrames, frame } from './tcp.js';
import { RCODE } from './answer.js';

type Done = (reply: Buffer | undefined) => void;

interface Pending {
  query: Buffer;
  clientId: number;
  id: number;
  next: number;
  timer: NodeJS.Timeout | undefined;
  upstream: Upstream | undefined;
  done: Done;
}

function retryable(reply: Buffer): boolean {
  const rcode = reply[3] & 0x0f;
  return rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED;
}

export class Forwarder {
  private readonly pending = new Map<number, Pending>();
  private inFlight = 0;
  private sock4: dgram.Socket | undefined;
  private sock6: dgram.Socket | undefined;
  private closed = false;

  constructor(private readonly cfg: DnsConfig, private readonly counters: DnsCounters) {}

  private get upstreams(): Upstream[] {
    return this.cfg.upstreams.slice(0, 3);
  }

  /** Forwards one query (a full DNS message); false when refused (too many in flight). */
  forward(query: Buffer, tcp: boolean, done: Done): boolean {
    if (this.inFlight >= this.cfg.maxInFlight || this.closed) return false;
    if (this.upstreams.length === 0) {
      setImmediate(done, undefined);
      return true;
    }
    this.inFlight++;
    this.counters.forwarded++;
    const finish: Done = (reply) => {
      this.inFlight--;
      done(reply);
    };
    if (tcp) this.tcpTry(query, 0, finish);
    else this.udpStart(query, finish);
    return true;
  }

  close(): void {
    this.closed = true;
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.sock4?.close();
    this.sock6?.close();
  }

  // --- UDP ---------------------------------------------------------------------------

  private socket(family: 4 | 6): dgram.Socket {
    let s = family === 4 ? this.sock4 : this.sock6;
    if (!s) {
      s = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
      s.on('message', (msg, rinfo) => this.udpReply(msg, rinfo));
      s.on('error', () => { /* per-send errors surface as timeouts */ });
      s.unref();
      if (family === 4) this.sock4 = s;
      else this.sock6 = s;
    }
    return s;
  }

  private udpStart(query: Buffer, done: Done): void {
    let id: number;
    do id = randomInt(0, 65536); while (this.pending.has(id));
    const p: Pending = { query: Buffer.from(query), clientId: query.readUInt16BE(0), id, next: 0, timer: undefined, upstream: undefined, done };
    p.query.writeUInt16BE(id, 0);
    this.pending.set(id, p);
    this.udpTry(p);
  }

  private udpTry(p: Pending): void {
    const ups = this.upstreams;
    if (p.next >= ups.length) {
      this.pending.delete(p.id);
      p.done(undefined);
      return;
    }
    const u = ups[p.next++];
    p.upstream = u;
    p.timer = setTimeout(() => {
      this.counters.upstreamFailures++;
      this.udpTry(p);
    }, this.cfg.upstreamTimeoutMs);
    this.socket(net.isIPv6(u.host) ? 6 : 4).send(p.query, u.port, u.host, (err) => {
      if (err && this.pending.get(p.id) === p && p.upstream === u) {
        clearTimeout(p.timer);
        this.counters.upstreamFailures++;
        this.udpTry(p);
      }
    });
  }

  private udpReply(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12 || (msg[2] & 0x80) === 0) return;
    const p = this.pending.get(msg.readUInt16BE(0));
    // Only the upstream we asked, from its port: anything else is spoofing or a late reply.
    if (!p || !p.upstream || rinfo.address !== p.upstream.host || rinfo.port !== p.upstream.port) return;
    clearTimeout(p.timer);
    if (retryable(msg)) {
      this.counters.upstreamFailures++;
      this.udpTry(p);
      return;
    }
    this.pending.delete(p.id);
    const reply = Buffer.from(msg);
    reply.writeUInt16BE(p.clientId, 0);
    p.done(reply);
  }

  // --- TCP ---------------------------------------------------------------------------

  private tcpTry(query: Buffer, i: number, done: Done): void {
    const ups = this.upstreams;
    if (i >= ups.length || this.closed) {
      done(undefined);
      return;
    }
    const u = ups[i];
    let settled = false;
    const sock = net.connect({ host: u.host, port: u.port });
    const fail = (): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      this.counters.upstreamFailures++;
      this.tcpTry(query, i + 1, done);
    };
    sock.setTimeout(this.cfg.upstreamTimeoutMs, fail);
    sock.on('error', fail);
    sock.on('close', fail);
    readFrames(sock, 65535, (msg) => {
      if (settled) return;
      if (msg.length < 12 || msg.readUInt16BE(0) !== query.readUInt16BE(0) || retryable(msg)) return fail();
      settled = true;
      sock.destroy();
      done(Buffer.from(msg));
    }, fail);
    sock.write(frame(query));
  }
}
