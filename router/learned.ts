// Bounds on flood-and-learn (ingress step 6): MACs learned from static VTEPs (kernel VXLAN hosts,
// hardware VTEPs) are capped per network and age out, as the kernel VXLAN driver's FDB does
// (`maxaddress`, `ageing`), so that a sender that spoofs a static VTEP's underlay address cannot
// grow a forwarding table without bound.
//
// A learned entry is an entry of the network's remote table (network.ts) whose flags word holds
// FLAG_LEARNED and, above the flag bits, the number of sweeps since a frame from that MAC was
// last seen. The hot path only clears that count (seen(): one store, no lookup beyond the one
// checkSrcMac already did). A periodic sweep over the table (Datapath, one timer for all
// networks, every ageingMs / SWEEPS_PER_AGEING) raises it and forgets the entries that were idle
// for a whole ageing time: an idle MAC goes between ageingMs and ageingMs × (1 + 1 /
// SWEEPS_PER_AGEING) after its last frame. (The kernel rescans every 10 s, so it is up to 10 s late.)
//
// At the cap a datagram from a new MAC is dropped and counted `learnedFull`. The kernel at
// `maxaddress` refuses the entry but still delivers the frame; here a frame from a MAC with no
// entry would pass the source check unrecorded, and no reply could reach it, so it is dropped.
import { PASS } from './counters.js';
import type { NumTable } from './numtable.js';

/** Flag bit of a remote entry (beside network.ts FLAG_STATIC = 1): learned from a static VTEP. */
export const FLAG_LEARNED = 2;
/** The idle-sweep count sits above the flag bits of the flags word. */
const IDLE_SHIFT = 8;
const FLAG_BITS = (1 << IDLE_SHIFT) - 1;
/** Sweeps per ageing time: the ageing is exact to this fraction of itself. */
export const SWEEPS_PER_AGEING = 10;

export interface LearningConfig {
  /**
   * Most MACs one network learns from static VTEPs (entries; configured `peer add --mac` entries
   * and gossip entries do not count). At the cap a datagram from a new MAC is dropped
   * (`learnedFull`) until ageing or a `peer rm` makes room. 0 = learn nothing.
   */
  maxLearned: number;
  /**
   * A learned MAC with no frame from it for this long is forgotten, ms (the kernel VXLAN
   * default, 300 s). Each frame from it starts the time again. 0 = never forgotten.
   */
  ageingMs: number;
}

export const LEARNING_DEFAULTS: Readonly<LearningConfig> = { maxLearned: 4096, ageingMs: 300_000 };

/** The defaults with `over` applied, checked (control path). */
export function learningConfig(over: Partial<LearningConfig> = {}): LearningConfig {
  const c = { ...LEARNING_DEFAULTS, ...over };
  if (!Number.isInteger(c.maxLearned) || c.maxLearned < 0) throw new Error(`maxLearned must be an integer >= 0, got ${c.maxLearned}`);
  if (!Number.isFinite(c.ageingMs) || c.ageingMs < 0) throw new Error(`ageingMs must be >= 0, got ${c.ageingMs}`);
  return c;
}

/** How often the sweep runs, ms (0: no ageing, no sweep). */
export function sweepIntervalMs(c: LearningConfig): number {
  return c.ageingMs / SWEEPS_PER_AGEING;
}

/** A network's learned entries: how many there are, and the cap. */
export class LearnedMacs {
  /** Learned entries in the remote table now (network.ts keeps it exact on every insert and delete). */
  count = 0;

  constructor(readonly config: LearningConfig) {}

  get full(): boolean {
    return this.count >= this.config.maxLearned;
  }
}

/**
 * Hot path, a frame from the MAC at remote slot r came from its own static VTEP: idle count back
 * to 0 (a no-op for entries that are not learned, whose count is always 0). Returns PASS.
 */
export function seen(remote: NumTable, r: number): number {
  remote.b[r] &= FLAG_BITS;
  return PASS;
}

/**
 * One ageing sweep over a remote table (control path): every learned entry one sweep idler;
 * those idle for more than SWEEPS_PER_AGEING sweeps go to `forget`. Returns how many went.
 */
export function sweep(remote: NumTable, forget: (hi: number, lo: number) => void): number {
  let n = 0;
  for (const [hi, lo, , flags] of remote.entries()) {
    if ((flags & FLAG_LEARNED) === 0) continue;
    const idle = (flags >>> IDLE_SHIFT) + 1;
    if (idle > SWEEPS_PER_AGEING) {
      forget(hi, lo); // deletes without rehashing: the walk stays valid
      n++;
    } else {
      remote.b[remote.find(hi, lo)] = (flags & FLAG_BITS) | (idle << IDLE_SHIFT);
    }
  }
  return n;
}
