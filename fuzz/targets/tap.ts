// TAP frames into the datapath's send path (Datapath.pumpTap → processTap) on a plain TAP and
// on a virtio-header TAP (checksum offload, TSO super-frames). Every frame ends in exactly one
// place: a drop counter, an ARP answer, a TSO cut, or one VXLAN datagram (unicast or one copy
// per static VTEP; the scene has one).
import { VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, VNET_HDR_LEN } from '../../router/offload.js';
import { arpFrame, ip, ipv4Frame } from '../../router/testframes.js';
import { Failures, Mutator, hex, type FuzzResult, type FuzzTarget } from '../mutate.js';
import { D, IP_A, IP_B, IP_S, MAC_A, MAC_B, counter, innerFrames, scene, sum } from './scene.js';

const DROPS = ['tapShort', 'unsupportedGso', 'badOffload', 'tapUnknownSrc', 'arpMalformed', 'arpOther', 'arpLocal', 'arpUnknown',
  'broadcastNoFlood', 'localDst', 'unknownDst'] as const;

function plainSamples(): Buffer[] {
  return [
    ...innerFrames(false),
    arpFrame(1, MAC_A, IP_A, '00:00:00:00:00:00', IP_B), // answered here
    arpFrame(1, MAC_A, IP_A, '00:00:00:00:00:00', ip('10.0.9.77')), // replicated to S
    arpFrame(1, MAC_A, IP_A, '00:00:00:00:00:00', IP_S),
    ipv4Frame('ff:ff:ff:ff:ff:ff', MAC_A, IP_A, ip('10.0.9.255'), 17, 68, 67, 300),
  ];
}

/** virtio_net_hdr (10 bytes, little-endian) + frame. */
function vnet(frame: Buffer, flags: number, gso: number, gsoSize: number, csumStart: number, csumOffset: number): Buffer {
  const h = Buffer.alloc(VNET_HDR_LEN);
  h[0] = flags;
  h[1] = gso;
  h.writeUInt16LE(gso ? 54 : 0, 2);
  h.writeUInt16LE(gsoSize, 4);
  h.writeUInt16LE(csumStart, 6);
  h.writeUInt16LE(csumOffset, 8);
  return Buffer.concat([h, frame]);
}

function vnetSamples(): Buffer[] {
  const tcp = ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 40000, 80, 200);
  const udp = ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 5000, 53, 100);
  const big = ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 40000, 80, 4000);
  return [
    ...plainSamples().map((f) => vnet(f, 0, 0, 0, 0, 0)),
    vnet(tcp, VNET_F_NEEDS_CSUM, 0, 0, 34, 16),
    vnet(udp, VNET_F_NEEDS_CSUM, 0, 0, 34, 6),
    vnet(big, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 1398, 34, 16),
    vnet(big, VNET_F_NEEDS_CSUM, VNET_GSO_TCPV4, 536, 34, 16),
  ];
}

export const tapTarget: FuzzTarget = {
  name: 'TAP frames (Datapath.processTap)',
  count: 10_000_000,
  async run(count, seed) {
    const mp = new Mutator(seed, plainSamples(), 2048);
    const mv = new Mutator(seed ^ 0x5a5a5a5a, vnetSamples(), 8192);
    let m = mp;
    let last = 0;
    const sc = scene(() => 0, (dst, at, max) => {
      const len = Math.min(m.next(), max);
      m.out.copy(dst, at, 0, len);
      last = len;
      return len;
    });
    const failures = new Failures();
    const t0 = performance.now();
    let done = 0;
    let batch = 0;
    const inputs = new Map([[sc.plain.net, 0], [sc.vnet.net, 0]]);
    while (done < count) {
      const side = batch++ % 2 === 0 ? sc.plain : sc.vnet;
      m = side === sc.plain ? mp : mv;
      const n = Math.min(side.net.batch, count - done);
      side.tap.pending = n;
      try {
        sc.dp.pumpTap(side.net);
      } catch (e) {
        failures.add(`exception after input ${done} (VNI ${side.net.vni}): ${(e as Error).stack?.split('\n').slice(0, 3).join(' | ')} (last input ${hex(m.out, last)})`);
      }
      inputs.set(side.net, inputs.get(side.net)! + n - side.tap.pending);
      side.tap.pending = 0;
      done += n;
    }
    const seconds = (performance.now() - t0) / 1000;
    let rejected = 0;
    let accepted = 0;
    for (const [net, n] of inputs) {
      const dropped = sum(net.drops, DROPS);
      const datagrams = counter(net, 'vxlanTxPackets') + net.drops[D.udpTxFull] + net.drops[D.udpTxError];
      const handled = counter(net, 'arpReplied') + counter(net, 'tsoFrames') + datagrams - counter(net, 'tsoSegments');
      if (dropped + handled !== n) failures.add(`VNI ${net.vni}: ${dropped} dropped + ${handled} answered/sent != ${n} frames read`);
      rejected += dropped;
      accepted += handled;
    }
    if (sc.tx.sent !== [...inputs.keys()].reduce((s, n) => s + counter(n, 'vxlanTxPackets'), 0)) failures.add(`send socket saw ${sc.tx.sent} datagrams, counters say otherwise`);
    return { name: this.name, inputs: count, rejected, accepted, seconds, failures: failures.done() } satisfies FuzzResult;
  },
};
