// Builds the standard scene: N hosts with agents, one overlay network on all of them (same VNI),
// containers with explicit addresses, and static peers so every host knows every remote
// container (until gossip distributes endpoints).
import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { macFromIp, parseIpv4 } from '../../router/wire/addr.js';
import { waitFor, type Host, type Lab } from './lab.js';

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
  /**
   * 'gossip': hosts join the first one's cluster; the network is created once and replicated,
   * addresses come from the cluster IPAM. 'static': independent agents wired with `peer add`
   * (the kernel-VXLAN-interop style). Default 'static'.
   */
  mode?: 'gossip' | 'static';
  onStep?: (msg: string) => void;
}

/** Docker's MAC for an overlay address (the agent's own rule). */
export function macOf(ip: string): string {
  return macFromIp(parseIpv4(ip));
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
  const gossip = o.mode === 'gossip';
  const agents: ChildProcess[] = [];
  const create = ['network', 'create', '-d', 'overlay', '--subnet', subnet, '--opt', `com.docker.network.driver.overlay.vxlanid_list=${vni}`];
  if (o.gateway) create.push('--gateway', o.gateway);
  if (gossip) {
    step(`starting agent on ${hosts[0].name}; the others join its cluster with its join token`);
    agents.push(await lab.startAgent(hosts[0], ['--node-name', hosts[0].name, ...(o.agentArgs ?? [])]));
    const secret = path.join(lab.dir, 'join.token');
    writeFileSync(secret, await lab.mustCli(hosts[0], ['join-token', '-q']), { mode: 0o600 });
    agents.push(...(await Promise.all(hosts.slice(1).map((h) =>
      lab.startAgent(h, ['--node-name', h.name, '--join', hosts[0].addr, '--secret-file', secret, ...(o.agentArgs ?? [])])))));
    await waitFor('every host Ready on every host', async () => {
      for (const h of hosts) {
        const ready = (await lab.mustCli(h, ['node', 'ls', '--format', 'json'])).trim().split('\n').filter((l) => l.includes('"Ready"'));
        if (ready.length !== hosts.length) return false;
      }
      return true;
    }, 15_000, 100);
    step(`creating overlay ${network} (${subnet}, VNI ${vni}) on ${hosts[0].name}; gossip carries it to the others`);
    await lab.mustCli(hosts[0], [...create, ...(o.createFlags ?? []), network]);
    for (const h of hosts) {
      await waitFor(`${network} on ${h.name}`, async () => (await lab.cli(h, ['network', 'ls', '-q', '--filter', `name=${network}`])).stdout.trim() !== '', 10_000, 100);
    }
  } else {
    step(`starting ${o.hosts} agents`);
    agents.push(...(await Promise.all(hosts.map((h) => lab.startAgent(h, o.agentArgs ?? [])))));
    step(`creating overlay ${network} (${subnet}, VNI ${vni}) on every host`);
    for (const h of hosts) await lab.mustCli(h, [...create, ...(o.createFlags ?? []), network]);
  }
  const containers: Container[] = [];
  let next = 2;
  for (const h of hosts) {
    for (let c = 1; c <= o.containersPerHost; c++) {
      const name = `c${c}`;
      const ns = await lab.addContainer(h, name);
      if (gossip) {
        await lab.mustCli(h, ['network', 'connect', network, ns]);
        const [net] = JSON.parse(await lab.mustCli(h, ['network', 'inspect', network]));
        const ep = (Object.values(net.Containers) as { Name: string; IPv4Address: string }[]).find((e) => e.Name === ns)!;
        const ip = ep.IPv4Address.split('/')[0];
        containers.push({ host: h, name, ns, ip, mac: macOf(ip) });
      } else {
        const ip = `${prefix}.${next++}`;
        await lab.mustCli(h, ['network', 'connect', '--ip', ip, network, ns]);
        containers.push({ host: h, name, ns, ip, mac: macOf(ip) });
      }
    }
  }
  if (gossip) {
    step(`connected ${containers.length} containers; waiting for every host to learn every endpoint`);
    for (const h of hosts) {
      await waitFor(`endpoints on ${h.name}`, async () => {
        const [net] = JSON.parse(await lab.mustCli(h, ['network', 'inspect', '--verbose', network]));
        return (net.Endpoints as unknown[]).length === containers.length;
      }, 10_000, 100);
    }
    return { hosts, agents, containers, network, vni };
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
