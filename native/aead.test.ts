// Batched AES-GCM in the addon (native/aead.cc) against an independent implementation,
// @noble/ciphers: seal with one and open with the other, both ways, on random sizes, keys, salts,
// SPIs and sequence numbers; flipped bits must fail to open. Also argument checks, per-packet
// handles mixing SAs in one batch, and the no-second-libcrypto rule (ldd).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { gcm } from '@noble/ciphers/aes.js';
import { AEAD_OPEN, native } from './index.js';

const n = native();
const ADDON = fileURLToPath(new URL('../build/Release/tapmesh_native.node', import.meta.url));

/** A record laid out as the addon expects: AAD 8 (SPI||seq), IV 8, text, tag 16. */
function header(spi: number, seq: number, ivHi: number): Uint8Array {
  const h = new Uint8Array(16);
  const v = new DataView(h.buffer);
  v.setUint32(0, spi);
  v.setUint32(4, seq);
  v.setUint32(8, ivHi);
  v.setUint32(12, seq);
  return h;
}

function nobleSeal(key: Uint8Array, salt: Uint8Array, hdr: Uint8Array, pt: Uint8Array): Uint8Array {
  const nonce = new Uint8Array(12);
  nonce.set(salt, 0);
  nonce.set(hdr.subarray(8, 16), 4);
  const ct = gcm(key, nonce, hdr.subarray(0, 8)).encrypt(pt);
  const rec = new Uint8Array(16 + ct.length);
  rec.set(hdr, 0);
  rec.set(ct, 16);
  return rec;
}

function nobleOpen(key: Uint8Array, salt: Uint8Array, rec: Uint8Array): Uint8Array {
  const nonce = new Uint8Array(12);
  nonce.set(salt, 0);
  nonce.set(rec.subarray(8, 16), 4);
  return gcm(key, nonce, rec.subarray(0, 8)).decrypt(rec.subarray(16));
}

const caseArb = fc.record({
  keyLen: fc.constantFrom(16, 32),
  key: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  salt: fc.uint8Array({ minLength: 4, maxLength: 4 }),
  spi: fc.integer({ min: 256, max: 0xffffffff }),
  seq: fc.integer({ min: 1, max: 0xffffffff }),
  ivHi: fc.integer({ min: 0, max: 0xffffffff }),
  size: fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 9000 })),
  lead: fc.nat(37),
});

describe('aead (addon) vs @noble/ciphers', () => {
  it('the addon resolves OpenSSL from node: no libcrypto/libssl in ldd, self-check ok', () => {
    const ldd = execFileSync('ldd', [ADDON], { encoding: 'utf8' });
    expect(ldd).not.toMatch(/libcrypto|libssl/);
    const info = n.aeadInfo();
    expect(info.ok).toBe(true);
    expect(info.openssl.startsWith(`OpenSSL ${process.versions.openssl}`)).toBe(true);
  });

  it('seal (addon) -> open (noble), and seal (noble) -> open (addon), in place at any offset', () => {
    fc.assert(fc.property(caseArb, (c) => {
      const key = c.key.subarray(0, c.keyLen);
      const pt = new Uint8Array(c.size).map((_, i) => (i * 31 + c.seq) & 255);
      const hdr = header(c.spi, c.seq, c.ivHi);
      const h = n.aeadCreate(key, c.salt);
      try {
        const len = 32 + c.size;
        const buf = Buffer.alloc(c.lead + len + 5, 0xcc);
        buf.set(hdr, c.lead);
        buf.set(pt, c.lead + 16);
        const offs = new Int32Array([c.lead]), lens = new Int32Array([len]);
        expect(n.aeadSeal(buf, offs, lens, h, 0, 1)).toBe(1);
        const rec = new Uint8Array(buf.subarray(c.lead, c.lead + len));
        expect(Buffer.from(rec).equals(Buffer.from(nobleSeal(key, c.salt, hdr, pt)))).toBe(true);
        expect(Buffer.from(nobleOpen(key, c.salt, rec)).equals(Buffer.from(pt))).toBe(true);
        // bytes around the record untouched
        expect(buf.subarray(0, c.lead).every((b) => b === 0xcc)).toBe(true);
        expect(buf.subarray(c.lead + len).every((b) => b === 0xcc)).toBe(true);

        const sealed = Buffer.from(nobleSeal(key, c.salt, hdr, pt));
        const st = new Uint8Array(1).fill(9);
        expect(n.aeadOpen(sealed, new Int32Array([0]), new Int32Array([len]), h, 0, 1, st)).toBe(1);
        expect(st[0]).toBe(AEAD_OPEN.OK);
        expect(sealed.subarray(16, 16 + c.size).equals(Buffer.from(pt))).toBe(true);
      } finally {
        n.aeadDestroy(h);
      }
    }), { numRuns: 150 });
  });

  it('any flipped bit (AAD, IV, ciphertext or tag) fails to open, without throwing', () => {
    fc.assert(fc.property(caseArb, fc.nat(), (c, where) => {
      const key = c.key.subarray(0, c.keyLen);
      const pt = new Uint8Array(c.size).fill(0x42);
      const rec = Buffer.from(nobleSeal(key, c.salt, header(c.spi, c.seq, c.ivHi), pt));
      const bit = where % (rec.length * 8);
      rec[bit >>> 3] ^= 1 << (bit & 7);
      const h = n.aeadCreate(key, c.salt);
      try {
        const st = new Uint8Array(1);
        expect(n.aeadOpen(rec, new Int32Array([0]), new Int32Array([rec.length]), h, 0, 1, st)).toBe(0);
        expect(st[0]).toBe(AEAD_OPEN.AUTH_FAIL);
        expect(rec.subarray(16, rec.length - 16).every((b) => b === 0)).toBe(true); // no unauthenticated plaintext left
      } finally {
        n.aeadDestroy(h);
      }
    }), { numRuns: 150 });
  });

  it('a wrong key or salt fails to open', () => {
    const key = new Uint8Array(16).fill(1), salt = new Uint8Array([1, 2, 3, 4]);
    const rec = Buffer.from(nobleSeal(key, salt, header(0x1001, 1, 0), new Uint8Array(100)));
    const other = [n.aeadCreate(new Uint8Array(16).fill(2), salt), n.aeadCreate(key, new Uint8Array([1, 2, 3, 5]))];
    const st = new Uint8Array(2);
    const two = Buffer.concat([rec, rec]);
    expect(n.aeadOpen(two, new Int32Array([0, rec.length]), new Int32Array([rec.length, rec.length]), new Int32Array(other), 0, 2, st)).toBe(0);
    expect(Array.from(st)).toEqual([AEAD_OPEN.AUTH_FAIL, AEAD_OPEN.AUTH_FAIL]);
    other.forEach((h) => n.aeadDestroy(h));
  });

  it('one batch, several peers: per-packet handles; per-packet status; start/count respected', () => {
    const keys = [0, 1, 2].map((i) => ({ key: new Uint8Array(i === 2 ? 32 : 16).fill(i + 1), salt: new Uint8Array([i, 9, 9, 9]) }));
    const hs = keys.map((k) => n.aeadCreate(k.key, k.salt));
    const count = 12, size = 200, len = 32 + size;
    const buf = Buffer.alloc(count * 256);
    const offs = new Int32Array(count), lens = new Int32Array(count).fill(len), sa = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      offs[i] = i * 256;
      sa[i] = hs[i % 3];
      buf.set(header(0x1000 + i, i + 1, 0), offs[i]);
      buf.fill(i, offs[i] + 16, offs[i] + 16 + size);
    }
    const untouched = Buffer.from(buf.subarray(0, 256)); // record 0 is outside [1, 12)
    expect(n.aeadSeal(buf, offs, lens, sa, 1, count - 1)).toBe(count - 1);
    expect(buf.subarray(0, 256).equals(untouched)).toBe(true);
    for (let i = 1; i < count; i++) {
      const k = keys[i % 3];
      const pt = nobleOpen(k.key, k.salt, buf.subarray(offs[i], offs[i] + len));
      expect(pt.every((b) => b === i)).toBe(true);
    }
    buf[offs[5] + 20] ^= 0x80; // corrupt one
    lens[7] = 20; // malformed one
    const st = new Uint8Array(count).fill(99);
    const dead = n.aeadCreate(new Uint8Array(16), new Uint8Array(4));
    n.aeadDestroy(dead);
    sa[9] = dead; // stale handle
    expect(n.aeadOpen(buf, offs, lens, sa, 1, count - 1, st)).toBe(count - 4);
    expect(st[0]).toBe(99);
    expect(st[5]).toBe(AEAD_OPEN.AUTH_FAIL);
    expect(st[7]).toBe(AEAD_OPEN.MALFORMED);
    expect(st[9]).toBe(AEAD_OPEN.NO_SA);
    for (const i of [1, 2, 3, 4, 6, 8, 10, 11]) {
      expect(st[i]).toBe(AEAD_OPEN.OK);
      expect(buf.subarray(offs[i] + 16, offs[i] + 16 + size).every((b) => b === i)).toBe(true);
    }
    hs.forEach((h) => expect(n.aeadDestroy(h)).toBe(true));
  });

  it('argument checks throw before sealing anything; stale handles never reach another SA', () => {
    const h = n.aeadCreate(new Uint8Array(16), new Uint8Array(4));
    const buf = Buffer.alloc(64);
    const copy = Buffer.from(buf);
    expect(() => n.aeadCreate(new Uint8Array(24), new Uint8Array(4))).toThrow(RangeError);
    expect(() => n.aeadCreate(new Uint8Array(16), new Uint8Array(12))).toThrow(RangeError);
    expect(() => n.aeadSeal(buf, new Int32Array([0, 32]), new Int32Array([32, 31]), h, 0, 2)).toThrow(RangeError);
    expect(() => n.aeadSeal(buf, new Int32Array([40]), new Int32Array([32]), h, 0, 1)).toThrow(RangeError);
    expect(() => n.aeadSeal(buf, new Int32Array([0]), new Int32Array([32]), h + 1, 0, 1)).toThrow(TypeError);
    expect(() => n.aeadSeal(buf, new Int32Array([0]), new Int32Array([32]), new Int32Array(0), 0, 1)).toThrow(RangeError);
    expect(() => n.aeadOpen(buf, new Int32Array([0]), new Int32Array([32]), h, 0, 1, new Uint8Array(0))).toThrow(RangeError);
    expect(buf.equals(copy)).toBe(true);
    expect(n.aeadDestroy(h)).toBe(true);
    const h2 = n.aeadCreate(new Uint8Array(16), new Uint8Array(4)); // likely reuses the slot
    expect(h2).not.toBe(h);
    expect(n.aeadDestroy(h)).toBe(false);
    expect(() => n.aeadSeal(buf, new Int32Array([0]), new Int32Array([32]), h, 0, 1)).toThrow(TypeError);
    n.aeadDestroy(h2);
  });

  it('create/destroy does not leak SAs', () => {
    const before = n.aeadCount();
    for (let i = 0; i < 2000; i++) n.aeadDestroy(n.aeadCreate(new Uint8Array(32), new Uint8Array(4)));
    expect(n.aeadCount()).toBe(before);
  });
});

describe('aead in worker_threads', () => {
  it('each thread has its own SA table; a worker seals what the main thread opens', async () => {
    const { Worker } = await import('node:worker_threads');
    const key = new Uint8Array(16).fill(7), salt = new Uint8Array([9, 8, 7, 6]);
    const rec = new Uint8Array(32 + 100);
    rec.set(header(0x5000, 3, 0), 0);
    const src = `
      const { parentPort, workerData } = require('node:worker_threads');
      const a = require(workerData.addon);
      const before = a.aeadCount();
      const h = a.aeadCreate(workerData.key, workerData.salt);
      const buf = Buffer.from(workerData.rec);
      a.aeadSeal(buf, new Int32Array([0]), new Int32Array([buf.length]), h, 0, 1);
      parentPort.postMessage({ before, after: a.aeadCount(), buf });
    `;
    const mine = n.aeadCreate(key, salt); // live on the main thread while the worker runs
    expect(n.aeadCount()).toBeGreaterThanOrEqual(1);
    const w = new Worker(src, { eval: true, workerData: { addon: ADDON, key, salt, rec } });
    const msg = await new Promise<{ before: number; after: number; buf: Uint8Array }>((res, rej) => {
      w.once('message', res);
      w.once('error', rej);
    });
    await w.terminate(); // the worker's SA table is freed with its thread
    expect(n.aeadDestroy(mine)).toBe(true);
    expect(msg.before).toBe(0); // the main thread's SAs are not visible there
    expect(msg.after).toBe(1);
    expect(Buffer.from(nobleOpen(key, salt, msg.buf)).equals(Buffer.alloc(100))).toBe(true);
  });
});
