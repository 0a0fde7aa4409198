// The layer between the protocol and a Transport: encode + seal on the way out, open + decode
// on the way in, and the counters (traffic, drops by reason). Nothing above this file sees
// ciphertext or bytes that failed to authenticate or parse.

import { MalformedError } from './buf.js';
import { decodeMessage, decodePacket, encodeCompound, encodeMessage, type Message } from './codec.js';
import { AuthError, Channel, SEAL_OVERHEAD, type ChannelCode, type Keyring } from './security.js';
import { MAX_PACKET, type Transport } from './transport.js';

export interface DropCounters {
  /** Failed to parse (truncated, unknown type, bad field). */
  malformed: number;
  /** No installed key opens it (wrong cluster key, tampered, wrong channel). */
  auth: number;
  /** Authentic but not for us or not expected here (ping for another node id, ...). */
  unexpected: number;
  /** A protocol handler threw (a bug); the message was dropped. */
  error: number;
  /** A broadcast too large for any datagram (never queued; push-pull still carries it). */
  oversize: number;
}

export interface GossipStats {
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
  /** Messages, counting each part of a compound packet. */
  messagesIn: number;
  messagesOut: number;
  requestsIn: number;
  requestsOut: number;
  dropped: DropCounters;
}

export function emptyStats(): GossipStats {
  return {
    packetsIn: 0,
    packetsOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    messagesIn: 0,
    messagesOut: 0,
    requestsIn: 0,
    requestsOut: 0,
    dropped: { malformed: 0, auth: 0, unexpected: 0, error: 0, oversize: 0 },
  };
}

export interface WireHandlers {
  message(from: string, m: Message): void;
  request(from: string, m: Message, reply: (m: Message) => void): void;
}

export class Wire {
  readonly stats = emptyStats();
  /** Plaintext bytes one datagram can carry. */
  readonly budget: number;
  private handlers: WireHandlers | undefined;

  constructor(
    private readonly transport: Transport,
    private readonly keyring: Keyring | null,
  ) {
    this.budget = MAX_PACKET - (keyring ? SEAL_OVERHEAD : 0);
  }

  setHandlers(h: WireHandlers): void {
    this.handlers = h;
  }

  private seal(plain: Uint8Array, ch: ChannelCode): Uint8Array {
    return this.keyring ? this.keyring.seal(plain, ch) : plain;
  }

  private open(data: Uint8Array, ch: ChannelCode): Uint8Array {
    return this.keyring ? this.keyring.open(data, ch) : data;
  }

  /** Send already-encoded messages as one datagram (a compound when more than one). */
  sendParts(to: string, parts: Uint8Array[]): void {
    if (parts.length === 0) return;
    const data = this.seal(encodeCompound(parts), Channel.packet);
    this.stats.packetsOut++;
    this.stats.messagesOut += parts.length;
    this.stats.bytesOut += data.length;
    this.transport.sendPacket(to, data);
  }

  /** Classify a receive-side failure; rethrows what is not a counted drop. */
  private fail(e: unknown): void {
    if (e instanceof AuthError) this.stats.dropped.auth++;
    else if (e instanceof MalformedError) this.stats.dropped.malformed++;
    else {
      this.stats.dropped.error++;
      if (this.transport.simulated) throw e;
    }
  }

  onPacket(from: string, data: Uint8Array): void {
    this.stats.packetsIn++;
    this.stats.bytesIn += data.length;
    let msgs: Message[];
    try {
      msgs = decodePacket(this.open(data, Channel.packet), () => this.stats.dropped.malformed++);
    } catch (e) {
      this.fail(e);
      return;
    }
    for (const m of msgs) {
      this.stats.messagesIn++;
      try {
        this.handlers?.message(from, m);
      } catch (e) {
        this.fail(e);
      }
    }
  }

  /** One request/response over the reliable channel; cb gets the decoded answer or an error. */
  request(to: string, m: Message, timeoutMs: number, cb: (err: Error | undefined, reply?: Message) => void): void {
    const data = this.seal(encodeMessage(m), Channel.request);
    this.stats.requestsOut++;
    this.stats.bytesOut += data.length;
    this.transport.request(to, data, timeoutMs, (err, resp) => {
      if (err || !resp) return cb(err ?? new Error('empty response'));
      this.stats.bytesIn += resp.length;
      let reply: Message;
      try {
        reply = decodeMessage(this.open(resp, Channel.response));
      } catch (e) {
        if (e instanceof AuthError) this.stats.dropped.auth++;
        else if (e instanceof MalformedError) this.stats.dropped.malformed++;
        else throw e;
        return cb(e as Error);
      }
      if (reply.t === 'error') return cb(new Error(`remote error: ${reply.message}`));
      cb(undefined, reply);
    });
  }

  onRequest(from: string, data: Uint8Array, reply: (resp: Uint8Array | undefined) => void): void {
    this.stats.requestsIn++;
    this.stats.bytesIn += data.length;
    let m: Message;
    try {
      m = decodeMessage(this.open(data, Channel.request));
    } catch (e) {
      reply(undefined);
      this.fail(e);
      return;
    }
    let answered = false;
    const answer = (r: Message): void => {
      if (answered) return;
      answered = true;
      const out = this.seal(encodeMessage(r), Channel.response);
      this.stats.bytesOut += out.length;
      reply(out);
    };
    try {
      if (!this.handlers) throw new Error('not started');
      this.handlers.request(from, m, answer);
    } catch (e) {
      answer({ t: 'error', message: (e as Error).message });
      this.fail(e);
    }
  }
}
