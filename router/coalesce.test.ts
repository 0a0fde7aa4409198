// The receive half of the offloads (coalesce.ts): merged runs the kernel accepts, what must stay apart,
// authentic (ESP-opened) runs, UDP runs, and a run undone when a member fails its checksum.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TapCoalescer } from './coalesce.js';
import { GSO_MAX_SEGS, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_GSO_UDP_L4, VNET_HDR_LEN, completeChecksum } from './offload.js';
import { DST, SRC, tcpFrame, udpFrame, udpGsoSegment } from './offload-testkit.js';
import { checkIpv4, checkTcp, checkUdp } from './wire/index.js';

function coalescer(vnet: boolean, frames = 64): { c: TapCoalescer; add: (f: Buffer, authentic?: boolean) => void } {
  const arena = Buffer.alloc(2 << 20);
  const c = new TapCoalescer(vnet, frames);
  c.bind(arena, 1 << 20, 2 << 20);
  let staged = 0;
  return {
    c,
    add: (f: Buffer, authentic = false) => {
      if (staged + f.length > 1 << 20) throw new Error('test arena: staging area full');
      f.copy(arena, staged);
      c.add(staged, f.length, authentic);
      staged += f.length;
    },
  };
}

describe('TapCoalescer', () => {
  it('merges in-order segments of a flow into one GSO frame the kernel accepts (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 40 }), fc.integer({ min: 200, max: 1398 }), fc.integer({ min: 1, max: 1398 }), (nseg, mss, lastLen) => {
        const last = Math.min(lastLen, mss);
        const size = (nseg - 1) * mss + last;
        const payload = Buffer.alloc(size);
        for (let i = 0; i < size; i++) payload[i] = (i * 13) & 255;
        const { c, add } = coalescer(true);
        for (let k = 0; k < nseg; k++) {
          const chunk = payload.subarray(k * mss, Math.min(size, (k + 1) * mss));
          add(tcpFrame(chunk, 1000 + k * mss, k === nseg - 1 ? 0x18 : 0x10));
        }
        c.close();
        expect(c.count).toBe(1);
        const o = c.out;
        const v = c.offs[0];
        expect(o[v]).toBe(VNET_F_NEEDS_CSUM);
        expect(o[v + 1]).toBe(VNET_GSO_TCPV4);
        expect(o.readUInt16LE(v + 2)).toBe(66);
        expect(o.readUInt16LE(v + 4)).toBe(mss);
        const f = v + VNET_HDR_LEN;
        expect(c.lens[0]).toBe(VNET_HDR_LEN + 66 + size);
        expect(checkIpv4(o, f + 14, 52 + size)).toBe(0); // length and header checksum fixed
        expect(o.subarray(f + 66, f + 66 + size).equals(payload)).toBe(true);
        // Finishing the partial checksum (as the kernel would) yields a valid segment.
        const copy = Buffer.from(o.subarray(f, f + 66 + size));
        expect(completeChecksum(copy, 0, copy.length, 34, 16, false)).toBe(true);
        expect(checkTcp(copy, 34, copy.length - 34, SRC, DST)).toBe(0);
      }),
      { numRuns: 100 },
    );
  });

  it('delivers every segment once, in order: merged where all verify, a run with a corrupted one undone into its segments as they came, within the area (property)', () => {
    fc.assert(
      fc.property(
        // Groups of equal-size segments (runs), each maybe with one corrupted segment and a PSH at its end.
        fc.array(fc.record({ n: fc.integer({ min: 1, max: 80 }), len: fc.integer({ min: 1, max: 1398 }), bad: fc.integer({ min: -40, max: 79 }), psh: fc.boolean() }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 3000, max: 60_000 }),
        (groups, area) => {
          const segs = groups.flatMap((g) => Array.from({ length: g.n }, (_, k) => ({ len: g.len, bad: k === g.bad, psh: g.psh && k === g.n - 1 })));
          const arena = Buffer.alloc((2 << 20) + area);
          const c = new TapCoalescer(true, 16);
          c.bind(arena, 2 << 20, (2 << 20) + area);
          const out: Buffer[] = [];
          const drain = (): void => {
            c.close();
            for (let k = 0; k < c.count; k++) {
              expect(c.offs[k]).toBeGreaterThanOrEqual(2 << 20);
              expect(c.offs[k] + c.lens[k]).toBeLessThanOrEqual((2 << 20) + area);
              out.push(Buffer.from(arena.subarray(c.offs[k], c.offs[k] + c.lens[k])));
            }
            c.reset();
          };
          const sent: Buffer[] = [];
          let staged = 0;
          let seq = 5000;
          for (const sg of segs) {
            const p = Buffer.alloc(sg.len, sg.len & 0xff);
            const f = tcpFrame(p, seq, sg.psh ? 0x18 : 0x10);
            if (sg.bad) f[f.length - 1] ^= 0x5a; // corrupted payload: its checksum fails
            seq += sg.len;
            sent.push(Buffer.from(f));
            if (!c.fits(f.length)) drain();
            f.copy(arena, staged);
            c.add(staged, f.length);
            staged += f.length;
          }
          drain();
          // Cut merged frames back into segments (as the kernel would) and compare with what was sent.
          const seg = (f: Buffer): string => `${f.readUInt32BE(34 + 4)}:${f.subarray(66).toString('hex')}`;
          const got: string[] = [];
          for (const v of out) {
            const fr = v.subarray(VNET_HDR_LEN);
            if (v[1] === 0) {
              expect(v[0]).toBe(0);
              got.push(seg(fr)); // went on as it came
              continue;
            }
            expect(v[1]).toBe(VNET_GSO_TCPV4);
            const mss = v.readUInt16LE(4);
            const copy = Buffer.from(fr);
            expect(completeChecksum(copy, 0, copy.length, 34, 16, false)).toBe(true);
            expect(checkTcp(copy, 34, copy.length - 34, SRC, DST)).toBe(0); // every merged byte verified
            const seq0 = copy.readUInt32BE(34 + 4);
            for (let o = 66, k = 0; o < copy.length; o += mss, k++) got.push(`${seq0 + k * mss}:${copy.subarray(o, Math.min(copy.length, o + mss)).toString('hex')}`);
          }
          // Same sequence of segments; every corrupted segment among the ones that went on alone.
          expect(got).toEqual(sent.map(seg));
          const alone = new Set(out.filter((v) => v[1] === 0).map((v) => v.subarray(VNET_HDR_LEN).toString('hex')));
          segs.forEach((sg, k) => {
            if (sg.bad) expect(alone.has(sent[k].toString('hex'))).toBe(true);
          });
        },
      ),
      { numRuns: 150 },
    );
  });

  it('keeps apart what must not merge: gaps, other flags, bad checksums, other flows', () => {
    const { c, add } = coalescer(true);
    const p = Buffer.alloc(1000, 1);
    add(tcpFrame(p, 0, 0x10));
    add(tcpFrame(p, 5000, 0x10)); // gap in sequence
    add(tcpFrame(p, 6000, 0x11)); // FIN
    const bad = tcpFrame(p, 7000, 0x10);
    bad[100] ^= 0xff;
    add(bad); // corrupted: the kernel must see it as it is and drop it
    const other = tcpFrame(p, 8000, 0x10, 12, 999); // another ACK number
    add(tcpFrame(p, 7000, 0x10));
    add(other);
    c.close();
    expect(c.count).toBe(6);
    for (let k = 0; k < c.count; k++) expect(c.out[c.offs[k] + 1]).toBe(0); // no GSO frame among them
    expect(c.merged).toBe(0);
  });

  it('merges ESP-opened (authentic) segments without verifying their checksum; cleartext ones still are', () => {
    // The checksum field is the only thing wrong: the AEAD tag vouches for opened bytes, so the
    // coalescer does not pay a second pass over them; the same frames from cleartext stay apart.
    const p = Buffer.alloc(1000, 7);
    const frames = [0, 1, 2].map((k) => {
      const f = tcpFrame(p, 1000 + k * 1000, k === 2 ? 0x18 : 0x10);
      f[50] ^= 0x5a; // inside the TCP checksum field (34 + 16)
      return f;
    });
    const enc = coalescer(true);
    for (const f of frames) enc.add(f, true);
    enc.c.close();
    expect(enc.c.count).toBe(1);
    expect(enc.c.merged).toBe(2);
    expect(enc.c.out[enc.c.offs[0] + 1]).toBe(VNET_GSO_TCPV4);
    const plain = coalescer(true);
    for (const f of frames) plain.add(f);
    plain.c.close();
    expect(plain.c.count).toBe(3);
    expect(plain.c.merged).toBe(0);
  });

  it('merges a run of equal-size UDP datagrams of a flow into one UDP_L4 GSO frame that cuts back into them (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 70 }), fc.integer({ min: 1, max: 1400 }), fc.integer({ min: 1, max: 1400 }), fc.boolean(), (n, size, lastLen, csum) => {
        const last = Math.min(lastLen, size);
        const payloads = Array.from({ length: n }, (_, k) => {
          const p = Buffer.alloc(k === n - 1 ? last : size);
          for (let i = 0; i < p.length; i++) p[i] = (k * 31 + i) & 255;
          return p;
        });
        const { c, add } = coalescer(true, 256);
        const frames = payloads.map((p) => udpFrame(p, { csum }));
        for (const f of frames) add(f);
        c.close();
        // At most 64 datagrams per run (what every kernel's UDP GSO takes), and 64 KB: runs fill
        // greedily, so a short last datagram may still fit in a run that is full of whole ones.
        let runs = 0;
        for (let k = 0, segs = 0, bytes = 0; k < n; k++) {
          const len = payloads[k].length;
          if (segs === 0 || segs === GSO_MAX_SEGS || 28 + bytes + len > 65535) {
            runs++;
            segs = 0;
            bytes = 0;
          }
          segs++;
          bytes += len;
        }
        expect(c.count).toBe(runs);
        const back: Buffer[] = [];
        for (let k = 0; k < c.count; k++) {
          const v = c.offs[k];
          const f = Buffer.from(c.out.subarray(v + VNET_HDR_LEN, v + c.lens[k]));
          if (c.out[v + 1] === 0) {
            back.push(f); // a run of one stays as it came
            continue;
          }
          expect(c.out[v]).toBe(VNET_F_NEEDS_CSUM);
          expect(c.out[v + 1]).toBe(VNET_GSO_UDP_L4);
          expect([c.out.readUInt16LE(v + 2), c.out.readUInt16LE(v + 4), c.out.readUInt16LE(v + 6), c.out.readUInt16LE(v + 8)]).toEqual([42, size, 34, 6]);
          expect(checkIpv4(f, 14, f.length - 14)).toBe(0);
          back.push(...udpGsoSegment(f, size));
        }
        expect(back.length).toBe(n);
        for (let k = 0; k < n; k++) {
          expect(checkUdp(back[k], 34, back[k].length - 34, SRC, DST)).toBe(0);
          expect(back[k].subarray(42).equals(payloads[k])).toBe(true);
        }
        expect(c.merged).toBe(n - c.count);
      }),
      // The example: 48 whole datagrams and a 1-byte last one fit one run (CI found it, 2026-12-02).
      { numRuns: 100, examples: [[49, 1337, 1, false]] },
    );
  });

  it('keeps UDP datagrams apart that must not merge: a longer one, other ports or TTL, a bad checksum', () => {
    const { c, add } = coalescer(true);
    const p = Buffer.alloc(500, 3);
    add(udpFrame(p));
    add(udpFrame(Buffer.alloc(600, 3))); // longer than the run's segment size
    add(udpFrame(p, { srcPort: 40002 })); // another flow
    add(udpFrame(p, { ttl: 9 })); // another TTL
    const bad = udpFrame(p);
    bad[100] ^= 0xff;
    add(bad); // corrupted: the container's stack must see it as it is and drop it
    add(udpFrame(p));
    c.close();
    expect(c.count).toBe(6);
    for (let k = 0; k < c.count; k++) expect(c.out[c.offs[k] + 1]).toBe(0);
    expect(c.merged).toBe(0);
    // A shorter datagram ends a run (it is its last segment); the next one starts another.
    const r = coalescer(true);
    r.add(udpFrame(p));
    r.add(udpFrame(Buffer.alloc(100, 3)));
    r.add(udpFrame(p));
    r.c.close();
    expect(r.c.count).toBe(2);
    expect(r.c.out[r.c.offs[0] + 1]).toBe(VNET_GSO_UDP_L4);
    expect(r.c.merged).toBe(1);
  });

  it('copies without merging when the TAP takes no virtio headers', () => {
    const { c, add } = coalescer(false, 8);
    const f1 = tcpFrame(Buffer.alloc(100), 0, 0x10);
    const f2 = tcpFrame(Buffer.alloc(100), 100, 0x10);
    add(f1);
    add(f2);
    expect(c.count).toBe(2);
    expect(c.out.subarray(c.offs[1], c.offs[1] + c.lens[1]).equals(f2)).toBe(true);
  });
});
