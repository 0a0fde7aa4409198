// Ingress: a VXLAN datagram from the wire to a local container (written into the network's TAP).
// The loop in datapath.ts (pumpUdp) runs these steps per datagram, in this order; each returns a
// verdict (counters.ts: PASS, CONSUMED or a drop reason) and the loop counts the drops, on the
// network once it is known (from step 3), on the datapath before.
//
//   0. DatagramPort.recvBatch  the port split GRO runs into datagrams      (udpTruncated)
//   1. [open]           datagrams of the ESP socket (UDP 4500): SPI → SA, sender, anti-replay,
//                       opened in place per batch (crypto/open.ts, before ingress() runs; the
//                       VXLAN datagram inside goes on with `opened` set)
//                       (espMalformed, espNoSa, espWrongPeer, espReplay, espAuthFail)
//   2. checkHeader      VXLAN + Ethernet length, flags exactly 0x08, reserved bits zero
//                                                                  (vxlanShort, vxlanBadFlags)
//   2m. recall          the datagram repeats the last one that passed steps 3 to 8 in this batch
//                       (IngressMemo: same sender, VNI, MACs, IPv4 source): their verdict
//                       stands, only step 9 runs again
//   3. demuxVni         VNI → network                                        (unknownVni)
//   4. [requireSa]      net.sa: a datagram that was not opened under a current SA is dropped
//                       (crypto/open.ts)                                     (cleartextOnEncrypted)
//   5. checkVtep        the sender is a VTEP of that network                 (unknownVtep)
//   6. checkSrcMac      the inner source MAC lives behind that VTEP, or is learned from a static
//                       VTEP, up to a cap and with ageing (learned.ts) (spoofedSrcMac, learnedFull)
//   7. checkSrcIp       the inner IPv4 / ARP sender address belongs to that MAC (spoofedSrcIp)
//   8. checkDst         unicast to a local endpoint; broadcast only from static VTEPs
//                                                         (remoteUnknownDst, remoteBroadcast)
//   6m. meshIn          (net.vips, inner source = the mesh MAC) a routing-mesh connection from
//                       another host: tracked, instead of 6 and 7        (meshSpoofed, meshConflict)
//   8m. remember        an IPv4 datagram that passed 3 to 8 (not through 6m) becomes the memo
//   9. unnat            (net.vips) reply of a balanced connection, source rewritten back to the
//                       VIP (balancer/vip-stage.ts)
//  10. deliver          (datapath.ts) counted, copied into the network's TAP coalescer
//
// A new feature is one numbered line here and one function, called from ingress() behind its
// null check. Hot path: no allocation; headers through router/wire.
import { C, D, PASS } from './counters.js';
import { isMeshSource, meshIn, unnat } from '../balancer/vip-stage.js';
import type { Network } from './network.js';
import { seen } from './learned.js';
import { requireSa } from '../crypto/open.js';
import {
  ARP_LEN, ETH_HEADER_LEN, EtherType, IPV4_MIN_HEADER_LEN, MAC_HI_GROUP, VXLAN_HEADER_LEN, arpSenderIpKey,
  ethDstHi, ethDstLo, ethSrcHi, ethSrcLo, ethType, ipv4SrcKey, vxlanHeaderOk, vxlanVni,
} from './wire/index.js';

/** The datagram the ingress stages work on (one object per datapath, reused). */
export class IngressDatagram {
  buf: Buffer = Buffer.alloc(0);
  /** The VXLAN datagram (UDP payload). */
  off = 0;
  len = 0;
  /** Sender address (int32). */
  vtep = 0;
  /** Set by demuxVni. */
  net: Network | null = null;
  /** Set by checkVtep: the sender is a static VTEP (kernel VXLAN host, hardware VTEP). */
  fromStatic = false;
  /** The inner Ethernet frame (set by checkHeader). */
  f = 0;
  flen = 0;
  // The inner source MAC as a table key (set by checkSrcMac).
  srcHi = 0;
  srcLo = 0;

  /** Opened from ESP under a current SA of its sender (crypto/open.ts). */
  opened = false;

  set(buf: Buffer, off: number, len: number, vtep: number, opened = false): void {
    this.opened = opened;
    this.buf = buf;
    this.off = off;
    this.len = len;
    this.vtep = vtep;
    this.net = null;
  }
}

/**
 * The last datagram of the batch that passed steps 3 to 8: a GRO run carries one flow's segments
 * back to back, and steps 3 to 8 depend only on these fields (and on tables, which change only
 * between batches: the datapath resets the memo per batch). One per datapath, reused.
 */
export class IngressMemo {
  net: Network | null = null;
  vtep = 0;
  opened = false;
  fromStatic = false;
  vni = 0;
  dstHi = 0;
  dstLo = 0;
  srcHi = 0;
  srcLo = 0;
  srcIp = 0;

  /** Forget (at the start of each batch). */
  reset(): void {
    this.net = null;
  }
}

/** Steps 2 to 9 for one datagram (step 1 ran on the batch if it came from ESP); PASS means deliver to d.net. */
export function ingress(nets: Map<number, Network>, d: IngressDatagram, memo: IngressMemo): number {
  let v = checkHeader(d);
  if (v !== PASS) return v;
  if (recall(memo, d)) return d.net!.vips !== null ? unnat(d.net!.vips, d) : PASS;
  v = demuxVni(nets, d);
  if (v !== PASS) return v;
  const net = d.net!;
  if (net.sa !== null) {
    v = requireSa(d);
    if (v !== PASS) return v;
  }
  v = checkVtep(net, d);
  if (v !== PASS) return v;
  const vips = net.vips;
  const mesh = vips !== null && isMeshSource(vips, d);
  if (mesh) {
    v = meshIn(vips, d);
    if (v !== PASS) return v;
  } else {
    v = checkSrcMac(net, d);
    if (v !== PASS) return v;
    v = checkSrcIp(net, d);
    if (v !== PASS) return v;
  }
  v = checkDst(net, d);
  if (v !== PASS) return v;
  if (!mesh) remember(memo, d);
  return vips !== null ? unnat(vips, d) : PASS;
}

// 2. As the kernel driver (without GBP/GPE): flags exactly 0x08, every reserved bit zero.
export function checkHeader(d: IngressDatagram): number {
  if (d.len < VXLAN_HEADER_LEN + ETH_HEADER_LEN) return D.vxlanShort;
  if (!vxlanHeaderOk(d.buf, d.off)) return D.vxlanBadFlags;
  d.f = d.off + VXLAN_HEADER_LEN;
  d.flen = d.len - VXLAN_HEADER_LEN;
  return PASS;
}

// 2m. Every field steps 3 to 8 read, compared with the memo (the frame length too: step 7 reads
// the IPv4 source only from a frame long enough to hold it, and remember() took only such).
export function recall(m: IngressMemo, d: IngressDatagram): boolean {
  const buf = d.buf;
  const f = d.f;
  if (m.net === null || d.vtep !== m.vtep || d.opened !== m.opened || d.flen < ETH_HEADER_LEN + IPV4_MIN_HEADER_LEN) return false;
  if (ethSrcLo(buf, f) !== m.srcLo || ethDstLo(buf, f) !== m.dstLo || vxlanVni(buf, d.off) !== m.vni) return false;
  if (ethSrcHi(buf, f) !== m.srcHi || ethDstHi(buf, f) !== m.dstHi || ethType(buf, f) !== EtherType.Ipv4) return false;
  if (ipv4SrcKey(buf, f + ETH_HEADER_LEN) !== m.srcIp) return false;
  d.net = m.net;
  d.fromStatic = m.fromStatic;
  d.srcHi = m.srcHi;
  d.srcLo = m.srcLo;
  return true;
}

// 3.
export function demuxVni(nets: Map<number, Network>, d: IngressDatagram): number {
  const net = nets.get(vxlanVni(d.buf, d.off));
  if (net === undefined) return D.unknownVni;
  d.net = net;
  return PASS;
}

// 5.
export function checkVtep(net: Network, d: IngressDatagram): number {
  const v = net.vteps.find(0, d.vtep);
  if (v < 0) return D.unknownVtep;
  d.fromStatic = net.vteps.b[v] !== 0;
  return PASS;
}

// 6. A known MAC must come from its own VTEP. An unknown one is learned (flood-and-learn) only
// from a static VTEP, and never a group address or one of our own endpoints.
export function checkSrcMac(net: Network, d: IngressDatagram): number {
  const hi = ethSrcHi(d.buf, d.f);
  const lo = ethSrcLo(d.buf, d.f);
  d.srcHi = hi;
  d.srcLo = lo;
  const r = net.remote.find(hi, lo);
  if (r >= 0) return net.remote.a[r] !== d.vtep ? D.spoofedSrcMac : d.fromStatic ? seen(net.remote, r) : PASS;
  return d.fromStatic ? learn(net, d) : D.spoofedSrcMac;
}

/** Flood-and-learn from a static VTEP, up to the network's cap (rare; apart so that checkSrcMac stays small to inline). */
function learn(net: Network, d: IngressDatagram): number {
  const hi = d.srcHi;
  const lo = d.srcLo;
  if ((hi & MAC_HI_GROUP) !== 0 || net.local.find(hi, lo) >= 0) return D.spoofedSrcMac;
  if (net.learned.full) return D.learnedFull;
  net.learnRemote(hi, lo, d.vtep);
  net.counters[C.learned]++;
  return PASS;
}

// 7. A known IP must belong to the frame's source MAC; an unknown IP is accepted only from a static
// VTEP (whose hosts we do not know); one of our own addresses never.
export function checkSrcIp(net: Network, d: IngressDatagram): number {
  const buf = d.buf;
  const type = ethType(buf, d.f);
  const l3 = d.f + ETH_HEADER_LEN;
  let ip: number;
  if (type === EtherType.Ipv4) {
    if (d.flen < ETH_HEADER_LEN + IPV4_MIN_HEADER_LEN) return d.fromStatic ? PASS : D.spoofedSrcIp;
    ip = ipv4SrcKey(buf, l3);
  } else if (type === EtherType.Arp) {
    if (d.flen < ETH_HEADER_LEN + ARP_LEN) return d.fromStatic ? PASS : D.spoofedSrcIp;
    ip = arpSenderIpKey(buf, l3);
    if (ip === 0) return PASS; // ARP probes carry 0.0.0.0
  } else {
    return d.fromStatic ? PASS : D.spoofedSrcIp;
  }
  if (ip === 0) return D.spoofedSrcIp;
  if (net.localIps.find(0, ip) >= 0) return D.spoofedSrcIp;
  const n = net.neigh.find(0, ip);
  if (n < 0) return d.fromStatic ? PASS : D.spoofedSrcIp;
  return net.neigh.a[n] === d.srcHi && net.neigh.b[n] === d.srcLo ? PASS : D.spoofedSrcIp;
}

// 8m. Only IPv4 (the bulk of any run); ARP and the rest always take every step.
export function remember(m: IngressMemo, d: IngressDatagram): void {
  const buf = d.buf;
  const f = d.f;
  if (ethType(buf, f) !== EtherType.Ipv4 || d.flen < ETH_HEADER_LEN + IPV4_MIN_HEADER_LEN) return;
  m.net = d.net;
  m.vtep = d.vtep;
  m.opened = d.opened;
  m.fromStatic = d.fromStatic;
  m.vni = vxlanVni(buf, d.off);
  m.dstHi = ethDstHi(buf, f);
  m.dstLo = ethDstLo(buf, f);
  m.srcHi = d.srcHi;
  m.srcLo = d.srcLo;
  m.srcIp = ipv4SrcKey(buf, f + ETH_HEADER_LEN);
}

// 8.
export function checkDst(net: Network, d: IngressDatagram): number {
  const hi = ethDstHi(d.buf, d.f);
  if ((hi & MAC_HI_GROUP) !== 0) return d.fromStatic ? PASS : D.remoteBroadcast;
  return net.local.find(hi, ethDstLo(d.buf, d.f)) >= 0 ? PASS : D.remoteUnknownDst;
}
