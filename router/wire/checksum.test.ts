import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checksum, checksumUpdate16, checksumUpdate32, fold, ipv4PseudoSum, onesSum, onesSumBytes } from './checksum.js';
import { OutOfRangeAccess, guarded, hex, pseudoWords, refChecksum } from './testkit.js';

describe('internet checksum', () => {
  it('RFC 1071 §3 worked example: sum of 0001 f203 f4f5 f6f7 is ddf2', () => {
    const b = hex('0001 f203 f4f5 f6f7');
    expect(onesSum(b, 0, 8)).toBe(0xddf2);
    expect(checksum(b, 0, 8)).toBe(0x220d);
  });

  it('classic IPv4 header example yields b861, and verifies to 0 once stored', () => {
    const h = hex('4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7');
    expect(checksum(h, 0, 20)).toBe(0xb861);
    h[10] = 0xb8;
    h[11] = 0x61;
    expect(checksum(h, 0, 20)).toBe(0);
  });

  it('odd length pads the last byte with zero', () => {
    expect(onesSum(hex('01'), 0, 1)).toBe(0x0100);
    expect(onesSum(hex('ffff 01'), 0, 3)).toBe(0x0100); // 0xffff + 0x0100 folds to 0x0100
  });

  it('empty range: sum 0, checksum 0xffff; initial value passes through folded', () => {
    const b = new Uint8Array(4);
    expect(onesSum(b, 2, 0)).toBe(0);
    expect(checksum(b, 0, 0)).toBe(0xffff);
    expect(onesSum(b, 0, 0, 0x1_0002)).toBe(3);
  });

  it('agrees with a textbook reference on random data, offsets and initial values', () => {
    fc.assert(fc.property(
      fc.uint8Array({ maxLength: 300 }), fc.nat(16), fc.nat(0xffff),
      (data, pre, init) => {
        const buf = new Uint8Array(pre + data.length + 3).fill(0x5a);
        buf.set(data, pre);
        expect(checksum(buf, pre, data.length, init)).toBe(refChecksum(data, [init]));
      }), { numRuns: 500 });
  });

  it('handles lengths beyond 64 KiB (fold of large sums)', () => {
    const big = new Uint8Array(200_001).fill(0xff);
    expect(checksum(big, 0, big.length)).toBe(refChecksum(big));
    const rnd = new Uint8Array(150_000);
    for (let i = 0; i < rnd.length; i++) rnd[i] = (i * 2654435761) >>> 24;
    expect(checksum(rnd, 1, rnd.length - 1)).toBe(refChecksum(rnd.subarray(1)));
  });

  it('chaining over even-length chunks equals one pass', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(100), (data, cut) => {
      const k = Math.min(data.length, cut) & ~1;
      const first = onesSum(data, 0, k);
      expect(onesSum(data, k, data.length - k, first)).toBe(onesSum(data, 0, data.length));
    }));
  });

  it('fold matches repeated end-around carry', () => {
    fc.assert(fc.property(fc.maxSafeNat(), (n) => {
      let m = BigInt(n);
      while (m > 0xffffn) m = (m & 0xffffn) + (m >> 16n);
      expect(fold(n)).toBe(Number(m));
    }));
  });

  it('ipv4PseudoSum matches the reference pseudo-header', () => {
    fc.assert(fc.property(
      fc.nat(0xffffffff), fc.nat(0xffffffff), fc.nat(255), fc.nat(0xffff),
      (s, d, p, l) => {
        expect(~ipv4PseudoSum(s, d, p, l) & 0xffff).toBe(refChecksum([], pseudoWords(s, d, p, l)));
      }));
  });

  it('RFC 1624 incremental update keeps data verifying (16- and 32-bit)', () => {
    fc.assert(fc.property(
      fc.uint8Array({ minLength: 12, maxLength: 64 }), fc.nat(4), fc.nat(0xffffffff),
      (raw, wordIdx, nv) => {
        const data = Uint8Array.from(raw);
        data[0] = 0; data[1] = 0;
        const c0 = checksum(data, 0, data.length);
        data[0] = c0 >> 8; data[1] = c0 & 0xff;
        // 16-bit field at an even offset >= 2
        const i = 2 + 2 * (wordIdx % 2);
        const old16 = (data[i] << 8) | data[i + 1];
        const new16 = nv & 0xffff;
        data[i] = new16 >> 8; data[i + 1] = new16 & 0xff;
        let c = checksumUpdate16((data[0] << 8) | data[1], old16, new16);
        data[0] = c >> 8; data[1] = c & 0xff;
        expect(checksum(data, 0, data.length)).toBe(0);
        // 32-bit field at offset 8
        const old32 = ((data[8] << 24) | (data[9] << 16) | (data[10] << 8) | data[11]) >>> 0;
        data[8] = nv >>> 24; data[9] = (nv >>> 16) & 0xff; data[10] = (nv >>> 8) & 0xff; data[11] = nv & 0xff;
        c = checksumUpdate32((data[0] << 8) | data[1], old32, nv);
        data[0] = c >> 8; data[1] = c & 0xff;
        expect(checksum(data, 0, data.length)).toBe(0);
      }), { numRuns: 500 });
  });

  it('test guard: guarded() rejects reads outside its window and all writes', () => {
    const g = guarded(hex('00112233'), 1, 3);
    expect(g[1] + g[2]).toBe(0x33);
    expect(g.length).toBe(4);
    for (const i of [0, 3, -1, 1.5, NaN]) expect(() => g[i]).toThrow(OutOfRangeAccess);
    expect(() => { g[1] = 0; }).toThrow(OutOfRangeAccess);
    expect(() => onesSum(g, 1, 3)).toThrow(OutOfRangeAccess);
  });
});

describe('word-wise onesSum', () => {
  it('equals the byte-wise sum for any bytes, offset, length and seed (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 4000 }), fc.nat(7), fc.nat(0xffff), (bytes, shift, seed) => {
        const big = Buffer.alloc(bytes.length + 16);
        big.set(bytes, shift);
        expect(onesSum(big, shift, bytes.length, seed)).toBe(onesSumBytes(big, shift, bytes.length, seed));
      }),
      { numRuns: 500 },
    );
  });
});
