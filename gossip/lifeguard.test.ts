// Unit tests of the small state machines: awareness, suspicion timeout, broadcast queue, and
// the profile formulas.
import { describe, expect, test } from 'vitest';
import { PROFILES, pushPullInterval, retransmitLimit, suspicionMin } from './config.js';
import { Awareness, Suspicion, suspicionTimeout } from './lifeguard.js';
import { BroadcastQueue } from './queue.js';
import { SimNetwork } from './sim.js';

describe('profile formulas (memberlist LAN numbers)', () => {
  const lan = PROFILES.lan;
  test('suspicion timeout bounds', () => {
    expect(suspicionMin(lan, 10)).toBe(4000);
    expect(suspicionMin(lan, 100)).toBe(8000);
    expect(suspicionMin(lan, 1)).toBe(4000);
    expect(lan.suspicionMaxTimeoutMult * suspicionMin(lan, 100)).toBe(48_000);
  });
  test('retransmit limit and push-pull scaling', () => {
    expect([5, 10, 99, 100, 999, 1000].map((n) => retransmitLimit(lan, n))).toEqual([4, 8, 8, 12, 12, 16]);
    expect(pushPullInterval(lan, 32)).toBe(30_000);
    expect(pushPullInterval(lan, 64)).toBe(60_000);
    expect(pushPullInterval(lan, 1000)).toBe(180_000);
  });
});

describe('awareness', () => {
  test('score stays in [0, max-1] and scales timeouts by score + 1', () => {
    const a = new Awareness(8);
    a.apply(-3);
    expect(a.health).toBe(0);
    a.apply(20);
    expect(a.health).toBe(7);
    expect(a.scale(1000)).toBe(8000);
    a.apply(-2);
    expect(a.scale(500)).toBe(3000);
  });
});

describe('suspicion', () => {
  test('timeout starts at max and falls logarithmically to min with k confirmations', () => {
    expect(suspicionTimeout(0, 2, 4000, 24_000)).toBe(24_000);
    expect(suspicionTimeout(1, 2, 4000, 24_000)).toBe(Math.floor(24_000 - (Math.log(2) / Math.log(3)) * 20_000));
    expect(suspicionTimeout(2, 2, 4000, 24_000)).toBe(4000);
    expect(suspicionTimeout(5, 2, 4000, 24_000)).toBe(4000);
    expect(suspicionTimeout(0, 0, 4000, 24_000)).toBe(4000);
  });

  test('only new, named confirmations shorten the timer; the initiator and anonymous ones do not', () => {
    const net = new SimNetwork();
    const clock = net.transport('x:1').clock;
    let firedAt = -1;
    let reminders = 0;
    const s = new Suspicion(clock, 'a', 2, 1000, 6000, () => (firedAt = net.now()), { every: 500, fn: () => reminders++ });
    net.run(100);
    expect(s.confirm('a')).toBe(false);
    expect(s.confirm('')).toBe(false);
    expect(s.confirm('b')).toBe(true);
    expect(s.confirm('b')).toBe(false);
    expect(s.confirm('c')).toBe(true);
    expect(s.confirm('d')).toBe(false); // k reached
    net.run(10_000);
    expect(firedAt).toBe(1000);
    expect(reminders).toBe(1); // at 500 ms; none after firing
  });
});

describe('broadcast queue', () => {
  const msg = (n: number, len = 10) => new Uint8Array(len).fill(n);

  test('newest and least-sent first; dropped after the retransmit limit; same key replaces', () => {
    const q = new BroadcastQueue(() => 2);
    q.enqueue('a', msg(1));
    q.enqueue('b', msg(2));
    q.enqueue('c', msg(3));
    let out: Uint8Array[] = [];
    q.take(1000, 2, out, 2);
    expect(out.map((m) => m[0])).toEqual([3, 2]);
    out = [];
    q.take(1000, 2, out, 10);
    expect(out.map((m) => m[0])).toEqual([1, 3, 2]);
    q.enqueue('b', msg(9));
    out = [];
    q.take(1000, 2, out, 10);
    expect(out.map((m) => m[0])).toEqual([9, 1]);
    expect(q.size).toBe(1);
    expect(q.transmits('b')).toBe(1);
    out = [];
    q.take(1000, 2, out, 10);
    expect(q.size).toBe(0);
  });

  test('respects the byte budget and skips what does not fit', () => {
    const q = new BroadcastQueue(() => 5);
    q.enqueue('big', msg(1, 100));
    q.enqueue('small', msg(2, 10));
    const out: Uint8Array[] = [];
    expect(q.take(50, 2, out, 10)).toBe(12);
    expect(out.map((m) => m[0])).toEqual([2]);
  });

  test('stays correct through many enqueues, invalidations and compactions', () => {
    const q = new BroadcastQueue(() => 3);
    const sent = new Map<number, number>();
    for (let round = 0; round < 2000; round++) {
      q.enqueue(`k${round % 300}`, msg(round % 256, 4));
      const out: Uint8Array[] = [];
      q.take(60, 2, out, 255);
      for (const m of out) sent.set(m[0], (sent.get(m[0]) ?? 0) + 1);
    }
    expect(q.size).toBeLessThanOrEqual(300);
    for (let i = 0; i < 50; i++) q.take(1000, 2, [], 255);
    expect(q.size).toBe(0);
  });
});
