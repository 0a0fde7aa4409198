// Which task a routing-mesh connection goes to: smooth weighted round-robin (nginx's), so equal
// weights take turns and unequal ones interleave; weight 0 (drained) is never picked. The mesh
// keeps one picker per published port and replaces its task list on every change, keeping the
// running credit of tasks that stay.

/** A task as the mesh sees it (agent/service-view.ts MeshTarget.tasks). */
export interface MeshTask {
  endpoint: string;
  ip: string;
  mac: string;
  /** 0..65535; 0 = drained: no new connections, existing ones live on. */
  weight: number;
  /** Node id of the task's host. */
  host: string;
}

export class MeshPicker {
  private tasks: MeshTask[] = [];
  private credit = new Map<string, number>();

  set(tasks: readonly MeshTask[]): void {
    const next = new Map<string, number>();
    for (const t of tasks) next.set(t.endpoint, this.credit.get(t.endpoint) ?? 0);
    this.tasks = [...tasks];
    this.credit = next;
  }

  get all(): readonly MeshTask[] {
    return this.tasks;
  }

  /** The next task, skipping those in `exclude` (already refused this connection); undefined if none. */
  pick(exclude?: ReadonlySet<string>): MeshTask | undefined {
    let best: MeshTask | undefined;
    let bestCredit = -Infinity;
    let total = 0;
    for (const t of this.tasks) {
      if (t.weight <= 0 || exclude?.has(t.endpoint)) continue;
      const c = (this.credit.get(t.endpoint) ?? 0) + t.weight;
      this.credit.set(t.endpoint, c);
      total += t.weight;
      if (c > bestCredit) {
        bestCredit = c;
        best = t;
      }
    }
    if (best) this.credit.set(best.endpoint, bestCredit - total);
    return best;
  }
}
