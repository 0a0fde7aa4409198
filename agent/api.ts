// HTTP+JSON API on a unix socket (mode 0600), the only way the CLI talks to the agent.
import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createConnection } from 'node:net';
import http from 'node:http';
import type { Agent } from './agent.js';
import type { AgentDns } from './dns.js';
import { UserError, type PortRequest } from './requests.js';
import { checkPort, checkWeight, parsePublishRm, parseTaskWeight } from './input.js';
import { statusOf, type Cluster } from './cluster.js';
import type { Logger } from './log.js';

type Handler = (params: string[], body: Record<string, unknown>, query: URLSearchParams) => Promise<unknown>;

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
}

export function routes(agent: Agent, cluster: Cluster, dns?: AgentDns): Route[] {
  const r = (method: string, path: string, handler: Handler): Route => ({
    method,
    pattern: new RegExp(`^${path.replace(/:[a-z]+/g, '([^/]+)')}$`),
    handler,
  });
  const str = (v: unknown, name: string): string | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new UserError(`${name} must be a string`);
    return v;
  };
  const strMap = (v: unknown, name: string): Record<string, string> | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'object' || Array.isArray(v) || Object.values(v).some((x) => typeof x !== 'string')) throw new UserError(`${name} must be an object of strings`);
    return v as Record<string, string>;
  };
  const list = <T>(v: unknown, name: string, item: (x: unknown) => T): T[] | undefined => {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v)) throw new UserError(`${name} must be an array`);
    return v.map(item);
  };
  const num = (v: unknown, name: string): number | undefined => {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number') throw new UserError(`${name} must be a number`);
    return v;
  };
  const ports = (v: unknown, name: string): PortRequest[] | undefined => list(v, name, checkPort);
  return [
    r('GET', '/v1/info', async () => ({ NodeID: agent.nodeId, AdvertiseAddr: agent.cfg.advertiseAddr, DataPathAddr: agent.cfg.dataPathAddr, VXLANPort: agent.cfg.vxlanPort })),
    r('GET', '/v1/networks', async () => agent.state.networks.map((n) => agent.inspect(n))),
    r('POST', '/v1/networks', async (_p, b) => {
      const net = await agent.createNetwork({
        name: str(b.name, 'name') ?? '', driver: str(b.driver, 'driver'), subnet: str(b.subnet, 'subnet'),
        gateway: str(b.gateway, 'gateway'), ipRange: str(b.ipRange, 'ipRange'), options: strMap(b.options, 'options'),
        labels: strMap(b.labels, 'labels'), attachable: b.attachable === true, internal: b.internal === true,
      });
      return { Id: net.id };
    }),
    r('GET', '/v1/networks/:ref', async ([ref], _b, q) => {
      const net = agent.findNetwork(ref);
      return q.get('verbose') === '1' ? agent.inspectVerbose(net) : agent.inspect(net);
    }),
    r('GET', '/v1/nodes', async () => nodes(cluster)),
    r('GET', '/v1/nodes/:ref', async ([ref]) => {
      const all = nodes(cluster);
      const m = all.find((n) => n.ID === ref || n.Hostname === ref) ?? (all.filter((n) => n.ID.startsWith(ref)).length === 1 ? all.find((n) => n.ID.startsWith(ref)) : undefined);
      if (!m) throw new UserError(`node ${ref} not found`, 404);
      return m;
    }),
    r('GET', '/v1/keys', async () => cluster.keys('ls')),
    r('POST', '/v1/keys/:op', async ([op], b) => {
      if (op !== 'add' && op !== 'use' && op !== 'rm') throw new UserError(`unknown key operation ${op}`, 404);
      try {
        return cluster.keys(op, str(b.key, 'key') ?? '');
      } catch (e) {
        throw new UserError((e as Error).message);
      }
    }),
    r('GET', '/v1/join-token', async () => ({ Token: cluster.joinToken, Addr: `${agent.cfg.advertiseAddr}:${cluster.node.transport.localAddr().split(':').pop()}` })),
    r('DELETE', '/v1/networks/:ref', async ([ref]) => ({ Id: (await agent.removeNetwork(ref)).id })),
    r('POST', '/v1/networks/:ref/connect', async ([ref], b) => {
      const aliases = b.aliases;
      if (aliases !== undefined && (!Array.isArray(aliases) || aliases.some((a) => typeof a !== 'string'))) throw new UserError('aliases must be strings');
      const ep = await agent.connect(ref, {
        container: str(b.container, 'container') ?? '', ip: str(b.ip, 'ip'), aliases: aliases as string[] | undefined,
        service: str(b.service, 'service'), weight: num(b.weight, 'weight'),
      });
      return { EndpointID: ep.id, IPv4Address: ep.ip, MacAddress: ep.mac, Interface: ep.ifname };
    }),
    r('POST', '/v1/networks/:ref/disconnect', async ([ref], b) => ({ EndpointID: (await agent.disconnect(ref, str(b.container, 'container') ?? '')).id })),
    r('POST', '/v1/networks/:ref/peers', async ([ref], b) => agent.addPeer(ref, { vtep: str(b.vtep, 'vtep') ?? '', mac: str(b.mac, 'mac'), ip: str(b.ip, 'ip') })),
    r('DELETE', '/v1/networks/:ref/peers', async ([ref], _b, q) => ({ Removed: await agent.removePeer(ref, { vtep: q.get('vtep') ?? '', mac: q.get('mac') ?? undefined, ip: q.get('ip') ?? undefined }) })),
    r('POST', '/v1/dns/query', async (_p, b) => {
      if (!dns) throw new UserError('this agent has no embedded DNS', 404);
      const name = str(b.name, 'name');
      if (!name) throw new UserError('name is required');
      return dns.query({ container: str(b.container, 'container'), name, type: str(b.type, 'type') ?? 'A', tcp: b.tcp === true });
    }),
    r('GET', '/v1/services', async () => agent.services.list()),
    r('POST', '/v1/services', async (_p, b) => {
      const { id } = await agent.services.create({
        name: str(b.name, 'name') ?? '', network: str(b.network, 'network') ?? '', ports: ports(b.ports, 'ports'),
        endpointMode: str(b.endpointMode, 'endpointMode'), scheduler: str(b.scheduler, 'scheduler'),
      });
      return { ID: id };
    }),
    r('GET', '/v1/services/:ref', async ([ref]) => agent.services.inspect(ref)),
    r('GET', '/v1/services/:ref/tasks', async ([ref]) => agent.services.ps(ref)),
    r('DELETE', '/v1/services/:ref', async ([ref]) => ({ ID: await agent.services.remove(ref) })),
    r('POST', '/v1/services/:ref/update', async ([ref], b) => ({
      ID: await agent.services.update(ref, {
        publishAdd: ports(b.publishAdd, 'publishAdd'),
        publishRm: list(b.publishRm, 'publishRm', (x) => parsePublishRm(String(x))), // "8080", "8080/udp", 8080
        taskWeights: list(b.taskWeights, 'taskWeights', (x) => {
          if (typeof x === 'string') return parseTaskWeight(x);
          const o = (x ?? {}) as Record<string, unknown>;
          return { task: str(o.task, 'task') ?? '', weight: checkWeight(o.weight) };
        }),
      }),
    })),
    r('GET', '/v1/stats', async () => {
      const s = await agent.stats();
      const g = cluster.node.stats();
      return {
        gossip: { ...g, suspectEvents: cluster.suspectEvents },
        dns: dns?.counters,
        drops: s.drops,
        esp: await agent.espStats(),
        mesh: agent.mesh?.stats() ?? {},
        networks: agent.state.networks.map((n) => ({ Name: n.name, Id: n.id, VNI: n.vni, ...(s.networks[n.vni] ?? { counters: {}, drops: {} }) })),
      };
    }),
  ];
}

async function readBody(req: http.IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > 1 << 20) throw new UserError('request body too large', 413);
      chunks.push(c as Buffer);
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    // The client closed before the body its content-length announced: its mistake, not ours.
    throw new UserError(`request body incomplete: ${(e as Error).message}`);
  }
  if (size === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new UserError('request body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UserError('request body must be a JSON object');
  return v as Record<string, unknown>;
}

/** Remove a socket file left by a dead agent; refuse if a live agent still answers on it. */
async function clearStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const alive = await new Promise<boolean>((resolve) => {
    const c = createConnection(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (alive) throw new Error(`another agent is already serving ${path}`);
  unlinkSync(path);
}

/** A path parameter, percent-decoded; bad escapes (`%zz`) are the caller's error, not a 500. */
function decodeParam(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new UserError(`malformed percent-encoding in the path: ${s}`);
  }
}

function nodes(cluster: Cluster) {
  const self = cluster.node.id;
  return cluster.node.members().map((m) => ({
    ID: m.id, Hostname: m.name, Status: statusOf(m), Addr: m.addr, Self: m.id === self,
    Incarnation: m.incarnation, Meta: m.meta,
  }));
}

export async function serveApi(socketPath: string, agent: Agent, cluster: Cluster, log: Logger, dns?: AgentDns): Promise<http.Server> {
  const table = routes(agent, cluster, dns);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://tapmesh');
    const send = (status: number, body: unknown) => {
      const text = JSON.stringify(body);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    (async () => {
      for (const route of table) {
        const m = route.pattern.exec(url.pathname);
        if (!m || route.method !== req.method) continue;
        const body = await readBody(req);
        const params = m.slice(1).map(decodeParam);
        return send(200, await route.handler(params, body, url.searchParams));
      }
      throw new UserError(`no such endpoint: ${req.method} ${url.pathname}`, 404);
    })().catch((e: Error) => {
      if (e instanceof UserError) return send(e.status, { message: e.message });
      log.error('request failed', { method: req.method, path: url.pathname, error: e.message });
      send(500, { message: e.message });
    });
  });
  await clearStaleSocket(socketPath);
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
  } finally {
    process.umask(old);
  }
  chmodSync(socketPath, 0o600);
  return server;
}
