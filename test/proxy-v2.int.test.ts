// PROXY protocol v2 interop with HAProxy on loopback (no namespaces, no root needed): HAProxy's
// `send-proxy-v2` header parses with our codec, and HAProxy's `accept-proxy` takes the header
// we encode (it re-emits the addresses it read as a v1 line to the next hop).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeProxyV2, parseProxyV2, proxyV2For } from '../balancer/proxy-v2.js';

const haveHaproxy = spawnSync('haproxy', ['-v']).status === 0;
if (!haveHaproxy) {
  if (process.env.CI === 'true') throw new Error('haproxy not installed, and CI=true does not allow skipping');
  console.warn('SKIP PROXY v2 interop: haproxy not installed');
}

function listen(onData: (sock: net.Socket, data: Buffer) => void): Promise<net.Server> {
  return new Promise((resolve) => {
    const srv = net.createServer((sock) => {
      let acc = Buffer.alloc(0);
      sock.on('data', (d) => {
        acc = Buffer.concat([acc, d]);
        onData(sock, acc);
      });
    });
    srv.listen(0, '127.0.0.1', () => resolve(srv));
  });
}

async function freePort(): Promise<number> {
  const s = await listen(() => {});
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

async function waitPort(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((r) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        r(true);
      });
      c.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`haproxy did not listen on ${port}`);
}

describe.skipIf(!haveHaproxy)('PROXY protocol v2 with HAProxy', () => {
  let dir = '';
  let hap: ChildProcess | undefined;
  let v2Seen: (b: Buffer) => void = () => {};
  let v1Seen: (b: Buffer) => void = () => {};
  let upV2: net.Server;
  let upV1: net.Server;
  let sendPort = 0;
  let acceptPort = 0;

  beforeAll(async () => {
    upV2 = await listen((_s, d) => v2Seen(d));
    upV1 = await listen((_s, d) => v1Seen(d));
    sendPort = await freePort();
    acceptPort = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'tmpp2-'));
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(cfg, [
      'defaults', '  mode tcp', '  timeout connect 2s', '  timeout client 10s', '  timeout server 10s',
      'frontend send', `  bind 127.0.0.1:${sendPort}`, '  default_backend to_v2',
      'backend to_v2', `  server s 127.0.0.1:${(upV2.address() as net.AddressInfo).port} send-proxy-v2`,
      'frontend accept', `  bind 127.0.0.1:${acceptPort} accept-proxy`, '  default_backend to_v1',
      'backend to_v1', `  server s 127.0.0.1:${(upV1.address() as net.AddressInfo).port} send-proxy`, '',
    ].join('\n'));
    hap = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitPort(sendPort);
    await waitPort(acceptPort);
  });

  afterAll(async () => {
    if (hap?.pid) process.kill(hap.pid, 'SIGTERM');
    await Promise.all([upV2, upV1].map((s) => new Promise((r) => s?.close(r))));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("parses HAProxy's send-proxy-v2 header: the client's real address and port", async () => {
    const got = new Promise<Buffer>((r) => {
      v2Seen = (b) => {
        if (b.includes('hello')) r(b);
      };
    });
    const c = net.connect(sendPort, '127.0.0.1');
    await new Promise((r) => c.on('connect', r));
    c.write('hello');
    const b = await got;
    const r = parseProxyV2(b);
    expect(r.kind).toBe('ok');
    if (r.kind !== 'ok') return;
    expect(r.header).toMatchObject({
      command: 'proxy', family: 'inet', transport: 'stream', srcAddr: '127.0.0.1', srcPort: c.localPort,
      dstAddr: '127.0.0.1', dstPort: sendPort,
    });
    expect(b.subarray(r.length).toString()).toBe('hello');
    c.destroy();
  });

  it('HAProxy accepts the header we encode (IPv4 and IPv6) and reads our addresses from it', async () => {
    for (const [h, line] of [
      [proxyV2For('192.0.2.7', 5555, '198.51.100.1', 8080), 'PROXY TCP4 192.0.2.7 198.51.100.1 5555 8080\r\n'],
      [proxyV2For('2001:db8::7', 6000, '2001:db8::1', 443), 'PROXY TCP6 2001:db8::7 2001:db8::1 6000 443\r\n'],
    ] as const) {
      const got = new Promise<Buffer>((r) => {
        v1Seen = (b) => {
          if (b.includes('payload')) r(b);
        };
      });
      const c = net.connect(acceptPort, '127.0.0.1');
      await new Promise((r) => c.on('connect', r));
      c.write(Buffer.concat([encodeProxyV2({ ...h, tlvs: [{ type: 0xf0, value: Buffer.from('task-1') }] }), Buffer.from('payload')]));
      expect((await got).toString()).toBe(`${line}payload`);
      c.destroy();
    }
  });
});
