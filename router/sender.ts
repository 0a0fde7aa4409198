// How VXLAN datagrams leave: one queue per send socket (the inner-flow hash picks it, so each
// flow keeps one UDP source port), TCP super-frames cut into segments and queued as UDP GSO
// runs, one sendmmsg per queue per batch, and the fall-back to plain datagrams when the kernel
// refuses GSO. Hot path: nothing here allocates.
import { C, D } from './counters.js';
import { VXLAN_HDR, writeVxlan, type Network } from './network.js';
import { GSO_MAX_BYTES, GSO_MAX_SEGS, segmentTcp4, tcp4HeaderLen } from './offload.js';
import type { DatagramPort } from './ports.js';

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
  /** Set when the kernel refused a GSO send (no checksum offload, MTU): plain sends from then on. */
  private gsoBroken = false;

  constructor(ports: DatagramPort[], cap: number, private readonly vxlanPort: number) {
    this.queues = ports.map((p) => new TxQueue(p, cap));
  }

  /** The queue (send socket) of a flow. */
  pick(hash: number): TxQueue {
    return this.queues[hash % this.queues.length];
  }

  /** Cut a TCP super-frame into VXLAN datagrams in the segmentation area; queue them as GSO runs. */
  segments(net: Network, q: TxQueue, off: number, len: number, mss: number, vtep: number): void {
    const buf = net.rxSlab;
    const segEnd = net.replyOffs[0];
    let n = segmentTcp4(buf, off, len, mss, VXLAN_HDR, net.segFill, segEnd);
    if (n === -2) {
      this.flush(net);
      n = segmentTcp4(buf, off, len, mss, VXLAN_HDR, net.segFill, segEnd);
    }
    if (n < 0) {
      net.drops[D.badOffload]++;
      return;
    }
    const hdr = tcp4HeaderLen(buf, off, len);
    const stride = VXLAN_HDR + hdr + mss;
    const last = VXLAN_HDR + len - (n - 1) * mss;
    const start = net.segFill;
    for (let k = 0; k < n; k++) writeVxlan(buf, start + k * stride, net.vni);
    net.segFill = start + (n - 1) * stride + last;
    net.counters[C.tsoFrames]++;
    net.counters[C.tsoSegments] += n;
    if (this.gsoBroken || !q.port.gso) {
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

  queue(net: Network, q: TxQueue, off: number, len: number, vtep: number, seg: number, dgrams: number): void {
    if (q.count === q.cap) this.send(net, q);
    const k = q.count++;
    q.offs[k] = off;
    q.lens[k] = len;
    q.addrs[k] = vtep;
    q.ports[k] = this.vxlanPort;
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

  private send(net: Network, q: TxQueue): void {
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
        if (q.segs[k] !== 0) this.gsoBroken = true; // EIO/EMSGSIZE on a GSO run: send plainly from now on
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
