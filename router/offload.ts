// Segmentation and coalescing, the road to kernel speed (design.md §4): the TAP hands us TCP
// super-frames (IFF_VNET_HDR + TSO) that we cut into MTU-sized VXLAN datagrams sent with UDP
// GSO; on receive, runs of TCP segments of one flow are merged back into a super-frame written
// to the TAP with a GSO virtio header, so the kernel crosses bridge, veth and TCP once per 64 KB
// instead of once per 1.4 KB. All functions work in place on slabs and allocate nothing.
import { fold, ipv4PseudoSum, onesSum } from './wire/checksum.js';
import { finishPartial, writeRxVnet } from './partial-csum.js';

/** struct virtio_net_hdr (little-endian fields): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset. */
export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
const ETH = 14;
const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_PSH = 0x08;
const TCP_ACK = 0x10;
const TCP_URG = 0x20;
const TCP_CWR = 0x80;
/** Largest UDP payload of one GSO send (65535 - IPv4 - UDP headers). */
export const GSO_MAX_BYTES = 65507;
/** Segments per GSO send that every kernel with UDP_SEGMENT accepts. */
export const GSO_MAX_SEGS = 64;

export function writeVnetNone(buf: Buffer, off: number): void {
  buf.fill(0, off, off + VNET_HDR_LEN);
}

/**
 * Finish a partial checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM): the field at start+offset holds the
 * pseudo-header sum; sum from `start` to the end of the frame and store the complement.
 * Positions are relative to the Ethernet frame at `off`. Returns false if they are out of range.
 */
export function completeChecksum(buf: Buffer, off: number, len: number, start: number, offset: number, udp: boolean): boolean {
  if (start < ETH || start + offset + 2 > len) return false;
  let c = ~onesSum(buf, off + start, len - start) & 0xffff;
  if (c === 0 && udp) c = 0xffff;
  buf[off + start + offset] = c >>> 8;
  buf[off + start + offset + 1] = c & 255;
  return true;
}

/** Header lengths of an IPv4/TCP frame, or 0 if it is not one we can segment/coalesce. */
export function tcp4HeaderLen(buf: Buffer, off: number, len: number): number {
  if (len < ETH + 40 || buf[off + 12] !== 0x08 || buf[off + 13] !== 0x00) return 0;
  const ip = off + ETH;
  if (buf[ip] >>> 4 !== 4 || buf[ip + 9] !== 6) return 0;
  const ihl = (buf[ip] & 15) * 4;
  if (ihl < 20) return 0;
  if ((buf[ip + 6] & 0x3f) !== 0 || buf[ip + 7] !== 0) return 0; // fragment
  const thl = (buf[ip + ihl + 12] >>> 4) * 4;
  if (thl < 20 || ETH + ihl + thl > len) return 0;
  return ETH + ihl + thl;
}

function ipHeaderChecksum(buf: Buffer, ip: number, ihl: number): void {
  buf[ip + 10] = 0;
  buf[ip + 11] = 0;
  const c = ~onesSum(buf, ip, ihl) & 0xffff;
  buf[ip + 10] = c >>> 8;
  buf[ip + 11] = c & 255;
}

/**
 * Cut a TCPv4 super-frame (buf[off..off+len), Ethernet) into segments of at most `mss` payload
 * bytes, each prefixed with `prefix` free bytes (the caller's VXLAN header), written back to back
 * at buf[outOff..outEnd) (a separate area of the same slab: copyWithin allocates nothing, unlike
 * Buffer.copy) with a stride of prefix+headers+mss. IP length/id/checksum and TCP seq, flags and
 * checksum are fixed per segment. Returns the number of segments, -1 if the frame cannot be
 * segmented, or -2 if it does not fit.
 */
export function segmentTcp4(buf: Buffer, off: number, len: number, mss: number, prefix: number, outOff: number, outEnd: number): number {
  const hdr = tcp4HeaderLen(buf, off, len);
  if (hdr === 0 || mss <= 0) return -1;
  const payload = len - hdr;
  if (payload <= 0) return -1;
  const nseg = Math.ceil(payload / mss);
  const stride = prefix + hdr + mss;
  if (outOff + (nseg - 1) * stride + prefix + hdr + (payload - (nseg - 1) * mss) > outEnd) return -2;
  const ip = off + ETH;
  const ihl = (buf[ip] & 15) * 4;
  const thl = hdr - ETH - ihl;
  const src = buf.readUInt32BE(ip + 12);
  const dst = buf.readUInt32BE(ip + 16);
  const id0 = buf.readUInt16BE(ip + 4);
  const seq0 = buf.readUInt32BE(ip + ihl + 4);
  const flags0 = buf[ip + ihl + 13];
  for (let k = 0; k < nseg; k++) {
    const o = outOff + k * stride + prefix;
    const chunk = k === nseg - 1 ? payload - k * mss : mss;
    const out = buf;
    buf.copyWithin(o, off, off + hdr);
    buf.copyWithin(o + hdr, off + hdr + k * mss, off + hdr + k * mss + chunk);
    const oip = o + ETH;
    out.writeUInt16BE(ihl + thl + chunk, oip + 2);
    out.writeUInt16BE((id0 + k) & 0xffff, oip + 4);
    ipHeaderChecksum(out, oip, ihl);
    const t = oip + ihl;
    out.writeUInt32BE((seq0 + k * mss) >>> 0, t + 4);
    let f = flags0;
    if (k < nseg - 1) f &= ~(TCP_FIN | TCP_PSH);
    if (k > 0) f &= ~TCP_CWR;
    out[t + 13] = f;
    out[t + 16] = 0;
    out[t + 17] = 0;
    const c = ~onesSum(out, t, thl + chunk, ipv4PseudoSum(src, dst, 6, thl + chunk)) & 0xffff;
    out[t + 16] = c >>> 8;
    out[t + 17] = c & 255;
  }
  return nseg;
}

/**
 * Builds the frames written to a TAP: copies each delivered frame into `out` behind a virtio
 * header and merges consecutive in-order TCP segments of one flow (same addresses, ports, ACK
 * and options; only ACK/PSH flags; verified checksums) into one GSO super-frame, as the kernel's
 * own GRO would. Without vnet headers it only copies.
 */
export class TapCoalescer {
  /** Output lives in out[start..end); frames are added from the same buffer (copyWithin). */
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

  /** Room check: true if a frame of len bytes can be added without a flush. */
  fits(len: number): boolean {
    return this.count < this.offs.length && this.fill + VNET_HDR_LEN + len <= this.end;
  }

  /** Frames whose inner checksum came partial from the peer (router/partial-csum.ts). */
  partial = 0;

  /** Add the frame at out[f..f+len) (it must lie outside the output area). */
  add(f: number, len: number): void {
    const buf = this.out;
    if (this.vnet) {
      const hdr = tcp4HeaderLen(buf, f, len);
      if (hdr !== 0 && this.tryAppend(buf, f, len, hdr)) return;
      this.close();
      if (hdr !== 0 && len > hdr && mergeable(buf, f, len, hdr)) {
        this.open(buf, f, len, hdr);
        return;
      }
      const o = this.fill;
      if (writeRxVnet(buf, o, f, len, this.mtu)) this.partial++;
      buf.copyWithin(o + VNET_HDR_LEN, f, f + len);
      this.push(o, VNET_HDR_LEN + len);
      return;
    }
    const o = this.fill;
    if (finishPartial(buf, f, len)) this.partial++;
    buf.copyWithin(o, f, f + len);
    this.push(o, len);
  }

  private push(o: number, len: number): void {
    this.offs[this.count] = o;
    this.lens[this.count++] = len;
    this.fill = o + len;
  }

  private open(buf: Buffer, f: number, len: number, hdr: number): void {
    const o = this.fill;
    writeVnetNone(buf, o);
    buf.copyWithin(o + VNET_HDR_LEN, f, f + len);
    this.cur = this.count;
    this.push(o, VNET_HDR_LEN + len);
    this.curHdr = hdr;
    this.curMss = len - hdr;
    this.curSegs = 1;
    this.curLen = len;
    const ip = f + ETH;
    const ihl = (buf[ip] & 15) * 4;
    this.curNextSeq = (buf.readUInt32BE(ip + ihl + 4) + (len - hdr)) >>> 0;
    if (buf[ip + ihl + 13] & TCP_PSH) this.close();
  }

  private tryAppend(buf: Buffer, f: number, len: number, hdr: number): boolean {
    if (this.cur < 0 || hdr !== this.curHdr) return false;
    const chunk = len - hdr;
    if (chunk <= 0 || chunk > this.curMss || this.curLen + chunk - ETH > 65535) return false;
    if (this.fill + chunk > this.end) return false;
    const base = this.offs[this.cur] + VNET_HDR_LEN;
    const ip = f + ETH;
    const ihl = (buf[ip] & 15) * 4;
    const t = ip + ihl;
    const o = this.out;
    const bip = base + ETH;
    const bt = bip + ihl;
    // Same flow, same ACK and window, in order, same IP TOS/TTL/DF, identical options.
    if (buf.readUInt32BE(t + 4) !== this.curNextSeq) return false;
    if (buf.readUInt32BE(ip + 12) !== o.readUInt32BE(bip + 12) || buf.readUInt32BE(ip + 16) !== o.readUInt32BE(bip + 16)) return false;
    if (buf.readUInt32BE(t) !== o.readUInt32BE(bt) || buf.readUInt32BE(t + 8) !== o.readUInt32BE(bt + 8)) return false;
    if (buf[ip + 1] !== o[bip + 1] || buf[ip + 8] !== o[bip + 8] || (buf[ip + 6] & 0x40) !== (o[bip + 6] & 0x40)) return false;
    if (buf.readUInt16BE(t + 14) !== o.readUInt16BE(bt + 14)) return false;
    if (buf.compare(o, bt + 20, base + hdr, t + 20, f + hdr) !== 0) return false;
    if (!mergeable(buf, f, len, hdr)) return false;
    o.copyWithin(this.fill, f + hdr, f + len);
    this.fill += chunk;
    this.curLen += chunk;
    this.lens[this.cur] += chunk;
    this.curSegs++;
    this.curNextSeq = (this.curNextSeq + chunk) >>> 0;
    this.merged++;
    const psh = buf[t + 13] & TCP_PSH;
    if (psh) o[bt + 13] |= TCP_PSH;
    if (psh || chunk < this.curMss) this.close();
    return true;
  }

  /** Finish the open super-frame: IP length and checksum, partial TCP checksum, GSO header. */
  close(): void {
    const i = this.cur;
    if (i < 0) return;
    this.cur = -1;
    if (this.curSegs === 1) return; // a single segment stays as it came, checksums intact
    const o = this.out;
    const v = this.offs[i];
    const base = v + VNET_HDR_LEN;
    const ip = base + ETH;
    const ihl = (o[ip] & 15) * 4;
    const l4 = this.curLen - ETH - ihl;
    o.writeUInt16BE(ihl + l4, ip + 2);
    ipHeaderChecksum(o, ip, ihl);
    const t = ip + ihl;
    const pseudo = ipv4PseudoSum(o.readUInt32BE(ip + 12), o.readUInt32BE(ip + 16), 6, l4);
    o.writeUInt16BE(fold(pseudo), t + 16);
    o[v] = VNET_F_NEEDS_CSUM;
    o[v + 1] = VNET_GSO_TCPV4;
    o.writeUInt16LE(this.curHdr, v + 2);
    o.writeUInt16LE(this.curMss, v + 4);
    o.writeUInt16LE(ETH + ihl, v + 6);
    o.writeUInt16LE(16, v + 8);
  }

  /** Close the open frame and forget the batch (after the caller wrote offs/lens out). */
  reset(): void {
    this.close();
    this.count = 0;
    this.fill = this.start;
  }
}

/** A data segment with only ACK (and PSH) set whose TCP checksum verifies. */
function mergeable(buf: Buffer, f: number, len: number, hdr: number): boolean {
  const ip = f + ETH;
  const ihl = (buf[ip] & 15) * 4;
  if (buf.readUInt16BE(ip + 2) !== len - ETH) return false; // padded or inconsistent
  const t = ip + ihl;
  const flags = buf[t + 13];
  if ((flags & (TCP_SYN | TCP_FIN | TCP_RST | TCP_URG | TCP_CWR)) !== 0 || (flags & TCP_ACK) === 0) return false;
  const l4 = len - ETH - ihl;
  return onesSum(buf, t, l4, ipv4PseudoSum(buf.readUInt32BE(ip + 12), buf.readUInt32BE(ip + 16), 6, l4)) === 0xffff && hdr > 0;
}
