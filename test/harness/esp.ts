// Helpers of the encrypted-network integration tests: ESP counters and SAs from `stats`, waiting
// for SAs between every pair of hosts, ping.
import { waitFor, type Host, type Lab } from './lab.js';
import type { Overlay } from './overlay.js';

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

