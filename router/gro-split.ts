// The UDP side of the receive offload (wireguard-go keeps it behind conn.Bind; we keep it behind
// DatagramPort): a slot filled by recvmmsg with UDP_GRO may hold a run of equal-size datagrams
// (the last may be shorter); here each run is listed as single datagrams for the datapath.
// Shared by the native UDP port and the in-memory one.
import { D, PASS } from './counters.js';
import type { DatagramBatch } from './ports.js';
import { isTunnelSuperFrame } from './wire/partial.js';

/** Per-slot results of one batched receive, as the addon fills them. */
export class RecvSlots {
  lens: Int32Array;
  addrs: Uint32Array;
  ports: Uint16Array;
  /** GRO segment size per slot; 0 = one datagram. */
  segs: Uint16Array;
  constructor(n: number) {
    this.lens = new Int32Array(n);
    this.addrs = new Uint32Array(n);
    this.ports = new Uint16Array(n);
    this.segs = new Uint16Array(n);
  }
  /** Room for `n` slots (grows once, on the first batch of a new size; control path). */
  ensure(n: number): void {
    if (this.lens.length < n) Object.assign(this, new RecvSlots(n));
  }
}

/**
 * List the datagrams of slots 0..n-1 (slot i at i*slotSize + headroom) in `out`. Returns how many.
 * `buf` is the receive slab. A truncated slot becomes one entry with verdict udpTruncated. The kernel puts at most 64
 * datagrams in a GRO run; should a run not fit in `out`, its rest becomes one truncated entry.
 */
export function splitRuns(buf: Uint8Array, slotSize: number, headroom: number, n: number, s: RecvSlots, out: DatagramBatch): number {
  let k = 0;
  out.slots = n;
  for (let i = 0; i < n && k < out.cap; i++) {
    const off = i * slotSize + headroom;
    const len = s.lens[i];
    const seg = s.segs[i];
    const addr = s.addrs[i] | 0;
    const port = s.ports[i];
    // A kernel VXLAN peer on a veth may hand over one datagram carrying a TCP super-frame, with
    // the inner MSS as its GRO size: it is one datagram, not a run (router/partial-csum.ts).
    if (len < 0 || seg === 0 || seg >= len || isTunnelSuperFrame(buf, off, len, seg)) {
      k = entry(out, k, off, len < 0 ? 0 : len, addr, port, len < 0 ? D.udpTruncated : PASS);
      continue;
    }
    for (let o = 0; o < len; o += seg) {
      if (k === out.cap - 1 && o + seg < len) {
        k = entry(out, k, off + o, len - o, addr, port, D.udpTruncated);
        break;
      }
      k = entry(out, k, off + o, Math.min(seg, len - o), addr, port, PASS);
    }
  }
  return k;
}

function entry(out: DatagramBatch, k: number, off: number, len: number, addr: number, port: number, verdict: number): number {
  out.offs[k] = off;
  out.lens[k] = len;
  out.addrs[k] = addr;
  out.ports[k] = port;
  out.verdict[k] = verdict;
  return k + 1;
}
