// In-memory ports for the CPU microbenches (micro.ts, esp-micro.ts): a TAP that serves copies of
// one frame and counts what is written, and a UDP port that records the first datagrams sent and
// serves them back as one GRO run. No syscalls, so the figures are the datapath's own CPU time.
import { RecvSlots, splitRuns } from '../router/gro-split.js';
import type { DatagramBatch, DatagramPort, FrameBatch, FramePort } from '../router/ports.js';
import { decodeFrames } from '../router/tap-decode.js';

/** Serves `pending` copies of one frame per readBatch (batch-sized); counts frames and bytes written. */
export class BenchTap implements FramePort {
  pending = 0;
  written = 0;
  writtenBytes = 0;
  constructor(readonly vnet: boolean, private readonly frame: Buffer) {}
  readBatch(slab: Buffer, slotSize: number, headroom: number, max: number, out: FrameBatch): number {
    let k = 0;
    while (k < max && k < out.cap && this.pending > 0) {
      slab.set(this.frame, k * slotSize + headroom);
      out.lens[k++] = this.frame.length;
      this.pending--;
    }
    decodeFrames(slab, slotSize, headroom, k, this.vnet, out);
    return k;
  }
  writeBatch(_b: Buffer, _o: Int32Array, lens: Int32Array, start: number, count: number): number {
    this.written += count;
    for (let i = start; i < start + count; i++) this.writtenBytes += lens[i];
    return count;
  }
  onReadable(): void {}
  close(): void {}
}

/**
 * Sender side: records the first send (copy), then only counts; `span` says what is recorded:
 * the first entry ('first') or the whole batch ('batch': GSO entries lie back to back in the
 * slab, so that is the super-frame). Receiver side: serves the recorded run `pending` times.
 */
export class BenchUdp implements DatagramPort {
  sent = 0;
  run: Buffer | null = null;
  seg = 0;
  pending = 0;
  from = 0;
  record = true;
  private readonly slots = new RecvSlots(64);
  constructor(readonly port: number, readonly gso: boolean, readonly gro: boolean, readonly span: 'first' | 'batch' = 'first') {}
  recvBatch(slab: Buffer, slotSize: number, headroom: number, max: number, out: DatagramBatch): number {
    const s = this.slots;
    s.ensure(max);
    let k = 0;
    while (k < max && this.pending > 0 && this.run !== null) {
      slab.set(this.run, k * slotSize + headroom);
      s.lens[k] = this.run.length;
      s.segs[k] = this.seg;
      s.addrs[k] = this.from;
      s.ports[k] = this.port;
      k++;
      this.pending--;
    }
    return splitRuns(slab, slotSize, headroom, k, s, out);
  }
  sendBatch(buf: Buffer, offs: Int32Array, lens: Int32Array, _a: Uint32Array, _p: Uint16Array, segs: Uint16Array, start: number, count: number): number {
    if (this.record && count > 0) {
      const last = this.span === 'batch' ? start + count - 1 : start;
      this.run = Buffer.from(buf.subarray(offs[start], offs[last] + lens[last]));
      this.seg = segs[start];
      this.record = false;
    }
    this.sent += count;
    return count;
  }
  onReadable(): void {}
  close(): void {}
}
