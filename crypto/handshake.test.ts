// The SA exchange on a simulated pair of hosts: messages lost, duplicated and reordered at random;
// at every step a sender's outbound SA must match an inbound SA the receiver installed (so nothing
// it seals is lost), and once the network heals both directions agree on fresh keys.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { generateX25519, randomSpi, type SaKeyMaterial } from './keys.js';
import { PairHandshake, asHsMessage, type HandshakeConfig, type HsActions, type HsMessage } from './handshake.js';

const CLUSTER = { id: 'k1', key: new Uint8Array(randomBytes(32)) };

interface SimHost {
  id: string;
  hs: PairHandshake;
  /** Inbound SAs by SPI (key hex). */
  inbound: Map<number, string>;
  out: SaKeyMaterial | undefined;
  restarts: number;
}

type Keys = () => { id: string; key: Uint8Array }[];
const IDS = { A: generateX25519(), B: generateX25519() };

function host(id: 'A' | 'B', boot: string, keys: Keys = () => [CLUSTER]): SimHost {
  const peer = id === 'A' ? 'B' : 'A';
  const cfg: HandshakeConfig = {
    localId: id, boot, identity: IDS[id], clusterKeys: keys, newSpi: () => randomSpi(), rekeyAfterMs: 5000, rekeyAfterPackets: 1000, retryMs: 300,
  };
  return { id, hs: new PairHandshake(cfg, peer, IDS[peer].publicKey), inbound: new Map(), out: undefined, restarts: 0 };
}

function pair(opts: { keysB?: Keys } = {}): [SimHost, SimHost] {
  return [host('A', 'a1'), host('B', 'b1', opts.keysB)];
}

const hex = (k: SaKeyMaterial): string => Buffer.concat([k.key, k.salt]).toString('hex');

/** Applies actions on host h; returns the message to put on the wire. */
function apply(h: SimHost, act: HsActions, now: number): HsMessage | undefined {
  if (act.installIn) h.inbound.set(act.installIn.spi, hex(act.installIn));
  if (act.installOut) h.out = act.installOut;
  if (act.peerRestarted) {
    h.restarts++;
    const r = h.hs.rekey(now);
    return r.send ?? act.send; // (in the agent both go out; here the rekey's offer is what matters)
  }
  return act.send;
}

/** Whatever `from` seals opens at `to`. */
function consistent(from: SimHost, to: SimHost): boolean {
  return from.out === undefined || to.inbound.get(from.out.spi) === hex(from.out);
}

describe('PairHandshake', () => {
  it('a clean exchange: both directions get matching keys, the sender switches only after the accept', () => {
    const [a, b] = pair();
    const offer = apply(a, a.hs.tick(0), 0)!;
    expect(offer.k).toBe('offer');
    expect(a.out).toBeUndefined();
    const accept = apply(b, b.hs.receive(offer, 1), 1)!;
    expect(accept.k).toBe('accept');
    expect(b.inbound.size).toBe(1);
    expect(a.out).toBeUndefined(); // not before the accept
    apply(a, a.hs.receive(accept, 2), 2);
    expect(consistent(a, b)).toBe(true);
    expect(a.out).toBeDefined();
    // The other direction is independent.
    const offer2 = apply(b, b.hs.tick(3), 3)!;
    apply(b, b.hs.receive(apply(a, a.hs.receive(offer2, 4), 4)!, 5), 5);
    expect(consistent(b, a)).toBe(true);
    expect(hex(b.out!)).not.toBe(hex(a.out!));
  });

  it('rekeys by time and by volume, each generation with fresh keys and SPIs', () => {
    const [a, b] = pair();
    const run = (now: number, sent = 0) => {
      const m = apply(a, a.hs.tick(now, sent), now);
      if (m) apply(a, a.hs.receive(apply(b, b.hs.receive(m, now), now)!, now), now);
    };
    run(0);
    const first = a.out!;
    run(4999);
    expect(a.out).toBe(first);
    run(5000);
    expect(a.out!.spi).not.toBe(first.spi);
    expect(hex(a.out!)).not.toBe(hex(first));
    const second = a.out!;
    run(5100, 999);
    expect(a.out).toBe(second);
    run(5200, 1000);
    expect(a.out).not.toBe(second);
    expect(consistent(a, b)).toBe(true);
  });

  it('a repeated offer gets the same accept and installs nothing twice; a stale offer is refused', () => {
    const [a, b] = pair();
    const offer1 = apply(a, a.hs.tick(0), 0)!;
    const acc1 = b.hs.receive(offer1, 0);
    apply(b, acc1, 0);
    const again = b.hs.receive(offer1, 1);
    expect(again.installIn).toBeUndefined();
    expect(again.send).toEqual(acc1.send);
    apply(a, a.hs.receive(acc1.send!, 1), 1);
    const offer2 = apply(a, a.hs.tick(6000), 6000)!;
    apply(b, b.hs.receive(offer2, 6000), 6000);
    const stale = b.hs.receive(offer1, 6001);
    expect(stale.installIn).toBeUndefined();
    expect(stale.send?.k).toBe('reject');
    // An accept of the old generation reaching A late changes nothing.
    expect(a.hs.receive(acc1.send!, 6002).installOut).toBeUndefined();
  });

  it('a peer that restarts (new boot) makes the other side rekey its own direction at once', () => {
    const [a, b] = pair();
    for (const [x, y] of [[a, b], [b, a]] as const) apply(x, x.hs.receive(apply(y, y.hs.receive(apply(x, x.hs.tick(0), 0)!, 0), 0)!, 0), 0);
    // A restarts: a new PairHandshake with another boot and nothing installed.
    const fresh = host('A', 'a2');
    const offer = apply(fresh, fresh.hs.tick(100), 100)!;
    const act = b.hs.receive(offer, 101);
    expect(act.peerRestarted).toBe(true);
    expect(act.installIn).toBeDefined();
  });

  it('a peer without our cluster key refuses; no SA until it has it, then the exchange completes', () => {
    let keysB: { id: string; key: Uint8Array }[] = [];
    const [a, b] = pair({ keysB: () => keysB });
    const m = apply(a, a.hs.tick(0), 0)!;
    const r = apply(b, b.hs.receive(m, 0), 0)!;
    expect(r.k).toBe('reject');
    expect(b.inbound.size).toBe(0);
    a.hs.receive(r, 1);
    expect(a.out).toBeUndefined();
    expect(a.hs.tick(100).send).toBeUndefined(); // backoff
    keysB = [CLUSTER];
    const m2 = apply(a, a.hs.tick(400), 400)!;
    apply(a, a.hs.receive(apply(b, b.hs.receive(m2, 400), 400)!, 401), 401);
    expect(a.out).toBeDefined();
    expect(consistent(a, b)).toBe(true);
  });

  it('messages from a third host and malformed JSON are not handshake input', () => {
    const [a] = pair();
    expect(a.hs.receive({ k: 'offer', from: 'C', boot: 'x', gen: 1, eph: 'AA==', keyId: 'k1' }, 0).ignored).toMatch(/another host/);
    for (const bad of [null, 1, {}, { k: 'offer', from: 'B', boot: 'x', gen: -1, eph: '', keyId: '' }, { k: 'accept', from: 'B', boot: 'x', gen: 1, eph: '' }]) {
      expect(asHsMessage(bad)).toBeUndefined();
    }
    // A broken ephemeral key gives a reject, never an SA.
    const [, b] = pair();
    const act = b.hs.receive({ k: 'offer', from: 'A', boot: 'x', gen: 1, eph: 'AAAA', keyId: 'k1' }, 0);
    expect(act.installIn).toBeUndefined();
    expect(act.send?.k).toBe('reject');
  });

  it('property: under loss, duplication and reordering no sealed packet is ever unopenable, and both directions converge', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(99), fc.nat(99)), { minLength: 40, maxLength: 200 }), (script) => {
        const [a, b] = pair();
        const wire: { to: SimHost; m: HsMessage }[] = [];
        const peerOf = (h: SimHost) => (h === a ? b : a);
        const post = (from: SimHost, m: HsMessage | undefined) => m && wire.push({ to: peerOf(from), m });
        let now = 0;
        const step = (fate: number, pick: number) => {
          now += 50;
          post(a, apply(a, a.hs.tick(now), now));
          post(b, apply(b, b.hs.tick(now), now));
          if (wire.length === 0) return;
          const i = pick % wire.length;
          const { to, m } = wire[i];
          if (fate >= 80) wire.splice(i, 1); // lost
          else {
            if (fate >= 15) wire.splice(i, 1); // else duplicated: stays queued
            post(to, apply(to, to.hs.receive(m, now), now));
          }
          expect(consistent(a, b) && consistent(b, a)).toBe(true);
        };
        for (const [fate, pick] of script) step(fate, pick);
        // Heal: deliver everything in order, once each, no loss, for a while. (A fate below 15 is a
        // duplicate that stays queued: step(0, 0) delivered the oldest message again and again and
        // nothing behind it, which CI's seed -421805158 turned into a failure to converge.)
        for (let k = 0; k < 200; k++) step(50, 0);
        expect(a.out).toBeDefined();
        expect(b.out).toBeDefined();
        expect(consistent(a, b) && consistent(b, a)).toBe(true);
      }),
      { numRuns: 40 },
    );
  });
});
