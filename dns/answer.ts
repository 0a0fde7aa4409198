// Local answers from the records, scoped to the networks one container is attached to.
// Which names are local (first attached network that knows the name wins):
//   NAME              service: its VIP (vip) or every task IP shuffled (dnsrr); container or alias: its IP
//   tasks.NAME        every task IP of service NAME, shuffled
//   NAME.NETWORK      NAME looked up on that network only (when attached to it)
//   _PORT._PROTO.NAME SRV for a service's target port (vip: target NAME; dnsrr: one per task)
//   d.c.b.a.in-addr.arpa  PTR: the container, task or service owning a.b.c.d
// A known name asked for AAAA (IPv4 overlay) or any other type gets an empty NOERROR. Every
// other question returns undefined: the caller forwards it upstream.
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, Packet, Question } from 'dns-packet';
import { normalizeName, type NameRecord, type RecordsSource, type ServiceRecord } from './records.js';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

interface Found {
  rec: NameRecord;
  network: string;
  /** Asked as tasks.NAME. */
  tasks: boolean;
}

function shuffled<T>(xs: readonly T[]): T[] {
  const a = xs.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

function findIn(source: RecordsSource, network: string, name: string): Found | undefined {
  if (name.startsWith('tasks.')) {
    const rec = source.lookup(network, name.slice(6));
    if (rec?.kind === 'service') return { rec, network, tasks: true };
  }
  const rec = source.lookup(network, name);
  return rec ? { rec, network, tasks: false } : undefined;
}

/** The record a (normalized) name denotes for a container attached to `networks`. */
export function find(source: RecordsSource, networks: readonly string[], name: string): Found | undefined {
  for (const net of networks) {
    const f = findIn(source, net, name);
    if (f) return f;
  }
  for (const net of networks) {
    if (name.length > net.length + 1 && name.endsWith(`.${net.toLowerCase()}`)) {
      const f = findIn(source, net, name.slice(0, -(net.length + 1)));
      if (f) return f;
    }
  }
  return undefined;
}

/** The IPv4 address of a d.c.b.a.in-addr.arpa name, or undefined. */
export function ptrAddress(name: string): string | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.in-addr\.arpa$/.exec(name);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) return undefined;
  return `${m[4]}.${m[3]}.${m[2]}.${m[1]}`;
}

function addressesOf(f: Found): string[] {
  const r = f.rec;
  if (r.kind === 'container') return [r.ip];
  if (f.tasks || r.mode === 'dnsrr') return shuffled(r.tasks.map((t) => t.ip));
  return r.vip ? [r.vip] : [];
}

function srvAnswers(svc: ServiceRecord, qname: string, port: number, ttl: number): { answers: Answer[]; extra: Answer[] } {
  if (svc.mode === 'vip') {
    const answers: Answer[] = [{ type: 'SRV', name: qname, ttl, data: { priority: 0, weight: 0, port, target: svc.name } }];
    return { answers, extra: svc.vip ? [{ type: 'A', name: svc.name, ttl, data: svc.vip }] : [] };
  }
  const tasks = shuffled(svc.tasks);
  return {
    answers: tasks.map((t) => ({ type: 'SRV', name: qname, ttl, data: { priority: 0, weight: 1, port, target: t.name } }) as Answer),
    extra: tasks.map((t) => ({ type: 'A', name: t.name, ttl, data: t.ip }) as Answer),
  };
}

export interface LocalAnswer {
  rcode: number;
  answers: Answer[];
  additionals: Answer[];
}

/** Answers one question locally, or undefined to forward it. */
export function answerQuestion(q: Question, source: RecordsSource, networks: readonly string[], ttl: number): LocalAnswer | undefined {
  if ((q.class ?? 'IN') !== 'IN') return undefined;
  const name = normalizeName(q.name);
  if (q.type === 'PTR') {
    const ip = ptrAddress(name);
    if (!ip) return undefined;
    for (const net of networks) {
      const owner = source.reverse(net, ip);
      if (owner) return { rcode: RCODE.NOERROR, answers: [{ type: 'PTR', name: q.name, ttl, data: owner }], additionals: [] };
    }
    return undefined;
  }
  if (q.type === 'SRV') {
    const m = /^_(\d{1,5})\._(tcp|udp)\.(.+)$/.exec(name);
    if (m) {
      const f = find(source, networks, m[3]);
      const port = Number(m[1]);
      if (f?.rec.kind === 'service' && f.rec.ports.some((p) => p.target === port && p.protocol === m[2])) {
        const { answers, extra } = srvAnswers(f.rec, q.name, port, ttl);
        return { rcode: RCODE.NOERROR, answers, additionals: extra };
      }
      if (f) return { rcode: RCODE.NOERROR, answers: [], additionals: [] };
      return undefined;
    }
  }
  const f = find(source, networks, name);
  if (!f) return undefined;
  if (q.type === 'A' || (q.type as string) === 'ANY') {
    const answers: Answer[] = addressesOf(f).map((ip) => ({ type: 'A', name: q.name, ttl, data: ip }));
    return { rcode: RCODE.NOERROR, answers, additionals: [] };
  }
  // AAAA (IPv4 overlay) and every other type of a known name: the name exists, no data.
  return { rcode: RCODE.NOERROR, answers: [], additionals: [] };
}

/** The client's EDNS0 OPT record, if any. */
export function ednsOf(q: DecodedPacket): { udpPayloadSize: number } | undefined {
  for (const a of q.additionals ?? []) if (a.type === 'OPT') return a as unknown as { udpPayloadSize: number };
  return undefined;
}

/** A response to q with the given rcode, answers and our OPT when the client sent one; RA unless `ra` is false. */
export function responseTo(q: DecodedPacket, rcode: number, answers: Answer[], additionals: Answer[], ednsSize: number, ra = true): Packet {
  const rd = q.flag_rd ? dnsPacket.RECURSION_DESIRED : 0;
  const extra = additionals.slice();
  if (ednsOf(q)) extra.push({ type: 'OPT', name: '.', udpPayloadSize: ednsSize, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as Answer);
  return {
    type: 'response',
    id: q.id,
    flags: dnsPacket.AUTHORITATIVE_ANSWER | (ra ? dnsPacket.RECURSION_AVAILABLE : 0) | rd | rcode,
    questions: q.questions,
    answers,
    additionals: extra,
  };
}
