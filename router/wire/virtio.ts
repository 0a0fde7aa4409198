// struct virtio_net_hdr (the 10 bytes a TAP with IFF_VNET_HDR puts in front of each frame; Linux
// include/uapi/linux/virtio_net.h, little-endian fields on x86/arm hosts):
//   byte 0: flags (NEEDS_CSUM = 1); byte 1: gso_type (NONE 0, TCPV4 1, UDP 3, TCPV6 4, UDP_L4 5;
//   0x80 = ECN);
//   2..3: hdr_len; 4..5: gso_size; 6..7: csum_start; 8..9: csum_offset.
// Offsets in the header are relative to the Ethernet frame that follows it.
import { WireError, inBounds } from './error.js';

export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_GSO_NONE = 0;
export const VNET_GSO_TCPV4 = 1;
/** UDP segmentation offload (USO, Linux 6.2+ on TAPs): datagrams of gso_size payload bytes. */
export const VNET_GSO_UDP_L4 = 5;
export const VNET_GSO_ECN = 0x80;

// ---- hot-path views (call checkVnet first) ----

export function vnetFlags(buf: Uint8Array, off: number): number {
  return buf[off];
}
/** gso_type without the ECN bit. */
export function vnetGsoType(buf: Uint8Array, off: number): number {
  return buf[off + 1] & ~VNET_GSO_ECN & 0xff;
}
export function vnetHdrLen(buf: Uint8Array, off: number): number {
  return buf[off + 2] | (buf[off + 3] << 8);
}
export function vnetGsoSize(buf: Uint8Array, off: number): number {
  return buf[off + 4] | (buf[off + 5] << 8);
}
export function vnetCsumStart(buf: Uint8Array, off: number): number {
  return buf[off + 6] | (buf[off + 7] << 8);
}
export function vnetCsumOffset(buf: Uint8Array, off: number): number {
  return buf[off + 8] | (buf[off + 9] << 8);
}

function wr16le(buf: Uint8Array, i: number, v: number): void {
  buf[i] = v;
  buf[i + 1] = v >>> 8;
}

/** A header for a plain frame (no offload requested). */
export function writeVnetNone(buf: Uint8Array, off: number): void {
  buf.fill(0, off, off + VNET_HDR_LEN);
}

/** A header for one frame (no GSO) whose checksum the kernel finishes at csumStart + csumOffset. */
export function writeVnetCsum(buf: Uint8Array, off: number, csumStart: number, csumOffset: number): void {
  buf.fill(0, off, off + VNET_HDR_LEN);
  buf[off] = VNET_F_NEEDS_CSUM;
  wr16le(buf, off + 6, csumStart);
  wr16le(buf, off + 8, csumOffset);
}

/**
 * A TCPv4 GSO header with a partial checksum: the kernel segments the frame at `gsoSize` payload
 * bytes and finishes the checksum field at csumStart + csumOffset.
 */
export function writeVnetTcp4(buf: Uint8Array, off: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number): void {
  writeVnetGso(buf, off, VNET_GSO_TCPV4, hdrLen, gsoSize, csumStart, csumOffset);
}

/**
 * A UDP GSO (UDP_L4) header with a partial checksum: the kernel cuts the frame into datagrams of
 * `gsoSize` payload bytes (the last may be shorter) and finishes each one's checksum at
 * csumStart + csumOffset (the UDP header's check field).
 */
export function writeVnetUdp4(buf: Uint8Array, off: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number): void {
  writeVnetGso(buf, off, VNET_GSO_UDP_L4, hdrLen, gsoSize, csumStart, csumOffset);
}

function writeVnetGso(buf: Uint8Array, off: number, gsoType: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number): void {
  buf[off] = VNET_F_NEEDS_CSUM;
  buf[off + 1] = gsoType;
  wr16le(buf, off + 2, hdrLen);
  wr16le(buf, off + 4, gsoSize);
  wr16le(buf, off + 6, csumStart);
  wr16le(buf, off + 8, csumOffset);
}

/** 0 when buf[off, off+len) holds a whole header; Truncated otherwise. */
export function checkVnet(buf: Uint8Array, off: number, len: number): number {
  if (!inBounds(buf, off, len)) return WireError.BadBounds;
  if (len < VNET_HDR_LEN) return WireError.Truncated;
  return 0;
}
