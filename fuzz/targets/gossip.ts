// Gossip datagrams and stream requests into a GossipNode (the agent's tables and quorum IPAM
// attached) through its Transport handlers, with a real keyring. Three kinds of input:
//   - valid-key-sealed mutated plaintexts (most of them: only these reach the decoder and the
//     protocol handlers),
//   - mutated sealed blobs (tampered ciphertext, id, version, truncation),
//   - garbage and blobs sealed with another cluster's key.
// Every datagram must be counted as an auth or malformed drop or yield messages; every stream
// request must be answered exactly once; a protocol handler must never throw (dropped.error).
import { AGENT_TABLES } from '../../agent/tables.js';
import { encodeMessage, type Message } from '../../gossip/codec.js';
import { GossipNode, Keyring, attachIpam, generateKey } from '../../gossip/index.js';
import { Channel, type ChannelCode } from '../../gossip/security.js';
import { SeededRandom, type Clock, type RequestCallback, type Transport, type TransportHandlers } from '../../gossip/transport.js';
import type { GossipStats } from '../../gossip/wire.js';
import { Failures, Mutator, outOfTime, type FuzzResult, type FuzzTarget } from '../mutate.js';

/** A transport whose inputs come from the fuzzer: timers never fire, sends go nowhere, requests fail. */
class FuzzTransport implements Transport {
  readonly simulated = false;
  handlers: TransportHandlers | undefined;
  sent = 0;
  readonly clock: Clock;
  private t = 1_000_000;
  constructor(readonly random: SeededRandom) {
    this.clock = { now: () => this.t++, setTimer: () => () => undefined };
  }
  async start(h: TransportHandlers): Promise<void> {
    this.handlers = h;
  }
  localAddr(): string {
    return '192.0.2.1:7946';
  }
  sendPacket(): void {
    this.sent++;
  }
  request(_to: string, _data: Uint8Array, _ms: number, cb: RequestCallback): void {
    queueMicrotask(() => cb(new Error('connection refused')));
  }
  async stop(): Promise<void> {}
}

const b = (s: string) => new TextEncoder().encode(s);
const NODE = 'a1b2c3d4e5f60718';
const PEER = '0011223344556677';
const POOL = { base: 0x0a000900, prefixLen: 24, gateway: 0x0a000901, first: 0x0a000902, last: 0x0a0009fe, blockSize: 16 };
const entry = (table: string, key: string, value: string) => ({ table, key, owner: PEER, ltime: 5, deleted: false, value: b(value) });

function messages(): Message[] {
  const st = { id: PEER, name: 'h2', addr: '192.0.2.2:7946', meta: b('{"vtep":"192.0.2.2","vxlanPort":4789}'), inc: 3, state: 0 as const };
  return [
    { t: 'ping', seq: 7, target: NODE, from: PEER },
    { t: 'ping', seq: 8, target: 'ffff', from: PEER },
    { t: 'indirect', seq: 9, target: PEER, targetAddr: '192.0.2.2:7946', nack: true, from: PEER },
    { t: 'ack', seq: 7, from: PEER },
    { t: 'nack', seq: 7, from: PEER },
    { t: 'alive', inc: 4, node: PEER, name: 'h2', addr: '192.0.2.2:7946', meta: st.meta },
    { t: 'suspect', inc: 4, node: PEER, from: PEER },
    { t: 'suspect', inc: 0, node: NODE, from: PEER },
    { t: 'dead', inc: 4, node: PEER, from: PEER },
    { t: 'leave', inc: 5, node: PEER },
    { t: 'table', entry: entry('endpoints', 'ep1', '{"network":"n1","ip":"10.0.9.3"}') },
    { t: 'table', entry: entry('networks', 'n1', '{"name":"net","vni":4096}') },
    { t: 'pushPull', join: true, nodes: [st, { ...st, id: NODE, state: 1 }], entries: [entry('networks', 'n2', '{}')] },
    { t: 'claim', network: 'n1', block: 2, claimant: PEER, release: false },
    { t: 'alloc', network: 'n1', pool: POOL, ip: 0x0a000905, holder: PEER, endpoint: 'ep1' },
    { t: 'vote', granted: true, holder: PEER, voters: 3 },
    { t: 'user', payload: b('hello') },
    { t: 'error', message: 'no' },
  ];
}

function plaintexts(): Buffer[] {
  const parts = messages().map(encodeMessage);
  const out = parts.map((p) => Buffer.from(p));
  out.push(Buffer.from(encodeMessage({ t: 'compound', parts: parts.slice(0, 6) })));
  out.push(Buffer.from(encodeMessage({ t: 'compound', parts: parts.slice(5, 12) })));
  return out;
}

interface Rig {
  node: GossipNode;
  stats: GossipStats;
  h: TransportHandlers;
}

async function rig(keyring: Keyring, random: SeededRandom): Promise<Rig> {
  const t = new FuzzTransport(random);
  const node = new GossipNode({ id: NODE, name: 'h1', keyring, profile: 'lan', tables: AGENT_TABLES, meta: { vtep: '192.0.2.1' } }, t);
  attachIpam(node);
  await node.start();
  // The counters of the node's wire layer, read directly: node.stats() copies them and walks
  // every member, too slow to call per input.
  const stats = node['wire'].stats;
  return { node, stats, h: t.handlers! };
}

/** The first lines of the stack of `e`, or of what `again` throws when replayed with stacks on. */
function withStack(e: unknown, again: () => void): string {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 10;
  try {
    again();
  } catch (e2) {
    e = e2;
  } finally {
    Error.stackTraceLimit = limit;
  }
  return (e as Error).stack?.split('\n').slice(0, 3).join(' | ') ?? String(e);
}

/** Fresh node every so many inputs: authenticated members and entries accumulate by design. */
const RIG_LIFETIME = 2_000;

function target(name: string, channel: ChannelCode): FuzzTarget {
  return {
    name,
    count: 10_000_000,
    async run(count, seed, until) {
      const keyring = new Keyring(generateKey());
      const foreign = new Keyring(generateKey());
      const m = new Mutator(seed, plaintexts(), 1400);
      const sealed = new Mutator(seed ^ 0x1234567, plaintexts().map((p) => Buffer.from(keyring.seal(p, channel))), 1400);
      const random = new SeededRandom(seed);
      const failures = new Failures();
      const froms = ['192.0.2.2:7946', '192.0.2.3:7946', '[2001:db8::1]:7946', 'x'];
      let r = await rig(keyring, random);
      let rejected = 0;
      let accepted = 0;
      let outstanding = 0;
      let twice = 0;
      // Most inputs end in a MalformedError or AuthError (or a failed GCM final inside
      // node:crypto) that the node catches and counts; capturing a stack for each cost as much
      // as the decode. No stacks during the loop; an escaped exception is replayed with them on.
      const stackLimit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      const t0 = performance.now();
      let i = 0;
      for (; i < count && !outOfTime(i, until); i++) {
        if (i > 0 && i % RIG_LIFETIME === 0) {
          await r.node.stop();
          r = await rig(keyring, random);
        }
        const kind = m.int(10);
        let data: Uint8Array;
        if (kind < 6) data = keyring.seal(m.out.subarray(0, m.next()), channel);
        else if (kind < 8) data = sealed.out.subarray(0, sealed.mutate());
        else if (kind === 8) data = foreign.seal(m.out.subarray(0, m.next()), channel);
        else data = m.out.subarray(0, m.random());
        const from = froms[m.int(froms.length)];
        const s = r.stats;
        const before = s.dropped.auth + s.dropped.malformed;
        const msgs = s.messagesIn;
        try {
          if (channel === Channel.packet) {
            r.h.onPacket(from, data);
          } else {
            outstanding++;
            let answered = false;
            r.h.onRequest(from, data, () => {
              if (answered) twice++;
              else outstanding--;
              answered = true;
            });
          }
        } catch (e) {
          failures.add(`exception on input ${i}: ${withStack(e, () => (channel === Channel.packet ? r.h.onPacket(from, data) : r.h.onRequest(from, data, () => undefined)))}`);
          continue;
        }
        const dropped = s.dropped.auth + s.dropped.malformed - before;
        if (dropped > 0 && s.messagesIn === msgs) rejected++;
        else if (s.messagesIn > msgs || channel !== Channel.packet) accepted++;
        else if (dropped === 0) accepted++; // an empty compound: nothing to reject, nothing to do
        if (s.dropped.error > 0) {
          failures.add(`a protocol handler threw on input ${i} (dropped.error)`);
          s.dropped.error = 0;
        }
        if ((i & 1023) === 1023) await new Promise((res) => setImmediate(res));
      }
      Error.stackTraceLimit = stackLimit;
      await new Promise((res) => setTimeout(res, 20));
      const seconds = (performance.now() - t0) / 1000;
      await r.node.stop();
      if (channel !== Channel.packet) {
        // Requests the stream side refused (reply(undefined)) are counted auth or malformed.
        if (outstanding !== 0) failures.add(`${outstanding} stream requests never answered`);
        if (twice !== 0) failures.add(`${twice} stream requests answered twice`);
      }
      return { name, inputs: i, rejected, accepted, seconds, failures: failures.done(), note: `a fresh node every ${RIG_LIFETIME} inputs` } satisfies FuzzResult;
    },
  };
}

export const gossipPacketTarget = target('gossip datagrams (GossipNode, sealed)', Channel.packet);
export const gossipStreamTarget = target('gossip stream requests (GossipNode, sealed)', Channel.request);
