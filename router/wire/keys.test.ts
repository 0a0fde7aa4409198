// The int32 key accessors the datapath's tables use agree with the codecs' number views.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { arpSenderIp, arpSenderIpKey, arpTargetIp, arpTargetIpKey } from './arp.js';
import { rd32, rd32s } from './bytes.js';
import { MAC_HI_GROUP, ethDst, ethDstHi, ethDstLo, ethSrc, ethSrcHi, ethSrcLo, macIsMulticast, writeMacParts } from './ethernet.js';
import { ipv4Dst, ipv4DstKey, ipv4Src, ipv4SrcKey } from './ipv4.js';
import { guarded } from './testkit.js';
import { checkVxlan, vxlanHeaderOk } from './vxlan.js';

const split = (mac: number): [number, number] => [Math.floor(mac / 2 ** 32), (mac % 2 ** 32) | 0];

describe('table keys', () => {
  it('MAC as (hi16, lo32 signed), IPv4 as int32: the same bytes as the number views', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 40, maxLength: 40 }), fc.nat(8), (bytes, pre) => {
      const buf = new Uint8Array(pre + 40);
      buf.set(bytes, pre);
      const g = guarded(buf, pre, pre + 40);
      expect([ethDstHi(g, pre), ethDstLo(g, pre)]).toEqual(split(ethDst(g, pre)));
      expect([ethSrcHi(g, pre), ethSrcLo(g, pre)]).toEqual(split(ethSrc(g, pre)));
      expect((ethDstHi(g, pre) & MAC_HI_GROUP) !== 0).toBe(macIsMulticast(ethDst(g, pre)));
      expect(ipv4SrcKey(g, pre)).toBe(ipv4Src(g, pre) | 0);
      expect(ipv4DstKey(g, pre)).toBe(ipv4Dst(g, pre) | 0);
      expect(arpSenderIpKey(g, pre)).toBe(arpSenderIp(g, pre) | 0);
      expect(arpTargetIpKey(g, pre)).toBe(arpTargetIp(g, pre) | 0);
      expect(rd32s(g, pre)).toBe(rd32(g, pre) | 0);
    }));
  });

  it('writeMacParts writes what ethDstHi/Lo read back, and only those 6 bytes', () => {
    fc.assert(fc.property(fc.nat(0xffff), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), (hi, lo) => {
      const buf = new Uint8Array(10).fill(0x77);
      writeMacParts(buf, 2, hi, lo);
      expect([ethDstHi(buf, 2), ethDstLo(buf, 2)]).toEqual([hi, lo]);
      expect([buf[1], buf[8]]).toEqual([0x77, 0x77]);
    }));
  });
});

describe('hot-path forms of the checks', () => {
  it('vxlanHeaderOk agrees with checkVxlan on any 8+ bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 8, maxLength: 16 }), fc.boolean(), (b, valid) => {
      if (valid) b.set([8, 0, 0, 0], 0), (b[7] = 0);
      expect(vxlanHeaderOk(b, 0)).toBe(checkVxlan(b, 0, b.length) === 0);
    }), { numRuns: 500 });
  });
});
