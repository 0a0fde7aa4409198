// The agent side of DNS without namespaces: records from the agent state and the endpoints
// table (live, coalesced rebuilds), services plugged in by one call, resolv.conf files, and
// `dns query` through the resolver's handle().
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TableEvent } from '../gossip/index.js';
import { digText } from '../cli/commands/dns.js';
import { TableRecords, type ServiceName, type ServiceNames, type TableView } from './dns-records.js';
import { AgentDns, hostSearch } from './dns.js';
import type { Logger } from './log.js';
import { MARK, ResolvConf, namedNetns } from './resolvconf.js';
import type { NetworkRecord } from './state.js';
import { ENDPOINTS } from './tables.js';

const log: Logger = { info: () => {}, warn: () => {}, error: () => {} } as unknown as Logger;

function net(id: string, name: string, eps: [string, string, string[]][] = []): NetworkRecord {
  return {
    id, name, created: '', driver: 'overlay', subnet: '10.0.0.0/24', gateway: '10.0.0.1', vni: 4096, mtu: 1450, encrypted: false, attachable: true,
    options: {}, labels: {}, peers: [],
    endpoints: eps.map(([n, ip, aliases]) => ({ id: n, container: n, name: n, ifname: 'eth0', veth: 'v', mac: '02:42:0a:00:00:02', ip, aliases })),
  };
}

/** The two calls TableRecords makes of the gossip tables. */
class FakeTables {
  rows = new Map<string, TableEvent['value']>();
  subs: ((e: TableEvent) => void)[] = [];
  view(): TableView {
    return {
      entries: (t: string) => (t === ENDPOINTS ? [...this.rows].map(([k, v]) => [k, v, 'owner']) : []),
      subscribe: (cb: (e: TableEvent) => void) => {
        this.subs.push(cb);
        return () => undefined;
      },
    } as unknown as TableView;
  }
  set(key: string, v: Record<string, unknown>): void {
    this.rows.set(key, v as TableEvent['value']);
    for (const s of this.subs) s({ kind: 'create', key, value: v } as unknown as TableEvent);
  }
  delete(key: string): void {
    this.rows.delete(key);
    for (const s of this.subs) s({ kind: 'delete', key } as unknown as TableEvent);
  }
}

const remote = (network: string, name: string, ip: string, aliases: string[] = []) => ({ network, name, ip, aliases, mac: '02:42:00:00:00:01', host: 'h2', vtep: '192.0.2.2' });
const turn = () => new Promise((r) => setImmediate(r));

let tmp = '';
afterEach(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  tmp = '';
});

describe('records over the tables', () => {
  it('local endpoints and aliases by network name; the name owns the PTR; remote rows follow the table live', async () => {
    const nets = [net('n1', 'front', [['c1', '10.0.0.2', ['web']]]), net('n2', 'back')];
    const recs = new TableRecords(() => nets);
    expect(recs.lookup('front', 'web')).toMatchObject({ kind: 'container', ip: '10.0.0.2' });
    expect(recs.reverse('front', '10.0.0.2')).toBe('c1');
    const t = new FakeTables();
    recs.follow(t.view());
    t.set('e2', remote('n1', 'c2', '10.0.0.3', ['api']));
    t.set('e1', remote('n1', 'c1', '10.0.0.2', ['web'])); // the local one, replicated back
    t.set('e9', remote('nX', 'ghost', '10.9.0.1')); // a network this host does not have
    expect(recs.lookup('front', 'api')).toBeUndefined(); // not before the coalesced rebuild
    const n = recs.rebuilds;
    await turn();
    expect(recs.rebuilds).toBe(n + 1); // three events, one rebuild
    expect(recs.lookup('front', 'api')).toMatchObject({ ip: '10.0.0.3' });
    expect(recs.reverse('front', '10.0.0.2')).toBe('c1');
    expect(recs.lookup('back', 'api')).toBeUndefined();
    expect(recs.lookup('front', 'ghost')).toBeUndefined();
    t.delete('e2'); // host down: the table suspends its rows
    await turn();
    expect(recs.lookup('front', 'api')).toBeUndefined();
    expect(recs.reverse('front', '10.0.0.3')).toBeUndefined();
  });

  it('services plug in by one call and follow their onChange', async () => {
    const nets = [net('n1', 'front')];
    const recs = new TableRecords(() => nets);
    let list: ServiceName[] = [{ network: 'n1', name: 'svc', mode: 'vip', vip: '10.0.0.100', tasks: [{ name: 'svc.1', ip: '10.0.0.5' }], ports: [] }];
    let notify = () => {};
    const provider: ServiceNames = { services: () => list, onChange: (cb) => ((notify = cb), () => undefined) };
    recs.useServices(provider);
    await turn();
    expect(recs.lookup('front', 'svc')).toMatchObject({ kind: 'service', vip: '10.0.0.100' });
    expect(recs.reverse('front', '10.0.0.100')).toBe('svc');
    list = [];
    notify();
    await turn();
    expect(recs.lookup('front', 'svc')).toBeUndefined();
  });
});

describe('resolv.conf', () => {
  it('writes ours for a named namespace (marked, ndots:0, search), removes only ours, leaves a foreign file alone', () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'tm-rc-'));
    const rc = new ResolvConf(tmp);
    expect(namedNetns('1234')).toBeUndefined();
    expect(namedNetns('/proc/1/ns/net')).toBeUndefined();
    expect(rc.write('1234')).toBe('none');
    expect(rc.write('c1', ['corp.example'])).toBe('written');
    const text = readFileSync(rc.file('c1'), 'utf8');
    expect(text.split('\n')).toEqual([MARK, 'nameserver 127.0.0.11', 'search corp.example', 'options ndots:0', '']);
    expect(rc.remove('c1')).toBe('written');
    expect(existsSync(path.join(tmp, 'c1'))).toBe(false);
    mkdirSync(path.join(tmp, 'c2'));
    writeFileSync(rc.file('c2'), 'nameserver 192.0.2.53\n');
    expect(rc.write('c2')).toBe('foreign');
    expect(rc.remove('c2')).toBe('foreign');
    expect(readFileSync(rc.file('c2'), 'utf8')).toBe('nameserver 192.0.2.53\n');
  });

  it('hostSearch reads the last search/domain line', () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'tm-rc-'));
    const f = path.join(tmp, 'resolv.conf');
    writeFileSync(f, 'domain old.example\nnameserver 192.0.2.1\nsearch a.example b.example\n');
    expect(hostSearch(f)).toEqual(['a.example', 'b.example']);
    expect(hostSearch(path.join(tmp, 'none'))).toEqual([]);
  });
});

describe('dns query', () => {
  it('answers through handle() with every network of the host when no container is named; printed like dig', async () => {
    const nets = [net('n1', 'front', [['c1', '10.0.0.2', ['web']]])];
    const dns = new AgentDns(() => nets, { upstreams: [], search: [] }, log);
    const a = await dns.query({ name: 'web', type: 'A', tcp: false });
    expect(a).toMatchObject({ Status: 'NOERROR', Networks: ['front'], Answers: [{ Name: 'web', TTL: 5, Type: 'A', Data: '10.0.0.2' }] });
    expect(a.Flags).toEqual(['qr', 'aa', 'rd', 'ra']);
    const text = digText(a);
    expect(text).toMatch(/status: NOERROR/);
    expect(text).toMatch(/^web\.\t5\tIN\tA\t10\.0\.0\.2$/m);
    expect((await dns.query({ name: '2.0.0.10.in-addr.arpa', type: 'PTR', tcp: true })).Answers[0].Data).toBe('c1');
    // No upstream: an unknown name is SERVFAIL (counted).
    expect((await dns.query({ name: 'www.example.org', type: 'A', tcp: false })).Status).toBe('SERVFAIL');
    expect(dns.counters.servfail).toBe(1);
    await expect(dns.query({ container: 'nosuch', name: 'web', type: 'A', tcp: false })).rejects.toThrow('container nosuch has no embedded DNS on this host');
    await expect(dns.query({ name: 'web', type: 'BOGUS', tcp: false })).rejects.toThrow(/cannot ask for web BOGUS/);
    await dns.close();
  });
});

describe('services for DNS', () => {
  it('serviceNames: vip and dnsrr services with their live tasks; drained (weight 0) tasks left out', async () => {
    const { serviceNames } = await import('./dns-services.js');
    const ep = (name: string, ip: string, service: string) => ({ network: 'n1', name, ip, mac: '', host: 'h', vtep: '', aliases: [], service });
    const fake = {
      all: () => [
        ['s1', { name: 'web', network: 'n1', mode: 'vip', vip: '10.0.0.100', scheduler: 'rr', ports: [{ published: 8080, target: 80, protocol: 'tcp', proxyProtocol: null }], created: '' }],
        ['s2', { name: 'db', network: 'n1', mode: 'dnsrr', vip: null, scheduler: 'rr', ports: [], created: '' }],
      ],
      tasks: () => [
        { id: 'e1', ep: ep('web.1', '10.0.0.5', 's1'), weight: 1 },
        { id: 'e2', ep: ep('db.1', '10.0.0.6', 's2'), weight: 1 },
        { id: 'e3', ep: ep('db.2', '10.0.0.7', 's2'), weight: 0 },
      ],
    } as unknown as Parameters<typeof serviceNames>[0];
    const names = serviceNames(fake, { subscribe: () => () => undefined } as unknown as TableView);
    expect([...names.services()]).toEqual([
      { network: 'n1', name: 'web', mode: 'vip', vip: '10.0.0.100', tasks: [{ name: 'web.1', ip: '10.0.0.5' }], ports: [{ target: 80, protocol: 'tcp' }] },
      { network: 'n1', name: 'db', mode: 'dnsrr', tasks: [{ name: 'db.1', ip: '10.0.0.6' }], ports: [] },
    ]);
  });
});
