// The per-batch datapath of design.md §2. One Datapath serves every overlay network of a host:
// each network has a TAP (FramePort); all networks share one VXLAN receive socket and a small
// set of send sockets (DatagramPort) whose distinct source ports carry the inner-flow hash, as
// RFC 7348 recommends for ECMP entropy.
//
// Hot path rules: frames stay in preallocated slabs; the VXLAN header is written into the
// headroom in place; MACs are (hi16, lo32) and IPv4 addresses int32; lookups go through
// NumTable; counters are Float64Array slots. Nothing in processTap/processUdp allocates.
import { C, COUNTER_NAMES, D, DROP_NAMES, snapshot, type CounterSnapshot } from './counters.js';
import { NumTable } from './numtable.js';
import type { DatagramPort, FramePort } from './ports.js';
import { flowHash } from './wire/index.js';

export const HEADROOM = 64;
export const VXLAN_HDR = 8;
const ETH_HDR = 14;
const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_ARP = 0x0806;
const ARP_LEN = 28;
const UDP_SLOT = 9344; // fits a VXLAN datagram carrying a 9000-byte inner MTU
const FLAG_STATIC = 1; // remote entry configured by `peer add` or learned from a static VTEP

export interface DatapathOptions {
  vxlanPort: number;
  /** Frames per read/recv call. */
  batch?: number;
  /** Batches handled per readiness callback before yielding to the event loop. */
  budget?: number;
}

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

  readonly slot: number;
  readonly rxSlab: Buffer;
  readonly rxLens: Int32Array;
  // Frames queued for the TAP (they point into the datapath's UDP slab).
  readonly txOffs: Int32Array;
  readonly txLens: Int32Array;
  txCount = 0;
  // ARP replies the router writes itself.
  readonly replySlab: Buffer;
  readonly replyOffs: Int32Array;
  readonly replyLens: Int32Array;
  replyCount = 0;
  dirty = false;

  constructor(readonly vni: number, readonly mtu: number, readonly tap: FramePort, batch: number) {
    this.slot = (HEADROOM + ETH_HDR + 4 + mtu + 63) & ~63;
    this.rxSlab = Buffer.alloc(this.slot * batch);
    this.rxLens = new Int32Array(batch);
    this.txOffs = new Int32Array(batch);
    this.txLens = new Int32Array(batch);
    this.replySlab = Buffer.alloc(64 * batch);
    this.replyOffs = new Int32Array(batch);
    this.replyLens = new Int32Array(batch);
    for (let i = 0; i < batch; i++) this.replyOffs[i] = i * 64;
  }
}

/** One send socket's queue of datagrams for the next sendmmsg. */
class TxQueue {
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  readonly addrs: Uint32Array;
  readonly ports: Uint16Array;
  count = 0;
  constructor(readonly port: DatagramPort, readonly cap: number) {
    this.offs = new Int32Array(cap);
    this.lens = new Int32Array(cap);
    this.addrs = new Uint32Array(cap);
    this.ports = new Uint16Array(cap);
  }
}

export class Datapath {
  readonly drops = new Float64Array(DROP_NAMES.length);
  private readonly nets = new Map<number, Network>();
  private readonly batch: number;
  private readonly budget: number;
  private readonly vxlanPort: number;
  private readonly udpSlab: Buffer;
  private readonly udpLens: Int32Array;
  private readonly udpAddrs: Uint32Array;
  private readonly udpPorts: Uint16Array;
  private readonly txq: TxQueue[];
  private readonly dirtyNets: Network[] = [];
  private closed = false;

  constructor(private readonly rx: DatagramPort, tx: DatagramPort[], opts: DatapathOptions) {
    if (tx.length === 0) throw new Error('datapath needs at least one send socket');
    this.batch = opts.batch ?? 64;
    this.budget = opts.budget ?? 8;
    this.vxlanPort = opts.vxlanPort;
    this.udpSlab = Buffer.alloc(UDP_SLOT * this.batch);
    this.udpLens = new Int32Array(this.batch);
    this.udpAddrs = new Uint32Array(this.batch);
    this.udpPorts = new Uint16Array(this.batch);
    // Room for a whole batch plus head-end replication copies; flushed early when full.
    this.txq = tx.map((p) => new TxQueue(p, this.batch * 2));
    rx.onReadable(() => this.pumpUdp());
  }

  // ---- control path -------------------------------------------------------------------------

  addNetwork(vni: number, mtu: number, tap: FramePort): Network {
    if (this.nets.has(vni)) throw new Error(`VNI ${vni} already has a network`);
    const net = new Network(vni, mtu, tap, this.batch);
    this.nets.set(vni, net);
    tap.onReadable(() => this.pumpTap(net));
    return net;
  }

  removeNetwork(vni: number): void {
    const net = this.nets.get(vni);
    if (!net) return;
    this.nets.delete(vni);
    net.tap.close();
  }

  network(vni: number): Network | undefined {
    return this.nets.get(vni);
  }

  networks(): IterableIterator<Network> {
    return this.nets.values();
  }

  setLocal(vni: number, macHi: number, macLo: number, ip: number): void {
    const net = this.need(vni);
    net.local.set(macHi, macLo, ip | 0);
    net.localIps.set(0, ip | 0, macHi, macLo);
  }

  deleteLocal(vni: number, macHi: number, macLo: number): void {
    const net = this.need(vni);
    const i = net.local.find(macHi, macLo);
    if (i < 0) return;
    net.localIps.delete(0, net.local.a[i]);
    net.local.delete(macHi, macLo);
  }

  /** A remote endpoint: MAC (and IP, 0 for none) behind a VTEP. */
  setRemote(vni: number, macHi: number, macLo: number, ip: number, vtep: number, isStatic: boolean): void {
    const net = this.need(vni);
    this.deleteRemote(vni, macHi, macLo);
    net.remote.set(macHi, macLo, vtep | 0, isStatic ? FLAG_STATIC : 0);
    if (ip !== 0) net.neigh.set(0, ip | 0, macHi, macLo);
    const v = net.vteps.find(0, vtep);
    if (v >= 0) net.vteps.a[v]++;
    else net.vteps.set(0, vtep | 0, 1, 0);
  }

  deleteRemote(vni: number, macHi: number, macLo: number): void {
    const net = this.need(vni);
    const i = net.remote.find(macHi, macLo);
    if (i < 0) return;
    const vtep = net.remote.a[i];
    net.remote.delete(macHi, macLo);
    for (const [, ip, hi, lo] of net.neigh.entries()) {
      if (hi === macHi && lo === (macLo | 0)) net.neigh.delete(0, ip);
    }
    const v = net.vteps.find(0, vtep);
    if (v >= 0 && --net.vteps.a[v] <= 0 && net.vteps.b[v] === 0) net.vteps.delete(0, vtep);
  }

  /** A static VTEP (kernel VXLAN host, hardware VTEP): accepted sender, broadcast target, learning source. */
  addStaticVtep(vni: number, vtep: number): void {
    const net = this.need(vni);
    const v = net.vteps.find(0, vtep);
    if (v >= 0) net.vteps.b[v] = 1;
    else net.vteps.set(0, vtep | 0, 0, 1);
    this.rebuildStatic(net);
  }

  deleteStaticVtep(vni: number, vtep: number): void {
    const net = this.need(vni);
    const v = net.vteps.find(0, vtep);
    if (v >= 0) {
      net.vteps.b[v] = 0;
      if (net.vteps.a[v] <= 0) net.vteps.delete(0, vtep);
    }
    // Entries learned from (or configured for) that VTEP go with it.
    for (const [hi, lo, at, flags] of net.remote.entries()) {
      if (at === (vtep | 0) && flags & FLAG_STATIC) this.deleteRemote(vni, hi, lo);
    }
    this.rebuildStatic(net);
  }

  stats(): { drops: CounterSnapshot; networks: Record<number, { counters: CounterSnapshot; drops: CounterSnapshot }> } {
    const networks: Record<number, { counters: CounterSnapshot; drops: CounterSnapshot }> = {};
    for (const n of this.nets.values()) {
      networks[n.vni] = { counters: snapshot(COUNTER_NAMES, n.counters), drops: snapshot(DROP_NAMES, n.drops) };
    }
    return { drops: snapshot(DROP_NAMES, this.drops), networks };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const n of this.nets.values()) n.tap.close();
    this.nets.clear();
    this.rx.close();
    for (const q of this.txq) if (q.port !== this.rx) q.port.close();
  }

  private need(vni: number): Network {
    const net = this.nets.get(vni);
    if (!net) throw new Error(`no network with VNI ${vni}`);
    return net;
  }

  private rebuildStatic(net: Network): void {
    const list: number[] = [];
    for (const [, vtep, , isStatic] of net.vteps.entries()) if (isStatic) list.push(vtep);
    net.staticVteps = Int32Array.from(list);
  }

  // ---- hot path: container → wire -----------------------------------------------------------

  /** Drain a network's TAP in batches (bounded by the budget so other sources get their turn). */
  pumpTap(net: Network): void {
    for (let round = 0; round < this.budget && !this.closed; round++) {
      const n = net.tap.readBatch(net.rxSlab, net.slot, HEADROOM, this.batch, net.rxLens);
      if (n === 0) break;
      this.processTap(net, n);
      if (n < this.batch) break;
    }
  }

  processTap(net: Network, n: number): void {
    const buf = net.rxSlab;
    const slot = net.slot;
    const lens = net.rxLens;
    const cnt = net.counters;
    const drops = net.drops;
    const vni = net.vni;
    for (let i = 0; i < n; i++) {
      const off = i * slot + HEADROOM;
      const len = lens[i];
      if (len < ETH_HDR) {
        drops[D.tapShort]++;
        continue;
      }
      cnt[C.tapRxFrames]++;
      cnt[C.tapRxBytes] += len;
      const srcHi = (buf[off + 6] << 8) | buf[off + 7];
      const srcLo = (buf[off + 8] << 24) | (buf[off + 9] << 16) | (buf[off + 10] << 8) | buf[off + 11];
      if (net.local.find(srcHi, srcLo) < 0) {
        drops[D.tapUnknownSrc]++;
        continue;
      }
      const dstHi = (buf[off] << 8) | buf[off + 1];
      if (dstHi & 0x100) {
        // Group bit: broadcast or multicast. ARP for a known endpoint is answered here; anything
        // else crosses only to static VTEPs (head-end replication), never to tapmesh peers.
        if (((buf[off + 12] << 8) | buf[off + 13]) === ETHERTYPE_ARP && this.handleArp(net, buf, off, len)) continue;
        const statics = net.staticVteps;
        if (statics.length === 0) {
          drops[D.broadcastNoFlood]++;
          continue;
        }
        writeVxlan(buf, off - VXLAN_HDR, vni);
        const q = this.txq[0];
        for (let s = 0; s < statics.length; s++) {
          this.queueTx(net, q, off - VXLAN_HDR, len + VXLAN_HDR, statics[s]);
          cnt[C.broadcastReplicated]++;
        }
        continue;
      }
      const dstLo = (buf[off + 2] << 24) | (buf[off + 3] << 16) | (buf[off + 4] << 8) | buf[off + 5];
      const r = net.remote.find(dstHi, dstLo);
      if (r < 0) {
        if (net.local.find(dstHi, dstLo) >= 0) drops[D.localDst]++;
        else drops[D.unknownDst]++;
        continue;
      }
      writeVxlan(buf, off - VXLAN_HDR, vni);
      const q = this.txq[flowHash(buf, off, len) % this.txq.length];
      this.queueTx(net, q, off - VXLAN_HDR, len + VXLAN_HDR, net.remote.a[r]);
    }
    this.flushTx(net);
    if (net.replyCount > 0) this.flushReplies(net);
  }

  private queueTx(net: Network, q: TxQueue, off: number, len: number, vtep: number): void {
    if (q.count === q.cap) this.sendQueue(net, q);
    const k = q.count++;
    q.offs[k] = off;
    q.lens[k] = len;
    q.addrs[k] = vtep;
    q.ports[k] = this.vxlanPort;
  }

  /** Send every queued datagram; they all point into this network's receive slab. */
  private flushTx(net: Network): void {
    for (let k = 0; k < this.txq.length; k++) {
      const q = this.txq[k];
      if (q.count > 0) this.sendQueue(net, q);
    }
  }

  private sendQueue(net: Network, q: TxQueue): void {
    // A port returns how many entries it used up; one the kernel refused has its length
    // replaced by -errno. What is left after the count met EAGAIN (buffer full).
    const used = q.port.sendBatch(net.rxSlab, q.offs, q.lens, q.addrs, q.ports, 0, q.count);
    countWritten(net, q.lens, used, q.count, C.vxlanTxPackets, C.vxlanTxBytes, D.udpTxFull);
    q.count = 0;
  }

  /** Returns false when the target is unknown and the request may still be replicated to static VTEPs. */
  private handleArp(net: Network, buf: Buffer, off: number, len: number): boolean {
    const drops = net.drops;
    const a = off + ETH_HDR;
    if (len < ETH_HDR + ARP_LEN || buf[a] !== 0 || buf[a + 1] !== 1 || buf[a + 2] !== 8 || buf[a + 3] !== 0 ||
      buf[a + 4] !== 6 || buf[a + 5] !== 4) {
      drops[D.arpMalformed]++;
      return true;
    }
    const op = (buf[a + 6] << 8) | buf[a + 7];
    const spa = (buf[a + 14] << 24) | (buf[a + 15] << 16) | (buf[a + 16] << 8) | buf[a + 17];
    const tpa = (buf[a + 24] << 24) | (buf[a + 25] << 16) | (buf[a + 26] << 8) | buf[a + 27];
    if (op !== 1 || spa === tpa) {
      drops[D.arpOther]++;
      return true;
    }
    const r = net.neigh.find(0, tpa);
    if (r < 0) {
      if (net.localIps.find(0, tpa) >= 0) {
        drops[D.arpLocal]++;
        return true;
      }
      if (net.staticVteps.length > 0) return false;
      drops[D.arpUnknown]++;
      return true;
    }
    if (net.replyCount === net.replyOffs.length) this.flushReplies(net);
    const o = net.replyOffs[net.replyCount];
    const out = net.replySlab;
    const macHi = net.neigh.a[r];
    const macLo = net.neigh.b[r];
    // Ethernet: to the requester, from the answered MAC.
    buf.copy(out, o, off + 6, off + 12);
    writeMac(out, o + 6, macHi, macLo);
    out[o + 12] = 0x08;
    out[o + 13] = 0x06;
    const p = o + ETH_HDR;
    out[p] = 0; out[p + 1] = 1; out[p + 2] = 8; out[p + 3] = 0; out[p + 4] = 6; out[p + 5] = 4;
    out[p + 6] = 0; out[p + 7] = 2; // reply
    writeMac(out, p + 8, macHi, macLo); // sender hardware = answered MAC
    buf.copy(out, p + 14, a + 24, a + 28); // sender protocol = asked IP
    buf.copy(out, p + 18, a + 8, a + 18); // target hw + protocol = requester's
    out.fill(0, p + ARP_LEN, o + 60); // pad to the Ethernet minimum
    net.replyLens[net.replyCount++] = 60;
    net.counters[C.arpReplied]++;
    return true;
  }

  private flushReplies(net: Network): void {
    const used = net.tap.writeBatch(net.replySlab, net.replyOffs, net.replyLens, 0, net.replyCount);
    countWritten(net, net.replyLens, used, net.replyCount, C.tapTxFrames, C.tapTxBytes, D.tapTxFull);
    net.replyCount = 0;
  }

  // ---- hot path: wire → container -----------------------------------------------------------

  pumpUdp(): void {
    for (let round = 0; round < this.budget && !this.closed; round++) {
      const n = this.rx.recvBatch(this.udpSlab, UDP_SLOT, HEADROOM, this.batch, this.udpLens, this.udpAddrs, this.udpPorts);
      if (n === 0) break;
      this.processUdp(n);
      if (n < this.batch) break;
    }
  }

  processUdp(n: number): void {
    const buf = this.udpSlab;
    const lens = this.udpLens;
    const gdrops = this.drops;
    for (let i = 0; i < n; i++) {
      const off = i * UDP_SLOT + HEADROOM;
      const len = lens[i];
      if (len < 0) {
        gdrops[D.udpTruncated]++;
        continue;
      }
      if (len < VXLAN_HDR + ETH_HDR) {
        gdrops[D.vxlanShort]++;
        continue;
      }
      if (buf[off] !== 0x08 || buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0 || buf[off + 7] !== 0) {
        gdrops[D.vxlanBadFlags]++;
        continue;
      }
      const vni = (buf[off + 4] << 16) | (buf[off + 5] << 8) | buf[off + 6];
      const net = this.nets.get(vni);
      if (net === undefined) {
        gdrops[D.unknownVni]++;
        continue;
      }
      const drops = net.drops;
      const vtep = this.udpAddrs[i] | 0;
      const v = net.vteps.find(0, vtep);
      if (v < 0) {
        drops[D.unknownVtep]++;
        continue;
      }
      const fromStatic = net.vteps.b[v] !== 0;
      const f = off + VXLAN_HDR;
      const flen = len - VXLAN_HDR;
      const srcHi = (buf[f + 6] << 8) | buf[f + 7];
      const srcLo = (buf[f + 8] << 24) | (buf[f + 9] << 16) | (buf[f + 10] << 8) | buf[f + 11];
      const r = net.remote.find(srcHi, srcLo);
      if (r >= 0) {
        if (net.remote.a[r] !== vtep) {
          drops[D.spoofedSrcMac]++;
          continue;
        }
      } else if (!fromStatic || (srcHi & 0x100) !== 0 || net.local.find(srcHi, srcLo) >= 0) {
        drops[D.spoofedSrcMac]++;
        continue;
      } else {
        // Flood-and-learn only for static VTEPs (a kernel VXLAN host or hardware VTEP).
        this.setRemote(vni, srcHi, srcLo, 0, vtep, true);
        net.counters[C.learned]++;
      }
      if (!this.srcIpMatches(net, buf, f, flen, srcHi, srcLo, fromStatic)) {
        drops[D.spoofedSrcIp]++;
        continue;
      }
      const dstHi = (buf[f] << 8) | buf[f + 1];
      if (dstHi & 0x100) {
        if (!fromStatic) {
          drops[D.remoteBroadcast]++;
          continue;
        }
      } else {
        const dstLo = (buf[f + 2] << 24) | (buf[f + 3] << 16) | (buf[f + 4] << 8) | buf[f + 5];
        if (net.local.find(dstHi, dstLo) < 0) {
          drops[D.remoteUnknownDst]++;
          continue;
        }
      }
      net.counters[C.vxlanRxPackets]++;
      net.counters[C.vxlanRxBytes] += len;
      if (!net.dirty) {
        net.dirty = true;
        this.dirtyNets.push(net);
      }
      const k = net.txCount++;
      net.txOffs[k] = f;
      net.txLens[k] = flen;
    }
    // Deliver per network, one batched write each.
    for (let d = 0; d < this.dirtyNets.length; d++) {
      const net = this.dirtyNets[d];
      const used = net.tap.writeBatch(buf, net.txOffs, net.txLens, 0, net.txCount);
      countWritten(net, net.txLens, used, net.txCount, C.tapTxFrames, C.tapTxBytes, D.tapTxFull);
      net.txCount = 0;
      net.dirty = false;
    }
    this.dirtyNets.length = 0;
  }

  /**
   * Anti-spoofing on the inner IPv4 / ARP sender address: a known IP must belong to the frame's
   * source MAC; an unknown IP is accepted only from a static VTEP (whose hosts we do not know).
   */
  private srcIpMatches(net: Network, buf: Buffer, f: number, flen: number, srcHi: number, srcLo: number, fromStatic: boolean): boolean {
    const type = (buf[f + 12] << 8) | buf[f + 13];
    let ipOff: number;
    if (type === ETHERTYPE_IPV4) {
      if (flen < ETH_HDR + 20) return fromStatic;
      ipOff = f + ETH_HDR + 12;
    } else if (type === ETHERTYPE_ARP) {
      if (flen < ETH_HDR + ARP_LEN) return fromStatic;
      ipOff = f + ETH_HDR + 14;
    } else {
      return fromStatic;
    }
    const ip = (buf[ipOff] << 24) | (buf[ipOff + 1] << 16) | (buf[ipOff + 2] << 8) | buf[ipOff + 3];
    if (ip === 0) return type === ETHERTYPE_ARP; // ARP probes carry 0.0.0.0
    if (net.localIps.find(0, ip) >= 0) return false; // claims one of our own addresses
    const n = net.neigh.find(0, ip);
    if (n < 0) return fromStatic;
    return net.neigh.a[n] === srcHi && net.neigh.b[n] === (srcLo | 0);
  }
}

/** Count a batched write: entries [0, used) went out unless their length became -errno. */
function countWritten(net: Network, lens: Int32Array, used: number, queued: number, pkts: number, bytes: number, drop: number): void {
  let ok = 0;
  let sum = 0;
  for (let k = 0; k < used; k++) {
    const l = lens[k];
    if (l >= 0) {
      ok++;
      sum += l;
    }
  }
  net.counters[pkts] += ok;
  net.counters[bytes] += sum;
  net.drops[drop] += queued - ok;
}

function writeVxlan(buf: Buffer, off: number, vni: number): void {
  buf[off] = 0x08;
  buf[off + 1] = 0;
  buf[off + 2] = 0;
  buf[off + 3] = 0;
  buf[off + 4] = (vni >>> 16) & 255;
  buf[off + 5] = (vni >>> 8) & 255;
  buf[off + 6] = vni & 255;
  buf[off + 7] = 0;
}

function writeMac(buf: Buffer, off: number, hi: number, lo: number): void {
  buf[off] = (hi >>> 8) & 255;
  buf[off + 1] = hi & 255;
  buf[off + 2] = (lo >>> 24) & 255;
  buf[off + 3] = (lo >>> 16) & 255;
  buf[off + 4] = (lo >>> 8) & 255;
  buf[off + 5] = lo & 255;
}
