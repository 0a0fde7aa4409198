// The resolver's behaviour through DnsResolver.handle (no sockets): local names per scope,
// dnsrr shuffling, tasks., aliases, PTR, SRV, AAAA, truncation, malformed input.
import { describe, expect, it } from 'vitest';
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { MemoryRecords } from './records.js';
import { DnsResolver } from './server.js';
import { ask, fixture, query } from './testkit.js';
import { upstreamsFromResolvConf, parseUpstream } from './config.js';

const rcodeOf = (m: Buffer): number => m[3] & 0x0f;
const data = (m: Buffer): string[] => (dnsPacket.decode(m).answers ?? []).map((a) => String((a as { data: unknown }).data));

describe('local answers', () => {
  const res = new DnsResolver(fixture());

  it('service name in vip mode → its VIP, TTL as configured, id and question echoed, AA', async () => {
    const m = (await ask(res, query('web', 'A', { id: 777 })))!;
    const p = dnsPacket.decode(m);
    expect(p.id).toBe(777);
    expect(p.flag_aa && p.flag_qr && p.flag_rd && p.flag_ra).toBe(true);
    expect(p.questions![0].name).toBe('web');
    expect(data(m)).toEqual(['10.0.0.2']);
    expect((p.answers![0] as { ttl: number }).ttl).toBe(res.cfg.ttl);
  });

  it('names are case-insensitive and may end with a dot or the network name', async () => {
    expect(data((await ask(res, query('WeB.', 'A')))!)).toEqual(['10.0.0.2']);
    expect(data((await ask(res, query('web.front', 'A')))!)).toEqual(['10.0.0.2']);
  });

  it('dnsrr service → every task IP, in shuffled order', async () => {
    const orders = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const ips = data((await ask(res, query('db', 'A')))!);
      expect([...ips].sort()).toEqual(['10.0.0.21', '10.0.0.22', '10.0.0.23']);
      orders.add(ips.join());
    }
    expect(orders.size).toBeGreaterThan(1);
  });

  it('tasks.NAME → every task IP of a vip service', async () => {
    expect(data((await ask(res, query('tasks.web', 'A')))!).sort()).toEqual(['10.0.0.5', '10.0.0.6']);
  });

  it('container names and aliases → their IP; PTR → the first owner', async () => {
    expect(data((await ask(res, query('client', 'A')))!)).toEqual(['10.0.0.9']);
    expect(data((await ask(res, query('cache', 'A')))!)).toEqual(['10.0.0.9']);
    expect(data((await ask(res, query('9.0.0.10.in-addr.arpa', 'PTR')))!)).toEqual(['client']);
    expect(data((await ask(res, query('2.0.0.10.in-addr.arpa', 'PTR')))!)).toEqual(['web']);
    expect(data((await ask(res, query('5.0.0.10.in-addr.arpa', 'PTR')))!)).toEqual(['web-1']);
  });

  it('SRV _port._proto.service: vip → the service, dnsrr → one per task with A additionals', async () => {
    const v = dnsPacket.decode((await ask(res, query('_80._tcp.web', 'SRV')))!);
    expect(v.answers!.map((a) => (a as { data: { target: string; port: number } }).data)).toEqual([{ priority: 0, weight: 0, port: 80, target: 'web' }]);
    expect(v.additionals!.map((a) => (a as { data: string }).data)).toEqual(['10.0.0.2']);
    const d = dnsPacket.decode((await ask(res, query('_5432._tcp.db', 'SRV')))!);
    expect(d.answers!.map((a) => (a as { data: { target: string } }).data.target).sort()).toEqual(['db-1', 'db-2', 'db-3']);
    expect(d.additionals!.length).toBe(3);
    const none = (await ask(res, query('_81._tcp.web', 'SRV')))!;
    expect(rcodeOf(none)).toBe(0);
    expect(data(none)).toEqual([]);
  });

  it('AAAA (and MX) for a known name → empty NOERROR', async () => {
    for (const t of ['AAAA', 'MX']) {
      const m = (await ask(res, query('web', t)))!;
      expect(rcodeOf(m)).toBe(0);
      expect(data(m)).toEqual([]);
    }
  });

  it('a name on a network the container is not attached to is not answered locally', async () => {
    const before = res.counters.local;
    // No upstreams: SERVFAIL, not the address.
    const m = (await ask(res, query('secret', 'A'), ['front']))!;
    expect(rcodeOf(m)).toBe(2);
    expect(res.counters.local).toBe(before);
    expect(data((await ask(res, query('secret', 'A'), ['front', 'back']))!)).toEqual(['10.1.0.7']);
  });

  it('answers follow the records live: a removed task stops resolving at once', async () => {
    const recs = fixture();
    const r2 = new DnsResolver(recs);
    expect(data((await ask(r2, query('tasks.web', 'A')))!).length).toBe(2);
    recs.setService('front', { name: 'web', mode: 'vip', vip: '10.0.0.2', tasks: [{ name: 'web-2', ip: '10.0.0.6' }], ports: [] });
    recs.removeContainer('front', 'web-1');
    expect(data((await ask(r2, query('tasks.web', 'A')))!)).toEqual(['10.0.0.6']);
    expect(data((await ask(r2, query('5.0.0.10.in-addr.arpa', 'PTR')))!)).toEqual([]);
  });
});

describe('sizes', () => {
  const res = new DnsResolver(fixture());

  it('UDP without EDNS: at most 512 bytes, TC set, as many answers as fit', async () => {
    const m = (await ask(res, query('big', 'A')))!;
    const p = dnsPacket.decode(m);
    expect(m.length).toBeLessThanOrEqual(512);
    expect(p.flag_tc).toBe(true);
    expect(p.answers!.length).toBeGreaterThan(10);
    expect(p.answers!.length).toBeLessThan(100);
    expect(res.counters.truncated).toBe(1);
  });

  it('UDP with EDNS0 4096: the full answer, our OPT in the reply', async () => {
    const m = (await ask(res, query('big', 'A', { edns: 4096 })))!;
    const p = dnsPacket.decode(m);
    expect(p.flag_tc).toBe(false);
    expect(p.answers!.length).toBe(100);
    expect(p.additionals!.some((a) => a.type === 'OPT')).toBe(true);
  });

  it('TCP: the full answer', async () => {
    const m = (await ask(res, query('big', 'A'), ['front'], 'tcp'))!;
    expect(m.length).toBeGreaterThan(512);
    expect(dnsPacket.decode(m).answers!.length).toBe(100);
  });
});

describe('bad queries', () => {
  it('responses, short messages and garbage are dropped and counted; 2 questions → FORMERR; opcode 2 → NOTIMP', async () => {
    const res = new DnsResolver(fixture());
    const resp = query('web', 'A');
    resp[2] |= 0x80;
    expect(await ask(res, resp)).toBeUndefined();
    expect(await ask(res, Buffer.from([1, 2, 3]))).toBeUndefined();
    expect(res.counters.malformed).toBe(2);
    const two = dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', name: 'a' }, { type: 'A', name: 'b' }] });
    expect(rcodeOf((await ask(res, two))!)).toBe(1);
    const status = query('web', 'A');
    status[2] = (status[2] & 0x87) | (2 << 3);
    expect(rcodeOf((await ask(res, status))!)).toBe(4);
    expect(res.counters.formerr).toBe(2);
  });
});

describe('config', () => {
  it('resolv.conf: up to 3 nameservers, 127.0.0.11 skipped, zone ids stripped', () => {
    const ups = upstreamsFromResolvConf('# c\nsearch x\nnameserver 127.0.0.11\nnameserver 10.0.0.1\nnameserver fe80::1%eth0\nnameserver 1.1.1.1\nnameserver 8.8.8.8\n');
    expect(ups).toEqual([{ host: '10.0.0.1', port: 53 }, { host: 'fe80::1', port: 53 }, { host: '1.1.1.1', port: 53 }]);
  });
  it('--dns-upstream forms', () => {
    expect(parseUpstream('10.0.0.1')).toEqual({ host: '10.0.0.1', port: 53 });
    expect(parseUpstream('10.0.0.1:5353')).toEqual({ host: '10.0.0.1', port: 5353 });
    expect(parseUpstream('[::1]:54')).toEqual({ host: '::1', port: 54 });
    expect(() => parseUpstream('nope')).toThrow(/invalid/);
    expect(() => parseUpstream('10.0.0.1:0')).toThrow(/invalid/);
  });
});

describe('scope (property)', () => {
  it('a container name resolves iff it is on one of the attached networks, to that network\'s address', async () => {
    const nets = ['n0', 'n1', 'n2', 'n3'];
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.record({ name: fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), net: fc.constantFrom(...nets), host: fc.integer({ min: 1, max: 254 }) }), { selector: (r) => r.name, maxLength: 12 }),
        fc.subarray(nets),
        async (recs, attached) => {
          const store = new MemoryRecords();
          for (const r of recs) store.setContainer(r.net, r.name, `10.${nets.indexOf(r.net)}.0.${r.host}`);
          const res = new DnsResolver(store);
          for (const r of recs) {
            const m = (await ask(res, query(r.name, 'A'), attached))!;
            const got = (dnsPacket.decode(m).answers ?? []).map((a) => (a as { data: string }).data);
            if (attached.includes(r.net)) expect(got).toEqual([`10.${nets.indexOf(r.net)}.0.${r.host}`]);
            else expect(got).toEqual([]);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
