// The reference: Linux kernel VXLAN laid out the way Docker's overlay driver does it. In each host
// namespace a bridge br0 with a vxlan device (VNI 4096, UDP 4789, static FDB, no learning) and a
// veth whose far end is the container's eth0; the container has a static neighbour entry for the
// remote container, as Docker's peerAdd installs.
import { must } from '../../test/harness/lab.js';
import { OVERLAY, macFor, type OverlaySystem, type Probe, type Topology } from './system.js';

async function ipn(ns: string, ...args: string[]): Promise<void> {
  await must('ip', ['-n', ns, ...args]);
}

export function kernelVxlan(): OverlaySystem {
  return {
    id: 'kernel-vxlan',
    label: 'kernel VXLAN',
    async probe(): Promise<Probe> {
      return { ok: true };
    },
    async setup(t: Topology, log): Promise<void> {
      for (let i = 0; i < 2; i++) {
        const host = t.hosts[i];
        const remote = t.hosts[1 - i];
        const c = t.containers[i];
        const ip = OVERLAY.ips[i];
        const remoteIp = OVERLAY.ips[1 - i];
        const h = host.ns;
        await ipn(h, 'link', 'add', 'br0', 'type', 'bridge');
        await ipn(h, 'link', 'add', 'vx0', 'mtu', String(OVERLAY.mtu), 'type', 'vxlan', 'id', String(OVERLAY.vni),
          'dstport', String(OVERLAY.port), 'local', host.addr, 'nolearning');
        await ipn(h, 'link', 'set', 'vx0', 'master', 'br0');
        await ipn(h, 'link', 'add', 'veth0', 'mtu', String(OVERLAY.mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c);
        await ipn(h, 'link', 'set', 'veth0', 'master', 'br0');
        for (const dev of ['vx0', 'veth0', 'br0']) await ipn(h, 'link', 'set', dev, 'up');
        await ipn(c, 'link', 'set', 'eth0', 'address', macFor(ip), 'mtu', String(OVERLAY.mtu));
        await ipn(c, 'addr', 'add', `${ip}/${OVERLAY.prefixLen}`, 'dev', 'eth0');
        await ipn(c, 'link', 'set', 'eth0', 'up');
        // Remote endpoint: VXLAN FDB (where its MAC lives) and the container's ARP entry.
        await must('ip', ['netns', 'exec', h, 'bridge', 'fdb', 'append', macFor(remoteIp), 'dev', 'vx0', 'dst', remote.addr, 'self', 'permanent']);
        await ipn(c, 'neigh', 'replace', remoteIp, 'lladdr', macFor(remoteIp), 'dev', 'eth0', 'nud', 'permanent');
        log(`${host.name}: br0 + vx0 (VNI ${OVERLAY.vni}, local ${host.addr}) + veth → ${c} eth0 ${ip}`);
      }
    },
    pids: () => [],
  };
}
