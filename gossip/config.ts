// Protocol parameters and the formulas derived from them.
//
// One config type; one base profile and the others as deltas on it, as memberlist's
// DefaultWANConfig and DefaultLocalConfig copy DefaultLANConfig and override what differs.
// - `lan`: memberlist's DefaultLANConfig (config.go; docs/gossip.md has the sources) plus the
//   reaping and reconnect times tapmesh adds.
// - `wan`: memberlist's DefaultWANConfig deltas (slower probes, longer timeouts, more
//   suspicion) for hosts across high-latency or lossy links.
// - `fast`: tests and the simulator; about 5x faster detection, same ratios between timeouts.
// Every duration is in milliseconds.

export interface GossipConfig {
  /** ms between two probes, each of one member in round-robin order (scaled by local health). */
  probeInterval: number;
  /** ms to wait for the direct ack before indirect probes start (scaled by local health). */
  probeTimeout: number;
  /** How many members are asked to probe a silent member indirectly. */
  indirectChecks: number;
  /** Also ping over the reliable (TCP) channel when the UDP probes fail (catches UDP-only loss). */
  tcpPing: boolean;
  /** Minimum suspicion timeout = suspicionMult * max(1, log10(n)) * probeInterval (see suspicionMin). */
  suspicionMult: number;
  /** Lifeguard: a suspicion starts at this multiple of the minimum and shrinks with confirmations. */
  suspicionMaxTimeoutMult: number;
  /** Each broadcast is sent retransmitMult * ceil(log10(n + 1)) times (see retransmitLimit). */
  retransmitMult: number;
  /** ms between two gossip rounds (piggybacked broadcasts to gossipNodes random members). */
  gossipInterval: number;
  /** Members sent to per gossip round. */
  gossipNodes: number;
  /** ms for which dead members still get gossip, so that they can learn it and refute. */
  gossipToTheDead: number;
  /** ms between full-state exchanges with one random member (scaled above 32 members). */
  pushPullInterval: number;
  /** Local Health Awareness: ceiling of the probe multiplier (score in [0, max - 1]). */
  awarenessMaxMultiplier: number;
  /** ms a reliable exchange may take (push-pull, TCP ping, IPAM votes). */
  tcpTimeout: number;
  /** ms between push-pull attempts with one random dead member (heals partitions). */
  reconnectInterval: number;
  /** ms after which dead members are forgotten (also: IPAM voter removal and block reclaim). */
  deadNodeReap: number;
  /** ms after which members that left gracefully are forgotten. */
  leftNodeReap: number;
  /** ms a table tombstone is kept after this node learns it (late copies of the value lose). */
  tombstoneReap: number;
  /** ms the entries of a dead owner are kept (suspended) before they are dropped. */
  deadOwnerReap: number;
  /** ms between two runs of the reapers. */
  reapInterval: number;
}

const lan: GossipConfig = {
  probeInterval: 1000,
  probeTimeout: 500,
  indirectChecks: 3,
  tcpPing: true,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  gossipInterval: 200,
  gossipNodes: 3,
  gossipToTheDead: 30_000,
  pushPullInterval: 30_000,
  awarenessMaxMultiplier: 8,
  tcpTimeout: 10_000,
  reconnectInterval: 10_000,
  deadNodeReap: 24 * 3600_000,
  leftNodeReap: 10 * 60_000,
  tombstoneReap: 30 * 60_000,
  deadOwnerReap: 30 * 60_000,
  reapInterval: 5_000,
};

export const PROFILES = {
  lan,
  wan: {
    ...lan,
    probeInterval: 5_000,
    probeTimeout: 3_000,
    suspicionMult: 6,
    gossipInterval: 500,
    gossipNodes: 4,
    gossipToTheDead: 60_000,
    pushPullInterval: 60_000,
    tcpTimeout: 30_000,
  },
  fast: {
    ...lan,
    probeInterval: 200,
    probeTimeout: 100,
    gossipInterval: 50,
    gossipToTheDead: 5_000,
    pushPullInterval: 2_000,
    tcpTimeout: 1_000,
    reconnectInterval: 500,
    deadNodeReap: 60_000,
    leftNodeReap: 10_000,
    tombstoneReap: 20_000,
    deadOwnerReap: 20_000,
    reapInterval: 500,
  },
} satisfies Record<string, GossipConfig>;

export type ProfileName = keyof typeof PROFILES;
export const PROFILE_NAMES = Object.keys(PROFILES) as ProfileName[];

export function isProfileName(s: string): s is ProfileName {
  return Object.hasOwn(PROFILES, s);
}

export function resolveConfig(profile: ProfileName | GossipConfig, overrides: Partial<GossipConfig> = {}): GossipConfig {
  const base = typeof profile === 'string' ? PROFILES[profile] : profile;
  if (!base) throw new Error(`unknown gossip profile: ${String(profile)}`);
  return { ...base, ...overrides };
}

/** Lifeguard minimum suspicion timeout: SuspicionMult * max(1, log10(n)) * ProbeInterval. */
export function suspicionMin(c: GossipConfig, n: number): number {
  return c.suspicionMult * Math.max(1, Math.log10(Math.max(1, n))) * c.probeInterval;
}

/** Retransmits per broadcast: RetransmitMult * ceil(log10(n + 1)). */
export function retransmitLimit(c: GossipConfig, n: number): number {
  return c.retransmitMult * Math.ceil(Math.log10(n + 1));
}

/** Push-pull interval grows with cluster size above 32 members (memberlist pushPullScale). */
export function pushPullInterval(c: GossipConfig, n: number): number {
  if (n <= 32) return c.pushPullInterval;
  return c.pushPullInterval * (Math.ceil(Math.log2(n) - Math.log2(32)) + 1);
}
