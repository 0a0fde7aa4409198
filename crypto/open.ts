// Ingress step 1 (router/ingress.ts) for datagrams from the ESP-in-UDP socket (UDP 4500), and
// step 4, the fail-closed check every datagram of an encrypted network passes. A received batch
// is opened in place, in this order:
//
//   1. checkEsp       length, SPI not 0, ciphertext on a 4-byte boundary          (espMalformed)
//   2. lookupSa       SPI -> inbound SA, still live                               (espNoSa)
//   3. checkSender    the outer source is the SA's peer                           (espWrongPeer)
//   4. checkReplay    not already accepted, not left of the window (cheap, before the AEAD)
//                                                                                 (espReplay)
//   5. aeadOpen       one addon call for the batch                                (espAuthFail)
//   6. commitReplay   the window advances only now; a copy in the same batch loses (espReplay)
//   7. checkInner     trailer, next header UDP, inner UDP length and port          (espMalformed)
// Each datagram's verdict is left in the batch; a PASS leaves offs/lens on the VXLAN datagram
// inside, which then runs the normal VXLAN stages with `opened` set. requireSa (step 4 of
// ingress) drops whatever reaches an encrypted network without having been opened.
import { AEAD_OPEN, type NativeAddon } from '../native/index.js';
import { D, PASS } from '../router/counters.js';
import type { DatagramBatch } from '../router/ports.js';
import {
  ESP_HEADER_LEN, ESP_NEXT_UDP, UDP_HEADER_LEN, VXLAN_PORT, checkEsp, checkEspTrailer, espNextHeader, espPayloadLen, espSeq,
  espSpi, udpDstPort, udpLength,
} from '../router/wire/index.js';
import { Replay } from './replay.js';
import type { InboundSa } from './sa.js';
import type { SaStore } from './sa-store.js';

export class EspOpener {
  private readonly offs: Int32Array;
  private readonly lens: Int32Array;
  private readonly handles: Int32Array;
  private readonly idx: Int32Array;
  private readonly status: Uint8Array;
  private readonly sas: (InboundSa | undefined)[];

  constructor(private readonly aead: Pick<NativeAddon, 'aeadOpen'>, readonly cap: number) {
    this.offs = new Int32Array(cap);
    this.lens = new Int32Array(cap);
    this.handles = new Int32Array(cap);
    this.idx = new Int32Array(cap);
    this.status = new Uint8Array(cap);
    this.sas = new Array<InboundSa | undefined>(cap).fill(undefined);
  }

  /** Steps 1-7 for datagrams [0, n) of rxd (in buf): verdicts, and offs/lens of what passed. */
  openBatch(store: SaStore, buf: Buffer, rxd: DatagramBatch, n: number): void {
    const now = store.tick();
    let m = 0;
    for (let i = 0; i < n; i++) {
      if (rxd.verdict[i] !== PASS) continue;
      const off = rxd.offs[i];
      const len = rxd.lens[i];
      if (checkEsp(buf, off, len) !== 0) { // 1.
        rxd.verdict[i] = D.espMalformed;
        continue;
      }
      const sa = store.inbound.get(espSpi(buf, off)); // 2.
      if (sa === undefined || !sa.live(now)) {
        rxd.verdict[i] = D.espNoSa;
        continue;
      }
      if (sa.peerAddr !== rxd.addrs[i] >>> 0) { // 3.
        rxd.verdict[i] = D.espWrongPeer;
        continue;
      }
      if (sa.window.check(espSeq(buf, off)) !== Replay.Ok) { // 4.
        rxd.verdict[i] = D.espReplay;
        continue;
      }
      this.offs[m] = off;
      this.lens[m] = len;
      this.handles[m] = sa.handle;
      this.sas[m] = sa;
      this.idx[m++] = i;
    }
    if (m === 0) return;
    this.aead.aeadOpen(buf, this.offs, this.lens, this.handles, 0, m, this.status); // 5.
    for (let k = 0; k < m; k++) {
      const i = this.idx[k];
      const sa = this.sas[k]!;
      this.sas[k] = undefined;
      if (this.status[k] !== AEAD_OPEN.OK) {
        rxd.verdict[i] = D.espAuthFail;
        continue;
      }
      const off = this.offs[k];
      const len = this.lens[k];
      if (sa.window.commit(espSeq(buf, off)) !== Replay.Ok) { // 6.
        rxd.verdict[i] = D.espReplay;
        continue;
      }
      const v = checkInner(buf, off, len); // 7.
      rxd.verdict[i] = v;
      if (v !== PASS) continue;
      sa.packets++;
      const udp = off + ESP_HEADER_LEN;
      rxd.offs[i] = udp + UDP_HEADER_LEN;
      rxd.lens[i] = udpLength(buf, udp) - UDP_HEADER_LEN;
    }
  }
}

// 7. What tapmesh seals: the trailer as RFC 4303 writes it, then a whole UDP datagram to the VXLAN
// port. (A dummy packet, next header 59, is dropped here too.)
function checkInner(buf: Buffer, off: number, len: number): number {
  if (checkEspTrailer(buf, off, len) !== 0 || espNextHeader(buf, off, len) !== ESP_NEXT_UDP) return D.espMalformed;
  const payload = espPayloadLen(buf, off, len);
  const udp = off + ESP_HEADER_LEN;
  if (payload < UDP_HEADER_LEN || udpLength(buf, udp) !== payload || udpDstPort(buf, udp) !== VXLAN_PORT) return D.espMalformed;
  return PASS;
}

/** Ingress step 4: an encrypted network takes only what was opened under a current SA. */
export function requireSa(d: { readonly opened: boolean }): number {
  return d.opened ? PASS : D.cleartextOnEncrypted;
}
