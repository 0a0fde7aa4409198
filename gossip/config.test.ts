import { describe, expect, test } from 'vitest';
import { PROFILES, type GossipConfig, PROFILE_NAMES, isProfileName, resolveConfig, suspicionMin } from './config.js';

/** The keys on which a profile differs from lan. */
function delta(name: keyof typeof PROFILES): Partial<GossipConfig> {
  const base = PROFILES.lan;
  return Object.fromEntries(Object.entries(PROFILES[name]).filter(([k, v]) => v !== base[k as keyof GossipConfig]));
}

describe('gossip profiles', () => {
  test('every profile has exactly the fields of lan', () => {
    for (const name of PROFILE_NAMES) expect(Object.keys(PROFILES[name]).sort()).toEqual(Object.keys(PROFILES.lan).sort());
  });

  test("wan differs from lan exactly where memberlist's DefaultWANConfig differs from DefaultLANConfig", () => {
    expect(delta('wan')).toEqual({
      tcpTimeout: 30_000, suspicionMult: 6, pushPullInterval: 60_000, probeTimeout: 3_000, probeInterval: 5_000,
      gossipNodes: 4, gossipInterval: 500, gossipToTheDead: 60_000,
    });
    expect(suspicionMin(PROFILES.wan, 10)).toBe(30_000); // 6 * log10(10) * 5 s
  });

  test('fast keeps the ratios of lan (same multipliers, 5x shorter probe period)', () => {
    const d = delta('fast');
    for (const k of ['suspicionMult', 'suspicionMaxTimeoutMult', 'retransmitMult', 'indirectChecks', 'gossipNodes', 'awarenessMaxMultiplier', 'tcpPing']) expect(d).not.toHaveProperty(k);
    expect(PROFILES.lan.probeInterval / PROFILES.fast.probeInterval).toBe(5);
    expect(PROFILES.lan.probeTimeout / PROFILES.fast.probeTimeout).toBe(5);
  });

  test('profile names are checked; overrides apply on top of a profile', () => {
    expect(PROFILE_NAMES.filter(isProfileName)).toEqual(['lan', 'wan', 'fast']);
    expect(isProfileName('toString')).toBe(false);
    expect(isProfileName('LAN')).toBe(false);
    expect(resolveConfig('wan', { gossipNodes: 9 })).toEqual({ ...PROFILES.wan, gossipNodes: 9 });
  });
});
