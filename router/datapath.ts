// The per-batch datapath of design.md §2. One Datapath serves every overlay network of a host:
// each network has a TAP (FramePort); all networks share one VXLAN receive socket and a small
// set of send sockets (DatagramPort) whose distinct source ports carry the inner-flow hash, as
// RFC 7348 recommends for ECMP entropy.
//
// Hot path rules: frames stay in preallocated slabs; the VXLAN header is written into the
// headroom in place; MACs are (hi16, lo32) and IPv4 addresses int32; lookups go through
// NumTable; counters are Float64Array slots. Nothing in processTap/processUdp allocates.
// With offloads (TAP virtio headers, UDP GSO/GRO) a TAP read may be a 64 KB TCP super-frame,
// cut here into VXLAN datagrams sent as one GSO run; received runs are merged back (offload.ts).
import { C, COUNTER_NAMES, D, DROP_NAMES, snapshot, type CounterSnapshot } from './counters.js';
import { ETH_HDR, HEADROOM, Network, TxQueue, VXLAN_HDR, writeMac, writeVxlan } from './network.js';
import { GSO_MAX_BYTES, GSO_MAX_SEGS, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_HDR_LEN, completeChecksum, segmentTcp4, tcp4HeaderLen, writeVnetNone } from './offload.js';
import { numToIpv4 } from '../native/index.js';
import { macFromParts } from './numtable.js';
import type { DatagramPort, FramePort } from './ports.js';
import { flowHash } from './wire/index.js';

export { HEADROOM, Network, VXLAN_HDR } from './network.js';

const ETHERTYPE_IPV4 = 0x0800;
const ETHERTYPE_ARP = 0x0806;
const ARP_LEN = 28;
const UDP_SLOT = 9344; // fits a VXLAN datagram carrying a 9000-byte inner MTU
const GRO_SLOT = HEADROOM + 65536; // a GRO run of datagrams
const FLAG_STATIC = 1; // remote entry configured by `peer add` or learned from a static VTEP

export interface DatapathOptions {
  vxlanPort: number;
  /** Frames per read/recv call. */
  batch?: number;
  /** Batches handled per readiness callback before yielding to the event loop. */
  budget?: number;
  /**
   * Busy polling: after traffic, keep the thread from sleeping this many microseconds (the
   * wake-up of a sleeping thread dominates latency on VMs). 0 = off.
   */
  busyPollUs?: number;
  /** How to stay awake (native keepAwake); absent in tests. */
  keepAwake?: (us: number) => void;
}

export class Datapath {
  readonly drops = new Float64Array(DROP_NAMES.length);
  private readonly nets = new Map<number, Network>();
  private readonly batch: number;
  private readonly budget: number;
  private readonly vxlanPort: number;
  private readonly udpSlot: number;
  private readonly udpBatch: number;
  /** The receive arena: UDP slots, then each network's TAP output area (see layoutArena). */
  private udpSlab: Buffer;
  private readonly udpLens: Int32Array;
  private readonly udpAddrs: Uint32Array;
  private readonly udpPorts: Uint16Array;
  private readonly udpSegs: Uint16Array;
  private readonly txq: TxQueue[];
  private readonly dirtyNets: Network[] = [];
  /** Set when the kernel refused a GSO send (no checksum offload, MTU): plain sends from then on. */
  private gsoBroken = false;
  private closed = false;
  private readonly busyPollUs: number;
  private readonly keepAwake: ((us: number) => void) | undefined;

  constructor(private readonly rx: DatagramPort, tx: DatagramPort[], opts: DatapathOptions) {
    if (tx.length === 0) throw new Error('datapath needs at least one send socket');
    this.batch = opts.batch ?? 64;
    this.budget = opts.budget ?? 8;
    this.vxlanPort = opts.vxlanPort;
    this.busyPollUs = opts.busyPollUs ?? 0;
    this.keepAwake = this.busyPollUs > 0 ? opts.keepAwake : undefined;
    this.udpSlot = rx.gro ? GRO_SLOT : UDP_SLOT;
    this.udpBatch = rx.gro ? Math.min(this.batch, 32) : this.batch;
    this.udpSlab = Buffer.alloc(this.udpSlot * this.udpBatch);
    this.udpLens = new Int32Array(this.udpBatch);
    this.udpAddrs = new Uint32Array(this.udpBatch);
    this.udpPorts = new Uint16Array(this.udpBatch);
    this.udpSegs = new Uint16Array(this.udpBatch);
    // Room for a whole batch plus head-end replication copies; flushed early when full.
    this.txq = tx.map((p) => new TxQueue(p, this.batch * 2));
    rx.onReadable(() => this.pumpUdp());
  }

  // ---- control path -------------------------------------------------------------------------

  addNetwork(vni: number, mtu: number, tap: FramePort): Network {
    if (this.nets.has(vni)) throw new Error(`VNI ${vni} already has a network`);
    const net = new Network(vni, mtu, tap, this.batch);
    this.nets.set(vni, net);
    this.layoutArena();
    tap.onReadable(() => this.pumpTap(net));
    return net;
  }

  removeNetwork(vni: number): void {
    const net = this.nets.get(vni);
    if (!net) return;
    this.nets.delete(vni);
    net.tap.close();
    this.layoutArena();
  }

  /**
   * Received datagrams are copied into their network's TAP output area inside the same buffer
   * (copyWithin allocates nothing; Buffer.copy would). Control path: runs between batches.
   */
  private layoutArena(): void {
    let size = this.udpSlot * this.udpBatch;
    for (const n of this.nets.values()) size += n.toTapBytes;
    this.udpSlab = Buffer.alloc(size);
    let at = this.udpSlot * this.udpBatch;
    for (const n of this.nets.values()) {
      n.toTap.bind(this.udpSlab, at, at + n.toTapBytes);
      at += n.toTapBytes;
    }
  }

  network(vni: number): Network | undefined {
    return this.nets.get(vni);
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

  /** Control path: the forwarding table of a network (remote MAC → VTEP). */
  forwarding(vni: number): { mac: string; vtep: string; static: boolean }[] {
    const net = this.need(vni);
    const out: { mac: string; vtep: string; static: boolean }[] = [];
    for (const [hi, lo, vtep, flags] of net.remote.entries()) {
      out.push({ mac: macFromParts(hi, lo), vtep: numToIpv4(vtep >>> 0), static: (flags & FLAG_STATIC) !== 0 });
    }
    return out;
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
      const n = net.tap.readBatch(net.rxSlab, net.slot, HEADROOM, net.batch, net.rxLens);
      if (n === 0) break;
      this.processTap(net, n);
      if (this.keepAwake) this.keepAwake(this.busyPollUs);
      if (n < net.batch) break;
    }
  }

  processTap(net: Network, n: number): void {
    const buf = net.rxSlab;
    const cnt = net.counters;
    const drops = net.drops;
    const vnet = net.tap.vnet;
    for (let i = 0; i < n; i++) {
      let off = i * net.slot + HEADROOM;
      let len = net.rxLens[i];
      let mss = 0;
      if (vnet) {
        if (len < VNET_HDR_LEN + ETH_HDR) {
          drops[D.tapShort]++;
          continue;
        }
        const flags = buf[off];
        const gso = buf[off + 1] & 0x7f; // without the ECN bit
        mss = gso === VNET_GSO_TCPV4 ? buf.readUInt16LE(off + 4) : 0;
        const csumStart = buf.readUInt16LE(off + 6);
        const csumOffset = buf.readUInt16LE(off + 8);
        off += VNET_HDR_LEN;
        len -= VNET_HDR_LEN;
        if (gso !== 0 && gso !== VNET_GSO_TCPV4) {
          drops[D.unsupportedGso]++;
          continue;
        }
        if (gso === 0 && flags & VNET_F_NEEDS_CSUM) {
          const udp = buf[off + 12] === 0x08 && buf[off + 13] === 0 && len > ETH_HDR + 9 && buf[off + ETH_HDR + 9] === 17;
          if (!completeChecksum(buf, off, len, csumStart, csumOffset, udp)) {
            drops[D.badOffload]++;
            continue;
          }
        }
      } else if (len < ETH_HDR) {
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
        if (statics.length === 0 || mss !== 0) {
          drops[D.broadcastNoFlood]++;
          continue;
        }
        writeVxlan(buf, off - VXLAN_HDR, net.vni);
        const q = this.txq[0];
        for (let s = 0; s < statics.length; s++) {
          this.queueTx(net, q, off - VXLAN_HDR, len + VXLAN_HDR, statics[s], 0, 1);
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
      const q = this.txq[flowHash(buf, off, len) % this.txq.length];
      if (mss !== 0) {
        this.sendSegments(net, q, off, len, mss, net.remote.a[r]);
        continue;
      }
      writeVxlan(buf, off - VXLAN_HDR, net.vni);
      this.queueTx(net, q, off - VXLAN_HDR, len + VXLAN_HDR, net.remote.a[r], 0, 1);
    }
    this.flushTx(net);
    if (net.replyCount > 0) this.flushReplies(net);
  }

  /** Cut a TCP super-frame into VXLAN datagrams in the segmentation area; queue them as GSO runs. */
  private sendSegments(net: Network, q: TxQueue, off: number, len: number, mss: number, vtep: number): void {
    const buf = net.rxSlab;
    const segEnd = net.replyOffs[0];
    let n = segmentTcp4(buf, off, len, mss, VXLAN_HDR, net.segFill, segEnd);
    if (n === -2) {
      this.flushTx(net);
      n = segmentTcp4(buf, off, len, mss, VXLAN_HDR, net.segFill, segEnd);
    }
    if (n < 0) {
      net.drops[D.badOffload]++;
      return;
    }
    const hdr = tcp4HeaderLen(buf, off, len);
    const stride = VXLAN_HDR + hdr + mss;
    const last = VXLAN_HDR + len - (n - 1) * mss;
    const start = net.segFill;
    for (let k = 0; k < n; k++) writeVxlan(buf, start + k * stride, net.vni);
    net.segFill = start + (n - 1) * stride + last;
    net.counters[C.tsoFrames]++;
    net.counters[C.tsoSegments] += n;
    if (this.gsoBroken || !q.port.gso) {
      for (let k = 0; k < n; k++) this.queueTx(net, q, start + k * stride, k === n - 1 ? last : stride, vtep, 0, 1);
      return;
    }
    const per = Math.min(GSO_MAX_SEGS, Math.floor(GSO_MAX_BYTES / stride));
    for (let k = 0; k < n; k += per) {
      const m = Math.min(per, n - k);
      const bytes = (m - 1) * stride + (k + m === n ? last : stride);
      this.queueTx(net, q, start + k * stride, bytes, vtep, m > 1 ? stride : 0, m);
    }
  }

  private queueTx(net: Network, q: TxQueue, off: number, len: number, vtep: number, seg: number, dgrams: number): void {
    if (q.count === q.cap) this.sendQueue(net, q);
    const k = q.count++;
    q.offs[k] = off;
    q.lens[k] = len;
    q.addrs[k] = vtep;
    q.ports[k] = this.vxlanPort;
    q.segs[k] = seg;
    q.dgrams[k] = dgrams;
  }

  /** Send every queued datagram (they all point into this network's slab); free the segment area. */
  private flushTx(net: Network): void {
    for (let k = 0; k < this.txq.length; k++) {
      const q = this.txq[k];
      if (q.count > 0) this.sendQueue(net, q);
    }
    net.segFill = net.segStart;
  }

  private sendQueue(net: Network, q: TxQueue): void {
    // A port returns how many entries it used up; one the kernel refused has its length
    // replaced by -errno. What is left after the count met EAGAIN (buffer full).
    const used = q.port.sendBatch(net.rxSlab, q.offs, q.lens, q.addrs, q.ports, q.segs, 0, q.count);
    let pkts = 0;
    let bytes = 0;
    for (let k = 0; k < q.count; k++) {
      const l = q.lens[k];
      if (k >= used) net.drops[D.udpTxFull] += q.dgrams[k];
      else if (l >= 0) {
        pkts += q.dgrams[k];
        bytes += l;
      } else {
        net.drops[D.udpTxError] += q.dgrams[k];
        if (q.segs[k] !== 0) this.gsoBroken = true; // EIO/EMSGSIZE on a GSO run: send plainly from now on
      }
    }
    net.counters[C.vxlanTxPackets] += pkts;
    net.counters[C.vxlanTxBytes] += bytes;
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
    const pre = net.tap.vnet ? VNET_HDR_LEN : 0;
    const out = buf; // reply slots live in the same slab
    const v = net.replyOffs[net.replyCount];
    if (pre) writeVnetNone(out, v);
    const o = v + pre;
    const macHi = net.neigh.a[r];
    const macLo = net.neigh.b[r];
    // Ethernet: to the requester, from the answered MAC.
    out.copyWithin(o, off + 6, off + 12);
    writeMac(out, o + 6, macHi, macLo);
    out[o + 12] = 0x08;
    out[o + 13] = 0x06;
    const p = o + ETH_HDR;
    out[p] = 0; out[p + 1] = 1; out[p + 2] = 8; out[p + 3] = 0; out[p + 4] = 6; out[p + 5] = 4;
    out[p + 6] = 0; out[p + 7] = 2; // reply
    writeMac(out, p + 8, macHi, macLo); // sender hardware = answered MAC
    out.copyWithin(p + 14, a + 24, a + 28); // sender protocol = asked IP
    out.copyWithin(p + 18, a + 8, a + 18); // target hw + protocol = requester's
    out.fill(0, p + ARP_LEN, o + 60); // pad to the Ethernet minimum
    net.replyLens[net.replyCount++] = pre + 60;
    net.counters[C.arpReplied]++;
    return true;
  }

  private flushReplies(net: Network): void {
    const used = net.tap.writeBatch(net.rxSlab, net.replyOffs, net.replyLens, 0, net.replyCount);
    for (let k = 0; k < net.replyCount; k++) {
      if (k < used && net.replyLens[k] >= 0) {
        net.counters[C.tapTxFrames]++;
        net.counters[C.tapTxBytes] += 60;
      } else net.drops[D.tapTxFull]++;
    }
    net.replyCount = 0;
  }

  // ---- hot path: wire → container -----------------------------------------------------------

  pumpUdp(): void {
    for (let round = 0; round < this.budget && !this.closed; round++) {
      const n = this.rx.recvBatch(this.udpSlab, this.udpSlot, HEADROOM, this.udpBatch, this.udpLens, this.udpAddrs, this.udpPorts, this.udpSegs);
      if (n === 0) break;
      this.processUdp(n);
      if (this.keepAwake) this.keepAwake(this.busyPollUs);
      if (n < this.udpBatch) break;
    }
  }

  processUdp(n: number): void {
    const buf = this.udpSlab;
    for (let i = 0; i < n; i++) {
      const off = i * this.udpSlot + HEADROOM;
      const len = this.udpLens[i];
      if (len < 0) {
        this.drops[D.udpTruncated]++;
        continue;
      }
      const vtep = this.udpAddrs[i] | 0;
      const seg = this.udpSegs[i];
      if (seg === 0) this.acceptDatagram(buf, off, len, vtep);
      else for (let o = 0; o < len; o += seg) this.acceptDatagram(buf, off + o, Math.min(seg, len - o), vtep);
    }
    // Deliver per network: one batched TAP write each. The kernel runs the container's stack
    // inside that write, so a reply (an echo reply, a TCP ACK) is often queued on the TAP by the
    // time it returns: read it now rather than after another trip through epoll.
    for (let d = 0; d < this.dirtyNets.length; d++) {
      const net = this.dirtyNets[d];
      this.flushTap(net);
      net.dirty = false;
    }
    for (let d = 0; d < this.dirtyNets.length; d++) this.pumpTap(this.dirtyNets[d]);
    this.dirtyNets.length = 0;
  }

  /** Checks one VXLAN datagram and queues its inner frame for its network's TAP. */
  private acceptDatagram(buf: Buffer, off: number, len: number, vtep: number): void {
    if (len < VXLAN_HDR + ETH_HDR) {
      this.drops[D.vxlanShort]++;
      return;
    }
    if (buf[off] !== 0x08 || buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0 || buf[off + 7] !== 0) {
      this.drops[D.vxlanBadFlags]++;
      return;
    }
    const vni = (buf[off + 4] << 16) | (buf[off + 5] << 8) | buf[off + 6];
    const net = this.nets.get(vni);
    if (net === undefined) {
      this.drops[D.unknownVni]++;
      return;
    }
    const drops = net.drops;
    const v = net.vteps.find(0, vtep);
    if (v < 0) {
      drops[D.unknownVtep]++;
      return;
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
        return;
      }
    } else if (!fromStatic || (srcHi & 0x100) !== 0 || net.local.find(srcHi, srcLo) >= 0) {
      drops[D.spoofedSrcMac]++;
      return;
    } else {
      // Flood-and-learn only for static VTEPs (a kernel VXLAN host or hardware VTEP).
      this.setRemote(vni, srcHi, srcLo, 0, vtep, true);
      net.counters[C.learned]++;
    }
    if (!this.srcIpMatches(net, buf, f, flen, srcHi, srcLo, fromStatic)) {
      drops[D.spoofedSrcIp]++;
      return;
    }
    const dstHi = (buf[f] << 8) | buf[f + 1];
    if (dstHi & 0x100) {
      if (!fromStatic) {
        drops[D.remoteBroadcast]++;
        return;
      }
    } else {
      const dstLo = (buf[f + 2] << 24) | (buf[f + 3] << 16) | (buf[f + 4] << 8) | buf[f + 5];
      if (net.local.find(dstHi, dstLo) < 0) {
        drops[D.remoteUnknownDst]++;
        return;
      }
    }
    net.counters[C.vxlanRxPackets]++;
    net.counters[C.vxlanRxBytes] += len;
    if (!net.dirty) {
      net.dirty = true;
      this.dirtyNets.push(net);
    }
    if (!net.toTap.fits(flen)) this.flushTap(net);
    net.toTap.add(f, flen);
  }

  private flushTap(net: Network): void {
    const c = net.toTap;
    c.close();
    const used = net.tap.writeBatch(c.out, c.offs, c.lens, 0, c.count);
    const pre = net.tap.vnet ? VNET_HDR_LEN : 0;
    for (let k = 0; k < c.count; k++) {
      if (k < used && c.lens[k] >= 0) {
        net.counters[C.tapTxFrames]++;
        net.counters[C.tapTxBytes] += c.lens[k] - pre;
      } else net.drops[D.tapTxFull]++;
    }
    net.counters[C.groMerged] += c.merged;
    c.merged = 0;
    c.reset();
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
