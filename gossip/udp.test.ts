// The real transport over loopback: UDP + TCP on 127.0.0.1, AES-GCM on, fast profile.
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { encodeMessage } from './codec.js';
import { attachIpam, type Ipam } from './ipam.js';
import { GossipNode } from './node.js';
import { Channel, generateKey, Keyring } from './security.js';
import { parseAddr } from './transport.js';

const running: GossipNode[] = [];
const ipams = new Map<GossipNode, Ipam>();
afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop()));
});

function node(name: string, key: Uint8Array, extra: Partial<ConstructorParameters<typeof GossipNode>[0]> = {}): GossipNode {
  const n = new GossipNode({ name, bindAddr: '127.0.0.1', bindPort: 0, keyring: new Keyring(key), profile: 'fast', meta: { name }, ...extra });
  running.push(n);
  ipams.set(n, attachIpam(n));
  return n;
}

/** Poll until pred holds; fails the test after timeoutMs (a bound, not a speed assertion). */
async function waitFor(pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('GossipNode over real UDP/TCP on loopback', () => {
  test('3 nodes join, converge and replicate table entries; a node with the wrong key is refused', async () => {
    const key = generateKey();
    const [a, b, c] = [node('a', key), node('b', key), node('c', key)];
    for (const n of [a, b, c]) await n.start();
    const seed = a.localMember().addr;
    expect(seed).toMatch(/^127\.0\.0\.1:\d+$/);
    await b.join([seed]);
    await c.join([seed]);
    await waitFor(() => [a, b, c].every((n) => n.stats().members.alive === 3));
    expect(c.member(b.id)?.meta).toEqual({ name: 'b' });

    a.tables.set('networks', 'n1', { name: 'overnet', vni: 4096, subnet: '10.0.9.0/24' });
    b.tables.set('endpoints', 'e1', { network: 'n1', mac: '02:42:0a:00:09:02', ip: '10.0.9.2', host: b.id });
    await waitFor(() => [a, b, c].every((n) => n.tables.get('networks', 'n1') !== undefined && n.tables.get('endpoints', 'e1') !== undefined));
    expect(c.tables.get('endpoints', 'e1')).toEqual({ network: 'n1', mac: '02:42:0a:00:09:02', ip: '10.0.9.2', host: b.id });

    // The intruder has its own key: its join (TCP push-pull) is refused...
    const intruder = node('intruder', generateKey());
    await intruder.start();
    await expect(intruder.join([seed])).rejects.toThrow(/could not join/);
    expect(a.stats().dropped.auth).toBeGreaterThanOrEqual(1);
    // ...and so are its datagrams.
    const before = b.stats().dropped.auth;
    const sock = dgram.createSocket('udp4');
    const forged = new Keyring(generateKey()).seal(encodeMessage({ t: 'alive', inc: 9, node: 'evil', name: 'evil', addr: '127.0.0.1:1', meta: new Uint8Array(0) }), Channel.packet);
    const { port } = parseAddr(b.localMember().addr);
    await new Promise<void>((r) => sock.send(forged, port, '127.0.0.1', () => r()));
    sock.close();
    await waitFor(() => b.stats().dropped.auth > before);
    await new Promise((r) => setTimeout(r, 300));
    for (const n of [a, b, c]) {
      expect(n.members().map((m) => m.name).sort()).toEqual(['a', 'b', 'c']);
      expect(n.tables.entries('endpoints')).toHaveLength(1);
    }
    expect(intruder.members().map((m) => m.name)).toEqual(['intruder']);

    // IPAM over the real reliable exchange (quorum votes over TCP).
    const pool = { subnet: { base: 0x0a000900, prefixLen: 24 }, gateway: 0x0a000901, first: 0x0a000901, last: 0x0a0009fe };
    const ips = await Promise.all([a, b, c].map((n) => ipams.get(n)!.allocate('n1', pool)));
    expect(new Set(ips).size).toBe(3);

    // Graceful leave is seen as "left" by the others.
    await c.leave();
    await c.stop();
    await waitFor(() => a.member(c.id)?.state === 'left' && b.member(c.id)?.state === 'left');
  });

  test('stateDir: a restarted node keeps its id and comes back with a higher incarnation', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tapmesh-gossip-'));
    try {
      const key = generateKey();
      const a = node('a', key);
      await a.start();
      const b1 = node('b', key, { stateDir: dir });
      await b1.start();
      await b1.join([a.localMember().addr]);
      b1.tables.set('endpoints', 'e', { ip: '10.0.9.7' });
      await waitFor(() => a.tables.get('endpoints', 'e') !== undefined);
      const id = b1.id;
      await b1.stop();
      const b2 = node('b', key, { stateDir: dir });
      expect(b2.id).toBe(id);
      expect(b2.localMember().incarnation).toBeGreaterThan(0);
      expect(b2.tables.time()).toBeGreaterThan(b1.tables.time());
      await b2.start();
      await b2.join([a.localMember().addr]);
      // Its own entry comes back to it from the cluster.
      await waitFor(() => b2.tables.get('endpoints', 'e') !== undefined);
      expect(a.member(id)?.state).toBe('alive');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('refuses to run without a key on a real transport', () => {
    expect(() => new GossipNode({ name: 'x', bindAddr: '127.0.0.1', bindPort: 0, keyring: null })).toThrow(/keyring is required/);
  });
});
