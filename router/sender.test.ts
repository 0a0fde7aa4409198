// The GSO fall-back: only the kernel's GSO refusals, only for that destination, retried later;
// plain datagrams joined into GSO runs.
import { describe, expect, it } from 'vitest';
import { C, D } from './counters.js';
import { MemoryTap } from './memory.js';
import { Network } from './network.js';
import type { DatagramPort } from './ports.js';
import { GSO_RETRY_MS, Sender } from './sender.js';

const B = 0xc0000202;
const C2 = 0xc0000203;

/** A GSO-capable port that refuses runs to `refuseTo` with `errno`, and logs what it sent. */
class RefusingPort implements DatagramPort {
  readonly port = 40000;
  readonly gso = true;
  readonly gro = false;
  refuseTo = -1;
  errno = 5;
  readonly sent: { to: number; seg: number; len: number }[] = [];
  /** The bytes of each entry sent, in order. */
  readonly bytes: Buffer[] = [];
  recvBatch(): number {
    return 0;
  }
  sendBatch(_b: Buffer, _o: Int32Array, lens: Int32Array, addrs: Uint32Array, _p: Uint16Array, segs: Uint16Array, start: number, count: number): number {
    for (let i = start; i < start + count; i++) {
      if (segs[i] !== 0 && addrs[i] === this.refuseTo) lens[i] = -this.errno;
      else {
        this.sent.push({ to: addrs[i], seg: segs[i], len: lens[i] });
        this.bytes.push(Buffer.from(_b.subarray(_o[i], _o[i] + lens[i])));
      }
    }
    return count;
  }
  onReadable(): void {}
  close(): void {}
}

function setup() {
  let now = 1_000_000;
  const port = new RefusingPort();
  const tx = new Sender([port], 64, 4789, () => now);
  const net = new Network(4096, 1450, new MemoryTap(true), 16);
  const q = tx.queues[0];
  /** Queue a run of 10 datagrams of 1000 bytes to vtep and send it. */
  const run = (vtep: number) => {
    tx.queueRun(net, q, net.segStart, 10, 1000, 1000, vtep | 0);
    tx.flush(net);
  };
  return { port, tx, net, run, advance: (ms: number) => { now += ms; } };
}

describe('GSO fall-back', () => {
  it('a refused run turns GSO off for that destination only, and is retried after a while', () => {
    const { port, net, run, advance } = setup();
    port.refuseTo = B;
    run(B);
    expect(net.drops[D.udpTxError]).toBe(10);
    port.sent.length = 0;
    run(B);
    run(C2);
    expect(port.sent.filter((s) => s.to === B).map((s) => s.seg)).toEqual(Array(10).fill(0)); // plain
    expect(port.sent.filter((s) => s.to === C2)).toEqual([{ to: C2, seg: 1000, len: 10_000 }]); // still GSO
    port.refuseTo = -1; // the route got its offload back
    advance(GSO_RETRY_MS + 1000);
    port.sent.length = 0;
    run(B);
    expect(port.sent).toEqual([{ to: B, seg: 1000, len: 10_000 }]);
  });

  it('EINVAL and EMSGSIZE count as refusals; other errors (unreachable) do not turn GSO off', () => {
    for (const [errno, refusal] of [[22, true], [90, true], [113, false], [1, false]] as const) {
      const { port, run } = setup();
      port.refuseTo = B;
      port.errno = errno;
      run(B);
      port.refuseTo = -1;
      port.sent.length = 0;
      run(B);
      expect(port.sent.length).toBe(refusal ? 10 : 1);
    }
  });
});

describe('plain datagrams joined into GSO runs', () => {
  /** Datagram i: `len` bytes of a pattern of i, staged in receive slot i % 16 (as TAP reads place them). */
  function stage(net: Network, i: number, len: number): number {
    const off = (i % 16) * net.slot + 200;
    for (let b = 0; b < len; b++) net.rxSlab[off + b] = (i * 7 + b) & 255;
    return off;
  }

  it('equal-size datagrams for one VTEP go as one run, in order, byte for byte; a shorter one ends it', () => {
    const { port, tx, net } = setup();
    const q = tx.queues[0];
    const lens = [1000, 1000, 1000, 600, 1000, 1000];
    const want = lens.map((len, i) => {
      const off = stage(net, i, len);
      const copy = Buffer.from(net.rxSlab.subarray(off, off + len));
      tx.queueDatagram(net, q, off, len, B);
      return copy;
    });
    tx.flush(net);
    expect(port.sent).toEqual([{ to: B, seg: 1000, len: 3600 }, { to: B, seg: 1000, len: 2000 }]);
    expect(Buffer.concat(port.bytes).equals(Buffer.concat(want))).toBe(true);
    expect(net.counters[C.gsoJoined]).toBe(4);
  });

  it('keeps apart datagrams for other VTEPs, longer ones, runs past 64, and destinations that refused GSO', () => {
    const { port, tx, net, advance } = setup();
    const q = tx.queues[0];
    const send = (vtep: number, len: number, i: number) => tx.queueDatagram(net, q, stage(net, i, len), len, vtep | 0);
    send(B, 500, 0);
    send(C2, 500, 1); // another VTEP
    send(C2, 800, 2); // longer than the run's size
    for (let i = 0; i < 70; i++) send(B, 100, 3 + i); // 64 at most per run
    tx.flush(net);
    expect(port.sent.map((s) => [s.to, s.seg, s.len])).toEqual([[B, 0, 500], [C2, 0, 500], [C2, 0, 800], [B, 100, 6400], [B, 100, 600]]);
    port.sent.length = 0;
    port.refuseTo = B;
    send(B, 300, 0);
    send(B, 300, 1);
    tx.flush(net); // refused: GSO off for B
    port.refuseTo = -1;
    port.sent.length = 0;
    send(B, 300, 0);
    send(B, 300, 1);
    tx.flush(net);
    expect(port.sent.map((s) => s.seg)).toEqual([0, 0]);
    advance(GSO_RETRY_MS + 1000);
  });
});
