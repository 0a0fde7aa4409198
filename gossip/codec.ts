// Wire format of every gossip message (the plaintext inside a sealed packet or stream; see
// security.ts for the envelope).
//
//   message  = type:u8 body
//   compound = 9 count:u8 len:u16be{count} part{count}     (parts are messages, not compounds)
//
// Bodies are sequences of fields: varint integers, varint-length strings/bytes, u8 booleans
// (see buf.ts). Table values and node meta are opaque bytes here (value.ts encodes them).
// decodeMessage reads with a length check before every read and rejects trailing bytes;
// anything wrong throws MalformedError, which receivers catch and count as dropped.malformed.
// Type numbers are stable: append, never renumber.

import { MalformedError, Reader, Writer } from './buf.js';

export const MsgType = {
  ping: 1,
  indirect: 2,
  ack: 3,
  nack: 4,
  suspect: 5,
  alive: 6,
  dead: 7,
  leave: 8,
  compound: 9,
  pushPull: 10,
  table: 11,
  user: 12,
  claim: 13,
  vote: 14,
  alloc: 15,
  allocReply: 16,
  error: 17,
} as const;

export type MemberStateCode = 0 | 1 | 2 | 3; // alive, suspect, dead, left

export interface NodeState {
  id: string;
  name: string;
  addr: string;
  meta: Uint8Array;
  inc: number;
  state: MemberStateCode;
}

export interface EntryWire {
  table: string;
  key: string;
  owner: string;
  ltime: number;
  deleted: boolean;
  value: Uint8Array;
}

/** An IPv4 pool as numbers (host order); ip 0 = "any address". */
export interface PoolWire {
  base: number;
  prefixLen: number;
  gateway: number;
  first: number;
  last: number;
  blockSize: number;
}

export type Message =
  | { t: 'ping'; seq: number; target: string; from: string }
  | { t: 'indirect'; seq: number; target: string; targetAddr: string; nack: boolean; from: string }
  | { t: 'ack'; seq: number; from: string }
  | { t: 'nack'; seq: number; from: string }
  | { t: 'suspect'; inc: number; node: string; from: string }
  | { t: 'alive'; inc: number; node: string; name: string; addr: string; meta: Uint8Array }
  | { t: 'dead'; inc: number; node: string; from: string }
  | { t: 'leave'; inc: number; node: string }
  | { t: 'compound'; parts: Uint8Array[] }
  | { t: 'pushPull'; join: boolean; nodes: NodeState[]; entries: EntryWire[] }
  | { t: 'table'; entry: EntryWire }
  | { t: 'user'; payload: Uint8Array }
  | { t: 'claim'; network: string; block: number; claimant: string; release: boolean }
  | { t: 'vote'; granted: boolean; holder: string; voters: number }
  | { t: 'alloc'; network: string; pool: PoolWire; ip: number; holder: string; endpoint: string }
  | { t: 'allocReply'; ok: boolean; ip: number; code: string; message: string }
  | { t: 'error'; message: string };

export type MessageOf<T extends Message['t']> = Extract<Message, { t: T }>;

/** Limits enforced on decode (and by the senders that build these messages). */
export const LIMITS = { id: 255, meta: 512, key: 1024, compoundParts: 255 } as const;

function writeNode(w: Writer, n: NodeState): void {
  w.str(n.id).str(n.name).str(n.addr).bytes(n.meta).uint(n.inc).u8(n.state);
}

function readNode(r: Reader): NodeState {
  const id = r.str(LIMITS.id);
  const name = r.str(LIMITS.id);
  const addr = r.str(LIMITS.id);
  const meta = r.bytes(LIMITS.meta);
  const inc = r.uint();
  const state = r.u8();
  if (state > 3) throw new MalformedError(`bad member state ${state}`);
  return { id, name, addr, meta, inc, state: state as MemberStateCode };
}

function writeEntry(w: Writer, e: EntryWire): void {
  w.str(e.table).str(e.key).str(e.owner).uint(e.ltime).bool(e.deleted).bytes(e.value);
}

function readEntry(r: Reader): EntryWire {
  return { table: r.str(LIMITS.id), key: r.str(LIMITS.key), owner: r.str(LIMITS.id), ltime: r.uint(), deleted: r.bool(), value: r.bytes() };
}

export function writeMessage(w: Writer, m: Message): void {
  w.u8(MsgType[m.t]);
  switch (m.t) {
    case 'ping':
      w.uint(m.seq).str(m.target).str(m.from);
      break;
    case 'indirect':
      w.uint(m.seq).str(m.target).str(m.targetAddr).bool(m.nack).str(m.from);
      break;
    case 'ack':
    case 'nack':
      w.uint(m.seq).str(m.from);
      break;
    case 'suspect':
    case 'dead':
      w.uint(m.inc).str(m.node).str(m.from);
      break;
    case 'alive':
      w.uint(m.inc).str(m.node).str(m.name).str(m.addr).bytes(m.meta);
      break;
    case 'leave':
      w.uint(m.inc).str(m.node);
      break;
    case 'compound':
      if (m.parts.length > LIMITS.compoundParts) throw new RangeError('too many compound parts');
      w.u8(m.parts.length);
      for (const p of m.parts) {
        if (p.length > 0xffff) throw new RangeError('compound part too large');
        w.u16(p.length);
      }
      for (const p of m.parts) w.raw(p);
      break;
    case 'pushPull':
      w.bool(m.join).uint(m.nodes.length);
      for (const n of m.nodes) writeNode(w, n);
      w.uint(m.entries.length);
      for (const e of m.entries) writeEntry(w, e);
      break;
    case 'table':
      writeEntry(w, m.entry);
      break;
    case 'user':
      w.bytes(m.payload);
      break;
    case 'claim':
      w.str(m.network).uint(m.block).str(m.claimant).bool(m.release);
      break;
    case 'vote':
      w.bool(m.granted).str(m.holder).uint(m.voters);
      break;
    case 'alloc':
      w.str(m.network).uint(m.pool.base).uint(m.pool.prefixLen).uint(m.pool.gateway).uint(m.pool.first).uint(m.pool.last);
      w.uint(m.pool.blockSize).uint(m.ip).str(m.holder).str(m.endpoint);
      break;
    case 'allocReply':
      w.bool(m.ok).uint(m.ip).str(m.code).str(m.message);
      break;
    case 'error':
      w.str(m.message);
      break;
  }
}

export function encodeMessage(m: Message): Uint8Array {
  const w = new Writer(m.t === 'pushPull' ? 4096 : 128);
  writeMessage(w, m);
  return w.finish();
}

function readBody(r: Reader, type: number): Message {
  switch (type) {
    case MsgType.ping:
      return { t: 'ping', seq: r.uint(), target: r.str(LIMITS.id), from: r.str(LIMITS.id) };
    case MsgType.indirect:
      return { t: 'indirect', seq: r.uint(), target: r.str(LIMITS.id), targetAddr: r.str(LIMITS.id), nack: r.bool(), from: r.str(LIMITS.id) };
    case MsgType.ack:
      return { t: 'ack', seq: r.uint(), from: r.str(LIMITS.id) };
    case MsgType.nack:
      return { t: 'nack', seq: r.uint(), from: r.str(LIMITS.id) };
    case MsgType.suspect:
      return { t: 'suspect', inc: r.uint(), node: r.str(LIMITS.id), from: r.str(LIMITS.id) };
    case MsgType.alive:
      return { t: 'alive', inc: r.uint(), node: r.str(LIMITS.id), name: r.str(LIMITS.id), addr: r.str(LIMITS.id), meta: r.bytes(LIMITS.meta) };
    case MsgType.dead:
      return { t: 'dead', inc: r.uint(), node: r.str(LIMITS.id), from: r.str(LIMITS.id) };
    case MsgType.leave:
      return { t: 'leave', inc: r.uint(), node: r.str(LIMITS.id) };
    case MsgType.compound: {
      const n = r.u8();
      const lens: number[] = [];
      for (let i = 0; i < n; i++) lens.push(r.u16());
      return { t: 'compound', parts: lens.map((len) => r.raw(len)) };
    }
    case MsgType.pushPull: {
      const join = r.bool();
      const nn = r.count(7);
      const nodes: NodeState[] = [];
      for (let i = 0; i < nn; i++) nodes.push(readNode(r));
      const ne = r.count(7);
      const entries: EntryWire[] = [];
      for (let i = 0; i < ne; i++) entries.push(readEntry(r));
      return { t: 'pushPull', join, nodes, entries };
    }
    case MsgType.table:
      return { t: 'table', entry: readEntry(r) };
    case MsgType.user:
      return { t: 'user', payload: r.bytes() };
    case MsgType.claim:
      return { t: 'claim', network: r.str(LIMITS.id), block: r.uint(), claimant: r.str(LIMITS.id), release: r.bool() };
    case MsgType.vote:
      return { t: 'vote', granted: r.bool(), holder: r.str(LIMITS.id), voters: r.uint() };
    case MsgType.alloc:
      return {
        t: 'alloc',
        network: r.str(LIMITS.id),
        pool: { base: r.uint(), prefixLen: r.uint(), gateway: r.uint(), first: r.uint(), last: r.uint(), blockSize: r.uint() },
        ip: r.uint(),
        holder: r.str(LIMITS.id),
        endpoint: r.str(LIMITS.id),
      };
    case MsgType.allocReply:
      return { t: 'allocReply', ok: r.bool(), ip: r.uint(), code: r.str(LIMITS.id), message: r.str() };
    case MsgType.error:
      return { t: 'error', message: r.str() };
    default:
      throw new MalformedError(`unknown message type ${type}`);
  }
}

export function decodeMessage(b: Uint8Array): Message {
  const r = new Reader(b);
  const m = readBody(r, r.u8());
  r.end();
  return m;
}

/**
 * Decode a received datagram: a single message, or a compound whose parts are decoded one by
 * one. A bad part does not spoil its neighbours: it is reported through onBad and skipped.
 */
export function decodePacket(b: Uint8Array, onBad: (e: MalformedError) => void): Message[] {
  const top = decodeMessage(b);
  if (top.t !== 'compound') return [top];
  const out: Message[] = [];
  for (const p of top.parts) {
    try {
      const m = decodeMessage(p);
      if (m.t === 'compound') throw new MalformedError('nested compound');
      out.push(m);
    } catch (e) {
      if (!(e instanceof MalformedError)) throw e;
      onBad(e);
    }
  }
  return out;
}

export function encodeCompound(parts: Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0] : encodeMessage({ t: 'compound', parts });
}
