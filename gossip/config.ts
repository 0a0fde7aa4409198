// Protocol parameters and the formulas derived from them.
//
// `lan` is memberlist's DefaultLANConfig (see docs/gossip.md for the sources) plus the
// reaping/reconnect times tapmesh adds; `fast` is a scaled-down profile for tests and the
// simulator (about 5x faster detection, same ratios between timeouts).

export interface GossipConfig {
  /** Probe one member every interval (scaled by local health). */
  probeInterval: number;
  /** Direct ack wait before indirect probes start (scaled by local health). */
  probeTimeout: number;
  /** k members asked to probe indirectly. */
  indirectChecks: number;
  /** Also try a ping over the reliable channel when UDP probes fail. */
  tcpPing: boolean;
  suspicionMult: number;
  suspicionMaxTimeoutMult: number;
  retransmitMult: number;
  gossipInterval: number;
  gossipNodes: number;
  /** Keep gossiping to dead members this long so they can learn and refute. */
  gossipToTheDead: number;
  pushPullInterval: number;
  /** Local Health Awareness: multiplier ceiling (score in [0, max-1]). */
  awarenessMaxMultiplier: number;
  /** Reliable exchange timeout (push-pull, TCP ping, IPAM votes). */
  tcpTimeout: number;
  /** Try a push-pull with one random dead member this often (heals partitions). */
  reconnectInterval: number;
  /** Forget dead members after this long (also: IPAM voter removal and block reclaim). */
  deadNodeReap: number;
  /** Forget members that left gracefully after this long. */
  leftNodeReap: number;
  /** Table tombstones are kept this long after a node learns them. */
  tombstoneReap: number;
  /** Entries of a dead owner are kept (suspended) this long, then dropped. */
  deadOwnerReap: number;
  /** How often reapers run. */
  reapInterval: number;
}

export const PROFILES: Record<'lan' | 'fast', GossipConfig> = {
  lan: {
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
  },
  fast: {
    probeInterval: 200,
    probeTimeout: 100,
    indirectChecks: 3,
    tcpPing: true,
    suspicionMult: 4,
    suspicionMaxTimeoutMult: 6,
    retransmitMult: 4,
    gossipInterval: 50,
    gossipNodes: 3,
    gossipToTheDead: 5_000,
    pushPullInterval: 2_000,
    awarenessMaxMultiplier: 8,
    tcpTimeout: 1_000,
    reconnectInterval: 500,
    deadNodeReap: 60_000,
    leftNodeReap: 10_000,
    tombstoneReap: 20_000,
    deadOwnerReap: 20_000,
    reapInterval: 500,
  },
};

export type ProfileName = keyof typeof PROFILES;

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
