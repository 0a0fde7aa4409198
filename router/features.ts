// Per-network state of the datapath features that plug in as stages (egress.ts, ingress.ts).
// Each is a field of Network that is null while the feature is off, so an absent feature costs
// the hot path one null check. The shapes are owned by the features' own modules; these are the
// slots they fill.
import type { SaStore } from '../crypto/sa-store.js';

/** crypto/ (`--opt encrypted`): the host's ESP SAs per peer VTEP, keys, replay windows. */
export type NetworkSa = SaStore;

/** balancer/: service VIPs of the network, their backends and the connection tables. */
export type { VipState as NetworkVips } from '../balancer/vips.js';

/** dns/: the embedded resolver's view of the network (names of its endpoints and services). */
export interface NetworkDns {
  readonly feature: 'dns';
}

/**
 * Bytes an ESP seal adds in front of the VXLAN header: SPI + sequence (8), IV (8) and the inner
 * UDP header (8): ESP in transport mode around the whole VXLAN datagram (router/wire/esp.ts).
 */
export const SEAL_HEAD = 24;
/** Bytes an ESP seal may add after the payload: up to 3 of padding, pad length, next header, 16-byte tag. */
export const SEAL_TAIL = 3 + 2 + 16;
