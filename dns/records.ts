// What the resolver knows: the records source interface (the agent implements it over its
// replicated tables) and MemoryRecords, an indexed in-memory implementation that the agent can
// also feed from table events (set/remove as rows come and go) and tests use directly.
// Names are compared lowercased without the trailing dot; addresses are dotted IPv4 strings.

export interface TaskRecord {
  /** The task's container name (SRV target in dnsrr mode, PTR name of its address). */
  name: string;
  ip: string;
}

export interface PortRecord {
  /** The port the tasks listen on (what a client inside the overlay connects to). */
  target: number;
  protocol: 'tcp' | 'udp';
}

export interface ServiceRecord {
  kind: 'service';
  name: string;
  mode: 'vip' | 'dnsrr';
  /** The VIP on this network (vip mode only). */
  vip?: string;
  /** Live tasks on this network: removed as soon as the table drops them. */
  tasks: readonly TaskRecord[];
  ports: readonly PortRecord[];
}

export interface ContainerRecord {
  kind: 'container';
  /** The container name or one of its --alias names. */
  name: string;
  ip: string;
}

export type NameRecord = ServiceRecord | ContainerRecord;

/**
 * Read side used by the resolver, per query. Both calls are synchronous and cheap (an index
 * lookup): the resolver answers on the main thread at tens of thousands of queries/s.
 */
export interface RecordsSource {
  /** The record named `name` (lowercase, no trailing dot) on `network`, services first. */
  lookup(network: string, name: string): NameRecord | undefined;
  /** The name owning `ip` on `network` (container name, task name, or service name for a VIP). */
  reverse(network: string, ip: string): string | undefined;
}

export function normalizeName(name: string): string {
  const n = name.toLowerCase();
  return n.endsWith('.') ? n.slice(0, -1) : n;
}

interface NetworkIndex {
  services: Map<string, ServiceRecord>;
  containers: Map<string, ContainerRecord>;
  /** ip -> owner names, oldest first (the first is the PTR answer). */
  owners: Map<string, string[]>;
}

/** Indexed records per network. Mutations take effect for the next query. */
export class MemoryRecords implements RecordsSource {
  private readonly nets = new Map<string, NetworkIndex>();

  lookup(network: string, name: string): NameRecord | undefined {
    const idx = this.nets.get(network);
    return idx?.services.get(name) ?? idx?.containers.get(name);
  }

  reverse(network: string, ip: string): string | undefined {
    return this.nets.get(network)?.owners.get(ip)?.[0];
  }

  /** Adds or replaces a service (its VIP and task set) on a network. */
  setService(network: string, svc: Omit<ServiceRecord, 'kind'>): void {
    this.removeService(network, svc.name);
    const idx = this.index(network);
    const rec: ServiceRecord = { ...svc, kind: 'service', name: normalizeName(svc.name), tasks: [...svc.tasks], ports: [...svc.ports] };
    idx.services.set(rec.name, rec);
    if (rec.vip) this.own(idx, rec.vip, rec.name);
  }

  removeService(network: string, name: string): void {
    const idx = this.nets.get(network);
    const rec = idx?.services.get(normalizeName(name));
    if (!idx || !rec) return;
    idx.services.delete(rec.name);
    if (rec.vip) this.disown(idx, rec.vip, rec.name);
  }

  /** Adds or replaces a container (or alias) name -> ip on a network. */
  setContainer(network: string, name: string, ip: string): void {
    this.removeContainer(network, name);
    const idx = this.index(network);
    const n = normalizeName(name);
    idx.containers.set(n, { kind: 'container', name: n, ip });
    this.own(idx, ip, n);
  }

  removeContainer(network: string, name: string): void {
    const idx = this.nets.get(network);
    const rec = idx?.containers.get(normalizeName(name));
    if (!idx || !rec) return;
    idx.containers.delete(rec.name);
    this.disown(idx, rec.ip, rec.name);
  }

  removeNetwork(network: string): void {
    this.nets.delete(network);
  }

  private index(network: string): NetworkIndex {
    let idx = this.nets.get(network);
    if (!idx) {
      idx = { services: new Map(), containers: new Map(), owners: new Map() };
      this.nets.set(network, idx);
    }
    return idx;
  }

  private own(idx: NetworkIndex, ip: string, name: string): void {
    const list = idx.owners.get(ip);
    if (list) list.push(name);
    else idx.owners.set(ip, [name]);
  }

  private disown(idx: NetworkIndex, ip: string, name: string): void {
    const list = idx.owners.get(ip);
    if (!list) return;
    const i = list.indexOf(name);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) idx.owners.delete(ip);
  }
}
