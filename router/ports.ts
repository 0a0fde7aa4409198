// The datapath's two edges, in the spirit of wireguard-go's tun/conn split: the router only sees
// these interfaces; native.ts implements them on a real TAP and UDP sockets, memory.ts in memory
// for unit tests. Every call moves a batch; lengths and addresses travel in caller-owned typed
// arrays so nothing is allocated per frame.

/** Ethernet side: a TAP device (or a test double). */
export interface FramePort {
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
  recvBatch(slab: Buffer, slotSize: number, headroom: number, max: number,
    lens: Int32Array, addrs: Uint32Array, ports: Uint16Array): number;
  sendBatch(buf: Buffer, offs: Int32Array, lens: Int32Array, addrs: Uint32Array, ports: Uint16Array,
    start: number, count: number): number;
  onReadable(cb: () => void): void;
  close(): void;
}
