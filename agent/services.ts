// Services, the control plane: a service (name, network, endpoint mode, VIP, scheduler,
// published ports) lives in the cluster-scoped `services` table; its tasks are endpoints that
// carry its id and a weight (owner-scoped, so a task vanishes with its host). Whatever changes
// (here or on another host), the flow is:
//   1. a table event (services, endpoints, task-weights, networks) schedules one refresh;
//   2. refresh() folds weights set elsewhere for this host's tasks into their endpoints;
//   3. pushes each network's VIP table to the datapath (engine `setServices`) when it changed;
//   4. tells the routing mesh (meshTargets / onMeshChange) when any published port's targets changed.
// VIPs come from the network's IPAM (the allocator endpoints use), so no address is handed out
// twice; no per-host load-balancer address is spent.
import type { Tables } from '../gossip/index.js';
import type { DatapathEngine, ServiceSpec } from '../router/engine.js';
import { ipv4ToString, parseIpv4 } from '../router/wire/addr.js';
import { AllocationError, type Allocator } from './allocator.js';
import { base36Id } from './ids.js';
import { checkEndpointMode, checkPort, checkScheduler, checkServiceName, checkWeight } from './input.js';
import { parseCidr } from './ipam.js';
import type { Logger } from './log.js';
import { UserError, type CreateServiceRequest, type UpdateServiceRequest } from './requests.js';
import { computeSpecs, effectiveWeight, meshTargetsOf, portHolder, serviceInspect, serviceRow, taskRows, type MeshTarget, type Task } from './service-view.js';
import type { NetworkRecord } from './state.js';
import {
  ENDPOINTS, NETWORKS, SERVICES, TASK_WEIGHTS, asEndpointEntry, asServiceEntry, asTaskWeightEntry, serviceValue, taskWeightValue,
  type PortProtocol, type ServiceEntry, type ServicePort,
} from './tables.js';

export type { MeshTarget } from './service-view.js';

/** What services need of the agent (agent/agent.ts's Agent is one). */
export interface ServicesHost {
  readonly state: { readonly networks: readonly NetworkRecord[] };
  findNetwork(ref: string): NetworkRecord;
  /** Set the weight of a task on this host (persisted, republished); false when it is not local. */
  setLocalWeight(endpointId: string, weight: number, at: number): Promise<boolean>;
}

/** The part of the gossip tables services use. */
export type ServiceTables = Pick<Tables, 'get' | 'set' | 'delete' | 'entries' | 'subscribe'>;

export const DNSRR_PUBLISH_ERROR = "port published with ingress mode can't be used with dnsrr mode";

export class Services {
  private tables: ServiceTables | undefined;
  private alloc: Allocator | undefined;
  private hostName: (id: string) => string = (id) => id;
  private unsubscribe: (() => void)[] = [];
  private lock: Promise<unknown> = Promise.resolve();
  private scheduled = false;
  /** JSON of the specs last sent per VNI. */
  private readonly sent = new Map<number, string>();
  private meshSig = '[]';
  private readonly meshListeners = new Set<(targets: MeshTarget[]) => void>();
  private load: { activeOf(endpoint: string): number } | undefined;

  constructor(private readonly host: ServicesHost, private readonly engine: DatapathEngine, private readonly log: Logger) {}

  /** Follow the cluster's tables and allocate VIPs with `alloc` (the agent's allocator). */
  attach(tables: ServiceTables, alloc: Allocator, hostName: (id: string) => string): void {
    this.tables = tables;
    this.alloc = alloc;
    this.hostName = hostName;
    for (const t of [SERVICES, ENDPOINTS, TASK_WEIGHTS, NETWORKS]) this.unsubscribe.push(tables.subscribe(() => this.schedule(), t));
    this.schedule();
  }

  stop(): void {
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
  }

  private get t(): ServiceTables {
    if (!this.tables) throw new UserError('services are not available until the agent has joined its cluster', 503);
    return this.tables;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  // ---- reading the tables ---------------------------------------------------------------------

  /** Every service in the cluster, by id. */
  all(): [string, ServiceEntry][] {
    const out: [string, ServiceEntry][] = [];
    for (const [key, value] of this.tables?.entries(SERVICES) ?? []) {
      const s = asServiceEntry(value);
      if (s) out.push([key, s]);
      else this.log.error('malformed services entry ignored', { key });
    }
    return out.sort((a, b) => a[1].name.localeCompare(b[1].name));
  }

  /** Every live task on any host, with the weight in force. */
  tasks(): Task[] {
    const out: Task[] = [];
    for (const [key, value] of this.tables?.entries(ENDPOINTS) ?? []) {
      const ep = asEndpointEntry(value);
      if (ep?.service === undefined) continue;
      out.push({ id: key, ep: { ...ep, service: ep.service }, weight: effectiveWeight(ep, asTaskWeightEntry(this.tables?.get(TASK_WEIGHTS, key))) });
    }
    return out;
  }

  /** A service by id, name or unique id prefix. */
  find(ref: string): [string, ServiceEntry] {
    const all = this.all();
    const exact = all.find(([id, s]) => id === ref || s.name === ref);
    if (exact) return exact;
    const byPrefix = all.filter(([id]) => ref.length > 0 && id.startsWith(ref));
    if (byPrefix.length === 1) return byPrefix[0];
    if (byPrefix.length > 1) throw new UserError(`service ${ref} is ambiguous (${byPrefix.length} matches)`);
    throw new UserError(`service ${ref} not found`, 404);
  }

  /** Services on a network (a network in use cannot be removed). */
  onNetwork(networkId: string): [string, ServiceEntry][] {
    return this.all().filter(([, s]) => s.network === networkId);
  }

  /** `network connect --service S [--weight N]`: the new endpoint's task fields ({} without --service). */
  taskFields(req: { service?: string; weight?: number }, net: NetworkRecord): { service?: string; weight?: number; weightAt?: number } {
    if (req.service === undefined) {
      if (req.weight !== undefined) throw new UserError('--weight needs --service');
      return {};
    }
    const [id, s] = this.find(req.service);
    if (s.network !== net.id) throw new UserError(`service ${s.name} is not on network ${net.name}`);
    return { service: id, weight: checkWeight(req.weight ?? 1), weightAt: Date.now() };
  }

  list(): Record<string, string>[] {
    const tasks = this.tasks();
    return this.all().map(([id, s]) => serviceRow(id, s, tasks));
  }

  inspect(ref: string): Record<string, unknown> {
    const [id, s] = this.find(ref);
    const net = this.host.state.networks.find((n) => n.id === s.network);
    return serviceInspect(id, s, net ? parseCidr(net.subnet).prefixLen : 32, this.tasks());
  }

  ps(ref: string): Record<string, unknown>[] {
    const [id] = this.find(ref);
    const load = this.load;
    return taskRows(id, this.tasks(), this.hostName, (t) => load?.activeOf(t.id) ?? null);
  }

  /** Where `service ps` reads each task's live connections, cluster-wide (agent/task-load.ts). */
  useLoad(load: { activeOf(endpoint: string): number }): void {
    this.load = load;
  }

  // ---- the routing mesh's view ----------------------------------------------------------------

  /** The service and tasks behind a published port, cluster-wide; undefined when none holds it. */
  meshTargets(published: number, protocol: PortProtocol): MeshTarget | undefined {
    return meshTargetsOf(this.all(), this.tasks()).find((m) => m.published === published && m.protocol === protocol);
  }

  /** Every published port of the cluster with its tasks. */
  allMeshTargets(): MeshTarget[] {
    return meshTargetsOf(this.all(), this.tasks());
  }

  /** Called with every published port's targets whenever any of them changed; returns an unsubscribe. */
  onMeshChange(fn: (targets: MeshTarget[]) => void): () => void {
    this.meshListeners.add(fn);
    return () => this.meshListeners.delete(fn);
  }

  // ---- mutations ------------------------------------------------------------------------------

  create(req: CreateServiceRequest): Promise<{ id: string; entry: ServiceEntry }> {
    return this.exclusive(async () => {
      const name = checkServiceName(req.name);
      const mode = checkEndpointMode(req.endpointMode);
      const scheduler = checkScheduler(req.scheduler);
      const ports = (req.ports ?? []).map(checkPort);
      if (!req.network) throw new UserError('--network is required');
      const net = this.host.findNetwork(req.network);
      if (mode === 'dnsrr' && ports.length > 0) throw new UserError(DNSRR_PUBLISH_ERROR);
      const all = this.all();
      const clash = all.find(([, s]) => s.name === name);
      if (clash) throw new UserError(`name conflicts with an existing object: service ${name} already exists`, 409);
      this.checkPortsFree(ports, all);
      const id = base36Id();
      const vip = mode === 'vip' ? await this.allocVip(net, id) : null;
      const entry: ServiceEntry = { name, network: net.id, mode, vip: vip === null ? null : ipv4ToString(vip), scheduler, ports, created: new Date().toISOString() };
      try {
        await this.claimPorts(ports, id);
        try {
          this.t.set(SERVICES, id, serviceValue(entry));
        } catch (e) {
          this.releasePorts(ports);
          throw new UserError(`service ${name} does not fit one table entry (${(e as Error).message}): publish fewer ports`);
        }
      } catch (e) {
        if (vip !== null) this.alloc?.releaseIp(net, vip);
        throw e;
      }
      this.log.info('service created', { service: name, id, network: net.name, mode, vip: entry.vip, scheduler, ports: ports.length });
      return { id, entry };
    });
  }

  remove(ref: string): Promise<string> {
    return this.exclusive(async () => {
      const [id, s] = this.find(ref);
      this.t.delete(SERVICES, id);
      this.releasePorts(s.ports);
      for (const task of this.tasks()) if (task.ep.service === id) this.t.delete(TASK_WEIGHTS, task.id);
      const net = this.host.state.networks.find((n) => n.id === s.network);
      if (s.vip !== null && net) this.alloc?.releaseIp(net, parseIpv4(s.vip));
      this.log.info('service removed', { service: s.name, id, vip: s.vip });
      return id;
    });
  }

  /** `service update`: every change is checked before any is applied. */
  update(ref: string, req: UpdateServiceRequest): Promise<string> {
    return this.exclusive(async () => {
      const [id, s] = this.find(ref);
      let ports = s.ports;
      for (const rm of req.publishRm ?? []) {
        const keep = ports.filter((p) => !(p.published === rm.published && (rm.protocol === undefined || p.protocol === rm.protocol)));
        if (keep.length === ports.length) throw new UserError(`port ${rm.published}${rm.protocol ? `/${rm.protocol}` : ''} is not published by service ${s.name}`, 404);
        ports = keep;
      }
      const added = (req.publishAdd ?? []).map(checkPort);
      if (added.length > 0 && s.mode === 'dnsrr') throw new UserError(DNSRR_PUBLISH_ERROR);
      const others = this.all().filter(([other]) => other !== id);
      this.checkPortsFree(added, [...others, [id, { ...s, ports }]]);
      ports = [...ports, ...added];
      const tasks = this.tasks().filter((t) => t.ep.service === id);
      const weights = (req.taskWeights ?? []).map(({ task, weight }) => {
        const matches = tasks.filter((t) => t.ep.name === task || t.id === task || (task.length >= 4 && t.id.startsWith(task)));
        if (matches.length === 0) throw new UserError(`no task ${task} in service ${s.name}`, 404);
        if (matches.length > 1) throw new UserError(`task ${task} is ambiguous in service ${s.name} (${matches.length} matches)`);
        return { task: matches[0], weight: checkWeight(weight) };
      });
      if (ports !== s.ports) {
        await this.claimPorts(added, id);
        this.t.set(SERVICES, id, serviceValue({ ...s, ports }));
        this.releasePorts(s.ports.filter((p) => !ports.includes(p)));
      }
      for (const { task, weight } of weights) {
        const ov = asTaskWeightEntry(this.t.get(TASK_WEIGHTS, task.id));
        const at = Math.max(Date.now(), (task.ep.weightAt ?? 0) + 1, (ov?.at ?? 0) + 1);
        // The task's own host writes its endpoint entry; from elsewhere, a task-weights entry
        // (cluster-scoped) carries the change and that host folds it in.
        if (!(await this.host.setLocalWeight(task.id, weight, at))) this.t.set(TASK_WEIGHTS, task.id, taskWeightValue({ weight, at }));
      }
      this.log.info('service updated', { service: s.name, id, ports: ports.length, weights: weights.map((w) => `${w.task.ep.name}=${w.weight}`) });
      return id;
    });
  }

  /** A disconnected task's weight entry goes with it. */
  forgetTask(endpointId: string): void {
    if (this.tables?.get(TASK_WEIGHTS, endpointId) !== undefined) this.tables.delete(TASK_WEIGHTS, endpointId);
  }

  private checkPortsFree(ports: readonly ServicePort[], services: [string, ServiceEntry][]): void {
    const seen = new Set<string>();
    for (const p of ports) {
      const key = `${p.published}/${p.protocol}`;
      if (seen.has(key)) throw new UserError(`published port ${key} is given twice`);
      seen.add(key);
      const holder = portHolder(services, p);
      if (holder) throw new UserError(`port '${p.published}' is already in use by service '${holder[1].name}' (${holder[0]}) as an ingress port`, 409);
    }
  }

  /**
   * Claims published ports through the cluster's quorum IPAM (a pseudo-network per protocol), so
   * two hosts publishing the same port at the same moment cannot both win; all or none.
   */
  private async claimPorts(ports: readonly ServicePort[], id: string): Promise<void> {
    const alloc = this.alloc;
    if (!alloc) throw new UserError('services are not available until the agent has joined its cluster', 503);
    const held: ServicePort[] = [];
    try {
      for (const p of ports) {
        if (!(await alloc.claimPort(p.protocol, p.published, id))) throw new UserError(`port '${p.published}' is already in use by another service as an ingress port`, 409);
        held.push(p);
      }
    } catch (e) {
      this.releasePorts(held);
      if (e instanceof AllocationError) throw new UserError(`cannot claim the published ports: ${e.message}`, e.status);
      throw e;
    }
  }

  private releasePorts(ports: readonly ServicePort[]): void {
    for (const p of ports) this.alloc?.releasePort(p.protocol, p.published);
  }

  private async allocVip(net: NetworkRecord, id: string): Promise<number> {
    if (!this.alloc) throw new UserError('services are not available until the agent has joined its cluster', 503);
    try {
      return await this.alloc.ip(net, undefined, `vip:${id}`);
    } catch (e) {
      if (e instanceof AllocationError) throw new UserError(`no VIP for the service: ${e.message}`, e.status);
      throw e;
    }
  }

  // ---- following changes ----------------------------------------------------------------------

  /** Coalesce a burst of table events into one refresh. Also called when a network comes up here. */
  schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.refresh().catch((e: Error) => this.log.error('services refresh failed', { error: e.message }));
    });
  }

  async refresh(): Promise<void> {
    await this.foldWeights();
    const services = this.all();
    const tasks = this.tasks();
    const live = new Set<number>();
    for (const net of this.host.state.networks) {
      live.add(net.vni);
      const specs: ServiceSpec[] = computeSpecs(net.id, services, tasks);
      const json = JSON.stringify(specs);
      if ((this.sent.get(net.vni) ?? '[]') === json) continue;
      this.sent.set(net.vni, json);
      await this.engine.call({ op: 'setServices', vni: net.vni, services: specs }).catch((e: Error) => {
        this.sent.delete(net.vni);
        this.log.error('programming services failed', { network: net.name, error: e.message });
      });
    }
    for (const vni of [...this.sent.keys()]) if (!live.has(vni)) this.sent.delete(vni);
    const mesh = meshTargetsOf(services, tasks);
    const sig = JSON.stringify(mesh);
    if (sig !== this.meshSig) {
      this.meshSig = sig;
      for (const fn of this.meshListeners) fn(mesh);
    }
  }

  /** Weights set on another host for tasks of this one: written into their endpoints. */
  private async foldWeights(): Promise<void> {
    for (const [key, value] of this.tables?.entries(TASK_WEIGHTS) ?? []) {
      const ov = asTaskWeightEntry(value);
      const ep = asEndpointEntry(this.tables?.get(ENDPOINTS, key));
      if (!ov || !ep || ov.at <= (ep.weightAt ?? 0)) continue;
      await this.host.setLocalWeight(key, ov.weight, ov.at);
    }
  }
}
