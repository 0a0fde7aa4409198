// DNAT/SNAT of an IPv4 TCP/UDP packet in place, with incremental checksum updates (RFC 1624
// eqn. 3). The VIP stage rewrites the destination (VIP:port -> backend) on the way to a task and
// the source (backend -> VIP:port) on replies.
//
// Checksum modes of the L4 field:
// - full: the field is a checksum; an address change (pseudo-header) and a port change are both
//   folded in. UDP with checksum 0 ("none", RFC 768) stays 0; a UDP result of 0 is sent as 0xffff.
// - partial (CHECKSUM_PARTIAL, a virtio frame with NEEDS_CSUM): the field holds only the folded
//   pseudo-header *sum*, not complemented; the kernel (or offload.ts completeChecksum) later sums
//   the L4 bytes from csum_start with that seed and stores the complement. So the address change
//   is added to the sum (not to a checksum) and the port change is left out: the completion will
//   read the new port from the header itself.
// Call only on a checked packet (checkIpv4, and checkTcp/checkUdp over the payload) that is not a
// non-first fragment; a first fragment is fine (its L4 checksum covers the whole datagram and
// is patched consistently).
import { rd16, wr16 } from './bytes.js';
import { checksumUpdate16, checksumUpdate32 } from './checksum.js';
import {
  IpProto, ipv4Checksum, ipv4Dst, ipv4HeaderLenAt, ipv4PayloadLen, ipv4PayloadOff, ipv4Proto, ipv4Src, setIpv4Dst,
  setIpv4Src,
} from './ipv4.js';

// Offsets (relative to the IPv4 header / L4 header) that ipv4/tcp/udp.ts have no setter for.
const IP_CSUM = 10;
const L4_SRC_PORT = 0;
const L4_DST_PORT = 2;
const TCP_CSUM = 16;
const UDP_CSUM = 6;

/** Offset of the L4 checksum field inside its header, or -1 for a protocol other than TCP/UDP. */
export function l4ChecksumOffset(proto: number): number {
  return proto === IpProto.Tcp ? TCP_CSUM : proto === IpProto.Udp ? UDP_CSUM : -1;
}

// ---- small accessors tcp.ts/udp.ts lack (kept here while those files are edited elsewhere) ----

export function setL4SrcPort(buf: Uint8Array, l4Off: number, port: number): void {
  wr16(buf, l4Off + L4_SRC_PORT, port);
}
export function setL4DstPort(buf: Uint8Array, l4Off: number, port: number): void {
  wr16(buf, l4Off + L4_DST_PORT, port);
}
export function l4SrcPort(buf: Uint8Array, l4Off: number): number {
  return rd16(buf, l4Off + L4_SRC_PORT);
}
export function l4DstPort(buf: Uint8Array, l4Off: number): number {
  return rd16(buf, l4Off + L4_DST_PORT);
}

/** One's-complement add of a 32-bit change into a folded sum (the partial-checksum seed). */
function sumUpdate32(sum: number, oldValue: number, newValue: number): number {
  return ~checksumUpdate32(~sum & 0xffff, oldValue, newValue) & 0xffff;
}

/**
 * Rewrites one (address, port) pair: the destination when `dst`, else the source. Returns false
 * (and changes nothing) for protocols other than TCP/UDP.
 */
function rewrite(buf: Uint8Array, ipOff: number, dst: boolean, ip: number, port: number, partial: boolean): boolean {
  const proto = ipv4Proto(buf, ipOff);
  const csAt = l4ChecksumOffset(proto);
  if (csAt < 0) return false;
  const l4 = ipv4PayloadOff(buf, ipOff);
  const portAt = l4 + (dst ? L4_DST_PORT : L4_SRC_PORT);
  const oldIp = dst ? ipv4Dst(buf, ipOff) : ipv4Src(buf, ipOff);
  const newIp = ip >>> 0;
  const oldPort = rd16(buf, portAt);
  // IPv4 header checksum: the address only.
  wr16(buf, ipOff + IP_CSUM, checksumUpdate32(ipv4Checksum(buf, ipOff), oldIp, newIp));
  const cs = rd16(buf, l4 + csAt);
  if (partial) {
    wr16(buf, l4 + csAt, sumUpdate32(cs, oldIp, newIp));
  } else if (!(proto === IpProto.Udp && cs === 0)) {
    let c = checksumUpdate16(checksumUpdate32(cs, oldIp, newIp), oldPort, port);
    if (c === 0 && proto === IpProto.Udp) c = 0xffff;
    wr16(buf, l4 + csAt, c);
  }
  if (dst) setIpv4Dst(buf, ipOff, newIp);
  else setIpv4Src(buf, ipOff, newIp);
  wr16(buf, portAt, port);
  return true;
}

/**
 * DNAT: destination (IP, port) <- (ip, port), checksums patched. `partial` = the frame carries a
 * CHECKSUM_PARTIAL L4 field (virtio NEEDS_CSUM). False for a non-TCP/UDP packet (unchanged).
 */
export function natRewriteDst(buf: Uint8Array, ipOff: number, ip: number, port: number, partial = false): boolean {
  return rewrite(buf, ipOff, true, ip, port, partial);
}

/** SNAT (the reverse translation on replies): source (IP, port) <- (ip, port). See natRewriteDst. */
export function natRewriteSrc(buf: Uint8Array, ipOff: number, ip: number, port: number, partial = false): boolean {
  return rewrite(buf, ipOff, false, ip, port, partial);
}

// ---- ICMP errors about a translated flow ----

const ICMP_CSUM = 2;
const ICMP_HDR = 8;
const IP_DST_AT = 16;

/** ICMPv4 error types that quote the offending datagram (RFC 792/1812). */
export function icmpIsError(type: number): boolean {
  return type === 3 || type === 4 || type === 5 || type === 11 || type === 12;
}

/**
 * Reverse-translates an ICMP error (e.g. port unreachable from a task, fragmentation needed on
 * the way) whose quoted datagram went client -> task: the quoted destination (task ip:port)
 * becomes (ip, port), the VIP, and so does the outer source when it is the task itself, so the
 * client's socket for VIP:port receives the error. The quoted IP checksum, the quoted L4
 * checksum when it was quoted (TCP needs 18 bytes, UDP 8; UDP 0 stays 0) and the ICMP checksum
 * are patched incrementally. `ipOff` is the outer IPv4 header (checked with checkIpv4 and
 * checkIcmp); returns false, changing nothing, when the quote is too short to hold the inner IP
 * header and ports, or the inner protocol is not TCP/UDP.
 */
export function natRewriteIcmpErrorInnerDst(buf: Uint8Array, ipOff: number, ip: number, port: number): boolean {
  const ic = ipv4PayloadOff(buf, ipOff);
  const icmpLen = ipv4PayloadLen(buf, ipOff);
  const inner = ic + ICMP_HDR;
  const quoted = icmpLen - ICMP_HDR;
  if (quoted < 20) return false;
  const ihl = ipv4HeaderLenAt(buf, inner);
  if (ihl < 20 || quoted < ihl + 4) return false;
  const proto = ipv4Proto(buf, inner);
  const csAt = l4ChecksumOffset(proto);
  if (csAt < 0) return false;
  const l4 = inner + ihl;
  const newIp = ip >>> 0;
  const oldIp = ipv4Dst(buf, inner);
  const oldPort = rd16(buf, l4 + L4_DST_PORT);
  let icmpSum = rd16(buf, ic + ICMP_CSUM);
  // Quoted IP header: destination and its checksum.
  const oldIpCs = ipv4Checksum(buf, inner);
  const newIpCs = checksumUpdate32(oldIpCs, oldIp, newIp);
  icmpSum = checksumUpdate32(icmpSum, oldIp, newIp);
  icmpSum = checksumUpdate16(icmpSum, oldIpCs, newIpCs);
  wr16(buf, inner + IP_CSUM, newIpCs);
  wr16(buf, inner + IP_DST_AT, newIp >>> 16);
  wr16(buf, inner + IP_DST_AT + 2, newIp & 0xffff);
  // Quoted L4 checksum, when present in the quote.
  if (quoted >= ihl + csAt + 2) {
    const cs = rd16(buf, l4 + csAt);
    if (!(proto === IpProto.Udp && cs === 0)) {
      let c = checksumUpdate16(checksumUpdate32(cs, oldIp, newIp), oldPort, port);
      if (c === 0 && proto === IpProto.Udp) c = 0xffff;
      icmpSum = checksumUpdate16(icmpSum, cs, c);
      wr16(buf, l4 + csAt, c);
    }
  }
  icmpSum = checksumUpdate16(icmpSum, oldPort, port);
  wr16(buf, l4 + L4_DST_PORT, port);
  wr16(buf, ic + ICMP_CSUM, icmpSum);
  // Outer source: the task itself reported it -> it now comes from the VIP.
  if (ipv4Src(buf, ipOff) === oldIp) {
    wr16(buf, ipOff + IP_CSUM, checksumUpdate32(ipv4Checksum(buf, ipOff), oldIp, newIp));
    setIpv4Src(buf, ipOff, newIp);
  }
  return true;
}
