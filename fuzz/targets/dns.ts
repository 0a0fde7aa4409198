// DNS messages into the embedded resolver (DnsResolver.handle, dns/server.ts) over both
// transports, in the scope of one network. No upstreams are configured, so a name the records do
// not hold is answered SERVFAIL (on the next turn of the loop) instead of leaving the machine.
// Every message must be answered exactly once or dropped and counted malformed.
import dnsPacket from 'dns-packet';
import { DnsResolver } from '../../dns/server.js';
import { fixture, query } from '../../dns/testkit.js';
import { Failures, Mutator, hex, outOfTime, type FuzzResult, type FuzzTarget } from '../mutate.js';

function samples(): Buffer[] {
  const names = ['web', 'tasks.web', 'db', 'tasks.db', 'big', 'client', 'cache', 'secret', 'web-1', 'example.com', 'a.b.c.d.e.f.example.org'];
  const out: Buffer[] = [];
  for (const n of names) for (const t of ['A', 'AAAA', 'SRV', 'TXT']) out.push(query(n, t, { id: out.length }));
  out.push(query('5.0.0.10.in-addr.arpa', 'PTR'), query('big', 'A', { edns: 4096 }), query('web', 'A', { edns: 512, rd: false }));
  out.push(query('_http._tcp.web', 'SRV'), query('', 'NS'));
  // A query with an answer section and one with two questions (gated / FORMERR paths).
  out.push(dnsPacket.encode({ type: 'query', id: 7, questions: [{ type: 'A', name: 'web' }, { type: 'A', name: 'db' }] }));
  return out;
}

export const dnsTarget: FuzzTarget = {
  name: 'DNS queries (DnsResolver.handle)',
  count: 10_000_000,
  async run(count, seed, until) {
    const res = new DnsResolver(fixture(), { upstreams: [] });
    const m = new Mutator(seed, samples(), 1024);
    const failures = new Failures();
    let replies = 0;
    let twice = 0;
    const t0 = performance.now();
    let i = 0;
    for (; i < count && !outOfTime(i, until); i++) {
      const len = m.next();
      const msg = Buffer.from(m.out.subarray(0, len)); // the resolver may keep it (forwarding)
      let answered = false;
      try {
        res.handle(msg, ['front'], (i & 1) === 0 ? 'udp' : 'tcp', () => {
          if (answered) twice++;
          answered = true;
          replies++;
        });
      } catch (e) {
        failures.add(`exception on input ${i}: ${(e as Error).message} (input ${hex(msg, len)})`);
      }
      // Let the SERVFAIL answers (setImmediate) run so nothing piles up.
      if ((i & 4095) === 4095) await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 10));
    const seconds = (performance.now() - t0) / 1000;
    const c = res.counters;
    count = i;
    if (twice > 0) failures.add(`${twice} messages answered more than once`);
    if (c.queries !== count) failures.add(`queries counted ${c.queries} != ${count} inputs`);
    if (replies + c.malformed !== count) failures.add(`${replies} answered + ${c.malformed} dropped (malformed) != ${count} inputs`);
    return {
      name: this.name, inputs: count, rejected: c.malformed + c.formerr, accepted: replies - c.formerr, seconds, failures: failures.done(),
      note: `dropped ${c.malformed}, FORMERR/NOTIMP ${c.formerr}, local ${c.local}, SERVFAIL ${c.servfail}, truncated ${c.truncated}`,
    } satisfies FuzzResult;
  },
};
