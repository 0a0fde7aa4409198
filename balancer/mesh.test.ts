// The routing mesh on loopback: tasks are local TCP/UDP servers, "connecting in the sandbox" is
// a plain connect to the task's loopback port. Namespaces are covered by test/services.int.test.ts.
import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Mesh, type MeshEnv, type MeshPort } from './mesh.js';
import { MeshPicker } from './mesh-pick.js';
import { parseIpv4 } from '../router/wire/addr.js';
import { parseProxyV2 } from './proxy-v2.js';
import { native } from '../native/index.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A TCP task answering its name to each connection, or calling `onConn`. */
async function tcpTask(name: string, onConn?: (s: net.Socket) => void): Promise<number> {
  const srv = net.createServer({ allowHalfOpen: true }, onConn ?? ((s) => s.end(name)));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => srv.close());
  return (srv.address() as net.AddressInfo).port;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

/** Task i has ip 10.0.0.(i+2); its loopback port is ports[ip]. */
function env(ports: Map<string, number>): MeshEnv {
  return {
    sandboxOf: (n) => (n === 'net1' ? 'sbx' : undefined),
    dialer: (_ns, ip) => ({ fd: -1, ip: '127.0.0.1', port: ports.get(ip) ?? 1 }),
    openUdp: (_ns, onMessage) => {
      const s = dgram.createSocket('udp4');
      s.on('message', (m, r) => onMessage(m, parseIpv4([...ports].find(([, p]) => p === r.port)?.[0] ?? '0.0.0.0'), 80));
      s.bind(0, '127.0.0.1');
      return {
        send: (d, addr) => {
          s.send(d, ports.get(`${addr >>> 24}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`) ?? 1, '127.0.0.1');
          return true;
        },
        close: () => s.close(),
      };
    },
  };
}

function port(published: number, tasks: { ip: string; weight?: number }[], o: Partial<MeshPort> = {}): MeshPort {
  return {
    service: 'svc1', name: 'web', network: 'net1', published, protocol: 'tcp', target: 80, proxyProtocol: null,
    tasks: tasks.map((t, i) => ({ endpoint: `ep${i}`, ip: t.ip, mac: '02:42:0a:00:00:02', weight: t.weight ?? 1, host: `h${i}` })),
    ...o,
  };
}

function get(p: number, send = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port: p, allowHalfOpen: true });
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => {
      s.end();
      resolve(out);
    });
    s.on('error', reject);
    s.on('connect', () => s.end(send));
  });
}

async function mesh(ports: Map<string, number>, specs: MeshPort[], udpIdleMs = 60_000, maxConnections = 8192): Promise<Mesh> {
  const m = new Mesh(env(ports), { listen: ['127.0.0.1'], udpIdleMs, connectTimeoutMs: 500, maxConnections });
  await m.update(specs);
  cleanups.push(() => void m.destroy());
  return m;
}

describe('MeshPicker', () => {
  it('takes turns by weight and never picks weight 0', () => {
    const p = new MeshPicker();
    p.set([{ endpoint: 'a', ip: '', mac: '', weight: 3, host: '' }, { endpoint: 'b', ip: '', mac: '', weight: 1, host: '' }, { endpoint: 'c', ip: '', mac: '', weight: 0, host: '' }]);
    const got = Array.from({ length: 8 }, () => p.pick()?.endpoint);
    expect(got.filter((x) => x === 'a')).toHaveLength(6);
    expect(got.filter((x) => x === 'b')).toHaveLength(2);
    expect(got).not.toContain('c');
    expect(p.pick(new Set(['a', 'b']))).toBeUndefined();
  });
});

describe('Mesh (loopback)', () => {
  it('balances connections across tasks in turn and counts them', async () => {
    const ports = new Map([['10.0.0.2', await tcpTask('t1')], ['10.0.0.3', await tcpTask('t2')]]);
    const pub = await freePort();
    const m = await mesh(ports, [port(pub, [{ ip: '10.0.0.2' }, { ip: '10.0.0.3' }])]);
    const answers = [];
    for (let i = 0; i < 10; i++) answers.push(await get(pub));
    expect(answers.filter((a) => a === 't1')).toHaveLength(5);
    expect(answers.filter((a) => a === 't2')).toHaveLength(5);
    await new Promise((r) => setTimeout(r, 50));
    const c = m.stats().svc1;
    expect(c.total).toBe(10);
    expect(c.active).toBe(0);
    expect(c.tasks.ep0.total).toBe(5);
    expect(c.bytesOut).toBe(20);
  });

  it('retries a refusing task on another, and resets when none takes it', async () => {
    const ports = new Map([['10.0.0.2', await freePort()], ['10.0.0.3', await tcpTask('t2')]]);
    const pub = await freePort();
    const m = await mesh(ports, [port(pub, [{ ip: '10.0.0.2' }, { ip: '10.0.0.3' }])]);
    for (let i = 0; i < 4; i++) expect(await get(pub)).toBe('t2');
    expect(m.stats().svc1.refused).toBeGreaterThanOrEqual(2);
    expect(m.stats().svc1.retries).toBe(m.stats().svc1.refused);
    await m.update([port(pub, [{ ip: '10.0.0.2' }])]);
    await expect(get(pub)).rejects.toThrow(/ECONNRESET/);
    expect(m.stats().svc1.noTask).toBe(1);
  });

  it('maxConnections bounds open connections: one more is reset and counted, a slot frees on close', async () => {
    const held: net.Socket[] = [];
    const idle = await tcpTask('idle', (s) => held.push(s.on('error', () => undefined)));
    const pub = await freePort();
    const m = await mesh(new Map([['10.0.0.2', idle]]), [port(pub, [{ ip: '10.0.0.2' }])], 60_000, 3);
    // Resolves at 'connect', or at 'close' (a reset can beat the connect event on loopback).
    const open = async () => {
      const c = net.connect({ host: '127.0.0.1', port: pub });
      c.on('error', () => undefined);
      await new Promise((r) => {
        c.once('connect', r);
        c.once('close', r);
      });
      return c;
    };
    const clients = [await open(), await open(), await open()];
    await new Promise((r) => setTimeout(r, 50));
    expect(m.stats().svc1.active).toBe(3);
    const extra = await open();
    if (!extra.destroyed) await new Promise((r) => extra.once('close', r));
    expect(m.stats().svc1.overload).toBe(1);
    clients[0].resetAndDestroy(); // a FIN would only half-close it (the task keeps its side open)
    for (let i = 0; i < 100 && m.stats().svc1.active > 2; i++) await new Promise((r) => setTimeout(r, 10));
    const again = await open();
    await new Promise((r) => setTimeout(r, 50));
    expect(m.stats().svc1.active).toBe(3);
    expect(m.stats().svc1.overload).toBe(1);
    for (const c of [...clients, again, ...held]) c.destroy();
  });

  it('passes a half-close on: the task still answers after the client sent FIN', async () => {
    // The task reads until EOF, then answers with what it got.
    const echo = await tcpTask('echo', (s) => {
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('end', () => setTimeout(() => s.end(`got:${got}`), 100));
    });
    const pub = await freePort();
    await mesh(new Map([['10.0.0.2', echo]]), [port(pub, [{ ip: '10.0.0.2' }])]);
    expect(await get(pub, 'hello')).toBe('got:hello');
  });

  it('drains on weight 0: the open connection lives, new ones go elsewhere', async () => {
    let held: net.Socket | undefined;
    const slow = await tcpTask('slow', (s) => {
      held = s;
      s.on('data', (d) => s.write(`slow:${d.toString()}`));
    });
    const ports = new Map([['10.0.0.2', slow], ['10.0.0.3', await tcpTask('t2')]]);
    const pub = await freePort();
    const m = await mesh(ports, [port(pub, [{ ip: '10.0.0.2' }, { ip: '10.0.0.3', weight: 0 }])]);
    const c = net.connect({ host: '127.0.0.1', port: pub });
    await new Promise((r) => c.once('connect', r));
    c.write('a');
    await new Promise((r) => c.once('data', r));
    await m.update([port(pub, [{ ip: '10.0.0.2', weight: 0 }, { ip: '10.0.0.3' }])]);
    expect(await get(pub)).toBe('t2');
    c.write('b');
    const d = await new Promise<Buffer>((r) => c.once('data', r));
    expect(d.toString()).toBe('slow:b');
    c.destroy();
    held?.destroy();
  });

  it('sends a PROXY v2 header with the client address first', async () => {
    let header: unknown;
    const pp = await tcpTask('pp', (s) => s.once('data', (d) => {
      const r = parseProxyV2(d);
      header = r.kind === 'ok' ? r.header : r;
      s.end('ok');
    }));
    const pub = await freePort();
    await mesh(new Map([['10.0.0.2', pp]]), [port(pub, [{ ip: '10.0.0.2' }], { proxyProtocol: 'v2' })]);
    expect(await get(pub)).toBe('ok');
    expect(header).toMatchObject({ command: 'proxy', family: 'inet', srcAddr: '127.0.0.1', dstAddr: '127.0.0.1', dstPort: pub });
  });

  it('moves 8 MB each way intact through a reader slower than the writer (held bytes resume)', async () => {
    const size = 8 << 20;
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    // The task echoes everything back; the client reads in bursts with pauses.
    const echo = await tcpTask('echo', (s) => s.pipe(s));
    const pub = await freePort();
    const m = await mesh(new Map([['10.0.0.2', echo]]), [port(pub, [{ ip: '10.0.0.2' }])]);
    const got = await new Promise<Buffer>((resolve, reject) => {
      const c = net.connect({ host: '127.0.0.1', port: pub, allowHalfOpen: true });
      const parts: Buffer[] = [];
      let n = 0;
      c.on('data', (d) => {
        parts.push(d);
        n += d.length;
        if ((n >> 20) % 2 === 1) {
          c.pause();
          setTimeout(() => c.resume(), 20);
        }
      });
      c.on('end', () => resolve(Buffer.concat(parts)));
      c.on('error', reject);
      c.on('connect', () => c.end(data));
    });
    expect(got.length).toBe(size);
    expect(got.equals(data)).toBe(true);
    for (let i = 0; i < 100 && m.stats().svc1.active > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(m.stats().svc1).toMatchObject({ active: 0, bytesIn: size, bytesOut: size });
  });

  it('a reset on either side resets the other', async () => {
    const taskSaw: string[] = [];
    let toReset: net.Socket | undefined;
    const t = await tcpTask('t', (s) => {
      s.on('error', (e: NodeJS.ErrnoException) => taskSaw.push(e.code ?? 'error'));
      s.on('data', (d) => (d.toString() === 'reset-me' ? s.resetAndDestroy() : (toReset = s)));
    });
    const pub = await freePort();
    await mesh(new Map([['10.0.0.2', t]]), [port(pub, [{ ip: '10.0.0.2' }])]);
    // The task resets: the client gets ECONNRESET.
    const c1 = net.connect({ host: '127.0.0.1', port: pub });
    const c1err = new Promise<string>((r) => c1.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? '')));
    c1.on('connect', () => c1.write('reset-me'));
    expect(await c1err).toBe('ECONNRESET');
    // The client resets: the task's side gets ECONNRESET.
    const c2 = net.connect({ host: '127.0.0.1', port: pub });
    c2.on('error', () => undefined);
    c2.on('connect', () => c2.write('hold'));
    for (let i = 0; i < 100 && !toReset; i++) await new Promise((r) => setTimeout(r, 10));
    c2.resetAndDestroy();
    for (let i = 0; i < 100 && taskSaw.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(taskSaw).toEqual(['ECONNRESET']);
  });

  it('a task that never answers the connect times out and the next task takes the connection', async () => {
    // A listener nobody accepts from, its queue filled: further SYNs are dropped (no answer).
    const n = native();
    const deaf = n.relayCreate();
    cleanups.push(() => n.relayDestroy(deaf));
    const deafPort = await freePort();
    n.relayListen(deaf, '127.0.0.1', deafPort, 1, false);
    const fillers = [0, 1, 2].map(() => net.connect({ host: '127.0.0.1', port: deafPort }).on('error', () => undefined));
    cleanups.push(() => fillers.forEach((f) => f.destroy()));
    await new Promise((r) => setTimeout(r, 100));
    const ports = new Map([['10.0.0.2', deafPort], ['10.0.0.3', await tcpTask('t2')]]);
    const pub = await freePort();
    const m = await mesh(ports, [port(pub, [{ ip: '10.0.0.2' }, { ip: '10.0.0.3' }])]);
    const t0 = Date.now();
    expect(await get(pub)).toBe('t2');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400); // connectTimeoutMs 500, checked every 125 ms
    expect(m.stats().svc1).toMatchObject({ refused: 1, retries: 1 });
  });

  it('UDP: one flow per client to one task, expired when idle', async () => {
    const udpTask = (name: string): Promise<number> => new Promise((r) => {
      const s = dgram.createSocket('udp4');
      s.on('message', (m, ri) => s.send(`${name}:${m.toString()}`, ri.port, ri.address));
      s.bind(0, '127.0.0.1', () => r(s.address().port));
      cleanups.push(() => s.close());
    });
    const ports = new Map([['10.0.0.2', await udpTask('u1')], ['10.0.0.3', await udpTask('u2')]]);
    const pub = await freePort();
    const m = await mesh(ports, [port(pub, [{ ip: '10.0.0.2' }, { ip: '10.0.0.3' }], { protocol: 'udp' })], 300);
    const client = dgram.createSocket('udp4');
    cleanups.push(() => client.close());
    const ask = (msg: string): Promise<string> => new Promise((r) => {
      client.once('message', (d) => r(d.toString()));
      client.send(msg, pub, '127.0.0.1');
    });
    const a = await ask('x');
    expect(await ask('y')).toBe(`${a.split(':')[0]}:y`);
    expect(m.stats().svc1.udpFlows).toBe(1);
    await new Promise((r) => setTimeout(r, 700));
    expect(m.stats().svc1.udpFlows).toBe(0);
  });
});
