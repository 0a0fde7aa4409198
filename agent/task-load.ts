// Each task's live connections, cluster-wide, for `service ps`. A connection is known only on
// the host that balanced it (a VIP flow on its client's host, a routing-mesh connection on the
// host whose published port took it), so every host publishes its own counts in the
// owner-scoped `task-load` table, keyed by its node id (gone with the host), and a reader sums
// the entries:
//   1. every intervalMs: collect() this host's counts per task (endpoint id → connections);
//   2. publish them when they changed (no write while nothing moves);
//   3. activeOf(endpoint): the sum over every live host's entry.
import type { ServiceCounters } from '../balancer/mesh-config.js';
import { TASK_ACTIVE_PREFIX } from '../balancer/vips.js';
import type { DpStats } from '../router/engine.js';
import type { Task } from './service-view.js';
import type { ServiceTables } from './services.js';
import type { NetworkRecord } from './state.js';
import { TASK_LOAD, asTaskLoadEntry, taskLoadValue, type TaskLoadEntry } from './tables.js';

/** Tasks per entry at most (the busiest kept): an entry must fit one gossip table value. */
export const MAX_TASK_LOAD_TASKS = 256;

export class TaskLoad {
  private timer: NodeJS.Timeout | undefined;
  private last = '{}';
  private running = false;

  constructor(
    private readonly tables: ServiceTables,
    private readonly hostId: string,
    private readonly collect: () => Promise<TaskLoadEntry>,
    private readonly intervalMs = 2000,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** 1 and 2: one round (also called by tests). Errors are swallowed: counts are informational. */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const counts = trim(await this.collect());
      const json = JSON.stringify(counts);
      if (json === this.last) return;
      this.tables.set(TASK_LOAD, this.hostId, taskLoadValue(counts));
      this.last = json;
    } catch {
      // next round
    } finally {
      this.running = false;
    }
  }

  /** 3. Connections to the task (endpoint id) balanced anywhere in the cluster. */
  activeOf(endpoint: string): number {
    let n = 0;
    for (const [, value] of this.tables.entries(TASK_LOAD)) n += asTaskLoadEntry(value)?.[endpoint] ?? 0;
    return n;
  }
}

/** Non-zero counts only, the busiest MAX_TASK_LOAD_TASKS, in a stable order (no rewrite for a reordering). */
function trim(counts: TaskLoadEntry): TaskLoadEntry {
  const kept = Object.entries(counts).filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, MAX_TASK_LOAD_TASKS)
    .sort((a, b) => a[0].localeCompare(b[0]));
  return Object.fromEntries(kept);
}

/**
 * This host's counts: routing-mesh connections spliced here (per endpoint), plus established VIP
 * flows this host's datapath balances (per network and task IP, mapped to the endpoint).
 */
export function localTaskLoad(mesh: Record<string, ServiceCounters>, dp: DpStats, networks: readonly NetworkRecord[], tasks: readonly Task[]): TaskLoadEntry {
  const out: TaskLoadEntry = {};
  const add = (ep: string, n: number) => (out[ep] = (out[ep] ?? 0) + n);
  for (const c of Object.values(mesh)) for (const [ep, t] of Object.entries(c.tasks)) add(ep, t.active);
  for (const [vni, ns] of Object.entries(dp.networks)) {
    const net = networks.find((n) => n.vni === Number(vni));
    if (!net || !ns.vips) continue;
    for (const [k, n] of Object.entries(ns.vips)) {
      if (!k.startsWith(TASK_ACTIVE_PREFIX)) continue;
      const ip = k.slice(TASK_ACTIVE_PREFIX.length);
      const t = tasks.find((x) => x.ep.network === net.id && x.ep.ip === ip);
      if (t) add(t.id, n);
    }
  }
  return out;
}
