// Per-network sandboxes: a named network namespace holding br0 and the network's TAP, with one
// veth per attached container (design.md §1). Control path only: it drives iproute2 and
// nsenter, which every Linux host running containers has.
import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
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

export interface AttachOptions {
  /** veth end that stays in the sandbox on br0. */
  vethName: string;
  mac: string;
  ip: string;
  prefixLen: number;
  mtu: number;
}

export class Sandbox {
  constructor(readonly name: string) {}

  private ip(args: string[]): Promise<string> {
    return exec('ip', ['-n', this.name, ...args]);
  }

  exists(): boolean {
    return existsSync(`/run/netns/${this.name}`);
  }

  /** Create the namespace and its bridge, or adopt them if an earlier agent made them. */
  async ensure(mtu: number): Promise<void> {
    if (!this.exists()) await exec('ip', ['netns', 'add', this.name]);
    const links = await this.ip(['-o', 'link', 'show']);
    const batch = ['link set lo up'];
    if (!/ br0[:@]/.test(links)) batch.push('link add br0 type bridge');
    batch.push(`link set br0 mtu ${mtu} up`);
    await exec('ip', ['-n', this.name, '-batch', '-'], batch.join('\n') + '\n');
    // Overlay networks carry IPv4 only (as Docker's do unless IPv6 is enabled): no IPv6 noise.
    await exec('ip', ['netns', 'exec', this.name, 'sysctl', '-q', '-w',
      'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
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
        `link set ${tap.name} name tap0\nlink set tap0 mtu ${mtu} master br0 up\n`);
      return tap.fd;
    } catch (e) {
      native().close(tap.fd);
      throw e;
    }
  }

  /** Plug a container in: ethN inside it (MAC, IP, MTU), the peer end on br0. Returns ethN. */
  async connect(container: string, o: AttachOptions): Promise<string> {
    const nsPath = resolveContainer(container);
    const inCtr = (args: string[], input?: string) => exec('nsenter', [`--net=${nsPath}`, 'ip', ...args], input);
    const existing = await inCtr(['-o', 'link', 'show']);
    let idx = 0;
    while (new RegExp(` eth${idx}[:@]`).test(existing)) idx++;
    const ifname = `eth${idx}`;
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
    if (this.exists()) await exec('ip', ['netns', 'del', this.name]);
  }
}
