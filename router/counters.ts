// Counters live in Float64Arrays indexed by constants, so the hot path only increments numbers.
// Every drop has a named reason; `tapmesh stats` and `network inspect` show them by name.

/** Per-network traffic counters. */
export const C = {
  tapRxFrames: 0, // frames read from the network's TAP (from local containers)
  tapRxBytes: 1,
  vxlanTxPackets: 2, // VXLAN datagrams sent to peers
  vxlanTxBytes: 3,
  vxlanRxPackets: 4, // VXLAN datagrams accepted for this network
  vxlanRxBytes: 5,
  tapTxFrames: 6, // frames written into the TAP (delivered to local containers)
  tapTxBytes: 7,
  arpReplied: 8, // ARP requests answered by the router itself
  broadcastReplicated: 9, // copies of a broadcast sent to static VTEPs (head-end replication)
  learned: 10, // MACs learned from static VTEPs
  tsoFrames: 11, // TCP super-frames from the TAP cut into segments here
  tsoSegments: 12, // segments those produced
  groMerged: 13, // received segments merged into a super-frame for the TAP
  rxPartialCsum: 14, // received frames with a partial inner checksum (kernel peer on veth), delivered as such
  espSealed: 15, // datagrams of an encrypted network sealed as ESP
  espOpened: 16, // ESP datagrams opened under a current SA and accepted for this network
  learnedAged: 17, // learned MACs forgotten after ageing (no frame from them for learning.ageingMs)
  gsoJoined: 18, // plain datagrams sent as part of another's UDP GSO run (router/sender.ts queueDatagram)
} as const;
export const COUNTER_NAMES = Object.keys(C) as (keyof typeof C)[];

/** Drop reasons. Global ones (before the network is known) are counted on the datapath itself. */
export const D = {
  // UDP side, before the VNI is known
  udpTruncated: 0, // datagram larger than a slot (MSG_TRUNC)
  vxlanShort: 1, // shorter than VXLAN header + Ethernet header
  vxlanBadFlags: 2, // flags not exactly 0x08 or reserved bits set (as the kernel driver requires)
  unknownVni: 3, // VNI of no network here
  // UDP side, per network
  unknownVtep: 4, // sender is not a known VTEP of that network
  spoofedSrcMac: 5, // inner source MAC belongs elsewhere, or is unknown from a tapmesh peer
  spoofedSrcIp: 6, // inner source IP (IPv4 or ARP) does not belong to the source MAC
  remoteUnknownDst: 7, // unicast to a MAC that is not a local endpoint
  remoteBroadcast: 8, // broadcast/multicast from a tapmesh peer (only static VTEPs may flood)
  tapTxFull: 9, // TAP write refused (queue full or error)
  // TAP side, per network
  tapShort: 10, // frame shorter than an Ethernet header
  tapUnknownSrc: 11, // source MAC is not a local endpoint (spoofed or bridge noise)
  arpUnknown: 12, // ARP request for an IP no endpoint has
  arpLocal: 13, // ARP request for a local endpoint (it answers itself)
  arpMalformed: 14, // ARP that is not Ethernet/IPv4 or is truncated
  arpOther: 15, // ARP reply / gratuitous ARP: nothing to do
  broadcastNoFlood: 16, // broadcast/multicast with no static VTEP to replicate to
  unknownDst: 17, // unicast to a MAC no table knows
  localDst: 18, // unicast to a local endpoint reaching the TAP (bridge flooding)
  udpTxFull: 19, // socket send buffer full (EAGAIN)
  udpTxError: 20, // the kernel refused a datagram (e.g. EMSGSIZE, EIO)
  unsupportedGso: 21, // a TAP super-frame of a kind we did not enable (not TCPv4)
  badOffload: 22, // virtio header inconsistent with the frame (checksum or segmentation impossible)
  // encryption (crypto/): per network on egress, on the datapath for ESP before the VNI is known
  espNoSa: 23, // egress: no usable SA to that peer yet (never sent in cleartext); ingress: unknown or expired SPI
  cleartextOnEncrypted: 24, // plain VXLAN carrying an encrypted network's VNI
  espMalformed: 25, // ESP too short, misaligned, SPI 0, bad trailer or not UDP/VXLAN inside
  espWrongPeer: 26, // ESP whose SPI belongs to another sender
  espReplay: 27, // sequence number already accepted or left of the window
  espAuthFail: 28, // tag did not verify (tampered, or not our key)
  // Service VIPs and the routing mesh (balancer/vip-stage.ts), per network
  vipMalformed: 29, // to a VIP or from the mesh source: IPv4/TCP/UDP header fails its check
  vipFragment: 30, // IPv4 fragment to a VIP (no ports to balance on)
  vipProto: 31, // neither TCP nor UDP to a VIP (ping, ...)
  vipRefused: 32, // port the service does not publish: answered with RST / ICMP port unreachable
  vipNoFlow: 33, // TCP segment other than a SYN with no connection: answered with RST
  vipNoTask: 34, // no task can take a new flow (none, or all drained): RST / ICMP
  vipTableFull: 35, // connection table full of entries that may not be evicted: RST / ICMP
  vipReplyTaken: 36, // the client's port already reaches that task through another flow: RST / ICMP
  vipUnknown: 37, // to the VIP MAC but for no VIP of the network (stale ARP)
  meshSpoofed: 38, // from the mesh MAC but not from the mesh source address
  meshConflict: 39, // two hosts' mesh connections on the same source port to the same task
  // Flood-and-learn (router/learned.ts), per network
  learnedFull: 40, // new MAC from a static VTEP while the network's learned entries are at learning.maxLearned
} as const;
export const DROP_NAMES = Object.keys(D) as (keyof typeof D)[];

export type CounterSnapshot = Record<string, number>;

export function snapshot(names: readonly string[], values: Float64Array, skipZero = false): CounterSnapshot {
  const out: CounterSnapshot = {};
  for (let i = 0; i < names.length; i++) {
    if (skipZero && values[i] === 0) continue;
    out[names[i]] = values[i];
  }
  return out;
}

/**
 * Stage verdicts. A stage function returns PASS (go on with the next stage), CONSUMED (the stage
 * took the frame: answered, replicated, queued) or a drop reason, which is a D index (>= 0). The
 * loop that runs the stages counts drops; no stage increments a drop counter itself.
 */
export const PASS = -1;
export const CONSUMED = -2;
/** The stage rewrote the frame for a container on this host: it goes back into the TAP (egress). */
export const LOOPBACK = -3;
