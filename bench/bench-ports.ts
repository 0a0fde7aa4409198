// In-memory ports for the CPU microbenches (micro.ts, esp-micro.ts): a TAP that serves copies of
// one frame and counts what is written, and a UDP port that records the first datagrams sent and
// serves them back as one GRO run; and the TCP frame both benches feed them. No syscalls, so the figures are the datapath's own CPU time.
import { RecvSlots, splitRuns } from '../router/gro-split.js';
import type { DatagramBatch, DatagramPort, FrameBatch, FramePort } from '../router/ports.js';
import { decodeFrames } from '../router/tap-decode.js';
import { emitEth, emitIpv4, ipv4PseudoSum, onesSum, parseIpv4, parseMac } from '../router/wire/index.js';

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

// ---- the frames: container A (10.0.9.2) → B (10.0.9.3), hosts 192.0.2.1 → .2 ------------------

export const SRC = parseIpv4('10.0.9.2');
export const DST = parseIpv4('10.0.9.3');
export const MAC_A = '02:42:0a:00:09:02';
export const MAC_B = '02:42:0a:00:09:03';
export const A = parseIpv4('192.0.2.1');
export const B = parseIpv4('192.0.2.2');

/** TCP/IPv4 frame, 12 bytes of options, ACK|PSH; checksum valid or (tso) partial. */
export function tcpFrame(payloadLen: number, tso: number): Buffer {
  const thl = 32;
  const v = tso > 0 ? 10 : 0;
  const buf = Buffer.alloc(v + 14 + 20 + thl + payloadLen);
  const e = v;
  emitEth({ dst: parseMac(MAC_B), src: parseMac(MAC_A), ethertype: 0x0800, vlan: null }, buf, e);
  emitIpv4({ src: SRC, dst: DST, protocol: 6, ttl: 64, tos: 0, ident: 100, dontFrag: true, moreFrags: false, fragOffset: 0, optionsLen: 0, payloadLen: thl + payloadLen }, buf, e + 14);
  const t = e + 34;
  buf.writeUInt16BE(40000, t);
  buf.writeUInt16BE(5201, t + 2);
  buf.writeUInt32BE(1000, t + 4);
  buf.writeUInt32BE(777, t + 8);
  buf[t + 12] = (thl / 4) << 4;
  buf[t + 13] = 0x10;
  buf.writeUInt16BE(500, t + 14);
  buf[t + 20] = 1;
  for (let i = 0; i < payloadLen; i++) buf[t + thl + i] = (i * 31) & 255;
  const ps = ipv4PseudoSum(SRC, DST, 6, thl + payloadLen);
  if (tso > 0) {
    buf.writeUInt16BE(ps, t + 16);
    buf[0] = 1; // NEEDS_CSUM
    buf[1] = 1; // GSO TCPV4
    buf.writeUInt16LE(14 + 20 + thl, 2);
    buf.writeUInt16LE(tso, 4);
    buf.writeUInt16LE(34, 6);
    buf.writeUInt16LE(16, 8);
  } else {
    buf.writeUInt16BE(~onesSum(buf, t, thl + payloadLen, ps) & 0xffff, t + 16);
  }
  return buf;
}
