// The VIP connection table: which flows exist and how long each may live. An entry is keyed by
// the client's 5-tuple (proto, client IP:port, VIP:port) and holds the chosen backend (IP, MAC,
// port, service slot, backend slot); replies find it by the reply tuple (proto, backend IP:port,
// client IP:port). Storage, indexes and timed lists are balancer/conn-store.ts's; this file is
// the lifetime rules, TCP's state following and hairpin source ports. Allocation-free.
//
// Lifetimes (times are caller-supplied milliseconds, e.g. performance.now() once per batch):
// - TCP half-open (client SYN seen, nothing back yet): expires after halfOpenMs; at most
//   maxHalfOpen of them, the oldest evicted first when a new SYN needs room (a SYN flood only
//   ever displaces other half-open entries, never an established one).
// - TCP established: no idle timer at all; it lives while both ends keep it. One FIN is a
//   half-close: still no timer. Both FINs: the entry lingers finLingerMs for the last ACKs and
//   retransmitted FINs, then goes. An RST ends it at once (after that packet is forwarded). A
//   new SYN on a closing entry (port reuse) ends it so the flow is scheduled afresh; a SYN-ACK
//   from the backend on a closing entry belongs to another connection (the client reached the
//   backend's own address from the same port): the entry ends and that packet is not translated.
// - UDP: expires udpIdleMs after its last packet; at most maxUdp, oldest-idle evicted first.
// - At maxEntries, after reclaiming what has expired and the oldest half-open entry, a new
//   flow is refused (the stage answers RST / ICMP port unreachable, counted): established
//   connections are never evicted to make room.
// Connection counts per backend (IPVS activeconns/inactconns) are reported to a listener:
// established TCP and UDP flows are active, half-open and closing TCP ones inactive.

import { CtProto, CtRefuse, CtState, CtVerdict, type ConnListener, type ConnTableConfig } from './conntrack-types.js';
import { ConnStore, L_CLOSING, L_HALF, L_UDP } from './conn-store.js';

export * from './conntrack-types.js';

const TCP_FIN = 0x01;
const TCP_SYN = 0x02;
const TCP_RST = 0x04;
const TCP_ACK = 0x10;
const FIN_CLIENT = 1;
const FIN_BACKEND = 2;

export class ConnTable extends ConnStore {
  private hairpinCursor = 0;

  constructor(config: Partial<ConnTableConfig> = {}, listener?: ConnListener) {
    super(config, listener);
  }

  /**
   * New flow (after lookup() missed and the scheduler picked a backend): returns the slot or a
   * CtRefuse code. TCP flows start half-open (the first packet should be a SYN; the stage
   * answers anything else without an entry with an RST); UDP flows start timed. For a hairpin
   * flow pass snatIp/snatPort (the VIP and allocHairpinPort's port): the backend then sees and
   * answers that address instead of the client's.
   */
  insert(
    proto: number, cIp: number, cPort: number, vip: number, vPort: number,
    bIp: number, bPort: number, bMacHi: number, bMacLo: number, svc: number, backend: number, now: number,
    snatIp = cIp, snatPort = cPort,
  ): number {
    if (this.lookup(proto, cIp, cPort, vip, vPort) >= 0) return CtRefuse.Exists;
    if (this.lookupReply(proto, bIp, bPort, snatIp, snatPort) >= 0) {
      this.stats.refusedReplyTuple++;
      return CtRefuse.ReplyTupleTaken;
    }
    const tcp = proto === CtProto.Tcp;
    const l = tcp ? L_HALF : L_UDP;
    const e = this.claim(l, tcp ? this.config.maxHalfOpen : this.config.maxUdp, now);
    if (e < 0) {
      this.stats.refusedFull++;
      return CtRefuse.Full;
    }
    this.proto[e] = proto;
    this.clientIp[e] = cIp;
    this.clientPort[e] = cPort;
    this.vip[e] = vip;
    this.vipPort[e] = vPort;
    this.backendIp[e] = bIp;
    this.backendPort[e] = bPort;
    this.backendMacHi[e] = bMacHi;
    this.backendMacLo[e] = bMacLo;
    this.replyIp[e] = snatIp;
    this.replyPort[e] = snatPort;
    this.svc[e] = svc;
    this.backend[e] = backend;
    this.state[e] = tcp ? CtState.HalfOpen : CtState.Udp;
    this.fins[e] = 0;
    this.clientAck[e] = 0;
    this.backendAck[e] = 0;
    this.expires[e] = now + (tcp ? this.config.halfOpenMs : this.config.udpIdleMs);
    this.lists.pushTail(l, e);
    this.index(e);
    this.stats.inserted++;
    if (tcp) this.listener?.countChange(svc, backend, 0, 1);
    else this.listener?.countChange(svc, backend, 1, 0);
    return e;
  }

  /**
   * A client packet on entry e (read the backend fields first: PassLast/Stale free the slot).
   * `tcpFlags`/`ack` from the TCP header (ignored for UDP).
   */
  forward(e: number, tcpFlags: number, ack: number, now: number): number {
    if (this.proto[e] !== CtProto.Tcp) {
      this.touchUdp(e, now);
      return CtVerdict.Pass;
    }
    const st = this.state[e];
    if (tcpFlags & TCP_RST) {
      this.stats.closedRst++;
      this.remove(e);
      return CtVerdict.PassLast;
    }
    if ((tcpFlags & (TCP_SYN | TCP_ACK)) === TCP_SYN) {
      if (st === CtState.HalfOpen) {
        // Retransmitted SYN: keep the entry alive a little longer.
        this.expires[e] = now + this.config.halfOpenMs;
        this.lists.moveToTail(L_HALF, e);
      } else if (st === CtState.Closing || st === CtState.HalfClosed) {
        this.stats.stale++;
        this.remove(e);
        return CtVerdict.Stale;
      }
      return CtVerdict.Pass;
    }
    if (tcpFlags & TCP_ACK) this.clientAck[e] = ack;
    if (tcpFlags & TCP_FIN) this.finSeen(e, FIN_CLIENT, now);
    return CtVerdict.Pass;
  }

  /**
   * A backend packet (reply) on entry e; see forward(). A SYN-ACK on a closing entry is not
   * this flow's (its SYN never came through the VIP, or forward() would have renewed the
   * entry): the client opened a connection straight to the backend from the same port while
   * the VIP flow lingered. The entry ends and the packet is Stale: pass it untranslated.
   */
  reply(e: number, tcpFlags: number, ack: number, now: number): number {
    if (this.proto[e] !== CtProto.Tcp) {
      this.touchUdp(e, now);
      return CtVerdict.Pass;
    }
    if ((tcpFlags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK) && this.state[e] === CtState.Closing) {
      this.stats.stale++;
      this.remove(e);
      return CtVerdict.Stale;
    }
    if (tcpFlags & TCP_RST) {
      this.stats.closedRst++;
      this.remove(e);
      return CtVerdict.PassLast;
    }
    if (this.state[e] === CtState.HalfOpen) {
      this.lists.unlink(e);
      this.state[e] = CtState.Established;
      this.listener?.countChange(this.svc[e], this.backend[e], 1, -1);
    }
    if (tcpFlags & TCP_ACK) this.backendAck[e] = ack;
    if (tcpFlags & TCP_FIN) this.finSeen(e, FIN_BACKEND, now);
    return CtVerdict.Pass;
  }

  /**
   * A source port for hairpin SNAT to `snatIp` toward backend bIp:bPort that no entry uses as its
   * reply tuple: up to 64 probes in 32768..60999 (Linux's ephemeral range) from `seed` (e.g. the
   * client port); -1 when none was free. Allocation-free.
   */
  allocHairpinPort(proto: number, bIp: number, bPort: number, snatIp: number, seed: number): number {
    const lo = 32768;
    const span = 61000 - lo;
    // The start rotates with every allocation so equal seeds do not walk the same probe chain.
    this.hairpinCursor = (this.hairpinCursor + 40503) % span;
    let p = ((seed >>> 0) + this.hairpinCursor) % span;
    for (let k = 0; k < 64; k++) {
      if (this.lookupReply(proto, bIp, bPort, snatIp, lo + p) < 0) return lo + p;
      p = (p + 7919) % span;
    }
    return -1;
  }

  /** True when entry e is a hairpin flow (its backend answers the VIP, not the client). */
  isHairpin(e: number): boolean {
    return this.replyIp[e] !== this.clientIp[e] || this.replyPort[e] !== this.clientPort[e];
  }

  // ---- internals ----

  private finSeen(e: number, side: number, now: number): void {
    const f = this.fins[e] | side;
    this.fins[e] = f;
    const st = this.state[e];
    if (f === (FIN_CLIENT | FIN_BACKEND)) {
      if (st !== CtState.Closing) {
        if (st === CtState.Established) this.listener?.countChange(this.svc[e], this.backend[e], -1, 1);
        this.lists.unlink(e);
        this.state[e] = CtState.Closing;
        this.expires[e] = now + this.config.finLingerMs;
        this.lists.pushTail(L_CLOSING, e);
      }
    } else if (st === CtState.Established) {
      this.state[e] = CtState.HalfClosed;
      this.listener?.countChange(this.svc[e], this.backend[e], -1, 1);
    }
  }

  private touchUdp(e: number, now: number): void {
    this.expires[e] = now + this.config.udpIdleMs;
    this.lists.moveToTail(L_UDP, e);
  }
}
