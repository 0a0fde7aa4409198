// The datapath's edges on real kernel objects: a TAP file descriptor and UDP sockets, through
// the native addon. Each method is one JS→C++ crossing per batch.
import { native, type NativeAddon, type PollHandle } from '../native/index.js';
import { RecvSlots, splitRuns } from './gro-split.js';
import type { DatagramBatch, DatagramPort, FrameBatch, FramePort } from './ports.js';
import { decodeFrames } from './tap-decode.js';
import { nativeSumActive, useNativeSum } from './wire/checksum.js';
import { nativeCopyActive, useNativeCopy } from './copy.js';

/** Real ports mean the addon is loaded: let the checksums and batched copies use it too (once per thread). */
function nativeChecksums(n: NativeAddon): void {
  if (!nativeSumActive()) useNativeSum(n.csumSum, n.csumBatch);
  if (!nativeCopyActive()) useNativeCopy(n.copyBatch);
}

/** A descriptor watched for readability on this thread's loop, closed once. */
class PolledFd {
  protected readonly n: NativeAddon = native();
  private poll: PollHandle | undefined;
  private closed = false;

  constructor(readonly fd: number, private readonly ownsFd: boolean) {
    nativeChecksums(this.n);
  }

  onReadable(cb: () => void): void {
    this.poll?.close();
    this.poll = this.n.pollReadable(this.fd, cb, true); // raw call: the datapath starts no promises
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.poll?.close();
    if (this.ownsFd) this.n.close(this.fd);
  }
}

export class TapPort extends PolledFd implements FramePort {
  /** Wrap an already open TAP fd (the agent opens it and moves the device into the sandbox). */
  constructor(fd: number, readonly vnet: boolean, ownsFd = true) {
    super(fd, ownsFd);
  }

  readBatch(slab: Buffer, slotSize: number, headroom: number, max: number, out: FrameBatch): number {
    const n = this.n.readFrames(this.fd, slab, slotSize, headroom, Math.min(max, out.cap), out.lens);
    decodeFrames(slab, slotSize, headroom, n, this.vnet, out);
    return n;
  }

  writeBatch(buf: Buffer, offs: Int32Array, lens: Int32Array, start: number, count: number): number {
    return this.n.writeFrames(this.fd, buf, offs, lens, start, count);
  }
}

/**
 * Default socket buffer of a send socket, and of the receive socket unless told otherwise (bytes
 * requested; the kernel doubles it for bookkeeping and charges each skb's truesize against it).
 */
export const UDP_BUF_BYTES = 8 << 20;
/**
 * Default receive buffer of the VXLAN socket: covers a stall of the datapath thread (GC, a
 * descheduled vCPU on a loaded host) of about 250 ms of a 1400-byte stream at 75 k packets/s
 * (the rate kernel VXLAN sustains here) at ~2.3 KB truesize per datagram. Set with
 * SO_RCVBUFFORCE, so it is not capped by net.core.rmem_max when the agent runs as root.
 */
export const UDP_RCVBUF_BYTES = 32 << 20;

export class UdpPort extends PolledFd implements DatagramPort {
  readonly port: number;
  readonly gro: boolean;
  /** Effective SO_RCVBUF as the kernel reports it (about twice what was asked). */
  readonly rcvbuf: number;
  private readonly slots = new RecvSlots(64);

  /**
   * `gso`: send runs with UDP_SEGMENT; `gro`: a receiving socket coalesces with UDP_GRO.
   * `bufBytes`: SO_SNDBUF; `rcvBytes`: SO_RCVBUF (default: UDP_RCVBUF_BYTES for a socket bound
   * to a fixed port, the receiver, else bufBytes).
   */
  constructor(addr: number, port: number, readonly gso: boolean, gro: boolean, bufBytes = UDP_BUF_BYTES,
    rcvBytes = port !== 0 ? Math.max(UDP_RCVBUF_BYTES, bufBytes) : bufBytes) {
    const s = native().udpOpen(addr, port, rcvBytes, bufBytes);
    super(s.fd, true);
    this.port = s.port;
    this.rcvbuf = s.rcvbuf;
    let on = false;
    if (gro) {
      try {
        this.n.udpSetGro(this.fd, true);
        on = true;
      } catch {
        on = false; // kernel without UDP_GRO: plain datagrams
      }
    }
    this.gro = on;
  }

  recvBatch(slab: Buffer, slotSize: number, headroom: number, max: number, out: DatagramBatch): number {
    const s = this.slots;
    s.ensure(max);
    const n = this.n.udpRecv(this.fd, slab, slotSize, headroom, max, s.lens, s.addrs, s.ports, s.segs);
    return splitRuns(slab, slotSize, headroom, n, s, out);
  }

  sendBatch(buf: Buffer, offs: Int32Array, lens: Int32Array, addrs: Uint32Array, ports: Uint16Array, segs: Uint16Array, start: number, count: number): number {
    return this.gso
      ? this.n.udpSendGsoBatch(this.fd, buf, offs, lens, addrs, ports, segs, start, count)
      : this.n.udpSend(this.fd, buf, offs, lens, addrs, ports, start, count);
  }
}
