// What the gossip protocol needs from the outside world, and nothing more: datagrams, one
// request/response exchange over a reliable stream, a clock with timers, and randomness.
//
// Everything is callback based on purpose. The simulator (sim.ts) runs every node in one
// synchronous virtual-time loop; promise continuations would run out of order with respect to
// that loop, so no protocol decision may sit behind an `await`. Promises appear only at the
// public edge (GossipNode.join(), Ipam.allocate(), ...).
//
// Addresses are strings "host:port" ("[v6]:port" for IPv6); see formatAddr / parseAddr.

/** Largest datagram the protocol sends (memberlist's UDPBufferSize). Includes sealing overhead. */
export const MAX_PACKET = 1400;

/** Largest blob accepted on a reliable exchange (push-pull state is the big one). */
export const MAX_STREAM = 20 * 1024 * 1024;

export interface Clock {
  /** Milliseconds on a monotonic clock (virtual in the simulator). */
  now(): number;
  /** Run fn once after ms milliseconds; the returned function cancels it (idempotent). */
  setTimer(ms: number, fn: () => void): () => void;
}

export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Lowercase hex string of `bytes` random bytes (node ids, claim ids). */
  hex(bytes: number): string;
}

export interface TransportHandlers {
  /** A datagram arrived. `from` is the sender's address as seen by the transport. */
  onPacket(from: string, data: Uint8Array): void;
  /**
   * A reliable request arrived. Call reply exactly once with the response blob; calling
   * reply(undefined) closes the exchange without an answer (the requester sees an error).
   */
  onRequest(from: string, data: Uint8Array, reply: (response: Uint8Array | undefined) => void): void;
}

export type RequestCallback = (err: Error | undefined, response?: Uint8Array) => void;

export interface Transport {
  readonly clock: Clock;
  readonly random: Random;
  /** True only for the simulator: the one place an unencrypted GossipNode is allowed. */
  readonly simulated: boolean;
  /** Start receiving. Resolves once both the datagram and the stream side are listening. */
  start(handlers: TransportHandlers): Promise<void>;
  /** The address other nodes reach this node at (advertise address). Valid after start(). */
  localAddr(): string;
  /** Fire and forget; never throws for network reasons (loss is part of the model). */
  sendPacket(to: string, data: Uint8Array): void;
  /**
   * Send one blob over a reliable stream and receive one blob back. cb runs exactly once:
   * with the response, or with an error on refusal, reset or after timeoutMs.
   */
  request(to: string, data: Uint8Array, timeoutMs: number, cb: RequestCallback): void;
  /** Stop receiving and release sockets. Pending requests fail. */
  stop(): Promise<void>;
}

export function formatAddr(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export function parseAddr(addr: string, defaultPort = 7946): { host: string; port: number } {
  let host = addr;
  let portStr: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(addr);
  if (v6) {
    host = v6[1];
    portStr = v6[2];
  } else {
    const i = addr.lastIndexOf(':');
    if (i >= 0 && addr.indexOf(':') === i) {
      host = addr.slice(0, i);
      portStr = addr.slice(i + 1);
    }
  }
  const port = portStr === undefined ? defaultPort : Number(portStr);
  if (!host || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid address: ${addr}`);
  return { host, port };
}

/** Math.random-free PRNG (sfc32) for deterministic runs; also the Random of the simulator. */
export class SeededRandom implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // splitmix32 spreads the seed over all four state words.
    let x = seed >>> 0;
    const mix = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    return this.u32() / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  hex(bytes: number): string {
    let s = '';
    for (let i = 0; i < bytes; i++) s += (this.u32() & 255).toString(16).padStart(2, '0');
    return s;
  }
}
