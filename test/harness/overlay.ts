// Builds the standard scene: N hosts with agents, one overlay network on all of them (same VNI),
// containers with explicit addresses, and static peers so every host knows every remote
// container (until gossip distributes endpoints).
import type { ChildProcess } from 'node:child_process';
import type { Host, Lab } from './lab.js';

export interface Container {
  host: Host;
  name: string;
  ns: string;
  ip: string;
  mac: string;
}

export interface Overlay {
  hosts: Host[];
  agents: ChildProcess[];
  containers: Container[];
  network: string;
  vni: number;
}

export interface OverlayOptions {
  hosts: number;
  containersPerHost: number;
  network?: string;
  subnet?: string;
  gateway?: string;
  vni?: number;
  /** Extra `network create` flags, e.g. ['--opt', 'encrypted']. */
  createFlags?: string[];
  /** Extra `tapmesh agent` flags for every host, e.g. ['--no-offload']. */
  agentArgs?: string[];
  onStep?: (msg: string) => void;
}

export function macOf(ip: string): string {
  return ['02', '42', ...ip.split('.').map((x) => Number(x).toString(16).padStart(2, '0'))].join(':');
}

export async function buildOverlay(lab: Lab, o: OverlayOptions): Promise<Overlay> {
  const step = o.onStep ?? (() => undefined);
  const network = o.network ?? 'overnet';
  const subnet = o.subnet ?? '10.0.9.0/24';
  const vni = o.vni ?? 4096;
  const prefix = subnet.split('.').slice(0, 3).join('.');
  await lab.start();
  const hosts: Host[] = [];
  for (let i = 1; i <= o.hosts; i++) hosts.push(await lab.addHost(`h${i}`));
  step(`starting ${o.hosts} agents`);
  const agents = await Promise.all(hosts.map((h) => lab.startAgent(h, o.agentArgs ?? [])));
  step(`creating overlay ${network} (${subnet}, VNI ${vni}) on every host`);
  const create = ['network', 'create', '-d', 'overlay', '--subnet', subnet, '--opt', `com.docker.network.driver.overlay.vxlanid_list=${vni}`];
  if (o.gateway) create.push('--gateway', o.gateway);
  for (const h of hosts) await lab.mustCli(h, [...create, ...(o.createFlags ?? []), network]);
  const containers: Container[] = [];
  let next = 2;
  for (const h of hosts) {
    for (let c = 1; c <= o.containersPerHost; c++) {
      const name = `c${c}`;
      const ns = await lab.addContainer(h, name);
      const ip = `${prefix}.${next++}`;
      await lab.mustCli(h, ['network', 'connect', '--ip', ip, network, ns]);
      containers.push({ host: h, name, ns, ip, mac: macOf(ip) });
    }
  }
  step(`connected ${containers.length} containers; programming static peers`);
  for (const h of hosts) {
    for (const c of containers) {
      if (c.host === h) continue;
      await lab.mustCli(h, ['peer', 'add', network, '--vtep', c.host.addr, '--ip', c.ip]);
    }
  }
  return { hosts, agents, containers, network, vni };
}
