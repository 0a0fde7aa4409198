// Helpers of the encrypted-network integration tests: ESP counters and SAs from `stats`, waiting
// for SAs between every pair of hosts, ping.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { must, sleep, waitFor, type Host, type Lab } from './lab.js';
import { buildOverlay, type Overlay } from './overlay.js';

/** The `Esp` object of `stats --format json` (global line). */
export type EspStats = { counters: Record<string, number>; sas: { SPI: string; Direction: string; Peer: string; Current: boolean; Packets: number }[] };

export async function espOf(lab: Lab, h: Host): Promise<EspStats> {
  const lines = (await lab.mustCli(h, ['stats', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l) as { Network: string; Esp?: EspStats });
  return lines.find((l) => l.Network === '')!.Esp!;
}

/** Every host has a current outbound SA to every other host. */
export async function waitForSas(lab: Lab, ov: Overlay, timeoutMs = 20_000): Promise<void> {
  await waitFor('SAs between every pair', async () => {
    for (const h of ov.hosts) {
      const esp = await espOf(lab, h);
      const peers = new Set(esp.sas.filter((s) => s.Direction === 'out' && s.Current).map((s) => s.Peer));
      if (ov.hosts.some((o) => o !== h && !peers.has(o.addr))) return false;
    }
    return true;
  }, timeoutMs, 200);
}

export async function ping(lab: Lab, ns: string, to: string, args: string[] = ['-c', '3', '-i', '0.2']): Promise<{ ok: boolean; out: string }> {
  const r = await lab.exec(ns, 'ping', [...args, '-W', '2', to], 60_000);
  return { ok: r.code === 0, out: r.stdout };
}


/**
 * N gossip-joined hosts with one container each on an `--opt encrypted` network, SAs agreed
 * between every pair; on failure everything the lab made is cleaned up.
 */
export async function encryptedOverlay(lab: Lab, hosts: number, agentArgs: string[]): Promise<Overlay> {
  try {
    const ov = await buildOverlay(lab, { hosts, containersPerHost: 1, mode: 'gossip', createFlags: ['--opt', 'encrypted'], agentArgs });
    await waitForSas(lab, ov);
    return ov;
  } catch (e) {
    await lab.cleanup();
    throw e;
  }
}

/** The ESP packets (UDP payloads) `from` sends to `to` while `action` runs, captured on `to`'s ul0. */
export async function captureEsp(lab: Lab, from: Host, to: Host, name: string, action: () => Promise<void>): Promise<Buffer[]> {
  const pcap = path.join(lab.dir, `${name}.pcap`);
  const cap = lab.spawnIn(to.ns, 'tcpdump', ['--immediate-mode', '-i', 'ul0', '-s', '0', '-U', '-w', pcap, `udp dst port 4500 and src host ${from.addr}`], `tcpdump-${name}.log`);
  await tcpdumpListening(lab, `tcpdump-${name}.log`);
  await action();
  await sleep(300);
  await lab.stopProcess(cap, 'SIGINT');
  const lines = (await must('tshark', ['-r', pcap, '-T', 'fields', '-e', 'udp.payload'])).trim().split('\n').filter(Boolean);
  return lines.map((l) => Buffer.from(l.replaceAll(':', ''), 'hex'));
}

/** Resolves once the tcpdump logging to `logName` (in the lab dir) is capturing. */
export async function tcpdumpListening(lab: Lab, logName: string): Promise<void> {
  await waitFor(`tcpdump (${logName}) listening`, async () => readFileSync(path.join(lab.dir, logName), 'utf8').includes('listening on'), 10_000, 50);
  await sleep(200);
}
