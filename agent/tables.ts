// The agent's replicated tables: their names, scopes and value shapes. The gossip layer carries
// any JSON; what a remote host wrote is checked here before the agent acts on it.
import type { JsonValue, TableDef } from '../gossip/index.js';

export const NETWORKS = 'networks';
export const ENDPOINTS = 'endpoints';

/** A network outlives the host that created it; an endpoint is suspended when its host is down. */
export const AGENT_TABLES: Record<string, TableDef> = {
  [NETWORKS]: { scope: 'cluster' },
  [ENDPOINTS]: { scope: 'owner' },
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
};

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
  return { network, name, mac, ip, host, vtep, aliases };
}

export function networkValue(e: NetworkEntry): JsonValue {
  const { ipRange, internal, ...rest } = e;
  return { ...rest, ...(ipRange === undefined ? {} : { ipRange }), ...(internal ? { internal } : {}) };
}

export function endpointValue(e: EndpointEntry): JsonValue {
  return e;
}
