import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  PROXY_V2_SIGNATURE, encodeProxyV2, formatIpv6, ipv6Bytes, parseProxyV2, proxyV2For, proxyV2Length, type ProxyV2Header,
} from './proxy-v2.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.replace(/\s+/g, '').match(/../g)!.map((x) => parseInt(x, 16)));

const tlvArb = fc.record({ type: fc.nat(255), value: fc.uint8Array({ maxLength: 40 }) });
const port = fc.nat(0xffff);
const headerArb: fc.Arbitrary<ProxyV2Header> = fc.oneof(
  fc.record({
    command: fc.constant('proxy' as const), family: fc.constant('inet' as const),
    transport: fc.constantFrom('stream' as const, 'dgram' as const),
    srcAddr: fc.ipV4(), dstAddr: fc.ipV4(), srcPort: port, dstPort: port, tlvs: fc.array(tlvArb, { maxLength: 4 }),
  }),
  fc.record({
    command: fc.constant('proxy' as const), family: fc.constant('inet6' as const),
    transport: fc.constantFrom('stream' as const, 'dgram' as const),
    srcAddr: fc.ipV6().map((a) => formatIpv6(ipv6Bytes(a))), dstAddr: fc.ipV6().map((a) => formatIpv6(ipv6Bytes(a))),
    srcPort: port, dstPort: port, tlvs: fc.array(tlvArb, { maxLength: 4 }),
  }),
  fc.record({
    command: fc.constantFrom('proxy' as const, 'local' as const), family: fc.constant('unix' as const),
    transport: fc.constant('stream' as const),
    srcAddr: fc.stringMatching(/^\/[a-z0-9/._-]{0,100}$/), dstAddr: fc.stringMatching(/^\/[a-z0-9/._-]{0,100}$/),
    srcPort: fc.constant(0), dstPort: fc.constant(0), tlvs: fc.array(tlvArb, { maxLength: 2 }),
  }),
);

describe('PROXY protocol v2', () => {
  it('parses the header HAProxy sends for TCP over IPv4 (0x21 0x11, 12-byte block)', () => {
    const b = hex('0d0a0d0a000d0a515549540a 21 11 000c ac130001 ac130003 a652 0050 474554');
    const r = parseProxyV2(b);
    expect(r).toEqual({ kind: 'ok', length: 28, header: {
      command: 'proxy', family: 'inet', transport: 'stream', srcAddr: '172.19.0.1', dstAddr: '172.19.0.3',
      srcPort: 0xa652, dstPort: 80, tlvs: [] } });
    expect(encodeProxyV2((r as { header: ProxyV2Header }).header)).toEqual(b.subarray(0, 28));
  });

  it('round-trips any header, with following payload bytes left alone', () => {
    fc.assert(fc.property(headerArb, fc.uint8Array({ maxLength: 20 }), fc.nat(10), (h, tail, pre) => {
      const enc = encodeProxyV2(h);
      expect(enc.length).toBe(proxyV2Length(h));
      expect(enc.subarray(0, 12)).toEqual(PROXY_V2_SIGNATURE);
      const buf = new Uint8Array(pre + enc.length + tail.length);
      buf.set(enc, pre);
      buf.set(tail, pre + enc.length);
      const r = parseProxyV2(buf, pre);
      expect(r).toEqual({ kind: 'ok', header: h, length: enc.length });
    }));
  });

  it('every truncation is incomplete (never a partial header, never a throw)', () => {
    fc.assert(fc.property(headerArb, (h) => {
      const enc = encodeProxyV2(h);
      for (let n = 0; n < enc.length; n++) {
        const r = parseProxyV2(enc, 0, n);
        expect(r.kind).toBe('incomplete');
        if (r.kind === 'incomplete') expect(r.need).toBeGreaterThan(n);
      }
    }), { numRuns: 50 });
  });

  it('garbage never throws; a corrupted header is invalid or still well-formed', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (junk) => {
      const withSig = new Uint8Array(12 + junk.length);
      withSig.set(PROXY_V2_SIGNATURE);
      withSig.set(junk, 12);
      for (const b of [junk, withSig]) {
        const r = parseProxyV2(b);
        expect(['ok', 'incomplete', 'invalid']).toContain(r.kind);
      }
    }));
    expect(parseProxyV2(new TextEncoder().encode('GET / HTTP/1.1\r\n')).kind).toBe('invalid');
    expect(parseProxyV2(new Uint8Array(4), 3, 5)).toEqual({ kind: 'invalid', reason: 'bad range' });
  });

  it('rejects version, command, family errors and TLVs that overrun the length', () => {
    const good = encodeProxyV2(proxyV2For('10.0.0.5', 40000, '10.0.0.254', 80, 'stream', [{ type: 0xf0, value: Uint8Array.of(1, 2) }]));
    const mut = (i: number, v: number): Uint8Array => {
      const b = good.slice();
      b[i] = v;
      return b;
    };
    expect(parseProxyV2(mut(12, 0x11))).toMatchObject({ kind: 'invalid', reason: 'version' });
    expect(parseProxyV2(mut(12, 0x22))).toMatchObject({ kind: 'invalid', reason: 'command' });
    expect(parseProxyV2(mut(13, 0x41))).toMatchObject({ kind: 'invalid' });
    expect(parseProxyV2(mut(29, 9))).toMatchObject({ kind: 'invalid', reason: 'TLV past the header' });
    expect(parseProxyV2(mut(15, 11))).toMatchObject({ kind: 'invalid', reason: 'address block shorter than the family needs' });
  });

  it('LOCAL (health check) may carry no addresses; dual-stack mapped addresses become INET', () => {
    const local = hex('0d0a0d0a000d0a515549540a 20 00 0000');
    expect(parseProxyV2(local)).toMatchObject({ kind: 'ok', length: 16, header: { command: 'local', family: 'unspec' } });
    const h = proxyV2For('::ffff:192.0.2.7', 5555, '::ffff:198.51.100.1', 8080);
    expect(h).toMatchObject({ family: 'inet', srcAddr: '192.0.2.7', dstAddr: '198.51.100.1' });
    expect(encodeProxyV2(h)[13]).toBe(0x11);
    const v6 = proxyV2For('2001:DB8:0:0:1:0:0:1', 1, '::1', 2, 'dgram');
    expect(v6).toMatchObject({ family: 'inet6', srcAddr: '2001:db8::1:0:0:1', dstAddr: '::1' });
    expect(encodeProxyV2(v6)[13]).toBe(0x22);
    expect(() => proxyV2For('10.0.0.1', 1, '::1', 2)).toThrow(RangeError);
    expect(() => ipv6Bytes('1::2::3')).toThrow(RangeError);
  });
});
