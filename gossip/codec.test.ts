// Property tests of the wire format: round trips, truncations, random bytes.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { MalformedError, Reader, Writer } from './buf.js';
import { decodeMessage, decodePacket, encodeCompound, encodeMessage, type EntryWire, type Message, type NodeState } from './codec.js';
import { decodeValue, encodeValue, type JsonValue } from './value.js';

const str = (max = 40) => fc.string({ unit: 'binary', maxLength: max });
const id = fc.stringMatching(/^[0-9a-f]{1,16}$/);
const u = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const small = fc.nat({ max: 0xffffffff });
const bytes = (max = 64) => fc.uint8Array({ maxLength: max });

const nodeState: fc.Arbitrary<NodeState> = fc.record({
  id,
  name: str(),
  addr: str(),
  meta: bytes(),
  inc: u,
  state: fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const),
});
const entry: fc.Arbitrary<EntryWire> = fc.record({ table: str(), key: str(100), owner: id, ltime: u, deleted: fc.boolean(), value: bytes(200) });
const pool = fc.record({ base: small, prefixLen: fc.nat({ max: 32 }), gateway: small, first: small, last: small, blockSize: small });

const simple: fc.Arbitrary<Message> = fc.oneof(
  fc.record({ t: fc.constant('ping' as const), seq: u, target: id, from: id }),
  fc.record({ t: fc.constant('indirect' as const), seq: u, target: id, targetAddr: str(), nack: fc.boolean(), from: id }),
  fc.record({ t: fc.constant('ack' as const), seq: u, from: id }),
  fc.record({ t: fc.constant('nack' as const), seq: u, from: id }),
  fc.record({ t: fc.constant('suspect' as const), inc: u, node: id, from: fc.oneof(id, fc.constant('')) }),
  fc.record({ t: fc.constant('alive' as const), inc: u, node: id, name: str(), addr: str(), meta: bytes() }),
  fc.record({ t: fc.constant('dead' as const), inc: u, node: id, from: id }),
  fc.record({ t: fc.constant('leave' as const), inc: u, node: id }),
  fc.record({ t: fc.constant('pushPull' as const), join: fc.boolean(), nodes: fc.array(nodeState, { maxLength: 5 }), entries: fc.array(entry, { maxLength: 5 }) }),
  fc.record({ t: fc.constant('table' as const), entry }),
  fc.record({ t: fc.constant('user' as const), payload: bytes(300) }),
  fc.record({ t: fc.constant('claim' as const), network: str(), block: u, claimant: id, release: fc.boolean() }),
  fc.record({ t: fc.constant('vote' as const), granted: fc.boolean(), holder: id, voters: u }),
  fc.record({ t: fc.constant('alloc' as const), network: str(), pool, ip: small, holder: id, endpoint: str() }),
  fc.record({ t: fc.constant('allocReply' as const), ok: fc.boolean(), ip: small, code: str(), message: str(200) }),
  fc.record({ t: fc.constant('error' as const), message: str(200) }),
);
const compound: fc.Arbitrary<Message> = fc
  .array(simple, { minLength: 0, maxLength: 6 })
  .map((ms) => ({ t: 'compound' as const, parts: ms.map(encodeMessage) }));
const message = fc.oneof(simple, compound);

/** Run fn and report what it threw: 'ok', 'malformed', or the unexpected error itself. */
function outcome(fn: () => unknown): 'ok' | 'malformed' | unknown {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return e instanceof MalformedError ? 'malformed' : e;
  }
}

describe('message codec', () => {
  test('decode(encode(m)) = m for every message kind', () => {
    fc.assert(
      fc.property(message, (m) => {
        expect(decodeMessage(encodeMessage(m))).toEqual(m);
      }),
      { numRuns: 2000 },
    );
  });

  test('every strict prefix of an encoding is rejected with MalformedError', () => {
    fc.assert(
      fc.property(message, (m) => {
        const b = encodeMessage(m);
        for (let n = 0; n < b.length; n++) expect(outcome(() => decodeMessage(b.subarray(0, n)))).toBe('malformed');
      }),
      { numRuns: 300 },
    );
  });

  test('trailing bytes are rejected', () => {
    fc.assert(
      fc.property(simple, fc.uint8Array({ minLength: 1, maxLength: 8 }), (m, extra) => {
        const b = encodeMessage(m);
        const longer = new Uint8Array([...b, ...extra]);
        expect(outcome(() => decodeMessage(longer))).toBe('malformed');
      }),
    );
  });

  test('random bytes either decode or throw MalformedError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        expect(['ok', 'malformed']).toContain(outcome(() => decodeMessage(b)));
        expect(['ok', 'malformed']).toContain(outcome(() => decodePacket(b, () => {})));
      }),
      { numRuns: 5000 },
    );
  });

  test('random mutations of valid messages either decode or throw MalformedError', () => {
    fc.assert(
      fc.property(message, fc.nat(), fc.integer({ min: 0, max: 255 }), (m, pos, val) => {
        const b = encodeMessage(m);
        if (b.length === 0) return;
        b[pos % b.length] = val;
        expect(['ok', 'malformed']).toContain(outcome(() => decodeMessage(b)));
      }),
      { numRuns: 3000 },
    );
  });

  test('a bad compound part is skipped and reported, its neighbours survive', () => {
    const good: Message = { t: 'ack', seq: 7, from: 'ab' };
    const packet = encodeCompound([encodeMessage(good), new Uint8Array([250, 1, 2]), encodeMessage(good)]);
    const bad: MalformedError[] = [];
    expect(decodePacket(packet, (e) => bad.push(e))).toEqual([good, good]);
    expect(bad).toHaveLength(1);
    // Nested compounds are refused (bounded recursion).
    const nested = encodeCompound([encodeCompound([encodeMessage(good), encodeMessage(good)]), encodeMessage(good)]);
    const bad2: MalformedError[] = [];
    expect(decodePacket(nested, (e) => bad2.push(e))).toEqual([good]);
    expect(bad2).toHaveLength(1);
  });
});

describe('value codec (table values, node meta)', () => {
  test('decode(encode(v)) = v for JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const back = decodeValue(encodeValue(v as JsonValue));
        expect(back).toEqual(v);
        expect(Object.is(back, -0)).toBe(Object.is(v, -0));
      }),
      { numRuns: 2000 },
    );
  });

  test('compact: an endpoint record is much smaller than its JSON', () => {
    const ep = { network: 'f3a9c1', mac: '02:42:0a:00:09:02', ip: '10.0.9.2', host: '9c0f3e2a11d04b7e', name: 'web.1', aliases: ['web'] };
    expect(encodeValue(ep).length).toBeLessThan(JSON.stringify(ep).length);
  });

  test('random bytes either decode or throw MalformedError; nesting is bounded', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        expect(['ok', 'malformed']).toContain(outcome(() => decodeValue(b)));
      }),
      { numRuns: 5000 },
    );
    const deep = new Uint8Array(1000).fill(7).map((x, i) => (i % 2 === 0 ? 7 : 1)); // [[[[...
    expect(outcome(() => decodeValue(deep))).toBe('malformed');
  });

  test('varints: every safe integer round-trips, non-minimal and overlong forms are rejected', () => {
    fc.assert(
      fc.property(u, (n) => {
        const r = new Reader(new Writer(8).uint(n).finish());
        expect(r.uint()).toBe(n);
      }),
    );
    expect(outcome(() => new Reader(new Uint8Array([0x80, 0x00])).uint())).toBe('malformed');
    expect(outcome(() => new Reader(new Uint8Array(9).fill(0xff)).uint())).toBe('malformed');
  });
});
