// Hostile input: random bytes, truncated and mutated queries, compression-pointer loops, a
// flood, and TCP framing abuse. The resolver never throws, every message is either answered
// or counted as dropped, and good queries keep being answered.
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import net from 'node:net';
import dnsPacket from 'dns-packet';
import { DnsResolver } from './server.js';
import { frame, readFrames, serveTcp } from './tcp.js';
import { fixture, query } from './testkit.js';

/** Feeds msg; returns the reply (synchronous paths only: no upstreams, so nothing is pending long). */
function feed(res: DnsResolver, msg: Buffer, transport: 'udp' | 'tcp' = 'udp'): Buffer | undefined {
  let out: Buffer | undefined;
  res.handle(msg, ['front'], transport, (m) => (out = m));
  return out;
}

const accounted = (res: DnsResolver): number => {
  const c = res.counters;
  // Every query ends in exactly one of these (forwarded ones end in SERVFAIL later).
  return c.local + c.malformed + c.formerr + c.refused + c.forwarded;
};

describe('hostile UDP input', () => {
  it('random bytes never throw; each is answered or counted; replies are valid DNS within 512 bytes', () => {
    const res = new DnsResolver(fixture());
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (bytes) => {
        const before = res.counters.queries;
        const out = feed(res, Buffer.from(bytes));
        expect(res.counters.queries).toBe(before + 1);
        if (out) {
          expect(out.length).toBeLessThanOrEqual(512);
          expect(() => dnsPacket.decode(out!)).not.toThrow();
        }
      }),
      { numRuns: 3000 },
    );
    // No upstream: forwarded ones have no reply yet but are counted as no-upstream SERVFAILs.
    expect(accounted(res) + res.counters.servfail).toBeGreaterThanOrEqual(res.counters.queries);
  });

  it('every truncation and every single-byte mutation of good queries is answered or dropped, never thrown', () => {
    const res = new DnsResolver(fixture());
    const names = fc.constantFrom('web', 'tasks.web', 'db', 'big', '_80._tcp.web', '9.0.0.10.in-addr.arpa');
    const types = fc.constantFrom('A', 'AAAA', 'SRV', 'PTR', 'TXT');
    fc.assert(
      fc.property(names, types, fc.boolean(), fc.nat(), fc.nat(255), (name, type, edns, pos, val) => {
        const q = query(name, type, edns ? { edns: 1232 } : {});
        const cut = q.subarray(0, pos % q.length);
        expect(() => feed(res, cut)).not.toThrow();
        const m = Buffer.from(q);
        m[pos % m.length] = val;
        expect(() => feed(res, m)).not.toThrow();
      }),
      { numRuns: 3000 },
    );
    expect(res.counters.malformed).toBeGreaterThan(0);
  });

  it('compression-pointer loops (self, mutual, forward) are dropped as malformed', () => {
    const res = new DnsResolver(fixture());
    const header = Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    const loops = [
      Buffer.from([0xc0, 12, 0, 1, 0, 1]), // points at itself
      Buffer.from([1, 0x61, 0xc0, 12, 0, 1, 0, 1]), // label then back to its start: a cycle
      Buffer.from([0xc0, 14, 0xc0, 12, 0, 1, 0, 1]), // forward pointer into a pointer back
      Buffer.from([0xc0]), // pointer cut in half
    ];
    for (const l of loops) {
      const before = res.counters.malformed;
      expect(feed(res, Buffer.concat([header, l]))).toBeUndefined();
      expect(res.counters.malformed).toBe(before + 1);
    }
  });

  it('a flood of garbage interleaved with good queries: every good one answered', () => {
    const res = new DnsResolver(fixture());
    let good = 0;
    for (let i = 0; i < 20_000; i++) {
      if (i % 10 === 0) {
        const out = feed(res, query('web', 'A', { id: i & 0xffff }));
        if (out && dnsPacket.decode(out).answers?.[0]) good++;
      } else {
        const junk = Buffer.alloc(12 + (i % 40), i & 0xff);
        junk[2] = i & 0x7f;
        feed(res, junk);
      }
    }
    expect(good).toBe(2000);
    expect(res.counters.malformed + res.counters.formerr + res.counters.forwarded + res.counters.servfail).toBeGreaterThan(0);
  });
});

describe('TCP framing', () => {
  const servers: net.Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  async function tcpResolver(idleMs = 2000): Promise<{ port: number; res: DnsResolver }> {
    const res = new DnsResolver(fixture());
    const server = net.createServer();
    serveTcp(server, { idleMs, maxConnections: 4 }, (q, reply) => res.handle(q, ['front'], 'tcp', reply));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    return { port: (server.address() as net.AddressInfo).port, res };
  }

  function client(port: number): Promise<{ sock: net.Socket; replies: Buffer[]; closed: Promise<void> }> {
    return new Promise((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => resolve({ sock, replies, closed }));
      const replies: Buffer[] = [];
      const closed = new Promise<void>((r) => sock.on('close', () => r()));
      sock.on('error', () => {});
      readFrames(sock, 65535, (m) => replies.push(Buffer.from(m)), () => sock.destroy());
    });
  }

  const until = async (cond: () => boolean, ms = 2000): Promise<void> => {
    const t0 = Date.now();
    while (!cond() && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 5));
  };

  it('several queries on one connection, written byte by byte and back to back, all answered in full', async () => {
    const { port } = await tcpResolver();
    const c = await client(port);
    const two = Buffer.concat([frame(query('big', 'A', { id: 1 })), frame(query('web', 'A', { id: 2 }))]);
    for (const b of two) {
      c.sock.write(Buffer.from([b]));
      await new Promise((r) => setImmediate(r));
    }
    c.sock.write(Buffer.concat([frame(query('db', 'A', { id: 3 })), frame(query('tasks.web', 'A', { id: 4 }))]));
    await until(() => c.replies.length === 4);
    const byId = new Map(c.replies.map((m) => [dnsPacket.decode(m).id, dnsPacket.decode(m)]));
    expect(byId.get(1)!.answers!.length).toBe(100);
    expect(byId.get(1)!.flag_tc).toBe(false);
    expect(byId.get(2)!.answers!.length).toBe(1);
    expect(byId.get(3)!.answers!.length).toBe(3);
    expect(byId.get(4)!.answers!.length).toBe(2);
    c.sock.destroy();
  });

  it('connections beyond maxConnections are closed at accept; earlier ones keep working', async () => {
    const { port } = await tcpResolver();
    const four = await Promise.all([0, 1, 2, 3].map(() => client(port)));
    await new Promise((r) => setTimeout(r, 50));
    const fifth = await client(port);
    await fifth.closed;
    four[0].sock.write(frame(query('web', 'A', { id: 5 })));
    await until(() => four[0].replies.length === 1);
    expect(four[0].replies.length).toBe(1);
    four.forEach((c) => c.sock.destroy());
  });

  it('a zero-length frame closes the connection; a silent one is closed after the idle time', async () => {
    const { port } = await tcpResolver(300);
    const bad = await client(port);
    bad.sock.write(Buffer.from([0, 0, 1, 2, 3]));
    await bad.closed;
    const idle = await client(port);
    const t0 = Date.now();
    await idle.closed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it('random bytes over TCP never crash the listener; a good query still works afterwards', async () => {
    const { port } = await tcpResolver();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 300 }), async (bytes) => {
        const c = await client(port);
        c.sock.end(Buffer.from(bytes));
        await Promise.race([c.closed, new Promise((r) => setTimeout(r, 100))]);
        c.sock.destroy();
      }),
      { numRuns: 50 },
    );
    const ok = await client(port);
    ok.sock.write(frame(query('web', 'A', { id: 77 })));
    await until(() => ok.replies.length === 1);
    expect(dnsPacket.decode(ok.replies[0]).answers!.map((a) => (a as { data: string }).data)).toEqual(['10.0.0.2']);
    ok.sock.destroy();
  });
});
