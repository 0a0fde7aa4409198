// The datapath's two edges, in the spirit of wireguard-go's tun/conn split: the router only sees
// these interfaces; native.ts implements them on a real TAP and UDP sockets, memory.ts in memory
// for unit tests. Every call moves a batch; lengths and addresses travel in caller-owned typed
// arrays so nothing is allocated per frame.

/** Ethernet side: a TAP device (or a test double). */
export interface FramePort {
  /**
   * Frames carry a 10-byte virtio_net_hdr in front (IFF_VNET_HDR): reads may be TCP super-frames
   * (TSO) or need a checksum finished; writes may be GSO super-frames.
   */
  readonly vnet: boolean;
  /** Read up to `max` frames; frame i at i*slotSize+headroom, length in lens[i]. Returns the count. */
  readBatch(slab: Buffer, slotSize: number, headroom: number, max: number, lens: Int32Array): number;
  /** Write frames buf[offs[i]..+lens[i]) for i in [start, start+count); returns how many were accepted. */
  writeBatch(buf: Buffer, offs: Int32Array, lens: Int32Array, start: number, count: number): number;
  /** Call cb whenever frames may be readable. */
  onReadable(cb: () => void): void;
  close(): void;
}

/** Underlay side: a UDP socket (or a test double). Addresses are host-order u32. */
export interface DatagramPort {
  /** Local port the socket is bound to (the VXLAN source port of what it sends). */
  readonly port: number;
  /** sendBatch honours segs[i] > 0 (UDP GSO: entry i is a run of datagrams of that size). */
  readonly gso: boolean;
  /** recvBatch may return runs of datagrams (UDP GRO): segs[i] > 0 is their size. */
  readonly gro: boolean;
  recvBatch(slab: Buffer, slotSize: number, headroom: number, max: number,
    lens: Int32Array, addrs: Uint32Array, ports: Uint16Array, segs: Uint16Array): number;
  /**
   * Send entries [start, start+count). Returns how many were used up; an entry the kernel refused
   * gets lens[i] = -errno; fewer than count means the socket buffer is full.
   */
  sendBatch(buf: Buffer, offs: Int32Array, lens: Int32Array, addrs: Uint32Array, ports: Uint16Array,
    segs: Uint16Array, start: number, count: number): number;
  onReadable(cb: () => void): void;
  close(): void;
}
