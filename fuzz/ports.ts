// Datapath edges for fuzzing: the router/ports.ts interfaces, fed by a generator instead of a
// socket or a TAP, and counting (not keeping) what the datapath writes. router/memory.ts keeps
// every datagram for assertions, which 10 million inputs cannot afford; the datapath under test
// is the production code either way, driven through its public API (constructor, addNetwork,
// setLocal/setRemote, pumpUdp/pumpTap).
import type { DatagramPort, FramePort } from '../router/ports.js';

/** Fills `dst` (at most `max` bytes) with the next input and returns its length. */
export type Generate = (dst: Buffer, at: number, max: number) => number;

export class FuzzUdp implements DatagramPort {
  readonly gso = false;
  readonly gro = false;
  /** Inputs still to hand out on recvBatch. */
  pending = 0;
  /** Datagrams the datapath sent (sendBatch entries). */
  sent = 0;
  /** Source address the next datagrams claim (a known VTEP or a stranger). */
  from: () => number = () => 0;

  constructor(readonly port: number, private readonly gen: Generate) {}

  recvBatch(slab: Buffer, slotSize: number, headroom: number, max: number, lens: Int32Array, addrs: Uint32Array, ports: Uint16Array, segs: Uint16Array): number {
    const n = Math.min(max, this.pending);
    for (let i = 0; i < n; i++) {
      lens[i] = this.gen(slab, i * slotSize + headroom, slotSize - headroom);
      addrs[i] = this.from();
      ports[i] = 4789;
      segs[i] = 0;
    }
    this.pending -= n;
    return n;
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

  readBatch(slab: Buffer, slotSize: number, headroom: number, max: number, lens: Int32Array): number {
    const n = Math.min(max, this.pending);
    for (let i = 0; i < n; i++) {
      lens[i] = this.gen(slab, i * slotSize + headroom, slotSize - headroom);
    }
    this.pending -= n;
    return n;
  }

  writeBatch(_buf: Buffer, _offs: Int32Array, _lens: Int32Array, _start: number, count: number): number {
    this.written += count;
    return count;
  }

  onReadable(): void {}
  close(): void {}
}
