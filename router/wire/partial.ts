// The partial-checksum signature (CHECKSUM_PARTIAL, as Linux forwards it across veth): a sender
// that offloads the TCP/UDP checksum stores only the folded pseudo-header sum in the field and
// leaves the rest to hardware. A kernel VXLAN peer on a veth underlay encapsulates such skbs
// unfinished (no NIC ever finishes them), and the kernel's own receiver trusts them. This tells
// them apart from corrupted frames: the field must equal the pseudo-header sum exactly, and the
// checksum must not already verify.
import { fold, ipv4PseudoSum, onesSum } from './checksum.js';
import { rd16, wr16 } from './bytes.js';
import { ETH_HEADER_LEN, EtherType, ethType } from './ethernet.js';
import { IpProto, ipv4Dst, ipv4HeaderLenAt, ipv4IsFragment, ipv4Proto, ipv4Src, ipv4TotalLen, ipv4Version } from './ipv4.js';
import { TCP_CHECKSUM_OFFSET, TCP_MIN_HEADER_LEN, tcpHeaderLenAt } from './tcp.js';
import { UDP_CSUM_OFFSET, UDP_HEADER_LEN } from './udp.js';

/**
 * For the Ethernet frame buf[f, f+len): if it is an unfragmented IPv4 TCP or UDP packet whose
 * checksum does not verify but whose checksum field holds the folded pseudo-header sum, return
 * the checksum's position as (csumStart << 8) | csumOffset (csumStart from the frame start, as
 * in virtio_net_hdr); otherwise 0 (valid, not TCP/UDP, or plainly wrong: left to the receiver).
 */
export function partialChecksumAt(buf: Uint8Array, f: number, len: number): number {
  if (len < ETH_HEADER_LEN + 20 + UDP_HEADER_LEN || ethType(buf, f) !== EtherType.Ipv4) return 0;
  const ip = f + ETH_HEADER_LEN;
  if (ipv4Version(buf, ip) !== 4) return 0;
  const ihl = ipv4HeaderLenAt(buf, ip);
  const total = ipv4TotalLen(buf, ip);
  if (ihl < 20 || total < ihl || ETH_HEADER_LEN + total > len || ipv4IsFragment(buf, ip)) return 0;
  const proto = ipv4Proto(buf, ip);
  const l4len = total - ihl;
  let at: number;
  if (proto === IpProto.Tcp && l4len >= TCP_MIN_HEADER_LEN) at = TCP_CHECKSUM_OFFSET;
  else if (proto === IpProto.Udp && l4len >= UDP_HEADER_LEN) at = UDP_CSUM_OFFSET;
  else return 0;
  const l4 = ip + ihl;
  const field = rd16(buf, l4 + at);
  const pseudo = ipv4PseudoSum(ipv4Src(buf, ip), ipv4Dst(buf, ip), proto, l4len);
  if (field !== fold(pseudo) || field === 0) return 0; // cheap test first; UDP 0 = no checksum
  if (onesSum(buf, l4, l4len, pseudo) === 0xffff) return 0; // already complete
  return ((ETH_HEADER_LEN + ihl) << 8) | at;
}

/** Finish the partial checksum found by partialChecksumAt (`at`) in place. */
export function completePartialChecksum(buf: Uint8Array, f: number, at: number): void {
  const start = f + (at >>> 8);
  const field = start + (at & 0xff);
  const l4len = f + ETH_HEADER_LEN + ipv4TotalLen(buf, f + ETH_HEADER_LEN) - start;
  // The field already holds the pseudo-header sum, so summing over it seeds the checksum.
  let c = ~onesSum(buf, start, l4len) & 0xffff;
  if (c === 0 && (at & 0xff) === UDP_CSUM_OFFSET) c = 0xffff; // UDP sends a computed 0 as 0xffff
  wr16(buf, field, c);
}

/**
 * True if the VXLAN datagram buf[off, off+len) is ONE packet whose inner IPv4 packet fills it,
 * longer than `seg`: a kernel peer's tunnel-GSO skb that crossed a veth whole (the UDP socket
 * queues it as one datagram and reports the inner MSS as its GRO segment size). Such a datagram
 * must not be cut at `seg` like a run of coalesced datagrams.
 */
export function isTunnelSuperFrame(buf: Uint8Array, off: number, len: number, seg: number): boolean {
  const ip = off + 8 + ETH_HEADER_LEN;
  if (len <= seg || len < 8 + ETH_HEADER_LEN + 20 || ethType(buf, off + 8) !== EtherType.Ipv4 || ipv4Version(buf, ip) !== 4) return false;
  return 8 + ETH_HEADER_LEN + ipv4TotalLen(buf, ip) === len;
}

/**
 * For an IPv4 TCP frame buf[f, f+len) longer than an Ethernet frame of `mtu` can be: its header
 * length (Ethernet + IPv4 + TCP), else 0. Such a frame can reach a TAP only as a GSO frame.
 */
export function tcpSuperFrameHeaderLen(buf: Uint8Array, f: number, len: number, mtu: number): number {
  if (len <= ETH_HEADER_LEN + mtu || ethType(buf, f) !== EtherType.Ipv4) return 0;
  const ip = f + ETH_HEADER_LEN;
  const ihl = ipv4HeaderLenAt(buf, ip);
  if (ipv4Version(buf, ip) !== 4 || ihl < 20 || ipv4Proto(buf, ip) !== IpProto.Tcp || ipv4IsFragment(buf, ip)) return 0;
  if (ETH_HEADER_LEN + ipv4TotalLen(buf, ip) !== len) return 0;
  const thl = tcpHeaderLenAt(buf, ip + ihl);
  if (thl < TCP_MIN_HEADER_LEN || ETH_HEADER_LEN + ihl + thl >= len) return 0;
  return ETH_HEADER_LEN + ihl + thl;
}

/**
 * Put the TCP checksum of the frame at f in the partial form GSO needs (the folded pseudo-header
 * sum) if it is complete and correct or already partial, and return csum_start (from the frame
 * start); 0 if it is simply wrong.
 */
export function makeTcpChecksumPartial(buf: Uint8Array, f: number): number {
  const ip = f + ETH_HEADER_LEN;
  const ihl = ipv4HeaderLenAt(buf, ip);
  const l4len = ipv4TotalLen(buf, ip) - ihl;
  const pseudo = fold(ipv4PseudoSum(ipv4Src(buf, ip), ipv4Dst(buf, ip), IpProto.Tcp, l4len));
  const field = ip + ihl + TCP_CHECKSUM_OFFSET;
  if (rd16(buf, field) !== pseudo && onesSum(buf, ip + ihl, l4len, pseudo) !== 0xffff) return 0;
  wr16(buf, field, pseudo);
  return ETH_HEADER_LEN + ihl;
}
