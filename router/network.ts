// Per-network datapath state: tables, counters, the feature slots (null when off) and the
// preallocated buffers one network's frames live in.
import { C, COUNTER_NAMES, DROP_NAMES } from './counters.js';
import { SEAL_HEAD, SEAL_TAIL, type NetworkDns, type NetworkSa, type NetworkVips } from './features.js';
import { FLAG_LEARNED, LEARNING_DEFAULTS, LearnedMacs, sweep, type LearningConfig } from './learned.js';
import { NumTable } from './numtable.js';
import { ipv4ToString, macFromParts } from './wire/addr.js';
import { TapCoalescer } from './coalesce.js';
import { VNET_HDR_LEN } from './offload.js';
import { VXLAN_HEADER_LEN } from './wire/index.js';
import { FrameBatch, type FramePort } from './ports.js';

/** Free bytes in front of every received frame: VXLAN header, room for an ESP header and IV. */
export const HEADROOM = 64;
/** Free bytes after the largest frame a slot holds: room for ESP padding, trailer and tag. */
export const TAILROOM = 32;
export const VXLAN_HDR = VXLAN_HEADER_LEN;
export const ETH_HDR = 14;
/** True: the seal stage works in place, so what it adds fits in the head- and tailroom (tested). */
export const ROOM_FOR_SEAL = HEADROOM >= VXLAN_HEADER_LEN + SEAL_HEAD && TAILROOM >= SEAL_TAIL;
/** Remote entry configured by `peer add` or learned from a static VTEP (then also FLAG_LEARNED, learned.ts). */
export const FLAG_STATIC = 1;
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
  /** Remote endpoints: MAC → a = VTEP, b = flags (FLAG_STATIC, FLAG_LEARNED and its idle count). */
  readonly remote = new NumTable();
  /** Remote neighbours: (0, IP) → MAC (a = hi, b = lo). */
  readonly neigh = new NumTable();
  /** VTEPs allowed to send to this network: (0, VTEP) → a = endpoint refcount, b = static flag. */
  readonly vteps = new NumTable();
  /** Static VTEPs, the head-end replication list for broadcast. */
  staticVteps = new Int32Array(0);
  /** The remote entries learned from static VTEPs: their count and cap (learned.ts). */
  readonly learned: LearnedMacs;

  // Feature slots (features.ts): null while the feature is off on this network.
  /** Encryption (crypto/): egress seals after the VXLAN header, ingress opens before the VXLAN checks. */
  sa: NetworkSa | null = null;
  /** Service VIPs (balancer/): egress DNAT before the FDB lookup, ingress reverse NAT before delivery. */
  vips: NetworkVips | null = null;
  /** Embedded DNS (dns/): egress takes resolver queries before the balancer. */
  dns: NetworkDns | null = null;
  /**
   * Bytes the encapsulation stage leaves free in front of / behind each inner frame it sends:
   * the VXLAN header, plus SEAL_HEAD / SEAL_TAIL when crypto/ sets sa (it sets these with it).
   */
  encapHead = VXLAN_HEADER_LEN;
  encapTail = 0;
  /** UDP destination port of what this network sends: 0 = the VXLAN port; ESP-in-UDP's when encrypted. */
  dstPort = 0;

  /** Frames per TAP read. */
  readonly batch: number;
  readonly slot: number;
  /**
   * One buffer, so every copy is an allocation-free copyWithin: `batch` receive slots, the
   * segmentation area, then the ARP reply slots.
   */
  readonly rxSlab: Buffer;
  /** What the TAP port decoded from the last read. */
  readonly rxFrames: FrameBatch;
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

  constructor(readonly vni: number, readonly mtu: number, readonly tap: FramePort, batch: number, learning: LearningConfig = LEARNING_DEFAULTS) {
    this.learned = new LearnedMacs(learning);
    this.batch = tap.vnet ? Math.min(batch, 16) : batch;
    this.slot = tap.vnet ? HEADROOM + TSO_FRAME + TAILROOM : (HEADROOM + ETH_HDR + 4 + mtu + TAILROOM + 63) & ~63;
    this.segStart = this.slot * this.batch;
    this.segFill = this.segStart;
    const replyStart = this.segStart + (tap.vnet ? SEG_AREA : 0);
    const replies = 64;
    this.rxSlab = Buffer.alloc(replyStart + REPLY_SLOT * replies);
    this.rxFrames = new FrameBatch(this.batch);
    this.replyOffs = new Int32Array(replies);
    this.replyLens = new Int32Array(replies);
    for (let i = 0; i < replies; i++) this.replyOffs[i] = replyStart + i * REPLY_SLOT;
    this.toTap = new TapCoalescer(tap.vnet, 256, mtu);
    this.toTapBytes = tap.vnet ? 1 << 20 : 256 * 1024;
  }
  // ---- tables (control path) -----------------------------------------------------------------

  setLocal(macHi: number, macLo: number, ip: number): void {
    this.local.set(macHi, macLo, ip | 0);
    this.localIps.set(0, ip | 0, macHi, macLo);
  }

  deleteLocal(macHi: number, macLo: number): void {
    const i = this.local.find(macHi, macLo);
    if (i < 0) return;
    this.localIps.delete(0, this.local.a[i]);
    this.local.delete(macHi, macLo);
  }

  /** A remote endpoint: MAC (and IP, 0 for none) behind a VTEP. */
  setRemote(macHi: number, macLo: number, ip: number, vtep: number, isStatic: boolean): void {
    this.putRemote(macHi, macLo, ip, vtep, isStatic ? FLAG_STATIC : 0);
  }

  /** Ingress step 6 (learn), under the cap the caller checked: a MAC seen from a static VTEP. */
  learnRemote(macHi: number, macLo: number, vtep: number): void {
    this.putRemote(macHi, macLo, 0, vtep, FLAG_STATIC | FLAG_LEARNED);
    this.learned.count++;
  }

  /** Ageing (learned.ts): one sweep, run by the datapath's timer. Returns the MACs forgotten. */
  sweepLearned(): number {
    if (this.learned.config.ageingMs === 0) return 0;
    const n = sweep(this.remote, (hi, lo) => this.deleteRemote(hi, lo));
    this.counters[C.learnedAged] += n;
    return n;
  }

  private putRemote(macHi: number, macLo: number, ip: number, vtep: number, flags: number): void {
    this.deleteRemote(macHi, macLo);
    this.remote.set(macHi, macLo, vtep | 0, flags);
    if (ip !== 0) this.neigh.set(0, ip | 0, macHi, macLo);
    const v = this.vteps.find(0, vtep);
    if (v >= 0) this.vteps.a[v]++;
    else this.vteps.set(0, vtep | 0, 1, 0);
  }

  deleteRemote(macHi: number, macLo: number): void {
    const i = this.remote.find(macHi, macLo);
    if (i < 0) return;
    const vtep = this.remote.a[i];
    if (this.remote.b[i] & FLAG_LEARNED) this.learned.count--;
    this.remote.delete(macHi, macLo);
    for (const [, ip, hi, lo] of this.neigh.entries()) {
      if (hi === macHi && lo === (macLo | 0)) this.neigh.delete(0, ip);
    }
    const v = this.vteps.find(0, vtep);
    if (v >= 0 && --this.vteps.a[v] <= 0 && this.vteps.b[v] === 0) this.vteps.delete(0, vtep);
  }

  /** A static VTEP (kernel VXLAN host, hardware VTEP): accepted sender, broadcast target, learning source. */
  addStaticVtep(vtep: number): void {
    const v = this.vteps.find(0, vtep);
    if (v >= 0) this.vteps.b[v] = 1;
    else this.vteps.set(0, vtep | 0, 0, 1);
    this.rebuildStatic();
  }

  deleteStaticVtep(vtep: number): void {
    const v = this.vteps.find(0, vtep);
    if (v >= 0) {
      this.vteps.b[v] = 0;
      if (this.vteps.a[v] <= 0) this.vteps.delete(0, vtep);
    }
    // Entries learned from (or configured for) that VTEP go with it.
    for (const [hi, lo, at, flags] of this.remote.entries()) {
      if (at === (vtep | 0) && flags & FLAG_STATIC) this.deleteRemote(hi, lo);
    }
    this.rebuildStatic();
  }

  /** The forwarding table (remote MAC → VTEP). */
  forwarding(): { mac: string; vtep: string; static: boolean }[] {
    const out: { mac: string; vtep: string; static: boolean }[] = [];
    for (const [hi, lo, vtep, flags] of this.remote.entries()) {
      out.push({ mac: macFromParts(hi, lo), vtep: ipv4ToString(vtep), static: (flags & FLAG_STATIC) !== 0 });
    }
    return out;
  }

  private rebuildStatic(): void {
    const list: number[] = [];
    for (const [, vtep, , isStatic] of this.vteps.entries()) if (isStatic) list.push(vtep);
    this.staticVteps = Int32Array.from(list);
  }
}

/** An ARP reply: virtio header + minimum Ethernet frame, rounded up. */
const REPLY_SLOT = 80;
