// The ARP responder: requests from local containers for a known remote endpoint are answered
// here from the neighbour table and written back into the TAP, so no ARP request ever leaves
// the host for an endpoint the cluster knows (design.md §2, step 1). Hot path, no allocation:
// replies are built in the network's reply slots with copyWithin.
import { C, D } from './counters.js';
import { ETH_HDR, writeMac, type Network } from './network.js';
import { VNET_HDR_LEN, writeVnetNone } from './offload.js';

const ARP_LEN = 28;

/**
 * Handle an ARP frame at buf[off..off+len) read from the TAP. Returns true when it is dealt with
 * (answered, or dropped and counted); false when the target is unknown and static VTEPs exist,
 * so the request may still be replicated to them.
 */
export function answerArp(net: Network, buf: Buffer, off: number, len: number): boolean {
  const drops = net.drops;
  const a = off + ETH_HDR;
  if (len < ETH_HDR + ARP_LEN || buf[a] !== 0 || buf[a + 1] !== 1 || buf[a + 2] !== 8 || buf[a + 3] !== 0 ||
    buf[a + 4] !== 6 || buf[a + 5] !== 4) {
    drops[D.arpMalformed]++;
    return true;
  }
  const op = (buf[a + 6] << 8) | buf[a + 7];
  const spa = (buf[a + 14] << 24) | (buf[a + 15] << 16) | (buf[a + 16] << 8) | buf[a + 17];
  const tpa = (buf[a + 24] << 24) | (buf[a + 25] << 16) | (buf[a + 26] << 8) | buf[a + 27];
  if (op !== 1 || spa === tpa) {
    drops[D.arpOther]++;
    return true;
  }
  const r = net.neigh.find(0, tpa);
  if (r < 0) {
    if (net.localIps.find(0, tpa) >= 0) {
      drops[D.arpLocal]++;
      return true;
    }
    if (net.staticVteps.length > 0) return false;
    drops[D.arpUnknown]++;
    return true;
  }
  if (net.replyCount === net.replyOffs.length) flushArpReplies(net);
  const pre = net.tap.vnet ? VNET_HDR_LEN : 0;
  const out = buf; // reply slots live in the same slab
  const v = net.replyOffs[net.replyCount];
  if (pre) writeVnetNone(out, v);
  const o = v + pre;
  const macHi = net.neigh.a[r];
  const macLo = net.neigh.b[r];
  // Ethernet: to the requester, from the answered MAC.
  out.copyWithin(o, off + 6, off + 12);
  writeMac(out, o + 6, macHi, macLo);
  out[o + 12] = 0x08;
  out[o + 13] = 0x06;
  const p = o + ETH_HDR;
  out[p] = 0; out[p + 1] = 1; out[p + 2] = 8; out[p + 3] = 0; out[p + 4] = 6; out[p + 5] = 4;
  out[p + 6] = 0; out[p + 7] = 2; // reply
  writeMac(out, p + 8, macHi, macLo); // sender hardware = answered MAC
  out.copyWithin(p + 14, a + 24, a + 28); // sender protocol = asked IP
  out.copyWithin(p + 18, a + 8, a + 18); // target hw + protocol = requester's
  out.fill(0, p + ARP_LEN, o + 60); // pad to the Ethernet minimum
  net.replyLens[net.replyCount++] = pre + 60;
  net.counters[C.arpReplied]++;
  return true;
}

/** Write the pending replies into the TAP in one batch. */
export function flushArpReplies(net: Network): void {
  const used = net.tap.writeBatch(net.rxSlab, net.replyOffs, net.replyLens, 0, net.replyCount);
  for (let k = 0; k < net.replyCount; k++) {
    if (k < used && net.replyLens[k] >= 0) {
      net.counters[C.tapTxFrames]++;
      net.counters[C.tapTxBytes] += 60;
    } else net.drops[D.tapTxFull]++;
  }
  net.replyCount = 0;
}
