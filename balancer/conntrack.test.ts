import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ConnTable, CtRefuse, CtState, CtVerdict, type ConnListener } from './conntrack.js';

const TCP = 6;
const UDP = 17;
const SYN = 0x02;
const ACK = 0x10;
const FIN = 0x01;
const RST = 0x04;
const VIP = 0x0a0000fe;
const B1 = 0x0a000011;

class Counts implements ConnListener {
  active = 0;
  inactive = 0;
  countChange(_s: number, _b: number, da: number, di: number): void {
    this.active += da;
    this.inactive += di;
  }
}

function tcpFlow(ct: ConnTable, client: number, port: number, now = 0): number {
  return ct.insert(TCP, client, port, VIP, 80, B1, 8080, 0x0242, 0x0a000011, 3, 1, now);
}

describe('conntrack', () => {
  it('finds entries by the client tuple and by the reply tuple, keeping the backend', () => {
    const ct = new ConnTable({ maxEntries: 1024 });
    const e = tcpFlow(ct, 0x0a000005, 40000);
    expect(e).toBeGreaterThanOrEqual(0);
    expect(ct.lookup(TCP, 0x0a000005, 40000, VIP, 80)).toBe(e);
    expect(ct.lookup(UDP, 0x0a000005, 40000, VIP, 80)).toBe(-1);
    expect(ct.lookup(TCP, 0x0a000005, 40001, VIP, 80)).toBe(-1);
    expect(ct.lookupReply(TCP, B1, 8080, 0x0a000005, 40000)).toBe(e);
    expect([ct.backendIp[e], ct.backendPort[e], ct.backendMacHi[e], ct.backendMacLo[e], ct.svc[e], ct.backend[e]])
      .toEqual([B1, 8080, 0x0242, 0x0a000011, 3, 1]);
    expect(tcpFlow(ct, 0x0a000005, 40000)).toBe(CtRefuse.Exists);
    // Same client ip:port to the same backend through another VIP: replies would be ambiguous.
    expect(ct.insert(TCP, 0x0a000005, 40000, VIP + 1, 80, B1, 8080, 0, 0, 4, 0, 0)).toBe(CtRefuse.ReplyTupleTaken);
    expect(ct.stats.refusedReplyTuple).toBe(1);
  });

  it('TCP follows SYN/FIN, not an idle timer; half-close has no timer; both FINs linger then go', () => {
    const counts = new Counts();
    const ct = new ConnTable({ maxEntries: 64, halfOpenMs: 1000, finLingerMs: 500 }, counts);
    const e = tcpFlow(ct, 0x0a000005, 40000, 0);
    expect(ct.state[e]).toBe(CtState.HalfOpen);
    expect(ct.ttl(e, 0)).toBe(1000);
    expect([counts.active, counts.inactive]).toEqual([0, 1]);
    expect(ct.reply(e, SYN | ACK, 1, 10)).toBe(CtVerdict.Pass);
    expect(ct.state[e]).toBe(CtState.Established);
    expect([counts.active, counts.inactive]).toEqual([1, 0]);
    expect(ct.forward(e, ACK, 777, 11)).toBe(CtVerdict.Pass);
    expect(ct.clientAck[e]).toBe(777);
    // Idle for a day: still there.
    ct.sweep(86_400_000);
    expect(ct.lookup(TCP, 0x0a000005, 40000, VIP, 80)).toBe(e);
    expect(ct.ttl(e, 0)).toBe(Infinity);
    // Client half-closes: no timer, data from the backend still passes, for a day.
    ct.forward(e, FIN | ACK, 778, 86_400_001);
    expect(ct.state[e]).toBe(CtState.HalfClosed);
    expect(ct.ttl(e, 0)).toBe(Infinity);
    ct.sweep(2 * 86_400_000);
    expect(ct.reply(e, ACK, 5, 2 * 86_400_000)).toBe(CtVerdict.Pass);
    expect(ct.backendAck[e]).toBe(5);
    // Backend FIN: closing, lingers 500 ms.
    const t = 2 * 86_400_000 + 1;
    ct.reply(e, FIN | ACK, 6, t);
    expect(ct.state[e]).toBe(CtState.Closing);
    expect(ct.ttl(e, t)).toBe(500);
    ct.sweep(t + 499);
    expect(ct.size).toBe(1);
    ct.sweep(t + 500);
    expect(ct.size).toBe(0);
    expect(ct.stats.closedFin).toBe(1);
    expect([counts.active, counts.inactive]).toEqual([0, 0]);
  });

  it('RST from either side ends the entry after that packet; SYN on a closing entry is Stale', () => {
    const counts = new Counts();
    const ct = new ConnTable({ maxEntries: 64 }, counts);
    const a = tcpFlow(ct, 1, 1);
    ct.reply(a, SYN | ACK, 0, 0);
    expect(ct.forward(a, RST, 0, 1)).toBe(CtVerdict.PassLast);
    expect(ct.lookup(TCP, 1, 1, VIP, 80)).toBe(-1);
    const b = tcpFlow(ct, 2, 2);
    expect(ct.reply(b, RST | ACK, 0, 1)).toBe(CtVerdict.PassLast);
    const c = tcpFlow(ct, 3, 3);
    ct.reply(c, SYN | ACK, 0, 0);
    ct.forward(c, FIN | ACK, 0, 1);
    ct.reply(c, FIN | ACK, 0, 1);
    expect(ct.forward(c, SYN, 0, 2)).toBe(CtVerdict.Stale);
    expect(ct.lookup(TCP, 3, 3, VIP, 80)).toBe(-1);
    expect([ct.stats.closedRst, ct.stats.stale, ct.size]).toEqual([2, 1, 0]);
    expect([counts.active, counts.inactive]).toEqual([0, 0]);
  });

  it('a SYN-ACK on a closing entry is Stale (a direct connection from the same client port), on an open one it passes', () => {
    const counts = new Counts();
    const ct = new ConnTable({ maxEntries: 64 }, counts);
    const e = tcpFlow(ct, 4, 4);
    ct.reply(e, SYN | ACK, 0, 0);
    expect(ct.reply(e, SYN | ACK, 0, 1)).toBe(CtVerdict.Pass); // a retransmitted SYN-ACK
    ct.forward(e, FIN | ACK, 0, 2);
    expect(ct.reply(e, SYN | ACK, 0, 3)).toBe(CtVerdict.Pass); // half-closed: still this flow
    ct.reply(e, FIN | ACK, 0, 4);
    expect(ct.state[e]).toBe(CtState.Closing);
    expect(ct.reply(e, SYN | ACK, 0, 5)).toBe(CtVerdict.Stale);
    expect(ct.lookupReply(TCP, B1, 8080, 4, 4)).toBe(-1);
    expect([ct.stats.stale, ct.size]).toEqual([1, 0]);
    expect([counts.active, counts.inactive]).toEqual([0, 0]);
  });

  it('UDP expires after the configured idle time; traffic in either direction refreshes it', () => {
    const ct = new ConnTable({ maxEntries: 64, udpIdleMs: 3000 });
    const e = ct.insert(UDP, 5, 53, VIP, 53, B1, 53, 0, 0, 0, 0, 0);
    ct.sweep(2999);
    expect(ct.size).toBe(1);
    ct.reply(e, 0, 0, 2000);
    ct.sweep(4999);
    expect(ct.size).toBe(1);
    ct.forward(e, 0, 0, 4000);
    ct.sweep(6999);
    expect(ct.size).toBe(1);
    ct.sweep(7000);
    expect(ct.size).toBe(0);
    expect(ct.stats.expiredUdp).toBe(1);
  });

  it('a SYN flood stays within maxHalfOpen and never displaces established connections', () => {
    const ct = new ConnTable({ maxEntries: 4096, maxHalfOpen: 256, halfOpenMs: 5000 });
    const est: number[] = [];
    for (let i = 0; i < 100; i++) {
      const e = tcpFlow(ct, 0x0a000100 + i, 1000);
      ct.reply(e, SYN | ACK, 0, 0);
      est.push(e);
    }
    let refused = 0;
    let maxHalf = 0;
    for (let i = 0; i < 100_000; i++) {
      if (tcpFlow(ct, 0xc0000000 + i, i & 0xffff, 1) < 0) refused++;
      maxHalf = Math.max(maxHalf, ct.halfOpen);
    }
    expect(refused).toBe(0);
    expect(maxHalf).toBe(256);
    expect(ct.size).toBe(356);
    expect(ct.stats.evictedHalfOpen).toBe(100_000 - 256);
    for (let i = 0; i < 100; i++) expect(ct.lookup(TCP, 0x0a000100 + i, 1000, VIP, 80)).toBe(est[i]);
    // Half-open entries also expire on their own.
    ct.sweep(5001, 1000);
    expect(ct.halfOpen).toBe(0);
    expect(ct.size).toBe(100);
  });

  it('at maxEntries new flows are refused and counted; established ones are never evicted', () => {
    const ct = new ConnTable({ maxEntries: 64, maxHalfOpen: 64, maxUdp: 64 });
    for (let i = 0; i < 64; i++) ct.reply(tcpFlow(ct, 100 + i, 1), SYN | ACK, 0, 0);
    expect(tcpFlow(ct, 999, 1)).toBe(CtRefuse.Full);
    expect(ct.insert(UDP, 999, 1, VIP, 53, B1, 53, 0, 0, 0, 0, 0)).toBe(CtRefuse.Full);
    expect(ct.stats.refusedFull).toBe(2);
    for (let i = 0; i < 64; i++) expect(ct.lookup(TCP, 100 + i, 1, VIP, 80)).toBeGreaterThanOrEqual(0);
    // Once one closes, a new flow fits.
    ct.forward(ct.lookup(TCP, 100, 1, VIP, 80), RST, 0, 0);
    expect(tcpFlow(ct, 999, 1)).toBeGreaterThanOrEqual(0);
  });

  it('UDP flows beyond maxUdp evict the least recently used UDP flow', () => {
    const ct = new ConnTable({ maxEntries: 64, maxUdp: 4 });
    for (let i = 0; i < 4; i++) ct.insert(UDP, i, 1, VIP, 53, B1, 53, 0, 0, 0, 0, i);
    ct.forward(ct.lookup(UDP, 0, 1, VIP, 53), 0, 0, 10); // flow 0 is now the most recent
    ct.insert(UDP, 9, 1, VIP, 53, B1, 53, 0, 0, 0, 0, 11);
    expect(ct.udpFlows).toBe(4);
    expect(ct.lookup(UDP, 1, 1, VIP, 53)).toBe(-1);
    expect(ct.lookup(UDP, 0, 1, VIP, 53)).toBeGreaterThanOrEqual(0);
    expect(ct.stats.evictedUdp).toBe(1);
  });

  it('indexes agree with a model under random insert/remove churn (backward-shift deletion)', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(300), fc.nat(3)), { maxLength: 600 }), (ops) => {
      const ct = new ConnTable({ maxEntries: 128, maxHalfOpen: 128 });
      const model = new Map<string, number>();
      for (const [ins, c, p] of ops) {
        const k = `${c}:${p}`;
        if (ins) {
          const e = ct.insert(TCP, c, p, VIP, 80, B1 + c, p, 0, 0, 0, 0, 0);
          if (model.has(k)) expect(e).toBe(CtRefuse.Exists);
          else if (e >= 0) model.set(k, e);
        } else if (model.has(k)) {
          ct.remove(model.get(k)!);
          model.delete(k);
        }
      }
      expect(ct.size).toBe(model.size);
      for (let c = 0; c <= 300; c++) {
        for (let p = 0; p <= 3; p++) {
          const want = model.get(`${c}:${p}`) ?? -1;
          expect(ct.lookup(TCP, c, p, VIP, 80)).toBe(want);
          expect(ct.lookupReply(TCP, B1 + c, p, c, p)).toBe(want);
        }
      }
    }), { numRuns: 40 });
  });

  it('hairpin flows are found by the SNAT reply tuple, and hairpin ports never collide', () => {
    const ct = new ConnTable({ maxEntries: 4096, maxHalfOpen: 4096 });
    const client = 0x0a000005;
    const used = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const p = ct.allocHairpinPort(TCP, B1, 80, VIP, 40000 + (i % 3));
      expect(p).toBeGreaterThanOrEqual(32768);
      expect(p).toBeLessThan(61000);
      expect(used.has(p)).toBe(false);
      used.add(p);
      const e = ct.insert(TCP, client, 40000 + i, VIP, 80, B1, 80, 0, 0, 0, 0, 0, VIP, p);
      expect(ct.isHairpin(e)).toBe(true);
      expect(ct.lookupReply(TCP, B1, 80, VIP, p)).toBe(e);
      expect(ct.lookupReply(TCP, B1, 80, client, 40000 + i)).toBe(-1);
      expect([ct.replyIp[e], ct.replyPort[e]]).toEqual([VIP, p]);
    }
    const direct = ct.insert(TCP, client, 1, VIP, 80, B1, 80, 0, 0, 0, 0, 0);
    expect(ct.isHairpin(direct)).toBe(false);
  });

  it('rejects a nonsensical config', () => {
    expect(() => new ConnTable({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => new ConnTable({ udpIdleMs: Number.NaN })).toThrow(RangeError);
  });
});
