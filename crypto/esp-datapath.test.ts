// The seal and open stages inside the real datapath (in-memory ports, the real addon): an
// encrypted network sends nothing without an SA, sends only ESP-in-UDP with one, takes only ESP
// that opens under a current SA of its sender, and keeps TSO runs as equal-length GSO runs.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { D } from '../router/counters.js';
import { Datapath } from '../router/datapath.js';
import { MemoryTap, MemoryUnderlay } from '../router/memory.js';
import { VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_HDR_LEN } from '../router/offload.js';
import { ipv4Frame, ip, vxlan } from '../router/testframes.js';
import { ESP_UDP_PORT, macParts } from '../router/wire/index.js';
import { DEFAULT_SA_LIFETIMES } from './sa.js';

const VNI = 4097;
const A = ip('192.0.2.1');
const B = ip('192.0.2.2');
const X = ip('192.0.2.66'); // a stranger
const MAC_A = '02:42:0a:00:09:02';
const MAC_B = '02:42:0a:00:09:03';
const IP_A = ip('10.0.9.2');
const IP_B = ip('10.0.9.3');
const flush = () => new Promise((r) => setTimeout(r, 0));

function host(u: MemoryUnderlay, addr: number, vnet = false, gso = false) {
  const dp = new Datapath(u.bind(addr, 4789), [u.bind(addr, 0, gso)], { vxlanPort: 4789, batch: 16, espRx: u.bind(addr, ESP_UDP_PORT) });
  const tap = new MemoryTap(vnet);
  const net = dp.addNetwork(VNI, 1408, tap, true);
  return { dp, tap, net };
}

function scene(vnet = false, gso = false) {
  const u = new MemoryUnderlay();
  const a = host(u, A, vnet, gso);
  const b = host(u, B, vnet, gso);
  a.dp.setLocal(VNI, ...macParts(MAC_A), IP_A);
  b.dp.setLocal(VNI, ...macParts(MAC_B), IP_B);
  a.dp.setRemote(VNI, ...macParts(MAC_B), IP_B, B, false);
  b.dp.setRemote(VNI, ...macParts(MAC_A), IP_A, A, false);
  const km = { spi: 0x1234567, key: new Uint8Array(randomBytes(16)), salt: new Uint8Array(randomBytes(4)) };
  const agree = () => {
    b.dp.sas.installInbound(A, km, 1000);
    a.dp.sas.setOutbound(B, km, DEFAULT_SA_LIFETIMES);
  };
  return { u, a, b, km, agree };
}

const marked = (n: number) => {
  const f = ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1234, 80, 200);
  f.write(`SECRET-MARKER-${n}`, 42);
  return f;
};

describe('encrypted network in the datapath', () => {
  it('sends nothing before an SA exists (espNoSa), then only ESP-in-UDP that B opens and delivers', async () => {
    const { u, a, b, agree } = scene();
    a.tap.inject(marked(1));
    await flush();
    expect(u.log).toHaveLength(0);
    expect(a.net.drops[D.espNoSa]).toBe(1);
    agree();
    a.tap.inject(marked(2), marked(3));
    await flush();
    expect(u.log).toHaveLength(2);
    for (const d of u.log) {
      expect(d.toPort).toBe(ESP_UDP_PORT);
      expect(d.data.includes('SECRET-MARKER')).toBe(false);
      expect(d.data.length % 4).toBe(0);
    }
    expect(b.tap.written.map((f) => f.subarray(42, 57).toString())).toEqual(['SECRET-MARKER-2', 'SECRET-MARKER-3']);
    expect(a.net.counters[15]).toBe(2); // espSealed
    expect(b.net.counters[16]).toBe(2); // espOpened
  });

  it('drops cleartext VXLAN with the encrypted VNI, from a member and from a stranger', async () => {
    const { u, b, agree } = scene();
    agree();
    u.inject(A, 40000, B, 4789, vxlan(VNI, marked(4)));
    u.inject(X, 40000, B, 4789, vxlan(VNI, marked(5)));
    await flush();
    expect(b.tap.written).toHaveLength(0);
    expect(b.net.drops[D.cleartextOnEncrypted]).toBe(2);
  });

  it('replay, flipped bit, unknown SPI, wrong sender and truncation are each dropped by reason; good traffic flows', async () => {
    const { u, a, b, agree } = scene();
    agree();
    a.tap.inject(marked(6));
    await flush();
    const good = u.log[0].data;
    expect(b.tap.written).toHaveLength(1);
    const flipped = Buffer.from(good);
    flipped.writeUInt32BE(flipped.readUInt32BE(4) + 10, 4); // a sequence number not seen yet (passes the window)
    flipped[40] ^= 1;
    const unknown = Buffer.from(good);
    unknown.writeUInt32BE(0xdeadbeef, 0);
    u.inject(A, 40000, B, ESP_UDP_PORT, Buffer.from(good)); // replay
    u.inject(A, 40000, B, ESP_UDP_PORT, flipped);
    u.inject(A, 40000, B, ESP_UDP_PORT, unknown);
    u.inject(X, 40000, B, ESP_UDP_PORT, Buffer.from(good));
    u.inject(A, 40000, B, ESP_UDP_PORT, good.subarray(0, 21));
    await flush();
    a.tap.inject(marked(7));
    await flush();
    const g = b.dp.drops;
    expect([g[D.espReplay], g[D.espAuthFail], g[D.espNoSa], g[D.espWrongPeer], g[D.espMalformed]]).toEqual([1, 1, 1, 1, 1]);
    expect(b.tap.written).toHaveLength(2);
  });

  it('a TSO super-frame leaves as one GSO run of equal-length ESP packets and arrives intact', async () => {
    const { u, a, b, agree } = scene(true, true);
    agree();
    const payload = Buffer.alloc(30000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 255;
    const f = ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 40000, 5201, payload.length);
    payload.copy(f, 54);
    const v = Buffer.alloc(VNET_HDR_LEN);
    v[0] = VNET_F_NEEDS_CSUM;
    v[1] = VNET_GSO_TCPV4;
    v.writeUInt16LE(54, 2);
    v.writeUInt16LE(1355, 4); // an odd segment size: padding is not 0
    v.writeUInt16LE(34, 6);
    v.writeUInt16LE(16, 8);
    a.tap.inject(Buffer.concat([v, f]));
    await flush();
    const n = Math.ceil(payload.length / 1355);
    expect(u.log).toHaveLength(n);
    const sizes = new Set(u.log.slice(0, -1).map((d) => d.data.length));
    expect(sizes.size).toBe(1);
    expect(u.log.every((d) => d.data.length % 4 === 0 && !d.data.includes(payload.subarray(1000, 1032)))).toBe(true);
    expect(b.dp.drops[D.espAuthFail] + b.dp.drops[D.espMalformed]).toBe(0);
    const got = Buffer.concat(b.tap.written.map((w) => w.subarray(VNET_HDR_LEN + 54)));
    expect(got.equals(payload)).toBe(true);
  });

  it('after a rekey the old inbound SA opens until its grace ends, then its packets are refused', async () => {
    const { u, a, b, km, agree } = scene();
    agree();
    a.tap.inject(marked(8));
    await flush();
    const old = Buffer.from(u.log[0].data);
    const km2 = { spi: km.spi + 1, key: new Uint8Array(randomBytes(16)), salt: km.salt };
    b.dp.sas.installInbound(A, km2, 0); // grace 0: the old SA expires at once
    a.dp.sas.setOutbound(B, km2, DEFAULT_SA_LIFETIMES);
    a.tap.inject(marked(9));
    await flush();
    expect(b.tap.written).toHaveLength(2);
    old.writeUInt32BE(old.readUInt32BE(4) + 5, 4); // a fresh sequence number: not a replay, just the old SA
    u.inject(A, 40000, B, ESP_UDP_PORT, old);
    await flush();
    expect(b.dp.drops[D.espNoSa]).toBe(1);
    expect(b.dp.sas.expire()).toBe(1);
  });
});
