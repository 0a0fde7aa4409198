// The API server's handling of requests that break off: found by the api fuzz target
// (docs/reliability.md, bugs found).
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Agent } from './agent.js';
import { serveApi } from './api.js';
import type { Cluster } from './cluster.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Writes `raw`, closes the sending side, and returns everything the server sent back. */
function exchange(sock: string, raw: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(sock);
    let got = '';
    s.on('data', (c) => (got += c.toString('latin1')));
    s.on('close', () => resolve(got));
    s.on('error', reject);
    s.end(raw);
  });
}

describe('API server', () => {
  it('a body cut short by the client is the client\'s error (400), not a logged internal failure', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tapmesh-api-test-'));
    dirs.push(dir);
    const errors: string[] = [];
    const log = { info() {}, warn() {}, error: (msg: string) => void errors.push(msg) };
    const addPeer = async () => {
      throw new Error('not reached: the body never arrived');
    };
    const server = await serveApi(path.join(dir, 'api.sock'), { addPeer } as unknown as Agent, {} as unknown as Cluster, log);
    try {
      const sock = path.join(dir, 'api.sock');
      // content-length 100, 7 bytes sent, then the client closes its side.
      await exchange(sock, 'POST /v1/networks/n1/peers HTTP/1.1\r\nhost: t\r\ncontent-length: 100\r\n\r\n{"vtep"');
      await new Promise((r) => setTimeout(r, 50));
      expect(errors).toEqual([]);
      // The server goes on answering.
      const next = await exchange(sock, 'GET /nothing HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n');
      expect(next).toMatch(/^HTTP\/1\.1 404 /);
      expect(next).toContain('no such endpoint');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
