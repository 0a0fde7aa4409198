// Segmentation, the send half of the offloads (coalesce.ts has the receive half; design.md §4):
// the TAP hands us TCP super-frames (IFF_VNET_HDR + TSO) that we cut into MTU-sized VXLAN
// datagrams sent with UDP GSO, so the local kernel crosses its stack once per 64 KB. Also the
// header checks both halves share. All functions work in place on slabs and allocate nothing.
import {
  ETH_HEADER_LEN as ETH, EtherType, IPV4_MIN_HEADER_LEN, IpProto, TCP_CHECKSUM_OFFSET, TCP_MIN_HEADER_LEN, TcpFlag, ethType,
  ipv4FillChecksum, ipv4HeaderLenAt, ipv4Ident, ipv4IsFragment, ipv4Proto, ipv4PseudoSum, ipv4Src,
  ipv4Dst, ipv4Version, onesSum, setIpv4Ident, setIpv4TotalLen,
  setTcpFlags, setTcpSeq, tcpFillChecksum, tcpFlags, fillChecksums, tcpHeaderLenAt, tcpSeq, wr16,
} from './wire/index.js';
import { copyRanges } from './copy.js';

export { VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_GSO_UDP_L4, VNET_HDR_LEN, writeVnetNone } from './wire/index.js';
/** Largest UDP payload of one GSO send (65535 - IPv4 - UDP headers). */
export const GSO_MAX_BYTES = 65507;
/** Segments per GSO send that every kernel with UDP_SEGMENT accepts. */
export const GSO_MAX_SEGS = 64;

/**
 * Finish a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM): the field at start+offset holds the
 * pseudo-header sum; sum from `start` to the end of the frame and store the complement.
 * Positions are relative to the Ethernet frame at `off`. Returns false if they are out of range.
 */
export function completeChecksum(buf: Buffer, off: number, len: number, start: number, offset: number, udp: boolean): boolean {
  if (start < ETH || start + offset + 2 > len) return false;
  let c = ~onesSum(buf, off + start, len - start) & 0xffff;
  if (c === 0 && udp) c = 0xffff;
  wr16(buf, off + start + offset, c);
  return true;
}

/** Header lengths of an IPv4/TCP frame, or 0 if it is not one we can segment/coalesce. */
export function tcp4HeaderLen(buf: Buffer, off: number, len: number): number {
  if (len < ETH + IPV4_MIN_HEADER_LEN + TCP_MIN_HEADER_LEN || ethType(buf, off) !== EtherType.Ipv4) return 0;
  const ip = off + ETH;
  if (ipv4Version(buf, ip) !== 4 || ipv4Proto(buf, ip) !== IpProto.Tcp) return 0;
  const ihl = ipv4HeaderLenAt(buf, ip);
  if (ihl < IPV4_MIN_HEADER_LEN) return 0;
  if (ipv4IsFragment(buf, ip)) return 0;
  const thl = tcpHeaderLenAt(buf, ip + ihl);
  if (thl < TCP_MIN_HEADER_LEN || ETH + ihl + thl > len) return 0;
  return ETH + ihl + thl;
}

/**
 * Cut a TCPv4 super-frame (buf[off..off+len), Ethernet) into segments of at most `mss` payload
 * bytes, each with `prefix` free bytes before it (VXLAN header, later ESP header and IV) and
 * `suffix` free bytes after it (later ESP padding, trailer and tag), written back to back at
 * buf[outOff..outEnd) (a separate area of the same slab: copyWithin allocates nothing, unlike
 * Buffer.copy) with a stride of prefix+headers+mss+suffix. IP length/id/checksum and TCP seq,
 * flags and checksum are fixed per segment. Returns the number of segments, -1 if the frame
 * cannot be segmented, or -2 if it does not fit.
 */
export function segmentTcp4(
  buf: Buffer, off: number, len: number, mss: number, prefix: number, suffix: number, outOff: number, outEnd: number,
): number {
  const hdr = tcp4HeaderLen(buf, off, len);
  if (hdr === 0 || mss <= 0) return -1;
  const payload = len - hdr;
  if (payload <= 0) return -1;
  const nseg = Math.ceil(payload / mss);
  const stride = prefix + hdr + mss + suffix;
  if (outOff + (nseg - 1) * stride + prefix + hdr + (payload - (nseg - 1) * mss) + suffix > outEnd) return -2;
  const ip = off + ETH;
  const ihl = ipv4HeaderLenAt(buf, ip);
  const thl = hdr - ETH - ihl;
  const src = ipv4Src(buf, ip);
  const dst = ipv4Dst(buf, ip);
  const id0 = ipv4Ident(buf, ip);
  const seq0 = tcpSeq(buf, ip + ihl);
  const flags0 = tcpFlags(buf, ip + ihl) & 0xff;
  const batched = nseg <= SEG_SCRATCH;
  if (batched) {
    // Every segment's headers and payload chunk in one copyRanges call (one addon crossing).
    for (let k = 0, c = 0; k < nseg; k++, c += 2) {
      const o = outOff + k * stride + prefix;
      segCopySrc[c] = off;
      segCopyDst[c] = o;
      segCopyLen[c] = hdr;
      segCopySrc[c + 1] = off + hdr + k * mss;
      segCopyDst[c + 1] = o + hdr;
      segCopyLen[c + 1] = k === nseg - 1 ? payload - k * mss : mss;
    }
    copyRanges(buf, segCopySrc, segCopyDst, segCopyLen, 2 * nseg);
  }
  for (let k = 0; k < nseg; k++) {
    const o = outOff + k * stride + prefix;
    const chunk = k === nseg - 1 ? payload - k * mss : mss;
    if (!batched) {
      buf.copyWithin(o, off, off + hdr);
      buf.copyWithin(o + hdr, off + hdr + k * mss, off + hdr + k * mss + chunk);
    }
    const oip = o + ETH;
    setIpv4TotalLen(buf, oip, ihl + thl + chunk);
    setIpv4Ident(buf, oip, (id0 + k) & 0xffff);
    ipv4FillChecksum(buf, oip);
    const t = oip + ihl;
    setTcpSeq(buf, t, (seq0 + k * mss) >>> 0);
    let f = flags0;
    if (k < nseg - 1) f &= ~(TcpFlag.Fin | TcpFlag.Psh);
    if (k > 0) f &= ~TcpFlag.Cwr;
    setTcpFlags(buf, t, f);
    if (batched) {
      segOffs[k] = t;
      segLens[k] = thl + chunk;
      segSeeds[k] = ipv4PseudoSum(src, dst, IpProto.Tcp, thl + chunk);
    } else {
      tcpFillChecksum(buf, t, thl + chunk, src, dst);
    }
  }
  // All TCP checksums in one pass (one addon call): the super-frame came from the local kernel
  // with a partial checksum, so every segment's is computed here, none can be copied.
  if (batched) fillChecksums(buf, segOffs, segLens, segSeeds, nseg, TCP_CHECKSUM_OFFSET);
  return nseg;
}

/** Scratch for segmentTcp4's batched copies and checksums: a 64 KB super-frame at MSS >= 64 fits. */
const SEG_SCRATCH = 1024;
const segCopySrc = new Int32Array(2 * SEG_SCRATCH);
const segCopyDst = new Int32Array(2 * SEG_SCRATCH);
const segCopyLen = new Int32Array(2 * SEG_SCRATCH);
const segOffs = new Int32Array(SEG_SCRATCH);
const segLens = new Int32Array(SEG_SCRATCH);
const segSeeds = new Uint32Array(SEG_SCRATCH);
