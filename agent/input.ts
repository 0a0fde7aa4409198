// Checking what users type: addresses, MTUs, peers, container references, service names, ports
// and weights. Every failure is a UserError, which the API turns into a one-line message and a
// 4xx status.
import { ipv4ToString, macFromIp, macToString, parseIpv4, parseMac } from '../router/wire/addr.js';
import { UserError, type PeerRequest } from './requests.js';
import type { StaticPeerRecord } from './state.js';
import { SCHEDULERS, isWeight, type EndpointMode, type PortProtocol, type SchedulerName, type ServicePort } from './tables.js';

/** An address the user typed, as a u32 (strict: see router/wire/addr.ts). */
export function parseIp(s: string): number {
  try {
    return parseIpv4(s);
  } catch {
    throw new UserError(`invalid IPv4 address: ${s}`);
  }
}

export function parseMtu(v: string, key: string): number {
  if (!/^\d+$/.test(v)) throw new UserError(`invalid ${key} "${v}": expected a number`);
  return Number(v);
}

export function normalizePeer(req: PeerRequest): StaticPeerRecord {
  if (!req.vtep) throw new UserError('--vtep is required');
  const vtep = ipv4ToString(parseIp(req.vtep));
  let mac: string | undefined;
  const ip = req.ip !== undefined ? ipv4ToString(parseIp(req.ip)) : undefined;
  if (req.mac !== undefined) {
    try {
      mac = macToString(parseMac(req.mac)); // canonical: lowercase, ':'
    } catch {
      throw new UserError(`invalid MAC address: ${req.mac}`);
    }
  } else if (ip !== undefined) {
    mac = macFromIp(parseIpv4(ip)); // tapmesh and Docker hosts derive MACs from IPs
  }
  return { vtep, ...(mac ? { mac } : {}), ...(ip ? { ip } : {}) };
}

export function containerName(spec: string): string {
  if (/^\d+$/.test(spec)) return `pid-${spec}`;
  const base = spec.split('/').filter(Boolean).pop() ?? spec;
  return base;
}

/** Docker's rule for service names (they become DNS labels): letters, digits, '-' and '_' inside, at most 63. */
export function checkServiceName(name: string | undefined): string {
  if (!name) throw new UserError('--name is required');
  if (name.length > 63 || !/^[A-Za-z0-9](?:[-_]*[A-Za-z0-9]+)*$/.test(name)) {
    throw new UserError(`invalid service name "${name}": letters, digits, '-' and '_' (not at the ends), at most 63 characters`);
  }
  return name;
}

export function checkEndpointMode(v: string | undefined): EndpointMode {
  if (v === undefined || v === 'vip' || v === 'dnsrr') return v ?? 'vip';
  throw new UserError(`invalid endpoint mode "${v}": vip or dnsrr`);
}

export function checkScheduler(v: string | undefined): SchedulerName {
  if (v === undefined) return 'rr';
  if ((SCHEDULERS as readonly string[]).includes(v)) return v as SchedulerName;
  throw new UserError(`invalid load-balancing scheduler "${v}": one of ${SCHEDULERS.join(', ')}`);
}

function portNumber(v: unknown, what: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 65535) throw new UserError(`invalid ${what} port "${String(v)}": expected 1-65535`);
  return n;
}

function protocol(v: unknown): PortProtocol {
  if (v === undefined || v === 'tcp' || v === 'udp') return v ?? 'tcp';
  throw new UserError(`invalid protocol "${String(v)}": tcp or udp`);
}

function proxyProtocol(v: unknown): 'v2' | null {
  if (v === undefined || v === null || v === 'v2') return v ?? null;
  throw new UserError(`invalid proxy-protocol "${String(v)}": only v2 is supported`);
}

/** A port object from the API: numbers in range, protocol tcp|udp, proxyProtocol v2|null (tcp only). */
export function checkPort(v: unknown): ServicePort {
  if (typeof v === 'string') return parsePublish(v);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UserError('a port must be an object {published, target, protocol}');
  const o = v as Record<string, unknown>;
  const p: ServicePort = {
    published: portNumber(o.published, 'published'), target: portNumber(o.target, 'target'),
    protocol: protocol(o.protocol), proxyProtocol: proxyProtocol(o.proxyProtocol),
  };
  if (p.proxyProtocol && p.protocol !== 'tcp') throw new UserError(`proxy-protocol on ${p.published}/${p.protocol}: PROXY protocol is supported for tcp ports only`);
  return p;
}

/**
 * `--publish` as Docker writes it: `PUBLISHED:TARGET[/tcp|/udp]`, or the long form
 * `published=P,target=T[,protocol=tcp|udp][,mode=ingress][,proxy-protocol=v2]`.
 */
export function parsePublish(text: string): ServicePort {
  if (text.includes('=')) {
    const kv: Record<string, string> = {};
    for (const part of text.split(',')) {
      const i = part.indexOf('=');
      const key = part.slice(0, i).trim();
      if (i < 1 || key in kv) throw new UserError(`invalid --publish "${text}": expected key=value pairs, each once`);
      kv[key] = part.slice(i + 1).trim();
    }
    for (const key of Object.keys(kv)) {
      if (!['published', 'target', 'protocol', 'mode', 'proxy-protocol'].includes(key)) throw new UserError(`invalid --publish "${text}": unknown field "${key}"`);
    }
    if (kv.mode !== undefined && kv.mode !== 'ingress') throw new UserError(`invalid --publish "${text}": only mode=ingress (the routing mesh) is supported`);
    if (kv.target === undefined) throw new UserError(`invalid --publish "${text}": target is required`);
    if (kv.published === undefined) throw new UserError(`invalid --publish "${text}": published is required`);
    return checkPort({ published: kv.published, target: kv.target, protocol: kv.protocol, proxyProtocol: kv['proxy-protocol'] });
  }
  const m = /^([^:/]+):([^:/]+)(?:\/(.*))?$/.exec(text);
  if (!m) throw new UserError(`invalid --publish "${text}": expected PUBLISHED:TARGET[/tcp|/udp]`);
  return checkPort({ published: m[1], target: m[2], protocol: m[3] });
}

/** `--publish-rm` takes a published port, optionally with its protocol (`8080`, `8080/udp`, or a full publish spec). */
export function parsePublishRm(text: string): { published: number; protocol?: PortProtocol } {
  if (text.includes(':') || text.includes('=')) {
    const p = parsePublish(text);
    return { published: p.published, protocol: p.protocol };
  }
  const [port, proto] = text.split('/');
  return { published: portNumber(port, 'published'), ...(proto !== undefined ? { protocol: protocol(proto) } : {}) };
}

export function checkWeight(v: unknown): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (!isWeight(n)) throw new UserError(`invalid weight "${String(v)}": expected 0-65535 (0 drains)`);
  return n;
}

/** `--task-weight CONTAINER=N`. */
export function parseTaskWeight(text: string): { task: string; weight: number } {
  const i = text.lastIndexOf('=');
  if (i < 1) throw new UserError(`invalid --task-weight "${text}": expected CONTAINER=WEIGHT`);
  return { task: text.slice(0, i), weight: checkWeight(text.slice(i + 1)) };
}
