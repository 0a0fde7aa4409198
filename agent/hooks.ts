// The agent's per-container hooks: what it tells the services beside the overlay.
import type { EndpointRecord, NetworkRecord } from './state.js';

/**
 * What lives beside the overlay per container (DNS at 127.0.0.11, egress: agent/containers.ts),
 * told after each change, under the agent's lock. Hooks log their own failures and never throw:
 * the overlay works without them.
 */
export interface ContainerHooks {
  /** A network is up on this host (created, adopted or restored). */
  networkUp(net: NetworkRecord): Promise<void>;
  /** A network left this host (removed here or by the cluster). */
  networkGone(net: NetworkRecord): Promise<void>;
  /** The endpoint's container was connected (or restored at start); `net.endpoints` has it. */
  attached(net: NetworkRecord, ep: EndpointRecord): Promise<void>;
  /** The endpoint's container was disconnected; `net.endpoints` no longer has it. */
  detached(net: NetworkRecord, ep: EndpointRecord): Promise<void>;
  /** The container's gateway-bridge address (CIDR), for `network inspect`. */
  gatewayAddress(container: string): string | undefined;
}
