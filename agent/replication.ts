// Keeps the agent and the cluster's replicated tables in step: what this host creates goes into
// `networks` / `endpoints`; what other hosts write comes back as networks to bring up here and
// remote endpoints to program into the datapath. An endpoint whose host is declared down is
// suspended by the table layer (a delete event) and leaves every forwarding table; if the host
// comes back in time it returns (a create event).
import type { TableEvent } from '../gossip/index.js';
import type { Agent } from './agent.js';
import type { Cluster, EndpointEntry, NetworkEntry } from './cluster.js';
import type { EndpointRecord, NetworkRecord } from './state.js';

export class Replication {
  private unsubscribe: (() => void)[] = [];

  constructor(private readonly agent: Agent, private readonly cluster: Cluster) {}

  private get tables() {
    return this.cluster.node.tables;
  }

  get selfId(): string {
    return this.cluster.node.id;
  }

  /** Publish what this host owns, then follow the tables (replaying what is already there). */
  start(): void {
    for (const net of this.agent.state.networks) {
      if (this.tables.get('networks', net.id) === undefined) this.publishNetwork(net);
      for (const ep of net.endpoints) this.publishEndpoint(net, ep);
    }
    this.unsubscribe.push(this.tables.subscribe((e) => this.onNetwork(e), 'networks'));
    this.unsubscribe.push(this.tables.subscribe((e) => this.onEndpoint(e), 'endpoints'));
    for (const [key, value] of this.tables.entries('networks')) void this.agent.adoptNetwork(key, value as unknown as NetworkEntry);
    for (const [key, value] of this.tables.entries('endpoints')) this.agent.programRemote(key, value as unknown as EndpointEntry);
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
    void this.agent.adoptNetwork(e.key, e.value as unknown as NetworkEntry);
  }

  private onEndpoint(e: TableEvent): void {
    if (e.kind === 'delete') this.agent.unprogramRemote(e.key);
    else this.agent.programRemote(e.key, e.value as unknown as EndpointEntry);
  }

  publishNetwork(net: NetworkRecord): void {
    const v: NetworkEntry = {
      name: net.name, created: net.created, subnet: net.subnet, gateway: net.gateway, vni: net.vni, mtu: net.mtu,
      attachable: net.attachable, options: net.options, labels: net.labels, ...(net.ipRange ? { ipRange: net.ipRange } : {}),
    };
    this.tables.set('networks', net.id, v as unknown as Parameters<typeof this.tables.set>[2]);
  }

  unpublishNetwork(net: NetworkRecord): void {
    this.tables.delete('networks', net.id);
  }

  publishEndpoint(net: NetworkRecord, ep: EndpointRecord): void {
    const v: EndpointEntry = {
      network: net.id, name: ep.name, mac: ep.mac, ip: ep.ip, host: this.selfId, vtep: this.agent.cfg.dataPathAddr, aliases: ep.aliases,
    };
    this.tables.set('endpoints', ep.id, v as unknown as Parameters<typeof this.tables.set>[2]);
  }

  unpublishEndpoint(ep: EndpointRecord): void {
    this.tables.delete('endpoints', ep.id);
  }

  /** Every live endpoint of a network, on any host. */
  endpointsOf(networkId: string): (EndpointEntry & { id: string })[] {
    const out: (EndpointEntry & { id: string })[] = [];
    for (const [key, value] of this.tables.entries('endpoints')) {
      const v = value as unknown as EndpointEntry;
      if (v.network === networkId) out.push({ id: key, ...v });
    }
    return out;
  }
}
