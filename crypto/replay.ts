// Anti-replay window for one inbound SA (RFC 4303 §3.4.3), as a ring of 32-bit blocks without
// bit shifting (RFC 6479): advancing the right edge clears only the blocks it skips.
// The ring has 128 blocks (4096 bits, 512 bytes per SA); one block is always being refilled,
// so the window is 4064 packets: enough for GSO runs and several send sockets reordering.
//
// Check-then-commit: check(seq) before opening (cheap, no state change, drops duplicates before
// paying for the AEAD); commit(seq) only after the tag verified. commit re-checks, so two copies
// of one packet in the same batch (both passed check) cannot both be accepted.
// Sequence numbers are 32-bit (no ESN); 0 is never sent (the first packet carries 1).

const BLOCK_BITS = 32;
const BLOCKS = 128; // power of two
const BLOCK_MASK = BLOCKS - 1;
/** Packets behind the highest authenticated one that are still accepted (once each). */
export const REPLAY_WINDOW = (BLOCKS - 1) * BLOCK_BITS;

/** check/commit results (0 = fresh). Index a drop-counter array with them. */
export const Replay = {
  Ok: 0,
  /** Already accepted once. */
  Duplicate: 1,
  /** Left of the window (or seq 0): cannot be told apart from a replay. */
  TooOld: 2,
} as const;

export class ReplayWindow {
  private readonly bits = new Uint32Array(BLOCKS);
  /** Highest committed sequence number (0: nothing yet). */
  private top = 0;

  get highest(): number {
    return this.top;
  }

  /** Ok, Duplicate or TooOld for `seq` (an unsigned 32-bit value); changes nothing. */
  check(seq: number): number {
    if (seq === 0) return Replay.TooOld;
    const top = this.top;
    if (seq > top) return Replay.Ok;
    if (top - seq >= REPLAY_WINDOW) return Replay.TooOld;
    return (this.bits[(seq >>> 5) & BLOCK_MASK] >>> (seq & 31)) & 1 ? Replay.Duplicate : Replay.Ok;
  }

  /**
   * Records `seq` as accepted, after its tag verified. Returns check(seq) as it stands now: only
   * Ok means the packet may be delivered (anything else: drop it, the window is unchanged).
   */
  commit(seq: number): number {
    const r = this.check(seq);
    if (r !== Replay.Ok) return r;
    const bits = this.bits;
    if (seq > this.top) {
      const from = this.top >>> 5;
      let skip = (seq >>> 5) - from;
      if (skip > BLOCKS) skip = BLOCKS;
      for (let i = 1; i <= skip; i++) bits[(from + i) & BLOCK_MASK] = 0;
      this.top = seq;
    }
    bits[(seq >>> 5) & BLOCK_MASK] |= 1 << (seq & 31);
    return Replay.Ok;
  }

  /** Back to empty (a fresh SA). */
  reset(): void {
    this.bits.fill(0);
    this.top = 0;
  }
}
