// Refusal replies the VIP stage writes back to a client: a TCP RST for a TCP segment to a port
// the service does not publish (or to a flow whose task is gone), and an ICMP port unreachable
// (type 3 code 3) for UDP. Both are whole Ethernet + IPv4 frames written into a caller's slab;
// the builders return the frame length (0 when the input cannot be answered or the room is
// short). The input must already have passed checkIpv4 and checkTcp / checkUdp.
import { wr16, wr32 } from './bytes.js';
import { checksum, ipv4PseudoSum } from './checksum.js';
import { ETH_HEADER_LEN, EtherType, ethDst, ethSrc, writeEthHeader } from './ethernet.js';
import {
  IpProto, ipv4Dst, ipv4FragOffset, ipv4IsFragment, ipv4PayloadLen, ipv4PayloadOff, ipv4Src, ipv4TotalLen,
} from './ipv4.js';
import { ICMP_HEADER_LEN, IcmpType } from './icmp.js';
import { TcpFlag, tcpAck, tcpDstPort, tcpFlags, tcpHeaderLenAt, tcpSeq, tcpSrcPort } from './tcp.js';

export const TCP_RST_FRAME_LEN = ETH_HEADER_LEN + 20 + 20;
/** RFC 1812 §4.3.2.3: an ICMP error carries as much of the datagram as fits in 576 bytes. */
const ICMP_ERROR_MAX_IP = 576;
const DEFAULT_TTL = 64;

/** IPv4 header without options, DF set, checksum filled; returns 20. */
function writeIpv4Header(out: Uint8Array, o: number, src: number, dst: number, proto: number, payloadLen: number): number {
  out[o] = 0x45;
  out[o + 1] = 0;
  wr16(out, o + 2, 20 + payloadLen);
  wr16(out, o + 4, 0);
  wr16(out, o + 6, 0x4000);
  out[o + 8] = DEFAULT_TTL;
  out[o + 9] = proto;
  wr16(out, o + 10, 0);
  wr32(out, o + 12, src);
  wr32(out, o + 16, dst);
  wr16(out, o + 10, checksum(out, o, 20));
  return 20;
}

/**
 * A bare RST segment (20-byte header, no payload) in a frame from (srcMac, srcIp:srcPort) to
 * (dstMac, dstIp:dstPort). withAck adds ACK with the given ack number. Used directly to reset
 * both ends of a flow whose task vanished (seq = what each end expects next).
 */
export function writeTcpRst(
  out: Uint8Array, off: number, dstMac: number, srcMac: number,
  srcIp: number, dstIp: number, srcPort: number, dstPort: number, seq: number, ack: number, withAck: boolean,
): number {
  if (!(off >= 0 && off + TCP_RST_FRAME_LEN <= out.length)) return 0;
  writeEthHeader(out, off, dstMac, srcMac, EtherType.Ipv4);
  const ip = off + ETH_HEADER_LEN;
  writeIpv4Header(out, ip, srcIp, dstIp, IpProto.Tcp, 20);
  const t = ip + 20;
  wr16(out, t, srcPort);
  wr16(out, t + 2, dstPort);
  wr32(out, t + 4, seq);
  wr32(out, t + 8, withAck ? ack : 0);
  out[t + 12] = 5 << 4;
  out[t + 13] = TcpFlag.Rst | (withAck ? TcpFlag.Ack : 0);
  wr16(out, t + 14, 0);
  wr16(out, t + 16, 0);
  wr16(out, t + 18, 0);
  wr16(out, t + 16, checksum(out, t, 20, ipv4PseudoSum(srcIp, dstIp, IpProto.Tcp, 20)));
  return TCP_RST_FRAME_LEN;
}

/**
 * RST answering the TCP segment at `ipOff` of the frame `inFrame` (Ethernet at `ethOff`), as a
 * host with no such socket would (RFC 9293 §3.10.7.1): if the segment has ACK, <SEQ=SEG.ACK>
 * <CTL=RST>; otherwise <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, SYN and FIN counting one each.
 * Never answers an RST. Addresses, ports and MACs are swapped.
 */
export function writeTcpRstReply(inFrame: Uint8Array, ethOff: number, ipOff: number, out: Uint8Array, off: number): number {
  const t = ipv4PayloadOff(inFrame, ipOff);
  const flags = tcpFlags(inFrame, t);
  if (flags & TcpFlag.Rst) return 0;
  const segLen = ipv4PayloadLen(inFrame, ipOff) - tcpHeaderLenAt(inFrame, t)
    + (flags & TcpFlag.Syn ? 1 : 0) + (flags & TcpFlag.Fin ? 1 : 0);
  const hasAck = (flags & TcpFlag.Ack) !== 0;
  const seq = hasAck ? tcpAck(inFrame, t) : 0;
  const ack = hasAck ? 0 : (tcpSeq(inFrame, t) + segLen) >>> 0;
  return writeTcpRst(out, off, ethSrc(inFrame, ethOff), ethDst(inFrame, ethOff), ipv4Dst(inFrame, ipOff),
    ipv4Src(inFrame, ipOff), tcpDstPort(inFrame, t), tcpSrcPort(inFrame, t), seq, ack, !hasAck);
}

/**
 * ICMP destination unreachable / port unreachable (3/3) answering the datagram at `ipOff`:
 * from its destination address to its source, quoting its IP header and as much payload as
 * fits in 576 bytes (at least the 8 bytes RFC 792 asks for). Not sent for non-first fragments
 * (RFC 1122 §3.2.2).
 */
export function writeIcmpPortUnreachable(inFrame: Uint8Array, ethOff: number, ipOff: number, out: Uint8Array, off: number): number {
  if (ipv4IsFragment(inFrame, ipOff) && ipv4FragOffset(inFrame, ipOff) !== 0) return 0;
  const total = ipv4TotalLen(inFrame, ipOff);
  const quote = Math.min(total, ICMP_ERROR_MAX_IP - 20 - ICMP_HEADER_LEN);
  const icmpLen = ICMP_HEADER_LEN + quote;
  const frameLen = ETH_HEADER_LEN + 20 + icmpLen;
  if (!(off >= 0 && off + frameLen <= out.length)) return 0;
  const srcMac = ethSrc(inFrame, ethOff);
  const dstMac = ethDst(inFrame, ethOff);
  const srcIp = ipv4Src(inFrame, ipOff);
  const dstIp = ipv4Dst(inFrame, ipOff);
  // Quote first: in and out may share a slab (the input is read before it could be overwritten).
  const ic = off + ETH_HEADER_LEN + 20;
  if (inFrame === out) out.copyWithin(ic + ICMP_HEADER_LEN, ipOff, ipOff + quote);
  else out.set(inFrame.subarray(ipOff, ipOff + quote), ic + ICMP_HEADER_LEN);
  writeEthHeader(out, off, srcMac, dstMac, EtherType.Ipv4);
  writeIpv4Header(out, off + ETH_HEADER_LEN, dstIp, srcIp, IpProto.Icmp, icmpLen);
  out[ic] = IcmpType.DestUnreachable;
  out[ic + 1] = 3;
  wr16(out, ic + 2, 0);
  wr32(out, ic + 4, 0);
  wr16(out, ic + 2, checksum(out, ic, icmpLen));
  return frameLen;
}
