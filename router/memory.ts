// In-memory ports for unit tests: a TAP double whose frames the test injects and collects, and
// an underlay "switch" delivering datagrams between datapaths by address. Same interfaces as the
// native ports, so the datapath under test is the production code.
import type { DatagramPort, FramePort } from './ports.js';

export class MemoryTap implements FramePort {
  /** With vnet, injected and written frames carry a 10-byte virtio header in front. */
  constructor(readonly vnet = false) {}
  /** Frames waiting to be read by the datapath (as if sent by local containers). */
  readonly inbox: Buffer[] = [];
  /** Frames the datapath wrote (delivered to local containers). */
  readonly written: Buffer[] = [];
  /** When set, writeBatch accepts at most this many frames per call. */
  acceptLimit = Infinity;
  private cb: (() => void) | undefined;
  closed = false;

  inject(...frames: Buffer[]): void {
    this.inbox.push(...frames);
    this.cb?.();
  }

  readBatch(slab: Buffer, slotSize: number, headroom: number, max: number, lens: Int32Array): number {
    let n = 0;
    while (n < max && this.inbox.length > 0) {
      const f = this.inbox.shift()!;
      const len = Math.min(f.length, slotSize - headroom);
      f.copy(slab, n * slotSize + headroom, 0, len);
      lens[n++] = len;
    }
    return n;
  }

  writeBatch(buf: Buffer, offs: Int32Array, lens: Int32Array, start: number, count: number): number {
    const n = Math.min(count, this.acceptLimit);
    for (let i = start; i < start + n; i++) this.written.push(Buffer.from(buf.subarray(offs[i], offs[i] + lens[i])));
    return n;
  }

  onReadable(cb: () => void): void {
    this.cb = cb;
  }

  close(): void {
    this.closed = true;
  }
}

export interface SentDatagram {
  from: number;
  fromPort: number;
  to: number;
  toPort: number;
  data: Buffer;
}

/** An underlay with addresses; ports bound to (addr, port) receive what others send there. */
export class MemoryUnderlay {
  private readonly bound = new Map<string, MemoryUdp>();
  /** Every datagram sent, for assertions. */
  readonly log: SentDatagram[] = [];
  private nextPort = 40000;

  bind(addr: number, port = 0, gso = false): MemoryUdp {
    const p = port || this.nextPort++;
    const key = `${addr}:${p}`;
    if (this.bound.has(key)) throw new Error(`address in use: ${key}`);
    const u = new MemoryUdp(this, addr, p, gso);
    this.bound.set(key, u);
    return u;
  }

  deliver(d: SentDatagram): void {
    this.log.push(d);
    this.bound.get(`${d.to}:${d.toPort}`)?.enqueue(d);
  }

  /** Inject a datagram from anywhere (e.g. a hostile sender). */
  inject(from: number, fromPort: number, to: number, toPort: number, data: Buffer): void {
    this.deliver({ from, fromPort, to, toPort, data });
  }
}

export class MemoryUdp implements DatagramPort {
  private readonly queue: SentDatagram[] = [];
  private cb: (() => void) | undefined;
  private scheduled = false;

  readonly gro = false;

  /** With gso, a run sent with segs[i] > 0 is split into datagrams, as the kernel does. */
  constructor(private readonly net: MemoryUnderlay, readonly addr: number, readonly port: number, readonly gso = false) {}

  enqueue(d: SentDatagram): void {
    this.queue.push(d);
    // Deliver asynchronously, like a socket becoming readable on the next loop turn.
    if (this.cb && !this.scheduled) {
      this.scheduled = true;
      queueMicrotask(() => {
        this.scheduled = false;
        this.cb?.();
      });
    }
  }

  recvBatch(slab: Buffer, slotSize: number, headroom: number, max: number, lens: Int32Array, addrs: Uint32Array, ports: Uint16Array, segs: Uint16Array): number {
    let n = 0;
    segs.fill(0, 0, max);
    while (n < max && this.queue.length > 0) {
      const d = this.queue.shift()!;
      if (d.data.length > slotSize - headroom) {
        lens[n] = -1;
      } else {
        d.data.copy(slab, n * slotSize + headroom);
        lens[n] = d.data.length;
      }
      addrs[n] = d.from;
      ports[n] = d.fromPort;
      n++;
    }
    return n;
  }

  /** Pretend to be a kernel that refuses GSO sends (EIO: no checksum offload on the route). */
  refuseGso = false;
  /** Every GSO run sent, as (segment size, datagram count), for assertions. */
  readonly gsoRuns: [number, number][] = [];

  sendBatch(buf: Buffer, offs: Int32Array, lens: Int32Array, addrs: Uint32Array, ports: Uint16Array, segs: Uint16Array, start: number, count: number): number {
    for (let i = start; i < start + count; i++) {
      if (segs[i] !== 0 && (!this.gso || this.refuseGso)) {
        lens[i] = -5; // EIO, as a kernel without GSO support says
        continue;
      }
      const seg = segs[i] || lens[i];
      if (segs[i] !== 0) this.gsoRuns.push([seg, Math.ceil(lens[i] / seg)]);
      for (let o = 0; o < lens[i]; o += seg) {
        const data = Buffer.from(buf.subarray(offs[i] + o, offs[i] + Math.min(lens[i], o + seg)));
        this.net.deliver({ from: this.addr, fromPort: this.port, to: addrs[i], toPort: ports[i], data });
      }
    }
    return count;
  }

  onReadable(cb: () => void): void {
    this.cb = cb;
  }

  close(): void {
    this.cb = undefined;
  }
}
