// Per-task connection counts for `service ps`: what a host publishes in `task-load` (only on
// change, non-zero counts), how readers sum the hosts' entries and ignore malformed ones, and
// how this host's mesh and VIP counts map to endpoint ids.
import { describe, expect, test } from 'vitest';
import type { JsonValue } from '../gossip/index.js';
import { newCounters } from '../balancer/mesh-config.js';
import type { DpStats } from '../router/engine.js';
import type { Task } from './service-view.js';
import type { ServiceTables } from './services.js';
import type { NetworkRecord } from './state.js';
import { TASK_LOAD, type TaskLoadEntry } from './tables.js';
import { MAX_TASK_LOAD_TASKS, TaskLoad, localTaskLoad } from './task-load.js';

class Tables {
  readonly data = new Map<string, JsonValue>();
  writes = 0;
  get(): JsonValue | undefined {
    return undefined;
  }
  set(table: string, key: string, value: JsonValue): void {
    expect(table).toBe(TASK_LOAD);
    this.writes++;
    this.data.set(key, value);
  }
  delete(): boolean {
    return false;
  }
  entries(table: string): Array<[string, JsonValue, string]> {
    return table === TASK_LOAD ? [...this.data].map(([k, v]) => [k, v, k]) : [];
  }
  subscribe(): () => void {
    return () => undefined;
  }
}

describe('TaskLoad', () => {
  test('publishes non-zero counts under the host id, only when they change', async () => {
    const t = new Tables();
    let counts: TaskLoadEntry = { a: 2, b: 0 };
    const load = new TaskLoad(t as unknown as ServiceTables, 'host1', async () => counts);
    await load.tick();
    expect(t.data.get('host1')).toEqual({ a: 2 });
    await load.tick();
    expect(t.writes).toBe(1);
    counts = { a: 0 };
    await load.tick();
    expect(t.data.get('host1')).toEqual({});
    expect(t.writes).toBe(2);
  });

  test('activeOf sums every host; a malformed entry counts nothing', () => {
    const t = new Tables();
    t.data.set('h1', { a: 2, b: 1 });
    t.data.set('h2', { a: 3 });
    t.data.set('h3', { a: -5 });
    t.data.set('h4', 'junk');
    const load = new TaskLoad(t as unknown as ServiceTables, 'h1', async () => ({}));
    expect(load.activeOf('a')).toBe(5);
    expect(load.activeOf('b')).toBe(1);
    expect(load.activeOf('zz')).toBe(0);
  });

  test('a collect failure writes nothing; more tasks than fit keep the busiest', async () => {
    const t = new Tables();
    const fail = new TaskLoad(t as unknown as ServiceTables, 'h1', async () => Promise.reject(new Error('engine gone')));
    await fail.tick();
    expect(t.writes).toBe(0);
    const many: TaskLoadEntry = {};
    for (let i = 0; i < MAX_TASK_LOAD_TASKS + 10; i++) many[`t${i}`] = i + 1;
    await new TaskLoad(t as unknown as ServiceTables, 'h1', async () => many).tick();
    const got = t.data.get('h1') as TaskLoadEntry;
    expect(Object.keys(got)).toHaveLength(MAX_TASK_LOAD_TASKS);
    expect(got.t0).toBeUndefined();
    expect(got[`t${MAX_TASK_LOAD_TASKS + 9}`]).toBe(MAX_TASK_LOAD_TASKS + 10);
  });
});

test('localTaskLoad: mesh connections by endpoint plus VIP flows by network and task IP', () => {
  const mesh = { svc1: { ...newCounters(), tasks: { ep1: { active: 2, total: 9 }, ep2: { active: 0, total: 1 } } } };
  const dp = {
    drops: {},
    networks: {
      7: { counters: {}, drops: {}, vips: { newFlows: 3, 'active:10.0.0.5': 4, 'active:10.0.0.9': 1 } },
      8: { counters: {}, drops: {}, vips: { 'active:10.0.0.5': 6 } },
    },
  } as unknown as DpStats;
  const networks = [{ id: 'n7', vni: 7 }, { id: 'n8', vni: 8 }] as NetworkRecord[];
  const task = (id: string, network: string, ip: string): Task => ({ id, weight: 1, ep: { network, ip, service: 'svc1' } as Task['ep'] });
  const tasks = [task('ep1', 'n7', '10.0.0.5'), task('ep2', 'n7', '10.0.0.6'), task('ep3', 'n8', '10.0.0.5')];
  // 10.0.0.9 is no task (it left): not counted anywhere.
  expect(localTaskLoad(mesh, dp, networks, tasks)).toEqual({ ep1: 6, ep2: 0, ep3: 6 });
});
