// A service's backend set as parallel typed arrays, read by the schedulers and the VIP stage
// without allocation. Slots are stable: a backend keeps its index while it exists, so connection
// entries can name it by index; a removed backend's slot is reused only once no connection
// counts against it any more. Mutations are control-path operations; after any of them call
// the scheduler's rebuild().

/** Slot is free (never used, or removed and no longer referenced). */
const FREE = 0;
/** Slot holds a live backend (weight may be 0 = drained). */
const LIVE = 1;
/** Backend removed, but connections still count against the slot. */
const GONE = 2;

export interface BackendSpec {
  /** IPv4 address as u32 (host order). */
  ip: number;
  /** Target port on the backend (the DNAT port). */
  port: number;
  /** MAC as hi16 / lo32 (see router/numtable.ts macParts). */
  macHi: number;
  macLo: number;
  /** 0..65535; 0 = drained (no new flows). */
  weight: number;
}

export class BackendSet {
  /** One past the highest slot ever used: iterate 0..count-1 and check weight/state. */
  count = 0;
  readonly ip: Int32Array;
  readonly port: Uint16Array;
  readonly macHi: Int32Array;
  readonly macLo: Int32Array;
  /** Scheduler weight; always 0 for non-live slots, so schedulers need test nothing else. */
  readonly weight: Int32Array;
  /** Established connections (IPVS activeconns). */
  readonly active: Int32Array;
  /** Connections in other states: half-open, closing (IPVS inactconns). */
  readonly inactive: Int32Array;
  private readonly state: Uint8Array;

  constructor(readonly capacity = 256) {
    this.ip = new Int32Array(capacity);
    this.port = new Uint16Array(capacity);
    this.macHi = new Int32Array(capacity);
    this.macLo = new Int32Array(capacity);
    this.weight = new Int32Array(capacity);
    this.active = new Int32Array(capacity);
    this.inactive = new Int32Array(capacity);
    this.state = new Uint8Array(capacity);
  }

  /** Slot of the live backend ip:port, or -1. */
  indexOf(ip: number, port: number): number {
    for (let i = 0; i < this.count; i++) {
      if (this.state[i] === LIVE && this.ip[i] === (ip | 0) && this.port[i] === port) return i;
    }
    return -1;
  }

  isLive(i: number): boolean {
    return i >= 0 && i < this.count && this.state[i] === LIVE;
  }

  /** Adds or updates a backend (identity = ip:port); returns its slot. Throws when full. */
  upsert(b: BackendSpec): number {
    if (!(Number.isInteger(b.weight) && b.weight >= 0 && b.weight <= 65535)) {
      throw new RangeError(`backend weight must be 0..65535: ${b.weight}`);
    }
    let i = this.indexOf(b.ip, b.port);
    if (i < 0) {
      i = this.freeSlot();
      if (i < 0) throw new RangeError(`backend set full (${this.capacity})`);
      this.state[i] = LIVE;
      this.ip[i] = b.ip | 0;
      this.port[i] = b.port;
      this.active[i] = 0;
      this.inactive[i] = 0;
      if (i >= this.count) this.count = i + 1;
    }
    this.macHi[i] = b.macHi;
    this.macLo[i] = b.macLo;
    this.weight[i] = b.weight;
    return i;
  }

  /** Removes ip:port: no new flows; the slot lingers while connections reference it. */
  remove(ip: number, port: number): boolean {
    const i = this.indexOf(ip, port);
    if (i < 0) return false;
    this.weight[i] = 0;
    this.state[i] = this.active[i] + this.inactive[i] > 0 ? GONE : FREE;
    return true;
  }

  /** Connection counter change for slot i (the connection table's listener calls this). */
  countChange(i: number, dActive: number, dInactive: number): void {
    if (i < 0 || i >= this.count) return;
    this.active[i] = Math.max(0, this.active[i] + dActive);
    this.inactive[i] = Math.max(0, this.inactive[i] + dInactive);
    if (this.state[i] === GONE && this.active[i] + this.inactive[i] === 0) this.state[i] = FREE;
  }

  /** Live slots (control path). */
  live(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.count; i++) if (this.state[i] === LIVE) out.push(i);
    return out;
  }

  private freeSlot(): number {
    for (let i = 0; i < this.count; i++) if (this.state[i] === FREE) return i;
    return this.count < this.capacity ? this.count : -1;
  }
}

/** Greatest common divisor of two non-negative integers (gcd(0, x) = x). */
export function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
