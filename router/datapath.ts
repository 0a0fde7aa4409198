// The per-batch datapath of design.md §2. One Datapath serves every overlay network of a host:
// each network has a TAP (FramePort); all networks share one VXLAN receive socket and a small
// set of send sockets (DatagramPort) whose distinct source ports carry the inner-flow hash, as
// RFC 7348 recommends for ECMP entropy.
//
// This file keeps the loops, the batching and the buffers; what happens to each frame is a fixed
// sequence of stage functions, egress.ts (TAP → wire) and ingress.ts (wire → TAP). A stage
// returns a verdict (counters.ts) and drops are counted here, in the loop. The offloads live
// behind the ports: the TAP port decodes virtio headers (tap-decode.ts), the UDP port splits GRO
// runs (gro-split.ts), the Sender packs GSO runs (sender.ts); the TAP coalescer (offload.ts)
// merges received segments back into super-frames.
//
// Hot path rules: frames stay in preallocated slabs; the VXLAN header is written into the
// headroom in place; MACs are (hi16, lo32) and IPv4 addresses int32; lookups go through
// NumTable; counters are Float64Array slots. Nothing in processTap/processUdp allocates.
import type { ServiceSpec } from '../balancer/service.js';
import { C, COUNTER_NAMES, D, DROP_NAMES, PASS, snapshot, type CounterSnapshot } from './counters.js';
import { flushArpReplies } from './arp.js';
import { EgressFrame, egress } from './egress.js';
import { IngressDatagram, IngressMemo, ingress } from './ingress.js';
import { HEADROOM, Network, VXLAN_HDR } from './network.js';
import { Sender } from './sender.js';
import { VNET_HDR_LEN } from './offload.js';
import { DatagramBatch, type DatagramPort, type FramePort } from './ports.js';
import { SEAL_HEAD, SEAL_TAIL } from './features.js';
import { ESP_UDP_PORT } from './wire/index.js';
import { native, type NativeAddon } from '../native/index.js';
import { SaStore } from '../crypto/sa-store.js';
import { EspOpener } from '../crypto/open.js';
import { VipState } from '../balancer/vips.js';
import type { ConnTableConfig } from '../balancer/conntrack.js';
import { learningConfig, sweepIntervalMs, type LearningConfig } from './learned.js';

export { HEADROOM, Network, VXLAN_HDR } from './network.js';

type NetworkStats = { counters: CounterSnapshot; drops: CounterSnapshot; vips?: Record<string, number> };

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
  /**
   * Bulk traffic does not spin: a pump that moves at least this many bytes stops the busy-poll
   * window, and none is opened again for one window (busyPollUs) after it. The spin buys
   * latency for sparse packets; during a bulk transfer the next batch comes anyway and the spin
   * only burns CPU (sched_yield and epoll_pwait were ~10% of a sending agent). Bytes; default
   * 32 KiB (half a GSO super-frame: no request/response exchange moves that much per batch).
   */
  busyPollBulkBytes?: number;
  /** How to stay awake (native keepAwake); absent in tests. */
  keepAwake?: (us: number) => void;
  /** The ESP-in-UDP receive socket (UDP 4500) for encrypted networks; absent: none can be added. */
  espRx?: DatagramPort;
  /** Destination port of ESP datagrams (default 4500). */
  espPort?: number;
  /** Why there is no espRx (shown when an encrypted network is refused). */
  espError?: string;
  /** The AEAD calls of the SAs (default: the native addon, on this thread). */
  aead?: SaAead;
  /** Connection table limits and timers of the VIP stages (balancer/conntrack.ts). */
  conntrack?: Partial<ConnTableConfig>;
  /** Cap and ageing of MACs learned from static VTEPs, per network (router/learned.ts; default 4096 entries, 300 s). */
  learning?: Partial<LearningConfig>;
}

/** The addon calls the SAs and the seal/open stages use. */
export type SaAead = Pick<NativeAddon, 'aeadCreate' | 'aeadDestroy' | 'aeadSeal' | 'aeadOpen'>;

export class Datapath {
  readonly drops = new Float64Array(DROP_NAMES.length);
  private readonly nets = new Map<number, Network>();
  private readonly batch: number;
  private readonly budget: number;
  private readonly udpSlot: number;
  private readonly udpBatch: number;
  /** The receive arena: UDP slots, then each network's TAP output area (see layoutArena). */
  private udpSlab: Buffer;
  /** The datagrams of the last receive (GRO runs split by the port). */
  private readonly rxd: DatagramBatch;
  private readonly egressFrame = new EgressFrame();
  private readonly ingressDatagram = new IngressDatagram();
  private readonly ingressMemo = new IngressMemo();
  private readonly tx: Sender;
  private readonly dirtyNets: Network[] = [];
  private closed = false;
  private readonly busyPollUs: number;
  private readonly keepAwake: ((us: number) => void) | undefined;
  private readonly bulkBytes: number;
  /** performance.now() before which no busy-poll window opens (bulk traffic was seen). */
  private bulkUntil = 0;
  private readonly espRx: DatagramPort | undefined;
  private readonly espPort: number;
  private readonly espError: string;
  private readonly aead: SaAead | undefined;
  /** The host's SAs (crypto/sa-store.ts), created with the first encrypted network or SA. */
  private saStore: SaStore | null = null;
  private opener: EspOpener | null = null;
  private readonly conntrack: Partial<ConnTableConfig>;
  private readonly learning: LearningConfig;
  /** The ageing sweep of learned MACs: one timer for every network (learned.ts). */
  private readonly learnSweep: ReturnType<typeof setInterval> | undefined;

  constructor(private readonly rx: DatagramPort, tx: DatagramPort[], opts: DatapathOptions) {
    if (tx.length === 0) throw new Error('datapath needs at least one send socket');
    this.batch = opts.batch ?? 64;
    this.budget = opts.budget ?? 8;
    this.busyPollUs = opts.busyPollUs ?? 0;
    this.keepAwake = this.busyPollUs > 0 ? opts.keepAwake : undefined;
    this.bulkBytes = opts.busyPollBulkBytes ?? 32768;
    this.conntrack = opts.conntrack ?? {};
    this.learning = learningConfig(opts.learning);
    const every = sweepIntervalMs(this.learning);
    this.learnSweep = every > 0 ? setInterval(() => this.sweepLearned(), every).unref() : undefined;
    this.udpSlot = rx.gro ? GRO_SLOT : UDP_SLOT;
    this.udpBatch = rx.gro ? Math.min(this.batch, 32) : this.batch;
    this.udpSlab = Buffer.alloc(this.udpSlot * this.udpBatch);
    this.rxd = new DatagramBatch(rx.gro ? this.udpBatch * 64 : this.udpBatch);
    // Room for a whole batch plus head-end replication copies; flushed early when full.
    this.tx = new Sender(tx, this.batch * 2, opts.vxlanPort);
    rx.onReadable(() => this.pumpUdp());
    this.espRx = opts.espRx;
    this.espPort = opts.espPort ?? ESP_UDP_PORT;
    this.espError = opts.espError ?? 'no ESP socket';
    this.aead = opts.aead;
    this.espRx?.onReadable(() => this.pumpEsp());
  }

  /** The SA store (created on first use; its AEAD handles belong to this thread). */
  get sas(): SaStore {
    if (this.saStore === null) {
      const aead = this.aead ?? native();
      this.saStore = new SaStore(aead, () => performance.now());
      this.opener = new EspOpener(aead, this.rxd.cap);
      const sealer = this.saStore.sealer;
      this.tx.beforeSend = () => sealer.flush();
    }
    return this.saStore;
  }

  // ---- control path -------------------------------------------------------------------------

  /** An encrypted network is encrypted from its first frame: it never exists here in cleartext. */
  addNetwork(vni: number, mtu: number, tap: FramePort, encrypted = false): Network {
    if (this.nets.has(vni)) throw new Error(`VNI ${vni} already has a network`);
    if (encrypted && this.espRx === undefined) throw new Error(`encrypted networks are not possible on this host: ${this.espError}`);
    const net = new Network(vni, mtu, tap, this.batch, this.learning);
    if (encrypted) {
      net.sa = this.sas;
      net.encapHead = VXLAN_HDR + SEAL_HEAD;
      net.encapTail = SEAL_TAIL;
      net.dstPort = this.espPort;
    }
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
    net.setLocal(macHi, macLo, ip);
    net.vips?.syncArp(); // the mesh source (br0's gateway address) may just have appeared
  }

  /**
   * The whole service table of a network (engine `setServices`): the VIP stages turn on with the
   * first service and off with the last (net.vips back to null, flows reset).
   */
  setServices(vni: number, specs: readonly ServiceSpec[]): void {
    const net = this.need(vni);
    if (specs.length === 0) {
      net.vips?.clear();
      net.vips = null;
      return;
    }
    net.vips ??= new VipState(net, this.conntrack);
    net.vips.setServices(specs);
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

  /** One ageing sweep of every network's learned MACs (the timer's work; tests call it directly). */
  sweepLearned(): number {
    let n = 0;
    for (const net of this.nets.values()) n += net.sweepLearned();
    return n;
  }

  stats(): { drops: CounterSnapshot; networks: Record<number, NetworkStats> } {
    const networks: Record<number, NetworkStats> = {};
    for (const n of this.nets.values()) {
      networks[n.vni] = { counters: snapshot(COUNTER_NAMES, n.counters), drops: snapshot(DROP_NAMES, n.drops), ...(n.vips ? { vips: n.vips.stats() } : {}) };
    }
    return { drops: snapshot(DROP_NAMES, this.drops), networks };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.learnSweep);
    for (const n of this.nets.values()) n.tap.close();
    this.nets.clear();
    this.rx.close();
    this.espRx?.close();
    this.tx.close(this.rx);
    this.saStore?.close();
  }

  private need(vni: number): Network {
    const net = this.nets.get(vni);
    if (!net) throw new Error(`no network with VNI ${vni}`);
    return net;
  }

  // ---- hot path: container → wire (the stages are in egress.ts) -----------------------------

  /** Drain a network's TAP in batches (bounded by the budget so other sources get their turn). */
  pumpTap(net: Network): void {
    let bytes = 0;
    for (let round = 0; round < this.budget && !this.closed; round++) {
      const n = net.tap.readBatch(net.rxSlab, net.slot, HEADROOM, net.batch, net.rxFrames);
      if (n === 0) break;
      if (this.keepAwake) bytes += sumLens(net.rxFrames.lens, n);
      this.processTap(net, n);
      if (n < net.batch) break;
    }
    if (bytes > 0) this.stayAwake(bytes);
  }

  processTap(net: Network, n: number): void {
    if (net.sa !== null) net.sa.tick();
    const fr = net.rxFrames;
    const e = this.egressFrame;
    for (let i = 0; i < n; i++) {
      let v = fr.verdict[i];
      if (v === PASS) {
        e.set(fr.offs[i], fr.lens[i], fr.mss[i]);
        v = egress(net, e, this.tx);
      }
      if (v >= 0) net.drops[v]++;
    }
    this.tx.flush(net);
    if (net.replyCount > 0) flushArpReplies(net);
    if (net.vips !== null) net.vips.flush();
  }

  // ---- hot path: wire → container (the stages are in ingress.ts) -----------------------------

  pumpUdp(): void {
    let bytes = 0;
    for (let round = 0; round < this.budget && !this.closed; round++) {
      const n = this.rx.recvBatch(this.udpSlab, this.udpSlot, HEADROOM, this.udpBatch, this.rxd);
      if (n === 0) break;
      if (this.keepAwake) bytes += sumLens(this.rxd.lens, n);
      this.processUdp(n);
      if (this.rxd.slots < this.udpBatch) break;
    }
    if (bytes > 0) this.stayAwake(bytes);
  }

  /** ESP-in-UDP (encrypted networks): opened per batch (crypto/open.ts), then the VXLAN stages. */
  pumpEsp(): void {
    const rx = this.espRx!;
    let bytes = 0;
    for (let round = 0; round < this.budget && !this.closed; round++) {
      const n = rx.recvBatch(this.udpSlab, this.udpSlot, HEADROOM, this.udpBatch, this.rxd);
      if (n === 0) break;
      if (this.opener === null) this.rxd.verdict.fill(D.espNoSa, 0, n);
      else this.opener.openBatch(this.saStore!, this.udpSlab, this.rxd, n);
      if (this.keepAwake) bytes += sumLens(this.rxd.lens, n);
      this.processUdp(n, true);
      if (this.rxd.slots < this.udpBatch) break;
    }
    if (bytes > 0) this.stayAwake(bytes);
  }

  /**
   * After a pump that moved `bytes`: open or extend the busy-poll window, unless the traffic is
   * bulk (see busyPollBulkBytes).
   */
  private stayAwake(bytes: number): void {
    const now = performance.now();
    if (bytes >= this.bulkBytes) {
      this.bulkUntil = now + this.busyPollUs / 1000;
      this.keepAwake!(0);
    } else if (now >= this.bulkUntil) this.keepAwake!(this.busyPollUs);
  }

  /** `opened`: the datagrams come from the ESP socket and passed crypto/open.ts. */
  processUdp(n: number, opened = false): void {
    const rxd = this.rxd;
    const d = this.ingressDatagram;
    const memo = this.ingressMemo;
    memo.reset(); // the tables may have changed since the last batch
    for (let i = 0; i < n; i++) {
      let v = rxd.verdict[i];
      d.set(this.udpSlab, rxd.offs[i], rxd.lens[i], rxd.addrs[i], opened);
      if (v === PASS) v = ingress(this.nets, d, memo);
      if (v === PASS) this.deliver(d.net!, d);
      else if (v >= 0) (d.net === null ? this.drops : d.net.drops)[v]++;
    }
    // Deliver per network: one batched TAP write each. The kernel runs the container's stack
    // inside that write, so a reply (an echo reply, a TCP ACK) is often queued on the TAP by the
    // time it returns: read it now rather than after another trip through epoll.
    for (let k = 0; k < this.dirtyNets.length; k++) {
      const net = this.dirtyNets[k];
      this.flushTap(net);
      net.dirty = false;
    }
    for (let k = 0; k < this.dirtyNets.length; k++) this.pumpTap(this.dirtyNets[k]);
    this.dirtyNets.length = 0;
  }

  /** Ingress step 10: count, and queue the inner frame for its network's TAP. */
  private deliver(net: Network, d: IngressDatagram): void {
    net.counters[C.vxlanRxPackets]++;
    net.counters[C.vxlanRxBytes] += d.len;
    if (d.opened) net.counters[C.espOpened]++;
    if (!net.dirty) {
      net.dirty = true;
      this.dirtyNets.push(net);
    }
    if (!net.toTap.fits(d.flen)) this.flushTap(net);
    net.toTap.add(d.f, d.flen, d.opened);
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

/** Sum of the first n lengths (the bytes of one batch, for the busy-poll bulk test). */
function sumLens(lens: Int32Array, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += lens[i];
  return s;
}
