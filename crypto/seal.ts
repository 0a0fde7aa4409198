// Egress step 8 (router/egress.ts): ESP-seal the datagrams of one frame in place, right after the
// VXLAN header was written and before they are queued. Each datagram k of the frame is laid out
// by encapsulate as
//   [ESP header 16 | inner UDP 8 | VXLAN 8 | inner frame | tail]
// with tail = padding + pad length + next header + ICV (router/wire/esp.ts). For TSO segments the
// tail is exact for the full-size segments (sealTail), so every full segment seals to the same
// length and the run stays one UDP GSO send: one ESP packet per segment.
//
// The headers are written per datagram; the AEAD runs once per batch: records are collected in
// a SealBatch and sealed by one aeadSeal call before the Sender writes anything (its beforeSend
// hook), so nothing leaves unsealed and nothing is sealed twice.
// No SA to the peer (not agreed yet, expired, exhausted) -> espNoSa: never cleartext.
import { C, D, PASS } from '../router/counters.js';
import { tcp4HeaderLen } from '../router/offload.js';
import {
  ESP_HEADER_LEN, ESP_ICV_LEN, ESP_NEXT_UDP, ESP_TAILROOM, ESP_TRAILER_LEN, VXLAN_PORT, espLenFor, espPadFor, writeEspHeader,
  writeEspTrailer, writeUdpHeader,
} from '../router/wire/index.js';
import type { SaStore } from './sa-store.js';

/** What seal needs of the network (router/network.ts's Network; structural, so imports point down). */
export interface SealNetwork {
  readonly rxSlab: Buffer;
  readonly counters: Float64Array;
  segFill: number;
  readonly replyOffs: Int32Array;
}

/** What seal reads and sets of the frame (router/egress.ts's EgressFrame). */
export interface SealFrame {
  readonly vtep: number;
  readonly mss: number;
  readonly start: number;
  readonly n: number;
  readonly stride: number;
  readonly tail: number;
  last: number;
}

/**
 * The tail encapsulate leaves behind each TSO segment of the super-frame at buf[off..off+len):
 * exact for a full segment (inner UDP + VXLAN + headers + mss), so full segments seal to equal
 * lengths. The default (ESP_TAILROOM) when the frame is not TCP (segmentation then fails anyway).
 */
export function sealTail(buf: Buffer, off: number, len: number, mss: number): number {
  const hdr = tcp4HeaderLen(buf, off, len);
  if (hdr === 0) return ESP_TAILROOM;
  return espPadFor(16 + hdr + mss) + ESP_TRAILER_LEN + ESP_ICV_LEN;
}

/** Step 8: seals datagrams 0..e.n-1 of the frame in place (headers now, AEAD per batch). */
export function seal(net: SealNetwork, sas: SaStore, e: SealFrame): number {
  const sa = sas.outbound(e.vtep);
  if (sa === undefined) return D.espNoSa;
  const first = sa.reserve(e.n);
  if (first === 0) return D.espNoSa;
  const buf = net.rxSlab;
  const batch = sas.sealer;
  // The last segment may need up to 3 bytes more padding than the full ones: it is the last thing
  // in the segmentation area, so those bytes are taken from the free area behind it.
  const lastAt = e.start + (e.n - 1) * e.stride;
  const lastLen = espLenFor(e.last - ESP_HEADER_LEN - e.tail);
  if (e.mss !== 0 && lastAt + lastLen > net.segFill) {
    if (lastAt + lastLen > net.replyOffs[0]) return D.badOffload;
    net.segFill = lastAt + lastLen;
  }
  let len = 0;
  for (let k = 0; k < e.n; k++) {
    const dg = e.start + k * e.stride;
    const room = k === e.n - 1 ? e.last : e.stride;
    const payload = room - ESP_HEADER_LEN - e.tail; // inner UDP + VXLAN + frame
    writeUdpHeader(buf, dg + ESP_HEADER_LEN, VXLAN_PORT, VXLAN_PORT, payload - 8);
    writeEspHeader(buf, dg, sa.spi, first + k);
    len = writeEspTrailer(buf, dg, payload, ESP_NEXT_UDP);
    batch.add(buf, dg, len, sa.handle);
  }
  e.last = len;
  net.counters[C.espSealed] += e.n;
  return PASS;
}

