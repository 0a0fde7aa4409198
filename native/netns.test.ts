// socketInNetns / socketBind argument and errno handling, and that the calling thread is back
// in its own namespace after success and after every failure. Entering a namespace needs root
// (CAP_SYS_ADMIN): those cases skip visibly otherwise; the real-namespace cases live in
// test/dns.int.test.ts.
import { describe, expect, it } from 'vitest';
import { readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { native } from './index.js';
import { connectTcpOnFd, netnsPath } from './netns.js';
import { NetnsTcpPool } from './netns-pool.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true') throw new Error('native/netns.test.ts must run as root in CI');
if (!isRoot) console.warn('native/netns.test.ts: NOT ROOT - skipping setns cases');

const own = (): string => readlinkSync('/proc/thread-self/ns/net');

describe('socketInNetns', () => {
  const n = native();

  it('rejects bad arguments before any syscall', () => {
    expect(() => n.socketInNetns('/proc/self/ns/net', 5 as 4, 'udp')).toThrow(RangeError);
    expect(() => n.socketInNetns('/proc/self/ns/net', 4, 'sctp' as 'udp')).toThrow(/type/);
    expect(() => n.socketInNetns(42 as unknown as string, 4, 'udp')).toThrow(TypeError);
  });

  it('errno errors carry the errno name; the thread stays in its own namespace', () => {
    const before = own();
    expect(() => n.socketInNetns('/nonexistent/ns', 4, 'udp')).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'open(nsPath)' }));
    if (isRoot) expect(() => n.socketInNetns('/proc/self/stat', 4, 'tcp')).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'setns' }));
    expect(own()).toBe(before);
  });

  it.skipIf(!isRoot)('creates UDP and TCP, IPv4 and IPv6 sockets; socketBind returns the kernel-picked port', () => {
    const before = own();
    for (const [fam, addr] of [[4, '127.0.0.1'], [6, '::1']] as const) {
      for (const type of ['udp', 'tcp'] as const) {
        const fd = n.socketInNetns('/proc/self/ns/net', fam, type);
        try {
          const port = n.socketBind(fd, addr, 0);
          expect(port).toBeGreaterThan(0);
          expect(() => n.socketBind(fd, addr, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
        } finally {
          n.close(fd);
        }
      }
    }
    const fd = n.socketInNetns('/proc/self/ns/net', 4, 'udp');
    expect(() => n.socketBind(fd, '::1', 0)).toThrow(RangeError);
    n.close(fd);
    expect(own()).toBe(before);
  });

  it('socketsInNetns validates count; on a bad namespace nothing is opened', () => {
    expect(() => n.socketsInNetns('/proc/self/ns/net', 4, 'tcp', 0)).toThrow(RangeError);
    expect(() => n.socketsInNetns('/proc/self/ns/net', 4, 'tcp', 257)).toThrow(RangeError);
    const fdsBefore = readdirSync('/proc/self/fd').length;
    expect(() => n.socketsInNetns('/nonexistent/ns', 4, 'tcp', 8)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(readdirSync('/proc/self/fd').length).toBe(fdsBefore);
  });

  it.skipIf(!isRoot)('socketsInNetns makes count distinct sockets of the family; the thread is back home', () => {
    const before = own();
    const fds = n.socketsInNetns('/proc/self/ns/net', 6, 'tcp', 5);
    try {
      expect(fds.length).toBe(5);
      expect(new Set(fds).size).toBe(5);
      for (const fd of fds) expect(n.socketBind(fd, '::1', 0)).toBeGreaterThan(0);
    } finally {
      for (const fd of fds) n.close(fd);
    }
    expect(own()).toBe(before);
  });

  it.skipIf(!isRoot)('NetnsTcpPool hands out sockets from a batch, refills, and drain closes the idle sockets', async () => {
    const server = net.createServer((s) => s.end('hi'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const pool = new NetnsTcpPool(3);
    try {
      const got: string[] = [];
      for (let i = 0; i < 4; i++) {
        const s = await connectTcpOnFd(pool.take('/proc/self/ns/net', 4), 'self', '127.0.0.1', port, 2000);
        got.push(await new Promise<string>((r) => { let b = ''; s.on('data', (d) => (b += d)).on('end', () => r(b)); }));
        s.destroy();
      }
      expect(got).toEqual(['hi', 'hi', 'hi', 'hi']);
      expect(pool.size).toBe(2); // 3 made, 3 used, 3 more made, 1 used
      await expect(connectTcpOnFd(pool.take('/proc/self/ns/net', 4), 'self', '127.0.0.1', 1, 2000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      pool.drain(['/proc/self/ns/net']);
      expect(pool.size).toBe(1);
      pool.drain();
      expect(pool.size).toBe(0);
    } finally {
      pool.drain();
      server.close();
    }
  });

  it('netnsPath: names, PIDs and paths', () => {
    expect(netnsPath('tmabc-c1')).toBe('/run/netns/tmabc-c1');
    expect(netnsPath(1234)).toBe('/proc/1234/ns/net');
    expect(netnsPath('1234')).toBe('/proc/1234/ns/net');
    expect(netnsPath('/proc/1/ns/net')).toBe('/proc/1/ns/net');
  });
});
