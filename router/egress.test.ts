// The egress stages one by one, on a Network and Sender over in-memory ports.
import { describe, expect, it } from 'vitest';
import { CONSUMED, D, PASS } from './counters.js';
import { EgressFrame, checkSource, egress, encapsulate, enqueue, groupFrame, isGroup, lookupVtep } from './egress.js';
import { SEAL_HEAD, SEAL_TAIL } from './features.js';
import { MemoryTap, MemoryUnderlay } from './memory.js';
import { HEADROOM, Network, ROOM_FOR_SEAL, TAILROOM } from './network.js';
import { macParts } from './wire/addr.js';
import { Sender } from './sender.js';
import { arpFrame, ip, ipv4Frame } from './testframes.js';
import { checkIpv4, checkTcp, checkVxlan, ipv4Src, ipv4Dst, vxlanVni } from './wire/index.js';

const VNI = 4096;
const A = ip('192.0.2.1');
const B = ip('192.0.2.2');
const S = ip('192.0.2.9');
const MAC_A = '02:42:0a:00:09:02';
const MAC_B = '02:42:0a:00:09:03';
const IP_A = ip('10.0.9.2');
const IP_B = ip('10.0.9.3');

function setup(vnet = false, gso = false) {
  const u = new MemoryUnderlay();
  const tap = new MemoryTap(vnet);
  const net = new Network(VNI, 1450, tap, 16);
  const tx = new Sender([u.bind(A, 0, gso)], 32, 4789);
  u.bind(B, 4789);
  u.bind(S, 4789);
  net.setLocal(...macParts(MAC_A), IP_A);
  net.setRemote(...macParts(MAC_B), IP_B, B, false);
  const e = new EgressFrame();
  /** Put a frame into slot 0 of the network's slab, as the TAP port would. */
  const load = (frame: Buffer, mss = 0) => {
    frame.copy(net.rxSlab, HEADROOM);
    e.set(HEADROOM, frame.length, mss);
    return e;
  };
  return { u, tap, net, tx, e, load };
}

describe('egress stages', () => {
  it('checkSource: only a local endpoint may send', () => {
    const { net, load } = setup();
    expect(checkSource(net, load(ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1, 2, 10)))).toBe(PASS);
    expect(checkSource(net, load(ipv4Frame(MAC_B, '02:42:0a:00:09:08', IP_A, IP_B, 17, 1, 2, 10)))).toBe(D.tapUnknownSrc);
  });

  it('groupFrame: unicast passes, ARP for a known IP is answered, other broadcast needs a static VTEP', () => {
    const { net, tx, load } = setup();
    expect(isGroup(net, load(ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1, 2, 10)))).toBe(false);
    expect(isGroup(net, load(arpFrame(1, MAC_A, IP_A, '00:00:00:00:00:00', IP_B)))).toBe(true);
    expect(groupFrame(net, load(arpFrame(1, MAC_A, IP_A, '00:00:00:00:00:00', IP_B)), tx)).toBe(CONSUMED);
    expect(net.replyCount).toBe(1);
    expect(groupFrame(net, load(arpFrame(1, MAC_A, IP_A, '00:00:00:00:00:00', ip('10.0.9.77'))), tx)).toBe(D.arpUnknown);
    expect(groupFrame(net, load(arpFrame(1, MAC_A, IP_A, '00:00:00:00:00:00', IP_A)), tx)).toBe(D.arpOther);
    const bcast = ipv4Frame('ff:ff:ff:ff:ff:ff', MAC_A, IP_A, ip('10.0.9.255'), 17, 1, 2, 10);
    expect(groupFrame(net, load(bcast), tx)).toBe(D.broadcastNoFlood);
    net.addStaticVtep(S);
    expect(groupFrame(net, load(bcast), tx)).toBe(CONSUMED);
    expect(tx.queues[0].count).toBe(1);
    expect(tx.queues[0].addrs[0]).toBe(S);
  });

  it('lookupVtep: remote MAC gives its VTEP; local and unknown MACs are told apart', () => {
    const { net, load } = setup();
    const e = load(ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1, 2, 10));
    expect(lookupVtep(net, e)).toBe(PASS);
    expect(e.vtep).toBe(B | 0);
    expect(lookupVtep(net, load(ipv4Frame(MAC_A, MAC_A, IP_A, IP_A, 17, 1, 2, 10)))).toBe(D.localDst);
    expect(lookupVtep(net, load(ipv4Frame('02:42:0a:00:09:63', MAC_A, IP_A, IP_B, 17, 1, 2, 10)))).toBe(D.unknownDst);
  });

  it('encapsulate: VXLAN header in the headroom, in place; head and tail room as the network asks', () => {
    const { net, tx, load } = setup();
    const frame = ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1, 2, 100);
    let e = load(frame);
    expect(encapsulate(net, e, tx)).toBe(PASS);
    expect([e.start, e.n, e.last]).toEqual([HEADROOM - 8, 1, 8 + frame.length]);
    expect(checkVxlan(net.rxSlab, e.start, 8)).toBe(0);
    expect(vxlanVni(net.rxSlab, e.start)).toBe(VNI);
    // What crypto/ will set with net.sa: room for the ESP header + IV in front, trailer + tag behind.
    expect(ROOM_FOR_SEAL).toBe(true);
    net.encapHead = 8 + SEAL_HEAD;
    net.encapTail = SEAL_TAIL;
    e = load(frame);
    expect(encapsulate(net, e, tx)).toBe(PASS);
    expect(e.start).toBe(HEADROOM - 8 - SEAL_HEAD);
    expect(e.last).toBe(8 + SEAL_HEAD + frame.length + SEAL_TAIL);
    expect(vxlanVni(net.rxSlab, HEADROOM - 8)).toBe(VNI);
    expect(e.start + e.last).toBeLessThanOrEqual(net.slot);
    expect(net.slot - HEADROOM - frame.length).toBeGreaterThanOrEqual(TAILROOM);
  });

  it('encapsulate: a TSO super-frame becomes segments with a prefix and a suffix, each a valid VXLAN datagram', () => {
    const { net, tx, load } = setup(true, true);
    net.encapHead = 8 + SEAL_HEAD;
    net.encapTail = SEAL_TAIL;
    const frame = ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 40000, 5201, 5000);
    const e = load(frame, 1400);
    expect(encapsulate(net, e, tx)).toBe(PASS);
    expect(e.n).toBe(4);
    const hdr = 14 + 20 + 20;
    expect(e.stride).toBe(8 + SEAL_HEAD + hdr + 1400 + SEAL_TAIL);
    expect(e.last).toBe(8 + SEAL_HEAD + hdr + (5000 - 3 * 1400) + SEAL_TAIL);
    for (let k = 0; k < e.n; k++) {
      const vx = e.start + k * e.stride + SEAL_HEAD;
      expect(vxlanVni(net.rxSlab, vx)).toBe(VNI);
      const ipOff = vx + 8 + 14;
      const chunk = k === e.n - 1 ? 5000 - 3 * 1400 : 1400;
      expect(checkIpv4(net.rxSlab, ipOff, 40 + chunk)).toBe(0);
      expect(checkTcp(net.rxSlab, ipOff + 20, 20 + chunk, ipv4Src(net.rxSlab, ipOff), ipv4Dst(net.rxSlab, ipOff))).toBe(0);
    }
    expect(encapsulate(net, load(ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1, 2, 5000), 1400), tx)).toBe(D.badOffload);
  });

  it('enqueue + flush: one datagram on the wire to the VTEP; egress() runs the steps in order', async () => {
    const { u, net, tx, load } = setup();
    const frame = ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1, 2, 100);
    const e = load(frame);
    expect(lookupVtep(net, e)).toBe(PASS);
    expect(encapsulate(net, e, tx)).toBe(PASS);
    expect(enqueue(net, e, tx)).toBe(CONSUMED);
    tx.flush(net);
    expect(u.log).toHaveLength(1);
    expect(u.log[0].to).toBe(B);
    expect(u.log[0].data.subarray(8).equals(frame)).toBe(true);
    // The source check comes before the broadcast step: a foreign broadcast is tapUnknownSrc.
    expect(egress(net, load(ipv4Frame('ff:ff:ff:ff:ff:ff', '02:42:0a:00:09:08', IP_A, IP_B, 17, 1, 2, 10)), tx)).toBe(D.tapUnknownSrc);
    expect(egress(net, load(frame), tx)).toBe(CONSUMED);
    expect(net.counters[0]).toBe(2); // tapRxFrames counted by step 1 for both
  });
});
