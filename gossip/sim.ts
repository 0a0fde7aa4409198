// Deterministic network simulator: many nodes in one process, virtual time.
//
// One event queue (binary heap ordered by time, then insertion) drives every timer and every
// delivery; one seeded PRNG decides loss, jitter and each node's own randomness, so a seed
// replays exactly. The network model: per-packet latency + uniform jitter, random loss (global
// or per link), partitions (node groups that cannot talk across), crashed nodes (neither send,
// receive nor run timers) and slow nodes (everything they receive is handled X ms late).
// Streams (the reliable exchange) never lose data: each loss draw adds a 200 ms retransmit
// delay instead; an unreachable peer (crashed host, partition) times out, a stopped process on
// a live host refuses at once.

import { SeededRandom, type Clock, type RequestCallback, type Transport, type TransportHandlers } from './transport.js';

interface Ev {
  at: number;
  seq: number;
  fn: (() => void) | null;
}

class EventQueue {
  private heap: Ev[] = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(at: number, fn: () => void): Ev {
    const ev: Ev = { at, seq: this.seq++, fn };
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
    return ev;
  }

  peek(): Ev | undefined {
    return this.heap[0];
  }

  pop(): Ev | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l], h[m])) m = l;
        if (r < h.length && this.less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }

  private less(a: Ev, b: Ev): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
}

export interface SimOptions {
  seed?: number;
  /** One-way delay in ms (default 1). */
  latency?: number;
  /** Extra uniform delay in [0, jitter) ms (default 1). */
  jitter?: number;
  /** Packet loss probability on every link (default 0). */
  loss?: number;
}

export interface SimCounters {
  packetsSent: number;
  packetsDelivered: number;
  packetsLost: number;
  bytesSent: number;
  requests: number;
}

export class SimNetwork {
  readonly random: SeededRandom;
  latency: number;
  jitter: number;
  loss: number;
  readonly counters: SimCounters = { packetsSent: 0, packetsDelivered: 0, packetsLost: 0, bytesSent: 0, requests: 0 };
  private t = 0;
  private readonly queue = new EventQueue();
  private readonly nodes = new Map<string, SimTransport>();
  private readonly linkLoss = new Map<string, number>();
  private group: Map<string, number> | undefined;
  private readonly crashed = new Set<string>();
  private readonly slowBy = new Map<string, number>();

  constructor(opts: SimOptions = {}) {
    this.random = new SeededRandom(opts.seed ?? 1);
    this.latency = opts.latency ?? 1;
    this.jitter = opts.jitter ?? 1;
    this.loss = opts.loss ?? 0;
  }

  now(): number {
    return this.t;
  }

  /** A transport for a node at addr (create once per node). */
  transport(addr: string): SimTransport {
    if (this.nodes.has(addr)) throw new Error(`address ${addr} already in use`);
    const tr = new SimTransport(this, addr, this.random.u32());
    this.nodes.set(addr, tr);
    return tr;
  }

  schedule(delay: number, fn: () => void): () => void {
    const ev = this.queue.push(this.t + Math.max(0, delay), fn);
    return () => {
      ev.fn = null;
    };
  }

  /** Advance virtual time by ms, running everything due. */
  run(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const ev = this.queue.peek();
      if (!ev || ev.at > end) break;
      this.queue.pop();
      this.t = ev.at;
      const fn = ev.fn;
      if (fn) fn();
    }
    this.t = end;
  }

  /** Run in steps until pred() holds (true) or maxMs passed (false). */
  runUntil(pred: () => boolean, maxMs: number, stepMs = 100): boolean {
    const end = this.t + maxMs;
    while (this.t < end) {
      if (pred()) return true;
      this.run(Math.min(stepMs, end - this.t));
    }
    return pred();
  }

  // ---- faults ----------------------------------------------------------------------------------

  /** Split the network: nodes in different groups cannot reach each other. Unlisted nodes: group -1. */
  partition(groups: string[][]): void {
    this.group = new Map();
    groups.forEach((g, i) => g.forEach((a) => this.group?.set(a, i)));
  }

  heal(): void {
    this.group = undefined;
  }

  crash(addr: string): void {
    this.crashed.add(addr);
  }

  isCrashed(addr: string): boolean {
    return this.crashed.has(addr);
  }

  /** Everything addr receives is handled ms later (0 = normal). */
  setSlow(addr: string, ms: number): void {
    if (ms > 0) this.slowBy.set(addr, ms);
    else this.slowBy.delete(addr);
  }

  setLinkLoss(a: string, b: string, p: number): void {
    this.linkLoss.set(a < b ? `${a}|${b}` : `${b}|${a}`, p);
  }

  // ---- delivery --------------------------------------------------------------------------------

  private reachable(from: string, to: string): boolean {
    if (this.crashed.has(from) || this.crashed.has(to)) return false;
    if (!this.group) return true;
    return (this.group.get(from) ?? -1) === (this.group.get(to) ?? -1);
  }

  private lossOf(from: string, to: string): number {
    if (this.linkLoss.size === 0) return this.loss;
    return this.linkLoss.get(from < to ? `${from}|${to}` : `${to}|${from}`) ?? this.loss;
  }

  private delay(to: string): number {
    return this.latency + this.random.next() * this.jitter + (this.slowBy.get(to) ?? 0);
  }

  sendPacket(from: string, to: string, data: Uint8Array): void {
    this.counters.packetsSent++;
    this.counters.bytesSent += data.length;
    const dst = this.nodes.get(to);
    if (!dst || !this.reachable(from, to) || this.random.next() < this.lossOf(from, to)) {
      this.counters.packetsLost++;
      return;
    }
    this.schedule(this.delay(to), () => {
      if (this.crashed.has(to)) return;
      this.counters.packetsDelivered++;
      dst.deliverPacket(from, data);
    });
  }

  /** Reliable-stream latency: each loss draw costs a retransmit timeout. */
  private streamDelay(from: string, to: string): number {
    let d = this.delay(to);
    const p = this.lossOf(from, to);
    for (let i = 0; i < 5 && this.random.next() < p; i++) d += 200;
    return d;
  }

  request(from: string, to: string, data: Uint8Array, timeoutMs: number, cb: RequestCallback): void {
    this.counters.requests++;
    this.counters.bytesSent += data.length;
    let done = false;
    const finish = (err: Error | undefined, resp?: Uint8Array): void => {
      if (done || this.crashed.has(from)) return;
      done = true;
      cancel();
      cb(err, resp);
    };
    const cancel = this.schedule(timeoutMs, () => finish(new Error(`request to ${to} timed out`)));
    const dst = this.nodes.get(to);
    if (!dst || !this.reachable(from, to)) return; // host down or partitioned: the timeout fires
    if (!dst.listening) {
      this.schedule(2 * this.latency, () => finish(new Error(`connection refused by ${to}`)));
      return;
    }
    this.schedule(this.streamDelay(from, to), () => {
      if (!this.reachable(from, to) || !dst.listening) return;
      dst.deliverRequest(from, data, (resp) => {
        if (!this.reachable(from, to)) return;
        if (resp) this.counters.bytesSent += resp.length;
        this.schedule(this.streamDelay(to, from), () => finish(resp ? undefined : new Error('stream closed'), resp));
      });
    });
  }
}

export class SimTransport implements Transport {
  readonly simulated = true;
  readonly random: SeededRandom;
  readonly clock: Clock;
  private handlers: TransportHandlers | undefined;

  constructor(
    private readonly net: SimNetwork,
    readonly addr: string,
    seed: number,
  ) {
    this.random = new SeededRandom(seed);
    this.clock = {
      now: () => net.now(),
      // A crashed node's timers never fire again.
      setTimer: (ms, fn) => net.schedule(ms, () => {
        if (!net.isCrashed(addr)) fn();
      }),
    };
  }

  get listening(): boolean {
    return this.handlers !== undefined;
  }

  start(h: TransportHandlers): Promise<void> {
    this.handlers = h;
    return Promise.resolve();
  }

  localAddr(): string {
    return this.addr;
  }

  sendPacket(to: string, data: Uint8Array): void {
    if (this.handlers) this.net.sendPacket(this.addr, to, data);
  }

  request(to: string, data: Uint8Array, timeoutMs: number, cb: RequestCallback): void {
    this.net.request(this.addr, to, data, timeoutMs, cb);
  }

  deliverPacket(from: string, data: Uint8Array): void {
    this.handlers?.onPacket(from, data);
  }

  deliverRequest(from: string, data: Uint8Array, reply: (r: Uint8Array | undefined) => void): void {
    if (this.handlers) this.handlers.onRequest(from, data, reply);
  }

  stop(): Promise<void> {
    this.handlers = undefined;
    return Promise.resolve();
  }
}
