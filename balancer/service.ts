// The per-network service table the VIP stage reads. Built on the control path from plain
// objects (the replicated service records); read on the hot path by numbers only:
//   isVip(ip)                        -> should the router answer ARP for ip / look closer
//   classify(ip, proto, port)        -> service slot, NOT_VIP or REFUSED (+ targetPort out)
//   pick(svc, srcIp, srcPort)        -> backend slot or -1, fields in backends(svc)
// Ports: a VIP accepts each declared target port unchanged (Docker's VIP semantics: `curl
// web:80` for `-p 8080:80`) and each published port mapped to its target, unless that number is
// already a target port. A service that declares no port forwards every port unchanged (as a
// Docker service without --publish is reachable on any port through its VIP). Any other port
// on a VIP is REFUSED: the stage answers RST (TCP) or ICMP port unreachable (UDP).
import { NumTable } from '../router/numtable.js';
import { macParts, parseIpv4 } from '../router/wire/addr.js';

import { BackendSet, type BackendSpec } from './backends.js';
import type { ConnListener } from './conntrack.js';
import { SCHEDULER_NAMES, createScheduler, type Scheduler, type SchedulerName, type SchedulerOptions } from './scheduler.js';

export const NOT_VIP = -1;
export const REFUSED = -2;

const PROTO_TCP = 6;
const PROTO_UDP = 17;
const ALL_PORTS = 1;

export interface PortSpec {
  /** Routing-mesh port on every host (also accepted on the VIP when it is no target port). */
  published: number;
  /** Port the tasks listen on. */
  target: number;
  protocol: 'tcp' | 'udp';
}

export interface TaskSpec {
  /** Overlay address, dotted quad. */
  ip: string;
  mac: string;
  /** 0..65535, default 1; 0 drains (no new flows, existing ones live on). */
  weight?: number;
}

export interface ServiceSpec {
  id: string;
  /** Virtual IP, dotted quad. */
  vip: string;
  ports: PortSpec[];
  scheduler: SchedulerName;
  schedulerOptions?: SchedulerOptions;
  tasks: TaskSpec[];
}

/** Upper bound of tasks per service (a BackendSet's fixed capacity). */
export const MAX_TASKS_PER_SERVICE = 1024;

interface Service {
  spec: ServiceSpec;
  vip: number;
  backends: BackendSet;
  scheduler: Scheduler;
  /** Removed, waiting for its flows' counts to drain before the slot is reused. */
  removed: boolean;
  /** (proto << 16 | port) keys this service put into the port table. */
  portKeys: number[];
}

export class ServiceTable implements ConnListener {
  /** Side output of classify(): the backend port for the flow. */
  targetPort = 0;
  private readonly vips = new NumTable(64);
  private readonly ports = new NumTable(64);
  private readonly slots: (Service | undefined)[] = [];
  private readonly byId = new Map<string, number>();

  // ---- hot path ----

  isVip(ip: number): boolean {
    return this.vips.find(0, ip) >= 0;
  }

  /**
   * Service slot for a packet to ip:port (proto 6/17), setting `targetPort`; NOT_VIP when ip is no
   * VIP; REFUSED when it is one but the port/protocol is not served.
   */
  classify(ip: number, proto: number, port: number): number {
    const v = this.vips.find(0, ip);
    if (v < 0) return NOT_VIP;
    if (proto !== PROTO_TCP && proto !== PROTO_UDP) return REFUSED;
    if (this.vips.b[v] & ALL_PORTS) {
      this.targetPort = port;
      return this.vips.a[v];
    }
    const p = this.ports.find((proto << 16) | port, ip);
    if (p < 0) return REFUSED;
    this.targetPort = this.ports.b[p];
    return this.ports.a[p];
  }

  /** Backend slot for a new flow of service svc, or -1 (no task can take it). */
  pick(svc: number, srcIp: number, srcPort: number): number {
    const s = this.slots[svc];
    return s === undefined || s.removed ? -1 : s.scheduler.pick(srcIp, srcPort);
  }

  /** The backend arrays of svc (ip, macHi, macLo, weight, active, inactive). */
  backends(svc: number): BackendSet {
    return this.slots[svc]!.backends;
  }

  /** ConnListener: the connection table reports flows starting, changing state and ending. */
  countChange(svc: number, backend: number, dActive: number, dInactive: number): void {
    const s = this.slots[svc];
    if (s === undefined) return;
    s.backends.countChange(backend, dActive, dInactive);
    if (s.removed && !this.hasFlows(s)) this.slots[svc] = undefined;
  }

  // ---- control path ----

  /** Creates or replaces a service; returns its slot. Throws RangeError on bad input. */
  upsert(spec: ServiceSpec): number {
    const vip = parseIpv4(spec.vip);
    if (!SCHEDULER_NAMES.includes(spec.scheduler)) throw new RangeError(`unknown scheduler: ${spec.scheduler}`);
    const portMap = this.portMap(spec);
    parseTasks(spec.tasks); // validate before changing anything
    const other = this.vips.find(0, vip);
    const existing = this.byId.get(spec.id);
    if (other >= 0 && this.vips.a[other] !== existing) throw new RangeError(`VIP ${spec.vip} already belongs to another service`);
    let slot = existing;
    let svc = slot === undefined ? undefined : this.slots[slot];
    if (svc && (svc.scheduler.name !== spec.scheduler || svc.vip !== vip
      || JSON.stringify(svc.spec.schedulerOptions ?? {}) !== JSON.stringify(spec.schedulerOptions ?? {}))) {
      this.unmap(svc);
      this.vips.delete(0, svc.vip);
      svc.scheduler = createScheduler(spec.scheduler, svc.backends, spec.schedulerOptions);
      svc.vip = vip;
    }
    if (!svc) {
      slot = this.freeSlot();
      const backends = new BackendSet(MAX_TASKS_PER_SERVICE);
      svc = { spec, vip, backends, scheduler: createScheduler(spec.scheduler, backends, spec.schedulerOptions), removed: false, portKeys: [] };
      this.slots[slot] = svc;
      this.byId.set(spec.id, slot);
    }
    svc.spec = spec;
    this.unmap(svc);
    this.vips.set(0, vip, slot!, spec.ports.length === 0 ? ALL_PORTS : 0);
    for (const [key, target] of portMap) {
      this.ports.set(key, vip, slot!, target);
      svc.portKeys.push(key);
    }
    this.setTasks(svc, spec.tasks);
    return slot!;
  }

  /** Replaces the task list of a service (weights included) and rebuilds its scheduler. */
  setTasks(svcOrId: Service | string, tasks: TaskSpec[]): void {
    const svc = typeof svcOrId === 'string' ? this.get(svcOrId) : svcOrId;
    const parsed = parseTasks(tasks);
    const keep = new Set(parsed.map((b) => b.ip));
    for (const i of svc.backends.live()) {
      if (!keep.has(svc.backends.ip[i] >>> 0)) svc.backends.remove(svc.backends.ip[i], 0);
    }
    for (const b of parsed) svc.backends.upsert(b);
    svc.spec = { ...svc.spec, tasks };
    svc.scheduler.rebuild();
  }

  /** Changes one task's weight (0 drains). */
  setWeight(id: string, taskIp: string, weight: number): void {
    const svc = this.get(id);
    const tasks = svc.spec.tasks.map((t) => (t.ip === taskIp ? { ...t, weight } : t));
    if (!svc.spec.tasks.some((t) => t.ip === taskIp)) throw new RangeError(`no task ${taskIp} in ${id}`);
    this.setTasks(svc, tasks);
  }

  /**
   * Removes a service: its VIP stops matching at once. The slot is reused only after every flow
   * counted against it has ended (the stage should reset them: ConnTable.select by svc).
   */
  remove(id: string): number {
    const slot = this.byId.get(id);
    if (slot === undefined) return -1;
    const svc = this.slots[slot]!;
    this.unmap(svc);
    this.vips.delete(0, svc.vip);
    this.byId.delete(id);
    svc.removed = true;
    for (const i of svc.backends.live()) svc.backends.remove(svc.backends.ip[i], 0);
    if (!this.hasFlows(svc)) this.slots[slot] = undefined;
    return slot;
  }

  /** Calls fn with each live task's established flows (IPVS activeconns), where non-zero. */
  forEachActive(fn: (ip: number, active: number) => void): void {
    for (const s of this.slots) {
      if (s === undefined || s.removed) continue;
      const b = s.backends;
      for (let i = 0; i < b.count; i++) if (b.isLive(i) && b.active[i] > 0) fn(b.ip[i] >>> 0, b.active[i]);
    }
  }

  slotOf(id: string): number {
    return this.byId.get(id) ?? -1;
  }

  spec(id: string): ServiceSpec | undefined {
    const s = this.byId.get(id);
    return s === undefined ? undefined : this.slots[s]!.spec;
  }

  private get(id: string): Service {
    const s = this.byId.get(id);
    if (s === undefined) throw new RangeError(`no such service: ${id}`);
    return this.slots[s]!;
  }

  private hasFlows(s: Service): boolean {
    for (let i = 0; i < s.backends.count; i++) if (s.backends.active[i] + s.backends.inactive[i] > 0) return true;
    return false;
  }

  private freeSlot(): number {
    const i = this.slots.indexOf(undefined);
    return i >= 0 ? i : this.slots.length;
  }

  private unmap(svc: Service): void {
    for (const key of svc.portKeys) this.ports.delete(key, svc.vip);
    svc.portKeys = [];
  }

  /** (proto << 16 | port) -> target port, validated. */
  private portMap(spec: ServiceSpec): Map<number, number> {
    const m = new Map<number, number>();
    const port = (p: number, what: string): number => {
      if (!(Number.isInteger(p) && p >= 1 && p <= 65535)) throw new RangeError(`${what} port out of range: ${p}`);
      return p;
    };
    const proto = (p: string): number => {
      if (p === 'tcp') return PROTO_TCP;
      if (p === 'udp') return PROTO_UDP;
      throw new RangeError(`protocol must be tcp or udp: ${p}`);
    };
    for (const p of spec.ports) {
      const key = (proto(p.protocol) << 16) | port(p.target, 'target');
      const prev = m.get(key);
      if (prev !== undefined && prev !== p.target) throw new RangeError(`port ${p.target}/${p.protocol} declared twice`);
      m.set(key, p.target);
    }
    const published = new Set<number>();
    for (const p of spec.ports) {
      const key = (proto(p.protocol) << 16) | port(p.published, 'published');
      if (published.has(key)) throw new RangeError(`published port ${p.published}/${p.protocol} declared twice`);
      published.add(key);
      if (!m.has(key)) m.set(key, p.target);
    }
    return m;
  }
}

/** Validated tasks as backend specs (port 0: a task is identified by its IP; the target port
 * comes from the port binding). Throws on bad input. */
function parseTasks(tasks: TaskSpec[]): BackendSpec[] {
  if (tasks.length > MAX_TASKS_PER_SERVICE) throw new RangeError(`more than ${MAX_TASKS_PER_SERVICE} tasks`);
  const seen = new Set<number>();
  return tasks.map((t) => {
    const ip = parseIpv4(t.ip);
    const [macHi, macLo] = macParts(t.mac);
    const weight = t.weight ?? 1;
    if (!(Number.isInteger(weight) && weight >= 0 && weight <= 65535)) throw new RangeError(`task weight must be 0..65535: ${weight}`);
    if (seen.has(ip)) throw new RangeError(`task ${t.ip} listed twice`);
    seen.add(ip);
    return { ip, port: 0, macHi, macLo, weight };
  });
}
