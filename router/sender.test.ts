// The GSO fall-back: only the kernel's GSO refusals, only for that destination, retried later.
import { describe, expect, it } from 'vitest';
import { D } from './counters.js';
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
  recvBatch(): number {
    return 0;
  }
  sendBatch(_b: Buffer, _o: Int32Array, lens: Int32Array, addrs: Uint32Array, _p: Uint16Array, segs: Uint16Array, start: number, count: number): number {
    for (let i = start; i < start + count; i++) {
      if (segs[i] !== 0 && addrs[i] === this.refuseTo) lens[i] = -this.errno;
      else this.sent.push({ to: addrs[i], seg: segs[i], len: lens[i] });
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
