// The two Lifeguard mechanisms that are state machines of their own:
// - Awareness (Local Health Multiplier): a score that rises when this node misses acks it
//   should have got (missing nacks from indirect probers, having to refute a suspicion) and
//   falls on successful probes. A node that is itself slow stretches its own probe interval
//   and timeout instead of accusing healthy peers.
// - Suspicion: a timer that starts at the maximum timeout and shrinks logarithmically with
//   each independent confirmation, down to the minimum.

import type { Clock } from './transport.js';

export class Awareness {
  private score = 0;

  constructor(private readonly max: number) {}

  /** Add delta (positive = less healthy) and clamp to [0, max-1]. */
  apply(delta: number): void {
    this.score = Math.min(this.max - 1, Math.max(0, this.score + delta));
  }

  get health(): number {
    return this.score;
  }

  scale(ms: number): number {
    return ms * (this.score + 1);
  }
}

/**
 * remaining(c) = max - (ln(c+1) / ln(k+1)) * (max - min), never below min, where c is the
 * number of confirmations from distinct members other than the one that started the
 * suspicion and k the number of confirmations expected. With k < 1 the timeout is min.
 */
export function suspicionTimeout(confirmations: number, k: number, min: number, max: number): number {
  if (k < 1) return min;
  const frac = Math.log(confirmations + 1) / Math.log(k + 1);
  return Math.max(min, Math.floor(max - frac * (max - min)));
}

export class Suspicion {
  private readonly confirmedBy = new Set<string>();
  private readonly start: number;
  private cancelTimer: () => void = () => {};
  private cancelRemind: () => void = () => {};
  private done = false;

  /**
   * remind (optional) runs every remindEvery ms while the suspicion is pending: tapmesh uses it
   * to re-send the suspicion to the suspect itself, so a refutation this node missed is sent
   * again (see Membership.correction).
   */
  constructor(
    private readonly clock: Clock,
    from: string,
    private readonly k: number,
    private readonly min: number,
    private readonly max: number,
    private readonly onTimeout: () => void,
    remind?: { every: number; fn: () => void },
  ) {
    this.start = clock.now();
    this.confirmedBy.add(from);
    this.arm();
    if (remind) {
      const again = (): void => {
        this.cancelRemind = clock.setTimer(remind.every, () => {
          if (this.done) return;
          again();
          remind.fn();
        });
      };
      again();
    }
  }

  private arm(): void {
    this.cancelTimer();
    const due = this.start + suspicionTimeout(this.confirmedBy.size - 1, this.k, this.min, this.max);
    this.cancelTimer = this.clock.setTimer(Math.max(0, due - this.clock.now()), () => {
      this.done = true;
      this.cancelRemind();
      this.onTimeout();
    });
  }

  /** A suspicion about the same node and incarnation from `from` ('' = anonymous, never
   * counted). True if it was a new independent confirmation. */
  confirm(from: string): boolean {
    if (this.done || from === '' || this.confirmedBy.has(from) || this.confirmedBy.size - 1 >= this.k) return false;
    this.confirmedBy.add(from);
    this.arm();
    return true;
  }

  get confirmations(): number {
    return this.confirmedBy.size - 1;
  }

  cancel(): void {
    this.done = true;
    this.cancelTimer();
    this.cancelRemind();
  }
}
