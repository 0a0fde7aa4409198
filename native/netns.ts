// Sockets that live in another network namespace (a container's, a network sandbox's), used
// from this process's event loop. The addon creates the socket inside the namespace
// (socketInNetns) and binds it; everything after that is ordinary Node:
//   1. TCP server:  socketInNetns + socketBind, then net.Server.listen({ fd }) (libuv listens).
//   2. TCP client:  socketInNetns, new net.Socket({ fd }) on the still unconnected socket, then
//                   socket.connect(): libuv does the nonblocking connect, errors such as
//                   ECONNREFUSED arrive as 'error' (checked on Node 20.20).
//   3. UDP socket:  dgram cannot adopt a descriptor, so the addon's batched udpRecv/udpSend
//                   run on it under pollReadable (IPv4 only: udpRecv/udpSend speak sockaddr_in).
import net from 'node:net';
import { native, type PollHandle } from './index.js';
import { parseIpv4 as ipv4ToNum } from '../router/wire/addr.js';

/** A netns given as a name (ip netns), a PID, or a path; returns the path to open. */
export function netnsPath(ns: string | number): string {
  if (typeof ns === 'number' || /^\d+$/.test(ns)) return `/proc/${ns}/ns/net`;
  return ns.includes('/') ? ns : `/run/netns/${ns}`;
}

export function familyOf(addr: string): 4 | 6 {
  const f = net.isIP(addr);
  if (f === 0) throw new Error(`not a numeric IP address: ${addr}`);
  return f as 4 | 6;
}

/** A TCP server listening at addr:port inside the namespace. Resolves once listening. */
export async function listenTcpInNetns(ns: string | number, addr: string, port: number,
  onConnection?: (s: net.Socket) => void, backlog = 511): Promise<net.Server> {
  const n = native();
  const fd = n.socketInNetns(netnsPath(ns), familyOf(addr), 'tcp');
  try {
    n.socketBind(fd, addr, port);
  } catch (err) {
    n.close(fd);
    throw err;
  }
  const server = net.createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    // From here Node owns the descriptor: server.close() releases it.
    server.once('error', reject);
    server.listen({ fd, backlog }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}

/**
 * A TCP connection to addr:port originated inside the namespace (source address chosen by
 * that namespace's routing). Resolves when connected; rejects with the connect error
 * (code ECONNREFUSED, EHOSTUNREACH...) or ETIMEDOUT after timeoutMs. The socket is not
 * destroyed on later errors: the caller owns it.
 */
export function connectTcpInNetns(ns: string | number, addr: string, port: number, timeoutMs = 5000): Promise<net.Socket> {
  return connectTcpOnFd(native().socketInNetns(netnsPath(ns), familyOf(addr), 'tcp'), String(ns), addr, port, timeoutMs);
}

/**
 * connectTcpInNetns on a TCP socket the caller made in the namespace (native/netns-pool.ts);
 * the descriptor is Node's from here on (closed on failure). `where` names it in errors.
 */
export function connectTcpOnFd(fd: number, where: string, addr: string, port: number, timeoutMs: number): Promise<net.Socket> {
  let sock: net.Socket;
  try {
    sock = new net.Socket({ fd, readable: true, writable: true });
  } catch (err) {
    native().close(fd);
    throw err;
  }
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sock.destroy();
      reject(Object.assign(new Error(`connect ${addr}:${port} in ${where}: timed out`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    sock.once('error', onError);
    sock.connect(port, addr, () => {
      clearTimeout(timer);
      sock.off('error', onError);
      resolve(sock);
    });
  });
}

/** One received datagram; `data` is a view into the receive slab, valid only during the call. */
export type UdpHandler = (data: Buffer, addr: number, port: number) => void;

export interface NetnsUdpOptions {
  /** Datagrams read per wake-up (recvmmsg batch). */
  batch?: number;
  /** Largest datagram accepted, bytes; longer ones are dropped and counted. */
  maxDatagram?: number;
  /** Bytes of replies that can wait for one sendmmsg; more are dropped and counted. */
  sendQueueBytes?: number;
}

/**
 * An IPv4 UDP socket bound inside a namespace, read in batches on this thread's loop. send()
 * queues; the queue goes out in one sendmmsg after the current receive batch, or on the next
 * tick when send() is called outside one (a forwarded answer).
 */
export class NetnsUdp {
  readonly port: number;
  /** Datagrams dropped: too long to receive, send queue full, or refused by the kernel. */
  readonly drops = { truncated: 0, queueFull: 0, sendFailed: 0 };
  private readonly n = native();
  private readonly fd: number;
  private readonly poll: PollHandle;
  private readonly slot: number;
  private readonly max: number;
  private readonly slab: Buffer;
  private readonly lens: Int32Array;
  private readonly addrs: Uint32Array;
  private readonly ports: Uint16Array;
  private readonly out: Buffer;
  private readonly oOffs: Int32Array;
  private readonly oLens: Int32Array;
  private readonly oAddrs: Uint32Array;
  private readonly oPorts: Uint16Array;
  private oCount = 0;
  private oBytes = 0;
  private inBatch = false;
  private flushScheduled = false;
  private closed = false;

  private constructor(fd: number, port: number, private readonly onMessage: UdpHandler, o: NetnsUdpOptions) {
    this.fd = fd;
    this.port = port;
    this.max = o.batch ?? 64;
    this.slot = (o.maxDatagram ?? 4096) + 1;
    this.slab = Buffer.alloc(this.slot * this.max);
    this.lens = new Int32Array(this.max);
    this.addrs = new Uint32Array(this.max);
    this.ports = new Uint16Array(this.max);
    const qBytes = o.sendQueueBytes ?? 1 << 20;
    this.out = Buffer.alloc(qBytes);
    const qMax = 1024;
    this.oOffs = new Int32Array(qMax);
    this.oLens = new Int32Array(qMax);
    this.oAddrs = new Uint32Array(qMax);
    this.oPorts = new Uint16Array(qMax);
    this.poll = this.n.pollReadable(fd, () => this.readable());
  }

  /** Binds addr:port (IPv4, numeric) inside the namespace and starts reading. */
  static bind(ns: string | number, addr: string, port: number, onMessage: UdpHandler, o: NetnsUdpOptions = {}): NetnsUdp {
    if (net.isIPv4(addr) === false) throw new Error(`NetnsUdp is IPv4 only: ${addr}`);
    const n = native();
    const fd = n.socketInNetns(netnsPath(ns), 4, 'udp');
    try {
      const bound = n.socketBind(fd, addr, port);
      return new NetnsUdp(fd, bound, onMessage, o);
    } catch (err) {
      n.close(fd);
      throw err;
    }
  }

  /** Queues one datagram to addr:port (addr as host-order u32 or dotted quad). False if dropped. */
  send(data: Uint8Array, addr: number | string, port: number): boolean {
    if (this.closed) return false;
    if (this.oCount === this.oOffs.length || this.oBytes + data.length > this.out.length) {
      this.flush();
      if (this.oCount === this.oOffs.length || this.oBytes + data.length > this.out.length) {
        this.drops.queueFull++;
        return false;
      }
    }
    const i = this.oCount++;
    this.out.set(data, this.oBytes);
    this.oOffs[i] = this.oBytes;
    this.oLens[i] = data.length;
    this.oAddrs[i] = typeof addr === 'number' ? addr : ipv4ToNum(addr);
    this.oPorts[i] = port;
    this.oBytes += data.length;
    if (!this.inBatch && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    this.poll.close();
    this.n.close(this.fd);
  }

  private readable(): void {
    if (this.closed) return;
    this.inBatch = true;
    try {
      const got = this.n.udpRecv(this.fd, this.slab, this.slot, 0, this.max, this.lens, this.addrs, this.ports);
      for (let i = 0; i < got; i++) {
        const len = this.lens[i];
        // A datagram as long as the slot may have been cut: treat it like MSG_TRUNC.
        if (len < 0 || len >= this.slot) {
          this.drops.truncated++;
          continue;
        }
        const off = i * this.slot;
        this.onMessage(this.slab.subarray(off, off + len), this.addrs[i], this.ports[i]);
      }
    } finally {
      this.inBatch = false;
      this.flush();
    }
  }

  private flush(): void {
    if (this.closed || this.oCount === 0) return;
    const count = this.oCount;
    const sent = this.n.udpSend(this.fd, this.out, this.oOffs, this.oLens, this.oAddrs, this.oPorts, 0, count);
    for (let i = 0; i < sent; i++) if (this.oLens[i] < 0) this.drops.sendFailed++;
    // EAGAIN (send buffer full): the rest is dropped, as a congested UDP path would.
    this.drops.sendFailed += count - sent;
    this.oCount = 0;
    this.oBytes = 0;
  }
}

