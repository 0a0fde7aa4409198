// Forwarding against tiny upstream servers on 127.0.0.1 (ephemeral ports): answers relayed with
// the client's ID, failover on silence and on SERVFAIL, SERVFAIL when all fail, REFUSED beyond
// the in-flight bound, spoofed replies ignored, TCP forwarding for TCP clients, no forwarding
// at all for a scope that does not forward (a container only on --internal networks).
import { afterAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket, { type Packet } from 'dns-packet';
import { DnsResolver } from './server.js';
import { MemoryRecords } from './records.js';
import { frame, readFrames } from './tcp.js';
import { ask, query } from './testkit.js';

const closers: Array<() => void> = [];
afterAll(() => closers.forEach((c) => c()));

type Behaviour = 'answer' | 'silent' | 'servfail';

/** An upstream on 127.0.0.1 answering NAME A with 192.0.2.<port % 250> (or silent / SERVFAIL). */
async function upstream(b: Behaviour, delayMs = 0): Promise<{ port: number; seen: number[]; from: number[]; sock: dgram.Socket }> {
  const sock = dgram.createSocket('udp4');
  const seen: number[] = [];
  const from: number[] = [];
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const port = sock.address().port;
  sock.on('message', (m, rinfo) => {
    const q = dnsPacket.decode(m);
    seen.push(q.id!);
    from.push(rinfo.port);
    if (b === 'silent') return;
    const p: Packet = {
      type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE | (b === 'servfail' ? 2 : q.questions![0].name === 'nx.example' ? 3 : 0),
      questions: q.questions,
      answers: b === 'answer' && q.questions![0].name !== 'nx.example' ? [{ type: 'A', name: q.questions![0].name, ttl: 60, data: `192.0.2.${port % 250}` }] : [],
    };
    setTimeout(() => sock.send(dnsPacket.encode(p), rinfo.port, rinfo.address), delayMs);
  });
  closers.push(() => sock.close());
  return { port, seen, from, sock };
}

function resolver(ports: number[], extra: Partial<ConstructorParameters<typeof DnsResolver>[1]> = {}): DnsResolver {
  const r = new DnsResolver(new MemoryRecords(), { upstreams: ports.map((port) => ({ host: '127.0.0.1', port })), upstreamTimeoutMs: 200, ...extra });
  closers.push(() => r.close());
  return r;
}

const answerOf = (m: Buffer): string[] => (dnsPacket.decode(m).answers ?? []).map((a) => String((a as { data: unknown }).data));

async function wait(res: DnsResolver, msg: Buffer, transport: 'udp' | 'tcp' = 'udp', ms = 3000): Promise<{ reply: Buffer | undefined; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ reply: undefined, ms: Date.now() - t0 }), ms);
    res.handle(msg, [], transport, (m) => {
      clearTimeout(timer);
      resolve({ reply: Buffer.from(m), ms: Date.now() - t0 });
    });
  });
}

describe('forwarding', () => {
  it('an unknown name goes upstream with a fresh ID; the answer comes back with the client\'s ID', async () => {
    const up = await upstream('answer');
    const res = resolver([up.port]);
    const { reply } = await wait(res, query('example.org', 'A', { id: 1234 }));
    expect(reply).toBeDefined();
    expect(dnsPacket.decode(reply!).id).toBe(1234);
    expect(answerOf(reply!)).toEqual([`192.0.2.${up.port % 250}`]);
    expect(up.seen.length).toBe(1);
    expect(res.counters.forwarded).toBe(1);
    expect(res.counters.local).toBe(0);
  });

  it('NXDOMAIN from upstream is relayed and counted', async () => {
    const up = await upstream('answer');
    const res = resolver([up.port]);
    const { reply } = await wait(res, query('nx.example', 'A'));
    expect(reply![3] & 0x0f).toBe(3);
    expect(res.counters.nxdomain).toBe(1);
  });

  it('a silent upstream and a SERVFAIL one are skipped: the third answers', async () => {
    const a = await upstream('silent');
    const b = await upstream('servfail');
    const c = await upstream('answer');
    const res = resolver([a.port, b.port, c.port]);
    const { reply, ms } = await wait(res, query('example.org', 'A'));
    expect(answerOf(reply!)).toEqual([`192.0.2.${c.port % 250}`]);
    expect([a.seen.length, b.seen.length, c.seen.length]).toEqual([1, 1, 1]);
    expect(ms).toBeGreaterThanOrEqual(190);
    expect(res.counters.upstreamFailures).toBe(2);
  });

  it('all upstreams down → SERVFAIL within their timeouts; a 4th upstream is never used', async () => {
    const ups = await Promise.all([upstream('silent'), upstream('silent'), upstream('silent'), upstream('answer')]);
    const res = resolver(ups.map((u) => u.port));
    const { reply, ms } = await wait(res, query('example.org', 'A'));
    expect(reply![3] & 0x0f).toBe(2);
    expect(ms).toBeGreaterThanOrEqual(590);
    expect(ms).toBeLessThan(1500);
    expect(ups[3].seen.length).toBe(0);
    expect(res.counters.servfail).toBe(1);
    expect(res.counters.upstreamFailures).toBe(3);
  });

  it('a reply from another address:port than the upstream asked is ignored', async () => {
    const up = await upstream('silent');
    const res = resolver([up.port], { upstreamTimeoutMs: 400 });
    const spoofer = dgram.createSocket('udp4');
    closers.push(() => spoofer.close());
    const pending = wait(res, query('example.org', 'A'));
    await new Promise((r) => setTimeout(r, 50));
    // The forwarder's socket is the sender seen by the upstream; spoof a reply for its ID.
    const id = up.seen[0];
    const fake = dnsPacket.encode({ type: 'response', id, questions: [{ type: 'A', name: 'example.org' }], answers: [{ type: 'A', name: 'example.org', data: '6.6.6.6' }] });
    // From the right address but another port than the upstream's: must be ignored.
    spoofer.send(fake, up.from[0], '127.0.0.1');
    const { reply } = await pending;
    expect(reply![3] & 0x0f).toBe(2); // timed out: SERVFAIL, never 6.6.6.6
    expect(answerOf(reply!)).toEqual([]);
  });

  it('beyond maxInFlight forwards: REFUSED at once, counted', async () => {
    const up = await upstream('answer', 300);
    const res = resolver([up.port], { maxInFlight: 4, upstreamTimeoutMs: 2000 });
    const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => wait(res, query(`n${i}.example`, 'A', { id: i }))));
    const rcodes = replies.map((r) => r.reply![3] & 0x0f);
    expect(rcodes.filter((c) => c === 0).length).toBe(4);
    expect(rcodes.filter((c) => c === 5).length).toBe(2);
    expect(res.counters.refused).toBe(2);
  });

  it('a TCP client is forwarded over TCP (full answer, 2-byte framing)', async () => {
    const srv = net.createServer((s) => {
      readFrames(s, 65535, (m) => {
        const q = dnsPacket.decode(m);
        const answers = Array.from({ length: 80 }, (_, i) => ({ type: 'A' as const, name: q.questions![0].name, ttl: 1, data: `198.51.100.${i}` }));
        s.write(frame(dnsPacket.encode({ type: 'response', id: q.id, questions: q.questions, answers })));
      }, () => s.destroy());
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    closers.push(() => srv.close());
    const port = (srv.address() as net.AddressInfo).port;
    // First upstream: a port nobody listens on (connection refused), then the real one.
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const deadPort = (dead.address() as net.AddressInfo).port;
    await new Promise((r) => dead.close(r));
    const res = resolver([deadPort, port]);
    const { reply } = await wait(res, query('many.example', 'A', { id: 9 }), 'tcp');
    expect(dnsPacket.decode(reply!).id).toBe(9);
    expect(answerOf(reply!).length).toBe(80);
    expect(res.counters.upstreamFailures).toBe(1);
  });

  it('a scope that does not forward (only --internal networks): REFUSED at once, RA clear, upstream never asked; local names still answered', async () => {
    const up = await upstream('answer');
    const recs = new MemoryRecords();
    recs.setContainer('priv', 'db', '10.9.0.5');
    const res = new DnsResolver(recs, { upstreams: [{ host: '127.0.0.1', port: up.port }], upstreamTimeoutMs: 200 });
    closers.push(() => res.close());
    for (const transport of ['udp', 'tcp'] as const) {
      let reply: Buffer | undefined;
      res.handle(query('example.org', 'A', { id: 77 }), ['priv'], transport, (m) => (reply = Buffer.from(m)), false);
      expect(reply, transport).toBeDefined(); // synchronously: nothing was sent anywhere
      const p = dnsPacket.decode(reply!);
      expect(p.id).toBe(77);
      expect(reply![3] & 0x0f).toBe(5);
      expect((p.flags ?? 0) & dnsPacket.RECURSION_AVAILABLE).toBe(0);
    }
    let local: Buffer | undefined;
    res.handle(query('db', 'A'), ['priv'], 'udp', (m) => (local = Buffer.from(m)), false);
    expect(answerOf(local!)).toEqual(['10.9.0.5']);
    await new Promise((r) => setTimeout(r, 100));
    expect(up.seen.length).toBe(0);
    expect(res.counters.internal).toBe(2);
    expect(res.counters.forwarded).toBe(0);
    expect(res.counters.refused).toBe(0);
    // The same resolver forwards for a scope that does.
    const { reply } = await wait(res, query('example.org', 'A'));
    expect(answerOf(reply!)).toEqual([`192.0.2.${up.port % 250}`]);
    expect(up.seen.length).toBe(1);
  });

  it('no upstream configured: SERVFAIL', async () => {
    const res = resolver([]);
    const reply = await ask(res, query('example.org', 'A'));
    // Answered on the next turn, not synchronously: ask() waits 50 ms.
    expect(reply![3] & 0x0f).toBe(2);
  });
});
