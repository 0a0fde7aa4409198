// What a container gets beside its overlay interfaces, kept in step with its attachments on
// this host (the agent's ContainerHooks):
//   1. DNS:    a resolver at 127.0.0.11 scoped to its networks, and its resolv.conf (agent/dns.ts);
//              forwarding upstream only while it is on a non-internal network
//   2. egress: one gateway-bridge interface while it is on a non-internal network (gwbridge.ts)
// The bridge and the NAT table exist while this host has a network; the last one gone, or a
// clean stop, removes them.
import type { ContainerHooks } from './hooks.js';
import type { AgentDns } from './dns.js';
import type { GatewayBridge } from './gwbridge.js';
import type { Logger } from './log.js';
import type { EndpointRecord, NetworkRecord } from './state.js';

export class ContainerServices implements ContainerHooks {
  constructor(
    private readonly networks: () => readonly NetworkRecord[],
    readonly dns: AgentDns,
    readonly gw: GatewayBridge | undefined,
    private readonly log: Logger,
  ) {}

  async networkUp(_net: NetworkRecord): Promise<void> {
    this.dns.records.changed();
    await this.gw?.ensure();
  }

  async networkGone(_net: NetworkRecord): Promise<void> {
    this.dns.records.changed();
    if (this.networks().length === 0) await this.guard('egress shutdown', () => this.gw?.shutdown());
  }

  attached(_net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    return this.sync(ep.container);
  }

  detached(_net: NetworkRecord, ep: EndpointRecord): Promise<void> {
    return this.sync(ep.container);
  }

  gatewayAddress(container: string): string | undefined {
    return this.gw?.address(container);
  }

  /** After restore: forget egress assignments of containers no longer attached anywhere. */
  async restored(): Promise<void> {
    for (const c of this.gw?.containers() ?? []) if (this.attachedTo(c).length === 0) await this.guard('egress detach', () => this.gw?.detach(c));
  }

  private attachedTo(container: string): NetworkRecord[] {
    return this.networks().filter((n) => n.endpoints.some((e) => e.container === container));
  }

  private async sync(container: string): Promise<void> {
    const nets = this.attachedTo(container);
    // 1. (only --internal networks: no external DNS, as no egress)
    await this.dns.update(container, nets.map((n) => n.name), nets.some((n) => !n.internal));
    // 2.
    const gw = this.gw;
    if (!gw) return;
    if (nets.some((n) => !n.internal)) await this.guard('egress attach', () => gw.attach(container), container);
    else await this.guard('egress detach', () => gw.detach(container), container);
  }

  private async guard(what: string, fn: () => Promise<void> | undefined, container?: string): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.log.error(`${what} failed`, { container, error: (e as Error).message });
    }
  }

  /**
   * Clean stop: resolvers closed, NAT table and bridge removed. Containers keep their
   * resolv.conf and gateway interfaces: a restarted agent serves and re-plugs them.
   */
  async stop(): Promise<void> {
    await this.dns.close();
    await this.guard('egress shutdown', () => this.gw?.shutdown());
  }
}
