import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  ipv4I32, ipv4ToString, ipv4U32, isIpv4, macFromHiLo, macFromIp, macFromParts, macHi16, macLo32, macParts, macToString,
  parseIpv4, parseMac,
} from './addr.js';
import { WireError, WireParseError } from './error.js';
import { attempt } from './testkit.js';

const macArb = fc.tuple(fc.nat(0xffff), fc.nat(0xffffffff)).map(([h, l]) => h * 2 ** 32 + l);

describe('MAC text', () => {
  it('macToString / parseMac round-trip', () => {
    fc.assert(fc.property(macArb, (m) => {
      const s = macToString(m);
      expect(s).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
      expect(parseMac(s)).toBe(m);
      expect(parseMac(s.toUpperCase().replace(/:/g, '-'))).toBe(m);
    }));
    expect(macToString(0x00005e005301)).toBe('00:00:5e:00:53:01');
  });

  it('parseMac throws WireParseError(BadAddress) on malformed input', () => {
    for (const s of ['', '00:00:5e:00:53', '00:00:5e:00:53:01:02', '0:0:5e:0:53:1', '00:00:5e-00:53:01',
      'gg:00:00:00:00:00', ' 00:00:5e:00:53:01', '00005e005301', '00:00:5e:00:53:01\n']) {
      expect(attempt(() => parseMac(s))).toEqual({ ok: false, reason: WireError.BadAddress });
    }
    expect(() => parseMac(42 as unknown as string)).toThrow(WireParseError);
  });

  it('hi16/lo32 table keys round-trip with the 48-bit number and the text', () => {
    fc.assert(fc.property(macArb, (m) => {
      const hi = macHi16(m);
      const lo = macLo32(m);
      expect(hi).toBe(Math.floor(m / 2 ** 32));
      expect(lo | 0).toBe(lo); // an int32, as Int32Array cells hold it
      expect(macFromHiLo(hi, lo)).toBe(m);
      expect(macFromHiLo(hi, lo >>> 0)).toBe(m);
      expect(macParts(macToString(m))).toEqual([hi, lo]);
      expect(macFromParts(hi, lo)).toBe(macToString(m));
    }));
    expect(macParts('ff:ff:80:00:00:01')).toEqual([0xffff, -0x7fffffff]);
  });

  it("Docker's MAC from IP: 02:42 and the four address bytes", () => {
    expect(macFromIp(parseIpv4('10.0.9.2'))).toBe('02:42:0a:00:09:02');
    expect(macFromIp(ipv4I32(parseIpv4('255.1.2.3')))).toBe('02:42:ff:01:02:03');
    fc.assert(fc.property(fc.nat(0xffffffff), (ip) => {
      expect(macFromHiLo(0x0242, ip)).toBe(parseMac(macFromIp(ip)));
    }));
  });
});

describe('IPv4 address text', () => {
  it('ipv4ToString / parseIpv4 round-trip', () => {
    fc.assert(fc.property(fc.nat(0xffffffff), (ip) => { expect(parseIpv4(ipv4ToString(ip))).toBe(ip); }));
    expect(parseIpv4('10.0.0.1')).toBe(0x0a000001);
    expect(ipv4ToString(0xc0a800c7)).toBe('192.168.0.199');
    expect(parseIpv4('255.255.255.255')).toBe(0xffffffff);
  });

  it('rejects malformed text with WireParseError(BadAddress)', () => {
    for (const s of ['', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1.2.3.4 ', ' 1.2.3.4', '1..2.3', '-1.2.3.4',
      '0x1.2.3.4', '1.2.3.1000', '1.2.3.4\n', '１.2.3.4']) {
      expect(attempt(() => parseIpv4(s))).toEqual({ ok: false, reason: WireError.BadAddress });
    }
  });
});

describe('IPv4 number views', () => {
  it('the int32 view and the u32 are the same bits; text round-trips from either', () => {
    fc.assert(fc.property(fc.nat(0xffffffff), (ip) => {
      const k = ipv4I32(ip);
      expect(k | 0).toBe(k);
      expect(ipv4U32(k)).toBe(ip);
      expect(ipv4ToString(k)).toBe(ipv4ToString(ip));
    }));
    expect(ipv4I32(parseIpv4('192.168.0.1'))).toBe(-1062731775);
  });

  it('isIpv4 agrees with parseIpv4: leading zeros, as Go since 1.17, are refused', () => {
    fc.assert(fc.property(fc.array(fc.nat(300), { minLength: 3, maxLength: 5 }), fc.boolean(), (parts, zero) => {
      const s = parts.map((p, i) => (zero && i === 1 ? `0${p}` : String(p))).join('.');
      const ok = parts.length === 4 && parts.every((p) => p <= 255) && !zero;
      expect(isIpv4(s)).toBe(ok);
    }));
    for (const s of ['010.0.0.1', '10.0.0.01', '10.00.0.1', '1.2.3.4/24', '+1.2.3.4', '1.2.3.']) expect(isIpv4(s)).toBe(false);
  });
});
