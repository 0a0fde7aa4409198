// How a network's address pool is cut into blocks (pure arithmetic, no protocol).
//
// Blocks are aligned on the subnet: block b holds subnet.base + b*blockSize ..
// + (b+1)*blockSize - 1, intersected with the allocatable range [first, last]; the gateway,
// the network address and the broadcast address are never handed out.

import { ipv4ToString } from '../router/wire/addr.js';
import type { PoolWire } from './codec.js';

/** The shape of agent/ipam.ts's Pool (structurally compatible; numbers in host order). */
export interface IpPool {
  subnet: { base: number; prefixLen: number };
  gateway: number;
  first: number;
  last: number;
}

export const DEFAULT_BLOCK_SIZE = 16;

export class Layout {
  readonly blocks: number;
  private readonly broadcast: number;

  constructor(readonly pool: PoolWire) {
    const { prefixLen, base, first, last, blockSize } = pool;
    if (!Number.isInteger(prefixLen) || prefixLen < 1 || prefixLen > 32) throw new RangeError(`bad prefix length ${prefixLen}`);
    const size = 2 ** (32 - prefixLen);
    if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`bad block size ${blockSize}`);
    if (base % size !== 0) throw new RangeError('subnet base is not aligned');
    if (first < base || last >= base + size || first > last) throw new RangeError('allocatable range outside the subnet');
    this.broadcast = base + size - 1;
    this.blocks = Math.ceil(size / blockSize);
  }

  static of(pool: IpPool, blockSize = DEFAULT_BLOCK_SIZE): Layout {
    return new Layout({ base: pool.subnet.base, prefixLen: pool.subnet.prefixLen, gateway: pool.gateway, first: pool.first, last: pool.last, blockSize });
  }

  blockOf(ip: number): number {
    return Math.floor((ip - this.pool.base) / this.pool.blockSize);
  }

  /** May this address ever be handed out? */
  allocatable(ip: number): boolean {
    const p = this.pool;
    return ip >= p.first && ip <= p.last && ip !== p.gateway && ip !== p.base && ip !== this.broadcast;
  }

  /** Allocatable addresses of block b, ascending. */
  *addresses(b: number): Generator<number> {
    const lo = this.pool.base + b * this.pool.blockSize;
    const hi = Math.min(lo + this.pool.blockSize - 1, this.broadcast);
    for (let ip = Math.max(lo, this.pool.first); ip <= Math.min(hi, this.pool.last); ip++) if (this.allocatable(ip)) yield ip;
  }

  hasAddresses(b: number): boolean {
    return !this.addresses(b).next().done;
  }

  describe(b: number): string {
    const lo = this.pool.base + b * this.pool.blockSize;
    return `${ipv4ToString(lo)}-${ipv4ToString(Math.min(lo + this.pool.blockSize - 1, this.broadcast))}`;
  }
}
