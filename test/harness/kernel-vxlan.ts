// A host that speaks plain Linux kernel VXLAN, laid out as Docker's overlay does it: br0 with a
// vxlan device (static FDB, no learning) and a veth to the container. Used as tapmesh's
// interop peer in tests and as the reference system in bench/.
import { must, type Host } from './lab.js';

export interface KernelRemote {
  mac: string;
  ip: string;
  vtep: string;
}

export interface KernelVxlanOptions {
  vni: number;
  port?: number;
  mtu: number;
  container: string;
  ip: string;
  prefixLen: number;
  mac: string;
  remotes: KernelRemote[];
  /** VTEPs that get broadcast (all-zeros FDB entries), e.g. for ARP. */
  floodTo?: string[];
  /** Install static neighbour entries for the remotes in the container (as Docker's peerAdd does). */
  staticNeigh?: boolean;
  /**
   * Leave the underlay veth's offloads at their defaults (as users have them): the inner TCP/UDP
   * checksum then travels unfinished (CHECKSUM_PARTIAL crosses veth with the skb). Default
   * false: tx checksumming off, so a real NIC's behaviour (checksums finished) is tested too.
   */
  defaultOffloads?: boolean;
}

export async function setupKernelVxlanHost(host: Host, o: KernelVxlanOptions): Promise<void> {
  const h = host.ns;
  const ipn = (ns: string, ...args: string[]) => must('ip', ['-n', ns, ...args]);
  // A veth "wire" carries the inner TCP checksum unfinished (CHECKSUM_PARTIAL travels with the
  // skb between namespaces); a real NIC finishes it, and so does software checksumming here.
  if (!o.defaultOffloads) await must('ip', ['netns', 'exec', h, 'ethtool', '-K', 'ul0', 'tx', 'off']);
  await ipn(h, 'link', 'add', 'br0', 'type', 'bridge');
  await ipn(h, 'link', 'add', 'vx0', 'mtu', String(o.mtu), 'type', 'vxlan', 'id', String(o.vni),
    'dstport', String(o.port ?? 4789), 'local', host.addr, 'nolearning');
  await ipn(h, 'link', 'set', 'vx0', 'master', 'br0');
  await ipn(h, 'link', 'add', 'vk0', 'mtu', String(o.mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', o.container);
  await ipn(h, 'link', 'set', 'vk0', 'master', 'br0');
  for (const dev of ['vx0', 'vk0', 'br0']) await ipn(h, 'link', 'set', dev, 'up');
  await ipn(o.container, 'link', 'set', 'eth0', 'address', o.mac, 'mtu', String(o.mtu));
  await ipn(o.container, 'addr', 'add', `${o.ip}/${o.prefixLen}`, 'dev', 'eth0');
  await ipn(o.container, 'link', 'set', 'eth0', 'up');
  await ipn(o.container, 'link', 'set', 'lo', 'up');
  for (const r of o.remotes) {
    await must('ip', ['netns', 'exec', h, 'bridge', 'fdb', 'append', r.mac, 'dev', 'vx0', 'dst', r.vtep, 'self', 'permanent']);
    if (o.staticNeigh) await ipn(o.container, 'neigh', 'replace', r.ip, 'lladdr', r.mac, 'dev', 'eth0', 'nud', 'permanent');
  }
  for (const v of o.floodTo ?? []) {
    await must('ip', ['netns', 'exec', h, 'bridge', 'fdb', 'append', '00:00:00:00:00:00', 'dev', 'vx0', 'dst', v, 'self', 'permanent']);
  }
}
