// The pieces composed the way the VIP stage will use them (docs/services.md): a client's SYN
// to VIP:published is classified, scheduled, tracked and DNATed; the task's reply is found by
// the reply index and SNATed back; a same-host task gets the hairpin rewrite; a vanished task's
// flow is reset to both ends. Frames are real bytes checked with router/wire.
import { describe, expect, it } from 'vitest';
import { ethDst, setEthDst, setEthSrc, writeEthHeader, EtherType } from '../router/wire/ethernet.js';
import { IpProto, checkIpv4, emitIpv4, ipv4Dst, ipv4Src } from '../router/wire/ipv4.js';
import { l4DstPort, l4SrcPort, natRewriteDst, natRewriteSrc } from '../router/wire/nat.js';
import { TcpFlag, checkTcp, emitTcp, parseTcp, tcpAck, tcpFlags } from '../router/wire/tcp.js';
import { ConnTable, CtVerdict } from './conntrack.js';
import { writeResetToBackend, writeResetToClient } from './resets.js';
import { REFUSED, ServiceTable } from './service.js';

const ip = (s: string): number => s.split('.').reduce((a, o) => a * 256 + Number(o), 0);
const CLIENT = ip('10.0.0.5');
const CLIENT_MAC = 0x02420a000005;
const VIP = ip('10.0.0.254');
const VIP_MAC = 0x02ee00000001;
const TASK = ip('10.0.0.11');
const TASK_MAC = 0x02420a00000b;

function segment(src: number, dst: number, sp: number, dp: number, flags: number, seq: number, ack: number, srcMac: number, dstMac: number): Uint8Array {
  const b = new Uint8Array(14 + 40 + 4);
  writeEthHeader(b, 0, dstMac, srcMac, EtherType.Ipv4);
  emitIpv4({ src, dst, protocol: IpProto.Tcp, ttl: 64, tos: 0, ident: 9, dontFrag: true, moreFrags: false, fragOffset: 0,
    optionsLen: 0, payloadLen: 24 }, b, 14);
  b.set([0x61, 0x62, 0x63, 0x0a], 54);
  emitTcp({ srcPort: sp, dstPort: dp, seq, ack, flags, window: 1000, urgent: 0, optionsLen: 0, payloadLen: 4 }, b, 34, src, dst);
  return b;
}

function valid(b: Uint8Array): boolean {
  return checkIpv4(b, 14, 44) === 0 && checkTcp(b, 34, 24, ipv4Src(b, 14), ipv4Dst(b, 14)) === 0;
}

function setup(): { services: ServiceTable; ct: ConnTable; svc: number } {
  const services = new ServiceTable();
  const svc = services.upsert({ id: 'web', vip: '10.0.0.254', scheduler: 'rr',
    ports: [{ published: 8080, target: 80, protocol: 'tcp' }], tasks: [{ ip: '10.0.0.11', mac: '02:42:0a:00:00:0b' }] });
  return { services, ct: new ConnTable({ maxEntries: 1024 }, services), svc };
}

describe('VIP stage composition', () => {
  it('DNAT to the task and reverse NAT of its reply; the task sees the real client', () => {
    const { services, ct } = setup();
    const syn = segment(CLIENT, VIP, 40000, 8080, TcpFlag.Syn, 100, 0, CLIENT_MAC, VIP_MAC);
    const svc = services.classify(VIP, IpProto.Tcp, 8080);
    expect(svc).toBeGreaterThanOrEqual(0);
    const target = services.targetPort;
    expect(ct.lookup(IpProto.Tcp, CLIENT, 40000, VIP, 8080)).toBe(-1);
    const b = services.pick(svc, CLIENT, 40000);
    const be = services.backends(svc);
    const e = ct.insert(IpProto.Tcp, CLIENT, 40000, VIP, 8080, be.ip[b] >>> 0, target, be.macHi[b], be.macLo[b], svc, b, 0);
    expect(e).toBeGreaterThanOrEqual(0);
    expect(be.inactive[b]).toBe(1);
    natRewriteDst(syn, 14, ct.backendIp[e] >>> 0, ct.backendPort[e]);
    setEthDst(syn, 0, (ct.backendMacHi[e] & 0xffff) * 2 ** 32 + (ct.backendMacLo[e] >>> 0));
    expect(valid(syn)).toBe(true);
    expect([ipv4Src(syn, 14), ipv4Dst(syn, 14), l4DstPort(syn, 34), ethDst(syn, 0)]).toEqual([CLIENT, TASK, 80, TASK_MAC]);

    const synAck = segment(TASK, CLIENT, 80, 40000, TcpFlag.Syn | TcpFlag.Ack, 5000, 101, TASK_MAC, CLIENT_MAC);
    const r = ct.lookupReply(IpProto.Tcp, TASK, 80, CLIENT, 40000);
    expect(r).toBe(e);
    natRewriteSrc(synAck, 14, ct.vip[r] >>> 0, ct.vipPort[r]);
    setEthSrc(synAck, 0, VIP_MAC);
    expect(ct.reply(r, TcpFlag.Syn | TcpFlag.Ack, 101, 1)).toBe(CtVerdict.Pass);
    expect(valid(synAck)).toBe(true);
    expect([ipv4Src(synAck, 14), l4SrcPort(synAck, 34), ipv4Dst(synAck, 14)]).toEqual([VIP, 8080, CLIENT]);
    expect([be.active[b], be.inactive[b]]).toEqual([1, 0]);
    expect(services.classify(VIP, IpProto.Tcp, 8081)).toBe(REFUSED);
  });

  it('hairpin for a same-host task: source becomes VIP:p, the reply is mapped back to the client', () => {
    const { services, ct, svc } = setup();
    const b = services.pick(svc, CLIENT, 40000);
    const p = ct.allocHairpinPort(IpProto.Tcp, TASK, 80, VIP, 40000);
    const e = ct.insert(IpProto.Tcp, CLIENT, 40000, VIP, 80, TASK, 80, 0x0242, 0x0a00000b, svc, b, 0, VIP, p);
    const syn = segment(CLIENT, VIP, 40000, 80, TcpFlag.Syn, 1, 0, CLIENT_MAC, VIP_MAC);
    natRewriteDst(syn, 14, TASK, 80);
    natRewriteSrc(syn, 14, VIP, p);
    expect(valid(syn)).toBe(true);
    expect([ipv4Src(syn, 14), l4SrcPort(syn, 34), ipv4Dst(syn, 14)]).toEqual([VIP, p, TASK]);
    const reply = segment(TASK, VIP, 80, p, TcpFlag.Syn | TcpFlag.Ack, 7, 2, TASK_MAC, VIP_MAC);
    const r = ct.lookupReply(IpProto.Tcp, TASK, 80, VIP, p);
    expect(r).toBe(e);
    natRewriteSrc(reply, 14, ct.vip[r] >>> 0, ct.vipPort[r]);
    natRewriteDst(reply, 14, ct.clientIp[r] >>> 0, ct.clientPort[r]);
    expect(valid(reply)).toBe(true);
    expect([ipv4Src(reply, 14), l4SrcPort(reply, 34), ipv4Dst(reply, 14), l4DstPort(reply, 34)]).toEqual([VIP, 80, CLIENT, 40000]);
  });

  it("a vanished task's flow is reset to both ends with the sequence numbers they expect", () => {
    const { services, ct, svc } = setup();
    const b = services.pick(svc, CLIENT, 40000);
    const e = ct.insert(IpProto.Tcp, CLIENT, 40000, VIP, 80, TASK, 80, 0x0242, 0x0a00000b, svc, b, 0);
    ct.reply(e, TcpFlag.Syn | TcpFlag.Ack, 101, 0);
    ct.forward(e, TcpFlag.Ack, 5001, 1);
    ct.reply(e, TcpFlag.Ack, 150, 2);
    const gone = ct.select((x) => ct.backendIp[x] >>> 0 === TASK);
    expect(gone).toEqual([e]);
    const out = new Uint8Array(200);
    const n1 = writeResetToClient(ct, e, VIP_MAC, CLIENT_MAC, out, 0);
    expect(n1).toBe(54);
    expect(checkIpv4(out, 14, 40)).toBe(0);
    expect(checkTcp(out, 34, 20, VIP, CLIENT)).toBe(0);
    expect(parseTcp(out, 34, 20)).toMatchObject({ srcPort: 80, dstPort: 40000, seq: 5001, flags: TcpFlag.Rst });
    expect(ethDst(out, 0)).toBe(CLIENT_MAC);
    const n2 = writeResetToBackend(ct, e, CLIENT_MAC, out, 60);
    expect(n2).toBe(54);
    expect(checkTcp(out, 94, 20, CLIENT, TASK)).toBe(0);
    expect([tcpFlags(out, 94), tcpAck(out, 94), parseTcp(out, 94, 20).seq]).toEqual([TcpFlag.Rst, 0, 150]);
    expect(ethDst(out, 60)).toBe(TASK_MAC);
    ct.remove(e);
    expect(services.backends(svc).active[b]).toBe(0);
  });
});
