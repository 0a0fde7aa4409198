// The TAP side of the offloads (wireguard-go keeps them behind tun.Device; we keep them behind
// FramePort): after a batched read, each frame's virtio_net_hdr is decoded here, a partial
// checksum is finished, and what the datapath gets is an Ethernet frame with its TSO segment size.
// Shared by the native TAP port and the in-memory one, so tests decode exactly as production.
import { D, PASS } from './counters.js';
import { completeChecksum } from './offload.js';
import type { FrameBatch } from './ports.js';
import {
  ETH_HEADER_LEN, EtherType, IPV4_MIN_HEADER_LEN, IpProto, VNET_F_NEEDS_CSUM, VNET_GSO_NONE, VNET_GSO_TCPV4, VNET_HDR_LEN, ethType,
  ipv4Proto, vnetCsumOffset, vnetCsumStart, vnetFlags, vnetGsoSize, vnetGsoType,
} from './wire/index.js';

/**
 * Decode frames 0..n-1 read into slots of `slotSize` at `headroom` (out.lens holds the raw read
 * lengths): fills out.offs, out.lens, out.mss and out.verdict. Without vnet headers only the
 * length is checked.
 */
export function decodeFrames(buf: Buffer, slotSize: number, headroom: number, n: number, vnet: boolean, out: FrameBatch): void {
  const offs = out.offs;
  const lens = out.lens;
  const mss = out.mss;
  const verdict = out.verdict;
  for (let i = 0; i < n; i++) {
    const at = i * slotSize + headroom;
    mss[i] = 0;
    if (!vnet) {
      offs[i] = at;
      verdict[i] = lens[i] < ETH_HEADER_LEN ? D.tapShort : PASS;
      continue;
    }
    verdict[i] = decodeVnet(buf, at, lens[i], out, i);
  }
}

/** One frame behind a virtio header at buf[at..at+raw): returns its verdict. */
function decodeVnet(buf: Buffer, at: number, raw: number, out: FrameBatch, i: number): number {
  if (raw < VNET_HDR_LEN + ETH_HEADER_LEN) return D.tapShort;
  const off = at + VNET_HDR_LEN;
  const len = raw - VNET_HDR_LEN;
  out.offs[i] = off;
  out.lens[i] = len;
  const gso = vnetGsoType(buf, at);
  if (gso === VNET_GSO_TCPV4) {
    out.mss[i] = vnetGsoSize(buf, at);
    return PASS; // segmentation writes every checksum anew
  }
  if (gso !== VNET_GSO_NONE) return D.unsupportedGso;
  if ((vnetFlags(buf, at) & VNET_F_NEEDS_CSUM) === 0) return PASS;
  const udp = ethType(buf, off) === EtherType.Ipv4 && len >= ETH_HEADER_LEN + IPV4_MIN_HEADER_LEN && ipv4Proto(buf, off + ETH_HEADER_LEN) === IpProto.Udp;
  return completeChecksum(buf, off, len, vnetCsumStart(buf, at), vnetCsumOffset(buf, at), udp) ? PASS : D.badOffload;
}
