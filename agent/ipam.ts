// Subnets and address allocation for one host. (Cluster-wide conflict-free allocation is the
// gossip layer's job; this is the local pool it allocates from.)
import { ipv4ToString, parseIpv4 } from '../router/wire/addr.js';

export class IpamError extends Error {}

export interface Cidr {
  base: number;
  prefixLen: number;
}

export function parseCidr(s: string): Cidr {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(s);
  if (!m) throw new IpamError(`invalid CIDR address: ${s}`);
  const prefixLen = Number(m[2]);
  if (prefixLen > 32) throw new IpamError(`invalid CIDR address: ${s}`);
  let addr: number;
  try {
    addr = parseIpv4(m[1]);
  } catch {
    throw new IpamError(`invalid CIDR address: ${s}`);
  }
  return { base: (addr & maskOf(prefixLen)) >>> 0, prefixLen };
}

export function maskOf(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

export function cidrString(c: Cidr): string {
  return `${ipv4ToString(c.base)}/${c.prefixLen}`;
}

export function contains(c: Cidr, ip: number): boolean {
  return ((ip & maskOf(c.prefixLen)) >>> 0) === c.base;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefixLen, b.prefixLen);
  return ((a.base & maskOf(p)) >>> 0) === ((b.base & maskOf(p)) >>> 0);
}

export interface PoolSpec {
  subnet: string;
  gateway?: string;
  ipRange?: string;
}

export interface Pool {
  subnet: Cidr;
  gateway: number;
  /** Inclusive bounds of allocatable addresses. */
  first: number;
  last: number;
}

/** Validate a subnet/gateway/ip-range triple the way `docker network create` does. */
export function makePool(spec: PoolSpec): Pool {
  const subnet = parseCidr(spec.subnet);
  if (subnet.prefixLen > 30) throw new IpamError(`subnet ${spec.subnet} is too small (at most /30)`);
  const bcast = (subnet.base | ~maskOf(subnet.prefixLen)) >>> 0;
  let gateway = subnet.base + 1;
  if (spec.gateway !== undefined) {
    try {
      gateway = parseIpv4(spec.gateway);
    } catch {
      throw new IpamError(`invalid gateway address: ${spec.gateway}`);
    }
    if (!contains(subnet, gateway) || gateway === subnet.base || gateway === bcast) {
      throw new IpamError(`gateway ${spec.gateway} is not a host address of subnet ${spec.subnet}`);
    }
  }
  let first = subnet.base + 1;
  let last = bcast - 1;
  if (spec.ipRange !== undefined) {
    const r = parseCidr(spec.ipRange);
    if (r.prefixLen < subnet.prefixLen || !contains(subnet, r.base)) {
      throw new IpamError(`ip-range ${spec.ipRange} is not inside subnet ${spec.subnet}`);
    }
    first = Math.max(first, r.base);
    last = Math.min(last, (r.base | ~maskOf(r.prefixLen)) >>> 0);
  }
  return { subnet, gateway, first, last };
}

/** Free-address tracking over a pool. */
export class LocalIpam {
  private readonly used = new Set<number>();

  constructor(private readonly pool: Pool, used: Iterable<number> = []) {
    for (const u of used) this.used.add(u);
  }

  allocate(): number {
    for (let ip = this.pool.first; ip <= this.pool.last; ip++) {
      if (ip !== this.pool.gateway && !this.used.has(ip)) {
        this.used.add(ip);
        return ip;
      }
    }
    throw new IpamError(`no available IPv4 addresses on network (range ${ipv4ToString(this.pool.first)}-${ipv4ToString(this.pool.last)} is full)`);
  }

  /** Claim a specific address (`--ip`). */
  reserve(ip: number): void {
    const s = this.pool.subnet;
    const bcast = (s.base | ~maskOf(s.prefixLen)) >>> 0;
    if (!contains(s, ip) || ip === s.base || ip === bcast) throw new IpamError(`address ${ipv4ToString(ip)} is not a host address of subnet ${cidrString(s)}`);
    if (ip === this.pool.gateway) throw new IpamError(`address ${ipv4ToString(ip)} is the network's gateway`);
    if (this.used.has(ip)) throw new IpamError(`address ${ipv4ToString(ip)} is already in use`);
    this.used.add(ip);
  }

  release(ip: number): void {
    this.used.delete(ip);
  }
}
