// socketInNetns / socketBind argument and errno handling, and that the calling thread is back
// in its own namespace after success and after every failure. Entering a namespace needs root
// (CAP_SYS_ADMIN): those cases skip visibly otherwise; the real-namespace cases live in
// test/dns.int.test.ts.
import { describe, expect, it } from 'vitest';
import { readlinkSync } from 'node:fs';
import { native } from './index.js';
import { netnsPath } from './netns.js';

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

  it('netnsPath: names, PIDs and paths', () => {
    expect(netnsPath('tmabc-c1')).toBe('/run/netns/tmabc-c1');
    expect(netnsPath(1234)).toBe('/proc/1234/ns/net');
    expect(netnsPath('1234')).toBe('/proc/1234/ns/net');
    expect(netnsPath('/proc/1/ns/net')).toBe('/proc/1/ns/net');
  });
});
