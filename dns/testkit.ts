// Shared by the dns/ unit tests and benches: a records fixture, query encoding, one-shot ask.
import dnsPacket, { type Answer, type Packet } from 'dns-packet';
import type { DnsResolver, Transport } from './server.js';
import { MemoryRecords } from './records.js';

export function fixture(): MemoryRecords {
  const r = new MemoryRecords();
  r.setService('front', { name: 'web', mode: 'vip', vip: '10.0.0.2', tasks: [{ name: 'web-1', ip: '10.0.0.5' }, { name: 'web-2', ip: '10.0.0.6' }], ports: [{ target: 80, protocol: 'tcp' }] });
  r.setContainer('front', 'web-1', '10.0.0.5');
  r.setContainer('front', 'web-2', '10.0.0.6');
  r.setService('front', { name: 'db', mode: 'dnsrr', tasks: [1, 2, 3].map((i) => ({ name: `db-${i}`, ip: `10.0.0.${20 + i}` })), ports: [{ target: 5432, protocol: 'tcp' }] });
  r.setContainer('front', 'client', '10.0.0.9');
  r.setContainer('front', 'cache', '10.0.0.9'); // alias of client
  r.setContainer('back', 'secret', '10.1.0.7');
  const big = Array.from({ length: 100 }, (_, i) => ({ name: `big-${i}`, ip: `10.0.1.${i + 1}` }));
  r.setService('front', { name: 'big', mode: 'dnsrr', tasks: big, ports: [] });
  return r;
}

export function query(name: string, type: string, opts: { id?: number; edns?: number; rd?: boolean } = {}): Buffer {
  const p: Packet = {
    type: 'query',
    id: opts.id ?? 4242,
    flags: opts.rd === false ? 0 : dnsPacket.RECURSION_DESIRED,
    questions: [{ type: type as 'A', name, class: 'IN' }],
  };
  if (opts.edns) p.additionals = [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as Answer];
  return dnsPacket.encode(p);
}

export function ask(res: DnsResolver, msg: Buffer, networks = ['front'], transport: Transport = 'udp'): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let done = false;
    res.handle(msg, networks, transport, (m) => {
      done = true;
      resolve(Buffer.from(m));
    });
    // Local answers and drops are synchronous.
    if (!done) setTimeout(() => resolve(undefined), 50);
  });
}

