// The datapath's two edges, in the spirit of wireguard-go's tun.Device / conn.Bind: the router
// only sees these interfaces, and the offloads live behind them. A FramePort hands over decoded
// Ethernet frames (the virtio header already read: TSO size, checksum finished); a DatagramPort
// hands over single VXLAN datagrams (GRO runs already split). native-ports.ts implements them on a
// real TAP and UDP sockets, memory.ts in memory for unit tests. Every call moves a batch; offsets,
// lengths and addresses travel in caller-owned typed arrays so nothing is allocated per frame.
import { PASS } from './counters.js';

/**
 * What a FramePort read: per frame its offset and length in the slab (the Ethernet frame, after
 * any virtio header), its TSO segment size (0 = an ordinary frame) and a verdict: PASS, or the
 * drop reason (a D index) when the port already refused it (short, unsupported GSO, bad offload).
 */
export class FrameBatch {
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  readonly mss: Uint16Array;
  readonly verdict: Int16Array;
  constructor(readonly cap: number) {
    this.offs = new Int32Array(cap);
    this.lens = new Int32Array(cap);
    this.mss = new Uint16Array(cap);
    this.verdict = new Int16Array(cap).fill(PASS);
  }
}

/** Ethernet side: a TAP device (or a test double). */
export interface FramePort {
  /**
   * Frames carry a 10-byte virtio_net_hdr in front on the device (IFF_VNET_HDR): reads are
   * decoded by the port; writes (writeBatch) must carry the header, the TAP coalescer writes it.
   */
  readonly vnet: boolean;
  /**
   * Read up to min(max, out.cap) frames into slots of slotSize at slot*i + headroom and decode
   * them into `out`. Returns the count.
   */
  readBatch(slab: Buffer, slotSize: number, headroom: number, max: number, out: FrameBatch): number;
  /** Write frames buf[offs[i]..+lens[i]) for i in [start, start+count); returns how many were accepted. */
  writeBatch(buf: Buffer, offs: Int32Array, lens: Int32Array, start: number, count: number): number;
  /** Call cb whenever frames may be readable. */
  onReadable(cb: () => void): void;
  close(): void;
}

/**
 * What a DatagramPort received: one entry per datagram (a GRO run is already split), its offset
 * and length in the slab, the sender's address and port, and a verdict: PASS, or a drop reason
 * (D.udpTruncated for a datagram larger than its slot).
 */
export class DatagramBatch {
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  readonly addrs: Int32Array;
  readonly ports: Uint16Array;
  readonly verdict: Int16Array;
  /** Slots (datagrams or GRO runs) the last receive filled. */
  slots = 0;
  constructor(readonly cap: number) {
    this.offs = new Int32Array(cap);
    this.lens = new Int32Array(cap);
    this.addrs = new Int32Array(cap);
    this.ports = new Uint16Array(cap);
    this.verdict = new Int16Array(cap).fill(PASS);
  }
}

/** Underlay side: a UDP socket (or a test double). Addresses are host-order u32. */
export interface DatagramPort {
  /** Local port the socket is bound to (the VXLAN source port of what it sends). */
  readonly port: number;
  /** sendBatch honours segs[i] > 0 (UDP GSO: entry i is a run of datagrams of that size). */
  readonly gso: boolean;
  /** Receives may be runs of datagrams (UDP GRO): slots must hold a whole run (64 KB). */
  readonly gro: boolean;
  /**
   * Receive up to `max` slots (each a datagram, or a GRO run) at slot*i + headroom and list their
   * datagrams in `out` (out.cap must be at least max * 64 with GRO, else max). Returns the
   * number of datagrams listed.
   */
  recvBatch(slab: Buffer, slotSize: number, headroom: number, max: number, out: DatagramBatch): number;
  /**
   * Send entries [start, start+count). Returns how many were used up; an entry the kernel refused
   * gets lens[i] = -errno; fewer than count means the socket buffer is full.
   */
  sendBatch(buf: Buffer, offs: Int32Array, lens: Int32Array, addrs: Uint32Array, ports: Uint16Array,
    segs: Uint16Array, start: number, count: number): number;
  onReadable(cb: () => void): void;
  close(): void;
}
