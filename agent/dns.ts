// The agent's embedded DNS: one DnsResolver over the replicated tables (agent/dns-records.ts),
// serving one 127.0.0.11:53 (UDP+TCP) per container inside the container's namespace, scoped to
// the networks that container is attached to on this host, plus the container's resolv.conf.
// agent/containers.ts calls update() after every connect, disconnect and restore.
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import dnsPacket, { type Answer } from 'dns-packet';
import { DnsResolver, type ContainerDns, type Transport } from '../dns/server.js';
import type { DnsCounters, Upstream } from '../dns/config.js';
import { TableRecords, type ServiceNames, type TableView } from './dns-records.js';
import type { Logger } from './log.js';
import { ResolvConf } from './resolvconf.js';
import type { NetworkRecord } from './state.js';
import { UserError } from './requests.js';

export interface AgentDnsOptions {
  /** Upstream resolvers, at most 3 (--dns-upstream, or the host's resolv.conf). */
  upstreams: Upstream[];
  /** Search domains written into containers' resolv.conf (the host's, by default). */
  search: string[];
  /** Where `ip netns exec` looks for per-namespace files (/etc/netns). */
  resolvConfRoot?: string;
}

/** The `search` domains of the host's resolv.conf (read in the agent's mount namespace). */
export function hostSearch(file = '/etc/resolv.conf'): string[] {
  try {
    const line = readFileSync(file, 'utf8').split('\n').reverse().find((l) => /^\s*(search|domain)\s/.test(l));
    return line ? line.trim().split(/\s+/).slice(1, 7) : [];
  } catch {
    return [];
  }
}

/** `tapmesh dns query` request and answer (dig's sections, decoded). */
export interface DnsQueryRequest {
  container?: string;
  name: string;
  type: string;
  tcp: boolean;
}

export interface DnsQueryAnswer {
  Container: string;
  Networks: string[];
  Transport: Transport;
  Status: string;
  Flags: string[];
  Question: { Name: string; Type: string };
  Answers: { Name: string; TTL: number; Type: string; Data: string }[];
  Additionals: { Name: string; TTL: number; Type: string; Data: string }[];
  Bytes: number;
  Ms: number;
}

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

interface Served {
  dns: ContainerDns;
  networks: string[];
  /** Some attached network is not --internal: unknown names go upstream. */
  forward: boolean;
}

export class AgentDns {
  readonly records: TableRecords;
  readonly resolver: DnsResolver;
  private readonly served = new Map<string, Served>();
  private readonly resolvConf: ResolvConf;

  constructor(private readonly networks: () => readonly NetworkRecord[], private readonly o: AgentDnsOptions, private readonly log: Logger) {
    this.records = new TableRecords(networks);
    this.resolver = new DnsResolver(this.records, { upstreams: o.upstreams.slice(0, 3) });
    this.resolvConf = new ResolvConf(o.resolvConfRoot);
    if (o.upstreams.length === 0) log.warn('no DNS upstreams (none in resolv.conf, no --dns-upstream): other names get SERVFAIL');
  }

  follow(tables: TableView): void {
    this.records.follow(tables);
  }

  /** The services module's names (service → VIP or tasks, tasks.NAME): one call. */
  useServices(svc: ServiceNames): void {
    this.records.useServices(svc);
  }

  get counters(): DnsCounters {
    return this.resolver.counters;
  }

  /** The networks (names) a container's resolver serves, or undefined when it has none. */
  scopeOf(container: string): string[] | undefined {
    return this.served.get(container)?.networks;
  }

  /**
   * `container` is now attached to `networks` (names) on this host: serve, rescope, or, with
   * none left, stop serving and remove its resolv.conf. `forward` false (every network
   * --internal): names not known locally get REFUSED instead of going upstream. Never throws:
   * a container that cannot get a resolver (e.g. it serves :53 on 127.0.0.11 itself) still
   * has its network.
   */
  async update(container: string, networks: string[], forward = true): Promise<void> {
    this.records.rebuild();
    const cur = this.served.get(container);
    if (networks.length === 0) {
      if (!cur) return;
      this.served.delete(container);
      await cur.dns.close();
      if (this.resolvConf.remove(container) === 'foreign') this.log.warn('resolv.conf not written by tapmesh left in place', { container, file: this.resolvConf.file(container) });
      this.log.info('DNS stopped for container', { container });
      return;
    }
    if (cur) {
      cur.networks = networks.slice();
      cur.forward = forward;
      cur.dns.setNetworks(networks);
      cur.dns.setForwarding(forward);
      return;
    }
    let dns: ContainerDns;
    try {
      dns = await this.resolver.serve(container, networks, { forward });
    } catch (e) {
      this.log.error('embedded DNS not available in this container', { container, error: (e as Error).message });
      return;
    }
    this.served.set(container, { dns, networks: networks.slice(), forward });
    const rc = this.resolvConf.write(container, this.o.search);
    if (rc === 'foreign') {
      this.log.warn('container has a resolv.conf tapmesh did not write; left alone (point it at 127.0.0.11 to use the embedded DNS)', { container, file: this.resolvConf.file(container) });
    }
    this.log.info('DNS serving 127.0.0.11:53 in container', { container, networks, forward, resolvConf: rc });
  }

  /** Asks a container's resolver (through handle(), with its scope); without one, every network here. */
  async query(req: DnsQueryRequest): Promise<DnsQueryAnswer> {
    let networks: string[];
    let forward = true;
    let container = req.container ?? '';
    if (req.container !== undefined) {
      const s = this.served.get(req.container) ?? [...this.served].find(([k]) => k.endsWith(`/${req.container}`))?.[1];
      if (!s) throw new UserError(`container ${req.container} has no embedded DNS on this host`, 404);
      networks = s.networks;
      forward = s.forward;
    } else {
      networks = this.networks().map((n) => n.name);
      container = '(all networks of this host)';
    }
    let msg: Buffer;
    try {
      msg = encodeQuery(req.name, req.type.toUpperCase(), randomInt(65536), !req.tcp);
      // dns-packet encodes a type it does not know as 0: refuse it rather than ask for TYPE0.
      if (dnsPacket.decode(msg).questions?.[0]?.type !== req.type.toUpperCase()) throw new Error('unknown record type');
    } catch (e) {
      throw new UserError(`cannot ask for ${req.name} ${req.type}: ${(e as Error).message}`);
    }
    const transport: Transport = req.tcp ? 'tcp' : 'udp';
    const t0 = process.hrtime.bigint();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new UserError('no answer (the query was dropped)', 504)), this.resolver.cfg.upstreamTimeoutMs * 3 + 1000);
      this.resolver.handle(msg, networks, transport, (reply) => {
        clearTimeout(timer);
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        try {
          resolve(describe(Buffer.from(reply), container, networks, transport, ms));
        } catch (e) {
          reject(e);
        }
      }, forward);
    });
  }

  async close(): Promise<void> {
    for (const [, s] of this.served) await s.dns.close();
    this.served.clear();
    this.resolver.close();
    this.records.stop();
  }
}

/** A recursive query, with an EDNS0 OPT (1232 bytes) when `edns`. */
function encodeQuery(name: string, type: string, id: number, edns: boolean): Buffer {
  const additionals = edns ? [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as Answer] : [];
  return dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: type as 'A', name, class: 'IN' }], additionals });
}

function rdata(a: Answer): string {
  const d = (a as { data?: unknown }).data;
  if (typeof d === 'string') return d;
  if (d && typeof d === 'object' && 'target' in d) {
    const s = d as { priority: number; weight: number; port: number; target: string };
    return `${s.priority} ${s.weight} ${s.port} ${s.target}`;
  }
  return JSON.stringify(d ?? null);
}

function describe(reply: Buffer, container: string, networks: string[], transport: Transport, ms: number): DnsQueryAnswer {
  const p = dnsPacket.decode(reply);
  const flags = p.flags ?? 0;
  const names: [number, string][] = [[0x0400, 'aa'], [0x0200, 'tc'], [0x0100, 'rd'], [0x0080, 'ra']];
  const rr = (a: Answer) => ({ Name: a.name, TTL: (a as { ttl?: number }).ttl ?? 0, Type: a.type, Data: rdata(a) });
  return {
    Container: container, Networks: networks, Transport: transport,
    Status: RCODES[flags & 0x0f] ?? String(flags & 0x0f),
    Flags: [...(p.type === 'response' ? ['qr'] : []), ...names.filter(([bit]) => (flags & bit) !== 0).map(([, n]) => n)],
    Question: { Name: p.questions?.[0]?.name ?? '', Type: p.questions?.[0]?.type ?? '' },
    Answers: (p.answers ?? []).map(rr),
    Additionals: (p.additionals ?? []).filter((a) => a.type !== 'OPT').map(rr),
    Bytes: reply.length, Ms: ms,
  };
}
