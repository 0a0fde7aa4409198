import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync, chmodSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { native } from '../native/index.js';
import { IDENTITY_FILE, derivePairKeys, generateX25519, loadOrCreateIdentity, randomSpi, x25519PublicFromRaw, type PairInput } from './keys.js';

interface Host { id: string; st: ReturnType<typeof generateX25519>; ep: ReturnType<typeof generateX25519>; inSpi: number }
const host = (id: string): Host => ({ id, st: generateX25519(), ep: generateX25519(), inSpi: randomSpi() });

function input(a: Host, b: Host, clusterKey: Uint8Array, generation = 1): PairInput {
  return {
    clusterKey, generation, localId: a.id, remoteId: b.id, localStatic: a.st, remoteStatic: b.st.publicKey,
    localEphemeral: a.ep, remoteEphemeral: b.ep.publicKey, outSpi: b.inSpi, inSpi: a.inSpi,
  };
}
const hex = (u: Uint8Array): string => Buffer.from(u).toString('hex');

describe('keys', () => {
  const ck = new Uint8Array(randomBytes(32));

  it('both sides derive the same key per direction; the two directions differ', () => {
    const a = host('node-a'), b = host('node-b');
    const ka = derivePairKeys(input(a, b, ck));
    const kb = derivePairKeys(input(b, a, ck));
    expect(hex(ka.out.key)).toBe(hex(kb.in.key));
    expect(hex(ka.out.salt)).toBe(hex(kb.in.salt));
    expect(hex(ka.in.key)).toBe(hex(kb.out.key));
    expect(ka.out.spi).toBe(b.inSpi);
    expect(kb.out.spi).toBe(a.inSpi);
    expect(hex(ka.out.key)).not.toBe(hex(ka.in.key));
    expect(ka.out.key.length).toBe(16);
    expect(ka.out.salt.length).toBe(4);
    expect(derivePairKeys({ ...input(a, b, ck), keyLen: 32 }).out.key.length).toBe(32);
  });

  it('what one side seals with its derived out-key, the peer opens with its derived in-key (addon)', () => {
    const n = native();
    const a = host('node-a'), b = host('node-b');
    const ka = derivePairKeys(input(a, b, ck)), kb = derivePairKeys(input(b, a, ck));
    const seal = n.aeadCreate(ka.out.key, ka.out.salt), open = n.aeadCreate(kb.in.key, kb.in.salt);
    const wrong = n.aeadCreate(kb.out.key, kb.out.salt); // the other direction's key must not open it
    const rec = Buffer.alloc(32 + 64, 0x5a);
    rec.writeUInt32BE(ka.out.spi, 0);
    rec.writeUInt32BE(1, 4);
    n.aeadSeal(rec, new Int32Array([0]), new Int32Array([rec.length]), seal, 0, 1);
    const two = Buffer.concat([rec, rec]);
    const st = new Uint8Array(2);
    n.aeadOpen(two, new Int32Array([0, rec.length]), new Int32Array([rec.length, rec.length]), new Int32Array([open, wrong]), 0, 2, st);
    expect(Array.from(st)).toEqual([0, 1]);
    expect(two.subarray(16, 16 + 64).every((x) => x === 0x5a)).toBe(true);
    [seal, open, wrong].forEach((h) => n.aeadDestroy(h));
  });

  it('a different cluster key, generation, ephemeral, SPI, pair or identity gives different keys', () => {
    const a = host('node-a'), b = host('node-b'), c = host('node-c');
    const base = hex(derivePairKeys(input(a, b, ck)).out.key);
    const variants = [
      derivePairKeys(input(a, b, new Uint8Array(randomBytes(32)))),
      derivePairKeys(input(a, b, ck, 2)),
      derivePairKeys(input({ ...a, ep: generateX25519() }, b, ck)),
      derivePairKeys(input(a, { ...b, inSpi: b.inSpi === 4096 ? 4097 : 4096 }, ck)),
      derivePairKeys(input(a, c, ck)),
      derivePairKeys(input({ ...a, st: generateX25519() }, b, ck)),
      derivePairKeys(input({ ...a, id: 'node-x' }, b, ck)),
    ];
    const all = new Set([base, ...variants.map((k) => hex(k.out.key))]);
    expect(all.size).toBe(variants.length + 1);
  });

  it('a host without the cluster key (or with a different identity) gets different keys from the same exchange', () => {
    const a = host('node-a'), b = host('node-b');
    const real = derivePairKeys(input(b, a, ck)).in.key;
    const stranger = derivePairKeys(input(a, b, new Uint8Array(32))).out.key;
    expect(hex(stranger)).not.toBe(hex(real));
  });

  it('refuses malformed input', () => {
    const a = host('node-a'), b = host('node-b');
    expect(() => derivePairKeys({ ...input(a, b, ck), outSpi: 255 })).toThrow(RangeError);
    expect(() => derivePairKeys({ ...input(a, b, ck), inSpi: 0 })).toThrow(RangeError);
    expect(() => derivePairKeys({ ...input(a, b, ck), remoteId: 'node-a' })).toThrow(RangeError);
    expect(() => derivePairKeys(input(a, b, new Uint8Array(8)))).toThrow(RangeError);
    expect(() => derivePairKeys({ ...input(a, b, ck), generation: -1 })).toThrow(RangeError);
    expect(() => derivePairKeys({ ...input(a, b, ck), remoteEphemeral: new Uint8Array(31) })).toThrow(RangeError);
    // A low-order point (all zero) makes an all-zero secret: refused (node throws, or we do).
    expect(() => derivePairKeys({ ...input(a, b, ck), remoteEphemeral: new Uint8Array(32) })).toThrow();
  });

  it('random SPIs are never 0..255 and skip taken ones', () => {
    for (let i = 0; i < 2000; i++) expect(randomSpi()).toBeGreaterThan(255);
    const first = randomSpi();
    let calls = 0;
    const spi = randomSpi((s) => (calls++ === 0 ? true : s === first));
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(spi).toBeGreaterThan(255);
  });

  it('identity key: created 0600, loaded back identical, loose modes tightened', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tm-keys-'));
    try {
      const k1 = loadOrCreateIdentity(dir);
      const file = path.join(dir, IDENTITY_FILE);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(readFileSync(file, 'utf8')).toContain('BEGIN PRIVATE KEY');
      const k2 = loadOrCreateIdentity(dir);
      expect(hex(k2.publicKey)).toBe(hex(k1.publicKey));
      chmodSync(file, 0o644);
      loadOrCreateIdentity(dir);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(x25519PublicFromRaw(k1.publicKey).asymmetricKeyType).toBe('x25519');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
