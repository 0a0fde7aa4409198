// The encryption rounds poll the datapath only when there is something to poll for.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { GossipNode } from '../gossip/index.js';
import type { DatapathEngine } from '../router/engine.js';
import { generateX25519 } from '../crypto/keys.js';
import { Encryption } from './encryption.js';
import type { Logger } from './log.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} } as unknown as Logger;

function setup(wanted: () => boolean) {
  const calls: string[] = [];
  const engine = { call: async (cmd: { op: string }) => { calls.push(cmd.op); return []; }, stats: async () => ({}), close: async () => {} };
  const node = { id: 'self', members: () => [], handle: () => {}, request: () => {} };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tm-enc-'));
  const enc = new Encryption({ stateDir: dir, dataPathAddr: '192.0.2.1' }, generateX25519(), node as unknown as GossipNode, () => [],
    engine as unknown as DatapathEngine, wanted, quiet);
  return { enc, calls, dir };
}

describe('Encryption rounds', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('leave the datapath alone while the host has no encrypted network, and poll it once it has one', async () => {
    let encrypted = false;
    const { enc, calls, dir } = setup(() => encrypted);
    enc.start();
    await vi.advanceTimersByTimeAsync(2000);
    expect(calls).toEqual([]);
    encrypted = true;
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls.filter((c) => c === 'saList').length).toBeGreaterThanOrEqual(3);
    enc.stop();
    rmSync(dir, { recursive: true, force: true });
  });
});
