// Partial inner checksums (issue 11): recognised exactly, delivered as NEEDS_CSUM or finished,
// and never confused with corrupted frames.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TapCoalescer } from './coalesce.js';
import { finishPartial, writeRxVnet } from './partial-csum.js';
import { ip, ipv4Frame, vxlan } from './testframes.js';
import { fold, ipv4PseudoSum, isTunnelSuperFrame, onesSum, partialChecksumAt, tcpFillChecksum } from './wire/index.js';
import { guarded } from './wire/testkit.js';

const SRC = ip('10.0.99.1');
const DST = ip('10.0.99.2');

/** A TCP (proto 6) or UDP (17) frame with its checksum complete, and the same one as a kernel sender leaves it before offload. */
function frames(proto: 6 | 17, payload: Uint8Array): { full: Buffer; partial: Buffer } {
  const full = ipv4Frame('02:42:0a:00:63:02', '02:42:0a:00:63:01', SRC, DST, proto, 34250, 80, payload.length);
  Buffer.from(payload).copy(full, full.length - payload.length);
  const l4len = full.length - 34;
  const at = proto === 6 ? 50 : 40;
  const partial = Buffer.from(full);
  partial.writeUInt16BE(fold(ipv4PseudoSum(SRC, DST, proto, l4len)), at);
  if (proto === 6) tcpFillChecksum(full, 34, l4len, SRC, DST);
  else {
    full.writeUInt16BE(0, 40);
    full.writeUInt16BE(~onesSum(full, 34, l4len, ipv4PseudoSum(SRC, DST, 17, l4len)) & 0xffff || 0xffff, 40);
  }
  return { full, partial };
}

const l4Valid = (b: Buffer, proto: number) => onesSum(b, 34, b.length - 34, ipv4PseudoSum(SRC, DST, proto, b.length - 34)) === 0xffff;

describe('partial checksum signature', () => {
  it('finds the field of a partial TCP and UDP checksum (csum_start 34, offset 16 / 6), not of a complete one', () => {
    for (const proto of [6, 17] as const) {
      const { full, partial } = frames(proto, Buffer.from('hello, partial checksum'));
      expect(l4Valid(full, proto)).toBe(true);
      expect(partialChecksumAt(full, 0, full.length)).toBe(0);
      expect(partialChecksumAt(partial, 0, partial.length)).toBe((34 << 8) | (proto === 6 ? 16 : 6));
    }
  });

  it('finishing a partial checksum gives exactly the complete one', () => {
    fc.assert(fc.property(fc.constantFrom(6 as const, 17 as const), fc.uint8Array({ minLength: 0, maxLength: 1400 }), (proto, payload) => {
      const { full, partial } = frames(proto, payload);
      if (partialChecksumAt(partial, 0, partial.length) === 0) return; // the partial field happened to verify
      expect(finishPartial(partial, 0, partial.length)).toBe(true);
      expect(partial.equals(full)).toBe(true);
    }));
  });

  it('a corrupted frame (valid checksum, then one byte changed) is never taken for a partial one', () => {
    fc.assert(fc.property(fc.constantFrom(6 as const, 17 as const), fc.uint8Array({ minLength: 1, maxLength: 600 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (proto, payload, pos, flip) => {
      const { full } = frames(proto, payload);
      const field = proto === 6 ? 50 : 40;
      if (full.readUInt16BE(field) === fold(ipv4PseudoSum(SRC, DST, proto, full.length - 34))) return;
      const i = 54 + (pos % payload.length);
      full[i] ^= flip;
      expect(partialChecksumAt(full, 0, full.length)).toBe(0);
    }));
  });

  it('UDP without checksum, fragments, truncated and non-IPv4 frames are not partial', () => {
    const { partial } = frames(6, Buffer.alloc(100, 7));
    expect(partialChecksumAt(partial, 0, partial.length - 1)).toBe(0); // IP total beyond the frame
    const frag = Buffer.from(partial);
    frag[20] |= 0x20; // MF
    expect(partialChecksumAt(frag, 0, frag.length)).toBe(0);
    const arp = Buffer.from(partial);
    arp.writeUInt16BE(0x0806, 12);
    expect(partialChecksumAt(arp, 0, arp.length)).toBe(0);
    const udp = frames(17, Buffer.alloc(10)).full;
    udp.writeUInt16BE(0, 40);
    expect(partialChecksumAt(udp, 0, udp.length)).toBe(0);
  });

  it('never reads outside the frame, whatever the bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.boolean(), (bytes, ipv4) => {
      const b = new Uint8Array(bytes);
      if (ipv4 && b.length > 14) {
        b[12] = 8;
        b[13] = 0;
        b[14] = 0x45;
      }
      const g = guarded(b, 0, b.length);
      partialChecksumAt(g, 0, b.length);
    }));
  });
});

describe('delivery to the TAP', () => {
  it('with virtio headers: NEEDS_CSUM at csum_start/csum_offset for a partial frame, flags 0 otherwise', () => {
    const { full, partial } = frames(6, Buffer.alloc(64, 1));
    const h = Buffer.alloc(10, 0xee);
    const out = Buffer.concat([h, partial]);
    expect(writeRxVnet(out, 0, 10, partial.length, 1450)).toBe(true);
    expect([out[0], out[1], out.readUInt16LE(6), out.readUInt16LE(8)]).toEqual([1, 0, 34, 16]);
    const out2 = Buffer.concat([h, full]);
    expect(writeRxVnet(out2, 0, 10, full.length, 1450)).toBe(false);
    expect([...out2.subarray(0, 10)]).toEqual(new Array(10).fill(0));
  });

  it('the coalescer counts partial frames; without virtio headers it finishes their checksum', () => {
    for (const vnet of [true, false]) {
      const { full, partial } = frames(6, Buffer.alloc(300, 3));
      const arena = Buffer.alloc(1 << 16);
      const c = new TapCoalescer(vnet, 8);
      c.bind(arena, 1 << 15, 1 << 16);
      for (const f of [full, partial]) {
        f.copy(arena, 0);
        c.add(0, f.length);
      }
      c.close();
      expect(c.partial).toBe(1);
      const pre = vnet ? 10 : 0;
      const second = arena.subarray(c.offs[1] + pre, c.offs[1] + c.lens[1]);
      if (vnet) expect(arena[c.offs[1]]).toBe(1);
      else expect(second.equals(full)).toBe(true);
    }
  });
});

describe('a kernel peer\'s tunnel-GSO super-frame that arrived whole', () => {
  it('is recognised in its datagram (not cut at the GRO segment size), and a GRO run is not', () => {
    const big = vxlan(4096, frames(6, Buffer.alloc(4000, 9)).partial);
    expect(isTunnelSuperFrame(big, 0, big.length, 1398)).toBe(true);
    const one = vxlan(4096, frames(6, Buffer.alloc(1398, 9)).partial);
    const run = Buffer.concat([one, one]);
    expect(isTunnelSuperFrame(run, 0, run.length, one.length)).toBe(false);
  });

  it('goes to the TAP as GSO TCPV4 with the MSS of the MTU; partial or correct checksums only', () => {
    const h = Buffer.alloc(10);
    for (const kind of ['partial', 'full', 'corrupt'] as const) {
      const { full, partial } = frames(6, Buffer.alloc(4000, 5));
      const f = kind === 'partial' ? partial : full;
      if (kind === 'corrupt') f[100] ^= 1;
      const out = Buffer.concat([h, f]);
      const marked = writeRxVnet(out, 0, 10, f.length, 1450);
      expect(marked, kind).toBe(kind !== 'corrupt');
      const hdr = [out[0], out[1], out.readUInt16LE(2), out.readUInt16LE(4), out.readUInt16LE(6), out.readUInt16LE(8)];
      expect(hdr, kind).toEqual(kind === 'corrupt' ? [0, 0, 0, 0, 0, 0] : [1, 1, 54, 1410, 34, 16]);
      if (kind !== 'corrupt') expect(out.readUInt16BE(10 + 50)).toBe(fold(ipv4PseudoSum(SRC, DST, 6, f.length - 34)));
    }
  });
});
