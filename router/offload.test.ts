import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { D } from './counters.js';
import { Datapath } from './datapath.js';
import { MemoryTap, MemoryUnderlay } from './memory.js';
import { macParts } from './wire/addr.js';
import { VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_HDR_LEN, segmentTcp4 } from './offload.js';
import { useNativeCopy } from './copy.js';
import { native } from '../native/index.js';
import { checkIpv4, checkTcp, ipv4PseudoSum } from './wire/index.js';
import { DST, MAC_A, MAC_B, SRC, tcpFrame, tsoFrame } from './offload-testkit.js';
import { ip } from './testframes.js';

describe('segmentTcp4', () => {
  it('cuts any super-frame into valid, in-order segments that rebuild the payload (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20000 }), fc.integer({ min: 100, max: 1448 }), fc.integer({ min: 0, max: 0xffffffff }), (size, mss, seq) => {
        const payload = Buffer.alloc(size);
        for (let i = 0; i < size; i++) payload[i] = (i * 7 + 3) & 255;
        const frame = tcpFrame(payload, seq);
        // Input and output share one slab, as in the datapath.
        const slab = Buffer.alloc(frame.length + 40000);
        frame.copy(slab);
        const base = frame.length;
        const out = slab.subarray(base);
        const n = segmentTcp4(slab, 0, frame.length, mss, 8, 0, base, slab.length);
        expect(n).toBe(Math.ceil(size / mss));
        const stride = 8 + 66 + mss;
        const parts: Buffer[] = [];
        for (let k = 0; k < n; k++) {
          const o = k * stride + 8;
          const chunk = k === n - 1 ? size - k * mss : mss;
          const len = 66 + chunk;
          expect(checkIpv4(out, o + 14, len - 14)).toBe(0);
          expect(checkTcp(out, o + 34, len - 34, SRC, DST)).toBe(0);
          expect(out.readUInt32BE(o + 34 + 4)).toBe((seq + k * mss) >>> 0);
          expect(out[o + 34 + 13] & 0x08).toBe(k === n - 1 ? 0x08 : 0); // PSH only on the last
          parts.push(out.subarray(o + 66, o + len));
        }
        expect(Buffer.concat(parts).equals(payload)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('writes the same segments with the batched copies of the addon as with copyWithin (property)', () => {
    const n = native();
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20_000 }), fc.integer({ min: 64, max: 1460 }), fc.nat(16), fc.nat(16), (size, mss, prefix, suffix) => {
        const payload = Buffer.alloc(size);
        for (let i = 0; i < size; i++) payload[i] = (i * 37 + size) & 255;
        const frame = tcpFrame(payload, 1000);
        const cut = (): Buffer => {
          const slab = Buffer.alloc(frame.length + Math.ceil(size / mss) * (prefix + 66 + mss + suffix));
          frame.copy(slab, 0);
          expect(segmentTcp4(slab, 0, frame.length, mss, prefix, suffix, frame.length, slab.length)).toBe(Math.ceil(size / mss));
          return slab;
        };
        const js = cut();
        const prev = useNativeCopy(n.copyBatch);
        try {
          expect(cut().equals(js)).toBe(true);
        } finally {
          useNativeCopy(prev);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('refuses what it cannot segment and says when the output is too small', () => {
    const f = tcpFrame(Buffer.alloc(3000), 1);
    const udp = Buffer.from(f);
    udp[14 + 9] = 17;
    const room = (frame: Buffer, bytes: number) => Buffer.concat([frame, Buffer.alloc(bytes)]);
    expect(segmentTcp4(room(udp, 9000), 0, udp.length, 1000, 8, 0, udp.length, udp.length + 9000)).toBe(-1);
    expect(segmentTcp4(room(f, 9000), 0, 40, 1000, 8, 0, f.length, f.length + 9000)).toBe(-1);
    expect(segmentTcp4(room(f, 9000), 0, f.length, 1000, 8, 0, f.length, f.length + 2000)).toBe(-2);
  });
});

/**
 * A coalescer over one arena: frames are staged one after another in the lower half (they must
 * stay unchanged until the run they join closes, as datagrams do in the datapath's receive slab),
 * output goes to the upper half.
 */
describe('datapath with offloads (in-memory ports)', () => {
  function pair(gso: boolean) {
    const u = new MemoryUnderlay();
    const A = ip('192.0.2.1');
    const B = ip('192.0.2.2');
    const mk = (addr: number) => {
      const tx = u.bind(addr, 0, gso);
      const dp = new Datapath(u.bind(addr, 4789), [tx], { vxlanPort: 4789 });
      const tap = new MemoryTap(true);
      const net = dp.addNetwork(4096, 1450, tap);
      return { dp, tap, net, tx };
    };
    const a = mk(A);
    const b = mk(B);
    a.dp.setLocal(4096, ...macParts(MAC_A), SRC);
    b.dp.setLocal(4096, ...macParts(MAC_B), DST);
    a.dp.setRemote(4096, ...macParts(MAC_B), DST, B, false);
    b.dp.setRemote(4096, ...macParts(MAC_A), SRC, A, false);
    return { u, a, b };
  }
  const flush = () => new Promise((r) => setTimeout(r, 0));

  it('a TSO super-frame crosses as MTU-sized VXLAN datagrams and arrives merged again', async () => {
    const { u, a, b } = pair(true);
    const payload = Buffer.alloc(60000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 255;
    a.tap.inject(tsoFrame(payload, 5, 1398));
    await flush();
    expect(u.log.length).toBe(Math.ceil(60000 / 1398));
    for (const d of u.log) expect(d.data.length).toBeLessThanOrEqual(8 + 66 + 1398);
    expect(a.net.counters[11]).toBe(1); // tsoFrames
    expect(b.tap.written).toHaveLength(1);
    const w = b.tap.written[0];
    expect(w[1]).toBe(VNET_GSO_TCPV4);
    expect(w.subarray(VNET_HDR_LEN + 66).equals(payload)).toBe(true);
  });

  it('falls back to plain datagrams when the kernel refuses GSO, counting what it lost', async () => {
    const plain = pair(false);
    plain.a.tap.inject(tsoFrame(Buffer.alloc(5000, 9), 5, 1398));
    await flush();
    expect(plain.u.log).toHaveLength(4); // a port without GSO gets plain datagrams from the start

    const { u, a, b } = pair(true);
    a.tx.refuseGso = true;
    const payload = Buffer.alloc(5000, 9);
    a.tap.inject(tsoFrame(payload, 5, 1398));
    await flush();
    // The "kernel" refused the run with EIO: lost (TCP resends), counted, and no runs after that.
    expect(a.net.drops[D.udpTxError]).toBe(4);
    expect(u.log).toHaveLength(0);
    a.tap.inject(tsoFrame(payload, 5005, 1398));
    await flush();
    expect(u.log.length).toBe(4);
    expect(b.tap.written).toHaveLength(1);
  });

  it('finishes partial checksums of small frames before they leave', async () => {
    const { u, a } = pair(true);
    const f = tcpFrame(Buffer.alloc(50, 3), 1, 0x18);
    f.writeUInt16BE(ipv4PseudoSum(SRC, DST, 6, 32 + 50) & 0xffff, 34 + 16);
    const v = Buffer.alloc(VNET_HDR_LEN);
    v[0] = VNET_F_NEEDS_CSUM;
    v.writeUInt16LE(34, 6);
    v.writeUInt16LE(16, 8);
    a.tap.inject(Buffer.concat([v, f]));
    await flush();
    expect(u.log).toHaveLength(1);
    const d = u.log[0].data;
    expect(checkTcp(d, 8 + 34, d.length - 8 - 34, SRC, DST)).toBe(0);
  });
});
