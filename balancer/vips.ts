// A network's VIP feature state (the `net.vips` slot, router/features.ts): its service table,
// the VIP connection table, the routing mesh's flow table, and the frames the stages send back
// into the TAP. Control path here (setServices, resets of vanished tasks); the per-frame stages
// are in balancer/vip-stage.ts.
//
// Addresses of a network, the same on every host (docs/services.md "Addresses"):
// - VIP MAC 06:7e:VNI: ARP for a VIP, and for the mesh source (the gateway IP), is answered with
//   it, so frames to a VIP and replies to the mesh source enter the TAP.
// - mesh MAC 06:7f:VNI: the sandbox's br0, which holds the network's gateway IP, the source of
//   the routing mesh's connections. The agent registers it as a local endpoint (setLocal); the
//   stages read the gateway IP from that entry.
import { NumTable } from '../router/numtable.js';
import { ipv4ToString, macHi16, macLo32, parseIpv4 } from '../router/wire/addr.js';
import { VNET_HDR_LEN, writeVnetNone } from '../router/wire/virtio.js';
import { ConnTable, DEFAULT_CONNTABLE_CONFIG, type ConnTableConfig } from './conntrack.js';
import { writeResetToBackend, writeResetToClient } from './resets.js';
import { ServiceTable, type ServiceSpec } from './service.js';

export const VIP_MAC_BASE = 0x067e00000000;
export const MESH_MAC_BASE = 0x067f00000000;
export const vipMacOf = (vni: number): number => VIP_MAC_BASE + (vni & 0xffffff);
export const meshMacOf = (vni: number): number => MESH_MAC_BASE + (vni & 0xffffff);

/** The TAP as the VIP state uses it (router/ports.ts FramePort has this). */
export interface VipTap {
  readonly vnet: boolean;
  writeBatch(buf: Buffer, offs: Int32Array, lens: Int32Array, from: number, count: number): number;
}

/** The network's tables the stages read (router/network.ts Network has them). */
export interface VipNet {
  readonly vni: number;
  readonly rxSlab: Buffer;
  readonly local: NumTable;
  readonly localIps: NumTable;
  readonly neigh: NumTable;
  readonly tap: VipTap;
}

/** Per-network VIP counters (not drops: those are stage verdicts). */
export const VC = { newFlows: 0, hairpin: 1, refused: 2, meshFlows: 3, meshSteered: 4, resets: 5 } as const;
export const VC_NAMES = Object.keys(VC) as (keyof typeof VC)[];
/** stats() key prefix of a task's established VIP flows on this host. */
export const TASK_ACTIVE_PREFIX = 'active:';

/** Room for the largest ICMP error (576 bytes of IP, RFC 1812) and a virtio header. */
const OUT_SLOT = 640;
const OUT_SLOTS = 64;
const BACK_SLOTS = 64;

export class VipState {
  readonly feature = 'vips' as const;
  readonly services = new ServiceTable();
  readonly ct: ConnTable;
  /** Mesh flows that arrived from another host (GW:port → task): the reply goes back to that VTEP (kept in backendMacLo). */
  readonly mesh: ConnTable;
  readonly vipMac: number;
  readonly vipHi: number;
  readonly vipLo: number;
  readonly meshMac: number;
  readonly meshHi: number;
  readonly meshLo: number;
  readonly counts = new Float64Array(VC_NAMES.length);
  // Frames of rxSlab written back into the TAP at the end of the batch (hairpin, local mesh replies).
  readonly backOffs = new Int32Array(BACK_SLOTS);
  readonly backLens = new Int32Array(BACK_SLOTS);
  backCount = 0;
  // Frames the stages make (RST, ICMP port unreachable): own arena.
  readonly out = Buffer.alloc(OUT_SLOT * OUT_SLOTS);
  readonly outOffs = new Int32Array(OUT_SLOTS);
  readonly outLens = new Int32Array(OUT_SLOTS);
  outCount = 0;
  /** The mesh source (gateway IP, int32) while the agent has registered br0; 0 before. */
  gw = 0;
  /** Frames lost because the TAP refused them. */
  tapLost = 0;

  constructor(private readonly net: VipNet, cfg: Partial<ConnTableConfig> = {}) {
    this.ct = new ConnTable({ ...DEFAULT_CONNTABLE_CONFIG, ...cfg }, this.services);
    this.mesh = new ConnTable({ ...DEFAULT_CONNTABLE_CONFIG, maxEntries: 65536, maxHalfOpen: 8192, maxUdp: 16384, ...cfg });
    this.vipMac = vipMacOf(net.vni);
    this.vipHi = macHi16(this.vipMac);
    this.vipLo = macLo32(this.vipMac);
    this.meshMac = meshMacOf(net.vni);
    this.meshHi = macHi16(this.meshMac);
    this.meshLo = macLo32(this.meshMac);
    for (let i = 0; i < OUT_SLOTS; i++) this.outOffs[i] = i * OUT_SLOT;
  }

  /** The gateway IP (int32) the sandbox's br0 holds, 0 while the agent has not registered it. */
  gateway(): number {
    const i = this.net.local.find(this.meshHi, this.meshLo);
    return i < 0 ? 0 : this.net.local.a[i];
  }

  // ---- control path ----

  /**
   * The whole service table of the network (replaces the previous one). A service gone, or a
   * task gone from a service (disconnected, or vanished with its host), has its flows reset to
   * both ends rather than blackholed; a drained task stays in the list with weight 0 and keeps
   * its flows.
   */
  setServices(specs: readonly ServiceSpec[]): void {
    const want = new Set(specs.map((s) => s.id));
    const before = new Map<string, Set<number>>();
    for (const id of this.ids) {
      const spec = this.services.spec(id);
      if (!spec) continue;
      before.set(id, new Set(spec.tasks.map((t) => ipKey(t.ip))));
      if (want.has(id)) continue;
      const slot = this.services.slotOf(id);
      this.services.remove(id);
      this.resetWhere((e) => this.ct.svc[e] === slot);
    }
    for (const s of specs) {
      const slot = this.services.upsert(s);
      const was = before.get(s.id);
      if (!was) continue;
      const keep = new Set(s.tasks.map((t) => ipKey(t.ip)));
      for (const ip of was) if (!keep.has(ip)) this.resetWhere((e) => this.ct.svc[e] === slot && this.ct.backendIp[e] === ip);
    }
    this.ids = specs.map((s) => s.id);
    this.syncArp();
  }

  private ids: string[] = [];
  /** VIPs and the mesh source (gateway IP) answer ARP with the VIP MAC (neighbour entries). */
  private arpIps = new Set<number>();

  /** Also called when the gateway entry appears after the services (the agent's bring-up order). */
  syncArp(): void {
    const ips = new Set<number>();
    for (const id of this.ids) ips.add(ipKey(this.services.spec(id)!.vip));
    const gw = this.gateway();
    this.gw = gw;
    if (gw !== 0) ips.add(gw);
    for (const ip of this.arpIps) if (!ips.has(ip)) this.net.neigh.delete(0, ip);
    for (const ip of ips) this.net.neigh.set(0, ip, this.vipHi, this.vipLo);
    this.arpIps = ips;
  }

  /** Everything off (the network goes, or has no services any more): flows reset, ARP entries gone. */
  clear(): void {
    this.setServices([]);
    for (const ip of this.arpIps) this.net.neigh.delete(0, ip);
    this.arpIps.clear();
  }

  /** RST both ends of the matching TCP flows (the backend only when it is local), then remove them. */
  resetWhere(pred: (e: number) => boolean): number {
    const ct = this.ct;
    const list = ct.select(pred);
    for (const e of list) {
      const cIp = ct.clientIp[e];
      const li = this.net.localIps.find(0, cIp);
      if (li >= 0) {
        const cMac = this.net.localIps.a[li] * 0x100000000 + (this.net.localIps.b[li] >>> 0);
        this.emit((out, off) => writeResetToClient(ct, e, this.vipMac, cMac, out, off));
      }
      // A local backend is always a hairpin flow (its peer is VIP:port); a remote one is reset by
      // its own host, or is gone with it.
      if (this.net.local.find(ct.backendMacHi[e], ct.backendMacLo[e]) >= 0) {
        this.emit((out, off) => writeResetToBackend(ct, e, this.vipMac, out, off));
      }
      ct.remove(e);
      this.counts[VC.resets]++;
    }
    this.flush();
    return list.length;
  }

  /** Control-path frame into the out arena (allocation is fine here, but the arena is reused). */
  private emit(write: (out: Buffer, off: number) => number): void {
    const at = this.outSlot();
    const n = write(this.out, at + this.pre());
    if (n > 0) this.pushOut(n);
  }

  // ---- used by the stages ----

  pre(): number {
    return this.net.tap.vnet ? VNET_HDR_LEN : 0;
  }

  /** Offset in `out` where the next generated frame goes (its virtio header first when the TAP has one). */
  outSlot(): number {
    if (this.outCount === OUT_SLOTS) this.flushOut();
    const at = this.outOffs[this.outCount];
    if (this.net.tap.vnet) writeVnetNone(this.out, at);
    return at;
  }

  pushOut(frameLen: number): void {
    this.outLens[this.outCount++] = this.pre() + frameLen;
  }

  /** A frame of rxSlab at [off, off+len) goes back into the TAP (room for a virtio header in front). */
  back(off: number, len: number): void {
    if (this.backCount === BACK_SLOTS) this.flushBack();
    const pre = this.pre();
    if (pre) writeVnetNone(this.net.rxSlab, off - pre);
    this.backOffs[this.backCount] = off - pre;
    this.backLens[this.backCount++] = len + pre;
  }

  /** End of a batch: frames back into the TAP, generated replies, a slice of conntrack expiry. */
  flush(now = performance.now()): void {
    if (this.backCount > 0) this.flushBack();
    if (this.outCount > 0) this.flushOut();
    this.ct.sweep(now, 16);
    this.mesh.sweep(now, 16);
  }

  flushBack(): void {
    const used = this.net.tap.writeBatch(this.net.rxSlab, this.backOffs, this.backLens, 0, this.backCount);
    this.tapLost += this.backCount - used;
    this.backCount = 0;
  }

  private flushOut(): void {
    const used = this.net.tap.writeBatch(this.out, this.outOffs, this.outLens, 0, this.outCount);
    this.tapLost += this.outCount - used;
    this.outCount = 0;
  }

  /** Counters, table sizes, and `active:TASK_IP` = established flows to that task (non-zero only; `service ps`). */
  stats(): Record<string, number> {
    const o: Record<string, number> = {};
    VC_NAMES.forEach((n, i) => (o[n] = this.counts[i]));
    this.services.forEachActive((ip, n) => {
      const k = `${TASK_ACTIVE_PREFIX}${ipv4ToString(ip)}`;
      o[k] = (o[k] ?? 0) + n;
    });
    return { ...o, flows: this.ct.size, halfOpen: this.ct.halfOpen, udpFlows: this.ct.udpFlows, meshTracked: this.mesh.size,
      refusedFull: this.ct.stats.refusedFull, evictedHalfOpen: this.ct.stats.evictedHalfOpen, tapLost: this.tapLost };
  }
}

function ipKey(s: string): number {
  return parseIpv4(s) | 0;
}
