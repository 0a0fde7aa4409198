// Optional persistence of the few things a restarted agent must not forget: its node id (so
// its table entries resume instead of being replaced), its incarnation (so its new alive
// message beats the old dead/left one at once) and a Lamport high-water mark (so its new
// writes beat its old ones). The Lamport time is reserved in steps: the file stores a value
// ahead of the clock and is rewritten only when the clock catches up, so writes stay rare.

import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';

export interface PersistedState {
  id: string;
  incarnation: number;
  lamport: number;
}

const FILE = 'gossip-state.json';
export const LAMPORT_STEP = 10_000;

export function readState(dir: string): PersistedState | undefined {
  try {
    const o = JSON.parse(readFileSync(path.join(dir, FILE), 'utf8')) as Partial<PersistedState>;
    if (typeof o.id !== 'string' || !/^[0-9a-f]{1,64}$/.test(o.id)) return undefined;
    return { id: o.id, incarnation: Number(o.incarnation) || 0, lamport: Number(o.lamport) || 0 };
  } catch {
    return undefined;
  }
}

export function writeState(dir: string, s: PersistedState): void {
  mkdirSync(dir, { recursive: true });
  // Atomic and durable: temp file, fsync, rename, fsync of the directory.
  const tmp = path.join(dir, `${FILE}.tmp`);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(s)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path.join(dir, FILE));
  const d = openSync(dir, 'r');
  try {
    fsyncSync(d);
  } finally {
    closeSync(d);
  }
}

/** Keeps the file in step with the live values. */
export class StateFile {
  private state: PersistedState;

  constructor(
    private readonly dir: string,
    id: string,
    incarnation: number,
    lamport: number,
  ) {
    this.state = { id, incarnation, lamport: lamport + LAMPORT_STEP };
    writeState(dir, this.state);
  }

  incarnation(inc: number): void {
    if (inc <= this.state.incarnation) return;
    this.state = { ...this.state, incarnation: inc };
    writeState(this.dir, this.state);
  }

  lamport(t: number): void {
    if (t < this.state.lamport) return;
    this.state = { ...this.state, lamport: t + LAMPORT_STEP };
    writeState(this.dir, this.state);
  }
}
