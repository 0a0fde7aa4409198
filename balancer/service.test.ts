import { describe, expect, it } from 'vitest';
import { ConnTable } from './conntrack.js';
import { NOT_VIP, REFUSED, ServiceTable, type ServiceSpec } from './service.js';

const ip = (s: string): number => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const TCP = 6;
const UDP = 17;

function web(overrides: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    id: 'web', vip: '10.0.0.254', scheduler: 'rr',
    ports: [{ published: 8080, target: 80, protocol: 'tcp' }, { published: 5353, target: 53, protocol: 'udp' }],
    tasks: [{ ip: '10.0.0.11', mac: '02:42:0a:00:00:0b' }, { ip: '10.0.0.12', mac: '02:42:0a:00:00:0c', weight: 2 }],
    ...overrides,
  };
}

describe('service table', () => {
  it('classifies VIP ports: targets unchanged, published mapped, others refused, non-VIPs passed by', () => {
    const t = new ServiceTable();
    const s = t.upsert(web());
    const vip = ip('10.0.0.254');
    expect(t.isVip(vip)).toBe(true);
    expect(t.isVip(ip('10.0.0.11'))).toBe(false);
    expect(t.classify(vip, TCP, 80)).toBe(s);
    expect(t.targetPort).toBe(80);
    expect(t.classify(vip, TCP, 8080)).toBe(s);
    expect(t.targetPort).toBe(80);
    expect(t.classify(vip, UDP, 53)).toBe(s);
    expect(t.classify(vip, UDP, 80)).toBe(REFUSED);
    expect(t.classify(vip, TCP, 53)).toBe(REFUSED);
    expect(t.classify(vip, TCP, 81)).toBe(REFUSED);
    expect(t.classify(vip, 1, 0)).toBe(REFUSED);
    expect(t.classify(ip('10.0.0.253'), TCP, 80)).toBe(NOT_VIP);
  });

  it('a service without ports forwards every port unchanged', () => {
    const t = new ServiceTable();
    const s = t.upsert(web({ ports: [] }));
    expect(t.classify(ip('10.0.0.254'), UDP, 4242)).toBe(s);
    expect(t.targetPort).toBe(4242);
  });

  it('picks tasks with the scheduler; backend fields are numbers; weight 0 drains', () => {
    const t = new ServiceTable();
    const s = t.upsert(web({ scheduler: 'wrr' }));
    const b = t.backends(s);
    const counts = new Map<number, number>();
    for (let i = 0; i < 300; i++) {
      const k = t.pick(s, 1, 1);
      counts.set(b.ip[k] >>> 0, (counts.get(b.ip[k] >>> 0) ?? 0) + 1);
    }
    expect(counts.get(ip('10.0.0.11'))).toBe(100);
    expect(counts.get(ip('10.0.0.12'))).toBe(200);
    const k = t.pick(s, 1, 1);
    expect(b.macHi[k]).toBe(0x0242);
    t.setWeight('web', '10.0.0.12', 0);
    for (let i = 0; i < 20; i++) expect(b.ip[t.pick(s, 1, 1)] >>> 0).toBe(ip('10.0.0.11'));
    t.setTasks('web', []);
    expect(t.pick(s, 1, 1)).toBe(-1);
  });

  it('keeps backend slots stable across task updates so connection counts stay right', () => {
    const t = new ServiceTable();
    const s = t.upsert(web({ scheduler: 'lc' }));
    const ct = new ConnTable({ maxEntries: 64 }, t);
    const b = t.backends(s);
    const k = t.pick(s, 5, 5);
    const e = ct.insert(TCP, 5, 5, ip('10.0.0.254'), 80, b.ip[k], 80, b.macHi[k], b.macLo[k], s, k, 0);
    ct.reply(e, 0x12, 0, 0);
    expect(b.active[k]).toBe(1);
    expect(t.pick(s, 6, 6)).not.toBe(k); // lc: the other one is idle
    // Add a third task and drop the other: slot k keeps its identity and count.
    t.setTasks('web', [{ ip: b.ip[k] >>> 0 === ip('10.0.0.11') ? '10.0.0.11' : '10.0.0.12', mac: '02:42:0a:00:00:0b' },
      { ip: '10.0.0.13', mac: '02:42:0a:00:00:0d' }]);
    expect(b.active[k]).toBe(1);
    ct.forward(e, 0x04, 0, 1);
    expect(b.active[k]).toBe(0);
  });

  it('removing a service unmaps the VIP at once and frees the slot when its flows end', () => {
    const t = new ServiceTable();
    const s = t.upsert(web());
    const ct = new ConnTable({ maxEntries: 64 }, t);
    const e = ct.insert(TCP, 5, 5, ip('10.0.0.254'), 80, ip('10.0.0.11'), 80, 0, 0, s, t.pick(s, 5, 5), 0);
    expect(t.remove('web')).toBe(s);
    expect(t.classify(ip('10.0.0.254'), TCP, 80)).toBe(NOT_VIP);
    expect(t.pick(s, 1, 1)).toBe(-1);
    const other = t.upsert(web({ id: 'api', vip: '10.0.0.250' }));
    expect(other).not.toBe(s); // slot still referenced by a flow
    ct.remove(e);
    expect(t.upsert(web({ id: 'db', vip: '10.0.0.249' }))).toBe(s);
  });

  it('updates in place (ports, VIP, scheduler) and refuses bad specs', () => {
    const t = new ServiceTable();
    const s = t.upsert(web());
    expect(t.upsert(web({ vip: '10.0.0.240', scheduler: 'mh', ports: [{ published: 9000, target: 90, protocol: 'tcp' }] }))).toBe(s);
    expect(t.classify(ip('10.0.0.254'), TCP, 80)).toBe(NOT_VIP);
    expect(t.classify(ip('10.0.0.240'), TCP, 80)).toBe(REFUSED);
    expect(t.classify(ip('10.0.0.240'), TCP, 9000)).toBe(s);
    expect(t.pick(s, 7, 7)).toBeGreaterThanOrEqual(0);
    expect(() => t.upsert(web({ id: 'x', vip: '10.0.0.240' }))).toThrow(/another service/);
    expect(() => t.upsert(web({ id: 'y', vip: '10.0.0.1', ports: [{ published: 0, target: 80, protocol: 'tcp' }] }))).toThrow(RangeError);
    expect(() => t.upsert(web({ id: 'y', vip: '10.0.0.1', scheduler: 'xx' as never }))).toThrow(RangeError);
    expect(() => t.upsert(web({ id: 'y', vip: '10.0.0.1', tasks: [{ ip: '10.0.0.5', mac: 'nope' }] }))).toThrow();
    expect(() => t.upsert(web({ id: 'y', vip: '10.1' }))).toThrow();
    expect(t.slotOf('y')).toBe(-1); // nothing half-built
    expect(t.classify(ip('10.0.0.1'), TCP, 80)).toBe(NOT_VIP);
  });
});
