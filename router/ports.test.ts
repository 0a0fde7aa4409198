// The offloads behind the ports: virtio decode on the TAP side, GRO run splitting on the UDP side.
import { describe, expect, it } from 'vitest';
import { D, PASS } from './counters.js';
import { Datapath } from './datapath.js';
import { MemoryTap, MemoryUnderlay } from './memory.js';
import { macParts } from './wire/addr.js';
import { DatagramBatch, FrameBatch } from './ports.js';
import { ip, ipv4Frame, vxlan } from './testframes.js';
import { VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_HDR_LEN, checkUdp, fold, ipv4PseudoSum, writeVnetNone } from './wire/index.js';

const MAC_A = '02:42:0a:00:09:02';
const MAC_B = '02:42:0a:00:09:03';
const IP_A = ip('10.0.9.2');
const IP_B = ip('10.0.9.3');

function vnetHdr(flags: number, gso: number, mss = 0, start = 0, offset = 0): Buffer {
  const v = Buffer.alloc(VNET_HDR_LEN);
  v[0] = flags;
  v[1] = gso;
  v.writeUInt16LE(mss, 4);
  v.writeUInt16LE(start, 6);
  v.writeUInt16LE(offset, 8);
  return v;
}

describe('FramePort: virtio header decoded by the port', () => {
  it('gives the loop the Ethernet frame, its TSO size and a verdict per frame', () => {
    const tap = new MemoryTap(true);
    const slot = 2048;
    const slab = Buffer.alloc(slot * 8);
    const out = new FrameBatch(8);
    const f = ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1, 2, 50);
    const partial = Buffer.from(f); // as the kernel hands it over: the pseudo-header sum in the field
    partial.writeUInt16BE(fold(ipv4PseudoSum(IP_A, IP_B, 17, f.length - 34)), 34 + 6);
    const plain = Buffer.alloc(VNET_HDR_LEN);
    writeVnetNone(plain, 0);
    tap.inbox.push(
      Buffer.concat([plain, f]),
      Buffer.concat([vnetHdr(VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 1400), ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 1, 2, 3000)]),
      Buffer.concat([vnetHdr(VNET_F_NEEDS_CSUM, 0, 0, 34, 6), partial]), // partial UDP checksum to finish
      Buffer.alloc(VNET_HDR_LEN + 10), // short
      Buffer.concat([vnetHdr(0, 3), f]), // UDP GSO: not enabled
      Buffer.concat([vnetHdr(VNET_F_NEEDS_CSUM, 0, 0, 34, 500), f]), // checksum field outside the frame
    );
    expect(tap.readBatch(slab, slot, 64, 8, out)).toBe(6);
    expect([...out.verdict.subarray(0, 6)]).toEqual([PASS, PASS, PASS, D.tapShort, D.unsupportedGso, D.badOffload]);
    expect(out.offs[0]).toBe(64 + VNET_HDR_LEN);
    expect(out.lens[0]).toBe(f.length);
    expect(slab.subarray(out.offs[0], out.offs[0] + out.lens[0]).equals(f)).toBe(true);
    expect([out.mss[0], out.mss[1], out.mss[2]]).toEqual([0, 1400, 0]);
    expect(out.offs[1]).toBe(slot + 64 + VNET_HDR_LEN);
    expect(checkUdp(slab, out.offs[2] + 34, f.length - 34, IP_A, IP_B)).toBe(0);
  });

  it('without vnet headers only the length is checked', () => {
    const tap = new MemoryTap(false);
    const out = new FrameBatch(4);
    tap.inbox.push(Buffer.alloc(13), Buffer.alloc(14));
    expect(tap.readBatch(Buffer.alloc(4096), 2048, 64, 4, out)).toBe(2);
    expect([...out.verdict.subarray(0, 2)]).toEqual([D.tapShort, PASS]);
    expect([out.offs[0], out.offs[1]]).toEqual([64, 2048 + 64]);
  });
});

describe('DatagramPort: GRO runs split by the port', () => {
  it('lists each datagram of a run with its sender; a truncated slot is one udpTruncated entry', () => {
    const u = new MemoryUnderlay();
    const rx = u.bind(2, 4789, false, true);
    for (let k = 0; k < 3; k++) u.inject(1, 5000, 2, 4789, Buffer.alloc(100, k));
    u.inject(1, 5000, 2, 4789, Buffer.alloc(40, 9)); // shorter: ends the run
    u.inject(3, 6000, 2, 4789, Buffer.alloc(100, 7)); // another sender
    u.inject(3, 6000, 2, 4789, Buffer.alloc(5000)); // larger than a slot
    const out = new DatagramBatch(64 * 8);
    const n = rx.recvBatch(Buffer.alloc(4096 * 8), 4096, 64, 8, out);
    expect(out.slots).toBe(3);
    expect(n).toBe(6);
    expect([...out.lens.subarray(0, 6)]).toEqual([100, 100, 100, 40, 100, 0]);
    expect([...out.offs.subarray(0, 5)]).toEqual([64, 164, 264, 364, 4096 + 64]);
    expect([...out.addrs.subarray(0, 6)]).toEqual([1, 1, 1, 1, 3, 3]);
    expect([...out.verdict.subarray(0, 6)]).toEqual([PASS, PASS, PASS, PASS, PASS, D.udpTruncated]);
  });

  it('a datapath behind a GRO port delivers every datagram of a run', async () => {
    const u = new MemoryUnderlay();
    const A = ip('192.0.2.1');
    const B = ip('192.0.2.2');
    const dp = new Datapath(u.bind(B, 4789, false, true), [u.bind(B)], { vxlanPort: 4789 });
    const tap = new MemoryTap();
    dp.addNetwork(4096, 1450, tap);
    dp.setLocal(4096, ...macParts(MAC_B), IP_B);
    dp.setRemote(4096, ...macParts(MAC_A), IP_A, A, false);
    for (let k = 0; k < 5; k++) u.inject(A, 1, B, 4789, vxlan(4096, ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1000 + k, 2, 60)));
    await new Promise((r) => setTimeout(r, 0));
    expect(tap.written).toHaveLength(5);
    expect(tap.written.map((w) => w.readUInt16BE(34))).toEqual([1000, 1001, 1002, 1003, 1004]);
  });
});
