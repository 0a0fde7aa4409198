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
import { answerArp, flushArpReplies } from './arp.js';
import { ETH_HDR, HEADROOM, Network, VXLAN_HDR, writeVxlan } from './network.js';
import { Sender } from './sender.js';
import { VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_HDR_LEN, completeChecksum } from './offload.js';
import type { DatagramPort, FramePort } from './ports.js';
import { flowHash, isTunnelSuperFrame } from './wire/index.js';

export { HEADROOM, Network, VXLAN_HDR } from './network.js';

const ETHERTYPE_ARP = 0x0806;
const UDP_SLOT = 9344; // fits a VXLAN datagram carrying a 9000-byte inner MTU
const GRO_SLOT = HEADROOM + 65536; // a GRO run of datagrams

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
  private readonly udpSlot: number;
  private readonly udpBatch: number;
  /** The receive arena: UDP slots, then each network's TAP output area (see layoutArena). */
  private udpSlab: Buffer;
  private readonly udpLens: Int32Array;
  private readonly udpAddrs: Uint32Array;
  private readonly udpPorts: Uint16Array;
  private readonly udpSegs: Uint16Array;
  private readonly tx: Sender;
  private readonly dirtyNets: Network[] = [];
  private closed = false;
  private readonly busyPollUs: number;
  private readonly keepAwake: ((us: number) => void) | undefined;

  constructor(private readonly rx: DatagramPort, tx: DatagramPort[], opts: DatapathOptions) {
    if (tx.length === 0) throw new Error('datapath needs at least one send socket');
    this.batch = opts.batch ?? 64;
    this.budget = opts.budget ?? 8;
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
    this.tx = new Sender(tx, this.batch * 2, opts.vxlanPort);
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
    this.need(vni).setLocal(macHi, macLo, ip);
  }

  deleteLocal(vni: number, macHi: number, macLo: number): void {
    this.need(vni).deleteLocal(macHi, macLo);
  }

  /** A remote endpoint: MAC (and IP, 0 for none) behind a VTEP. */
  setRemote(vni: number, macHi: number, macLo: number, ip: number, vtep: number, isStatic: boolean): void {
    this.need(vni).setRemote(macHi, macLo, ip, vtep, isStatic);
  }

  deleteRemote(vni: number, macHi: number, macLo: number): void {
    this.need(vni).deleteRemote(macHi, macLo);
  }

  addStaticVtep(vni: number, vtep: number): void {
    this.need(vni).addStaticVtep(vtep);
  }

  deleteStaticVtep(vni: number, vtep: number): void {
    this.need(vni).deleteStaticVtep(vtep);
  }

  forwarding(vni: number): { mac: string; vtep: string; static: boolean }[] {
    return this.need(vni).forwarding();
  }

  /** Placeholder until the VIP stage exists: the service specs last sent per VNI (engine.ts ServiceSpec). */
  readonly serviceSpecs = new Map<number, readonly object[]>();

  setServices(vni: number, specs: readonly object[]): void {
    if (specs.length === 0) this.serviceSpecs.delete(vni);
    else this.serviceSpecs.set(vni, specs);
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
    this.tx.close(this.rx);
  }

  private need(vni: number): Network {
    const net = this.nets.get(vni);
    if (!net) throw new Error(`no network with VNI ${vni}`);
    return net;
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
        if (((buf[off + 12] << 8) | buf[off + 13]) === ETHERTYPE_ARP && answerArp(net, buf, off, len)) continue;
        const statics = net.staticVteps;
        if (statics.length === 0 || mss !== 0) {
          drops[D.broadcastNoFlood]++;
          continue;
        }
        writeVxlan(buf, off - VXLAN_HDR, net.vni);
        const q = this.tx.queues[0];
        for (let s = 0; s < statics.length; s++) {
          this.tx.queue(net, q, off - VXLAN_HDR, len + VXLAN_HDR, statics[s], 0, 1);
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
      const q = this.tx.pick(flowHash(buf, off, len));
      if (mss !== 0) {
        this.tx.segments(net, q, off, len, mss, net.remote.a[r]);
        continue;
      }
      writeVxlan(buf, off - VXLAN_HDR, net.vni);
      this.tx.queue(net, q, off - VXLAN_HDR, len + VXLAN_HDR, net.remote.a[r], 0, 1);
    }
    this.tx.flush(net);
    if (net.replyCount > 0) flushArpReplies(net);
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
      if (seg === 0 || isTunnelSuperFrame(buf, off, len, seg)) this.acceptDatagram(buf, off, len, vtep);
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
      net.setRemote(srcHi, srcLo, 0, vtep, true);
      net.counters[C.learned]++;
    }
    if (!net.srcIpMatches(buf, f, flen, srcHi, srcLo, fromStatic)) {
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
    net.counters[C.rxPartialCsum] += c.partial;
    c.partial = 0;
    c.reset();
  }
}
