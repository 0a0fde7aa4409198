// Pure views of the replicated service data: the spec the VIP stage gets per network, the
// routing mesh's targets per published port, and the Docker-shaped `service ls/inspect/ps`
// output. No I/O: agent/services.ts feeds it table contents.
import type { ServiceSpec } from '../router/engine.js';
import type { EndpointEntry, PortProtocol, ServiceEntry, ServicePort, TaskWeightEntry } from './tables.js';

export const DEFAULT_WEIGHT = 1;

/** A live task: an endpoint entry carrying a service id, with its effective weight. */
export interface Task {
  /** Endpoint id (the `endpoints` table key). */
  id: string;
  ep: EndpointEntry & { service: string };
  weight: number;
}

/** The weight in force: a `task-weights` entry newer than the endpoint's own weight wins. */
export function effectiveWeight(ep: EndpointEntry, override: TaskWeightEntry | undefined): number {
  if (override && override.at > (ep.weightAt ?? 0)) return override.weight;
  return ep.weight ?? DEFAULT_WEIGHT;
}

/** The VIP stage's table for one network: every vip-mode service on it with all its tasks. */
export function computeSpecs(networkId: string, services: Iterable<[string, ServiceEntry]>, tasks: readonly Task[]): ServiceSpec[] {
  const out: ServiceSpec[] = [];
  for (const [id, s] of services) {
    if (s.network !== networkId || s.mode !== 'vip' || s.vip === null) continue;
    out.push({
      id, vip: s.vip, scheduler: s.scheduler,
      ports: s.ports.map((p) => ({ published: p.published, target: p.target, protocol: p.protocol })),
      tasks: tasks.filter((t) => t.ep.service === id && t.ep.network === networkId)
        .map((t) => ({ ip: t.ep.ip, mac: t.ep.mac, weight: t.weight }))
        .sort((a, b) => a.ip.localeCompare(b.ip, 'en', { numeric: true })),
    });
  }
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/** What the routing mesh needs for one published port: where to connect, how, and to whom. */
export interface MeshTarget {
  service: string;
  name: string;
  network: string;
  published: number;
  protocol: PortProtocol;
  target: number;
  proxyProtocol: 'v2' | null;
  /** Every live task on any host; weight 0 = drained (no new connections). */
  tasks: { endpoint: string; ip: string; mac: string; weight: number; host: string }[];
}

export function meshTargetsOf(services: Iterable<[string, ServiceEntry]>, tasks: readonly Task[]): MeshTarget[] {
  const out: MeshTarget[] = [];
  for (const [id, s] of services) {
    for (const p of s.ports) {
      out.push({
        service: id, name: s.name, network: s.network, published: p.published, protocol: p.protocol, target: p.target, proxyProtocol: p.proxyProtocol,
        tasks: tasks.filter((t) => t.ep.service === id && t.ep.network === s.network)
          .map((t) => ({ endpoint: t.id, ip: t.ep.ip, mac: t.ep.mac, weight: t.weight, host: t.ep.host })),
      });
    }
  }
  return out.sort((a, b) => a.published - b.published || a.protocol.localeCompare(b.protocol));
}

/** The service holding a published port, if any (a published port is cluster-wide, as Docker's ingress). */
export function portHolder(services: Iterable<[string, ServiceEntry]>, port: ServicePort, except?: string): [string, ServiceEntry] | undefined {
  for (const [id, s] of services) {
    if (id !== except && s.ports.some((p) => p.published === port.published && p.protocol === port.protocol)) return [id, s];
  }
  return undefined;
}

/** Docker's PORTS column text: `*:8080->80/tcp`. */
export function portsText(ports: readonly ServicePort[]): string {
  return ports.map((p) => `*:${p.published}->${p.target}/${p.protocol}${p.proxyProtocol ? ' (proxy-v2)' : ''}`).join(', ');
}

/** One `service ls` row (Docker's columns, plus the VIP). */
export function serviceRow(id: string, s: ServiceEntry, tasks: readonly Task[]): Record<string, string> {
  const mine = tasks.filter((t) => t.ep.service === id);
  return {
    ID: id.slice(0, 12), Name: s.name, Mode: s.mode, Replicas: `${mine.filter((t) => t.weight > 0).length}/${mine.length}`,
    Ports: portsText(s.ports), VIP: s.vip ?? '', Scheduler: s.scheduler,
  };
}

function dockerPorts(ports: readonly ServicePort[]): Record<string, unknown>[] {
  return ports.map((p) => ({
    Protocol: p.protocol, TargetPort: p.target, PublishedPort: p.published, PublishMode: 'ingress',
    ...(p.proxyProtocol ? { ProxyProtocol: p.proxyProtocol } : {}),
  }));
}

/** Docker-shaped `service inspect` object. `prefixLen` is the network's subnet length. */
export function serviceInspect(id: string, s: ServiceEntry, prefixLen: number, tasks: readonly Task[]): Record<string, unknown> {
  const endpointSpec = { Mode: s.mode, Ports: dockerPorts(s.ports), LoadBalancer: s.scheduler };
  const n = tasks.filter((t) => t.ep.service === id).length;
  return {
    ID: id, Version: { Index: 0 }, CreatedAt: s.created, UpdatedAt: s.created,
    Spec: {
      Name: s.name, Labels: {},
      TaskTemplate: { Networks: [{ Target: s.network }] },
      Mode: { Replicated: { Replicas: n } },
      EndpointSpec: endpointSpec,
    },
    Endpoint: {
      Spec: endpointSpec,
      Ports: dockerPorts(s.ports),
      VirtualIPs: s.vip === null ? [] : [{ NetworkID: s.network, Addr: `${s.vip}/${prefixLen}` }],
    },
  };
}

/** `service ps` rows. `hostName` maps a node id to its name; `active` is a task's live connections when known. */
export function taskRows(id: string, tasks: readonly Task[], hostName: (id: string) => string, active: (t: Task) => number | null): Record<string, unknown>[] {
  return tasks.filter((t) => t.ep.service === id).map((t) => ({
    ID: t.id.slice(0, 12), Name: t.ep.name, Node: hostName(t.ep.host), NodeID: t.ep.host, IP: t.ep.ip,
    CurrentState: t.weight > 0 ? 'Running' : 'Draining', Weight: t.weight, ActiveConnections: active(t),
  })).sort((a, b) => String(a.Name).localeCompare(String(b.Name)));
}
