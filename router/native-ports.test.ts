// The UDP receive buffer knob of router/native-ports.ts on real sockets (loopback only): the
// size reaches the kernel past net.core.rmem_max (SO_RCVBUFFORCE, root), and a receiver that
// stalls while a stream arrives loses nothing with the default buffer but does with a small one.
import { describe, expect, it } from 'vitest';
import { DatagramBatch } from './ports.js';
import { UDP_RCVBUF_BYTES, UdpPort } from './native-ports.js';
import { readFileSync } from 'node:fs';

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true') throw new Error('router/native-ports.test.ts must run as root in CI (SO_RCVBUFFORCE)');
if (!isRoot) console.warn('SKIPPED router/native-ports.test.ts: needs root (SO_RCVBUFFORCE)');

const LO = 0x7f000001;

/** Send `count` 1400-byte datagrams from a fresh socket to rx's port without reading; then drain rx. */
function stallAndDrain(rx: UdpPort, count: number): number {
  const tx = new UdpPort(LO, 0, false, false);
  const buf = Buffer.alloc(1400 * 64);
  const offs = new Int32Array(64).map((_, i) => i * 1400);
  const lens = new Int32Array(64).fill(1400);
  const addrs = new Uint32Array(64).fill(LO);
  const ports = new Uint16Array(64).fill(rx.port);
  const segs = new Uint16Array(64);
  for (let sent = 0; sent < count; sent += 64) {
    const nb = Math.min(64, count - sent);
    lens.fill(1400);
    tx.sendBatch(buf, offs, lens, addrs, ports, segs, 0, nb);
  }
  tx.close();
  const slab = Buffer.alloc(2048 * 64);
  const out = new DatagramBatch(64);
  let got = 0;
  for (;;) {
    const n = rx.recvBatch(slab, 2048, 0, 64, out);
    if (n === 0) break;
    got += n;
  }
  return got;
}

describe.skipIf(!isRoot)('UdpPort receive buffer', () => {
  it('asks the kernel for UDP_RCVBUF_BYTES on a bound receiver, past rmem_max', () => {
    const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
    const rx = new UdpPort(LO, 0, false, false, 1 << 20, UDP_RCVBUF_BYTES);
    try {
      expect(rx.rcvbuf).toBeGreaterThanOrEqual(2 * UDP_RCVBUF_BYTES);
      expect(rx.rcvbuf).toBeGreaterThan(2 * rmemMax);
    } finally {
      rx.close();
    }
  });

  it('a stalled receiver keeps a 10 000-datagram burst with the default buffer, and loses with 256 KB', () => {
    const big = new UdpPort(LO, 0, false, false, 1 << 20, UDP_RCVBUF_BYTES);
    const small = new UdpPort(LO, 0, false, false, 1 << 20, 256 << 10);
    try {
      expect(stallAndDrain(big, 10000)).toBe(10000);
      expect(stallAndDrain(small, 10000)).toBeLessThan(10000);
    } finally {
      big.close();
      small.close();
    }
  });
});
