// Egress: a frame from a local container (read from the network's TAP) to the wire. The loop in
// datapath.ts (pumpTap) runs these steps per frame, in this order; each returns a verdict
// (counters.ts: PASS, CONSUMED or a drop reason) and the loop counts the drops.
//
//   0. FramePort.readBatch  the port decoded the virtio header: TSO size, checksum finished
//                           (drops arrive as verdicts: tapShort, unsupportedGso, badOffload)
//   1. countRx              per-network receive counters
//   2. checkSource          the source MAC is a local endpoint                 (tapUnknownSrc)
//   3. groupFrame           (isGroup) broadcast/multicast: ARP answered from the tables, else head-end
//                           replication to static VTEPs             (CONSUMED, arp*, broadcastNoFlood)
//   4. [dns]                net.dns: queries to the embedded resolver taken here (dns/, future)
//   5. dnat                 (net.vips) a service VIP rewritten to a task, a mesh reply steered to
//                           its host; a task on this host: back into the TAP (loopback)
//                           (balancer/vip-stage.ts: vipMalformed, vipRefused, vipNoTask, ...)
//   6. lookupVtep           destination MAC → VTEP                             (unknownDst, localDst)
//   7. encapsulate          TSO super-frames cut into segments; the VXLAN header written in front
//                           of each datagram, in place                         (badOffload)
//   8. [seal]               net.sa: each datagram ESP-sealed in place, one AEAD call per batch
//                           (crypto/seal.ts)                                   (espNoSa)
//   9. enqueue              the flow's send socket (inner-flow hash), as GSO runs (CONSUMED)
//
// A new feature is one numbered line here and one function, called from egress() behind its
// null check. Hot path: no allocation; headers through router/wire.
import { answerArp } from './arp.js';
import { C, CONSUMED, D, LOOPBACK, PASS } from './counters.js';
import { dnat } from '../balancer/vip-stage.js';
import type { VipState } from '../balancer/vips.js';
import type { Network } from './network.js';
import type { Sender } from './sender.js';
import { seal, sealTail } from '../crypto/seal.js';
import {
  EtherType, MAC_HI_GROUP, VXLAN_HEADER_LEN, ethDstHi, ethDstLo, ethSrcHi, ethSrcLo, ethType, flowHash,
  writeVxlanHeader,
} from './wire/index.js';

/**
 * The frame the egress stages work on (one object per datapath, reused): net.rxSlab[off..off+len)
 * is the Ethernet frame, with at least HEADROOM bytes free before it and TAILROOM after.
 */
export class EgressFrame {
  off = 0;
  len = 0;
  /** TSO segment size; 0 = one ordinary frame. */
  mss = 0;
  /** Set by lookupVtep. */
  vtep = 0;
  // Set by encapsulate: n datagrams from start, stride bytes apart, the last `last` bytes long.
  start = 0;
  n = 0;
  stride = 0;
  last = 0;
  /** Bytes left free behind each inner frame (the seal stage's room). */
  tail = 0;

  set(off: number, len: number, mss: number): void {
    this.off = off;
    this.len = len;
    this.mss = mss;
    this.vtep = 0;
  }
}

/** Steps 1 to 9 for one frame. */
export function egress(net: Network, e: EgressFrame, tx: Sender): number {
  countRx(net, e);
  let v = checkSource(net, e);
  if (v !== PASS) return v;
  if (isGroup(net, e)) return groupFrame(net, e, tx); // never PASS
  // 4. if (net.dns !== null) { v = resolverQuery(net, net.dns, e); if (v !== PASS) return v; }
  if (net.vips !== null) {
    v = dnat(net, net.vips, e);
    if (v === LOOPBACK) return loopback(net, net.vips, e, tx);
    if (v !== PASS) return v;
  }
  v = lookupVtep(net, e);
  if (v !== PASS) return v;
  v = encapsulate(net, e, tx);
  if (v !== PASS) return v;
  if (net.sa !== null) {
    v = seal(net, net.sa, e);
    if (v !== PASS) return v;
  }
  return enqueue(net, e, tx);
}

// 1.
export function countRx(net: Network, e: EgressFrame): void {
  net.counters[C.tapRxFrames]++;
  net.counters[C.tapRxBytes] += e.len;
}

// 2.
export function checkSource(net: Network, e: EgressFrame): number {
  return net.local.find(ethSrcHi(net.rxSlab, e.off), ethSrcLo(net.rxSlab, e.off)) < 0 ? D.tapUnknownSrc : PASS;
}

// 3. Group bit: broadcast or multicast. ARP for a known endpoint is answered here; anything else
// crosses only to static VTEPs (head-end replication), never to tapmesh peers. Unicast goes on
// (the test is inline in egress(), so a unicast frame pays no call).
export function isGroup(net: Network, e: EgressFrame): boolean {
  return (ethDstHi(net.rxSlab, e.off) & MAC_HI_GROUP) !== 0;
}

/** For a group frame (isGroup): CONSUMED or a drop reason, never PASS. */
export function groupFrame(net: Network, e: EgressFrame, tx: Sender): number {
  const buf = net.rxSlab;
  if (ethType(buf, e.off) === EtherType.Arp) {
    const v = answerArp(net, buf, e.off, e.len);
    if (v !== PASS) return v;
  }
  const statics = net.staticVteps;
  // An encrypted network never floods: static VTEPs have no SA (and are refused on it).
  if (statics.length === 0 || e.mss !== 0 || net.sa !== null) return D.broadcastNoFlood;
  // One VXLAN header, sent to each static VTEP.
  const at = e.off - VXLAN_HEADER_LEN;
  writeVxlanHeader(buf, at, net.vni);
  const q = tx.queues[0];
  for (let s = 0; s < statics.length; s++) {
    tx.queue(net, q, at, e.len + VXLAN_HEADER_LEN, statics[s], 0, 1);
    net.counters[C.broadcastReplicated]++;
  }
  return CONSUMED;
}

// 5b. A frame the VIP stage rewrote for a container on this host goes back into the TAP; a TSO
// super-frame is cut into segments first (the TAP takes them as plain frames).
export function loopback(net: Network, vips: VipState, e: EgressFrame, tx: Sender): number {
  if (e.mss === 0) {
    vips.back(e.off, e.len);
    return CONSUMED;
  }
  const pre = vips.pre();
  const n = tx.segment(net, e.off, e.len, e.mss, pre, 0);
  if (n === 0) return D.badOffload;
  for (let k = 0; k < n; k++) vips.back(tx.segStart + k * tx.segStride + pre, (k === n - 1 ? tx.segLast : tx.segStride) - pre);
  vips.flushBack(); // before another segment() may reuse the area
  return CONSUMED;
}

// 6. (e.vtep already set: the VIP stage steered a mesh reply.)
export function lookupVtep(net: Network, e: EgressFrame): number {
  if (e.vtep !== 0) return PASS;
  const hi = ethDstHi(net.rxSlab, e.off);
  const lo = ethDstLo(net.rxSlab, e.off);
  const r = net.remote.find(hi, lo);
  if (r < 0) return net.local.find(hi, lo) >= 0 ? D.localDst : D.unknownDst;
  e.vtep = net.remote.a[r];
  return PASS;
}

// 7. Datagram k is buf[start + k*stride ..) with net.encapHead bytes before the inner frame (the
// VXLAN header in the last 8 of them) and net.encapTail after it, left for the seal stage.
export function encapsulate(net: Network, e: EgressFrame, tx: Sender): number {
  const head = net.encapHead;
  // With ESP the tail is exact per super-frame, so that equal segments stay equal (GSO runs).
  const tail = net.sa === null || e.mss === 0 ? net.encapTail : sealTail(net.rxSlab, e.off, e.len, e.mss);
  e.tail = tail;
  const vx = head - VXLAN_HEADER_LEN;
  if (e.mss === 0) {
    e.start = e.off - head;
    e.n = 1;
    e.stride = e.last = head + e.len + tail;
    writeVxlanHeader(net.rxSlab, e.off - VXLAN_HEADER_LEN, net.vni);
    return PASS;
  }
  const n = tx.segment(net, e.off, e.len, e.mss, head, tail);
  if (n === 0) return D.badOffload;
  e.start = tx.segStart;
  e.n = n;
  e.stride = tx.segStride;
  e.last = tx.segLast;
  for (let k = 0; k < n; k++) writeVxlanHeader(net.rxSlab, e.start + k * e.stride + vx, net.vni);
  return PASS;
}

// 9.
export function enqueue(net: Network, e: EgressFrame, tx: Sender): number {
  const q = tx.pick(flowHash(net.rxSlab, e.off, e.len));
  // Sealed datagrams stay where the seal stage found them (it seals in place before the send).
  if (e.n === 1 && net.sa === null) tx.queueDatagram(net, q, e.start, e.last, e.vtep);
  else if (e.n === 1) tx.queue(net, q, e.start, e.last, e.vtep, 0, 1);
  else tx.queueRun(net, q, e.start, e.n, e.stride, e.last, e.vtep);
  return CONSUMED;
}
