// Issue 8, on real namespaces: SA rotation with --rekey-interval 5s loses nothing (a 30 s ping at
// 20/s and a TCP stream across at least five rotations), a packet of a rotated-out SA is refused
// once the grace period is over, and an agent restarted mid-stream re-establishes its SAs with
// traffic resuming within seconds and not one cleartext frame on the underlay meanwhile.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, must, repoRoot, requireRoot, sleep } from './harness/lab.js';
import type { Overlay } from './harness/overlay.js';
import { captureEsp, encryptedOverlay, espOf, ping, tcpdumpListening, waitForSas } from './harness/esp.js';
import { tcpTransfer } from './harness/transfer.js';

const root = requireRoot('encrypted overlay rotation integration');
const INJECT = path.join(repoRoot, 'test/harness/inject.py');
const AGENT_ARGS = ['--gossip-profile', 'fast', '--rekey-interval', '5s'];

/** icmp_seq numbers that got a reply. */
function replied(out: string): number[] {
  return [...out.matchAll(/icmp_seq=(\d+)/g)].map((m) => Number(m[1]));
}

describe.skipIf(!root)('encrypted overlay: rotation and restart', () => {
  const lab = new Lab();
  let ov: Overlay;

  beforeAll(async () => {
    ov = await encryptedOverlay(lab, 2, AGENT_ARGS);
  }, 90_000);
  afterAll(() => lab.cleanup());

  it('a 30 s ping at 20/s and a TCP stream across five or more rotations lose nothing', async () => {
    const [a, b] = ov.containers;
    const spisBefore = new Set((await espOf(lab, a.host)).sas.filter((s) => s.Direction === 'out').map((s) => s.SPI));
    const [p, t] = await Promise.all([
      ping(lab, a.ns, b.ip, ['-c', '600', '-i', '0.05']),
      tcpTransfer(lab, b.ns, a.ns, a.ip, 45 * 1024 * 1024, 5020, 90_000, 1.5 * 1024 * 1024),
    ]);
    const got = replied(p.out);
    expect(p.out).toMatch(/600 packets transmitted, 600 received/);
    expect(new Set(got).size).toBe(600);
    expect(t.received.bytes).toBe(45 * 1024 * 1024);
    expect(t.received.sha256).toBe(t.sent.sha256);
    // At least five rotations happened in each direction: the keylog-free way, by counting the
    // generations the agents logged.
    for (const h of ov.hosts) {
      const log = readFileSync(path.join(lab.dir, `${h.name}-agent.log`), 'utf8');
      expect((log.match(/outbound SA switched/g) ?? []).length, h.name).toBeGreaterThanOrEqual(6);
    }
    const spisAfter = (await espOf(lab, a.host)).sas.filter((s) => s.Direction === 'out' && s.Current).map((s) => s.SPI);
    expect(spisAfter.some((s) => spisBefore.has(s))).toBe(false);
    const esp = await espOf(lab, a.host);
    expect(esp.counters.authFail + esp.counters.replay + esp.counters.malformed).toBe(0);
  }, 150_000);

  it('after a rotation and its grace period, a packet of the old SA is refused (espNoSa)', async () => {
    const [a, b] = ov.containers;
    const [h1, h2] = ov.hosts;
    const [first] = await captureEsp(lab, h2, h1, 'old-sa', async () => {
      expect((await ping(lab, b.ns, a.ip, ['-c', '1'])).ok).toBe(true);
    });
    const old = first.toString('hex');
    // Interval 5 s, grace 2.5 s: after 9 s that SA has been replaced and has expired.
    await sleep(9000);
    const before = (await espOf(lab, h1)).counters;
    const bumped = Buffer.from(old, 'hex');
    bumped.writeUInt32BE(bumped.readUInt32BE(4) + 1000, 4); // not a replay: only the SA's age refuses it
    await lab.mustExec(h2.ns, 'python3', [INJECT, 'udp', h2.addr, h1.addr, '4500', old, bumped.toString('hex')]);
    await sleep(300);
    const after = (await espOf(lab, h1)).counters;
    expect(after.noSa - before.noSa).toBe(2);
    expect(after.opened - before.opened).toBeLessThan(50); // nothing else to open besides live traffic
    expect((await ping(lab, b.ns, a.ip)).ok).toBe(true);
  }, 60_000);

  it('an agent restarted mid-stream re-establishes its SAs within seconds; no cleartext frame in between', async () => {
    const [a, b] = ov.containers;
    const h2 = ov.hosts[1];
    const pcap = path.join(lab.dir, 'restart.pcap');
    const cap = lab.spawnIn(lab.underlayNs, 'tcpdump', ['--immediate-mode', '-i', 'br0', '-s', '0', '-U', '-w', pcap, 'udp'], 'tcpdump-restart.log');
    await tcpdumpListening(lab, 'tcpdump-restart.log');
    const pinging = ping(lab, a.ns, b.ip, ['-c', '400', '-i', '0.05']); // 20 s
    await sleep(5000);
    await lab.stopProcess(ov.agents[1]);
    const downAt = Date.now();
    await sleep(1000);
    const secret = path.join(lab.dir, 'join.token');
    ov.agents[1] = await lab.startAgent(h2, ['--node-name', h2.name, '--join', ov.hosts[0].addr, '--secret-file', secret, ...AGENT_ARGS]);
    const upAt = Date.now();
    await waitForSas(lab, ov, 15_000);
    const p = await pinging;
    await lab.stopProcess(cap, 'SIGINT');
    const got = replied(p.out);
    // Replies resume: every one of the last 5 s of pings got through, and the gap around the
    // restart is only the agent's downtime plus a few seconds.
    expect(got.filter((s) => s > 300).length).toBe(100);
    const missing = 400 - new Set(got).size;
    const downMs = upAt - downAt;
    expect(missing * 50).toBeLessThan(downMs + 5000);
    // Not one VXLAN datagram on the underlay: every frame was ESP, before, during and after.
    expect((await must('tshark', ['-r', pcap, '-Y', 'udp.port == 4789 || vxlan', '-T', 'fields', '-e', 'frame.number'])).trim()).toBe('');
    expect((await must('tshark', ['-r', pcap, '-Y', 'esp', '-T', 'fields', '-e', 'frame.number'])).trim().split('\n').length).toBeGreaterThan(300);
  }, 90_000);
});
