// Issue 2, on real namespaces: three tapmesh hosts and one Linux kernel VXLAN host on one
// underlay; containers ping and move data across hosts; ARP stays local; hostile input is
// dropped and counted; flood-and-learn from the kernel host stops at its cap; an agent restart
// keeps addresses.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LEARNING_DEFAULTS } from '../router/learned.js';
import { arpFrame, ipv4Frame, ip, vxlan } from '../router/testframes.js';
import { setupKernelVxlanHost } from './harness/kernel-vxlan.js';
import { Lab, repoRoot, requireRoot, sleep, waitFor, type Host } from './harness/lab.js';
import { buildOverlay, macOf, type Overlay } from './harness/overlay.js';
import { tcpTransfer, udpBurst } from './harness/transfer.js';

const root = requireRoot('overlay integration');
const INJECT = path.join(repoRoot, 'test/harness/inject.py');

type NetStats = { Network: string; VNI: number; arpReplied?: number; learned?: number; Drops: Record<string, number> };

async function statsOf(lab: Lab, h: Host): Promise<{ net: NetStats; global: Record<string, number> }> {
  const lines = (await lab.mustCli(h, ['stats', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l) as NetStats);
  return { net: lines.find((l) => l.Network === 'overnet')!, global: lines.find((l) => l.Network === '')!.Drops };
}

async function ping(lab: Lab, ns: string, to: string, count = 3): Promise<boolean> {
  const r = await lab.exec(ns, 'ping', ['-c', String(count), '-i', '0.2', '-W', '2', to], 20_000);
  return r.code === 0;
}

describe.skipIf(!root)('overlay across three tapmesh hosts and a kernel VXLAN host', () => {
  const lab = new Lab();
  let ov: Overlay;
  let kh: Host;
  const kc = { ip: '10.0.9.50', mac: macOf('10.0.9.50'), ns: '' };

  beforeAll(async () => {
    try {
      ov = await buildOverlay(lab, { hosts: 3, containersPerHost: 1 });
      kh = await lab.addHost('k1');
      kc.ns = await lab.addContainer(kh, 'c1');
      await setupKernelVxlanHost(kh, {
        vni: ov.vni, mtu: 1450, container: kc.ns, ip: kc.ip, prefixLen: 24, mac: kc.mac,
        remotes: ov.containers.map((c) => ({ mac: c.mac, ip: c.ip, vtep: c.host.addr })),
        floodTo: ov.hosts.map((h) => h.addr),
      });
      for (const h of ov.hosts) await lab.mustCli(h, ['peer', 'add', 'overnet', '--vtep', kh.addr, '--ip', kc.ip]);
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  });
  afterAll(() => lab.cleanup());

  it('containers on different tapmesh hosts ping each other', async () => {
    for (const a of ov.containers) {
      for (const b of ov.containers) {
        if (a !== b) expect(await ping(lab, a.ns, b.ip, 2), `${a.ns} → ${b.ip}`).toBe(true);
      }
    }
  });

  it('a 50 MB TCP transfer between hosts arrives intact', async () => {
    const [a, b] = [ov.containers[0], ov.containers[2]];
    const r = await tcpTransfer(lab, a.ns, b.ns, b.ip, 50 * 1024 * 1024);
    expect(r.received.bytes).toBe(50 * 1024 * 1024);
    expect(r.received.sha256).toBe(r.sent.sha256);
    // It went the offload way: TCP super-frames segmented on one side, merged on the other.
    const tx = (await statsOf(lab, a.host)).net as unknown as Record<string, number>;
    const rx = (await statsOf(lab, b.host)).net as unknown as Record<string, number>;
    expect(tx.tsoFrames).toBeGreaterThan(0);
    expect(rx.groMerged).toBeGreaterThan(0);
  });

  it('bursts of equal-size UDP datagrams arrive whole and in full, sent and written to the TAP as UDP GSO runs', async () => {
    const [a, b] = [ov.containers[0], ov.containers[2]];
    const merged = async () => ((await statsOf(lab, b.host)).net as unknown as Record<string, number>).groMerged ?? 0;
    const before = await merged();
    const r = await udpBurst(lab, a.ns, b.ns, b.ip, 3000, 1400);
    expect(r).toEqual({ received: 3000, intact: 3000, distinct: 3000 });
    // Some of them crossed b's TAP as one write per run (the kernel cut them apart again).
    expect(await merged()).toBeGreaterThan(before);
    // And from the kernel VXLAN host (its own encapsulation, outer checksum 0) to a tapmesh host.
    const k = await udpBurst(lab, kc.ns, a.ns, a.ip, 1000, 1000, 5302);
    expect(k).toEqual({ received: 1000, intact: 1000, distinct: 1000 });
    // And to it: tapmesh sends the bursts as UDP GSO runs; the kernel's VXLAN socket cuts them.
    const joined = async () => ((await statsOf(lab, a.host)).net as unknown as Record<string, number>).gsoJoined ?? 0;
    const j0 = await joined();
    const toK = await udpBurst(lab, a.ns, kc.ns, kc.ip, 1000, 1000, 5303);
    expect(toK).toEqual({ received: 1000, intact: 1000, distinct: 1000 });
    expect(await joined()).toBeGreaterThan(j0);
  });

  it('a kernel VXLAN host and a tapmesh host exchange ping and TCP in both directions', async () => {
    const t = ov.containers[0];
    expect(await ping(lab, t.ns, kc.ip)).toBe(true);
    expect(await ping(lab, kc.ns, t.ip)).toBe(true);
    const there = await tcpTransfer(lab, t.ns, kc.ns, kc.ip, 5 * 1024 * 1024, 5002);
    expect(there.received.sha256).toBe(there.sent.sha256);
    const back = await tcpTransfer(lab, kc.ns, t.ns, t.ip, 5 * 1024 * 1024, 5003);
    expect(back.received.sha256).toBe(back.sent.sha256);
  });

  it('for a known endpoint no ARP request leaves the host: the router answers it', async () => {
    const [a, b] = [ov.containers[0], ov.containers[1]];
    await lab.mustExec(a.ns, 'ip', ['neigh', 'flush', 'dev', 'eth0']);
    const before = (await statsOf(lab, a.host)).net.arpReplied ?? 0;
    // Capture VXLAN-carried ARP (inner ethertype 0x0806 at UDP offset 8+8+12) on the underlay.
    const pcap = path.join(lab.dir, 'arp.pcap');
    // --immediate-mode: without it, packets still in a partly filled capture block are lost at
    // SIGINT, and the capture would come back empty whatever crossed the wire.
    const cap = lab.spawnIn(a.host.ns, 'tcpdump', ['--immediate-mode', '-i', 'ul0', '-U', '-w', pcap, 'udp port 4789'], 'tcpdump.log');
    await sleep(800);
    expect(await ping(lab, a.ns, b.ip, 2)).toBe(true);
    await sleep(300);
    await lab.stopProcess(cap, 'SIGINT');
    // The capture saw the pings' VXLAN datagrams, and no ARP among them.
    expect(await lab.mustExec(a.host.ns, 'tcpdump', ['-r', pcap, '-nn'])).toMatch(/ICMP echo request/);
    const arp = await lab.mustExec(a.host.ns, 'tcpdump', ['-r', pcap, '-nn', 'udp[28:2] = 0x0806']);
    expect(arp.trim()).toBe('');
    const after = (await statsOf(lab, a.host)).net.arpReplied ?? 0;
    expect(after).toBeGreaterThan(before);
    // And the container did learn the neighbour from that local answer.
    expect(await lab.mustExec(a.ns, 'ip', ['neigh', 'show', b.ip])).toContain(b.mac);
  });

  it('drops hostile input by reason and keeps forwarding good traffic', async () => {
    const [a, b, c] = ov.containers;
    const h1 = a.host;
    const h2 = b.host;
    const good = vxlan(ov.vni, ipv4Frame(a.mac, b.mac, ip(b.ip), ip(a.ip), 17, 1000, 2000, 20));
    const badFlags = Buffer.from(good);
    badFlags[0] = 0x88;
    const spoofMac = vxlan(ov.vni, ipv4Frame(a.mac, c.mac, ip(c.ip), ip(a.ip), 17, 1, 2, 20)); // h3's container, sent by h2
    const spoofIp = vxlan(ov.vni, ipv4Frame(a.mac, b.mac, ip(a.ip), ip(a.ip), 17, 1, 2, 20)); // claims h1's own address
    const before = await statsOf(lab, h1);
    const hex = (b2: Buffer) => b2.toString('hex');
    await lab.mustExec(h2.ns, 'python3', [INJECT, 'udp', h2.addr, h1.addr, '4789',
      hex(Buffer.from('random junk that is not vxlan at all')), hex(good.subarray(0, 12)), hex(badFlags),
      hex(vxlan(0x123456, good.subarray(8))), hex(spoofMac), hex(spoofIp)]);
    // A sender that is no VTEP of the network.
    await lab.mustExec(h2.ns, 'ip', ['addr', 'add', '192.0.2.200/24', 'dev', 'ul0']);
    await lab.mustExec(h2.ns, 'python3', [INJECT, 'udp', '192.0.2.200', h1.addr, '4789', hex(good)]);
    // Malformed and spoofed frames from a container on h1 (the TAP side).
    await lab.mustExec(a.ns, 'python3', [INJECT, 'raw', 'eth0',
      hex(ipv4Frame(b.mac, '02:42:0a:00:09:77', ip('10.0.9.77'), ip(b.ip), 17, 1, 2, 20)), // spoofed source MAC
      hex(Buffer.concat([arpFrame(1, a.mac, ip(a.ip), '00:00:00:00:00:00', ip(b.ip)).subarray(0, 14), Buffer.alloc(10, 0xee)])), // bad ARP
      hex(ipv4Frame('02:42:0a:00:09:fe', a.mac, ip(a.ip), ip('10.0.9.254'), 17, 1, 2, 20)), // unknown destination
    ]);
    await sleep(300);
    const after = await statsOf(lab, h1);
    const d = (s: Record<string, number>, k: string) => s[k] ?? 0;
    expect(d(after.global, 'vxlanShort') - d(before.global, 'vxlanShort')).toBe(1);
    expect(d(after.global, 'vxlanBadFlags') - d(before.global, 'vxlanBadFlags')).toBe(2); // junk + flags 0x88
    expect(d(after.global, 'unknownVni') - d(before.global, 'unknownVni')).toBe(1);
    expect(d(after.net.Drops, 'spoofedSrcMac') - d(before.net.Drops, 'spoofedSrcMac')).toBe(1);
    expect(d(after.net.Drops, 'spoofedSrcIp') - d(before.net.Drops, 'spoofedSrcIp')).toBe(1);
    expect(d(after.net.Drops, 'unknownVtep') - d(before.net.Drops, 'unknownVtep')).toBe(1);
    expect(d(after.net.Drops, 'tapUnknownSrc') - d(before.net.Drops, 'tapUnknownSrc')).toBeGreaterThanOrEqual(1);
    expect(d(after.net.Drops, 'arpMalformed') - d(before.net.Drops, 'arpMalformed')).toBe(1);
    expect(d(after.net.Drops, 'unknownDst') - d(before.net.Drops, 'unknownDst')).toBe(1);
    // Good traffic still flows, and the human-readable stats name the reasons.
    expect(await ping(lab, a.ns, b.ip, 2)).toBe(true);
    const human = await lab.mustCli(h1, ['stats', 'overnet']);
    expect(human).toMatch(/spoofedSrcMac\s+\d+/);
  });

  it('a stranger behind the static VTEP cannot grow the forwarding table past the learning cap', async () => {
    const [a, b] = ov.containers;
    const h1 = a.host;
    const cap = LEARNING_DEFAULTS.maxLearned;
    // Datagrams from the kernel host's underlay address, each from a MAC never seen before.
    let next = 0;
    const fresh = (n: number) => Array.from({ length: n }, () => {
      const i = next++;
      const m = `02:ee:00:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`;
      return vxlan(ov.vni, ipv4Frame(a.mac, m, ip('10.0.9.201'), ip(a.ip), 17, 1, 9, 20)).toString('hex');
    });
    const full = async () => (await statsOf(lab, h1)).net.Drops?.learnedFull ?? 0;
    const full0 = await full();
    const inject = (hex: string[]) => lab.mustExec(kh.ns, 'python3', [INJECT, 'udp', kh.addr, h1.addr, '4789', ...hex]);
    // `cap` new MACs at once (the agent's 32 MiB socket buffer holds them), then more until the
    // cap refuses one (the network may have learned a few MACs before).
    await inject(fresh(cap));
    await sleep(300);
    while ((await full()) === full0) {
      expect(next, 'MACs sent without reaching the cap').toBeLessThan(cap + 1000);
      await inject(fresh(20));
      await sleep(100);
    }
    // At the cap: every further new MAC is refused and nothing more is learned.
    await sleep(300);
    const full1 = await full();
    const learned1 = (await statsOf(lab, h1)).net.learned ?? 0;
    await inject(fresh(20));
    await waitFor('20 more new MACs to be refused', async () => (await full()) >= full1 + 20, 5000, 100);
    await sleep(200);
    expect(await full()).toBe(full1 + 20);
    expect((await statsOf(lab, h1)).net.learned ?? 0).toBe(learned1);
    const inspect = JSON.parse(await lab.mustCli(h1, ['network', 'inspect', 'overnet', '--verbose']));
    const strangers = (inspect[0].Forwarding as { MacAddress: string }[]).filter((f) => f.MacAddress.startsWith('02:ee:00:'));
    expect(strangers.length).toBeGreaterThan(0);
    expect(strangers.length).toBeLessThanOrEqual(cap);
    // Everyone else is unaffected.
    expect(await ping(lab, a.ns, b.ip, 2)).toBe(true);
    expect(await ping(lab, a.ns, kc.ip, 2)).toBe(true);
  }, 120_000);

  it('an agent restart keeps addresses and traffic resumes', async () => {
    const [a, b] = ov.containers;
    const h1 = a.host;
    await lab.stopProcess(ov.agents[0], 'SIGKILL');
    // With the agent gone the TAP is gone: traffic stops.
    expect(await ping(lab, a.ns, b.ip, 1)).toBe(false);
    ov.agents[0] = await lab.startAgent(h1);
    const addr = await lab.mustExec(a.ns, 'ip', ['-o', 'addr', 'show', 'dev', 'eth0']);
    expect(addr).toContain(`${a.ip}/24`);
    await waitFor('traffic to resume after restart', async () => ping(lab, a.ns, b.ip, 1), 15_000, 200);
    const inspect = JSON.parse(await lab.mustCli(h1, ['network', 'inspect', 'overnet']));
    const eps = Object.values(inspect[0].Containers) as { IPv4Address: string; MacAddress: string }[];
    expect(eps).toEqual([expect.objectContaining({ IPv4Address: `${a.ip}/24`, MacAddress: a.mac })]);
    // The peers came back too: the kernel host is still reachable.
    expect(await ping(lab, a.ns, kc.ip, 2)).toBe(true);
  });
});
