// The VIP stages inside a real Datapath between two in-memory hosts: DNAT to a remote task and
// reverse NAT of its reply, hairpin for a local task, refusals, malformed frames counted, mesh
// replies steered to the host the connection came from, resets when a task vanishes.
import { beforeEach, describe, expect, it } from 'vitest';
import { D } from '../router/counters.js';
import { Datapath } from '../router/datapath.js';
import { MemoryTap, MemoryUnderlay } from '../router/memory.js';
import { macParts, macToString } from '../router/wire/addr.js';
import { ip, ipv4Frame } from '../router/testframes.js';
import { IpProto, emitIpv4, ipv4Dst, ipv4Src } from '../router/wire/ipv4.js';
import { TcpFlag, emitTcp, tcpFlags } from '../router/wire/tcp.js';
import { EtherType, ethDst, ethSrc, writeEthHeader } from '../router/wire/ethernet.js';
import { l4DstPort, l4SrcPort } from '../router/wire/nat.js';
import { meshMacOf, vipMacOf } from './vips.js';

const VNI = 4200;
const A = ip('192.0.2.1');
const B = ip('192.0.2.2');
const CLIENT = { mac: '02:42:0a:01:00:05', ip: ip('10.1.0.5') };
const LOCAL_TASK = { mac: '02:42:0a:01:00:06', ip: ip('10.1.0.6') };
const REMOTE_TASK = { mac: '02:42:0a:01:00:0b', ip: ip('10.1.0.11') };
const VIP = '10.1.0.254';
const GW = ip('10.1.0.1');
const VIP_MAC = vipMacOf(VNI);
const MESH_MAC = meshMacOf(VNI);
const flush = () => new Promise((r) => setTimeout(r, 0));

function seg(dstMac: number, srcMac: number, src: number, dst: number, sp: number, dp: number, flags: number): Buffer {
  const b = Buffer.alloc(14 + 40);
  writeEthHeader(b, 0, dstMac, srcMac, EtherType.Ipv4);
  emitIpv4({ src, dst, protocol: IpProto.Tcp, ttl: 64, tos: 0, ident: 1, dontFrag: true, moreFrags: false, fragOffset: 0, optionsLen: 0, payloadLen: 20 }, b, 14);
  emitTcp({ srcPort: sp, dstPort: dp, seq: 1000, ack: flags & TcpFlag.Ack ? 5000 : 0, flags, window: 1000, urgent: 0, optionsLen: 0, payloadLen: 0 }, b, 34, src, dst);
  return b;
}

function host(u: MemoryUnderlay, addr: number) {
  const dp = new Datapath(u.bind(addr, 4789), [u.bind(addr)], { vxlanPort: 4789, batch: 16 });
  const tap = new MemoryTap();
  const net = dp.addNetwork(VNI, 1450, tap);
  dp.setLocal(VNI, ...macParts(macToString(MESH_MAC)), GW);
  return { dp, tap, net };
}

const spec = (tasks: { ip: number; mac: string; weight?: number }[]) => [{
  id: 'web', vip: VIP, scheduler: 'rr' as const, ports: [{ published: 8080, target: 80, protocol: 'tcp' as const }],
  tasks: tasks.map((t) => ({ ip: `10.1.0.${t.ip & 255}`, mac: t.mac, weight: t.weight ?? 1 })),
}];

describe('VIP stages in the datapath', () => {
  let u: MemoryUnderlay;
  let a: ReturnType<typeof host>;
  let b: ReturnType<typeof host>;
  beforeEach(() => {
    u = new MemoryUnderlay();
    a = host(u, A);
    b = host(u, B);
    a.dp.setLocal(VNI, ...macParts(CLIENT.mac), CLIENT.ip);
    a.dp.setLocal(VNI, ...macParts(LOCAL_TASK.mac), LOCAL_TASK.ip);
    b.dp.setLocal(VNI, ...macParts(REMOTE_TASK.mac), REMOTE_TASK.ip);
    a.dp.setRemote(VNI, ...macParts(REMOTE_TASK.mac), REMOTE_TASK.ip, B, false);
    b.dp.setRemote(VNI, ...macParts(CLIENT.mac), CLIENT.ip, A, false);
    b.dp.setRemote(VNI, ...macParts(LOCAL_TASK.mac), LOCAL_TASK.ip, A, false);
  });

  it('DNATs a SYN to a remote task (client address kept) and gives the reply the VIP back', async () => {
    for (const h of [a, b]) h.dp.setServices(VNI, spec([REMOTE_TASK]));
    a.tap.inject(seg(VIP_MAC, Number(`0x${CLIENT.mac.replace(/:/g, '')}`), CLIENT.ip, ip(VIP), 40000, 8080, TcpFlag.Syn));
    await flush();
    const atTask = b.tap.written.at(-1)!;
    expect(ipv4Dst(atTask, 14)).toBe(REMOTE_TASK.ip);
    expect(ipv4Src(atTask, 14)).toBe(CLIENT.ip);
    expect(l4DstPort(atTask, 34)).toBe(80);
    b.tap.inject(seg(Number(`0x${CLIENT.mac.replace(/:/g, '')}`), Number(`0x${REMOTE_TASK.mac.replace(/:/g, '')}`), REMOTE_TASK.ip, CLIENT.ip, 80, 40000, TcpFlag.Syn | TcpFlag.Ack));
    await flush();
    const atClient = a.tap.written.at(-1)!;
    expect(ipv4Src(atClient, 14)).toBe(ip(VIP));
    expect(l4SrcPort(atClient, 34)).toBe(8080);
    expect(ethSrc(atClient, 0)).toBe(VIP_MAC);
    expect(a.net.vips!.ct.size).toBe(1);
  });

  it('a direct connection from a lingering VIP flow\'s client port: the task\'s SYN-ACK reaches the client untranslated', async () => {
    for (const h of [a, b]) h.dp.setServices(VNI, spec([REMOTE_TASK]));
    const cmac = Number(`0x${CLIENT.mac.replace(/:/g, '')}`);
    const tmac = Number(`0x${REMOTE_TASK.mac.replace(/:/g, '')}`);
    const fromTask = (flags: number) => b.tap.inject(seg(cmac, tmac, REMOTE_TASK.ip, CLIENT.ip, 80, 40002, flags));
    a.tap.inject(seg(VIP_MAC, cmac, CLIENT.ip, ip(VIP), 40002, 80, TcpFlag.Syn));
    await flush();
    fromTask(TcpFlag.Syn | TcpFlag.Ack);
    await flush();
    a.tap.inject(seg(VIP_MAC, cmac, CLIENT.ip, ip(VIP), 40002, 80, TcpFlag.Fin | TcpFlag.Ack));
    await flush();
    fromTask(TcpFlag.Fin | TcpFlag.Ack);
    await flush();
    expect(ipv4Src(a.tap.written.at(-1)!, 14)).toBe(ip(VIP)); // still the VIP flow's: its FIN
    expect(a.net.vips!.ct.size).toBe(1); // lingering
    // The client now opens a connection straight to the task's address from the same port.
    a.tap.inject(seg(tmac, cmac, CLIENT.ip, REMOTE_TASK.ip, 40002, 80, TcpFlag.Syn));
    await flush();
    fromTask(TcpFlag.Syn | TcpFlag.Ack);
    await flush();
    const atClient = a.tap.written.at(-1)!;
    expect(tcpFlags(atClient, 34)).toBe(TcpFlag.Syn | TcpFlag.Ack);
    expect(ipv4Src(atClient, 14)).toBe(REMOTE_TASK.ip);
    expect(l4SrcPort(atClient, 34)).toBe(80);
    expect(a.net.vips!.ct.size).toBe(0);
  });

  it('hairpins a local task: source VIP:p to the task, and the reply back to the client', async () => {
    a.dp.setServices(VNI, spec([LOCAL_TASK]));
    const cmac = Number(`0x${CLIENT.mac.replace(/:/g, '')}`);
    a.tap.inject(seg(VIP_MAC, cmac, CLIENT.ip, ip(VIP), 40001, 80, TcpFlag.Syn));
    await flush();
    const toTask = a.tap.written.at(-1)!;
    expect(ipv4Dst(toTask, 14)).toBe(LOCAL_TASK.ip);
    expect(ipv4Src(toTask, 14)).toBe(ip(VIP));
    const p = l4SrcPort(toTask, 34);
    a.tap.inject(seg(VIP_MAC, Number(`0x${LOCAL_TASK.mac.replace(/:/g, '')}`), LOCAL_TASK.ip, ip(VIP), 80, p, TcpFlag.Syn | TcpFlag.Ack));
    await flush();
    const back = a.tap.written.at(-1)!;
    expect(ipv4Dst(back, 14)).toBe(CLIENT.ip);
    expect(ipv4Src(back, 14)).toBe(ip(VIP));
    expect(l4DstPort(back, 34)).toBe(40001);
    expect(ethDst(back, 0)).toBe(cmac);
  });

  it('refuses an unpublished port with an RST, a non-SYN without a flow too; malformed frames are counted', async () => {
    a.dp.setServices(VNI, spec([REMOTE_TASK]));
    const cmac = Number(`0x${CLIENT.mac.replace(/:/g, '')}`);
    a.tap.inject(seg(VIP_MAC, cmac, CLIENT.ip, ip(VIP), 40002, 9999, TcpFlag.Syn));
    await flush();
    const rst = a.tap.written.at(-1)!;
    expect(tcpFlags(rst, 34) & TcpFlag.Rst).toBeTruthy();
    expect(ipv4Src(rst, 14)).toBe(ip(VIP));
    a.tap.inject(seg(VIP_MAC, cmac, CLIENT.ip, ip(VIP), 40003, 8080, TcpFlag.Ack));
    const bad = seg(VIP_MAC, cmac, CLIENT.ip, ip(VIP), 40004, 8080, TcpFlag.Syn);
    bad[14] = 0x4f; // header length beyond the frame
    a.tap.inject(bad, ipv4Frame(macToString(VIP_MAC), CLIENT.mac, CLIENT.ip, ip(VIP), 1, 0, 0, 20));
    await flush();
    expect(a.net.drops[D.vipRefused]).toBe(1);
    expect(a.net.drops[D.vipNoFlow]).toBe(1);
    expect(a.net.drops[D.vipMalformed]).toBe(1);
    expect(a.net.drops[D.vipProto]).toBe(1);
    expect(a.net.vips!.ct.size).toBe(0);
  });

  it('steers a task reply to a mesh connection back to the host it came from', async () => {
    for (const h of [a, b]) h.dp.setServices(VNI, spec([REMOTE_TASK]));
    const tmac = Number(`0x${REMOTE_TASK.mac.replace(/:/g, '')}`);
    a.tap.inject(seg(tmac, MESH_MAC, GW, REMOTE_TASK.ip, 33000, 80, TcpFlag.Syn));
    await flush();
    expect(ipv4Src(b.tap.written.at(-1)!, 14)).toBe(GW);
    b.tap.inject(seg(VIP_MAC, tmac, REMOTE_TASK.ip, GW, 80, 33000, TcpFlag.Syn | TcpFlag.Ack));
    await flush();
    const back = a.tap.written.at(-1)!;
    expect(ethDst(back, 0)).toBe(MESH_MAC);
    expect(ipv4Dst(back, 14)).toBe(GW);
    expect(b.net.vips!.stats().meshSteered).toBe(1);
  });

  it('a mesh connection reusing a closed one\'s source port within the linger is tracked again; its reply is steered home', async () => {
    for (const h of [a, b]) h.dp.setServices(VNI, spec([REMOTE_TASK]));
    const tmac = Number(`0x${REMOTE_TASK.mac.replace(/:/g, '')}`);
    const open = async () => {
      a.tap.inject(seg(tmac, MESH_MAC, GW, REMOTE_TASK.ip, 33001, 80, TcpFlag.Syn));
      await flush();
      b.tap.inject(seg(VIP_MAC, tmac, REMOTE_TASK.ip, GW, 80, 33001, TcpFlag.Syn | TcpFlag.Ack));
      await flush();
    };
    await open();
    // Both FINs: the entry lingers (closing).
    a.tap.inject(seg(tmac, MESH_MAC, GW, REMOTE_TASK.ip, 33001, 80, TcpFlag.Fin | TcpFlag.Ack));
    b.tap.inject(seg(VIP_MAC, tmac, REMOTE_TASK.ip, GW, 80, 33001, TcpFlag.Fin | TcpFlag.Ack));
    await flush();
    const steered = b.net.vips!.stats().meshSteered;
    const toA = a.tap.written.length;
    await open(); // the sandbox picked port 33001 again
    expect(b.net.vips!.mesh.size).toBe(1);
    expect(b.net.vips!.stats().meshSteered).toBe(steered + 1);
    const back = a.tap.written.slice(toA).at(-1)!;
    expect(tcpFlags(back, 34)).toBe(TcpFlag.Syn | TcpFlag.Ack);
    expect(ethDst(back, 0)).toBe(MESH_MAC);
  });

  it('resets both ends when a task vanishes; a drained task keeps its flow', async () => {
    a.dp.setServices(VNI, spec([LOCAL_TASK]));
    const cmac = Number(`0x${CLIENT.mac.replace(/:/g, '')}`);
    a.tap.inject(seg(VIP_MAC, cmac, CLIENT.ip, ip(VIP), 40005, 80, TcpFlag.Syn));
    await flush();
    a.dp.setServices(VNI, spec([{ ...LOCAL_TASK, weight: 0 }]));
    expect(a.net.vips!.ct.size).toBe(1);
    const before = a.tap.written.length;
    a.dp.setServices(VNI, spec([REMOTE_TASK]));
    expect(a.net.vips!.ct.size).toBe(0);
    const rsts = a.tap.written.slice(before);
    expect(rsts).toHaveLength(2);
    expect(rsts.map((f) => ipv4Dst(f, 14)).sort()).toEqual([CLIENT.ip, LOCAL_TASK.ip].sort());
    for (const f of rsts) expect(tcpFlags(f, 34) & TcpFlag.Rst).toBeTruthy();
  });
});
