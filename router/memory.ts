// In-memory ports for unit tests: a TAP double whose frames the test injects and collects, and
// an underlay "switch" delivering datagrams between datapaths by address. Same interfaces as the
// native ports, so the datapath under test is the production code.
import { RecvSlots, splitRuns } from './gro-split.js';
import type { DatagramBatch, DatagramPort, FrameBatch, FramePort } from './ports.js';
import { decodeFrames } from './tap-decode.js';

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

  readBatch(slab: Buffer, slotSize: number, headroom: number, max: number, out: FrameBatch): number {
    let n = 0;
    while (n < max && n < out.cap && this.inbox.length > 0) {
      const f = this.inbox.shift()!;
      const len = Math.min(f.length, slotSize - headroom);
      f.copy(slab, n * slotSize + headroom, 0, len);
      out.lens[n++] = len;
    }
    decodeFrames(slab, slotSize, headroom, n, this.vnet, out);
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

  bind(addr: number, port = 0, gso = false, gro = false): MemoryUdp {
    const p = port || this.nextPort++;
    const key = `${addr}:${p}`;
    if (this.bound.has(key)) throw new Error(`address in use: ${key}`);
    const u = new MemoryUdp(this, addr, p, gso, gro);
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

  private readonly slots = new RecvSlots(64);

  /**
   * With gso, a run sent with segs[i] > 0 is split into datagrams, as the kernel does. With gro,
   * consecutive queued datagrams of one sender and equal size are received as one run, as UDP_GRO
   * would (up to 64, the last may be shorter).
   */
  constructor(private readonly net: MemoryUnderlay, readonly addr: number, readonly port: number, readonly gso = false, readonly gro = false) {}

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

  recvBatch(slab: Buffer, slotSize: number, headroom: number, max: number, out: DatagramBatch): number {
    const s = this.slots;
    s.ensure(max);
    let n = 0;
    s.segs.fill(0, 0, max);
    while (n < max && this.queue.length > 0) {
      const d = this.queue.shift()!;
      const at = n * slotSize + headroom;
      s.addrs[n] = d.from;
      s.ports[n] = d.fromPort;
      if (d.data.length > slotSize - headroom) {
        s.lens[n++] = -1;
        continue;
      }
      d.data.copy(slab, at);
      let len = d.data.length;
      if (this.gro) {
        // Merge following datagrams of the same sender and size (the last may be shorter).
        let segs = 1;
        while (segs < 64 && this.queue.length > 0) {
          const e = this.queue[0];
          if (e.from !== d.from || e.fromPort !== d.fromPort || e.data.length > d.data.length) break;
          if (len + e.data.length > slotSize - headroom) break;
          this.queue.shift();
          e.data.copy(slab, at + len);
          len += e.data.length;
          segs++;
          if (e.data.length < d.data.length) break;
        }
        if (segs > 1) s.segs[n] = d.data.length;
      }
      s.lens[n++] = len;
    }
    return splitRuns(slab, slotSize, headroom, n, s, out);
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
