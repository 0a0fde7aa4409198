// The reference: Linux kernel VXLAN laid out the way Docker's overlay driver does it. In each host
// namespace a bridge br0 with a vxlan device (VNI 4096, UDP 4789, static FDB, no learning) and a
// veth whose far end is the container's eth0; the container has a static neighbour entry for the
// remote container, as Docker's peerAdd installs. The wiring itself is the shared test harness's
// (test/harness/kernel-vxlan.ts), so bench and interop tests build the same thing.
import { setupKernelVxlanHost } from '../../test/harness/kernel-vxlan.js';
import { OVERLAY, macFor, type OverlaySystem, type Probe, type Topology } from './system.js';

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
        const ip = OVERLAY.ips[i];
        const remoteIp = OVERLAY.ips[1 - i];
        await setupKernelVxlanHost(host, {
          vni: OVERLAY.vni, port: OVERLAY.port, mtu: OVERLAY.mtu, container: t.containers[i], ip, prefixLen: OVERLAY.prefixLen,
          mac: macFor(ip), remotes: [{ mac: macFor(remoteIp), ip: remoteIp, vtep: t.hosts[1 - i].addr }], staticNeigh: true,
        });
        log(`${host.name}: br0 + vx0 (VNI ${OVERLAY.vni}, local ${host.addr}) + veth → ${t.containers[i]} eth0 ${ip}`);
      }
    },
    pids: () => [],
  };
}
