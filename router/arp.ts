// The ARP responder: requests from local containers for a known remote endpoint are answered
// here from the neighbour table and written back into the TAP, so no ARP request ever leaves
// the host for an endpoint the cluster knows (design.md §2, step 1). Hot path, no allocation:
// replies are built in the network's reply slots; headers through router/wire.
import { C, CONSUMED, D, PASS } from './counters.js';
import { ETH_HDR, type Network } from './network.js';
import {
  ARP_LEN, ArpOp, EtherType, VNET_HDR_LEN, arpOp, arpSenderIp, arpSenderIpKey, arpSenderMac, arpTargetIpKey, checkArp,
  ethSrc, writeArp, writeEthHeader, writeVnetNone,
} from './wire/index.js';

/** An ARP reply is padded to the Ethernet minimum. */
const ETH_MIN = 60;

/**
 * The ARP step of egress for the frame at buf[off..off+len) read from the TAP. Returns CONSUMED
 * when it was answered, a drop reason, or PASS when the target is unknown and static VTEPs
 * exist, so the request may still be replicated to them.
 */
export function answerArp(net: Network, buf: Buffer, off: number, len: number): number {
  const a = off + ETH_HDR;
  if (len < ETH_HDR + ARP_LEN || checkArp(buf, a, len - ETH_HDR) !== 0) return D.arpMalformed;
  const spa = arpSenderIpKey(buf, a);
  const tpa = arpTargetIpKey(buf, a);
  if (arpOp(buf, a) !== ArpOp.Request || spa === tpa) return D.arpOther;
  const r = net.neigh.find(0, tpa);
  if (r < 0) {
    if (net.localIps.find(0, tpa) >= 0) return D.arpLocal;
    return net.staticVteps.length > 0 ? PASS : D.arpUnknown;
  }
  if (net.replyCount === net.replyOffs.length) flushArpReplies(net);
  const pre = net.tap.vnet ? VNET_HDR_LEN : 0;
  const v = net.replyOffs[net.replyCount]; // reply slots live in the same slab
  if (pre) writeVnetNone(buf, v);
  const o = v + pre;
  const mac = net.neigh.a[r] * 0x100000000 + (net.neigh.b[r] >>> 0);
  // To the requester, from the answered MAC; sender = the answer, target = the requester.
  writeEthHeader(buf, o, ethSrc(buf, off), mac, EtherType.Arp);
  writeArp(buf, o + ETH_HDR, ArpOp.Reply, mac, tpa >>> 0, arpSenderMac(buf, a), arpSenderIp(buf, a));
  buf.fill(0, o + ETH_HDR + ARP_LEN, o + ETH_MIN);
  net.replyLens[net.replyCount++] = pre + ETH_MIN;
  net.counters[C.arpReplied]++;
  return CONSUMED;
}

/** Write the pending replies into the TAP in one batch. */
export function flushArpReplies(net: Network): void {
  const used = net.tap.writeBatch(net.rxSlab, net.replyOffs, net.replyLens, 0, net.replyCount);
  for (let k = 0; k < net.replyCount; k++) {
    if (k < used && net.replyLens[k] >= 0) {
      net.counters[C.tapTxFrames]++;
      net.counters[C.tapTxBytes] += ETH_MIN;
    } else net.drops[D.tapTxFull]++;
  }
  net.replyCount = 0;
}
