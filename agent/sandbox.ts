// Per-network sandboxes: a named network namespace holding br0 and the network's TAP, with one
// veth per attached container (design.md §1). Control path only: it drives iproute2 and
// nsenter, which every Linux host running containers has.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, statSync, statfsSync } from 'node:fs';
import { TUN_F, native } from '../native/index.js';

export class CommandError extends Error {}

export function exec(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      if (err) reject(new CommandError(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Where a container's network namespace is: a name under /run/netns, a PID, or a path. */
export function resolveContainer(spec: string): string {
  let p: string;
  if (/^\d+$/.test(spec)) p = `/proc/${spec}/ns/net`;
  else if (spec.includes('/')) p = spec;
  else if (/^[A-Za-z0-9_.-]+$/.test(spec)) p = `/run/netns/${spec}`;
  else throw new Error(`invalid container reference "${spec}"`);
  if (!existsSync(p)) throw new Error(`container "${spec}" not found (expected a netns name under /run/netns, a PID or a namespace path)`);
  statSync(p);
  return p;
}

/** statfs f_type of a mounted namespace file (nsfs). */
const NSFS_MAGIC = 0x6e736673;
/**
 * Frames the kernel queues on tap0 for the agent to read (the TUN ring; Linux's default is 500).
 * At 80 k frames/s, 500 are 6 ms: less than a datapath thread is away when a 2-core host also
 * runs the containers that send. 4096 frames of at most 64 KB bound a stalled agent's queue; TCP
 * small queues keep a TCP flow's share of it to a few super-frames.
 */
const TAP_TX_QUEUE = Number(process.env.TAPMESH_TAP_TXQUEUE ?? 4096);

/** True if path is a live namespace mount here, not an empty mount point left behind. */
export function isNsMount(p: string): boolean {
  try {
    return statfsSync(p).type === NSFS_MAGIC;
  } catch {
    return false;
  }
}

/**
 * The mount namespace to mount sandboxes in, if not ours. `ip netns exec` gives the agent a
 * private mount namespace (a slave of the one it was started from): a namespace mounted there
 * dies with the agent, so a kill -9 would take every sandbox and container interface along.
 * Mounted in the outer namespace instead, it propagates into ours (the /run/netns mount is
 * shared there) and outlives the agent. The outer one is PID 1's if we may read it (a host),
 * else the nearest ancestor's that differs from ours (e.g. inside a container).
 * (With `nsenter --net` the agent shares its parent's mount namespace and mounts directly.)
 */
let outerMnt: string | null | undefined;
function outerMountNs(): string | null {
  if (outerMnt !== undefined) return outerMnt;
  outerMnt = null;
  const link = (pid: number | 'self') => {
    try {
      return readlinkSync(`/proc/${pid}/ns/mnt`);
    } catch {
      return '';
    }
  };
  const own = link('self');
  const candidates = [1];
  for (let pid = process.ppid, i = 0; pid > 1 && i < 16; i++) {
    candidates.push(pid);
    const m = /^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    pid = m ? Number(m[1]) : 0;
  }
  for (const pid of candidates) {
    const l = link(pid);
    if (l !== '' && l !== own) {
      outerMnt = `/proc/${pid}/ns/mnt`;
      break;
    }
  }
  return outerMnt;
}

/** `ip netns add|del` for sandboxes, in the outer mount namespace when the agent has a private one. */
function netnsCmd(args: string[]): Promise<string> {
  let outer: string | null = null;
  try {
    outer = outerMountNs();
  } catch {
    outer = null;
  }
  if (outer === null) return exec('ip', ['netns', ...args]);
  return exec('nsenter', [`--mount=${outer}`, 'ip', 'netns', ...args]).catch(() => exec('ip', ['netns', ...args]));
}

export interface AttachOptions {
  /** veth end that stays in the sandbox on br0. */
  vethName: string;
  mac: string;
  ip: string;
  prefixLen: number;
  mtu: number;
  /** Interface name inside the container to use if free (re-plumbing after a restart). */
  ifname?: string;
}

export class Sandbox {
  constructor(readonly name: string) {}

  private ip(args: string[]): Promise<string> {
    return exec('ip', ['-n', this.name, ...args]);
  }

  exists(): boolean {
    return isNsMount(`/run/netns/${this.name}`);
  }

  /**
   * Create the namespace and its bridge, or adopt them if an earlier agent made them. An empty
   * mount point (the namespace died with the mount namespace that held it) is removed first.
   * Returns true if the namespace had to be (re)created: nothing inside it survived.
   */
  async ensure(mtu: number): Promise<boolean> {
    const created = !this.exists();
    if (created) {
      if (existsSync(`/run/netns/${this.name}`)) await netnsCmd(['del', this.name]).catch(() => undefined);
      await netnsCmd(['add', this.name]);
    }
    const links = await this.ip(['-o', 'link', 'show']);
    const batch = ['link set lo up'];
    if (!/ br0[:@]/.test(links)) batch.push('link add br0 type bridge');
    batch.push(`link set br0 mtu ${mtu} up`);
    await exec('ip', ['-n', this.name, '-batch', '-'], batch.join('\n') + '\n');
    // Overlay networks carry IPv4 only (as Docker's do unless IPv6 is enabled): no IPv6 noise.
    await exec('ip', ['netns', 'exec', this.name, 'sysctl', '-q', '-w',
      'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
    return created;
  }

  /**
   * Create a TAP in the agent's namespace, move it into the sandbox as tap0 on br0. Returns the
   * open fd, which keeps working after the move.
   */
  async attachTap(tempName: string, mtu: number, offload: boolean): Promise<number> {
    const links = await this.ip(['-o', 'link', 'show']);
    if (/ tap0[:@]/.test(links)) await this.ip(['link', 'del', 'tap0']);
    const n = native();
    const tap = n.tapOpen(tempName, offload);
    try {
      // Offloads: the kernel hands over TCP super-frames (TSO) and partial checksums, and takes
      // GSO frames back; segmentation and coalescing happen in router/offload.ts.
      if (offload) n.tapSetOffload(tap.fd, TUN_F.CSUM | TUN_F.TSO4);
      await exec('ip', ['link', 'set', tap.name, 'netns', this.name]);
      await exec('ip', ['-n', this.name, '-batch', '-'],
        `link set ${tap.name} name tap0\nlink set tap0 mtu ${mtu} txqueuelen ${TAP_TX_QUEUE} master br0 up\n`);
      return tap.fd;
    } catch (e) {
      native().close(tap.fd);
      throw e;
    }
  }

  /**
   * The routing mesh's source in this sandbox (docs/services.md "Routing mesh"): br0 takes the
   * network's gateway address and the mesh MAC, answers no ARP (the agent answers for the
   * gateway with the VIP MAC, so task replies reach the TAP and are steered to the right host),
   * and picks ephemeral ports from this host's slice, so two hosts' connections to one task never
   * share a source port. The VIP MAC is pinned to tap0 so frames to it never flood.
   */
  async meshSource(o: { gateway: string; prefixLen: number; mac: string; vipMac: string; ports: [number, number] }): Promise<void> {
    await exec('ip', ['-n', this.name, '-batch', '-'], [
      `link set br0 address ${o.mac}`,
      `addr replace ${o.gateway}/${o.prefixLen} dev br0`,
    ].join('\n') + '\n');
    await exec('ip', ['netns', 'exec', this.name, 'sysctl', '-q', '-w', 'net.ipv4.conf.br0.arp_ignore=8',
      `net.ipv4.ip_local_port_range=${o.ports[0]} ${o.ports[1]}`, 'net.ipv4.tcp_tw_reuse=1']);
    await exec('bridge', ['-n', this.name, 'fdb', 'replace', o.vipMac, 'dev', 'tap0', 'master', 'static']);
  }

  /** Permanent neighbours on br0 (the routing mesh's tasks): br0 then never sends an ARP request. */
  async setNeighbors(add: { ip: string; mac: string }[], remove: string[]): Promise<void> {
    const lines = [
      ...add.map((n) => `neigh replace ${n.ip} lladdr ${n.mac} dev br0 nud permanent`),
      ...remove.map((ip) => `neigh del ${ip} dev br0`),
    ];
    if (lines.length > 0) await exec('ip', ['-n', this.name, '-force', '-batch', '-'], lines.join('\n') + '\n');
  }

  /** Plug a container in: ethN inside it (MAC, IP, MTU), the peer end on br0. Returns ethN. */
  async connect(container: string, o: AttachOptions): Promise<string> {
    const nsPath = resolveContainer(container);
    const inCtr = (args: string[], input?: string) => exec('nsenter', [`--net=${nsPath}`, 'ip', ...args], input);
    const existing = await inCtr(['-o', 'link', 'show']);
    const taken = (n: string) => new RegExp(` ${n.replace(/\./g, '\\.')}[:@]`).test(existing);
    let ifname = o.ifname && /^[A-Za-z0-9_.-]{1,15}$/.test(o.ifname) && !taken(o.ifname) ? o.ifname : '';
    for (let idx = 0; !ifname; idx++) if (!taken(`eth${idx}`)) ifname = `eth${idx}`;
    await inCtr(['link', 'add', ifname, 'mtu', String(o.mtu), 'type', 'veth', 'peer', 'name', o.vethName, 'netns', this.name]);
    try {
      await exec('nsenter', [`--net=${nsPath}`, 'sysctl', '-q', '-w', `net.ipv6.conf.${ifname}.disable_ipv6=1`]).catch(() => undefined);
      await inCtr(['-batch', '-'], [
        `link set ${ifname} address ${o.mac}`,
        `addr add ${o.ip}/${o.prefixLen} dev ${ifname}`,
        `link set ${ifname} up`,
        'link set lo up',
      ].join('\n') + '\n');
      await this.ip(['link', 'set', o.vethName, 'mtu', String(o.mtu), 'master', 'br0', 'up']);
    } catch (e) {
      await this.ip(['link', 'del', o.vethName]).catch(() => undefined);
      throw e;
    }
    return ifname;
  }

  async hasLink(name: string): Promise<boolean> {
    if (!this.exists()) return false;
    try {
      await this.ip(['link', 'show', name]);
      return true;
    } catch {
      return false;
    }
  }

  async disconnect(vethName: string): Promise<void> {
    if (await this.hasLink(vethName)) await this.ip(['link', 'del', vethName]);
  }

  async remove(): Promise<void> {
    if (existsSync(`/run/netns/${this.name}`)) await netnsCmd(['del', this.name]);
  }
}
