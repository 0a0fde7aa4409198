// Egress through a gateway bridge (docker_gwbridge's job). A per-host bridge in the agent's
// namespace holds the subnet's .1; each container on a non-internal overlay gets a second
// interface on it, an address from this host's pool and its default route through .1, and
// masquerade.ts NATs the subnet out. Bridge ports are isolated: containers reach the outside
// and the host, never each other through this bridge (Docker's icc=false on docker_gwbridge).
//   1. ensure():   bridge up with .1, NAT table installed (or egress off, with the reason)
//   2. attach():   veth container<->bridge, address, default route (kept across restarts)
//   3. detach():   delete the veth (both ends go), release the address
//   4. shutdown(): delete the NAT table and the bridge (last network gone, clean stop)
// Assignments persist in <state-dir>/gwbridge.json, so a restarted agent re-plugs the same
// interfaces and addresses.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ipv4ToString } from '../router/wire/addr.js';
import { writeFileAtomic } from './atomic-file.js';
import { contains, parseCidr, type Cidr } from './ipam.js';
import type { Logger } from './log.js';
import { EgressUnavailable, Masquerade, type Runner } from './masquerade.js';
import { resolveContainer } from './sandbox.js';

/** Interface names are at most 15 bytes (IFNAMSIZ): `tapmesh_gwbridge` would be 16. */
export const GWBRIDGE = 'tm_gwbridge';
export const DEFAULT_GWBRIDGE_SUBNET = '172.18.0.0/16';

interface GwAssignment {
  ip: string;
  /** Bridge-side veth in the agent's namespace. */
  veth: string;
  /** Interface inside the container. */
  ifname: string;
}

interface GwState {
  subnet: string;
  containers: Record<string, GwAssignment>;
}

export class GatewayBridge {
  private readonly cidr: Cidr;
  private readonly gw: string;
  private readonly file: string;
  private readonly nat: Masquerade;
  private state: GwState;
  /** Why egress is off, when it is (nft missing, kernel without nat...). */
  unavailable: string | undefined;
  private up = false;

  constructor(stateDir: string, readonly subnet: string, private readonly run: Runner, private readonly log: Logger) {
    this.cidr = parseCidr(subnet);
    this.gw = ipv4ToString(this.cidr.base + 1);
    this.file = path.join(stateDir, 'gwbridge.json');
    this.nat = new Masquerade(run);
    this.state = this.load();
  }

  private load(): GwState {
    if (!existsSync(this.file)) return { subnet: this.subnet, containers: {} };
    const s = JSON.parse(readFileSync(this.file, 'utf8')) as GwState;
    if (s.subnet !== this.subnet) {
      // A new --gwbridge-subnet: the old assignments are re-made from the new pool.
      this.log.warn('gateway bridge subnet changed; containers get new addresses', { was: s.subnet, now: this.subnet });
      return { subnet: this.subnet, containers: Object.fromEntries(Object.entries(s.containers).map(([c, a]) => [c, { ...a, ip: '' }])) };
    }
    return s;
  }

  private save(): void {
    writeFileAtomic(this.file, JSON.stringify(this.state, null, 2));
  }

  /** The container's address on the bridge (CIDR), if it has one. */
  address(container: string): string | undefined {
    const a = this.state.containers[container];
    return a?.ip ? `${a.ip}/${this.cidr.prefixLen}` : undefined;
  }

  /** Containers with an assignment (restored ones included). */
  containers(): string[] {
    return Object.keys(this.state.containers);
  }

  /** At start, with no network yet: can egress work here? (Logged; ensure() installs it later.) */
  async probe(): Promise<void> {
    try {
      await this.nat.check(this.subnet, GWBRIDGE);
    } catch (e) {
      this.unavailable = (e as Error).message;
      this.log.error('egress unavailable: containers will get no gateway-bridge interface (overlay networks work without it)', { reason: this.unavailable });
    }
  }

  // 1. bridge and NAT
  async ensure(): Promise<boolean> {
    if (this.up) return true;
    try {
      const links = await this.run('ip', ['-o', 'link', 'show']);
      if (!new RegExp(` ${GWBRIDGE}[:@]`).test(links)) await this.run('ip', ['link', 'add', GWBRIDGE, 'type', 'bridge']);
      const addrs = await this.run('ip', ['-o', '-4', 'addr', 'show', 'dev', GWBRIDGE]);
      const want = `${this.gw}/${this.cidr.prefixLen}`;
      if (!addrs.includes(` ${want} `)) await this.run('ip', ['addr', 'replace', want, 'dev', GWBRIDGE]);
      await this.run('ip', ['link', 'set', GWBRIDGE, 'up']);
      await this.nat.install(this.subnet, GWBRIDGE);
      this.up = true;
      this.unavailable = undefined;
      this.log.info('egress ready', { bridge: GWBRIDGE, subnet: this.subnet, gateway: this.gw });
      return true;
    } catch (e) {
      this.unavailable = (e as Error).message;
      const why = e instanceof EgressUnavailable ? e.message : `gateway bridge ${GWBRIDGE}: ${(e as Error).message}`;
      this.log.error('egress unavailable: containers get no gateway-bridge interface (overlay networks work without it)', { reason: why });
      await this.run('ip', ['link', 'del', GWBRIDGE]).catch(() => undefined);
      return false;
    }
  }

  // 2. per container
  async attach(container: string): Promise<void> {
    if (!(await this.ensure())) return;
    let a = this.state.containers[container];
    if (a?.ip && (await this.hasLink(a.veth))) {
      // Restored: the container kept its interface and route; plug the bridge side back in.
      await this.plug(a.veth);
      return;
    }
    if (a) await this.run('ip', ['link', 'del', a.veth]).catch(() => undefined);
    const ip = a?.ip || this.allocate();
    a = { ip, veth: `tg${randomBytes(5).toString('hex')}`, ifname: '' };
    const nsPath = resolveContainer(container);
    const inCtr = (args: string[], input?: string) => this.run('nsenter', [`--net=${nsPath}`, 'ip', ...args], input);
    const links = await inCtr(['-o', 'link', 'show']);
    let idx = 0;
    while (new RegExp(` eth${idx}[:@]`).test(links)) idx++;
    a.ifname = `eth${idx}`;
    await inCtr(['link', 'add', a.ifname, 'type', 'veth', 'peer', 'name', a.veth, 'netns', String(process.pid)]);
    this.state.containers[container] = a;
    this.save();
    try {
      await this.run('nsenter', [`--net=${nsPath}`, 'sysctl', '-q', '-w', `net.ipv6.conf.${a.ifname}.disable_ipv6=1`]).catch(() => undefined);
      await inCtr(['-batch', '-'], [
        `addr add ${ip}/${this.cidr.prefixLen} dev ${a.ifname}`,
        `link set ${a.ifname} up`,
        `route replace default via ${this.gw} dev ${a.ifname}`,
      ].join('\n') + '\n');
      await this.plug(a.veth);
    } catch (e) {
      await this.detach(container);
      throw e;
    }
    this.log.info('container egress through the gateway bridge', { container, ip, ifname: a.ifname });
  }

  private async plug(veth: string): Promise<void> {
    await this.run('ip', ['link', 'set', veth, 'master', GWBRIDGE, 'up']);
    await this.run('ip', ['link', 'set', 'dev', veth, 'type', 'bridge_slave', 'isolated', 'on']);
  }

  private async hasLink(name: string): Promise<boolean> {
    return this.run('ip', ['link', 'show', name]).then(() => true, () => false);
  }

  private allocate(): string {
    const used = new Set(Object.values(this.state.containers).map((a) => a.ip));
    const size = 2 ** (32 - this.cidr.prefixLen);
    for (let i = 2; i < size - 1; i++) {
      const ip = ipv4ToString((this.cidr.base + i) >>> 0);
      if (!used.has(ip) && contains(this.cidr, this.cidr.base + i)) return ip;
    }
    throw new Error(`gateway bridge pool ${this.subnet} is exhausted`);
  }

  // 3.
  async detach(container: string): Promise<void> {
    const a = this.state.containers[container];
    if (!a) return;
    delete this.state.containers[container];
    this.save();
    // Deleting our end deletes the container's end, its address and its default route.
    if (await this.hasLink(a.veth)) await this.run('ip', ['link', 'del', a.veth]);
  }

  // 4.
  async shutdown(): Promise<void> {
    this.up = false;
    await this.nat.remove().catch((e: Error) => this.log.warn('could not remove the egress table', { error: e.message }));
    if (await this.hasLink(GWBRIDGE)) await this.run('ip', ['link', 'del', GWBRIDGE]);
    this.log.info('egress removed', { bridge: GWBRIDGE });
  }
}
