// Per-network datapath state: tables, counters and the preallocated buffers one network's
// frames live in. Plus the send queues and the small byte helpers the hot path shares.
import { COUNTER_NAMES, DROP_NAMES } from './counters.js';
import { NumTable } from './numtable.js';
import { TapCoalescer, VNET_HDR_LEN } from './offload.js';
import type { DatagramPort, FramePort } from './ports.js';

export const HEADROOM = 64;
export const VXLAN_HDR = 8;
export const ETH_HDR = 14;
/** Largest frame a TSO TAP hands over (virtio header + 64 KB super-frame). */
const TSO_FRAME = VNET_HDR_LEN + 65536 + 64;
/** Room for the segments of a few super-frames between two sends. */
const SEG_AREA = 4 * 72 * 1024;

export class Network {
  readonly counters = new Float64Array(COUNTER_NAMES.length);
  readonly drops = new Float64Array(DROP_NAMES.length);
  /** Local endpoints: MAC → a = IPv4. */
  readonly local = new NumTable();
  /** Local endpoint IPs: (0, IP) → MAC (a = hi, b = lo). */
  readonly localIps = new NumTable();
  /** Remote endpoints: MAC → a = VTEP, b = flags. */
  readonly remote = new NumTable();
  /** Remote neighbours: (0, IP) → MAC (a = hi, b = lo). */
  readonly neigh = new NumTable();
  /** VTEPs allowed to send to this network: (0, VTEP) → a = endpoint refcount, b = static flag. */
  readonly vteps = new NumTable();
  /** Static VTEPs, the head-end replication list for broadcast. */
  staticVteps = new Int32Array(0);

  /** Frames per TAP read. */
  readonly batch: number;
  readonly slot: number;
  /**
   * One buffer, so every copy is an allocation-free copyWithin: `batch` receive slots, the
   * segmentation area, then the ARP reply slots.
   */
  readonly rxSlab: Buffer;
  readonly rxLens: Int32Array;
  readonly segStart: number;
  segFill: number;
  /** Frames on their way into the TAP (copied, coalesced when the TAP takes GSO frames). */
  readonly toTap: TapCoalescer;
  /** Bytes this network needs in the datapath's receive arena for toTap. */
  readonly toTapBytes: number;
  dirty = false;
  // ARP replies the router writes itself, in rxSlab.
  readonly replyOffs: Int32Array;
  readonly replyLens: Int32Array;
  replyCount = 0;

  constructor(readonly vni: number, readonly mtu: number, readonly tap: FramePort, batch: number) {
    this.batch = tap.vnet ? Math.min(batch, 16) : batch;
    this.slot = tap.vnet ? HEADROOM + TSO_FRAME : (HEADROOM + ETH_HDR + 4 + mtu + 63) & ~63;
    this.segStart = this.slot * this.batch;
    this.segFill = this.segStart;
    const replyStart = this.segStart + (tap.vnet ? SEG_AREA : 0);
    const replies = 64;
    this.rxSlab = Buffer.alloc(replyStart + REPLY_SLOT * replies);
    this.rxLens = new Int32Array(this.batch);
    this.replyOffs = new Int32Array(replies);
    this.replyLens = new Int32Array(replies);
    for (let i = 0; i < replies; i++) this.replyOffs[i] = replyStart + i * REPLY_SLOT;
    this.toTap = new TapCoalescer(tap.vnet, 256);
    this.toTapBytes = tap.vnet ? 1 << 20 : 256 * 1024;
  }
}

/** An ARP reply: virtio header + minimum Ethernet frame, rounded up. */
const REPLY_SLOT = 80;

/** One send socket's queue of datagrams (or GSO runs of datagrams) for the next sendmmsg. */
export class TxQueue {
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  readonly addrs: Uint32Array;
  readonly ports: Uint16Array;
  /** UDP_SEGMENT size per entry; 0 = one plain datagram. */
  readonly segs: Uint16Array;
  /** Datagrams each entry carries (for counting). */
  readonly dgrams: Uint16Array;
  count = 0;
  constructor(readonly port: DatagramPort, readonly cap: number) {
    this.offs = new Int32Array(cap);
    this.lens = new Int32Array(cap);
    this.addrs = new Uint32Array(cap);
    this.ports = new Uint16Array(cap);
    this.segs = new Uint16Array(cap);
    this.dgrams = new Uint16Array(cap);
  }
}

export function writeVxlan(buf: Buffer, off: number, vni: number): void {
  buf[off] = 0x08;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = (vni >>> 16) & 255;
  buf[off + 5] = (vni >>> 8) & 255;
  buf[off + 6] = vni & 255;
  buf[off + 7] = 0;
}

export function writeMac(buf: Buffer, off: number, hi: number, lo: number): void {
  buf[off] = (hi >>> 8) & 255;
  buf[off + 1] = hi & 255;
  buf[off + 2] = (lo >>> 24) & 255;
  buf[off + 3] = (lo >>> 16) & 255;
  buf[off + 4] = (lo >>> 8) & 255;
  buf[off + 5] = lo & 255;
}
