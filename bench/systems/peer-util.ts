// Helpers shared by the optional peer systems (fastd, wireguard-go): finding a binary on PATH and
// giving a container an eth0 that is a veth into its host namespace.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { must } from '../../test/harness/lab.js';
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
