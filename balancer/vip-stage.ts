// The VIP stages of the datapath (router/egress.ts step 5, router/ingress.ts steps 6 and 9).
// docs/services.md has the design; per frame, no allocation, headers through router/wire.
//
// Egress, dnat(): a frame from a local container
//   a. to the mesh source (gateway IP, VIP MAC): a task's reply to a routing-mesh connection.
//      Learned from another host → that host's VTEP (meshSteered); else this host's own → TAP.
//   b. to a VIP: parsed and checked (drops by reason), then
//      - an existing flow: conntrack forward(), DNAT to its task;
//      - a local task's hairpin reply (to VIP:p): both rewrites undone, back to the client;
//      - a new flow: refused ports and non-SYNs answered (RST / ICMP); schedule, insert, DNAT.
//        A task on this host also gets SNAT to VIP:p (hairpin) and the frame goes back to the TAP.
// Ingress, meshIn() (instead of the source checks, for the mesh MAC): a mesh connection from
//   another host, tracked so the task's replies go back to it.
// Ingress, unnat(): a remote task's reply on a VIP flow gets the VIP back as its source.
import { D, LOOPBACK, PASS } from '../router/counters.js';
import {
  ETH_HEADER_LEN, EtherType, IPV4_MIN_HEADER_LEN, IpProto, TcpFlag, checkIpv4, checkTcp, checkUdp, ethDstHi, ethDstLo,
  ethSrcHi, ethSrcLo, ethType, ipv4DstKey, ipv4HeaderLenAt, ipv4IsFragment, ipv4PayloadLen, ipv4PayloadOff, ipv4Proto,
  ipv4SrcKey, setEthDst, setEthSrc, tcpAck, tcpFlags,
} from '../router/wire/index.js';
import { l4DstPort, l4SrcPort, natRewriteDst, natRewriteSrc } from '../router/wire/nat.js';
import { writeIcmpPortUnreachable, writeTcpRstReply } from '../router/wire/reject.js';
import { CtRefuse, CtVerdict } from './conntrack.js';
import { REFUSED } from './service.js';
import { VC, type VipNet, type VipState } from './vips.js';

/** What the stages need of router/egress.ts's EgressFrame. */
export interface VipFrame { off: number; len: number; mss: number; vtep: number }
/** What the stages need of router/ingress.ts's IngressDatagram. */
export interface VipDatagram { buf: Buffer; f: number; flen: number; vtep: number }

// The parsed packet (module scratch: one frame at a time, nothing allocated).
let ipOff = 0;
let proto = 0;
let src = 0;
let dst = 0;
let sport = 0;
let dport = 0;
let flags = 0;
let ack = 0;

const mac = (hi: number, lo: number): number => (hi & 0xffff) * 0x100000000 + (lo >>> 0);

/** IPv4 + TCP/UDP structure (no checksum verification: the kernel that sent it made it). */
function parse(buf: Buffer, off: number, len: number): number {
  if (len < ETH_HEADER_LEN + IPV4_MIN_HEADER_LEN) return D.vipMalformed;
  ipOff = off + ETH_HEADER_LEN;
  if (checkIpv4(buf, ipOff, len - ETH_HEADER_LEN) !== 0) return D.vipMalformed;
  if (ipv4IsFragment(buf, ipOff)) return D.vipFragment;
  proto = ipv4Proto(buf, ipOff);
  const l4 = ipv4PayloadOff(buf, ipOff);
  const l4len = ipv4PayloadLen(buf, ipOff);
  if (proto === IpProto.Tcp) {
    if (checkTcp(buf, l4, l4len) !== 0) return D.vipMalformed;
    flags = tcpFlags(buf, l4);
    ack = tcpAck(buf, l4);
  } else if (proto === IpProto.Udp) {
    if (checkUdp(buf, l4, l4len) !== 0) return D.vipMalformed;
    flags = 0;
    ack = 0;
  } else return D.vipProto;
  src = ipv4SrcKey(buf, ipOff);
  dst = ipv4DstKey(buf, ipOff);
  sport = l4SrcPort(buf, l4);
  dport = l4DstPort(buf, l4);
  return PASS;
}

/** Egress step 5. PASS (go on to lookupVtep; e.vtep set when steered), LOOPBACK, or a drop reason. */
export function dnat(net: VipNet, v: VipState, e: VipFrame): number {
  const buf = net.rxSlab;
  const off = e.off;
  if (ethType(buf, off) !== EtherType.Ipv4 || e.len < ETH_HEADER_LEN + IPV4_MIN_HEADER_LEN) return PASS;
  const d = ipv4DstKey(buf, off + ETH_HEADER_LEN);
  const toVipMac = ethDstHi(buf, off) === v.vipHi && ethDstLo(buf, off) === v.vipLo;
  if (toVipMac && d === v.gw && d !== 0) return meshReply(v, buf, e);
  if (!v.services.isVip(d)) return toVipMac ? D.vipUnknown : PASS;
  const r = parse(buf, off, e.len);
  if (r !== PASS) return r;
  const ct = v.ct;
  const now = performance.now();
  const c = ct.lookup(proto, src, sport, dst, dport);
  if (c >= 0) {
    const bIp = ct.backendIp[c];
    const bPort = ct.backendPort[c];
    const bMac = mac(ct.backendMacHi[c], ct.backendMacLo[c]);
    const hairpin = ct.isHairpin(c);
    const rIp = ct.replyIp[c];
    const rPort = ct.replyPort[c];
    if (ct.forward(c, flags, ack, now) !== CtVerdict.Stale) return toTask(v, buf, e, bIp, bPort, bMac, hairpin, rIp, rPort);
  }
  const h = ct.lookupReply(proto, src, sport, dst, dport);
  if (h >= 0 && ct.isHairpin(h)) return hairpinReply(net, v, buf, e, h, now);
  return newFlow(net, v, buf, e, now);
}

// b. A new flow to a VIP.
function newFlow(net: VipNet, v: VipState, buf: Buffer, e: VipFrame, now: number): number {
  const svc = v.services.classify(dst, proto, dport);
  if (svc === REFUSED) return refuse(v, buf, e, D.vipRefused);
  const tport = v.services.targetPort;
  if (proto === IpProto.Tcp && (flags & (TcpFlag.Syn | TcpFlag.Ack | TcpFlag.Rst)) !== TcpFlag.Syn) {
    return (flags & TcpFlag.Rst) !== 0 ? D.vipNoFlow : refuse(v, buf, e, D.vipNoFlow);
  }
  const b = v.services.pick(svc, src, sport);
  if (b < 0) return refuse(v, buf, e, D.vipNoTask);
  const bs = v.services.backends(svc);
  const bIp = bs.ip[b];
  const hi = bs.macHi[b];
  const lo = bs.macLo[b];
  // A task on this host: its reply would cross the bridge straight to the client, so the
  // client is hidden behind VIP:p and the reply comes to the TAP (hairpin SNAT).
  const local = net.local.find(hi, lo) >= 0;
  let rIp = src;
  let rPort = sport;
  if (local) {
    rPort = v.ct.allocHairpinPort(proto, bIp, tport, dst, sport);
    if (rPort < 0) return refuse(v, buf, e, D.vipTableFull);
    rIp = dst;
  }
  const c = v.ct.insert(proto, src, sport, dst, dport, bIp, tport, hi, lo, svc, b, now, rIp, rPort);
  if (c < 0) return refuse(v, buf, e, c === CtRefuse.ReplyTupleTaken ? D.vipReplyTaken : D.vipTableFull);
  v.counts[VC.newFlows]++;
  return toTask(v, buf, e, bIp, tport, mac(hi, lo), local, rIp, rPort);
}

function toTask(v: VipState, buf: Buffer, e: VipFrame, bIp: number, bPort: number, bMac: number, hairpin: boolean, rIp: number, rPort: number): number {
  const partial = e.mss !== 0; // a TSO super-frame keeps a partial checksum until segmentation
  natRewriteDst(buf, ipOff, bIp, bPort, partial);
  setEthDst(buf, e.off, bMac);
  if (!hairpin) return PASS;
  natRewriteSrc(buf, ipOff, rIp, rPort, partial);
  setEthSrc(buf, e.off, v.vipMac);
  v.counts[VC.hairpin]++;
  return LOOPBACK;
}

// b. A local task answering a hairpin flow (to VIP:p): back to the client, from VIP:port.
function hairpinReply(net: VipNet, v: VipState, buf: Buffer, e: VipFrame, h: number, now: number): number {
  const ct = v.ct;
  const cIp = ct.clientIp[h];
  const cPort = ct.clientPort[h];
  const vip = ct.vip[h];
  const vPort = ct.vipPort[h];
  ct.reply(h, flags, ack, now);
  const li = net.localIps.find(0, cIp);
  if (li < 0) return D.vipNoFlow; // the client left
  const partial = e.mss !== 0;
  natRewriteSrc(buf, ipOff, vip, vPort, partial);
  natRewriteDst(buf, ipOff, cIp, cPort, partial);
  setEthSrc(buf, e.off, v.vipMac);
  setEthDst(buf, e.off, mac(net.localIps.a[li], net.localIps.b[li]));
  return LOOPBACK;
}

// a. A task's reply to a routing-mesh connection (to the gateway IP, which ARPs to the VIP MAC).
function meshReply(v: VipState, buf: Buffer, e: VipFrame): number {
  const r = parse(buf, e.off, e.len);
  if (r !== PASS) return r;
  setEthDst(buf, e.off, v.meshMac);
  const m = v.mesh.lookupReply(proto, src, sport, dst, dport);
  // This host's own mesh connection: to br0, from the VIP MAC (from the task's MAC, the bridge
  // would learn the task behind tap0 and send it its own traffic through the agent).
  if (m < 0) {
    setEthSrc(buf, e.off, v.vipMac);
    return LOOPBACK;
  }
  e.vtep = v.mesh.backendMacLo[m];
  v.mesh.reply(m, flags, ack, performance.now());
  v.counts[VC.meshSteered]++;
  return PASS;
}

/** RST (TCP) or ICMP port unreachable (UDP) back to the sender; returns the drop reason. */
function refuse(v: VipState, buf: Buffer, e: VipFrame, reason: number): number {
  const at = v.outSlot() + v.pre();
  const n = proto === IpProto.Tcp ? writeTcpRstReply(buf, e.off, ipOff, v.out, at) : writeIcmpPortUnreachable(buf, e.off, ipOff, v.out, at);
  if (n > 0) {
    v.pushOut(n);
    v.counts[VC.refused]++;
  }
  return reason;
}

/** Ingress: the frame comes from the mesh MAC (another host's sandbox br0). */
export function isMeshSource(v: VipState, d: VipDatagram): boolean {
  return ethSrcLo(d.buf, d.f) === v.meshLo && ethSrcHi(d.buf, d.f) === v.meshHi;
}

/** Ingress, in place of checkSrcMac/checkSrcIp for the mesh MAC: track the connection's origin VTEP. */
export function meshIn(v: VipState, d: VipDatagram): number {
  if (ethType(d.buf, d.f) !== EtherType.Ipv4) return D.meshSpoofed;
  const r = parse(d.buf, d.f, d.flen);
  if (r !== PASS) return r;
  if (src !== v.gw || src === 0) return D.meshSpoofed;
  const now = performance.now();
  let m = v.mesh.lookup(proto, src, sport, dst, dport);
  if (m >= 0) {
    // Another host's connection holding this tuple is a conflict, unless this is a fresh SYN
    // after its end; a fresh SYN on any closing entry (the sandbox reusing a source port within
    // finLinger) is a new connection that needs a new entry.
    const other = v.mesh.backendMacLo[m] !== d.vtep;
    if (v.mesh.forward(m, flags, ack, now) === CtVerdict.Stale) m = -1;
    else if (other) return D.meshConflict;
  }
  if (m < 0) {
    m = v.mesh.insert(proto, src, sport, dst, dport, dst, dport, 0, d.vtep, -1, -1, now);
    if (m < 0) return D.vipTableFull;
    v.counts[VC.meshFlows]++;
  }
  return PASS;
}

/** Ingress step 9: a remote task's reply on a VIP flow; source back to VIP:port. */
export function unnat(v: VipState, d: VipDatagram): number {
  const buf = d.buf;
  const f = d.f;
  if (ethType(buf, f) !== EtherType.Ipv4 || d.flen < ETH_HEADER_LEN + IPV4_MIN_HEADER_LEN + 8) return PASS;
  const ip = f + ETH_HEADER_LEN;
  const p = ipv4Proto(buf, ip);
  if (p !== IpProto.Tcp && p !== IpProto.Udp) return PASS;
  const l4 = ip + ipv4HeaderLenAt(buf, ip);
  if (l4 + 8 > f + d.flen) return PASS;
  const e = v.ct.lookupReply(p, ipv4SrcKey(buf, ip), l4SrcPort(buf, l4), ipv4DstKey(buf, ip), l4DstPort(buf, l4));
  if (e < 0) return PASS;
  const r = parse(buf, f, d.flen);
  if (r !== PASS) return r;
  const vip = v.ct.vip[e];
  const vPort = v.ct.vipPort[e];
  if (v.ct.reply(e, flags, ack, performance.now()) === CtVerdict.Stale) return PASS; // not a VIP flow's
  natRewriteSrc(buf, ipOff, vip, vPort, false);
  setEthSrc(buf, f, v.vipMac);
  return PASS;
}
