// Tests for the native addon against the real kernel, no mocks.
//
// Argument validation and errno errors run in-process (they never reach a syscall that
// changes anything). Everything that creates interfaces or sends packets runs in a child
// Node process (native.child.mjs) started with `ip netns exec` inside a namespace this file
// creates (tm<hex>-<tag>), so the root namespace is never touched; namespaces and children
// are removed by name / PID when done.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { ipv4ToString, parseIpv4 } from '../router/wire/addr.js';
import { native } from './index.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true') {
  throw new Error('native/native.test.ts must run as root in CI (network namespaces, TAP devices); refusing to skip');
}
if (!isRoot) {
  console.warn('native/native.test.ts: NOT ROOT - skipping kernel tests (TAP, UDP batches, poll, workers, GSO/GRO)');
}

const CHILD = fileURLToPath(new URL('./native.child.mjs', import.meta.url));
const RUN = randomBytes(3).toString('hex');
const namespaces = new Set<string>();
const children = new Set<ChildProcess>();

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

function deleteNamespace(ns: string): void {
  // Kill whatever still runs in it (only our own children can), by PID, then delete it.
  try {
    for (const pid of ip('netns', 'pids', ns).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    ip('netns', 'del', ns);
  } catch {
    /* already deleted */
  }
  namespaces.delete(ns);
}

/** Runs one child scenario in a fresh namespace; resolves with its JSON report. */
async function runScenario(tag: string): Promise<any> {
  const ns = `tm${RUN}-${tag}`;
  ip('netns', 'add', ns);
  namespaces.add(ns);
  try {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '--expose-gc', CHILD, tag], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.pid && process.kill(child.pid, 'SIGKILL'), 25_000);
    const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
    clearTimeout(timer);
    children.delete(child);
    const line = stdout.trim().split('\n').pop() ?? '';
    let report: any;
    try {
      report = JSON.parse(line);
    } catch {
      throw new Error(`child ${tag} exited ${code} without a report\nstdout: ${stdout}\nstderr: ${stderr}`);
    }
    if (code !== 0 || report.crash) throw new Error(`child ${tag} failed (${code}): ${JSON.stringify(report)}\n${stderr}`);
    return report;
  } finally {
    deleteNamespace(ns);
  }
}

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  for (const ns of [...namespaces]) deleteNamespace(ns);
});

const HOOK_TIMEOUT = 60_000;

describe('argument validation (in-process, no syscalls reached)', () => {
  const n = native();
  const slab = Buffer.alloc(4 * 256);
  const lens = new Int32Array(4);
  const addrs = new Uint32Array(4);
  const ports = new Uint16Array(4);
  const offs = new Int32Array(4);

  it('exports exactly the documented functions', () => {
    expect(Object.keys(n).sort()).toEqual(
      ['aeadCount', 'aeadCreate', 'aeadDestroy', 'aeadInfo', 'aeadOpen', 'aeadSeal', 'close', 'copyBatch', 'csumBatch', 'csumSum', 'keepAwake', 'pollReadable', 'readFrames', 'relayConnect', 'relayCount', 'relayCreate', 'relayDestroy', 'relayFd', 'relayListen', 'relayReset', 'relayRun', 'relayUnlisten', 'socketBind', 'socketInNetns', 'socketsInNetns', 'tapOpen', 'tapSetOffload', 'tapSetVnetHdrSize', 'udpOpen', 'udpRecv',
        'udpSend', 'udpSendGso', 'udpSendGsoBatch', 'udpSetGro', 'writeFrames'].sort(),
    );
  });

  it('relay: bad handles, addresses and ids throw or answer "gone", never crash', () => {
    expect(() => n.relayRun({} as never)).toThrow(TypeError);
    const r = n.relayCreate();
    expect(() => n.relayListen(r, 'not-an-ip', 1, 16, false)).toThrow(RangeError);
    expect(() => n.relayListen(r, '127.0.0.1', 70000, 16, false)).toThrow(RangeError);
    expect(() => n.relayListen(r, '127.0.0.1', 0, 16, 'yes' as never)).toThrow(TypeError);
    expect(n.relayConnect(r, 12345, -1, '127.0.0.1', 80, 1000)).toBe(false); // no such connection
    expect(n.relayReset(r, 12345)).toBeNull();
    expect(n.relayRun(r)).toEqual([]);
    expect(n.relayCount(r)).toBe(0);
    n.relayDestroy(r);
    expect(() => n.relayRun(r)).toThrow(/destroyed/);
  });

  it('keepAwake never keeps a process alive, and validates its argument', async () => {
    expect(() => n.keepAwake(-1)).toThrow(RangeError);
    const { spawnSync } = await import('node:child_process');
    const addon = fileURLToPath(new URL('../build/Release/tapmesh_native.node', import.meta.url));
    // A 5 s window, but the idle handle is unref'd: the process must exit on its own
    // (spawnSync kills it after 4 s, which would leave status null).
    const script = `const n = require(${JSON.stringify(addon)}); n.keepAwake(5000000); console.log('done');`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 4000 });
    expect(r.stdout.trim()).toBe('done');
    expect(r.status).toBe(0);
    n.keepAwake(0);
  });

  it('while keepAwake spins, timers and readable fds are still served, and the spin makes no garbage', async () => {
    const { spawnSync } = await import('node:child_process');
    const addon = fileURLToPath(new URL('../build/Release/tapmesh_native.node', import.meta.url));
    // One second of spinning. A timer at 50 ms sends a datagram to a socket watched with
    // pollReadable; its callback, and a timer at 100 ms, must run long before the window ends
    // (the bounds leave slack for a loaded CI machine). GCs are counted over the same second: a
    // spin through the whole loop made ~12 scavenges a second (Node's check phase allocates on
    // every turn).
    const script = `
      const n = require(${JSON.stringify(addon)});
      const dgram = require('node:dgram');
      const { PerformanceObserver, performance } = require('node:perf_hooks');
      let gcs = 0;
      new PerformanceObserver((l) => { gcs += l.getEntries().length; }).observe({ entryTypes: ['gc'] });
      const u = n.udpOpen(0x7f000001, 0, 0, 0);
      const s = dgram.createSocket('udp4');
      const t0 = performance.now();
      const out = {};
      const poll = n.pollReadable(u.fd, () => { out.readMs ??= performance.now() - t0; poll.close(); n.close(u.fd); }, true);
      n.keepAwake(1000000);
      setTimeout(() => s.send('x', u.port, '127.0.0.1'), 50);
      setTimeout(() => { out.timerMs = performance.now() - t0; }, 100);
      setTimeout(() => { out.gcs = gcs; s.close(); n.keepAwake(0); setImmediate(() => console.log(JSON.stringify(out))); }, 1000);`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { readMs: number; timerMs: number; gcs: number };
    // Lower bounds with slack: libuv times timers from its cached loop time, taken before t0.
    expect(out.readMs).toBeGreaterThanOrEqual(45);
    expect(out.readMs).toBeLessThan(300); // a spin that kept the loop for its whole window: ~1000
    expect(out.timerMs).toBeGreaterThanOrEqual(95);
    expect(out.timerMs).toBeLessThan(350);
    expect(out.gcs).toBeLessThanOrEqual(1);
  });

  it('rejects slabs too small for slotSize*max and bad headroom', () => {
    expect(() => n.readFrames(0, slab, 256, 0, 5, new Int32Array(5))).toThrow(RangeError);
    expect(() => n.readFrames(0, slab, 256, 256, 4, lens)).toThrow(RangeError);
    expect(() => n.readFrames(0, slab, 0, 0, 4, lens)).toThrow(RangeError);
    expect(() => n.readFrames(0, slab, 256, 0, 4, new Int32Array(3))).toThrow(RangeError);
    expect(() => n.udpRecv(0, slab, 512, 0, 3, lens, addrs, ports)).toThrow(/exceeds the slab/);
    expect(() => n.udpRecv(0, slab, 256, 0, 4, lens, new Uint32Array(2), ports)).toThrow(RangeError);
    expect(() => n.udpRecv(0, slab, 256, 0, 4, lens, addrs, new Uint16Array(3))).toThrow(RangeError);
  });

  it('rejects wrong types', () => {
    const anyN = n as any;
    expect(() => anyN.readFrames(0, new Uint16Array(512), 256, 0, 4, lens)).toThrow(TypeError);
    expect(() => anyN.readFrames(0, slab, 256, 0, 4, new Float64Array(4))).toThrow(TypeError);
    expect(() => anyN.readFrames('3', slab, 256, 0, 4, lens)).toThrow(TypeError);
    expect(() => n.readFrames(1.5, slab, 256, 0, 4, lens)).toThrow(TypeError);
    expect(() => n.readFrames(-1, slab, 256, 0, 4, lens)).toThrow(RangeError);
    expect(() => n.readFrames(NaN, slab, 256, 0, 4, lens)).toThrow(TypeError);
    expect(() => anyN.udpRecv(0, slab, 256, 0, 4, lens, addrs, ports, new Int32Array(4))).toThrow(TypeError);
    expect(() => anyN.udpSend(0, slab, offs, lens, new Int32Array(4), ports, 0, 1)).toThrow(TypeError);
    expect(() => anyN.tapOpen('tmx', 1)).toThrow(TypeError);
    expect(() => anyN.pollReadable(0, 'nope')).toThrow(TypeError);
    expect(() => anyN.readFrames()).toThrow(TypeError);
  });

  it('rejects frames outside the buffer and ranges beyond the arrays', () => {
    const buf = Buffer.alloc(100);
    const o = new Int32Array([0, 90]);
    const l = new Int32Array([10, 11]);
    expect(() => n.writeFrames(0, buf, o, l, 0, 2)).toThrow(/frame 1/);
    expect(() => n.writeFrames(0, buf, o, l, 1, 2)).toThrow(RangeError);
    expect(() => n.writeFrames(0, buf, o, new Int32Array([-1, 1]), 0, 1)).toThrow(RangeError);
    expect(() => n.udpSend(0, buf, o, l, new Uint32Array(1), new Uint16Array(2), 0, 2)).toThrow(RangeError);
    expect(() => n.udpSendGso(0, buf, 50, 51, 0, 1, 10)).toThrow(RangeError);
    expect(() => n.udpSendGso(0, buf, 0, 10, 0, 1, 65536)).toThrow(RangeError);
    expect(() => n.udpSendGsoBatch(0, buf, o, new Int32Array([10, 10]), new Uint32Array(2), new Uint16Array(2),
      new Uint16Array(1), 0, 2)).toThrow(RangeError);
    expect(() => n.udpOpen(2 ** 32, 0, 0, 0)).toThrow(RangeError);
    expect(() => n.udpOpen(0, 65536, 0, 0)).toThrow(RangeError);
    // Fails before open(): nothing is created.
    expect(() => n.tapOpen('x'.repeat(16), false)).toThrow(RangeError);
  });

  it('throws errno errors with code, syscall and errno', () => {
    const bad = 1_000_000; // beyond any open descriptor
    const expectErrno = (f: () => unknown, code: string, syscall: string) => {
      let err: any;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(Error);
      expect(err.code).toBe(code);
      expect(err.syscall).toBe(syscall);
      expect(err.message).toMatch(new RegExp(`: ${syscall.replace(/[()]/g, '\\$&')}: ${code} \\(`));
    };
    expectErrno(() => n.close(bad), 'EBADF', 'close');
    expectErrno(() => n.readFrames(bad, slab, 256, 0, 4, lens), 'EBADF', 'read');
    expectErrno(() => n.writeFrames(bad, slab, offs, new Int32Array([10, 0, 0, 0]), 0, 1), 'EBADF', 'write');
    expectErrno(() => n.udpRecv(bad, slab, 256, 0, 4, lens, addrs, ports), 'EBADF', 'recvmmsg');
    expectErrno(() => n.tapSetOffload(bad, 0), 'EBADF', 'ioctl(TUNSETOFFLOAD)');
    expectErrno(() => n.udpSetGro(bad, true), 'EBADF', 'setsockopt(UDP_GRO)');
  });

  it('zero-size batches are no-ops', () => {
    expect(n.readFrames(1_000_000, slab, 256, 0, 0, lens)).toBe(0);
    expect(n.writeFrames(1_000_000, slab, offs, lens, 0, 0)).toBe(0);
  });

  it('converts addresses', () => {
    expect(parseIpv4('10.0.0.1')).toBe(0x0a000001);
    expect(ipv4ToString(0x7f000001)).toBe('127.0.0.1');
  });
});

describe.skipIf(!isRoot)('TAP (child in a netns)', () => {
  let r: any;
  beforeAll(async () => {
    r = await runScenario('tap');
  }, HOOK_TIMEOUT);

  it('opens a TAP with the kernel-expanded name; a second open of it is EBUSY', () => {
    expect(r.tap.name).toBe('tmt0');
    expect(r.tap.fd).toBeGreaterThan(2);
    expect(r.busy.err).toMatchObject({ code: 'EBUSY', syscall: 'ioctl(TUNSETIFF)' });
  });

  it('answers the kernel ARP + ICMP through readFrames/writeFrames (ping succeeds)', () => {
    expect(r.responder.arp.length).toBeGreaterThanOrEqual(1);
    expect(r.responder.arp[0]).toEqual({ len: 42, broadcast: true, srcIsTap: true, spa: '10.77.0.1' });
    expect(r.responder.icmp).toBe(3);
    expect(r.responder.headroomIntact).toBe(true);
    expect(r.responder.written).toBe(r.responder.arp.length + 3);
    expect(r.pingExit).toBe(0);
    expect(r.neigh).toMatch(/lladdr 02:00:00:00:00:02/);
  });

  it('reads a batch in order, honouring max and headroom', () => {
    expect(r.udpSent).toBe(5);
    const b = r.batchRead;
    expect(b.first).toBe(3);
    expect(b.firstLens).toEqual([1 + 42, 100 + 42, 500 + 42]);
    expect(b.firstOk).toEqual([true, true, true]);
    expect(b.headOk).toBe(true);
    expect(b.rest).toBe(2);
    expect(b.restLens).toEqual([1000 + 42, 1472 + 42]);
    expect(b.restOk).toEqual([true, true]);
    expect(b.empty).toBe(0);
  });

  it('writeFrames skips a failing frame, reports -errno in lens, and the kernel answers the rest', () => {
    expect(r.write.ret).toBe(3);
    expect(r.write.lens).toEqual([58, -22, 58]);
    expect(r.write.replies).toEqual([
      { id: 0x1234, seq: 1, toPeer: true },
      { id: 0x1234, seq: 2, toPeer: true },
    ]);
    expect(r.writeDown).toEqual({ ret: 1, lens: [-5] }); // EIO while the link is down
  });

  it('vnet header mode prefixes frames with virtio_net_hdr', () => {
    expect(r.badOffload.err).toMatchObject({ code: 'EINVAL', syscall: 'ioctl(TUNSETOFFLOAD)' });
    expect(r.vnet.count).toBe(1);
    expect(r.vnet.len).toBe(12 + 42 + 100);
    expect(r.vnet.ethertype).toBe(0x0800);
    expect(r.vnet.flags & 1).toBe(1); // VIRTIO_NET_HDR_F_NEEDS_CSUM: checksum left to us
  });
});

describe.skipIf(!isRoot)('UDP batches over loopback (child in a netns)', () => {
  let r: any;
  beforeAll(async () => {
    r = await runScenario('udp');
  }, HOOK_TIMEOUT);

  it('opens sockets with forced buffer sizes', () => {
    expect(r.a.port).toBeGreaterThan(0);
    expect(r.b.rcvbuf).toBeGreaterThanOrEqual(8 << 20); // above rmem_max: SO_RCVBUFFORCE worked
    expect(r.fixedPort.ok).toBe(40123);
  });

  it('receives lengths, senders, payloads; truncation gives -1', () => {
    expect(r.emptyRecv).toBe(0);
    expect(r.sent).toBe(5);
    expect(r.recv.got).toBe(5);
    expect(r.recv.lens).toEqual([10, 100, 240, -1, -1]);
    expect(r.recv.addrs).toEqual(Array(5).fill(0x7f000001));
    expect(r.recv.ports).toEqual(Array(5).fill(r.a.port));
    expect(r.recv.data).toEqual(Array(5).fill(true));
    expect(r.recv.headroom).toBe(true);
  });

  it('honours max', () => {
    expect(r.sent2).toBe(3);
    expect(r.maxOne).toBe(1);
    expect(r.maxRest).toBe(2);
  });

  it('skips a failing datagram and reports -errno in lens', () => {
    expect(r.skip.ret).toBe(3);
    expect(r.skip.lens).toEqual([20, -22, 30]);
    expect(r.skip.received).toEqual([20, 30]);
  });

  it('handles batches larger than UIO_MAXIOV in one call', () => {
    expect(r.bigSent).toBe(1500);
    expect(r.big).toEqual({ got: 1500, inOrder: true });
  });

  it('reports errno errors with codes', () => {
    expect(r.inUse.err).toMatchObject({ code: 'EADDRINUSE', syscall: 'bind', errno: -98 });
    expect(r.inUse.err.message).toBe('udpOpen: bind: EADDRINUSE (Address already in use)');
    expect(r.notAvail.err).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind' });
    expect(r.closedRecv.err).toMatchObject({ code: 'EBADF', syscall: 'recvmmsg' });
    expect(r.closedSend.err).toMatchObject({ code: 'EBADF', syscall: 'sendmmsg' });
  });
});

describe.skipIf(!isRoot)('pollReadable (child in a netns)', () => {
  let r: any;
  beforeAll(async () => {
    r = await runScenario('poll');
  }, HOOK_TIMEOUT);

  it('runs the callback in a callback scope (async id, microtasks drained)', () => {
    expect(r.asyncIds.length).toBe(2);
    expect(r.asyncIds[0]).toBeGreaterThan(1);
    expect(r.microtaskBeforeImmediate).toBe(true);
  });

  it('close() inside the callback is safe and stops further calls', () => {
    expect(r.callsAfterClose).toBe(2);
  });

  it('is level-triggered', () => {
    expect(r.levelTriggeredCalls).toBe(3);
  });

  it('routes callback exceptions to uncaughtException', () => {
    expect(r.uncaught).toBe('boom from poll cb');
  });

  it('refuses a second poll on the same fd with EEXIST and survives handle churn + GC', () => {
    expect(r.twice.err).toMatchObject({ code: 'EEXIST', syscall: 'uv_poll_init' });
    expect(r.afterChurn).toBe(1);
  });
});

describe.skipIf(!isRoot)('worker_threads (child in a netns)', () => {
  let r: any;
  beforeAll(async () => {
    r = await runScenario('worker');
  }, HOOK_TIMEOUT);

  it('works in three workers at once and on the main thread', () => {
    for (const w of [r.w1, r.w2, r.w3]) expect(w).toEqual({ code: 0, msgs: [{ sent: 10, got: 10, ok: true }] });
    expect(r.main).toEqual({ sent: 10, got: 10, ok: true });
  });

  it('tears down workers that still have an active poll', () => {
    expect(r.term).toEqual({ code: 1, msgs: ['ready'] }); // terminate()
    expect(r.exit).toEqual({ code: 0, msgs: ['ready'] }); // process.exit() in the worker
  });

  it('terminate() while a raw poll callback keeps firing ends the worker, never aborts the process', () => {
    expect(r.termBusy).toEqual(Array(5).fill({ code: 1, msgs: ['ready'] }));
  });
});

describe.skipIf(!isRoot)('UDP GSO / GRO (child in a netns)', () => {
  let r: any;
  beforeAll(async () => {
    r = await runScenario('gso');
  }, HOOK_TIMEOUT);

  it('udpSendGso is split into segSize datagrams for a plain receiver', () => {
    expect(r.sendPlain).toBe(9500);
    expect(r.plain.c).toBe(10);
    expect(r.plain.lens).toEqual([...Array(9).fill(1000), 500]);
    expect(r.plain.segs).toEqual(Array(10).fill(0));
    expect(r.plain.dataOk).toBe(true);
    expect(r.plain.from[0]).toBe(0x7f000001);
  });

  it('a GRO receiver gets one coalesced datagram with segs = segment size', () => {
    expect(r.sendGro).toBe(9500);
    expect(r.gro).toEqual({ c: 1, lens: [9500], segs: [1000], dataOk: true });
    expect(r.groSingle).toEqual({ c: 1, lens: [700], segs: [0] });
    expect(r.groSmallSlot).toEqual({ c: 1, lens: [-1], segs: [1000] });
  });

  it('udpSendGsoBatch mixes GSO and plain messages and skips failures', () => {
    expect(r.batch.ret).toBe(4);
    expect(r.batch.lens).toEqual([4000, 3000, 600, -22]);
    expect(r.batch.plain.lens).toEqual([1000, 1000, 1000, 1000, 3000]);
    expect(r.batch.gro).toEqual({ c: 1, lens: [600], segs: [100] });
  });

  it('kernel GSO limits are errors with codes', () => {
    expect(r.tooManySegs.err).toMatchObject({ code: 'EINVAL', syscall: 'sendmsg(UDP_SEGMENT)' });
    expect(r.tooBig.err).toMatchObject({ code: 'EMSGSIZE' });
    expect(r.segOverMtu.err).toMatchObject({ code: 'EMSGSIZE' });
  });

  it('GSO out of a device without checksum offload: segmented (>= 6.11) or EIO (older)', () => {
    if (r.viaTap.err) {
      expect(r.viaTap.err.code).toBe('EIO');
    } else {
      expect(r.viaTap.ok).toBe(4000);
      expect(r.viaTapFrames).toEqual(Array(4).fill(1000 + 42));
    }
  });
});
