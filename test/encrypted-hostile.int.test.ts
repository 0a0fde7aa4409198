// Issue 8, hostile input against an encrypted network on real namespaces: cleartext VXLAN with
// the encrypted VNI (from a member, from a stranger, and on a one-host network), a captured ESP
// packet replayed, a flipped bit, an unknown SPI, a wrong sender, truncated ESP. None reaches a
// container (a capture inside it), each is counted under its reason, good traffic keeps flowing.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ipv4Frame, ip, vxlan } from '../router/testframes.js';
import { Lab, must, repoRoot, requireRoot, sleep, type Host } from './harness/lab.js';
import type { Overlay } from './harness/overlay.js';
import { captureEsp, encryptedOverlay, ping, tcpdumpListening } from './harness/esp.js';

const root = requireRoot('encrypted overlay hostile-input integration');
const INJECT = path.join(repoRoot, 'test/harness/inject.py');
const STRANGER = '192.0.2.200';
const MARKER = 'TMHOSTILEMARKER7'; // 16 bytes: ping -p fills the payload with it
const MARKER_HEX = Buffer.from(MARKER).toString('hex');
const hex = (b: Buffer) => b.toString('hex');

type Line = { Network: string; Drops: Record<string, number> };
async function drops(lab: Lab, h: Host, network: string): Promise<{ net: Record<string, number>; global: Record<string, number> }> {
  const lines = (await lab.mustCli(h, ['stats', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l) as Line);
  return { net: lines.find((l) => l.Network === network)?.Drops ?? {}, global: lines.find((l) => l.Network === '')!.Drops };
}
const delta = (a: Record<string, number>, b: Record<string, number>, k: string) => (b[k] ?? 0) - (a[k] ?? 0);

describe.skipIf(!root)('encrypted overlay under hostile input', () => {
  const lab = new Lab();
  let ov: Overlay;

  beforeAll(async () => {
    ov = await encryptedOverlay(lab, 2, ['--gossip-profile', 'fast']);
    await lab.mustExec(ov.hosts[1].ns, 'ip', ['addr', 'add', `${STRANGER}/24`, 'dev', 'ul0']);
  }, 90_000);
  afterAll(() => lab.cleanup());

  it('replayed, bit-flipped, unknown-SPI, wrong-sender and truncated ESP, and cleartext VXLAN: none reaches the container, each counted', async () => {
    const [a, b] = ov.containers;
    const [h1, h2] = ov.hosts;
    // Capture one genuine ESP packet h2 → h1 carrying the marker.
    const payloads = await captureEsp(lab, h2, h1, 'esp', async () => {
      expect((await ping(lab, b.ns, a.ip, ['-c', '1', '-p', MARKER_HEX, '-s', '64'])).ok).toBe(true);
    });
    expect(payloads.length).toBeGreaterThanOrEqual(1);
    const esp = payloads[0];

    const flipped = Buffer.from(esp);
    flipped[4] ^= 0x80; // the top bit of the sequence number: a fresh number, so it reaches the AEAD
    const unknownSpi = Buffer.from(esp);
    unknownSpi.writeUInt32BE(0x7e57ab1e, 0);
    const clear = vxlan(ov.vni, ipv4Frame(a.mac, b.mac, ip(b.ip), ip(a.ip), 17, 1000, 2000, 64));
    clear.write(MARKER, 8 + 42);

    // Watch the container's interface for anything carrying the marker from now on.
    const inner = path.join(lab.dir, 'container.pcap');
    const watch = lab.spawnIn(a.ns, 'tcpdump', ['--immediate-mode', '-i', 'eth0', '-s', '0', '-U', '-w', inner], 'tcpdump-c.log');
    await tcpdumpListening(lab, 'tcpdump-c.log');
    const before = await drops(lab, h1, ov.network);
    await lab.mustExec(h2.ns, 'python3', [INJECT, 'udp', h2.addr, h1.addr, '4500', hex(esp), hex(flipped), hex(unknownSpi), hex(esp.subarray(0, 20))]);
    await lab.mustExec(h2.ns, 'python3', [INJECT, 'udp', STRANGER, h1.addr, '4500', hex(esp)]);
    await lab.mustExec(h2.ns, 'python3', [INJECT, 'udp', h2.addr, h1.addr, '4789', hex(clear)]);
    await lab.mustExec(h2.ns, 'python3', [INJECT, 'udp', STRANGER, h1.addr, '4789', hex(clear)]);
    await sleep(500);
    const after = await drops(lab, h1, ov.network);
    expect(delta(before.global, after.global, 'espReplay')).toBe(1);
    expect(delta(before.global, after.global, 'espAuthFail')).toBe(1);
    expect(delta(before.global, after.global, 'espNoSa')).toBe(1);
    expect(delta(before.global, after.global, 'espMalformed')).toBe(1);
    expect(delta(before.global, after.global, 'espWrongPeer')).toBe(1);
    expect(delta(before.net, after.net, 'cleartextOnEncrypted')).toBe(2);
    // Good traffic keeps flowing, both ways.
    expect((await ping(lab, a.ns, b.ip)).ok).toBe(true);
    expect((await ping(lab, b.ns, a.ip)).ok).toBe(true);
    await sleep(300);
    await lab.stopProcess(watch, 'SIGINT');
    expect(readFileSync(inner).includes(MARKER)).toBe(false);
    expect(await must('tcpdump', ['-r', inner, '-nn'])).toMatch(/ICMP echo request/); // the capture did see the good pings
  }, 60_000);

  it('a one-host encrypted network drops cleartext VXLAN with its VNI, from a member and from a stranger', async () => {
    const h3 = await lab.addHost('h3');
    await lab.startAgent(h3, ['--gossip-profile', 'fast']);
    await lab.mustCli(h3, ['network', 'create', '-d', 'overlay', '--subnet', '10.0.20.0/24', '--opt', 'encrypted', '--opt', 'com.docker.network.driver.overlay.vxlanid_list=4300', 'solo']);
    const c = await lab.addContainer(h3, 'c1');
    await lab.mustCli(h3, ['network', 'connect', '--ip', '10.0.20.2', 'solo', c]);
    const frame = vxlan(4300, ipv4Frame('02:42:0a:00:14:02', '02:42:0a:00:14:03', ip('10.0.20.3'), ip('10.0.20.2'), 17, 1, 2, 32));
    const before = await drops(lab, h3, 'solo');
    await lab.mustExec(ov.hosts[1].ns, 'python3', [INJECT, 'udp', ov.hosts[1].addr, h3.addr, '4789', hex(frame)]);
    await lab.mustExec(ov.hosts[1].ns, 'python3', [INJECT, 'udp', STRANGER, h3.addr, '4789', hex(frame)]);
    await sleep(400);
    const after = await drops(lab, h3, 'solo');
    expect(delta(before.net, after.net, 'cleartextOnEncrypted')).toBe(2);
  }, 60_000);
});
