// A network's plumbing on this host, brought up new (created here, adopted from the cluster) or
// again after a restart. Bringing one up:
//   1. its sandbox namespace with br0 (agent/sandbox.ts), created if it is gone;
//   2. its TAP, opened here and moved into the sandbox;
//   3. the network in the datapath (engine addNetwork) on that TAP;
//   4. the routing mesh's source on br0 (agent/mesh-source.ts);
//   5. the container hooks (DNS, egress) and the services' VIP table told.
// Restoring (agent start/restart) brings every saved network up, then plumbs again each
// container that is still there, forgets the ones that are gone (and, once the agent has joined
// its cluster, releases them there) and programs the static peers again. The Agent decides what
// is listed and persisted; this module only makes the host match it.
import { parseIpv4 } from '../router/wire/addr.js';
import type { DatapathEngine } from '../router/engine.js';
import type { Allocator } from './allocator.js';
import type { Cluster } from './cluster.js';
import type { ContainerHooks } from './hooks.js';
import { parseCidr } from './ipam.js';
import type { Logger } from './log.js';
import { meshSourceOf } from './mesh-source.js';
import { Sandbox, resolveContainer } from './sandbox.js';
import type { Services } from './services.js';
import type { EndpointRecord, NetworkRecord, StaticPeerRecord } from './state.js';

export interface BringupOptions {
  /** Sandbox namespace names start with this (the Agent's netnsPrefix). */
  netnsPrefix: string;
  /** This host's VXLAN source address; it picks the mesh's port slice. */
  dataPathAddr: string;
  /** TAP TSO/checksum offload (AgentConfig.offload). */
  offload: boolean;
}

/** What releasing a forgotten endpoint publishes (the Agent's Publisher is one). */
export interface EndpointPublisher {
  publishEndpoint(net: NetworkRecord, ep: EndpointRecord): void;
  unpublishEndpoint(ep: EndpointRecord): void;
}

export class Bringup {
  private readonly sandboxes = new Map<string, Sandbox>();
  /** Endpoints whose container was gone at restore, to be released cluster-wide once joined. */
  private readonly forgotten: { net: NetworkRecord; ep: EndpointRecord }[] = [];

  constructor(
    private readonly opts: BringupOptions,
    private readonly engine: DatapathEngine,
    private readonly services: Pick<Services, 'schedule'>,
    /** The Agent's hooks, read at each use (they are set after construction). */
    private readonly hooks: () => ContainerHooks | undefined,
    private readonly log: Logger,
  ) {}

  /** The network's sandbox (named, not necessarily up yet). */
  sandbox(net: NetworkRecord): Sandbox {
    let sb = this.sandboxes.get(net.id);
    if (!sb) {
      sb = new Sandbox(`${this.opts.netnsPrefix}-${net.id.slice(0, 10)}`);
      this.sandboxes.set(net.id, sb);
    }
    return sb;
  }

  /** Steps 1-5. Returns true if the sandbox namespace had to be created (nothing in it survived). */
  async up(net: NetworkRecord): Promise<boolean> {
    const sb = this.sandbox(net);
    const created = await sb.ensure(net.mtu);
    const fd = await sb.attachTap(`tmt${net.vni.toString(16)}`, net.mtu, this.opts.offload);
    await this.engine.call({ op: 'addNetwork', vni: net.vni, mtu: net.mtu, tapFd: fd, vnet: this.opts.offload, encrypted: net.encrypted });
    await this.meshSource(net, sb);
    await this.hooks()?.networkUp(net);
    this.services.schedule(); // its VIP table, once it is listed
    return created;
  }

  /** 4. The routing mesh's source in the sandbox (agent/mesh-source.ts), br0 a local endpoint. */
  private async meshSource(net: NetworkRecord, sb: Sandbox): Promise<void> {
    const src = meshSourceOf(net, this.opts.dataPathAddr);
    await sb.meshSource(src);
    await this.engine.call({ op: 'setLocal', vni: net.vni, mac: src.mac, ip: parseIpv4(net.gateway) });
  }

  /** The network out of the datapath and its sandbox removed; the Agent unlists it and tells the hooks. */
  async down(net: NetworkRecord): Promise<void> {
    await this.engine.call({ op: 'removeNetwork', vni: net.vni });
    await this.sandbox(net).remove();
    this.sandboxes.delete(net.id);
  }

  /** A static peer's VTEP (and its MAC and address, if given) in the datapath. */
  async programPeer(net: NetworkRecord, p: StaticPeerRecord): Promise<void> {
    const vtep = parseIpv4(p.vtep);
    await this.engine.call({ op: 'addStaticVtep', vni: net.vni, vtep });
    if (p.mac) await this.engine.call({ op: 'setRemote', vni: net.vni, mac: p.mac, ip: p.ip ? parseIpv4(p.ip) : 0, vtep, static: true });
  }

  /**
   * Rebuild sandboxes, TAPs and datapath tables from the saved state (agent start/restart), from
   * whatever is left: a sandbox that is gone (deleted, or lost with the mount namespace of an
   * agent killed -9) is recreated, a container that still exists is plumbed again with its MAC,
   * IP and interface name, a container that is gone is forgotten (dropped from `net.endpoints`).
   * Stale state never stops the agent: a network that cannot be brought up is logged and retried
   * on the next start.
   */
  async restore(networks: readonly NetworkRecord[]): Promise<void> {
    for (const net of networks) {
      try {
        await this.restoreNetwork(net);
      } catch (e) {
        this.log.error('network could not be restored', { network: net.name, id: net.id, error: (e as Error).message });
      }
    }
  }

  private async restoreNetwork(net: NetworkRecord): Promise<void> {
    const rebuilt = await this.up(net);
    const sb = this.sandbox(net);
    const kept: EndpointRecord[] = [];
    for (const ep of net.endpoints) {
      try {
        if (rebuilt || !(await sb.hasLink(ep.veth))) {
          resolveContainer(ep.container);
          await sb.disconnect(ep.veth);
          ep.ifname = await sb.connect(ep.container, { vethName: ep.veth, mac: ep.mac, ip: ep.ip, prefixLen: parseCidr(net.subnet).prefixLen, mtu: net.mtu, ifname: ep.ifname });
        }
        await this.engine.call({ op: 'setLocal', vni: net.vni, mac: ep.mac, ip: parseIpv4(ep.ip) });
        kept.push(ep);
      } catch (e) {
        this.log.warn('endpoint dropped at restore: container is gone', { network: net.name, container: ep.container, error: String(e) });
        this.forgotten.push({ net, ep });
      }
    }
    const forgotten = net.endpoints.length - kept.length;
    net.endpoints = kept;
    for (const ep of kept) await this.hooks()?.attached(net, ep);
    for (const p of net.peers) await this.programPeer(net, p);
    this.log.info('network restored', { network: net.name, vni: net.vni, sandboxRebuilt: rebuilt, endpoints: kept.length, forgotten, peers: net.peers.length });
  }

  /**
   * Endpoints forgotten at restore leave the cluster: a fresh write then a delete of their table
   * entry (newer than what the others hold), and their addresses released once this host's copy
   * of the address table has them (it fills in by push-pull after the join).
   */
  async releaseForgotten(cluster: Cluster, alloc: Allocator, repl: EndpointPublisher): Promise<void> {
    const gone = this.forgotten.splice(0);
    if (gone.length === 0) return;
    for (const { net, ep } of gone) {
      repl.publishEndpoint(net, ep);
      repl.unpublishEndpoint(ep);
    }
    for (let attempt = 0; attempt < 20; attempt++) {
      for (const { net, ep } of gone) {
        if (cluster.ipam.allocations(net.id).some((a) => a.ip === ep.ip && a.endpoint === ep.id)) {
          alloc.releaseIp(net, parseIpv4(ep.ip));
          this.log.info('address of a forgotten endpoint released', { network: net.name, ip: ep.ip });
        }
      }
      await new Promise((res) => setTimeout(res, 1500).unref());
    }
  }
}
