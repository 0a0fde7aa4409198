// The real Transport: node:dgram for datagrams and node:net for the reliable exchange, both on
// the same port (7946 by default), like memberlist.
//
// Stream exchange framing: the client connects, writes len:u32be + blob, the server answers
// len:u32be + blob and closes. One exchange per connection (push-pull, TCP ping, IPAM votes
// are rare enough). Blobs above MAX_STREAM are refused.

import { randomBytes, randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import os from 'node:os';
import { formatAddr, MAX_STREAM, parseAddr, type Clock, type Random, type RequestCallback, type Transport, type TransportHandlers } from './transport.js';

export interface UdpTransportOptions {
  /** Default 0.0.0.0. */
  bindAddr?: string;
  /** Default 7946; 0 picks a free port (the same number is used for UDP and TCP). */
  bindPort?: number;
  /** Address peers use to reach us. Default: bindAddr, or the first non-internal IPv4. */
  advertiseAddr?: string;
  advertisePort?: number;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return () => clearTimeout(t);
  },
};

export const cryptoRandom: Random = {
  next: () => randomBytes(6).readUIntBE(0, 6) / 0x1000000000000,
  int: (n) => (n <= 1 ? 0 : randomInt(n)),
  hex: (bytes) => randomBytes(bytes).toString('hex'),
};

function defaultAdvertise(bind: string): string {
  if (bind !== '0.0.0.0' && bind !== '::') return bind;
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** Read one length-prefixed frame from a socket; cb(err) or cb(undefined, blob). */
function readFrame(sock: net.Socket, cb: (err: Error | undefined, blob?: Uint8Array) => void): void {
  const chunks: Buffer[] = [];
  let have = 0;
  let want = -1;
  const onData = (c: Buffer): void => {
    chunks.push(c);
    have += c.length;
    if (want < 0 && have >= 4) {
      want = Buffer.concat(chunks).readUInt32BE(0);
      if (want > MAX_STREAM) return finish(new Error(`stream frame of ${want} bytes exceeds limit`));
    }
    if (want >= 0 && have >= 4 + want) {
      const all = Buffer.concat(chunks);
      finish(undefined, new Uint8Array(all.buffer, all.byteOffset + 4, want));
    }
  };
  const onEnd = (): void => finish(new Error('stream closed before a full frame'));
  const onError = (e: Error): void => finish(e);
  const finish = (err: Error | undefined, blob?: Uint8Array): void => {
    sock.off('data', onData);
    sock.off('end', onEnd);
    sock.off('error', onError);
    cb(err, blob);
  };
  sock.on('data', onData);
  sock.on('end', onEnd);
  sock.on('error', onError);
}

function frame(blob: Uint8Array): Buffer {
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(blob.length, 0);
  return Buffer.concat([head, blob]);
}

export class UdpTransport implements Transport {
  readonly clock = realClock;
  readonly random = cryptoRandom;
  readonly simulated = false;
  private udp: dgram.Socket | undefined;
  private tcp: net.Server | undefined;
  private readonly open = new Set<net.Socket>();
  private port = 0;
  private readonly bindAddr: string;

  constructor(private readonly opts: UdpTransportOptions = {}) {
    this.bindAddr = opts.bindAddr ?? '0.0.0.0';
  }

  async start(h: TransportHandlers): Promise<void> {
    const want = this.opts.bindPort ?? 7946;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.bind(want, h);
        return;
      } catch (e) {
        await this.stop();
        if (want !== 0 || attempt >= 10 || (e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
      }
    }
  }

  private async bind(port: number, h: TransportHandlers): Promise<void> {
    const udp = dgram.createSocket({ type: this.bindAddr.includes(':') ? 'udp6' : 'udp4', reuseAddr: false });
    this.udp = udp;
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, this.bindAddr, () => {
        udp.off('error', reject);
        resolve();
      });
    });
    udp.on('error', () => {
      /* ICMP errors etc.: datagrams are best effort */
    });
    udp.on('message', (msg, rinfo) => h.onPacket(formatAddr(rinfo.address, rinfo.port), new Uint8Array(msg.buffer, msg.byteOffset, msg.length)));
    this.port = udp.address().port;
    const tcp = net.createServer((sock) => this.serve(sock, h));
    this.tcp = tcp;
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(this.port, this.bindAddr, () => {
        tcp.off('error', reject);
        resolve();
      });
    });
  }

  private serve(sock: net.Socket, h: TransportHandlers): void {
    this.open.add(sock);
    sock.on('close', () => this.open.delete(sock));
    sock.setTimeout(30_000, () => sock.destroy());
    sock.on('error', () => sock.destroy());
    const from = formatAddr(sock.remoteAddress ?? '?', sock.remotePort ?? 0);
    readFrame(sock, (err, blob) => {
      if (err || !blob) return sock.destroy();
      h.onRequest(from, blob, (resp) => {
        if (!resp) return sock.destroy();
        sock.end(frame(resp));
      });
    });
  }

  localAddr(): string {
    return formatAddr(this.opts.advertiseAddr ?? defaultAdvertise(this.bindAddr), this.opts.advertisePort ?? this.port);
  }

  sendPacket(to: string, data: Uint8Array): void {
    const udp = this.udp;
    if (!udp) return;
    let a: { host: string; port: number };
    try {
      a = parseAddr(to);
    } catch {
      return;
    }
    udp.send(data, a.port, a.host, () => {
      /* errors are loss */
    });
  }

  request(to: string, data: Uint8Array, timeoutMs: number, cb: RequestCallback): void {
    let a: { host: string; port: number };
    try {
      a = parseAddr(to);
    } catch (e) {
      return cb(e as Error);
    }
    let done = false;
    const sock = net.connect({ host: a.host, port: a.port });
    this.open.add(sock);
    const finish = (err: Error | undefined, blob?: Uint8Array): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.open.delete(sock);
      sock.destroy();
      cb(err, blob);
    };
    const timer = setTimeout(() => finish(new Error(`request to ${to} timed out after ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    sock.on('error', (e) => finish(e));
    sock.on('connect', () => sock.write(frame(data)));
    readFrame(sock, finish);
  }

  async stop(): Promise<void> {
    for (const s of this.open) s.destroy();
    this.open.clear();
    const udp = this.udp;
    const tcp = this.tcp;
    this.udp = undefined;
    this.tcp = undefined;
    if (udp) {
      await new Promise<void>((r) => {
        try {
          udp.close(() => r());
        } catch {
          r(); // never bound
        }
      });
    }
    if (tcp) await new Promise<void>((r) => tcp.close(() => r()));
  }
}
