// The UDP side of sending (behind the DatagramPorts, as wireguard-go keeps GSO behind
// conn.Bind): one queue per send socket (the inner-flow hash picks it, so each flow keeps one UDP
// source port), TCP super-frames cut into segments with room for a header and a trailer, runs of
// equal-size datagrams packed as UDP GSO sends (segments of a super-frame, and consecutive plain
// datagrams for one VTEP, copied together), one sendmmsg per queue per batch, and the fall-back
// to plain datagrams for a destination whose GSO sends the kernel refuses.
// Hot path: nothing here allocates.
import { C, D } from './counters.js';
import type { Network } from './network.js';
import { NumTable } from './numtable.js';
import { GSO_MAX_BYTES, GSO_MAX_SEGS, segmentTcp4, tcp4HeaderLen } from './offload.js';
import type { DatagramPort } from './ports.js';

/** How long a destination gets plain datagrams after the kernel refused a GSO send to it. */
export const GSO_RETRY_MS = 10_000;

/**
 * The errors with which the kernel refuses a UDP GSO send itself (as opposed to the destination
 * being unreachable): EIO (no checksum offload on the route, or xfrm), EINVAL (segment larger than
 * the MTU, too many segments), EMSGSIZE. The addon reports them as lens[i] = -errno.
 */
const EIO = 5;
const EINVAL = 22;
const EMSGSIZE = 90;
function gsoRefusal(negErrno: number): boolean {
  return negErrno === -EIO || negErrno === -EINVAL || negErrno === -EMSGSIZE;
}

/** One send socket's queue of datagrams (or GSO runs of datagrams) for the next sendmmsg. */
export class TxQueue {
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  readonly addrs: Uint32Array;
  readonly ports: Uint16Array;
  /** UDP_SEGMENT size per entry; 0 = one plain datagram. */
  readonly segs: Uint16Array;
  /** Datagrams each entry carries (for counting). */
  readonly dgrams: Uint16Array;
  count = 0;
  constructor(readonly port: DatagramPort, readonly cap: number) {
    this.offs = new Int32Array(cap);
    this.lens = new Int32Array(cap);
    this.addrs = new Uint32Array(cap);
    this.ports = new Uint16Array(cap);
    this.segs = new Uint16Array(cap);
    this.dgrams = new Uint16Array(cap);
  }
}

export class Sender {
  readonly queues: TxQueue[];
  /** Destinations whose GSO sends were refused: (0, VTEP) → a = retry time (s since `epoch`). */
  private readonly noGso = new NumTable(16);
  private noGsoCount = 0;
  private readonly epoch: number;
  /** Runs before anything is written to a socket (the seal stage's batched AEAD call). */
  beforeSend: (() => void) | null = null;
  // Where the last segment() call put its segments.
  segStart = 0;
  segStride = 0;
  segLast = 0;

  constructor(ports: DatagramPort[], cap: number, private readonly vxlanPort: number, private readonly now: () => number = Date.now) {
    this.queues = ports.map((p) => new TxQueue(p, cap));
    this.epoch = now();
  }

  /** The queue (send socket) of a flow. */
  pick(hash: number): TxQueue {
    return this.queues[hash % this.queues.length];
  }

  /**
   * Cut the TCP super-frame at net.rxSlab[off..off+len) into the segmentation area, each segment
   * with `head` free bytes before and `tail` after (segmentTcp4). Returns the segment count (0 if
   * the frame cannot be segmented); segStart/segStride/segLast describe where they are: segment k
   * is the datagram at segStart + k*segStride, segStride bytes long (segLast for the last).
   */
  segment(net: Network, off: number, len: number, mss: number, head: number, tail: number): number {
    const buf = net.rxSlab;
    const segEnd = net.replyOffs[0];
    let n = segmentTcp4(buf, off, len, mss, head, tail, net.segFill, segEnd);
    if (n === -2) {
      this.flush(net);
      n = segmentTcp4(buf, off, len, mss, head, tail, net.segFill, segEnd);
    }
    if (n < 0) return 0;
    const hdr = tcp4HeaderLen(buf, off, len);
    this.segStart = net.segFill;
    this.segStride = head + hdr + mss + tail;
    this.segLast = head + len - (n - 1) * mss + tail;
    net.segFill = this.segStart + (n - 1) * this.segStride + this.segLast;
    net.counters[C.tsoFrames]++;
    net.counters[C.tsoSegments] += n;
    return n;
  }

  /**
   * Queue n datagrams laid out back to back from `start` (all `stride` bytes but the last, `last`)
   * for `vtep`: as GSO runs of up to 64 when the port and the destination take them, else one
   * by one.
   */
  queueRun(net: Network, q: TxQueue, start: number, n: number, stride: number, last: number, vtep: number): void {
    if (n === 1) {
      this.queue(net, q, start, last, vtep, 0, 1);
      return;
    }
    if (!q.port.gso || (this.noGsoCount > 0 && this.gsoRefused(vtep))) {
      for (let k = 0; k < n; k++) this.queue(net, q, start + k * stride, k === n - 1 ? last : stride, vtep, 0, 1);
      return;
    }
    const per = Math.min(GSO_MAX_SEGS, Math.floor(GSO_MAX_BYTES / stride));
    for (let k = 0; k < n; k += per) {
      const m = Math.min(per, n - k);
      const bytes = (m - 1) * stride + (k + m === n ? last : stride);
      this.queue(net, q, start + k * stride, bytes, vtep, m > 1 ? stride : 0, m);
    }
  }

  /**
   * Queue one plain datagram. Back-to-back datagrams of equal size (the last of a run may be
   * shorter) for the same VTEP on this queue join into one GSO run, copied one after the other
   * into the segmentation area: a UDP flood then crosses the underlay as one skb per run and the
   * peer's UDP_GRO socket takes it whole. Only for bytes that are final (not sealed later).
   */
  queueDatagram(net: Network, q: TxQueue, off: number, len: number, vtep: number): void {
    const k = q.count - 1;
    if (k >= 0 && q.addrs[k] === vtep >>> 0 && q.port.gso && this.joins(net, q, k, len) && (this.noGsoCount === 0 || !this.gsoRefused(vtep))) {
      const buf = net.rxSlab;
      if (q.segs[k] === 0) {
        // The run's first datagram moves into the area, where the run grows.
        buf.copyWithin(net.segFill, q.offs[k], q.offs[k] + q.lens[k]);
        q.offs[k] = net.segFill;
        q.segs[k] = q.lens[k];
        net.segFill += q.lens[k];
      }
      buf.copyWithin(net.segFill, off, off + len);
      net.segFill += len;
      q.lens[k] += len;
      q.dgrams[k]++;
      net.counters[C.gsoJoined]++;
      return;
    }
    this.queue(net, q, off, len, vtep, 0, 1);
  }

  /** Whether a datagram of len bytes can extend entry k (see queueDatagram). */
  private joins(net: Network, q: TxQueue, k: number, len: number): boolean {
    const seg = q.segs[k];
    const size = seg === 0 ? q.lens[k] : seg;
    if (len > size || q.ports[k] !== (net.dstPort || this.vxlanPort)) return false;
    if (q.dgrams[k] >= GSO_MAX_SEGS || q.lens[k] + len > GSO_MAX_BYTES) return false;
    // A run grows only at the end of the area and only while its datagrams are all full size.
    if (seg !== 0 && (q.offs[k] + q.lens[k] !== net.segFill || q.lens[k] % seg !== 0)) return false;
    return net.segFill + (seg === 0 ? q.lens[k] : 0) + len <= net.replyOffs[0];
  }

  queue(net: Network, q: TxQueue, off: number, len: number, vtep: number, seg: number, dgrams: number): void {
    if (q.count === q.cap) this.send(net, q);
    const k = q.count++;
    q.offs[k] = off;
    q.lens[k] = len;
    q.addrs[k] = vtep;
    q.ports[k] = net.dstPort || this.vxlanPort;
    q.segs[k] = seg;
    q.dgrams[k] = dgrams;
  }

  /** Send every queued datagram (they all point into this network's slab); free the segment area. */
  flush(net: Network): void {
    for (let k = 0; k < this.queues.length; k++) {
      const q = this.queues[k];
      if (q.count > 0) this.send(net, q);
    }
    net.segFill = net.segStart;
  }

  /** True while GSO to vtep is off after a refusal (and forgets the refusal once it expired). */
  private gsoRefused(vtep: number): boolean {
    const i = this.noGso.find(0, vtep | 0);
    if (i < 0) return false;
    if (this.seconds() < this.noGso.a[i]) return true;
    this.noGso.delete(0, vtep | 0);
    this.noGsoCount--;
    return false;
  }

  private refuseGso(vtep: number): void {
    const until = this.seconds() + Math.ceil(GSO_RETRY_MS / 1000);
    if (this.noGso.find(0, vtep | 0) < 0) this.noGsoCount++;
    this.noGso.set(0, vtep | 0, until);
  }

  private seconds(): number {
    return Math.floor((this.now() - this.epoch) / 1000);
  }

  private send(net: Network, q: TxQueue): void {
    if (this.beforeSend !== null) this.beforeSend();
    // A port returns how many entries it used up; one the kernel refused has its length
    // replaced by -errno. What is left after the count met EAGAIN (buffer full).
    const used = q.port.sendBatch(net.rxSlab, q.offs, q.lens, q.addrs, q.ports, q.segs, 0, q.count);
    let pkts = 0;
    let bytes = 0;
    for (let k = 0; k < q.count; k++) {
      const l = q.lens[k];
      if (k >= used) net.drops[D.udpTxFull] += q.dgrams[k];
      else if (l >= 0) {
        pkts += q.dgrams[k];
        bytes += l;
      } else {
        net.drops[D.udpTxError] += q.dgrams[k];
        // The kernel refused the GSO run itself: plain datagrams to that destination for a while.
        if (q.segs[k] !== 0 && gsoRefusal(l)) this.refuseGso(q.addrs[k]);
      }
    }
    net.counters[C.vxlanTxPackets] += pkts;
    net.counters[C.vxlanTxBytes] += bytes;
    q.count = 0;
  }

  close(except: DatagramPort): void {
    for (const q of this.queues) if (q.port !== except) q.port.close();
  }
}
