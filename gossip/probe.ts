// SWIM failure detector with Lifeguard's local-health refinements.
//
// Every probe interval (x local health multiplier) one member, in shuffled round-robin order,
// gets a ping. No ack within the probe timeout (x multiplier): k random live members are asked
// to ping it for us (and to send a nack if they also get no answer, after 80 % of their own
// probe timeout), and optionally a ping goes over the reliable channel too. No ack by the end
// of the (scaled) interval: the member becomes suspect. Awareness: success -1; failure +1, or
// + (expected nacks - nacks received) when relays were asked: if the relays could not answer
// us either, the problem is more likely ours than the target's.
// When the target is already suspect, the ping carries that suspicion so it can refute at
// once (Lifeguard "buddy system").

import type { Message, MessageOf } from './codec.js';
import type { GossipConfig } from './config.js';
import type { Awareness } from './lifeguard.js';
import type { Member, Membership } from './membership.js';
import type { Clock } from './transport.js';

interface AckHandler {
  ack(): void;
  nack(): void;
}

export interface ProberDeps {
  config: GossipConfig;
  clock: Clock;
  awareness: Awareness;
  membership: Membership;
  /** Send messages to addr as one datagram, with broadcasts piggy-backed. */
  send(addr: string, msgs: Message[]): void;
  /** Request over the reliable channel. */
  request(addr: string, m: Message, timeoutMs: number, cb: (err: Error | undefined, reply?: Message) => void): void;
  /** A ping for another node id arrived (address reuse); counted as unexpected. */
  onUnexpected(): void;
}

export class Prober {
  private seq = 0;
  private readonly handlers = new Map<number, AckHandler>();
  private cancelTick: (() => void) | undefined;
  private stopped = true;
  /** Probes started, probes that needed the indirect stage, probes that failed. */
  probes = 0;
  indirect = 0;
  failures = 0;

  constructor(private readonly d: ProberDeps) {}

  private get selfId(): string {
    return this.d.membership.self.id;
  }

  start(initialDelay: number): void {
    this.stopped = false;
    this.cancelTick = this.d.clock.setTimer(initialDelay, () => this.tick());
  }

  stop(): void {
    this.stopped = true;
    this.cancelTick?.();
    this.handlers.clear();
  }

  private tick(): void {
    if (this.stopped) return;
    this.cancelTick = this.d.clock.setTimer(this.d.awareness.scale(this.d.config.probeInterval), () => this.tick());
    const m = this.d.membership.nextProbeTarget();
    if (m) this.probe(m);
  }

  probe(m: Member): void {
    const c = this.d.config;
    const clock = this.d.clock;
    const seq = ++this.seq;
    const inc = m.inc;
    const timeout = this.d.awareness.scale(c.probeTimeout);
    const deadline = this.d.awareness.scale(c.probeInterval);
    let acked = false;
    let nacks = 0;
    let expectedNacks = 0;
    const timers: Array<() => void> = [];
    const finish = (): void => {
      this.handlers.delete(seq);
      for (const t of timers) t();
    };
    this.probes++;
    this.handlers.set(seq, {
      ack: () => {
        if (acked) return;
        acked = true;
        this.d.awareness.apply(-1);
        finish();
      },
      nack: () => {
        nacks++;
      },
    });
    const ping: Message[] = [{ t: 'ping', seq, target: m.id, from: this.selfId }];
    if (m.state === 'suspect') ping.push({ t: 'suspect', inc: m.inc, node: m.id, from: this.selfId });
    this.d.send(m.addr, ping);

    timers.push(
      clock.setTimer(timeout, () => {
        if (acked || this.stopped) return;
        this.indirect++;
        const relays = this.d.membership.randomMembers(c.indirectChecks, (x) => x.state === 'alive' && x !== m);
        for (const r of relays) {
          this.d.send(r.addr, [{ t: 'indirect', seq, target: m.id, targetAddr: m.addr, nack: true, from: this.selfId }]);
          expectedNacks++;
        }
        if (c.tcpPing) {
          this.d.request(m.addr, { t: 'ping', seq, target: m.id, from: this.selfId }, Math.max(1, deadline - timeout), (err, reply) => {
            if (!err && reply?.t === 'ack' && reply.seq === seq) this.handlers.get(seq)?.ack();
          });
        }
      }),
    );
    timers.push(
      clock.setTimer(deadline, () => {
        if (acked || this.stopped) return;
        finish();
        this.failures++;
        this.d.awareness.apply(expectedNacks > 0 ? expectedNacks - nacks : 1);
        this.d.membership.suspectNode({ inc, node: m.id, from: this.selfId });
      }),
    );
  }

  onPing(from: string, p: MessageOf<'ping'>): void {
    if (p.target !== this.selfId) return this.d.onUnexpected();
    this.d.send(from, [{ t: 'ack', seq: p.seq, from: this.selfId }]);
  }

  /** Ping over the reliable channel (TCP fallback): answer on the same exchange. */
  onStreamPing(p: MessageOf<'ping'>, reply: (m: Message) => void): void {
    if (p.target !== this.selfId) reply({ t: 'error', message: 'ping for another node' });
    else reply({ t: 'ack', seq: p.seq, from: this.selfId });
  }

  /** Probe `target` on behalf of `from`; forward its ack, or nack when it stays silent. */
  onIndirect(from: string, r: MessageOf<'indirect'>): void {
    const c = this.d.config;
    const seq = ++this.seq;
    let done = false;
    const timers: Array<() => void> = [];
    const finish = (): void => {
      done = true;
      this.handlers.delete(seq);
      for (const t of timers) t();
    };
    this.handlers.set(seq, {
      ack: () => {
        if (done) return;
        finish();
        this.d.send(from, [{ t: 'ack', seq: r.seq, from: this.selfId }]);
      },
      nack: () => {},
    });
    this.d.send(r.targetAddr, [{ t: 'ping', seq, target: r.target, from: this.selfId }]);
    if (r.nack) {
      timers.push(
        this.d.clock.setTimer(Math.floor(c.probeTimeout * 0.8), () => {
          if (!done) this.d.send(from, [{ t: 'nack', seq: r.seq, from: this.selfId }]);
        }),
      );
    }
    // A late ack is still forwarded until the originator's own deadline has surely passed.
    timers.push(this.d.clock.setTimer(c.probeInterval * c.awarenessMaxMultiplier, finish));
  }

  onAck(a: MessageOf<'ack'>): void {
    this.handlers.get(a.seq)?.ack();
  }

  onNack(n: MessageOf<'nack'>): void {
    this.handlers.get(n.seq)?.nack();
  }
}
