// Where addresses and VNIs come from. Alone, an agent allocates locally; in a cluster, through
// the gossip layer's quorum-block IPAM, so no two endpoints ever share an address and no two
// networks a VNI, even when hosts allocate at the same moment or are partitioned.
import { IpamError as GossipIpamError, type Ipam as ClusterIpam } from '../gossip/index.js';
import { ipv4ToString, parseIpv4 } from '../router/wire/addr.js';
import { IpamError, LocalIpam, makePool, type Pool } from './ipam.js';
import type { NetworkRecord } from './state.js';

export const VNI_FIRST = 4096;
export const VNI_MAX = 0xffffff;

export class AllocationError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

export interface Allocator {
  /** An address for an endpoint: `want` if given (and free), else any free one. */
  ip(net: NetworkRecord, want: number | undefined, endpointId: string): Promise<number>;
  releaseIp(net: NetworkRecord, ip: number): void;
  /** A VNI: `want` if given (and free), else a free one from 4096 up. */
  vni(want: number | undefined, inUse: Set<number>): Promise<number>;
  /** A published port, cluster-wide (Docker's ingress): true if now held for `service`, false if taken. */
  claimPort(protocol: 'tcp' | 'udp', port: number, service: string): Promise<boolean>;
  releasePort(protocol: 'tcp' | 'udp', port: number): void;
}

function poolOf(net: NetworkRecord): Pool {
  return makePool({ subnet: net.subnet, gateway: net.gateway, ipRange: net.ipRange });
}

export class LocalAllocator implements Allocator {
  private readonly ipams = new Map<string, LocalIpam>();
  private readonly ports = new Set<string>();

  async claimPort(protocol: 'tcp' | 'udp', port: number, _service: string): Promise<boolean> {
    const key = `${port}/${protocol}`;
    if (this.ports.has(key)) return false;
    this.ports.add(key);
    return true;
  }

  releasePort(protocol: 'tcp' | 'udp', port: number): void {
    this.ports.delete(`${port}/${protocol}`);
  }

  private ipam(net: NetworkRecord): LocalIpam {
    let i = this.ipams.get(net.id);
    if (!i) {
      i = new LocalIpam(poolOf(net), net.endpoints.map((e) => parseIpv4(e.ip)));
      this.ipams.set(net.id, i);
    }
    return i;
  }

  async ip(net: NetworkRecord, want: number | undefined, _endpointId: string): Promise<number> {
    try {
      if (want === undefined) return this.ipam(net).allocate();
      this.ipam(net).reserve(want);
      return want;
    } catch (e) {
      throw new AllocationError((e as Error).message, e instanceof IpamError ? 409 : 400);
    }
  }

  releaseIp(net: NetworkRecord, ip: number): void {
    this.ipam(net).release(ip);
  }

  async vni(want: number | undefined, inUse: Set<number>): Promise<number> {
    if (want !== undefined) {
      if (inUse.has(want)) throw new AllocationError(`VXLAN ID ${want} is already used by another network`, 409);
      return want;
    }
    for (let v = VNI_FIRST; v <= VNI_MAX; v++) if (!inUse.has(v)) return v;
    throw new AllocationError('no free VXLAN ID', 409);
  }
}

/** VNIs 4096..65534 are handed out by the same quorum IPAM, over a pseudo-network. */
const VNI_POOL_NET = '__vni';
const VNI_POOL: Pool = { subnet: { base: 0, prefixLen: 16 }, gateway: 1, first: VNI_FIRST, last: 0xfffe };
/** Published ports 1..65535 per protocol, the same way: a /15 so that none is the network, gateway or broadcast number. */
const PORT_POOL: Pool = { subnet: { base: 0, prefixLen: 15 }, gateway: 0x1fffe, first: 1, last: 65535 };
const portPoolNet = (protocol: 'tcp' | 'udp') => `__port-${protocol}`;

const STATUS: Record<string, number> = {
  IP_IN_USE: 409, IP_OUT_OF_RANGE: 400, POOL_EXHAUSTED: 409, NO_QUORUM: 503, CONTENDED: 503,
  OWNER_UNREACHABLE: 503, NOT_SYNCED: 503, BAD_POOL: 400, STOPPED: 503,
};

function translate(e: unknown, what: string): never {
  if (e instanceof GossipIpamError) {
    const msg = e.code === 'POOL_EXHAUSTED' ? `no available IPv4 addresses on ${what}` : e.message;
    throw new AllocationError(`${msg} (${e.code})`, STATUS[e.code] ?? 500);
  }
  throw e;
}

export class ClusterAllocator implements Allocator {
  constructor(private readonly ipam: ClusterIpam) {}

  async ip(net: NetworkRecord, want: number | undefined, endpointId: string): Promise<number> {
    const pool = poolOf(net);
    if (want !== undefined) {
      // Reject what the local pool rules reject, with the same words as the local allocator.
      try {
        new LocalIpam(pool).reserve(want);
      } catch (e) {
        throw new AllocationError((e as Error).message, 400);
      }
    }
    try {
      const ip = await this.ipam.allocate(net.id, pool, { ip: want === undefined ? undefined : ipv4ToString(want), endpoint: endpointId });
      return parseIpv4(ip);
    } catch (e) {
      if (e instanceof GossipIpamError && e.code === 'IP_IN_USE') throw new AllocationError(`address ${ipv4ToString(want ?? 0)} is already in use`, 409);
      return translate(e, `network ${net.name}`);
    }
  }

  releaseIp(net: NetworkRecord, ip: number): void {
    this.ipam.release(net.id, ipv4ToString(ip));
  }

  async vni(want: number | undefined, inUse: Set<number>): Promise<number> {
    if (want !== undefined) {
      if (inUse.has(want)) throw new AllocationError(`VXLAN ID ${want} is already used by another network`, 409);
      if (want < VNI_FIRST || want > VNI_POOL.last) return want; // outside the arbitrated range
      if (!(await this.claimVni(want))) throw new AllocationError(`VXLAN ID ${want} is already used by another network`, 409);
      return want;
    }
    // Serial from 4096 like Docker, each candidate claimed through the quorum IPAM: two hosts
    // creating networks at once get different VNIs.
    for (let v = VNI_FIRST, tries = 0; v <= VNI_POOL.last && tries < 256; v++) {
      if (inUse.has(v)) continue;
      tries++;
      if (await this.claimVni(v)) return v;
    }
    throw new AllocationError('no free VXLAN ID found', 503);
  }

  /** True if this VNI is now ours; false if someone holds it. Other failures throw. */
  private async claimVni(v: number): Promise<boolean> {
    try {
      await this.ipam.allocate(VNI_POOL_NET, VNI_POOL, { ip: ipv4ToString(v), endpoint: 'vni' });
      return true;
    } catch (e) {
      if (e instanceof GossipIpamError && e.code === 'IP_IN_USE') return false;
      return translate(e, 'the VXLAN ID space');
    }
  }

  async claimPort(protocol: 'tcp' | 'udp', port: number, service: string): Promise<boolean> {
    try {
      await this.ipam.allocate(portPoolNet(protocol), PORT_POOL, { ip: ipv4ToString(port), endpoint: `svc:${service}` });
      return true;
    } catch (e) {
      if (e instanceof GossipIpamError && e.code === 'IP_IN_USE') return false;
      return translate(e, 'the published ports');
    }
  }

  releasePort(protocol: 'tcp' | 'udp', port: number): void {
    this.ipam.release(portPoolNet(protocol), ipv4ToString(port));
  }

  releaseVni(vni: number): void {
    if (vni >= VNI_FIRST && vni <= VNI_POOL.last) this.ipam.release(VNI_POOL_NET, ipv4ToString(vni));
  }
}
