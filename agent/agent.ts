// The agent's requests: networks, endpoints and static peers of one host, and the datapath
// programmed from them; their host plumbing (sandboxes, TAPs, restore after a restart) is
// agent/bringup.ts. Every mutation runs under one lock and is persisted, so the API can be hit
// concurrently and a restart finds everything again.
import { randomBytes } from 'node:crypto';
import { ipv4ToString, macFromIp, parseIpv4 } from '../router/wire/addr.js';
import type { DatapathEngine } from '../router/engine.js';
import { resolveContainer } from './sandbox.js';
import { Bringup, type EndpointPublisher } from './bringup.js';
import { AllocationError, ClusterAllocator, LocalAllocator, VNI_MAX, type Allocator } from './allocator.js';
import type { Cluster } from './cluster.js';
import { contains, makePool, overlaps, parseCidr, type Pool } from './ipam.js';
import { OPT_ENCRYPTED, containerName, encryptedOption, networkMtu, normalizePeer, parseIp } from './input.js';
import { Services } from './services.js';
import { UserError, type ConnectRequest, type CreateNetworkRequest, type PeerRequest } from './requests.js';
import { dockerInspect, verboseInspect } from './inspect.js';
import type { ContainerHooks } from './hooks.js';
import { base36Id } from './ids.js';
import { espStats, saView, type Encryption, type EspStats } from './encryption.js';
import type { Logger } from './log.js';
import type { EndpointEntry, NetworkEntry } from './tables.js';
import { StateStore, type AgentState, type EndpointRecord, type NetworkRecord, type StaticPeerRecord } from './state.js';

export const OPT_VNI = 'com.docker.network.driver.overlay.vxlanid_list';
export const OPT_MTU = 'com.docker.network.mtu';
export const OPT_DRIVER_MTU = 'com.docker.network.driver.mtu';

export interface AgentConfig {
  advertiseAddr: string;
  dataPathAddr: string;
  vxlanPort: number;
  stateDir: string;
  /** Sandbox namespace names start with this; default tm-<node id> so agents never collide. */
  netnsPrefix?: string;
  /** TAP TSO/checksum offload with userspace segmentation and coalescing (default on). */
  offload: boolean;
}

/** What the agent asks of cluster replication (agent/replication.ts; wired in agent/main.ts). */
export interface Publisher extends EndpointPublisher {
  publishNetwork(net: NetworkRecord): void;
  unpublishNetwork(net: NetworkRecord): void;
  /** Every live endpoint of a network, on any host. */
  endpointsOf(networkId: string): (EndpointEntry & { id: string })[];
}

export class Agent {
  private readonly store: StateStore;
  readonly state: AgentState;
  private readonly bringup: Bringup;
  private alloc: Allocator = new LocalAllocator();
  private repl: Publisher | undefined;
  private cluster: Cluster | undefined;
  private hooks: ContainerHooks | undefined;
  private enc: Encryption | undefined;
  private lock: Promise<unknown> = Promise.resolve();
  readonly netnsPrefix: string;
  /** Services and their tasks, cluster-wide (agent/services.ts). */
  readonly services: Services;
  /** The routing mesh, once started (agent/main.ts); its counters show in stats. */
  mesh: { stats(): Record<string, unknown> } | undefined;

  constructor(readonly cfg: AgentConfig, private readonly engine: DatapathEngine, private readonly log: Logger) {
    this.services = new Services(this, engine, log);
    this.store = new StateStore(cfg.stateDir);
    this.state = this.store.load(() => ({ version: 1, nodeId: randomBytes(8).toString('hex'), networks: [] }));
    this.store.save(this.state);
    this.netnsPrefix = cfg.netnsPrefix ?? `tm-${this.state.nodeId.slice(0, 6)}`;
    const opts = { netnsPrefix: this.netnsPrefix, dataPathAddr: cfg.dataPathAddr, offload: cfg.offload };
    this.bringup = new Bringup(opts, engine, this.services, () => this.hooks, log);
  }

  get nodeId(): string {
    return this.state.nodeId;
  }

  /** Allocate through the cluster's IPAM and publish through `repl` (call after restore()). */
  attachCluster(cluster: Cluster, alloc: ClusterAllocator, repl: Publisher): void {
    this.cluster = cluster;
    this.alloc = alloc;
    this.repl = repl;
    this.services.attach(cluster.node.tables, alloc, (id) => cluster.node.members().find((m) => m.id === id)?.name ?? id);
    void this.bringup.releaseForgotten(cluster, alloc, repl);
  }

  /** SAs for encrypted networks (agent/encryption.ts; wired in agent/main.ts). */
  attachEncryption(enc: Encryption): void {
    this.enc = enc;
  }

  /** The ESP counters and every SA with its age (`stats`). */
  async espStats(): Promise<EspStats> {
    return espStats(await this.engine.stats(), this.enc ? await this.enc.sas() : []);
  }

  /** DNS and egress per container (call before restore()). */
  setHooks(hooks: ContainerHooks): void {
    this.hooks = hooks;
  }

  /** Serialize mutations: concurrent API calls see each other's results. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn, fn);
    this.lock = run.catch(() => undefined);
    return run;
  }

  /** Bring every saved network up again (agent/bringup.ts restore) and persist what is left. */
  async restore(): Promise<void> {
    await this.bringup.restore(this.state.networks);
    this.store.save(this.state);
  }

  /** The routing mesh's permanent neighbours in a network's sandbox (balancer/mesh.ts setNeighbors). */
  async setMeshNeighbors(networkId: string, add: { ip: string; mac: string }[], remove: string[]): Promise<void> {
    const net = this.state.networks.find((n) => n.id === networkId);
    if (net) await this.bringup.sandbox(net).setNeighbors(add, remove);
  }

  /** The sandbox namespace of a network up on this host (where mesh connections start). */
  sandboxOf(networkId: string): string | undefined {
    return this.state.networks.some((n) => n.id === networkId) ? this.bringup.sandbox(this.findNetwork(networkId)).name : undefined;
  }

  // ---- networks -------------------------------------------------------------------------------

  findNetwork(ref: string): NetworkRecord {
    const byName = this.state.networks.find((n) => n.name === ref || n.id === ref);
    if (byName) return byName;
    const byPrefix = this.state.networks.filter((n) => ref.length > 0 && n.id.startsWith(ref));
    if (byPrefix.length === 1) return byPrefix[0];
    if (byPrefix.length > 1) throw new UserError(`network ${ref} is ambiguous (${byPrefix.length} matches)`);
    throw new UserError(`network ${ref} not found`, 404);
  }

  createNetwork(req: CreateNetworkRequest): Promise<NetworkRecord> {
    return this.exclusive(async () => {
      const net = this.validateCreate(req);
      try {
        net.vni = await this.alloc.vni(net.vni === 0 ? undefined : net.vni, new Set(this.state.networks.map((n) => n.vni)));
      } catch (e) {
        if (e instanceof AllocationError) throw new UserError(e.message, e.status);
        throw e;
      }
      net.options[OPT_VNI] = String(net.vni);
      await this.bringup.up(net);
      this.state.networks.push(net);
      this.store.save(this.state);
      this.repl?.publishNetwork(net);
      this.log.info('network created', { network: net.name, id: net.id, vni: net.vni, subnet: net.subnet });
      return net;
    });
  }

  private validateCreate(req: CreateNetworkRequest): NetworkRecord {
    const name = req.name;
    if (!name || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) throw new UserError(`invalid network name "${name ?? ''}": use letters, digits, '_', '.', '-'`);
    if (this.state.networks.some((n) => n.name === name)) throw new UserError(`network with name ${name} already exists`, 409);
    const driver = req.driver ?? 'overlay';
    if (driver !== 'overlay') throw new UserError(`driver "${driver}" is not supported: tapmesh provides the overlay driver only`);
    const options = { ...(req.options ?? {}) };
    const encrypted = encryptedOption(options);
    const subnet = req.subnet ?? this.freeSubnet();
    let pool: Pool;
    try {
      pool = makePool({ subnet, gateway: req.gateway, ipRange: req.ipRange });
    } catch (e) {
      throw new UserError((e as Error).message);
    }
    for (const n of this.state.networks) {
      if (overlaps(parseCidr(n.subnet), pool.subnet)) throw new UserError(`invalid pool request: Pool overlaps with other one on this address space (${n.name} has ${n.subnet})`, 409);
    }
    const vni = this.requestedVni(options[OPT_VNI]); // 0 = pick one
    const mtu = networkMtu(options, encrypted, { mtu: OPT_MTU, driverMtu: OPT_DRIVER_MTU });
    options[OPT_VNI] = String(vni);
    options[OPT_MTU] = String(mtu);
    const canonical = `${ipv4ToString(pool.subnet.base)}/${pool.subnet.prefixLen}`;
    return {
      id: base36Id(25), name, created: new Date().toISOString(), driver: 'overlay',
      subnet: canonical, gateway: ipv4ToString(pool.gateway), ipRange: req.ipRange, vni, mtu,
      encrypted, attachable: req.attachable ?? false, internal: req.internal ?? false, options, labels: req.labels ?? {},
      endpoints: [], peers: [],
    };
  }

  private freeSubnet(): string {
    for (let i = 0; i < 256 * 256; i++) {
      const cand = `10.${(i >> 8) & 255}.${i & 255}.0/24`;
      if (i === 0) continue;
      const c = parseCidr(cand);
      if (!this.state.networks.some((n) => overlaps(parseCidr(n.subnet), c))) return cand;
    }
    throw new UserError('no free /24 left in 10.0.0.0/8 for a new network; pass --subnet');
  }

  private requestedVni(requested: string | undefined): number {
    if (requested === undefined) return 0;
    const first = requested.split(',')[0].trim();
    if (!/^\d+$/.test(first)) throw new UserError(`invalid ${OPT_VNI} "${requested}": expected a VXLAN ID`);
    const vni = Number(first);
    if (vni < 1 || vni > VNI_MAX) throw new UserError(`VXLAN ID ${vni} out of range (1-${VNI_MAX})`);
    if (this.state.networks.some((n) => n.vni === vni)) throw new UserError(`VXLAN ID ${vni} is already used by another network`, 409);
    return vni;
  }

  removeNetwork(ref: string): Promise<NetworkRecord> {
    return this.exclusive(async () => {
      const net = this.findNetwork(ref);
      const svc = this.services.onNetwork(net.id)[0];
      if (svc) throw new UserError(`network ${net.name} is in use by service ${svc[1].name}`, 409);
      const anywhere = this.repl?.endpointsOf(net.id).length ?? 0;
      if (net.endpoints.length > 0 || anywhere > 0) {
        throw new UserError(`error while removing network: network ${net.name} id ${net.id} has active endpoints`, 409);
      }
      this.repl?.unpublishNetwork(net);
      if (this.alloc instanceof ClusterAllocator) this.alloc.releaseVni(net.vni);
      await this.tearDown(net);
      this.log.info('network removed', { network: net.name, id: net.id });
      return net;
    });
  }

  private async tearDown(net: NetworkRecord): Promise<void> {
    await this.bringup.down(net);
    this.state.networks = this.state.networks.filter((n) => n !== net);
    this.store.save(this.state);
    await this.hooks?.networkGone(net);
  }

  // ---- replication (called by Replication on table events) ------------------------------------

  /** A network another host created: list it here and bring up its sandbox. */
  adoptNetwork(id: string, v: NetworkEntry): Promise<void> {
    return this.exclusive(async () => {
      if (this.state.networks.some((n) => n.id === id)) return;
      const clash = this.state.networks.find((n) => n.name === v.name || n.vni === v.vni);
      if (clash) {
        this.log.error('replicated network clashes with a local one; not adopted', { id, name: v.name, vni: v.vni, local: clash.id });
        return;
      }
      const net: NetworkRecord = {
        id, name: v.name, created: v.created, driver: 'overlay', subnet: v.subnet, gateway: v.gateway, ipRange: v.ipRange,
        vni: v.vni, mtu: v.mtu, encrypted: OPT_ENCRYPTED in v.options, attachable: v.attachable, internal: v.internal ?? false, options: v.options, labels: v.labels, endpoints: [], peers: [],
      };
      // Listed at once (as Docker lists swarm networks before any local sandbox exists), then
      // brought up; a failed bring-up takes it off the list again.
      this.state.networks.push(net);
      try {
        await this.bringup.up(net);
      } catch (e) {
        this.state.networks = this.state.networks.filter((n) => n !== net);
        this.log.error('could not bring up a replicated network', { network: net.name, id, error: (e as Error).message });
        return;
      }
      this.store.save(this.state);
      this.log.info('network adopted from the cluster', { network: net.name, id, vni: net.vni });
    });
  }

  /** A network removed elsewhere. */
  forgetNetwork(id: string): Promise<void> {
    return this.exclusive(async () => {
      const net = this.state.networks.find((n) => n.id === id);
      if (!net) return;
      if (net.endpoints.length > 0) {
        this.log.error('network removed elsewhere still has local endpoints; kept', { network: net.name, id });
        return;
      }
      await this.tearDown(net);
      this.log.info('network removed by the cluster', { network: net.name, id });
    });
  }

  // ---- endpoints ------------------------------------------------------------------------------

  connect(ref: string, req: ConnectRequest): Promise<EndpointRecord> {
    return this.exclusive(async () => {
      const net = this.findNetwork(ref);
      if (!req.container) throw new UserError('container is required');
      let nsPath: string;
      try {
        nsPath = resolveContainer(req.container);
      } catch (e) {
        throw new UserError((e as Error).message, 404);
      }
      const name = containerName(req.container);
      const task = this.services.taskFields(req, net); // {} unless --service
      if (net.endpoints.some((e) => e.container === req.container || e.name === name)) {
        throw new UserError(`endpoint with name ${name} already exists in network ${net.name}`, 409);
      }
      const id = randomBytes(32).toString('hex');
      let ip: number;
      try {
        ip = await this.alloc.ip(net, req.ip === undefined ? undefined : parseIp(req.ip), id);
      } catch (e) {
        if (e instanceof AllocationError) throw new UserError(e.message, e.status);
        throw e;
      }
      const mac = macFromIp(ip);
      const ep: EndpointRecord = {
        id, container: req.container, name, ifname: '', veth: `ve${id.slice(0, 10)}`, mac, ip: ipv4ToString(ip), aliases: req.aliases ?? [],
        ...task,
      };
      try {
        ep.ifname = await this.bringup.sandbox(net).connect(req.container, { vethName: ep.veth, mac, ip: ep.ip, prefixLen: parseCidr(net.subnet).prefixLen, mtu: net.mtu });
        await this.engine.call({ op: 'setLocal', vni: net.vni, mac, ip });
      } catch (e) {
        this.alloc.releaseIp(net, ip);
        throw e;
      }
      net.endpoints.push(ep);
      this.store.save(this.state);
      this.repl?.publishEndpoint(net, ep);
      await this.hooks?.attached(net, ep);
      this.log.info('container connected', { network: net.name, container: name, ip: ep.ip, mac, ns: nsPath });
      return ep;
    });
  }

  disconnect(ref: string, container: string): Promise<EndpointRecord> {
    return this.exclusive(async () => {
      const net = this.findNetwork(ref);
      const ep = net.endpoints.find((e) => e.container === container || e.name === container || e.id === container);
      if (!ep) throw new UserError(`container ${container} is not connected to network ${net.name}`, 404);
      this.repl?.unpublishEndpoint(ep);
      if (ep.service !== undefined) this.services.forgetTask(ep.id);
      await this.engine.call({ op: 'deleteLocal', vni: net.vni, mac: ep.mac });
      await this.bringup.sandbox(net).disconnect(ep.veth);
      this.alloc.releaseIp(net, parseIpv4(ep.ip));
      net.endpoints = net.endpoints.filter((e) => e !== ep);
      this.store.save(this.state);
      await this.hooks?.detached(net, ep);
      this.log.info('container disconnected', { network: net.name, container: ep.name });
      return ep;
    });
  }

  /** A weight for a task of this host (from `service update`, here or folded in from elsewhere). */
  setLocalWeight(endpointId: string, weight: number, at: number): Promise<boolean> {
    return this.exclusive(async () => {
      for (const net of this.state.networks) {
        const ep = net.endpoints.find((e) => e.id === endpointId);
        if (!ep || ep.service === undefined) continue;
        if (at <= (ep.weightAt ?? 0)) return true; // an older change arriving late
        ep.weight = weight;
        ep.weightAt = at;
        this.store.save(this.state);
        this.repl?.publishEndpoint(net, ep);
        this.log.info('task weight set', { network: net.name, container: ep.name, weight });
        return true;
      }
      return false;
    });
  }

  // ---- static peers -----------------------------------------------------------------------------

  addPeer(ref: string, req: PeerRequest): Promise<StaticPeerRecord> {
    return this.exclusive(async () => {
      const net = this.findNetwork(ref);
      const peer = normalizePeer(req);
      if (net.encrypted) throw new UserError(`network ${net.name} is encrypted: static VXLAN peers cannot take part (they have no SA), so none can be added`);
      if (peer.ip !== undefined) {
        const ipn = parseIpv4(peer.ip);
        if (net.endpoints.some((e) => e.ip === peer.ip)) throw new UserError(`address ${peer.ip} belongs to a local endpoint of ${net.name}`, 409);
        if (!contains(parseCidr(net.subnet), ipn)) throw new UserError(`address ${peer.ip} is not in subnet ${net.subnet}`);
      }
      if (net.peers.some((p) => p.vtep === peer.vtep && p.mac === peer.mac && p.ip === peer.ip)) throw new UserError('that peer is already configured', 409);
      await this.bringup.programPeer(net, peer);
      net.peers.push(peer);
      this.store.save(this.state);
      this.log.info('static peer added', { network: net.name, ...peer });
      return peer;
    });
  }

  removePeer(ref: string, req: PeerRequest): Promise<number> {
    return this.exclusive(async () => {
      const net = this.findNetwork(ref);
      const peer = normalizePeer(req);
      const match = (p: StaticPeerRecord) => p.vtep === peer.vtep && (peer.mac === undefined || p.mac === peer.mac);
      const gone = net.peers.filter(match);
      if (gone.length === 0) throw new UserError(`no static peer ${peer.vtep}${peer.mac ? ` ${peer.mac}` : ''} on network ${net.name}`, 404);
      net.peers = net.peers.filter((p) => !match(p));
      for (const p of gone) if (p.mac) await this.engine.call({ op: 'deleteRemote', vni: net.vni, mac: p.mac });
      if (!net.peers.some((p) => p.vtep === peer.vtep)) {
        await this.engine.call({ op: 'deleteStaticVtep', vni: net.vni, vtep: parseIpv4(peer.vtep) });
      }
      this.store.save(this.state);
      this.log.info('static peer removed', { network: net.name, vtep: peer.vtep, entries: gone.length });
      return gone.length;
    });
  }

  async stats(): Promise<Awaited<ReturnType<DatapathEngine['stats']>>> {
    return this.engine.stats();
  }

  /** Docker-shaped `network inspect` object. */
  inspect(net: NetworkRecord): Record<string, unknown> {
    return dockerInspect(net, (c) => this.hooks?.gatewayAddress(c));
  }

  /** `network inspect --verbose`: adds the hosts on the network, every endpoint cluster-wide, and this host's forwarding table. */
  async inspectVerbose(net: NetworkRecord): Promise<Record<string, unknown>> {
    const eps = this.repl?.endpointsOf(net.id) ?? net.endpoints.map((e) => ({ id: e.id, name: e.name, mac: e.mac, ip: e.ip, host: this.nodeId, vtep: this.cfg.dataPathAddr }));
    const names = new Map((this.cluster?.node.members() ?? []).map((m) => [m.id, m.name]));
    const v = verboseInspect(net, eps, names, await this.engine.call({ op: 'forwarding', vni: net.vni }));
    return net.encrypted ? { ...v, SecurityAssociations: saView(this.enc ? await this.enc.sas() : []) } : v;
  }
}
