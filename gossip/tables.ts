// Replicated tables (Docker calls this networkdb) on top of the membership layer.
//
// A table maps string keys to entries {owner, ltime, deleted, value}. A write anywhere stamps
// the entry with a new Lamport time and this node as owner; the newest (ltime, owner) wins
// everywhere (last-writer-wins register per key, ties broken by owner id). A delete is a
// tombstone (deleted = true) kept for tombstoneReap so that late copies of the old value lose;
// then it is forgotten. Changes spread as broadcasts in the piggyback queue; push-pull
// anti-entropy (full snapshots) repairs whatever gossip missed.
//
// Tables have a scope:
// Each user of the layer defines its own tables (define(), or GossipNodeOptions.tables).
// - "owner" (the default; the agent's endpoints): entries live and die with their
//   owner. Owner dead -> entries are suspended: readers no longer see them and subscribers get
//   `delete` events with cause "suspended". Owner alive again before deadOwnerReap -> they come
//   back with `create` events, cause "resumed" (no new writes needed). Owner dead longer ->
//   dropped. Owner left gracefully -> dropped at once (`delete`, cause "owner-left").
//   Entries from owners this node does not know (or knows as left) are not stored.
// - "cluster" (the agent's networks, IPAM records): entries outlive their writer.
// Subscribers see what readers see: a create/update/delete event whenever the visible value of
// a key changes, whatever the cause.

import { MalformedError } from './buf.js';
import type { EntryWire, Message } from './codec.js';
import type { GossipConfig } from './config.js';
import type { MemberEvent, MemberState } from './membership.js';
import type { Clock } from './transport.js';
import { bytesEqual, decodeValue, encodeValue, type JsonValue } from './value.js';

export type ChangeKind = 'create' | 'update' | 'delete';
export type ChangeCause = 'write' | 'suspended' | 'resumed' | 'owner-left';

export interface TableEvent {
  table: string;
  key: string;
  /** The new visible value; undefined for delete. */
  value: JsonValue | undefined;
  kind: ChangeKind;
  owner: string;
  cause: ChangeCause;
}

export interface TableDef {
  scope: 'owner' | 'cluster';
}

/** Limits of set(), so that every entry fits one sealed gossip datagram (1400 bytes). */
export const MAX_VALUE_BYTES = 1000;
export const MAX_KEY_BYTES = 200;
export const MAX_TABLE_NAME_BYTES = 64;
/** Entries learned by push-pull are re-broadcast only while the queue is shorter than this. */
const MAX_QUEUE_FOR_SYNC_REBROADCAST = 500;

export interface EntryInfo {
  owner: string;
  ltime: number;
  deleted: boolean;
  visible: boolean;
  value: JsonValue | undefined;
}

interface Entry {
  owner: string;
  ltime: number;
  deleted: boolean;
  raw: Uint8Array;
  value: JsonValue | undefined;
  reapAt: number;
}

export interface TablesDeps {
  selfId: string;
  clock: Clock;
  config: GossipConfig;
  /** Membership state of a node id (ours is always alive); undefined if unknown. */
  member(id: string): { state: MemberState; since: number } | undefined;
  broadcast(key: string, m: Message): void;
  queueSize(): number;
  /** Lamport time advanced (persist a high-water mark). */
  onLamport?(t: number): void;
}

export type ApplySource = 'local' | 'gossip' | 'sync' | 'join';

const SEP = '\u0000';

export class Tables {
  private readonly data = new Map<string, Map<string, Entry>>();
  private readonly defs = new Map<string, TableDef>();
  private readonly subs = new Set<{ table?: string; fn: (e: TableEvent) => void }>();
  /** owner id -> "table\0key" of its entries in owner-scoped tables. */
  private readonly byOwner = new Map<string, Set<string>>();
  private lamport = 0;

  constructor(private readonly d: TablesDeps) {}

  define(table: string, def: TableDef): void {
    this.defs.set(table, def);
  }

  private scope(table: string): TableDef['scope'] {
    return this.defs.get(table)?.scope ?? 'owner';
  }

  /** Current Lamport time (the next local write gets a larger one). */
  time(): number {
    return this.lamport;
  }

  /** Raise the Lamport clock (restart from persisted state). */
  witness(t: number): void {
    if (t > this.lamport) {
      this.lamport = t;
      this.d.onLamport?.(t);
    }
  }

  private visible(table: string, e: Entry): boolean {
    if (e.deleted) return false;
    return this.scope(table) === 'cluster' || this.d.member(e.owner)?.state !== 'dead';
  }

  get(table: string, key: string): JsonValue | undefined {
    const e = this.data.get(table)?.get(key);
    return e && this.visible(table, e) ? e.value : undefined;
  }

  /** Everything known about a key, including tombstones and suspended entries. */
  entry(table: string, key: string): EntryInfo | undefined {
    const e = this.data.get(table)?.get(key);
    return e && { owner: e.owner, ltime: e.ltime, deleted: e.deleted, visible: this.visible(table, e), value: e.value };
  }

  /** Visible entries of a table (optionally only keys starting with prefix). */
  entries(table: string, prefix = ''): Array<[string, JsonValue, string]> {
    const out: Array<[string, JsonValue, string]> = [];
    const t = this.data.get(table);
    if (!t) return out;
    for (const [k, e] of t) {
      if (k.startsWith(prefix) && this.visible(table, e)) out.push([k, e.value as JsonValue, e.owner]);
    }
    return out;
  }

  tables(): string[] {
    return [...this.data.keys()];
  }

  set(table: string, key: string, value: JsonValue): void {
    if (!table || table.includes(SEP) || Buffer.byteLength(table) > MAX_TABLE_NAME_BYTES) throw new Error(`invalid table name: ${JSON.stringify(table)}`);
    if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new Error(`table key longer than ${MAX_KEY_BYTES} bytes`);
    const raw = encodeValue(value);
    if (raw.length > MAX_VALUE_BYTES) throw new Error(`table value of ${raw.length} bytes exceeds ${MAX_VALUE_BYTES}`);
    this.witness(this.lamport + 1);
    this.apply({ table, key, owner: this.d.selfId, ltime: this.lamport, deleted: false, value: raw }, 'local');
  }

  /** Delete a key (tombstone). False when there was nothing to delete. */
  delete(table: string, key: string): boolean {
    const e = this.data.get(table)?.get(key);
    if (!e || e.deleted) return false;
    this.witness(this.lamport + 1);
    this.apply({ table, key, owner: this.d.selfId, ltime: this.lamport, deleted: true, value: new Uint8Array(0) }, 'local');
    return true;
  }

  subscribe(fn: (e: TableEvent) => void, table?: string): () => void {
    const s = { table, fn };
    this.subs.add(s);
    return () => this.subs.delete(s);
  }

  private emit(table: string, key: string, kind: ChangeKind, e: Entry, cause: ChangeCause): void {
    const ev: TableEvent = { table, key, kind, value: kind === 'delete' ? undefined : e.value, owner: e.owner, cause };
    for (const s of this.subs) if (s.table === undefined || s.table === table) s.fn(ev);
  }

  /** Apply an entry (local write or remote copy). True when it replaced what we had. */
  apply(w: EntryWire, src: ApplySource): boolean {
    this.witness(w.ltime);
    const ownerScoped = this.scope(w.table) === 'owner';
    if (ownerScoped) {
      const st = this.d.member(w.owner)?.state;
      if (st === undefined || st === 'left') return false;
    }
    let t = this.data.get(w.table);
    const old = t?.get(w.key);
    if (old && !(w.ltime > old.ltime || (w.ltime === old.ltime && w.owner > old.owner))) return false;
    if (w.deleted && w.value.length !== 0) throw new MalformedError('tombstone with a value');
    const value = w.deleted ? undefined : decodeValue(w.value);
    const e: Entry = {
      owner: w.owner,
      ltime: w.ltime,
      deleted: w.deleted,
      raw: w.value,
      value,
      reapAt: w.deleted ? this.d.clock.now() + this.d.config.tombstoneReap : 0,
    };
    if (!t) this.data.set(w.table, (t = new Map()));
    const wasVisible = old !== undefined && this.visible(w.table, old);
    t.set(w.key, e);
    if (ownerScoped) {
      const ck = w.table + SEP + w.key;
      if (old && old.owner !== e.owner) this.byOwner.get(old.owner)?.delete(ck);
      let set = this.byOwner.get(e.owner);
      if (!set) this.byOwner.set(e.owner, (set = new Set()));
      set.add(ck);
    }
    const isVisible = this.visible(w.table, e);
    if (isVisible && !wasVisible) this.emit(w.table, w.key, 'create', e, 'write');
    else if (!isVisible && wasVisible) this.emit(w.table, w.key, 'delete', e, 'write');
    else if (isVisible && old && !bytesEqual(old.raw, e.raw)) this.emit(w.table, w.key, 'update', e, 'write');
    const rebroadcast = src === 'local' || src === 'gossip' || (src === 'sync' && this.d.queueSize() < MAX_QUEUE_FOR_SYNC_REBROADCAST);
    if (rebroadcast) this.d.broadcast(`t:${w.table}${SEP}${w.key}`, { t: 'table', entry: w });
    return true;
  }

  /** Every entry, tombstones and suspended ones included (push-pull payload). */
  snapshot(): EntryWire[] {
    const out: EntryWire[] = [];
    for (const [table, t] of this.data) {
      for (const [key, e] of t) out.push({ table, key, owner: e.owner, ltime: e.ltime, deleted: e.deleted, value: e.raw });
    }
    return out;
  }

  private forOwner(owner: string, fn: (table: string, key: string, e: Entry) => void): void {
    const set = this.byOwner.get(owner);
    if (!set) return;
    for (const ck of set) {
      const i = ck.indexOf(SEP);
      const table = ck.slice(0, i);
      const key = ck.slice(i + 1);
      const e = this.data.get(table)?.get(key);
      if (e && e.owner === owner) fn(table, key, e);
    }
  }

  private dropOwner(owner: string, cause: ChangeCause | undefined): void {
    this.forOwner(owner, (table, key, e) => {
      const wasVisible = this.visible(table, e);
      this.data.get(table)?.delete(key);
      if (cause && wasVisible) this.emit(table, key, 'delete', e, cause);
    });
    this.byOwner.delete(owner);
  }

  /** Membership changed: suspend, resume or drop the owner's entries. */
  onMember(ev: MemberEvent): void {
    const id = ev.member.id;
    if (id === this.d.selfId) return;
    switch (ev.kind) {
      case 'dead':
        this.forOwner(id, (table, key, e) => {
          if (!e.deleted) this.emit(table, key, 'delete', e, 'suspended');
        });
        break;
      case 'alive-again':
        if (ev.previous === 'dead') {
          this.forOwner(id, (table, key, e) => {
            if (!e.deleted) this.emit(table, key, 'create', e, 'resumed');
          });
        }
        break;
      case 'left':
        // Entries of a dead owner were already hidden (and reported); just drop them.
        this.dropOwner(id, ev.previous === 'dead' ? undefined : 'owner-left');
        break;
      case 'reap':
        this.dropOwner(id, undefined);
        break;
      default:
        break;
    }
  }

  /** Forget expired tombstones and the entries of owners dead for longer than deadOwnerReap. */
  reap(): void {
    const now = this.d.clock.now();
    for (const [table, t] of this.data) {
      for (const [key, e] of t) {
        if (!e.deleted || now < e.reapAt) continue;
        t.delete(key);
        this.byOwner.get(e.owner)?.delete(table + SEP + key);
      }
    }
    for (const owner of [...this.byOwner.keys()]) {
      const m = this.d.member(owner);
      if (!m || (m.state === 'dead' && now - m.since >= this.d.config.deadOwnerReap)) this.dropOwner(owner, undefined);
    }
  }
}
