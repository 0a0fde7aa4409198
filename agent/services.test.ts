// The services control plane on in-memory tables: what create/update/rm write and refuse, the
// VIP from the same allocator as endpoints, and the spec the datapath is sent per network.
import { describe, expect, test } from 'vitest';
import { NOT_VIP, REFUSED, ServiceTable } from '../balancer/service.js';
import type { JsonValue, TableEvent } from '../gossip/index.js';
import { parseIpv4 } from '../router/wire/addr.js';
import type { DatapathEngine, DpCommand } from '../router/engine.js';
import { LocalAllocator } from './allocator.js';
import type { Logger } from './log.js';
import { UserError } from './requests.js';
import { computeSpecs, effectiveWeight, meshTargetsOf, type Task } from './service-view.js';
import { DNSRR_PUBLISH_ERROR, Services, type ServicesHost, type ServiceTables } from './services.js';
import type { NetworkRecord } from './state.js';
import { ENDPOINTS, SERVICES, TASK_WEIGHTS, asServiceEntry, serviceValue, type EndpointEntry, type ServiceEntry } from './tables.js';

/** Tables as one host sees them, with subscribe events like gossip/tables.ts (local writes included). */
class MemTables implements ServiceTables {
  private readonly data = new Map<string, Map<string, JsonValue>>();
  private readonly subs = new Set<{ table?: string; fn: (e: TableEvent) => void }>();
  get(table: string, key: string): JsonValue | undefined {
    return this.data.get(table)?.get(key);
  }
  set(table: string, key: string, value: JsonValue): void {
    const t = this.data.get(table) ?? new Map<string, JsonValue>();
    this.data.set(table, t);
    const kind = t.has(key) ? 'update' : 'create';
    t.set(key, JSON.parse(JSON.stringify(value)) as JsonValue);
    this.emit({ table, key, kind, value, owner: 'x', cause: 'write' });
  }
  delete(table: string, key: string): boolean {
    const had = this.data.get(table)?.delete(key) ?? false;
    if (had) this.emit({ table, key, kind: 'delete', value: undefined, owner: 'x', cause: 'write' });
    return had;
  }
  entries(table: string): Array<[string, JsonValue, string]> {
    return [...(this.data.get(table) ?? new Map<string, JsonValue>())].map(([k, v]) => [k, v, 'x']);
  }
  subscribe(fn: (e: TableEvent) => void, table?: string): () => void {
    const s = { table, fn };
    this.subs.add(s);
    return () => this.subs.delete(s);
  }
  private emit(e: TableEvent): void {
    for (const s of this.subs) if (s.table === undefined || s.table === e.table) s.fn(e);
  }
}

const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

function network(id: string, vni: number, subnet: string): NetworkRecord {
  return {
    id, name: `net-${id}`, created: '', driver: 'overlay', subnet, gateway: subnet.replace(/0\/24$/, '1'), vni, mtu: 1450, encrypted: false,
    attachable: true, options: {}, labels: {}, endpoints: [], peers: [],
  };
}

function setup() {
  const tables = new MemTables();
  const sent: Extract<DpCommand, { op: 'setServices' }>[] = [];
  const engine = { call: async (cmd: DpCommand) => void (cmd.op === 'setServices' && sent.push(cmd)) } as unknown as DatapathEngine;
  const nets = [network('n1', 4096, '10.0.9.0/24'), network('n2', 4097, '10.0.8.0/24')];
  const localWeights: { id: string; weight: number }[] = [];
  const host: ServicesHost = {
    state: { networks: nets },
    findNetwork: (ref) => {
      const n = nets.find((x) => x.id === ref || x.name === ref);
      if (!n) throw new UserError(`network ${ref} not found`, 404);
      return n;
    },
    setLocalWeight: async (id, weight) => {
      if (!id.startsWith('local')) return false;
      localWeights.push({ id, weight });
      return true;
    },
  };
  const alloc = new LocalAllocator();
  const services = new Services(host, engine, quiet);
  services.attach(tables, alloc, (id) => `host-${id}`);
  const task = (id: string, service: string, ip: string, extra: Partial<EndpointEntry> = {}) =>
    tables.set(ENDPOINTS, id, { network: 'n1', name: id, mac: `02:42:0a:00:09:${ip.split('.')[3].padStart(2, '0')}`, ip, host: 'h2', vtep: '192.0.2.2', aliases: [], service, weight: 1, weightAt: 1, ...extra });
  const settle = () => new Promise((r) => setImmediate(() => setImmediate(r)));
  return { tables, sent, nets, services, alloc, task, settle, localWeights };
}

async function refusal(p: Promise<unknown>): Promise<UserError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(UserError);
  expect((e as Error).message).not.toContain('\n');
  return e as UserError;
}

describe('services', () => {
  test('create: a VIP from the network\'s allocator, never an endpoint\'s address; rm releases it', async () => {
    const { services, alloc, nets, tables } = setup();
    const epIp = await alloc.ip(nets[0], undefined, 'ep1'); // an endpoint took the first address
    const { id, entry } = await services.create({ name: 'web', network: 'net-n1', ports: [{ published: 8080, target: 80 }] });
    expect(entry.vip).not.toBeNull();
    expect(entry.vip).not.toBe('10.0.9.' + (epIp & 255));
    expect(asServiceEntry(tables.get(SERVICES, id))).toEqual(entry);
    const second = await services.create({ name: 'api', network: 'n1' });
    expect(second.entry.vip).not.toBe(entry.vip);
    await services.remove('web');
    expect(tables.get(SERVICES, id)).toBeUndefined();
    // The released VIP is handed out again: it really went back to the pool.
    const again = await alloc.ip(nets[0], undefined, 'ep2');
    expect(`10.0.9.${again & 255}`).toBe(entry.vip);
  });

  test('dnsrr: no VIP, and published ports refused with Docker\'s message', async () => {
    const { services } = setup();
    const e = await refusal(services.create({ name: 'db', network: 'n1', endpointMode: 'dnsrr', ports: [{ published: 5432, target: 5432 }] }));
    expect(e.message).toBe(DNSRR_PUBLISH_ERROR);
    const { entry } = await services.create({ name: 'db', network: 'n1', endpointMode: 'dnsrr' });
    expect(entry.vip).toBeNull();
    expect((await refusal(services.update('db', { publishAdd: [{ published: 1, target: 1 }] }))).message).toBe(DNSRR_PUBLISH_ERROR);
  });

  test('a published port is cluster-wide; names are unique; unknown refs are 404', async () => {
    const { services } = setup();
    await services.create({ name: 'web', network: 'n1', ports: [{ published: 8080, target: 80 }] });
    const clash = await refusal(services.create({ name: 'other', network: 'n2', ports: [{ published: 8080, target: 81 }] }));
    expect(clash.status).toBe(409);
    expect(clash.message).toMatch(/port '8080' is already in use by service 'web'/);
    await services.create({ name: 'dns', network: 'n2', ports: [{ published: 8080, target: 53, protocol: 'udp' }] }); // udp is another port
    expect((await refusal(services.create({ name: 'web', network: 'n2' }))).status).toBe(409);
    expect((await refusal(services.create({ name: 'x', network: 'nope' }))).status).toBe(404);
    expect((await refusal(services.create({ name: 'x', network: 'n1', ports: [{ published: 9, target: 1 }, { published: 9, target: 2 }] }))).message).toMatch(/given twice/);
    expect((await refusal(services.update('ghost', {}))).status).toBe(404);
    expect((await refusal(services.update('web', { publishRm: [{ published: 9999 }] }))).status).toBe(404);
    expect((await refusal(services.update('dns', { publishAdd: [{ published: 8080, target: 1 }] }))).status).toBe(409);
    expect(services.list().map((r) => r.Name)).toEqual(['dns', 'web']);
  });

  test('published ports are claimed through the allocator: a claim lost to another host refuses the create and frees the VIP; rm gives ports back', async () => {
    const { services, alloc, nets } = setup();
    expect(await alloc.claimPort('tcp', 8080, 'elsewhere')).toBe(true); // another host won it, its entry not here yet
    const vipBefore = await alloc.ip(nets[0], undefined, 'probe');
    alloc.releaseIp(nets[0], vipBefore);
    const e = await refusal(services.create({ name: 'web', network: 'n1', ports: [{ published: 9000, target: 1 }, { published: 8080, target: 80 }] }));
    expect(e.status).toBe(409);
    expect(e.message).toMatch(/port '8080' is already in use by another service/);
    expect(await alloc.claimPort('tcp', 9000, 'x')).toBe(true); // 9000 was given back (all or none)
    alloc.releasePort('tcp', 9000);
    expect(await alloc.ip(nets[0], undefined, 'probe2')).toBe(vipBefore); // and so was the VIP
    alloc.releasePort('tcp', 8080);
    await services.create({ name: 'web', network: 'n1', ports: [{ published: 8080, target: 80 }] });
    expect(await alloc.claimPort('tcp', 8080, 'y')).toBe(false);
    await services.update('web', { publishRm: [{ published: 8080 }], publishAdd: [{ published: 8081, target: 80 }] });
    expect(await alloc.claimPort('tcp', 8080, 'y')).toBe(true);
    expect(await alloc.claimPort('tcp', 8081, 'y')).toBe(false);
    await services.remove('web');
    expect(await alloc.claimPort('tcp', 8081, 'y')).toBe(true);
  });

  test('update: publish-add and publish-rm; a failing update changes nothing', async () => {
    const { services } = setup();
    const { id } = await services.create({ name: 'web', network: 'n1', ports: [{ published: 8080, target: 80 }] });
    await services.update('web', { publishAdd: [{ published: 8443, target: 443, proxyProtocol: 'v2' }], publishRm: [{ published: 8080 }] });
    expect(services.find(id)[1].ports).toEqual([{ published: 8443, target: 443, protocol: 'tcp', proxyProtocol: 'v2' }]);
    await refusal(services.update('web', { publishRm: [{ published: 8443 }], taskWeights: [{ task: 'ghost', weight: 0 }] }));
    expect(services.find(id)[1].ports).toHaveLength(1);
  });

  test('the datapath gets each network\'s VIP services with every task and its weight', async () => {
    const { services, sent, task, settle, tables, localWeights } = setup();
    const { id, entry } = await services.create({ name: 'web', network: 'n1', scheduler: 'wrr', ports: [{ published: 8080, target: 80 }] });
    await services.create({ name: 'dns', network: 'n1', endpointMode: 'dnsrr' });
    task('remote-a', id, '10.0.9.20');
    task('local-b', id, '10.0.9.3', { host: 'h1', weight: 3 });
    await settle();
    const last = sent.filter((c) => c.vni === 4096).pop()!;
    expect(last.services).toEqual([{
      id, vip: entry.vip, scheduler: 'wrr', ports: [{ published: 8080, target: 80, protocol: 'tcp' }],
      tasks: [{ ip: '10.0.9.3', mac: '02:42:0a:00:09:03', weight: 3 }, { ip: '10.0.9.20', mac: '02:42:0a:00:09:20', weight: 1 }],
    }]);
    expect(sent.some((c) => c.vni === 4097)).toBe(false); // nothing on n2, nothing sent
    // A weight for a task on another host travels as a task-weights entry and wins over the old one.
    await services.update('web', { taskWeights: [{ task: 'remote-a', weight: 0 }, { task: 'local-b', weight: 5 }] });
    expect(tables.get(TASK_WEIGHTS, 'remote-a')).toMatchObject({ weight: 0 });
    expect(localWeights).toEqual([{ id: 'local-b', weight: 5 }]);
    await settle();
    const drained = sent.filter((c) => c.vni === 4096).pop()!;
    expect(drained.services[0].tasks.find((t) => t.ip === '10.0.9.20')!.weight).toBe(0);
    expect(services.ps('web').map((r) => [r.Name, r.Node, r.CurrentState, r.Weight])).toEqual([['local-b', 'host-h1', 'Running', 3], ['remote-a', 'host-h2', 'Draining', 0]]);
    // The task's host going away (its entry vanishes) takes it out of the spec.
    const before = sent.length;
    tables.delete(ENDPOINTS, 'remote-a');
    await settle();
    expect(sent.length).toBe(before + 1);
    expect(sent[sent.length - 1].services[0].tasks.map((t) => t.ip)).toEqual(['10.0.9.3']);
    await services.remove('web');
    await settle();
    expect(sent[sent.length - 1]).toEqual({ op: 'setServices', vni: 4096, services: [] });
  });

  test('mesh targets per published port, and a change event', async () => {
    const { services, task, settle } = setup();
    const seen: number[] = [];
    services.onMeshChange((all) => seen.push(all.length));
    const { id } = await services.create({ name: 'web', network: 'n1', ports: [{ published: 8080, target: 80 }, { published: 8081, target: 81, proxyProtocol: 'v2' }] });
    task('t1', id, '10.0.9.7');
    await settle();
    expect(seen.at(-1)).toBe(2);
    const m = services.meshTargets(8081, 'tcp')!;
    expect(m).toMatchObject({ service: id, name: 'web', network: 'n1', target: 81, proxyProtocol: 'v2' });
    expect(m.tasks).toEqual([{ endpoint: 't1', ip: '10.0.9.7', mac: '02:42:0a:00:09:07', weight: 1, host: 'h2' }]);
    expect(services.meshTargets(8081, 'udp')).toBeUndefined();
    expect(services.inspect('web')).toMatchObject({
      ID: id, Spec: { Name: 'web', EndpointSpec: { Mode: 'vip' } },
      Endpoint: { VirtualIPs: [{ NetworkID: 'n1', Addr: expect.stringMatching(/^10\.0\.9\.\d+\/24$/) }], Ports: [{ PublishedPort: 8080, TargetPort: 80, Protocol: 'tcp', PublishMode: 'ingress' }, expect.anything()] },
    });
  });
});

describe('service views (pure)', () => {
  const svc = (network: string, mode: 'vip' | 'dnsrr' = 'vip'): ServiceEntry =>
    ({ name: 's', network, mode, vip: mode === 'vip' ? '10.0.9.5' : null, scheduler: 'rr', ports: [], created: '' });
  const t = (id: string, service: string, network: string, weight: number): Task =>
    ({ id, weight, ep: { network, name: id, mac: '02:42:00:00:00:01', ip: `10.0.9.${id.length}`, host: 'h', vtep: 'v', aliases: [], service } });

  test('computeSpecs keeps the network\'s vip services and their own tasks only', () => {
    const specs = computeSpecs('n1', [['a', svc('n1')], ['b', svc('n2')], ['c', svc('n1', 'dnsrr')]], [t('x', 'a', 'n1', 2), t('yy', 'b', 'n1', 1), t('zzz', 'a', 'n2', 1)]);
    expect(specs.map((s) => s.id)).toEqual(['a']);
    expect(specs[0].tasks).toEqual([{ ip: '10.0.9.1', mac: '02:42:00:00:00:01', weight: 2 }]);
    expect(specs[0].ports).toEqual([]); // a VIP without ports forwards every port (balancer/service.ts)
  });

  test('the spec goes straight into the VIP stage\'s ServiceTable (balancer/service.ts)', async () => {
    const { services, sent, task, settle } = setup();
    const { id, entry } = await services.create({ name: 'web', network: 'n1', scheduler: 'wrr', ports: [{ published: 8080, target: 80 }] });
    task('a', id, '10.0.9.20', { weight: 2 });
    task('b', id, '10.0.9.21', { weight: 0 });
    await settle();
    const st = new ServiceTable();
    for (const spec of sent.at(-1)!.services) st.upsert(spec);
    const vip = parseIpv4(entry.vip!);
    expect(st.isVip(vip)).toBe(true);
    const slot = st.classify(vip, 6, 8080);
    expect(slot).toBeGreaterThanOrEqual(0);
    expect(st.targetPort).toBe(80);
    expect(st.classify(vip, 6, 81)).toBe(REFUSED);
    expect(st.classify(parseIpv4('10.0.9.20'), 6, 80)).toBe(NOT_VIP);
    // Only the weighted task is picked; the drained one gets no new flow.
    const picked = new Set<number>();
    for (let i = 0; i < 20; i++) picked.add(st.backends(slot).ip[st.pick(slot, 0x0a000901, 40000 + i)] >>> 0);
    expect([...picked]).toEqual([parseIpv4('10.0.9.20')]);
  });

  test('the newer weight wins, whichever table it is in', () => {
    const ep: EndpointEntry = { network: 'n', name: 'e', mac: 'm', ip: 'i', host: 'h', vtep: 'v', aliases: [], service: 's', weight: 4, weightAt: 100 };
    expect(effectiveWeight(ep, undefined)).toBe(4);
    expect(effectiveWeight(ep, { weight: 0, at: 101 })).toBe(0);
    expect(effectiveWeight(ep, { weight: 0, at: 99 })).toBe(4);
    expect(effectiveWeight({ ...ep, weight: undefined, weightAt: undefined }, undefined)).toBe(1);
  });

  test('mesh targets: one per published port, sorted', () => {
    const s: ServiceEntry = { ...svc('n1'), ports: [{ published: 9000, target: 1, protocol: 'udp', proxyProtocol: null }, { published: 80, target: 8080, protocol: 'tcp', proxyProtocol: null }] };
    expect(meshTargetsOf([['a', s]], []).map((m) => `${m.published}/${m.protocol}`)).toEqual(['80/tcp', '9000/udp']);
  });

  test('service entries round-trip the table codec and wrong shapes are refused', () => {
    const s: ServiceEntry = { ...svc('n1'), ports: [{ published: 1, target: 2, protocol: 'tcp', proxyProtocol: 'v2' }] };
    expect(asServiceEntry(serviceValue(s))).toEqual(s);
    for (const bad of [{ ...s, vip: null }, { ...svc('n1', 'dnsrr'), vip: '10.0.0.1' }, { ...s, scheduler: 'x' }, { ...s, ports: [{ published: 0, target: 1, protocol: 'tcp', proxyProtocol: null }] }]) {
      expect(asServiceEntry(bad as unknown as JsonValue)).toBeUndefined();
    }
  });
});
