// The resolver's records over the agent's replicated tables. Scope keys are network names (so
// `NAME.NETWORK` reads as in Docker). Sources, rebuilt into one MemoryRecords on any change
// (coalesced to one rebuild per loop turn; hundreds of endpoints cost well under a millisecond):
//   1. local endpoints from the agent's state (authoritative, there before the cluster starts)
//   2. every endpoint in the `endpoints` table (a host declared down suspends its rows: its
//      names stop resolving within the gossip detection time)
//   3. services and their tasks from a ServiceNames provider (the services module, one call:
//      useServices)
// Container names and --alias names map to the endpoint's IP; the container name owns the PTR.
import type { Tables } from '../gossip/index.js';
import { MemoryRecords, type NameRecord, type RecordsSource, type ServiceRecord } from '../dns/records.js';
import type { NetworkRecord } from './state.js';
import { ENDPOINTS, NETWORKS, asEndpointEntry } from './tables.js';

/** A service as DNS needs it, on the network with id `network`. */
export type ServiceName = Omit<ServiceRecord, 'kind'> & { network: string };

/** What the services module gives DNS. */
export interface ServiceNames {
  /** Every service with its live tasks (task container names and IPs). */
  services(): Iterable<ServiceName>;
  /** Calls back after any change of a service or its tasks; returns the unsubscribe. */
  onChange(cb: () => void): () => void;
}

/** The table reads DNS needs (GossipNode['tables']). */
export type TableView = Pick<Tables, 'entries' | 'subscribe'>;

export class TableRecords implements RecordsSource {
  private recs = new MemoryRecords();
  private scheduled = false;
  private tables: TableView | undefined;
  private svc: ServiceNames | undefined;
  private readonly unsubscribe: (() => void)[] = [];
  /** Rebuilds done (tests and stats). */
  rebuilds = 0;

  constructor(private readonly networks: () => readonly NetworkRecord[]) {
    this.rebuild();
  }

  lookup(network: string, name: string): NameRecord | undefined {
    return this.recs.lookup(network, name);
  }

  reverse(network: string, ip: string): string | undefined {
    return this.recs.reverse(network, ip);
  }

  /** Follow the cluster's tables from now on. */
  follow(tables: TableView): void {
    this.tables = tables;
    for (const t of [NETWORKS, ENDPOINTS]) this.unsubscribe.push(tables.subscribe(() => this.changed(), t));
    this.changed();
  }

  /** Plug the services in: their names, VIPs and tasks resolve from now on. */
  useServices(svc: ServiceNames): void {
    this.svc = svc;
    this.unsubscribe.push(svc.onChange(() => this.changed()));
    this.changed();
  }

  /** Something changed: rebuild once, after the current turn's other changes. */
  changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.rebuild();
    });
  }

  /** Rebuild now (synchronous: the next query sees it). */
  rebuild(): void {
    this.rebuilds++;
    const next = new MemoryRecords();
    const names = new Map<string, string>();
    for (const net of this.networks()) {
      names.set(net.id, net.name);
      for (const ep of net.endpoints) add(next, net.name, ep.name, ep.ip, ep.aliases);
    }
    if (this.tables) {
      for (const [, value] of this.tables.entries(ENDPOINTS)) {
        const e = asEndpointEntry(value);
        const net = e && names.get(e.network);
        if (e && net) add(next, net, e.name, e.ip, e.aliases);
      }
    }
    for (const s of this.svc?.services() ?? []) {
      const net = names.get(s.network);
      if (net) next.setService(net, s);
    }
    this.recs = next;
  }

  stop(): void {
    for (const u of this.unsubscribe.splice(0)) u();
  }
}

function add(recs: MemoryRecords, network: string, name: string, ip: string, aliases: readonly string[]): void {
  // A local endpoint is in the state and in the table: once is enough (and keeps the PTR order).
  const had = recs.lookup(network, name.toLowerCase());
  if (had?.kind === 'container' && had.ip === ip) return;
  // The name first: it owns the PTR (MemoryRecords answers the oldest owner of an address).
  recs.setContainer(network, name, ip);
  for (const a of aliases) if (a !== name) recs.setContainer(network, a, ip);
}
