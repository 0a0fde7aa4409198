import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { encodeMessage } from './codec.js';
import { Channel, formatJoinToken, generateKey, Keyring, keyId, parseJoinToken, parseSecretFile, SEAL_OVERHEAD, AuthError } from './security.js';
import { SimCluster } from './sim-cluster.js';
import { SimNetwork } from './sim.js';
import { Wire } from './wire.js';

describe('sealing', () => {
  test('open(seal(x)) = x; overhead is 33 bytes', () => {
    const kr = new Keyring(generateKey());
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1400 }), (plain) => {
        const s = kr.seal(plain, Channel.packet);
        expect(s.length).toBe(plain.length + SEAL_OVERHEAD);
        expect(kr.open(s, Channel.packet)).toEqual(plain);
      }),
      { numRuns: 300 },
    );
  });

  test('every seal carries a fresh nonce, across refills of the nonce pool', () => {
    const kr = new Keyring(generateKey());
    const plain = new TextEncoder().encode('ping');
    const seen = new Set<string>();
    const n = 1000; // 12 kB of nonces: the 4 KiB pool refills twice
    for (let i = 0; i < n; i++) {
      const s = Buffer.from(kr.seal(plain, Channel.packet));
      seen.add(s.subarray(5, 17).toString('hex'));
      expect(kr.open(s, Channel.packet)).toEqual(plain);
    }
    expect(seen.size).toBe(n);
  });

  test('wrong key, any flipped bit, a truncation or another channel is refused with AuthError', () => {
    const a = new Keyring(generateKey());
    const b = new Keyring(generateKey());
    const sealed = a.seal(new TextEncoder().encode('alive node-1'), Channel.packet);
    expect(() => b.open(sealed, Channel.packet)).toThrow(AuthError);
    expect(() => a.open(sealed, Channel.response)).toThrow(AuthError);
    expect(() => a.open(sealed.subarray(0, 20), Channel.packet)).toThrow(AuthError);
    for (let i = 0; i < sealed.length; i++) {
      const t = sealed.slice();
      t[i] ^= 0x01;
      expect(() => a.open(t, Channel.packet)).toThrow(AuthError);
    }
  });

  test('nonces are fresh: the same plaintext never seals to the same bytes', () => {
    const kr = new Keyring(generateKey());
    const p = new Uint8Array(16);
    expect(kr.seal(p, Channel.packet)).not.toEqual(kr.seal(p, Channel.packet));
  });

  test('keyring: receive with any installed key, send with the primary; the primary cannot be removed', () => {
    const k1 = generateKey();
    const k2 = generateKey();
    const old = new Keyring(k1);
    const both = new Keyring(k1, [k2]);
    expect(both.list()).toEqual([keyId(k1), keyId(k2)]);
    const fromNew = new Keyring(k2);
    expect(both.open(fromNew.seal(new Uint8Array([1]), Channel.packet), Channel.packet)).toEqual(new Uint8Array([1]));
    both.useKey(k2);
    expect(() => old.open(both.seal(new Uint8Array([1]), Channel.packet), Channel.packet)).toThrow(AuthError);
    expect(() => both.removeKey(k2)).toThrow(/primary/);
    both.removeKey(keyId(k1));
    expect(both.list()).toEqual([keyId(k2)]);
    expect(() => new Keyring(new Uint8Array(16))).toThrow(/32 bytes/);
  });

  test('a receiving Wire counts what it drops: wrong key -> dropped.auth, garbage -> dropped.malformed', () => {
    const net = new SimNetwork({ seed: 1 });
    const key = generateKey();
    const w = new Wire(net.transport('10.0.0.1:7946'), new Keyring(key));
    const seen: string[] = [];
    w.setHandlers({ message: (_, m) => seen.push(m.t), request: () => {} });
    const ok = new Keyring(key).seal(encodeMessage({ t: 'ack', seq: 1, from: 'x' }), Channel.packet);
    const wrong = new Keyring(generateKey()).seal(encodeMessage({ t: 'ack', seq: 1, from: 'x' }), Channel.packet);
    const garbage = new Keyring(key).seal(new Uint8Array([99, 1, 2, 3]), Channel.packet);
    w.onPacket('a', ok);
    w.onPacket('a', wrong);
    w.onPacket('a', garbage);
    w.onPacket('a', new Uint8Array(5));
    expect(seen).toEqual(['ack']);
    expect(w.stats.dropped).toMatchObject({ auth: 2, malformed: 1 });
  });
});

describe('join token and secret file', () => {
  test('TMJ1-<base64url(key | checksum)> round-trips and catches damage', () => {
    const key = generateKey();
    const tok = formatJoinToken(key);
    expect(tok).toMatch(/^TMJ1-[A-Za-z0-9_-]{48}$/);
    expect(parseJoinToken(tok)).toEqual(key);
    expect(parseJoinToken(`  ${tok}\n`)).toEqual(key);
    const damaged = tok.slice(0, 10) + (tok[10] === 'A' ? 'B' : 'A') + tok.slice(11);
    expect(() => parseJoinToken(damaged)).toThrow(/checksum/);
    expect(() => parseJoinToken(tok.slice(1))).toThrow(/TMJ1-/);
    expect(() => parseJoinToken(tok.slice(0, -2))).toThrow(/length/);
  });

  test('a secret file holds one token per line, first = primary, comments ignored', () => {
    const k1 = generateKey();
    const k2 = generateKey();
    const kr = parseSecretFile(`# tapmesh cluster keys\n${formatJoinToken(k2)}\n\n${formatJoinToken(k1)}\n`);
    expect(kr.list()).toEqual([keyId(k2), keyId(k1)]);
    expect(() => parseSecretFile('# nothing\n')).toThrow(/no join token/);
  });
});

describe('encrypted cluster on the simulator', () => {
  test('a cluster with crypto on converges, and rolls its key without a partition', async () => {
    const c = new SimCluster(8, { seed: 4, profile: 'fast', crypto: true });
    await c.startAll(5);
    expect(c.net.runUntil(() => c.converged(), 10_000)).toBe(true);
    const fresh = generateKey();
    const dead: string[] = [];
    c.nodes.forEach((n) => n.onMember((e) => e.kind === 'dead' && dead.push(e.member.name)));
    const step = (fn: (kr: Keyring) => void) => {
      for (const n of c.nodes) fn(n.keyring as Keyring);
      c.net.run(3_000);
    };
    const old = (c.nodes[0].keyring as Keyring).primaryId();
    step((kr) => kr.addKey(fresh));
    step((kr) => kr.useKey(fresh));
    step((kr) => kr.removeKey(old));
    expect(dead).toEqual([]);
    expect(c.converged()).toBe(true);
    expect(c.nodes.every((n) => n.stats().dropped.auth === 0)).toBe(true);
  });

  test('removing the old key before everyone switched is what breaks a roll (the test can fail)', async () => {
    const c = new SimCluster(4, { seed: 4, profile: 'fast', crypto: true });
    await c.startAll(5);
    expect(c.net.runUntil(() => c.converged(), 10_000)).toBe(true);
    const fresh = generateKey();
    const kr0 = c.nodes[0].keyring as Keyring;
    const old = kr0.primaryId();
    kr0.addKey(fresh);
    kr0.useKey(fresh);
    kr0.removeKey(old);
    c.net.run(20_000);
    expect(c.nodes[1].stats().dropped.auth).toBeGreaterThan(0);
    expect(c.nodes[1].member(c.nodes[0].id)?.state).toBe('dead');
  });
});
