import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { emitEth, type VlanTag } from './ethernet.js';
import { flowHash } from './flow.js';
import { IpProto, emitIpv4 } from './ipv4.js';
import { emitTcp } from './tcp.js';
import { emitUdp } from './udp.js';
import { embed, guarded } from './testkit.js';

interface Flow { src: number; dst: number; proto: number; sport: number; dport: number }
interface Noise { dmac: number; smac: number; ttl: number; ident: number; vlan: VlanTag | null; payload: number; fill: number }

const macArb = fc.tuple(fc.nat(0xffff), fc.nat(0xffffffff)).map(([h, l]) => h * 2 ** 32 + l);
const flowArb: fc.Arbitrary<Flow> = fc.record({
  src: fc.nat(0xffffffff), dst: fc.nat(0xffffffff), proto: fc.constantFrom(IpProto.Tcp, IpProto.Udp),
  sport: fc.nat(0xffff), dport: fc.nat(0xffff),
});
const noiseArb: fc.Arbitrary<Noise> = fc.record({
  dmac: macArb, smac: macArb, ttl: fc.nat(255), ident: fc.nat(0xffff), payload: fc.nat(40), fill: fc.nat(255),
  vlan: fc.option(fc.record({ tpid: fc.constant(0x8100), tci: fc.nat(0xffff) }), { nil: null }),
});

/** Ethernet + IPv4 + TCP/UDP (or bare IP for other protocols) frame. */
function frame(f: Flow, n: Noise, frag = { mf: false, offset: 0 }): Uint8Array {
  const l4 = f.proto === IpProto.Tcp ? 20 : f.proto === IpProto.Udp ? 8 : 0;
  const b = new Uint8Array(18 + 20 + l4 + n.payload).fill(n.fill);
  let o = emitEth({ dst: n.dmac, src: n.smac, ethertype: 0x0800, vlan: n.vlan }, b, 0);
  const total = b.length - (n.vlan ? 0 : 4);
  o += emitIpv4({ src: f.src, dst: f.dst, protocol: f.proto, ttl: n.ttl, tos: 0, ident: n.ident, dontFrag: false,
    moreFrags: frag.mf, fragOffset: frag.offset, optionsLen: 0, payloadLen: total - o - 20 }, b, o);
  if (f.proto === IpProto.Tcp) {
    emitTcp({ srcPort: f.sport, dstPort: f.dport, seq: n.ident, ack: 0, flags: 2, window: n.ttl, urgent: 0,
      optionsLen: 0, payloadLen: 0 }, b, o);
  } else if (f.proto === IpProto.Udp) {
    emitUdp({ srcPort: f.sport, dstPort: f.dport, payloadLen: n.payload }, b, o);
  }
  return b.subarray(0, total);
}

describe('flowHash', () => {
  it('equal flows hash equal regardless of MACs, VLAN tag, TTL, ident, payload and offset', () => {
    fc.assert(fc.property(flowArb, noiseArb, noiseArb, fc.nat(20), (f, n1, n2, pre) => {
      const a = frame(f, n1);
      const b = embed(frame(f, n2), pre, 3);
      const h = flowHash(a, 0, a.length);
      expect(h).toBe(flowHash(guarded(b, pre, b.length - 3), pre, b.length - pre - 3));
      expect(Number.isInteger(h) && h >= 0 && h < 2 ** 32).toBe(true);
    }));
  });

  it('different ports spread well: distinct hashes and near-uniform low bits', () => {
    const base = { src: 0x0a000001, dst: 0x0a000002, proto: IpProto.Tcp, sport: 0, dport: 443 };
    const noise: Noise = { dmac: 1, smac: 2, ttl: 64, ident: 0, vlan: null, payload: 0, fill: 0 };
    const n = 16_000;
    const seen = new Set<number>();
    const buckets = new Array<number>(16).fill(0);
    for (let p = 0; p < n; p++) {
      const fr = frame({ ...base, sport: 1024 + p }, noise);
      const h = flowHash(fr, 0, fr.length);
      seen.add(h);
      buckets[h & 15]++;
    }
    expect(seen.size).toBeGreaterThan(n - 5);
    for (const c of buckets) expect(Math.abs(c - n / 16)).toBeLessThan(n / 16 * 0.15);
    // and a change of a single port bit changes the hash
    fc.assert(fc.property(flowArb, fc.nat(15), fc.boolean(), (f, bit, which) => {
      const g = which ? { ...f, sport: f.sport ^ (1 << bit) } : { ...f, dport: f.dport ^ (1 << bit) };
      const a = frame(f, noise);
      const b = frame(g, noise);
      expect(flowHash(a, 0, a.length)).not.toBe(flowHash(b, 0, b.length));
    }));
  });

  it('all fragments of a datagram hash alike (no ports), and differ from the unfragmented flow', () => {
    fc.assert(fc.property(flowArb, noiseArb, fc.nat(1000), (f, n, off) => {
      const first = frame(f, n, { mf: true, offset: 0 });
      const later = frame({ ...f, sport: f.sport ^ 0x5555 }, n, { mf: true, offset: 8 * (off + 1) });
      const last = frame({ ...f, dport: 1 }, n, { mf: false, offset: 8 * (off + 2) });
      const h = flowHash(first, 0, first.length);
      expect(flowHash(later, 0, later.length)).toBe(h);
      expect(flowHash(last, 0, last.length)).toBe(h);
      const whole = frame(f, n);
      expect(flowHash(whole, 0, whole.length)).not.toBe(h);
    }));
  });

  it('other IPv4 protocols hash addresses + protocol only', () => {
    fc.assert(fc.property(flowArb, noiseArb, noiseArb, (f, n1, n2) => {
      const a = frame({ ...f, proto: IpProto.Icmp }, n1);
      const b = frame({ ...f, proto: IpProto.Icmp, sport: f.sport + 1 }, { ...n2, fill: n1.fill ^ 1 });
      expect(flowHash(a, 0, a.length)).toBe(flowHash(b, 0, b.length));
      const c = frame({ ...f, proto: 47 }, n1);
      expect(flowHash(c, 0, c.length)).not.toBe(flowHash(a, 0, a.length));
    }));
  });

  it('non-IP frames hash MACs + ethertype, not the payload', () => {
    fc.assert(fc.property(macArb, macArb, fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }),
      (d, s, p1, p2) => {
        const mk = (et: number, p: Uint8Array, dm = d): Uint8Array => {
          const b = new Uint8Array(14 + p.length);
          emitEth({ dst: dm, src: s, ethertype: et, vlan: null }, b, 0);
          b.set(p, 14);
          return b;
        };
        const a = mk(0x0806, p1);
        expect(flowHash(a, 0, a.length)).toBe(flowHash(mk(0x0806, p2), 0, 14 + p2.length));
        expect(flowHash(a, 0, a.length)).not.toBe(flowHash(mk(0x88cc, p1), 0, a.length));
        expect(flowHash(a, 0, a.length)).not.toBe(flowHash(mk(0x0806, p1, (d + 1) % 2 ** 48), 0, a.length));
      }));
  });

  it('IPv6 TCP/UDP uses addresses, next header and ports', () => {
    const v6 = (sport: number, fill: number): Uint8Array => {
      const b = new Uint8Array(14 + 40 + 8 + 4).fill(fill);
      emitEth({ dst: 1, src: 2, ethertype: 0x86dd, vlan: null }, b, 0);
      b[14] = 0x60;
      b[20] = 17;
      for (let i = 22; i < 54; i++) b[i] = i;
      b[54] = sport >> 8;
      b[55] = sport & 0xff;
      b[56] = 0;
      b[57] = 53;
      return b;
    };
    expect(flowHash(v6(1000, 0), 0, 66)).toBe(flowHash(v6(1000, 9), 0, 66));
    expect(flowHash(v6(1000, 0), 0, 66)).not.toBe(flowHash(v6(1001, 0), 0, 66));
  });

  it('never throws and reads only the window, for every prefix and for random bytes', () => {
    fc.assert(fc.property(flowArb, noiseArb, fc.nat(8), (f, n, pre) => {
      const full = embed(frame(f, n), pre, 4);
      const len = full.length - pre - 4;
      const seen = new Map<number, number>();
      for (let k = 0; k <= len; k++) {
        const h = flowHash(guarded(full, pre, pre + k), pre, k);
        expect(h >>> 0).toBe(h);
        expect(flowHash(full, pre, k)).toBe(h);
        if (k < 14) seen.set(h, k);
      }
      expect(seen.size).toBe(Math.min(14, len + 1)); // short frames: every length hashes differently
    }), { numRuns: 200 });
    fc.assert(fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(4), (data, pre) => {
      const buf = embed(data, pre, 2);
      const h = flowHash(guarded(buf, pre, pre + data.length), pre, data.length);
      expect(h >>> 0).toBe(h);
    }), { numRuns: 2000 });
  });

  it('bad off/len never throw; len is clamped to the buffer; seed perturbs', () => {
    const b = new Uint8Array(64).fill(7);
    for (const [off, len] of [[-1, 10], [65, 0], [1.5, 3], [NaN, 1], [0, -5], [0, Infinity]]) {
      const h = flowHash(guarded(b, 0, 0), off, len);
      expect(h >>> 0).toBe(h);
    }
    expect(flowHash(guarded(b, 10, 64), 10, 1000)).toBe(flowHash(b, 10, 54));
    expect(flowHash(b, 0, 64, 1)).not.toBe(flowHash(b, 0, 64, 2));
  });
});
