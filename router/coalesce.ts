// Coalescing, the receive half of the offloads (offload.ts has the send half): runs of TCP
// segments of one flow are merged back into a super-frame written to the TAP with a GSO virtio
// header, so the kernel crosses bridge, veth and TCP once per 64 KB instead of once per 1.4 KB;
// runs of equal-size UDP datagrams of one flow the same way (UDP_L4 GSO, as the kernel's UDP GRO
// forwards them): one TAP write per run instead of one per datagram. A run's checksums are
// verified and its payloads copied once, when it closes. Works in place on slabs, allocates nothing.
import {
  ETH_HEADER_LEN as ETH, EtherType, IPV4_MIN_HEADER_LEN, IpProto, TCP_CHECKSUM_OFFSET, TcpFlag, VNET_HDR_LEN, ethType, fold,
  ipv4DontFrag, ipv4FillChecksum, ipv4HeaderLenAt, ipv4IsFragment, ipv4Proto, ipv4PseudoSum, ipv4Src,
  ipv4Dst, ipv4TotalLen, ipv4Tos, ipv4Ttl, ipv4Version, setIpv4TotalLen, setTcpChecksum,
  setTcpFlags, tcpAck, tcpFlags, tcpOptionsOff, tcpSeq, tcpSrcPort,
  tcpDstPort, tcpWindow, writeVnetNone, writeVnetTcp4, UDP_CSUM_OFFSET, UDP_HEADER_LEN, setUdpChecksum, setUdpLength,
  udpChecksum, udpDstPort, udpLength, udpSrcPort, writeVnetUdp4, sameBytes, sumsVerify,
} from './wire/index.js';
import { copyRanges } from './copy.js';
import { GSO_MAX_SEGS, tcp4HeaderLen } from './offload.js';
import { finishPartial, writeRxVnet } from './partial-csum.js';

/** Headers of a UDP run member: Ethernet, IPv4 without options, UDP. */
const UDP4_HDR = ETH + IPV4_MIN_HEADER_LEN + UDP_HEADER_LEN;

/**
 * Header length of an IPv4/UDP frame that may join a UDP run (no IP options, not a fragment, IP
 * and UDP lengths consistent with the frame, some payload), or 0.
 */
export function udp4HeaderLen(buf: Buffer, off: number, len: number): number {
  if (len <= UDP4_HDR || ethType(buf, off) !== EtherType.Ipv4) return 0;
  const ip = off + ETH;
  if (ipv4Version(buf, ip) !== 4 || ipv4Proto(buf, ip) !== IpProto.Udp || ipv4HeaderLenAt(buf, ip) !== IPV4_MIN_HEADER_LEN) return 0;
  if (ipv4IsFragment(buf, ip) || ipv4TotalLen(buf, ip) !== len - ETH) return 0;
  return udpLength(buf, ip + IPV4_MIN_HEADER_LEN) === len - ETH - IPV4_MIN_HEADER_LEN ? UDP4_HDR : 0;
}

/**
 * Builds the frames written to a TAP: copies each delivered frame into `out` behind a virtio
 * header and merges consecutive in-order TCP segments of one flow (same addresses, ports, ACK
 * and options; only ACK/PSH flags; verified checksums) into one GSO super-frame, as the kernel's
 * own GRO would. A run's checksums are verified, and its payloads copied, once, when it closes
 * (one batched sum, one copyRanges); a run with a bad member is undone into its members. Without
 * vnet headers it only copies.
 */
export class TapCoalescer {
  /** Output lives in out[start..end); frames are added from the same buffer. */
  out: Buffer = Buffer.alloc(0);
  private start = 0;
  private end = 0;
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  count = 0;
  private fill = 0;
  // The open super-frame (index into offs, or -1) and what the next segment must look like.
  private cur = -1;
  private curHdr = 0;
  private curMss = 0;
  private curSegs = 0;
  private curNextSeq = 0;
  private curLen = 0;
  /** The open super-frame is a UDP run (else TCP). */
  private curUdp = false;
  /** A member of the open TCP run carried PSH (set on the merged frame at close). */
  private curPsh = false;
  // The run's flow, read once from its first segment (begin/open): what every later segment must
  // repeat. tryAppend compares against these instead of re-reading the first segment's headers.
  private curSrc = 0;
  private curDst = 0;
  private curSport = 0;
  private curDport = 0;
  private curTos = 0;
  private curTtl = 0;
  private curDf = false;
  private curIhl = 0;
  private curAck = 0;
  private curWin = 0;
  /** Where the first segment's TCP options start (in the frame as added). */
  private curOpts = 0;
  // The open run's members as added (frame offset and length), their payload copies into the
  // output area (done at close, one copyRanges call), and the checksums still to verify (one
  // batched sum at close).
  private readonly memberOff = new Int32Array(GSO_MAX_SEGS);
  private readonly memberLen = new Int32Array(GSO_MAX_SEGS);
  private readonly copySrc = new Int32Array(GSO_MAX_SEGS);
  private readonly copyDst = new Int32Array(GSO_MAX_SEGS);
  private readonly copyLen = new Int32Array(GSO_MAX_SEGS);
  private readonly sumOff = new Int32Array(GSO_MAX_SEGS);
  private readonly sumLen = new Int32Array(GSO_MAX_SEGS);
  private readonly sumSeed = new Uint32Array(GSO_MAX_SEGS);
  private sums = 0;
  /** Frames merged into an earlier one (a counter the datapath reads). */
  merged = 0;

  /** `mtu`: the TAP's, for frames that must be passed on as GSO (see router/partial-csum.ts). */
  constructor(readonly vnet: boolean, maxFrames: number, readonly mtu = 1500) {
    this.offs = new Int32Array(maxFrames);
    this.lens = new Int32Array(maxFrames);
  }

  /** Place the output area (control path: when the datapath lays out its arena). */
  bind(out: Buffer, start: number, end: number): void {
    this.out = out;
    this.start = start;
    this.end = end;
    this.count = 0;
    this.fill = start;
    this.cur = -1;
  }

  /**
   * Room check: true if a frame of len bytes can be added without a flush. The open run keeps
   * room to be undone into its members (see close), each with its own headers and virtio header.
   */
  fits(len: number): boolean {
    const undo = this.cur < 0 ? 0 : this.curSegs - 1;
    return this.count + undo < this.offs.length && this.fill + undo * (VNET_HDR_LEN + this.curHdr) + VNET_HDR_LEN + len <= this.end;
  }

  /** Frames whose inner checksum came partial from the peer (router/partial-csum.ts). */
  partial = 0;
  /** The frame being added came out of an ESP SA (see add). */
  private authentic = false;

  /**
   * Add the frame at out[f..f+len) (it must lie outside the output area, and stay unchanged until
   * the next close(): a run's members are copied and verified when it closes). `authentic`: the
   * frame was opened under an ESP SA (crypto/open.ts), so its bytes are exactly what the peer agent
   * sealed and the checksum verification before merging is skipped (the AEAD tag already covered
   * every byte; what the peer checksummed arrives unchanged).
   */
  add(f: number, len: number, authentic = false): void {
    const buf = this.out;
    if (this.vnet) {
      this.authentic = authentic;
      const hdr = tcp4HeaderLen(buf, f, len);
      const udp = hdr === 0 && udp4HeaderLen(buf, f, len) !== 0;
      if (hdr !== 0 ? this.tryAppend(buf, f, len, hdr) : udp && this.tryAppendUdp(buf, f, len)) return;
      this.close();
      if (hdr !== 0 && len > hdr && tcpHeaderMergeable(buf, f, len)) {
        this.open(buf, f, len, hdr);
        return;
      }
      if (udp) {
        this.begin(buf, f, len, UDP4_HDR, true);
        this.verifyUdp(buf, f, len);
        return;
      }
      this.single(buf, f, len);
      return;
    }
    const o = this.fill;
    if (finishPartial(buf, f, len)) this.partial++;
    buf.copyWithin(o, f, f + len);
    this.push(o, len);
  }

  /** A frame that goes on by itself, behind its own virtio header (see router/partial-csum.ts). */
  private single(buf: Buffer, f: number, len: number): void {
    const o = this.fill;
    if (writeRxVnet(buf, o, f, len, this.mtu)) this.partial++;
    buf.copyWithin(o + VNET_HDR_LEN, f, f + len);
    this.push(o, VNET_HDR_LEN + len);
  }

  private push(o: number, len: number): void {
    this.offs[this.count] = o;
    this.lens[this.count++] = len;
    this.fill = o + len;
  }

  /**
   * The frame at f (headers hdr bytes) starts a run; its payload length is the run's segment size.
   * Its place in the output area is reserved; the copy waits for close.
   */
  private begin(buf: Buffer, f: number, len: number, hdr: number, udp: boolean): void {
    const o = this.fill;
    this.cur = this.count;
    this.push(o, VNET_HDR_LEN + len);
    this.curUdp = udp;
    this.curHdr = hdr;
    this.curMss = len - hdr;
    this.curSegs = 1;
    this.curLen = len;
    this.curPsh = false;
    this.memberOff[0] = f;
    this.memberLen[0] = len;
    this.copySrc[0] = f;
    this.copyDst[0] = o + VNET_HDR_LEN;
    this.copyLen[0] = len;
    this.sums = 0;
    const ip = f + ETH;
    const l4 = ip + ipv4HeaderLenAt(buf, ip);
    this.curIhl = l4 - ip;
    this.curSrc = ipv4Src(buf, ip);
    this.curDst = ipv4Dst(buf, ip);
    this.curTos = ipv4Tos(buf, ip);
    this.curTtl = ipv4Ttl(buf, ip);
    this.curDf = ipv4DontFrag(buf, ip);
    if (udp) {
      this.curSport = udpSrcPort(buf, l4);
      this.curDport = udpDstPort(buf, l4);
      return;
    }
    this.curSport = tcpSrcPort(buf, l4);
    this.curDport = tcpDstPort(buf, l4);
    this.curAck = tcpAck(buf, l4);
    this.curWin = tcpWindow(buf, l4);
    this.curOpts = tcpOptionsOff(l4);
  }

  private open(buf: Buffer, f: number, len: number, hdr: number): void {
    this.begin(buf, f, len, hdr, false);
    const t = f + ETH + this.curIhl;
    this.verifyTcp(t, len - ETH - this.curIhl);
    this.curNextSeq = (tcpSeq(buf, t) + (len - hdr)) >>> 0;
    if (tcpFlags(buf, t) & TcpFlag.Psh) this.close();
  }

  /** Queue the TCP checksum of a member (TCP header at t, l4 bytes) for verification at close. */
  private verifyTcp(t: number, l4: number): void {
    if (this.authentic) return;
    const k = this.sums++;
    this.sumOff[k] = t;
    this.sumLen[k] = l4;
    this.sumSeed[k] = ipv4PseudoSum(this.curSrc, this.curDst, IpProto.Tcp, l4);
  }

  /** The same for a UDP member, unless its checksum is absent (0: IPv4 allows it). */
  private verifyUdp(buf: Buffer, f: number, len: number): void {
    const u = f + ETH + IPV4_MIN_HEADER_LEN;
    if (this.authentic || udpChecksum(buf, u) === 0) return;
    const l4 = len - ETH - IPV4_MIN_HEADER_LEN;
    const k = this.sums++;
    this.sumOff[k] = u;
    this.sumLen[k] = l4;
    this.sumSeed[k] = ipv4PseudoSum(this.curSrc, this.curDst, IpProto.Udp, l4);
  }

  /** Record member k of the open run (its payload goes at `at` in the output area). */
  private member(f: number, len: number, hdr: number, at: number): void {
    const k = this.curSegs++;
    this.memberOff[k] = f;
    this.memberLen[k] = len;
    this.copySrc[k] = f + hdr;
    this.copyDst[k] = at;
    this.copyLen[k] = len - hdr;
  }

  /** Room for one more member of chunk bytes, and for undoing the run into its members. */
  private roomFor(chunk: number): boolean {
    const undo = this.curSegs; // members after this one, minus one
    return this.count + undo <= this.offs.length && this.fill + chunk + undo * (VNET_HDR_LEN + this.curHdr) <= this.end;
  }

  private tryAppend(buf: Buffer, f: number, len: number, hdr: number): boolean {
    if (this.cur < 0 || this.curUdp || hdr !== this.curHdr || this.curSegs >= GSO_MAX_SEGS) return false;
    const chunk = len - hdr;
    if (chunk <= 0 || chunk > this.curMss || this.curLen + chunk - ETH > 65535 || !this.roomFor(chunk)) return false;
    const ip = f + ETH;
    const ihl = ipv4HeaderLenAt(buf, ip);
    if (ihl !== this.curIhl) return false;
    const t = ip + ihl;
    // Same flow, same ACK and window, in order, same IP TOS/TTL/DF, identical options.
    if (tcpSeq(buf, t) !== this.curNextSeq || tcpAck(buf, t) !== this.curAck) return false;
    if (ipv4Src(buf, ip) !== this.curSrc || ipv4Dst(buf, ip) !== this.curDst) return false;
    if (tcpSrcPort(buf, t) !== this.curSport || tcpDstPort(buf, t) !== this.curDport || tcpWindow(buf, t) !== this.curWin) return false;
    if (ipv4Tos(buf, ip) !== this.curTos || ipv4Ttl(buf, ip) !== this.curTtl || ipv4DontFrag(buf, ip) !== this.curDf) return false;
    if (!sameBytes(buf, tcpOptionsOff(t), buf, this.curOpts, f + hdr - tcpOptionsOff(t))) return false;
    if (!tcpFlagsMergeable(buf, ip, t, len)) return false;
    this.member(f, len, hdr, this.fill);
    this.verifyTcp(t, len - ETH - ihl);
    this.fill += chunk;
    this.curLen += chunk;
    this.lens[this.cur] += chunk;
    this.curNextSeq = (this.curNextSeq + chunk) >>> 0;
    this.merged++;
    const psh = tcpFlags(buf, t) & TcpFlag.Psh;
    if (psh) this.curPsh = true;
    if (psh || chunk < this.curMss) this.close();
    return true;
  }

  /**
   * Appends a datagram to the open UDP run: same addresses, ports, TOS, TTL and DF, a payload no
   * longer than the run's segment size (a shorter one ends the run, as the kernel's GSO cuts
   * it), a checksum verified at close (or absent), at most GSO_MAX_SEGS datagrams and 64 KB per run.
   */
  private tryAppendUdp(buf: Buffer, f: number, len: number): boolean {
    if (this.cur < 0 || !this.curUdp || this.curSegs >= GSO_MAX_SEGS) return false;
    const chunk = len - UDP4_HDR;
    if (chunk > this.curMss || this.curLen + chunk - ETH > 65535 || !this.roomFor(chunk)) return false;
    const ip = f + ETH;
    const u = ip + IPV4_MIN_HEADER_LEN;
    if (ipv4Src(buf, ip) !== this.curSrc || ipv4Dst(buf, ip) !== this.curDst) return false;
    if (udpSrcPort(buf, u) !== this.curSport || udpDstPort(buf, u) !== this.curDport) return false;
    if (ipv4Tos(buf, ip) !== this.curTos || ipv4Ttl(buf, ip) !== this.curTtl || ipv4DontFrag(buf, ip) !== this.curDf) return false;
    this.member(f, len, UDP4_HDR, this.fill);
    this.verifyUdp(buf, f, len);
    this.fill += chunk;
    this.curLen += chunk;
    this.lens[this.cur] += chunk;
    this.merged++;
    if (chunk < this.curMss) this.close();
    return true;
  }

  /**
   * Finish the open run. One member: it goes on as a single frame. Else every queued checksum is
   * verified in one batched sum: if one fails, the run is undone and each member goes on by
   * itself, as it came (the container's stack drops the bad one, as the kernel's GRO leaves a bad
   * segment unmerged); if all pass, the payloads are copied in one call and the merged frame gets
   * its IP length and checksum, partial TCP/UDP checksum and GSO header.
   */
  close(): void {
    const i = this.cur;
    if (i < 0) return;
    this.cur = -1;
    const o = this.out;
    const n = this.curSegs;
    if (n === 1 || (this.sums > 0 && !sumsVerify(o, this.sumOff, this.sumLen, this.sumSeed, this.sums))) {
      this.count = i;
      this.fill = this.offs[i];
      this.merged -= n - 1;
      for (let k = 0; k < n; k++) this.single(o, this.memberOff[k], this.memberLen[k]);
      return;
    }
    copyRanges(o, this.copySrc, this.copyDst, this.copyLen, n);
    const v = this.offs[i];
    writeVnetNone(o, v);
    const base = v + VNET_HDR_LEN;
    const ip = base + ETH;
    const ihl = this.curIhl;
    const l4 = this.curLen - ETH - ihl;
    setIpv4TotalLen(o, ip, ihl + l4);
    ipv4FillChecksum(o, ip);
    const t = ip + ihl;
    if (this.curUdp) {
      setUdpLength(o, t, l4);
      setUdpChecksum(o, t, fold(ipv4PseudoSum(this.curSrc, this.curDst, IpProto.Udp, l4)));
      writeVnetUdp4(o, v, this.curHdr, this.curMss, ETH + ihl, UDP_CSUM_OFFSET);
      return;
    }
    if (this.curPsh) setTcpFlags(o, t, tcpFlags(o, t) | TcpFlag.Psh);
    setTcpChecksum(o, t, fold(ipv4PseudoSum(this.curSrc, this.curDst, IpProto.Tcp, l4)));
    writeVnetTcp4(o, v, this.curHdr, this.curMss, ETH + ihl, TCP_CHECKSUM_OFFSET);
  }

  /** Close the open frame and forget the batch (after the caller wrote offs/lens out). */
  reset(): void {
    this.close();
    this.count = 0;
    this.fill = this.start;
  }
}

/** A data segment that may start a run: only ACK (and PSH) set, IP length consistent. */
function tcpHeaderMergeable(buf: Buffer, f: number, len: number): boolean {
  const ip = f + ETH;
  return tcpFlagsMergeable(buf, ip, ip + ipv4HeaderLenAt(buf, ip), len);
}

/** tcpHeaderMergeable for a frame whose IPv4 header is at ip and TCP header at t. */
function tcpFlagsMergeable(buf: Buffer, ip: number, t: number, len: number): boolean {
  if (ipv4TotalLen(buf, ip) !== len - ETH) return false; // padded or inconsistent
  const flags = tcpFlags(buf, t) & 0xff;
  return (flags & (TcpFlag.Syn | TcpFlag.Fin | TcpFlag.Rst | TcpFlag.Urg | TcpFlag.Cwr)) === 0 && (flags & TcpFlag.Ack) !== 0;
}
