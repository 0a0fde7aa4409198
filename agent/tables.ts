// The agent's replicated tables: their names, scopes and value shapes. The gossip layer carries
// any JSON; what a remote host wrote is checked here before the agent acts on it.
import type { JsonValue, TableDef } from '../gossip/index.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../balancer/scheduler.js';

export const NETWORKS = 'networks';
export const ENDPOINTS = 'endpoints';
export const SERVICES = 'services';
export const TASK_WEIGHTS = 'task-weights';
export const TASK_LOAD = 'task-load';

/**
 * A network or a service outlives the host that created it; an endpoint (a task too) is
 * suspended when its host is down. A weight set from another host than the task's goes through
 * `task-weights` (cluster-scoped, keyed by endpoint id), since writing the endpoint entry from
 * elsewhere would make the writer its owner. `task-load` (key: node id) holds the connections a
 * host balances to each task (agent/task-load.ts), so it goes with its host.
 */
export const AGENT_TABLES: Record<string, TableDef> = {
  [NETWORKS]: { scope: 'cluster' },
  [ENDPOINTS]: { scope: 'owner' },
  [SERVICES]: { scope: 'cluster' },
  [TASK_WEIGHTS]: { scope: 'cluster' },
  [TASK_LOAD]: { scope: 'owner' },
};

/** `networks` table value. */
export type NetworkEntry = {
  name: string;
  created: string;
  subnet: string;
  gateway: string;
  ipRange?: string;
  vni: number;
  mtu: number;
  attachable: boolean;
  /** No egress; absent from agents that predate it (= false). */
  internal?: boolean;
  options: Record<string, string>;
  labels: Record<string, string>;
};

/** `endpoints` table value. */
export type EndpointEntry = {
  network: string;
  name: string;
  mac: string;
  ip: string;
  host: string;
  vtep: string;
  aliases: string[];
  /** Service id when the endpoint is a task of a service. */
  service?: string;
  /** Task weight 0..65535 (0 drains); only with `service`. */
  weight?: number;
  /** When the weight was last set (ms since the epoch, setter's clock): the newer of this and a `task-weights` entry wins. */
  weightAt?: number;
};

export type EndpointMode = 'vip' | 'dnsrr';
export type { SchedulerName };
/** The VIP stage's schedulers (balancer/scheduler.ts). */
export const SCHEDULERS = SCHEDULER_NAMES;
export type PortProtocol = 'tcp' | 'udp';

/** A published port of a service: cluster-wide on `published`, to the tasks' `target`. */
export type ServicePort = {
  published: number;
  target: number;
  protocol: PortProtocol;
  /** PROXY protocol header the routing mesh sends to tasks on this port. */
  proxyProtocol: 'v2' | null;
};

/** `services` table value (key: service id). */
export type ServiceEntry = {
  name: string;
  /** Network id. */
  network: string;
  mode: EndpointMode;
  /** Dotted quad from the network's IPAM; null for dnsrr. */
  vip: string | null;
  scheduler: SchedulerName;
  ports: ServicePort[];
  created: string;
};

/** `task-weights` table value (key: endpoint id). */
export type TaskWeightEntry = { weight: number; at: number };

/** `task-load` table value (key: node id): endpoint id → connections that host balances to it. */
export type TaskLoadEntry = Record<string, number>;

type JsonObject = { [key: string]: JsonValue };

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStringMap(v: JsonValue | undefined): v is Record<string, string> {
  return isObject(v) && Object.values(v).every((x) => typeof x === 'string');
}

function str(o: JsonObject, key: string): string | undefined {
  const v = o[key];
  return typeof v === 'string' ? v : undefined;
}

/** A `networks` value as written by a tapmesh agent, or undefined if it is not one. */
export function asNetworkEntry(v: JsonValue | undefined): NetworkEntry | undefined {
  if (!isObject(v)) return undefined;
  const [name, created, subnet, gateway] = [str(v, 'name'), str(v, 'created'), str(v, 'subnet'), str(v, 'gateway')];
  const { ipRange, vni, mtu, attachable, internal, options, labels } = v;
  if (name === undefined || created === undefined || subnet === undefined || gateway === undefined) return undefined;
  if (typeof vni !== 'number' || typeof mtu !== 'number' || typeof attachable !== 'boolean') return undefined;
  if (!isStringMap(options) || !isStringMap(labels) || (ipRange !== undefined && typeof ipRange !== 'string')) return undefined;
  if (internal !== undefined && typeof internal !== 'boolean') return undefined;
  return { name, created, subnet, gateway, vni, mtu, attachable, options, labels, ...(ipRange !== undefined ? { ipRange } : {}), ...(internal ? { internal } : {}) };
}

/** An `endpoints` value as written by a tapmesh agent, or undefined if it is not one. */
export function asEndpointEntry(v: JsonValue | undefined): EndpointEntry | undefined {
  if (!isObject(v)) return undefined;
  const [network, name, mac, ip, host, vtep] = ['network', 'name', 'mac', 'ip', 'host', 'vtep'].map((k) => str(v, k));
  const aliases = v.aliases;
  if (network === undefined || name === undefined || mac === undefined || ip === undefined || host === undefined || vtep === undefined) return undefined;
  if (!Array.isArray(aliases) || !aliases.every((a): a is string => typeof a === 'string')) return undefined;
  const { service, weight, weightAt } = v;
  if (service !== undefined && typeof service !== 'string') return undefined;
  if (weight !== undefined && !isWeight(weight)) return undefined;
  if (weightAt !== undefined && typeof weightAt !== 'number') return undefined;
  return {
    network, name, mac, ip, host, vtep, aliases,
    ...(service !== undefined ? { service } : {}), ...(weight !== undefined ? { weight } : {}), ...(weightAt !== undefined ? { weightAt } : {}),
  };
}

export function isWeight(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535;
}

function isPortNumber(v: JsonValue | undefined): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}

function asServicePort(v: JsonValue): ServicePort | undefined {
  if (!isObject(v)) return undefined;
  const { published, target, protocol, proxyProtocol } = v;
  if (!isPortNumber(published) || !isPortNumber(target)) return undefined;
  if (protocol !== 'tcp' && protocol !== 'udp') return undefined;
  if (proxyProtocol !== 'v2' && proxyProtocol !== null) return undefined;
  return { published, target, protocol, proxyProtocol };
}

/** A `services` value as written by a tapmesh agent, or undefined if it is not one. */
export function asServiceEntry(v: JsonValue | undefined): ServiceEntry | undefined {
  if (!isObject(v)) return undefined;
  const [name, network, created] = [str(v, 'name'), str(v, 'network'), str(v, 'created')];
  const { mode, vip, scheduler, ports } = v;
  if (name === undefined || network === undefined || created === undefined) return undefined;
  if (mode !== 'vip' && mode !== 'dnsrr') return undefined;
  if (!(mode === 'vip' ? typeof vip === 'string' : vip === null)) return undefined;
  if (typeof scheduler !== 'string' || !(SCHEDULERS as readonly string[]).includes(scheduler)) return undefined;
  if (!Array.isArray(ports)) return undefined;
  const parsed = ports.map(asServicePort);
  if (parsed.some((p) => p === undefined)) return undefined;
  return { name, network, mode, vip: vip as string | null, scheduler: scheduler as SchedulerName, ports: parsed as ServicePort[], created };
}

/** A `task-weights` value, or undefined. */
export function asTaskWeightEntry(v: JsonValue | undefined): TaskWeightEntry | undefined {
  if (!isObject(v) || !isWeight(v.weight) || typeof v.at !== 'number') return undefined;
  return { weight: v.weight, at: v.at };
}

/** A `task-load` value (counts: non-negative integers), or undefined. */
export function asTaskLoadEntry(v: JsonValue | undefined): TaskLoadEntry | undefined {
  if (!isObject(v)) return undefined;
  const out: TaskLoadEntry = {};
  for (const [k, n] of Object.entries(v)) {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) return undefined;
    out[k] = n;
  }
  return out;
}

export function taskLoadValue(e: TaskLoadEntry): JsonValue {
  return e;
}

export function networkValue(e: NetworkEntry): JsonValue {
  const { ipRange, internal, ...rest } = e;
  return { ...rest, ...(ipRange === undefined ? {} : { ipRange }), ...(internal ? { internal } : {}) };
}

export function endpointValue(e: EndpointEntry): JsonValue {
  return e;
}

export function serviceValue(e: ServiceEntry): JsonValue {
  return { ...e, ports: e.ports.map((p) => ({ ...p })) };
}

export function taskWeightValue(e: TaskWeightEntry): JsonValue {
  return e;
}
