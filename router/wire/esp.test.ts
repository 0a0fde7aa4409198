import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { WireError } from './error.js';
import { attempt, embed, guarded } from './testkit.js';
import {
  ENCRYPTED_DEFAULT_MTU, ESP_HEADER_LEN, ESP_HEADROOM, ESP_ICV_LEN, ESP_MIN_LEN, ESP_NEXT_UDP, ESP_TAILROOM,
  ESP_UDP_OVERHEAD, VXLAN_DATAGRAM_OVERHEAD, checkEsp, checkEspTrailer, emitEsp, espEncryptedMtu, espLenFor,
  espNextHeader, espPadFor, espPadLen, espPayloadLen, espSeq, espSpi, parseEsp, parseEspTrailer,
} from './esp.js';

const spiArb = fc.integer({ min: 256, max: 0xffffffff });
const seqArb = fc.integer({ min: 0, max: 0xffffffff });

function build(spi: number, seq: number, payload: Uint8Array, next = ESP_NEXT_UDP): Uint8Array {
  const b = new Uint8Array(espLenFor(payload.length)).fill(0xee);
  b.set(payload, ESP_HEADER_LEN);
  expect(emitEsp({ spi, seq, payloadLen: payload.length, nextHeader: next }, b, 0)).toBe(b.length);
  return b;
}

describe('esp', () => {
  it('overhead and MTU figures', () => {
    expect(ESP_UDP_OVERHEAD).toBe(20 + 8 + 8 + 8 + 2 + 16);
    expect(VXLAN_DATAGRAM_OVERHEAD).toBe(30);
    expect(ENCRYPTED_DEFAULT_MTU).toBe(1408);
    expect(ESP_HEADROOM).toBe(24);
    expect(ESP_TAILROOM).toBe(21);
  });

  it('an encrypted-MTU frame always fits the plain underlay datagram, and MTU+4 would not', () => {
    fc.assert(fc.property(fc.integer({ min: 100, max: 9000 }), (plain) => {
      const m = espEncryptedMtu(plain);
      expect(m % 4).toBe(0);
      const underlay = plain + 50; // what the plain network's frames fill
      const onWire = (mtu: number): number => 20 + 8 + espLenFor(VXLAN_DATAGRAM_OVERHEAD + mtu);
      expect(onWire(m)).toBeLessThanOrEqual(underlay);
      expect(onWire(m + 4)).toBeGreaterThan(underlay);
    }));
  });

  it('padding makes the ciphertext end on a 4-byte boundary, 0..3 bytes', () => {
    for (let n = 0; n < 64; n++) {
      const p = espPadFor(n);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThanOrEqual(3);
      expect((n + p + 2) % 4).toBe(0);
      expect(espLenFor(n)).toBe(16 + n + p + 2 + 16);
    }
  });

  it('parse(emit(x)) == x at any offset; views agree; reads stay inside [off, off+len)', () => {
    fc.assert(fc.property(spiArb, seqArb, fc.uint8Array({ maxLength: 200 }), fc.nat(40), fc.nat(255),
      (spi, seq, pl, pre, next) => {
        const pkt = build(spi, seq, pl, next);
        const len = pkt.length;
        const g = guarded(embed(pkt, pre, 7), pre, pre + len);
        expect(checkEsp(g, pre, len)).toBe(0);
        expect(parseEsp(g, pre, len)).toEqual({
          spi, seq, ivOff: pre + 8, cipherOff: pre + 16, cipherLen: len - 32, icvOff: pre + len - 16,
        });
        expect(espSpi(g, pre)).toBe(spi);
        expect(espSeq(g, pre)).toBe(seq);
        // explicit IV = 0 || seq
        expect(Array.from(pkt.subarray(8, 16))).toEqual([0, 0, 0, 0, seq >>> 24, (seq >>> 16) & 255, (seq >>> 8) & 255, seq & 255]);
        expect(checkEspTrailer(g, pre, len)).toBe(0);
        expect(parseEspTrailer(g, pre, len)).toEqual({ payloadOff: pre + 16, payloadLen: pl.length, padLen: espPadFor(pl.length), nextHeader: next });
        expect(espPadLen(g, pre, len)).toBe(espPadFor(pl.length));
        expect(espNextHeader(g, pre, len)).toBe(next);
        expect(espPayloadLen(g, pre, len)).toBe(pl.length);
        expect(Array.from(pkt.subarray(16, 16 + pl.length))).toEqual(Array.from(pl));
      }));
  });

  it('truncation never throws outside WireParseError, and every length under 34 is Truncated', () => {
    fc.assert(fc.property(spiArb, seqArb, fc.uint8Array({ maxLength: 80 }), (spi, seq, pl) => {
      const pkt = build(spi, seq, pl);
      for (let k = 0; k <= pkt.length; k++) {
        const g = guarded(pkt, 0, k);
        const e = checkEsp(g, 0, k);
        if (k < ESP_MIN_LEN) expect(e).toBe(WireError.Truncated);
        else if ((k - 32) % 4 !== 0) expect(e).toBe(WireError.BadLength);
        else expect(e).toBe(0);
        const r = attempt(() => parseEsp(g, 0, k));
        expect(r.ok).toBe(e === 0);
        if (e === 0) {
          // The trailer check must not throw on whatever bytes sit where the trailer would be.
          const t = checkEspTrailer(g, 0, k);
          expect([0, WireError.BadLength, WireError.BadReserved]).toContain(t);
          expect(attempt(() => parseEspTrailer(g, 0, k)).ok).toBe(t === 0);
        }
      }
    }));
  });

  it('random bytes: check and trailer check return codes, never throw', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (b) => {
      const e = checkEsp(b, 0, b.length);
      expect(typeof e).toBe('number');
      if (e === 0) expect(typeof checkEspTrailer(b, 0, b.length)).toBe('number');
    }));
  });

  it('SPI 0 is refused (BadReserved); out-of-bounds ranges are BadBounds', () => {
    const b = build(0x1234, 1, new Uint8Array(10));
    b[0] = b[1] = b[2] = b[3] = 0;
    expect(checkEsp(b, 0, b.length)).toBe(WireError.BadReserved);
    expect(checkEsp(b, 1, b.length)).toBe(WireError.BadBounds);
    expect(checkEsp(b, -1, 10)).toBe(WireError.BadBounds);
  });

  it('bad padding bytes and an oversized pad length are caught by the trailer check', () => {
    const b = build(0x1234, 1, new Uint8Array(5)); // pad 1
    expect(espPadLen(b, 0, b.length)).toBe(1);
    b[16 + 5] = 9;
    expect(checkEspTrailer(b, 0, b.length)).toBe(WireError.BadReserved);
    const c = build(0x1234, 1, new Uint8Array(2)); // pad 0
    c[c.length - ESP_ICV_LEN - 2] = 3; // claims 3 pad bytes; only 2 bytes precede the trailer
    expect(checkEspTrailer(c, 0, c.length)).toBe(WireError.BadLength);
  });

  it('emit refuses reserved SPIs, bad fields and short buffers', () => {
    const b = new Uint8Array(64);
    for (const spi of [0, 1, 255]) expect(() => emitEsp({ spi, seq: 1, payloadLen: 0, nextHeader: 17 }, b, 0)).toThrow(RangeError);
    expect(() => emitEsp({ spi: 2 ** 32, seq: 1, payloadLen: 0, nextHeader: 17 }, b, 0)).toThrow(RangeError);
    expect(() => emitEsp({ spi: 256, seq: -1, payloadLen: 0, nextHeader: 17 }, b, 0)).toThrow(RangeError);
    expect(() => emitEsp({ spi: 256, seq: 1, payloadLen: 0, nextHeader: 256 }, b, 0)).toThrow(RangeError);
    expect(() => emitEsp({ spi: 256, seq: 1, payloadLen: 40, nextHeader: 17 }, b, 0)).toThrow(RangeError);
  });
});
