// Frames from a kernel VXLAN peer whose inner TCP/UDP checksum is still partial (see
// wire/partial.ts) are delivered the way the kernel delivers them: with a virtio header that
// says VIRTIO_NET_HDR_F_NEEDS_CSUM at csum_start/csum_offset, so the TAP turns them back into
// the CHECKSUM_PARTIAL skb the peer sent. Without virtio headers (--no-offload) the checksum is
// finished here instead. Any other frame goes as it came (flags 0): the container's stack
// verifies its checksum and drops it if corrupted, as before.
import { TCP_CHECKSUM_OFFSET } from './wire/tcp.js';
import { writeVnetCsum, writeVnetNone, writeVnetTcp4 } from './wire/virtio.js';
import { completePartialChecksum, makeTcpChecksumPartial, partialChecksumAt, tcpSuperFrameHeaderLen } from './wire/partial.js';

/**
 * Write the virtio header for the frame buf[f, f+len) at buf[h, h+10): NEEDS_CSUM for a partial
 * checksum; for a TCP frame longer than the MTU (a kernel peer's tunnel-GSO skb arrived whole)
 * also GSO TCPV4 with the MSS of `mtu`, as the kernel's VXLAN receiver passes it on; else all
 * zeros. Returns true if the frame was marked so (counted as rxPartialCsum).
 */
export function writeRxVnet(buf: Buffer, h: number, f: number, len: number, mtu: number): boolean {
  const hdr = tcpSuperFrameHeaderLen(buf, f, len, mtu);
  if (hdr !== 0) {
    const start = makeTcpChecksumPartial(buf, f);
    if (start === 0) {
      writeVnetNone(buf, h);
      return false; // corrupted: goes unmarked, and the kernel drops it
    }
    writeVnetTcp4(buf, h, hdr, mtu + 14 - hdr, start, TCP_CHECKSUM_OFFSET);
    return true;
  }
  const at = partialChecksumAt(buf, f, len);
  if (at === 0) {
    writeVnetNone(buf, h);
    return false;
  }
  writeVnetCsum(buf, h, at >>> 8, at & 0xff);
  return true;
}

/** Finish a partial checksum of buf[f, f+len) in place; true if it was one. */
export function finishPartial(buf: Buffer, f: number, len: number): boolean {
  const at = partialChecksumAt(buf, f, len);
  if (at === 0) return false;
  completePartialChecksum(buf, f, at);
  return true;
}
