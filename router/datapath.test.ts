import fc from 'fast-check';
import { beforeEach, describe, expect, it } from 'vitest';
import { D } from './counters.js';
import { Datapath } from './datapath.js';
import { MemoryTap, MemoryUnderlay } from './memory.js';
import { macParts } from './wire/addr.js';
import { arpFrame, ipv4Frame, ip, vxlan } from './testframes.js';

const VNI = 4096;
const A = ip('192.0.2.1');
const B = ip('192.0.2.2');
const S = ip('192.0.2.9'); // a static (kernel VXLAN) VTEP
const MAC_A = '02:42:0a:00:09:02';
const MAC_B = '02:42:0a:00:09:03';
const MAC_S = '66:77:88:99:aa:bb';
const IP_A = ip('10.0.9.2');
const IP_B = ip('10.0.9.3');
const IP_S = ip('10.0.9.50');

const flush = () => new Promise((r) => setTimeout(r, 0));

function host(u: MemoryUnderlay, addr: number, txSockets = 2) {
  const rx = u.bind(addr, 4789);
  const tx = Array.from({ length: txSockets }, () => u.bind(addr));
  const dp = new Datapath(rx, tx, { vxlanPort: 4789, batch: 16 });
  const tap = new MemoryTap();
  const net = dp.addNetwork(VNI, 1450, tap);
  return { dp, tap, net, rx, tx };
}

function drops(n: { drops: Float64Array }, reason: keyof typeof D): number {
  return n.drops[D[reason]];
}

describe('datapath between two tapmesh hosts (in-memory ports)', () => {
  let u: MemoryUnderlay;
  let a: ReturnType<typeof host>;
  let b: ReturnType<typeof host>;

  beforeEach(() => {
    u = new MemoryUnderlay();
    a = host(u, A);
    b = host(u, B);
    a.dp.setLocal(VNI, ...macParts(MAC_A), IP_A);
    b.dp.setLocal(VNI, ...macParts(MAC_B), IP_B);
    a.dp.setRemote(VNI, ...macParts(MAC_B), IP_B, B, false);
    b.dp.setRemote(VNI, ...macParts(MAC_A), IP_A, A, false);
  });

  it('carries a unicast frame as VXLAN (flags 0x08, VNI, port 4789) and delivers it unchanged', async () => {
    const frame = ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1234, 80, 100);
    a.tap.inject(frame);
    await flush();
    expect(u.log).toHaveLength(1);
    const d = u.log[0];
    expect(d.from).toBe(A);
    expect(d.to).toBe(B);
    expect(d.toPort).toBe(4789);
    expect([...d.data.subarray(0, 8)]).toEqual([0x08, 0, 0, 0, 0x00, 0x10, 0x00, 0]);
    expect(d.data.subarray(8).equals(frame)).toBe(true);
    expect(b.tap.written).toHaveLength(1);
    expect(b.tap.written[0].equals(frame)).toBe(true);
    expect(a.net.counters[2]).toBe(1); // vxlanTxPackets
  });

  it('answers ARP for a known remote endpoint locally and sends nothing on the underlay', async () => {
    a.tap.inject(arpFrame(1, MAC_A, IP_A, '00:00:00:00:00:00', IP_B));
    await flush();
    expect(u.log).toHaveLength(0);
    expect(a.tap.written).toHaveLength(1);
    const r = a.tap.written[0];
    expect(r.subarray(0, 6).equals(Buffer.from(MAC_A.split(':').map((x) => parseInt(x, 16))))).toBe(true);
    expect(r.readUInt16BE(12)).toBe(0x0806);
    expect(r.readUInt16BE(20)).toBe(2); // reply
    expect(r.subarray(22, 28).toString('hex')).toBe(MAC_B.replaceAll(':', ''));
    expect(r.readUInt32BE(28)).toBe(IP_B);
    expect(r.readUInt32BE(38)).toBe(IP_A);
  });

  it('drops and counts ARP for unknown and local addresses, unknown unicast and broadcast', async () => {
    a.tap.inject(
      arpFrame(1, MAC_A, IP_A, '00:00:00:00:00:00', ip('10.0.9.77')),
      arpFrame(1, MAC_A, IP_A, '00:00:00:00:00:00', IP_A + 0), // gratuitous
      ipv4Frame('02:42:0a:00:09:63', MAC_A, IP_A, ip('10.0.9.99'), 17, 1, 2, 10),
      ipv4Frame('ff:ff:ff:ff:ff:ff', MAC_A, IP_A, ip('10.0.9.255'), 17, 1, 2, 10),
    );
    await flush();
    expect(u.log).toHaveLength(0);
    expect(drops(a.net, 'arpUnknown')).toBe(1);
    expect(drops(a.net, 'arpOther')).toBe(1);
    expect(drops(a.net, 'unknownDst')).toBe(1);
    expect(drops(a.net, 'broadcastNoFlood')).toBe(1);
  });

  it('drops TAP frames that are short or come from a MAC that is not a local endpoint', async () => {
    a.tap.inject(Buffer.alloc(10), ipv4Frame(MAC_B, '02:42:0a:00:09:08', ip('10.0.9.8'), IP_B, 17, 1, 2, 10));
    await flush();
    expect(u.log).toHaveLength(0);
    expect(drops(a.net, 'tapShort')).toBe(1);
    expect(drops(a.net, 'tapUnknownSrc')).toBe(1);
  });

  it('drops hostile datagrams by reason and keeps forwarding good traffic', async () => {
    const good = vxlan(VNI, ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 5000, 80, 40));
    const bad = (b2: Buffer) => Buffer.from(b2);
    const badFlags = bad(good);
    badFlags[0] = 0x0c;
    const reserved = bad(good);
    reserved[7] = 1;
    u.inject(A, 5555, B, 4789, Buffer.alloc(5));
    u.inject(A, 5555, B, 4789, badFlags);
    u.inject(A, 5555, B, 4789, reserved);
    u.inject(A, 5555, B, 4789, vxlan(4097, ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 1, 2, 10)));
    u.inject(ip('192.0.2.66'), 5555, B, 4789, good); // unknown VTEP
    u.inject(A, 5555, B, 4789, vxlan(VNI, ipv4Frame(MAC_B, '02:42:0a:00:09:07', ip('10.0.9.7'), IP_B, 6, 1, 2, 10))); // unknown src MAC
    u.inject(A, 5555, B, 4789, vxlan(VNI, ipv4Frame(MAC_B, MAC_A, ip('10.0.9.7'), IP_B, 6, 1, 2, 10))); // src IP not A's
    u.inject(A, 5555, B, 4789, vxlan(VNI, ipv4Frame(MAC_B, MAC_A, IP_B, IP_B, 6, 1, 2, 10))); // claims B's own IP
    u.inject(A, 5555, B, 4789, vxlan(VNI, ipv4Frame('02:42:0a:00:09:09', MAC_A, IP_A, ip('10.0.9.9'), 6, 1, 2, 10)));
    u.inject(A, 5555, B, 4789, vxlan(VNI, ipv4Frame('ff:ff:ff:ff:ff:ff', MAC_A, IP_A, IP_B, 17, 1, 2, 10)));
    u.inject(A, 5555, B, 4789, Buffer.alloc(20000)); // larger than a slot
    u.inject(A, 5555, B, 4789, good);
    await flush();
    const g = b.dp.drops;
    expect(g[D.vxlanShort]).toBe(1);
    expect(g[D.vxlanBadFlags]).toBe(2);
    expect(g[D.unknownVni]).toBe(1);
    expect(g[D.udpTruncated]).toBe(1);
    expect(drops(b.net, 'unknownVtep')).toBe(1);
    expect(drops(b.net, 'spoofedSrcMac')).toBe(1);
    expect(drops(b.net, 'spoofedSrcIp')).toBe(2);
    expect(drops(b.net, 'remoteUnknownDst')).toBe(1);
    expect(drops(b.net, 'remoteBroadcast')).toBe(1);
    expect(b.tap.written).toHaveLength(1);
    expect(b.tap.written[0].equals(good.subarray(8))).toBe(true);
  });

  it('never throws and never delivers on arbitrary datagrams from any sender (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(A, B, ip('192.0.2.66')), fc.uint8Array({ maxLength: 200 })), { maxLength: 20 }), (dgrams) => {
        const before = b.tap.written.length;
        for (const [from, data] of dgrams) u.inject(from, 1, B, 4789, Buffer.from(data));
        b.dp.pumpUdp();
        // Random bytes cannot carry A's MAC and IP and B's MAC in the right places.
        expect(b.tap.written.length).toBe(before);
      }),
      { numRuns: 300 },
    );
  });

  it('spreads flows over the send sockets by inner-flow hash, one flow always on one port', async () => {
    for (let p = 0; p < 64; p++) a.tap.inject(ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 10000 + p, 80, 20));
    for (let k = 0; k < 3; k++) a.tap.inject(ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 10000, 80, 20));
    await flush();
    const ports = new Set(u.log.map((d) => d.fromPort));
    expect(ports.size).toBe(2);
    const same = u.log.filter((d) => d.data.readUInt16BE(8 + 14 + 20) === 10000).map((d) => d.fromPort);
    expect(same).toHaveLength(4);
    expect(new Set(same).size).toBe(1);
  });

  it('keeps networks apart: a VNI is delivered only to its own TAP', async () => {
    const tap2 = new MemoryTap();
    b.dp.addNetwork(5000, 1450, tap2);
    b.dp.setLocal(5000, ...macParts(MAC_B), IP_B);
    u.inject(A, 1, B, 4789, vxlan(5000, ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 1, 2, 10)));
    await flush();
    expect(tap2.written).toHaveLength(0); // A is no VTEP of network 5000
    expect(b.tap.written).toHaveLength(0);
    expect(b.dp.network(5000)!.drops[D.unknownVtep]).toBe(1);
  });

  it('counts TAP write refusals', async () => {
    b.tap.acceptLimit = 0;
    u.inject(A, 1, B, 4789, vxlan(VNI, ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 1, 2, 10)));
    await flush();
    expect(drops(b.net, 'tapTxFull')).toBe(1);
  });
});

describe('static VTEPs (kernel VXLAN peers)', () => {
  it('replicates broadcast to static VTEPs, delivers their broadcast, learns their MACs', async () => {
    const u = new MemoryUnderlay();
    const a = host(u, A, 1);
    a.dp.setLocal(VNI, ...macParts(MAC_A), IP_A);
    a.dp.addStaticVtep(VNI, S);
    // ARP for an address nobody registered goes to the static VTEP.
    a.tap.inject(arpFrame(1, MAC_A, IP_A, '00:00:00:00:00:00', IP_S));
    await flush();
    expect(u.log.map((d) => d.to)).toEqual([S]);
    // Its reply (unicast from an unknown MAC) is delivered and the MAC learned.
    u.inject(S, 40000, A, 4789, vxlan(VNI, arpFrame(2, MAC_S, IP_S, MAC_A, IP_A)));
    await flush();
    expect(a.tap.written).toHaveLength(1);
    expect(a.net.remote.find(...macParts(MAC_S))).toBeGreaterThanOrEqual(0);
    // Now unicast to the learned MAC goes straight to S.
    a.tap.inject(ipv4Frame(MAC_S, MAC_A, IP_A, IP_S, 1, 0, 0, 20));
    await flush();
    expect(u.log.at(-1)!.to).toBe(S);
    // A broadcast from S is delivered.
    u.inject(S, 40000, A, 4789, vxlan(VNI, arpFrame(1, MAC_S, IP_S, '00:00:00:00:00:00', IP_A)));
    await flush();
    expect(a.tap.written).toHaveLength(2);
    // A static VTEP still cannot claim a local endpoint's MAC.
    u.inject(S, 40000, A, 4789, vxlan(VNI, ipv4Frame(MAC_A, MAC_A, IP_A, IP_A, 1, 0, 0, 20)));
    await flush();
    expect(a.net.drops[D.spoofedSrcMac]).toBe(1);
    // Removing the VTEP forgets what was learned from it.
    a.dp.deleteStaticVtep(VNI, S);
    expect(a.net.remote.find(...macParts(MAC_S))).toBe(-1);
  });
});

describe('busy polling', () => {
  it('opens the window after sparse traffic, and not during or right after bulk traffic', async () => {
    const u = new MemoryUnderlay();
    const calls: number[] = [];
    const rx = u.bind(A, 4789);
    const dp = new Datapath(rx, [u.bind(A)], { vxlanPort: 4789, batch: 16, busyPollUs: 200_000, busyPollBulkBytes: 32768, keepAwake: (us) => calls.push(us) });
    const tap = new MemoryTap();
    dp.addNetwork(VNI, 1450, tap);
    dp.setLocal(VNI, ...macParts(MAC_A), IP_A);
    dp.setRemote(VNI, ...macParts(MAC_B), IP_B, B, false);
    const small = () => ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1, 2, 100);
    tap.inject(small());
    await flush();
    expect(calls).toEqual([200_000]);
    // 30 frames of ~1.4 KB in one readiness callback (two reads of the batch of 16): bulk.
    tap.inject(...Array.from({ length: 30 }, () => ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1, 2, 1380)));
    await flush();
    expect(calls.at(-1)).toBe(0);
    // Sparse again, but inside one window after the bulk: no spin.
    const n = calls.length;
    tap.inject(small());
    await flush();
    expect(calls.length).toBe(n);
    // After the window (200 ms, long enough that the steps above fall inside it): the spin is back.
    await new Promise((r) => setTimeout(r, 250));
    tap.inject(small());
    await flush();
    expect(calls.at(-1)).toBe(200_000);
    // The receive side counts the same way: a bulk of datagrams stops the spin.
    for (let i = 0; i < 30; i++) u.inject(B, 40000, A, 4789, vxlan(VNI, ipv4Frame(MAC_A, MAC_B, IP_B, IP_A, 17, 2, 1, 1380)));
    await flush();
    expect(calls.at(-1)).toBe(0);
    dp.close();
  });
});
