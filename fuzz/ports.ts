// Datapath edges for fuzzing: the router/ports.ts interfaces, fed by a generator instead of a
// socket or a TAP, and counting (not keeping) what the datapath writes. router/memory.ts keeps
// every datagram for assertions, which 10 million inputs cannot afford. What the real ports do
// behind the interface runs here too: the UDP side lists GRO runs through gro-split.ts, the TAP
// side decodes virtio headers through tap-decode.ts. The datapath under test is the production
// code, driven through its public API (constructor, addNetwork, setLocal/setRemote, pumpUdp/pumpTap).
import { RecvSlots, splitRuns } from '../router/gro-split.js';
import type { DatagramBatch, DatagramPort, FrameBatch, FramePort } from '../router/ports.js';
import { decodeFrames } from '../router/tap-decode.js';

/** Fills buf[at..at+max) with the next input and returns its length. */
export type Generate = (dst: Buffer, at: number, max: number) => number;

export class FuzzUdp implements DatagramPort {
  readonly gso = false;
  /** Slots (datagrams, or GRO runs) still to hand out on recvBatch. */
  pending = 0;
  /** Datagrams listed to the datapath (a GRO run counts each of its datagrams). */
  listed = 0;
  /** Datagrams the datapath sent (sendBatch entries). */
  sent = 0;
  /** Source address the next slot claims (a known VTEP or a stranger). */
  from: () => number = () => 0;
  /** With gro, the GRO segment size of the next slot (0 = a single datagram). */
  groSize: (len: number) => number = () => 0;
  private readonly slots = new RecvSlots(64);

  constructor(readonly port: number, private readonly gen: Generate, readonly gro = false) {}

  recvBatch(slab: Buffer, slotSize: number, headroom: number, max: number, out: DatagramBatch): number {
    const s = this.slots;
    s.ensure(max);
    const n = Math.min(max, this.pending);
    for (let i = 0; i < n; i++) {
      const len = this.gen(slab, i * slotSize + headroom, slotSize - headroom);
      s.lens[i] = len;
      s.addrs[i] = this.from();
      s.ports[i] = 4789;
      s.segs[i] = this.gro ? this.groSize(len) : 0;
    }
    this.pending -= n;
    const k = splitRuns(slab, slotSize, headroom, n, s, out);
    this.listed += k;
    return k;
  }

  sendBatch(_buf: Buffer, _offs: Int32Array, _lens: Int32Array, _addrs: Uint32Array, _ports: Uint16Array, _segs: Uint16Array, _start: number, count: number): number {
    this.sent += count;
    return count;
  }

  onReadable(): void {}
  close(): void {}
}

export class FuzzTap implements FramePort {
  pending = 0;
  /** Frames the datapath wrote into the TAP (ARP replies, delivered frames). */
  written = 0;

  constructor(readonly vnet: boolean, private readonly gen: Generate) {}

  readBatch(slab: Buffer, slotSize: number, headroom: number, max: number, out: FrameBatch): number {
    const n = Math.min(max, out.cap, this.pending);
    for (let i = 0; i < n; i++) out.lens[i] = this.gen(slab, i * slotSize + headroom, slotSize - headroom);
    this.pending -= n;
    decodeFrames(slab, slotSize, headroom, n, this.vnet, out);
    return n;
  }

  writeBatch(_buf: Buffer, _offs: Int32Array, _lens: Int32Array, _start: number, count: number): number {
    this.written += count;
    return count;
  }

  onReadable(): void {}
  close(): void {}
}
