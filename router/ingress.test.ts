// The ingress stages one by one, on Networks over in-memory ports.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { C, D, PASS } from './counters.js';
import { IngressDatagram, IngressMemo, checkDst, checkHeader, checkSrcIp, checkSrcMac, checkVtep, demuxVni, ingress, recall } from './ingress.js';
import { MemoryTap } from './memory.js';
import { Network } from './network.js';
import { macParts } from './wire/addr.js';
import { arpFrame, ip, ipv4Frame, vxlan } from './testframes.js';

const VNI = 4096;
const A = ip('192.0.2.1') | 0;
const S = ip('192.0.2.9') | 0;
const MAC_A = '02:42:0a:00:09:02';
const MAC_B = '02:42:0a:00:09:03';
const MAC_S = '66:77:88:99:aa:bb';
const IP_A = ip('10.0.9.2');
const IP_B = ip('10.0.9.3');

function setup() {
  const net = new Network(VNI, 1450, new MemoryTap(), 16);
  net.setLocal(...macParts(MAC_B), IP_B);
  net.setRemote(...macParts(MAC_A), IP_A, A, false);
  net.addStaticVtep(S);
  const nets = new Map([[VNI, net]]);
  const d = new IngressDatagram();
  /** `len`: the datagram's length, if shorter than its bytes (a slab's stale bytes follow it). */
  const load = (dgram: Buffer, from = A, len = dgram.length, opened = false) => {
    const buf = Buffer.alloc(64 + dgram.length);
    dgram.copy(buf, 64);
    d.set(buf, 64, len, from, opened);
    return d;
  };
  /** Load and run the stages up to (not including) the one under test. */
  const upTo = (dgram: Buffer, from: number, stage: number) => {
    load(dgram, from);
    const steps = [() => checkHeader(d), () => demuxVni(nets, d), () => checkVtep(net, d), () => checkSrcMac(net, d), () => checkSrcIp(net, d)];
    for (let k = 0; k < stage; k++) expect(steps[k]()).toBe(PASS);
    return d;
  };
  return { net, nets, d, load, upTo };
}

const good = () => vxlan(VNI, ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 1, 2, 10));

describe('ingress stages', () => {
  it('checkHeader: length, then flags exactly 0x08 and reserved bits zero', () => {
    const { d, load } = setup();
    expect(checkHeader(load(good()))).toBe(PASS);
    expect(d.f).toBe(64 + 8);
    expect(checkHeader(load(Buffer.alloc(21)))).toBe(D.vxlanShort);
    for (const [i, v] of [[0, 0x0c], [1, 1], [3, 0x80], [7, 1]]) {
      const b = good();
      b[i] = v;
      expect(checkHeader(load(b))).toBe(D.vxlanBadFlags);
    }
  });

  it('demuxVni: the VNI picks the network; an unknown VNI leaves d.net null', () => {
    const { net, nets, load } = setup();
    let d = load(good());
    expect(demuxVni(nets, d)).toBe(PASS);
    expect(d.net).toBe(net);
    d = load(vxlan(4097, ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 1, 2, 10)));
    expect(demuxVni(nets, d)).toBe(D.unknownVni);
    expect(d.net).toBe(null);
  });

  it('checkVtep: only VTEPs of the network, static ones marked', () => {
    const { net, upTo } = setup();
    let d = upTo(good(), A, 2);
    expect(checkVtep(net, d)).toBe(PASS);
    expect(d.fromStatic).toBe(false);
    d = upTo(good(), S, 2);
    expect(checkVtep(net, d)).toBe(PASS);
    expect(d.fromStatic).toBe(true);
    expect(checkVtep(net, upTo(good(), ip('192.0.2.66') | 0, 2))).toBe(D.unknownVtep);
  });

  it('checkSrcMac: a known MAC only from its VTEP; learning only from static VTEPs', () => {
    const { net, upTo } = setup();
    expect(checkSrcMac(net, upTo(good(), S, 3))).toBe(D.spoofedSrcMac); // A's MAC from S
    const fromS = vxlan(VNI, ipv4Frame(MAC_B, MAC_S, ip('10.0.9.50'), IP_B, 6, 1, 2, 10));
    expect(checkSrcMac(net, upTo(fromS, S, 3))).toBe(PASS);
    expect(net.remote.find(...macParts(MAC_S))).toBeGreaterThanOrEqual(0);
    expect(net.counters[C.learned]).toBe(1);
    const own = vxlan(VNI, ipv4Frame(MAC_B, MAC_B, IP_B, IP_B, 6, 1, 2, 10));
    expect(checkSrcMac(net, upTo(own, S, 3))).toBe(D.spoofedSrcMac); // a local endpoint's MAC
    const group = vxlan(VNI, ipv4Frame(MAC_B, '01:00:5e:00:00:01', IP_A, IP_B, 6, 1, 2, 10));
    expect(checkSrcMac(net, upTo(group, S, 3))).toBe(D.spoofedSrcMac);
  });

  it('checkSrcIp: the IPv4 or ARP sender address must belong to the MAC', () => {
    const { net, upTo } = setup();
    expect(checkSrcIp(net, upTo(good(), A, 4))).toBe(PASS);
    expect(checkSrcIp(net, upTo(vxlan(VNI, ipv4Frame(MAC_B, MAC_A, ip('10.0.9.7'), IP_B, 6, 1, 2, 10)), A, 4))).toBe(D.spoofedSrcIp);
    expect(checkSrcIp(net, upTo(vxlan(VNI, ipv4Frame(MAC_B, MAC_A, IP_B, IP_B, 6, 1, 2, 10)), A, 4))).toBe(D.spoofedSrcIp);
    expect(checkSrcIp(net, upTo(vxlan(VNI, arpFrame(2, MAC_A, IP_A, MAC_B, IP_B)), A, 4))).toBe(PASS);
    expect(checkSrcIp(net, upTo(vxlan(VNI, arpFrame(1, MAC_A, 0, '00:00:00:00:00:00', IP_B)), A, 4))).toBe(PASS); // probe
    expect(checkSrcIp(net, upTo(vxlan(VNI, ipv4Frame(MAC_B, MAC_A, 0, IP_B, 6, 1, 2, 10)), A, 4))).toBe(D.spoofedSrcIp);
  });

  it('checkDst: unicast to a local endpoint; broadcast only from a static VTEP', () => {
    const { net, upTo } = setup();
    expect(checkDst(net, upTo(good(), A, 5))).toBe(PASS);
    expect(checkDst(net, upTo(vxlan(VNI, ipv4Frame('02:42:0a:00:09:09', MAC_A, IP_A, IP_B, 6, 1, 2, 10)), A, 5))).toBe(D.remoteUnknownDst);
    const bcast = (src: string, sip: number) => vxlan(VNI, ipv4Frame('ff:ff:ff:ff:ff:ff', src, sip, IP_B, 17, 1, 2, 10));
    expect(checkDst(net, upTo(bcast(MAC_A, IP_A), A, 5))).toBe(D.remoteBroadcast);
    expect(checkDst(net, upTo(bcast(MAC_S, ip('10.0.9.50')), S, 5))).toBe(PASS);
  });

  it('ingress() runs the checks in order: the first failing stage names the drop', () => {
    const { nets, load } = setup();
    expect(ingress(nets, load(good()), new IngressMemo())).toBe(PASS);
    // Unknown VTEP and spoofed MAC at once: the VTEP check comes first.
    expect(ingress(nets, load(vxlan(VNI, ipv4Frame(MAC_B, MAC_S, IP_A, IP_B, 6, 1, 2, 10)), ip('192.0.2.66') | 0), new IngressMemo())).toBe(D.unknownVtep);
    // Spoofed IP and unknown destination: the source checks come first.
    expect(ingress(nets, load(vxlan(VNI, ipv4Frame('02:42:0a:00:09:09', MAC_A, ip('10.0.9.7'), IP_B, 6, 1, 2, 10))), new IngressMemo())).toBe(D.spoofedSrcIp);
  });

  it('the memo recalls a repeat of the last datagram that passed, and only within its batch', () => {
    const { nets, load } = setup();
    const memo = new IngressMemo();
    expect(ingress(nets, load(good()), memo)).toBe(PASS);
    const d = load(good());
    expect(checkHeader(d)).toBe(PASS);
    expect(recall(memo, d)).toBe(true);
    memo.reset();
    expect(recall(memo, d)).toBe(false);
    // A drop is never remembered.
    expect(ingress(nets, load(vxlan(VNI, ipv4Frame('02:42:0a:00:09:09', MAC_A, IP_A, IP_B, 6, 1, 2, 10))), memo)).toBe(D.remoteUnknownDst);
    expect(memo.net).toBe(null);
  });

  it('the memo never changes a verdict: any sequence of datagrams, with and without it', () => {
    // A sequence starts from a datagram that passes and changes one field per step (to a value
    // from a small alphabet mixing good and bad ones, held for the rest of the sequence), so
    // that a run repeats, then differs in one field, and crosses the learning from a static VTEP.
    // A cut datagram keeps its bytes past the cut, as a slab does.
    const macs = [MAC_A, MAC_B, MAC_S, '66:77:88:99:aa:01', 'ff:ff:ff:ff:ff:ff'];
    const change = fc.oneof(
      fc.record({ vni: fc.constantFrom(VNI, VNI + 1) }), fc.record({ dst: fc.constantFrom(...macs) }),
      fc.record({ src: fc.constantFrom(...macs) }), fc.record({ sip: fc.constantFrom(IP_A, IP_B, ip('10.0.9.50'), 0) }),
      fc.record({ from: fc.constantFrom(A, S, ip('192.0.2.66') | 0) }), fc.record({ type: fc.constantFrom(0x0800, 0x0806, 0x86dd) }),
      fc.record({ cut: fc.constantFrom(0, 20, 40) }), fc.record({ opened: fc.boolean() }), fc.record({}),
    );
    type Fields = { vni: number; dst: string; src: string; sip: number; from: number; type: number; cut: number; opened: boolean };
    const build = (x: Fields) => {
      const frame = x.type === 0x0806 ? arpFrame(1, x.src, x.sip, '00:00:00:00:00:00', IP_B) : ipv4Frame(x.dst, x.src, x.sip, IP_B, 17, 1, 2, 10);
      if (x.type === 0x86dd) frame.writeUInt16BE(x.type, 12);
      return vxlan(x.vni, frame);
    };
    fc.assert(fc.property(fc.boolean(), fc.array(change, { minLength: 1, maxLength: 24 }), (encrypted, steps) => {
      const withMemo = setup();
      const without = setup();
      // Only whether the network has SAs matters to ingress (requireSa checks d.opened).
      if (encrypted) withMemo.net.sa = without.net.sa = {} as NonNullable<Network['sa']>;
      const memo = new IngressMemo();
      let x: Fields = { vni: VNI, dst: MAC_B, src: MAC_A, sip: IP_A, from: A, type: 0x0800, cut: 0, opened: encrypted };
      for (const c of steps) {
        x = { ...x, ...c };
        const b = build(x);
        const len = x.cut > 0 ? 8 + x.cut : b.length;
        const a = ingress(withMemo.nets, withMemo.load(b, x.from, len, x.opened), memo);
        const e = ingress(without.nets, without.load(b, x.from, len, x.opened), new IngressMemo());
        expect(a).toBe(e);
        if (a === PASS) {
          expect(withMemo.d.net?.vni).toBe(without.d.net?.vni);
          expect(withMemo.d.fromStatic).toBe(without.d.fromStatic);
        }
      }
      // The learned tables ended the same.
      expect(withMemo.net.remote.size).toBe(without.net.remote.size);
    }));
  });
});
