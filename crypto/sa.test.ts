import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SA_LIFETIMES, InboundSa, InboundSaTable, OutboundSa, SEQ_HARD_LIMIT, createInboundSa, createOutboundSa,
  lifetimesForInterval, type AeadBackend,
} from './sa.js';
import { Replay } from './replay.js';

/** Counts create/destroy, so tests can see handles are released exactly once. */
function fakeAead(): AeadBackend & { live: Set<number> } {
  let next = 1;
  const live = new Set<number>();
  return {
    live,
    aeadCreate: () => (live.add(next), next++),
    aeadDestroy: (h: number) => live.delete(h),
  };
}
const km = (spi: number) => ({ spi, key: new Uint8Array(16), salt: new Uint8Array(4) });

describe('OutboundSa', () => {
  it('hands out 1, 2, 3... in batches and never passes 2^32-1', () => {
    const sa = new OutboundSa(0x1234, 1, 0x0a000001, 0, DEFAULT_SA_LIFETIMES);
    expect(sa.reserve(1)).toBe(1);
    expect(sa.reserve(64)).toBe(2);
    expect(sa.reserve(1)).toBe(66);
    expect(sa.sent).toBe(66);
    (sa as unknown as { seq: number }).seq = SEQ_HARD_LIMIT - 10;
    expect(sa.reserve(11)).toBe(0); // would pass the limit: refused whole
    expect(sa.sent).toBe(SEQ_HARD_LIMIT - 10);
    expect(sa.reserve(10)).toBe(SEQ_HARD_LIMIT - 9);
    expect(sa.sent).toBe(SEQ_HARD_LIMIT);
    expect(sa.reserve(1)).toBe(0);
    expect(sa.usable(0)).toBe(false);
  });

  it('rekey is due at the soft packet limit or the rekey age; unusable past the reject age', () => {
    const life = { ...DEFAULT_SA_LIFETIMES, rekeyAfterPackets: 100 };
    const sa = new OutboundSa(0x1234, 1, 1, 1000, life);
    expect(sa.rekeyDue(1000)).toBe(false);
    sa.reserve(99);
    expect(sa.rekeyDue(1000)).toBe(false);
    sa.reserve(1);
    expect(sa.rekeyDue(1000)).toBe(true);
    const t = new OutboundSa(0x1234, 1, 1, 1000, DEFAULT_SA_LIFETIMES);
    expect(t.rekeyDue(1000 + 119_999)).toBe(false);
    expect(t.rekeyDue(1000 + 120_000)).toBe(true);
    expect(t.usable(1000 + 179_999)).toBe(true);
    expect(t.usable(1000 + 180_000)).toBe(false);
    expect(DEFAULT_SA_LIFETIMES.rekeyAfterPackets).toBeLessThan(SEQ_HARD_LIMIT / 1.5);
  });

  it('release frees the handle once and stops reserve', () => {
    const aead = fakeAead();
    const sa = createOutboundSa(aead, km(0x5555), 7, 0);
    expect(aead.live.size).toBe(1);
    sa.release(aead);
    sa.release(aead);
    expect(aead.live.size).toBe(0);
    expect(sa.reserve(1)).toBe(0);
  });

  it('lifetimesForInterval scales the time limits', () => {
    const l = lifetimesForInterval(5000);
    expect(l).toMatchObject({ rekeyAfterMs: 5000, rejectAfterMs: 7500, inboundGraceMs: 2500 });
    expect(l.rekeyAfterPackets).toBe(DEFAULT_SA_LIFETIMES.rekeyAfterPackets);
    expect(() => lifetimesForInterval(10)).toThrow(RangeError);
  });
});

describe('InboundSaTable', () => {
  it('finds by SPI, refuses duplicates, removes, reuses slots', () => {
    const t = new InboundSaTable();
    const sas = Array.from({ length: 500 }, (_, i) => new InboundSa(0x80000000 + i * 7919, i + 1, 1, 0));
    for (const sa of sas) t.add(sa);
    expect(t.size).toBe(500);
    for (const sa of sas) expect(t.get(sa.spi)).toBe(sa);
    expect(t.get(0x1234)).toBeUndefined();
    expect(() => t.add(new InboundSa(sas[3].spi, 99, 1, 0))).toThrow();
    expect(t.remove(sas[3].spi)).toBe(sas[3]);
    expect(t.get(sas[3].spi)).toBeUndefined();
    expect(t.remove(sas[3].spi)).toBeUndefined();
    const again = new InboundSa(sas[3].spi, 100, 1, 0);
    t.add(again);
    expect(t.get(sas[3].spi)).toBe(again);
    expect(t.size).toBe(500);
  });

  it('a retired SA opens until its grace expiry, then expire() removes and releases it', () => {
    const aead = fakeAead();
    const t = new InboundSaTable();
    const old = createInboundSa(aead, km(0x1111), 0x0a000002, 0);
    const other = createInboundSa(aead, km(0x2222), 0x0a000003, 0);
    t.add(old);
    t.add(other);
    const fresh = createInboundSa(aead, km(0x3333), 0x0a000002, 100);
    t.add(fresh);
    expect(t.retirePeer(0x0a000002, fresh.spi, 100, 1000)).toBe(1);
    expect(old.live(1099)).toBe(true);
    expect(old.live(1100)).toBe(false);
    expect(fresh.live(1e12)).toBe(true);
    expect(t.expire(1099, aead)).toBe(0);
    expect(t.expire(1100, aead)).toBe(1);
    expect(t.get(0x1111)).toBeUndefined();
    expect(t.get(0x2222)).toBe(other);
    expect(aead.live.size).toBe(2);
  });

  it('each inbound SA has its own replay window', () => {
    const a = new InboundSa(0x1000, 1, 1, 0), b = new InboundSa(0x2000, 2, 1, 0);
    expect(a.window.commit(5)).toBe(Replay.Ok);
    expect(b.window.commit(5)).toBe(Replay.Ok);
    expect(a.window.commit(5)).toBe(Replay.Duplicate);
  });
});
