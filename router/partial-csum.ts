// Frames from a kernel VXLAN peer whose inner TCP/UDP checksum is still partial (see
// wire/partial.ts) are delivered the way the kernel delivers them: with a virtio header that
// says VIRTIO_NET_HDR_F_NEEDS_CSUM at csum_start/csum_offset, so the TAP turns them back into
// the CHECKSUM_PARTIAL skb the peer sent. Without virtio headers (--no-offload) the checksum is
// finished here instead. Any other frame goes as it came (flags 0): the container's stack
// verifies its checksum and drops it if corrupted, as before.
import { completePartialChecksum, partialChecksumAt } from './wire/partial.js';

/** struct virtio_net_hdr: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset (LE). */
const VNET_LEN = 10;
const VNET_F_NEEDS_CSUM = 1;

/**
 * Write the virtio header for the frame buf[f, f+len) at buf[h, h+10): NEEDS_CSUM for a partial
 * checksum, else all zeros. Returns true if the checksum was partial (counted as rxPartialCsum).
 */
export function writeRxVnet(buf: Buffer, h: number, f: number, len: number): boolean {
  const at = partialChecksumAt(buf, f, len);
  buf.fill(0, h, h + VNET_LEN);
  if (at === 0) return false;
  buf[h] = VNET_F_NEEDS_CSUM;
  buf.writeUInt16LE(at >>> 8, h + 6);
  buf.writeUInt16LE(at & 0xff, h + 8);
  return true;
}

/** Finish a partial checksum of buf[f, f+len) in place; true if it was one. */
export function finishPartial(buf: Buffer, f: number, len: number): boolean {
  const at = partialChecksumAt(buf, f, len);
  if (at === 0) return false;
  completePartialChecksum(buf, f, at);
  return true;
}
