// Keeps the agent and the cluster's replicated tables in step: what this host creates goes into
// `networks` / `endpoints`; what other hosts write comes back as networks to bring up here and
// remote endpoints to program into the datapath. An endpoint whose host is declared down is
// suspended by the table layer (a delete event) and leaves every forwarding table; if the host
// comes back in time it returns (a create event). It knows the agent only through ReplicaHost;
// agent/main.ts wires the two together.
import type { TableEvent } from '../gossip/index.js';
import { parseIpv4 } from '../router/wire/addr.js';
import type { DatapathEngine } from '../router/engine.js';
import { AllocationError, type ClusterAllocator } from './allocator.js';
import type { Cluster } from './cluster.js';
import type { Logger } from './log.js';
import type { EndpointRecord, NetworkRecord } from './state.js';
import { ENDPOINTS, NETWORKS, asEndpointEntry, asNetworkEntry, endpointValue, networkValue, type EndpointEntry, type NetworkEntry } from './tables.js';

/** What replication needs of the agent (agent/agent.ts's Agent is one). */
export interface ReplicaHost {
  readonly state: { readonly networks: readonly NetworkRecord[] };
  readonly cfg: { readonly dataPathAddr: string };
  /** A network another host created: list it here and bring up its sandbox. */
  adoptNetwork(id: string, v: NetworkEntry): Promise<void>;
  /** A network removed elsewhere. */
  forgetNetwork(id: string): Promise<void>;
}

export class Replication {
  private unsubscribe: (() => void)[] = [];
  /** Remote endpoints programmed into the datapath, by table key. */
  private readonly remotes = new Map<string, { vni: number; mac: string }>();
  /** Remote endpoints whose network has not reached this host yet. */
  private readonly pending = new Map<string, EndpointEntry>();

  constructor(
    private readonly agent: ReplicaHost,
    private readonly cluster: Cluster,
    private readonly engine: DatapathEngine,
    private readonly alloc: ClusterAllocator,
    private readonly log: Logger,
  ) {}

  private get tables() {
    return this.cluster.node.tables;
  }

  get selfId(): string {
    return this.cluster.node.id;
  }

  /** Publish what this host owns, then follow the tables (replaying what is already there). */
  start(): void {
    for (const net of this.agent.state.networks) {
      if (this.tables.get(NETWORKS, net.id) === undefined) this.publishNetwork(net);
      for (const ep of net.endpoints) this.publishEndpoint(net, ep);
    }
    this.unsubscribe.push(this.tables.subscribe((e) => this.onNetwork(e), NETWORKS));
    this.unsubscribe.push(this.tables.subscribe((e) => this.onEndpoint(e), ENDPOINTS));
    for (const [key, value] of this.tables.entries(NETWORKS)) this.onNetworkValue(key, value);
    for (const [key, value] of this.tables.entries(ENDPOINTS)) this.onEndpointValue(key, value);
    void this.reclaim();
  }

  private async adopt(id: string, v: NetworkEntry): Promise<void> {
    await this.agent.adoptNetwork(id, v);
    for (const [key, e] of this.pending) if (e.network === id) this.programRemote(key, e);
  }

  /** A remote endpoint: its MAC lives behind its host's VTEP. */
  private programRemote(key: string, e: EndpointEntry): void {
    if (e.host === this.selfId) return;
    const net = this.agent.state.networks.find((n) => n.id === e.network);
    if (!net) {
      this.pending.set(key, e);
      return;
    }
    this.pending.delete(key);
    this.unprogramRemote(key);
    this.remotes.set(key, { vni: net.vni, mac: e.mac });
    void this.engine.call({ op: 'setRemote', vni: net.vni, mac: e.mac, ip: parseIpv4(e.ip), vtep: parseIpv4(e.vtep), static: false })
      .catch((err: Error) => this.log.error('programming remote endpoint failed', { key, error: err.message }));
  }

  private unprogramRemote(key: string): void {
    this.pending.delete(key);
    const r = this.remotes.get(key);
    if (!r) return;
    this.remotes.delete(key);
    void this.engine.call({ op: 'deleteRemote', vni: r.vni, mac: r.mac }).catch(() => undefined);
  }

  /**
   * After a restart the cluster may have forgotten (whole-cluster restart) or still hold (this
   * host alone restarted) the addresses and VNIs in use here: claim them again, retrying while
   * the cluster is not reachable. A claim lost to someone else is logged loudly.
   */
  private async reclaim(): Promise<void> {
    const node = this.cluster.node;
    const ipam = this.cluster.ipam;
    for (let attempt = 0; attempt < 60; attempt++) {
      let pending = 0;
      for (const net of this.agent.state.networks) {
        const mine = new Set(ipam.allocations(net.id).filter((a) => a.holder === node.id).map((a) => a.ip));
        for (const ep of net.endpoints) {
          if (mine.has(ep.ip)) continue;
          try {
            await this.alloc.ip(net, parseIpv4(ep.ip), ep.id);
          } catch (e) {
            if (e instanceof AllocationError && e.status === 503) pending++;
            else this.log.error('address of a local endpoint is claimed elsewhere', { network: net.name, ip: ep.ip, error: (e as Error).message });
          }
        }
        try {
          await this.alloc.vni(net.vni, new Set());
        } catch (e) {
          if (e instanceof AllocationError && e.status === 503) pending++;
        }
      }
      if (pending === 0) return;
      await new Promise((res) => setTimeout(res, 2000));
    }
  }

  stop(): void {
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
  }

  private onNetwork(e: TableEvent): void {
    if (e.kind === 'delete') {
      // Cluster-scoped: a delete is a real `network rm` somewhere, never a suspension.
      if (e.cause === 'write') void this.agent.forgetNetwork(e.key);
      return;
    }
    this.onNetworkValue(e.key, e.value);
  }

  private onEndpoint(e: TableEvent): void {
    if (e.kind === 'delete') this.unprogramRemote(e.key);
    else this.onEndpointValue(e.key, e.value);
  }

  private onNetworkValue(key: string, value: TableEvent['value']): void {
    const v = asNetworkEntry(value);
    if (v) void this.adopt(key, v);
    else this.log.error('malformed networks entry ignored', { key });
  }

  private onEndpointValue(key: string, value: TableEvent['value']): void {
    const v = asEndpointEntry(value);
    if (v) this.programRemote(key, v);
    else this.log.error('malformed endpoints entry ignored', { key });
  }

  publishNetwork(net: NetworkRecord): void {
    const v: NetworkEntry = {
      name: net.name, created: net.created, subnet: net.subnet, gateway: net.gateway, vni: net.vni, mtu: net.mtu,
      attachable: net.attachable, options: net.options, labels: net.labels, ...(net.ipRange ? { ipRange: net.ipRange } : {}),
    };
    this.tables.set(NETWORKS, net.id, networkValue(v));
  }

  unpublishNetwork(net: NetworkRecord): void {
    this.tables.delete(NETWORKS, net.id);
  }

  publishEndpoint(net: NetworkRecord, ep: EndpointRecord): void {
    const v: EndpointEntry = {
      network: net.id, name: ep.name, mac: ep.mac, ip: ep.ip, host: this.selfId, vtep: this.agent.cfg.dataPathAddr, aliases: ep.aliases,
      ...(ep.service !== undefined ? { service: ep.service, weight: ep.weight ?? 1, weightAt: ep.weightAt ?? 0 } : {}),
    };
    this.tables.set(ENDPOINTS, ep.id, endpointValue(v));
  }

  unpublishEndpoint(ep: EndpointRecord): void {
    this.tables.delete(ENDPOINTS, ep.id);
  }

  /** Every live endpoint of a network, on any host. */
  endpointsOf(networkId: string): (EndpointEntry & { id: string })[] {
    const out: (EndpointEntry & { id: string })[] = [];
    for (const [key, value] of this.tables.entries(ENDPOINTS)) {
      const v = asEndpointEntry(value);
      if (v?.network === networkId) out.push({ id: key, ...v });
    }
    return out;
  }
}
