// Helpers shared by the optional peer systems (fastd, wireguard-go, the null relays): finding a
// binary on PATH, giving a container an eth0 that is a veth into its host namespace, and the L2
// wiring of a system whose process owns a TAP (the TAP and that veth on a bridge).
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { must, run, sleep } from '../../test/harness/lab.js';
import { OVERLAY, macFor } from './system.js';

export function which(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir, bin);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** veth pair: `veth0` in the host namespace, `eth0` (Docker MAC, overlay IP, given MTU) in the container. */
export async function containerVeth(hostNs: string, container: string, i: number, mtu: number): Promise<void> {
  const ip = OVERLAY.ips[i];
  await must('ip', ['-n', hostNs, 'link', 'add', 'veth0', 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', container]);
  await must('ip', ['-n', container, 'link', 'set', 'eth0', 'address', macFor(ip), 'mtu', String(mtu)]);
  await must('ip', ['-n', container, 'addr', 'add', `${ip}/${OVERLAY.prefixLen}`, 'dev', 'eth0']);
  await must('ip', ['-n', container, 'link', 'set', 'eth0', 'up']);
  await must('ip', ['-n', hostNs, 'link', 'set', 'veth0', 'up']);
}

/** Wait (up to ~5 s) until the process `child` has created `dev` in hostNs; else throw, pointing at its log. */
export async function waitForLink(hostNs: string, dev: string, child: ChildProcess, log: string): Promise<void> {
  for (let n = 0; ; n++) {
    if ((await run('ip', ['-n', hostNs, 'link', 'show', dev])).code === 0) return;
    if (child.exitCode !== null || n > 50) throw new Error(`${dev} did not appear in ${hostNs}; see ${log}`);
    await sleep(100);
  }
}

/**
 * br0 in the host namespace with `dev` (a TAP some process owns) and the container's veth (see
 * containerVeth) on it, and a permanent neighbour entry for the remote container, as Docker's
 * peerAdd installs. `mtu`: also set on both bridge ports.
 */
export async function bridgeTapToContainer(hostNs: string, container: string, i: number, dev: string, mtu?: number): Promise<void> {
  await must('ip', ['-n', hostNs, 'link', 'add', 'br0', 'type', 'bridge']);
  await containerVeth(hostNs, container, i, OVERLAY.mtu);
  for (const d of [dev, 'veth0']) await must('ip', ['-n', hostNs, 'link', 'set', d, ...(mtu === undefined ? [] : ['mtu', String(mtu)]), 'master', 'br0', 'up']);
  await must('ip', ['-n', hostNs, 'link', 'set', 'br0', 'up']);
  const rip = OVERLAY.ips[1 - i];
  await must('ip', ['-n', container, 'neigh', 'replace', rip, 'lladdr', macFor(rip), 'dev', 'eth0', 'nud', 'permanent']);
}
