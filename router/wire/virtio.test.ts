import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_GSO_UDP_L4, VNET_HDR_LEN, checkVnet, vnetCsumOffset, vnetCsumStart, vnetFlags, vnetGsoSize,
  vnetGsoType, vnetHdrLen, writeVnetNone, writeVnetTcp4, writeVnetUdp4,
} from './virtio.js';
import { WireError } from './error.js';
import { embed, guarded, hex } from './testkit.js';

describe('virtio_net_hdr', () => {
  it('views read back what writeVnetTcp4 / writeVnetUdp4 wrote, at any offset, touching only its 10 bytes', () => {
    fc.assert(fc.property(fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff), fc.nat(0xffff), fc.nat(30), fc.boolean(), (hl, mss, cs, co, pre, udp) => {
      const buf = new Uint8Array(pre + VNET_HDR_LEN + 4).fill(0xee);
      (udp ? writeVnetUdp4 : writeVnetTcp4)(buf, pre, hl, mss, cs, co);
      const g = guarded(buf, pre, pre + VNET_HDR_LEN);
      expect(checkVnet(g, pre, VNET_HDR_LEN)).toBe(0);
      expect([vnetFlags(g, pre), vnetGsoType(g, pre), vnetHdrLen(g, pre), vnetGsoSize(g, pre), vnetCsumStart(g, pre), vnetCsumOffset(g, pre)])
        .toEqual([VNET_F_NEEDS_CSUM, udp ? VNET_GSO_UDP_L4 : VNET_GSO_TCPV4, hl, mss, cs, co]);
      expect(buf[pre - 1] ?? 0xee).toBe(0xee);
      expect(buf[pre + VNET_HDR_LEN]).toBe(0xee);
    }));
  });

  it('known answer: little-endian fields as the kernel writes them; the ECN bit is masked off', () => {
    const h = hex('01 81 4200 7605 2200 1000');
    expect([vnetFlags(h, 0), vnetGsoType(h, 0), vnetHdrLen(h, 0), vnetGsoSize(h, 0), vnetCsumStart(h, 0), vnetCsumOffset(h, 0)])
      .toEqual([1, 1, 66, 1398, 34, 16]);
    const z = embed(new Uint8Array(VNET_HDR_LEN).fill(9), 3, 0);
    writeVnetNone(z, 3);
    expect([...z.subarray(3)]).toEqual(Array(VNET_HDR_LEN).fill(0));
  });

  it('check rejects truncation and bad bounds', () => {
    for (let k = 0; k < VNET_HDR_LEN; k++) expect(checkVnet(new Uint8Array(20), 0, k)).toBe(WireError.Truncated);
    expect(checkVnet(new Uint8Array(5), 0, 10)).toBe(WireError.BadBounds);
  });
});
