// The encrypted network the ESP target drives: host B (the datapath under test) with one
// encrypted network (VNI 4098), its ESP socket (UDP 4500) and its VXLAN socket (4789) fed by the
// fuzz ports, and the senders of authentic ESP:
// - host A, a second real Datapath whose egress seals frames (crypto/seal.ts) under A's current
//   outbound SA; what it sends is captured, not delivered;
// - the harness sealer, which seals a chosen plaintext under an SA exactly as seal() lays it out
//   (router/wire writers, one aeadSeal), so that authentic datagrams with malformed insides
//   reach the stages behind the AEAD; it draws A's sequence numbers from A's own SA, so A's
//   numbers are never used twice;
// - A's previous SA (retired on B, still inside its grace) and peer C's SA, through SaStores of
//   their own.
// B's TAP is an oracle: every frame written must be the plaintext of an authentic datagram
// (looked up by hash, each authentic datagram at most once), so nothing forged or replayed
// reaches a container unnoticed.
import { randomBytes } from 'node:crypto';
import { SaStore } from '../../crypto/sa-store.js';
import { DEFAULT_SA_LIFETIMES, type OutboundSa } from '../../crypto/sa.js';
import type { SaKeyMaterial } from '../../crypto/keys.js';
import { native } from '../../native/index.js';
import { C } from '../../router/counters.js';
import { Datapath, type Network } from '../../router/datapath.js';
import type { DatagramPort, FrameBatch, FramePort } from '../../router/ports.js';
import { ip, ipv4Frame, vxlan } from '../../router/testframes.js';
import { decodeFrames } from '../../router/tap-decode.js';
import { ESP_HEADER_LEN, ESP_NEXT_UDP, ESP_UDP_PORT, VXLAN_PORT, macParts, writeEspHeader, writeEspTrailer, writeUdpHeader } from '../../router/wire/index.js';
import { FuzzUdp, type Generate } from '../ports.js';

export const VNI_ENC = 4098;
export const A = ip('192.0.2.1');
export const B = ip('192.0.2.2');
export const C_HOST = ip('192.0.2.3');
export const X = ip('198.51.100.7');
export const MAC_A = '02:42:0a:00:0a:02';
export const MAC_B = '02:42:0a:00:0a:03';
export const MAC_C = '02:42:0a:00:0a:04';
export const IP_A = ip('10.0.10.2');
export const IP_B = ip('10.0.10.3');
export const IP_C = ip('10.0.10.4');
export const SPI_OLD = 0x1000;
export const SPI_A = 0x1001;
export const SPI_C = 0x2000;
/** UDP destination port of A's genuine frames; their payload starts with id and ~id. */
export const GENUINE_PORT = 7777;
const FOREVER = 1e12;
const LIFE = { ...DEFAULT_SA_LIFETIMES, rekeyAfterMs: FOREVER, rejectAfterMs: FOREVER, inboundGraceMs: FOREVER };

const km = (spi: number): SaKeyMaterial => ({ spi, key: new Uint8Array(randomBytes(16)), salt: new Uint8Array(randomBytes(4)) });

/** FNV-1a over buf[off..off+len): the key of a plaintext frame in the oracle's table. */
export function fnv(buf: Uint8Array, off: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = off; i < off + len; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  return (h ^ len) >>> 0;
}

/** Plaintexts that may be delivered: hash → how many authentic datagrams carry it and were not delivered yet. */
export class Allowed {
  private readonly left = new Map<number, number>();
  add(h: number): void {
    this.left.set(h, (this.left.get(h) ?? 0) + 1);
  }
  take(h: number): boolean {
    const n = this.left.get(h);
    if (n === undefined) return false;
    if (n === 1) this.left.delete(h);
    else this.left.set(h, n - 1);
    return true;
  }
  get size(): number {
    return this.left.size;
  }
}

/** A genuine frame from A: UDP to GENUINE_PORT, payload id, ~id, then a pattern of the id. */
export function genuineFrame(dst: Buffer, at: number, id: number): number {
  const payload = 16 + (id % 13) * 37;
  const f = ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1234, GENUINE_PORT, payload);
  f.writeUInt32BE(id, 42);
  f.writeUInt32BE(~id >>> 0, 46);
  for (let i = 50; i < f.length; i++) f[i] = (id * 7 + i) & 0xff;
  f.copy(dst, at);
  return f.length;
}

/** The id of a genuine frame, or -1. */
export function genuineId(buf: Buffer, off: number, len: number): number {
  if (len < 50 || buf.readUInt16BE(off + 36) !== GENUINE_PORT) return -1;
  const id = buf.readUInt32BE(off + 42);
  return buf.readUInt32BE(off + 46) === (~id >>> 0) ? id : -1;
}

/** B's TAP: checks each written frame against the oracle; reads nothing (B's containers are silent). */
export class OracleTap implements FramePort {
  readonly vnet = false;
  written = 0;
  /** Written frames that were no authentic datagram's plaintext (or one more time than sent). */
  forged = 0;
  firstForged = '';
  onGenuine: (id: number) => void = () => {};
  constructor(private readonly allowed: Allowed) {}
  readBatch(slab: Buffer, slotSize: number, headroom: number, _max: number, out: FrameBatch): number {
    decodeFrames(slab, slotSize, headroom, 0, false, out);
    return 0;
  }
  writeBatch(buf: Buffer, offs: Int32Array, lens: Int32Array, start: number, count: number): number {
    for (let i = start; i < start + count; i++) {
      this.written++;
      if (!this.allowed.take(fnv(buf, offs[i], lens[i]))) {
        if (this.forged++ === 0) this.firstForged = buf.subarray(offs[i], offs[i] + Math.min(lens[i], 128)).toString('hex');
        continue;
      }
      const id = genuineId(buf, offs[i], lens[i]);
      if (id >= 0) this.onGenuine(id);
    }
    return count;
  }
  onReadable(): void {}
  close(): void {}
}

/** A's side: frames in through a generated TAP, sealed datagrams out into a queue. */
class CaptureUdp implements DatagramPort {
  readonly port = 40000;
  readonly gso = false;
  readonly gro = false;
  readonly sent: Buffer[] = [];
  recvBatch(): number {
    return 0;
  }
  sendBatch(buf: Buffer, offs: Int32Array, lens: Int32Array, _a: Uint32Array, ports: Uint16Array, _s: Uint16Array, start: number, count: number): number {
    for (let i = start; i < start + count; i++) if (ports[i] === ESP_UDP_PORT) this.sent.push(Buffer.from(buf.subarray(offs[i], offs[i] + lens[i])));
    return count;
  }
  onReadable(): void {}
  close(): void {}
}

class GenTap implements FramePort {
  readonly vnet = false;
  pending = 0;
  constructor(private readonly gen: Generate) {}
  readBatch(slab: Buffer, slotSize: number, headroom: number, max: number, out: FrameBatch): number {
    const n = Math.min(max, out.cap, this.pending);
    for (let i = 0; i < n; i++) out.lens[i] = this.gen(slab, i * slotSize + headroom, slotSize - headroom);
    this.pending -= n;
    decodeFrames(slab, slotSize, headroom, n, false, out);
    return n;
  }
  writeBatch(_b: Buffer, _o: Int32Array, _l: Int32Array, _s: number, count: number): number {
    return count;
  }
  onReadable(): void {}
  close(): void {}
}

/** Seals a chosen plaintext (inner UDP + VXLAN + frame) as seal() would, under one SA. */
export class HarnessSealer {
  private readonly aead = native();
  private readonly offs = new Int32Array(1);
  private readonly lens = new Int32Array(1);
  constructor(private readonly sa: () => OutboundSa) {}

  /** ESP of plain[0..plen) into dst[0..); `tweak` may corrupt the trailer before sealing. Returns its length. */
  seal(dst: Buffer, plain: Buffer, plen: number, tweak: (dst: Buffer, len: number) => void): number {
    const sa = this.sa();
    const seq = sa.reserve(1);
    writeEspHeader(dst, 0, sa.spi, seq);
    plain.copy(dst, ESP_HEADER_LEN, 0, plen);
    const len = writeEspTrailer(dst, 0, plen, ESP_NEXT_UDP);
    tweak(dst, len);
    this.offs[0] = 0;
    this.lens[0] = len;
    this.aead.aeadSeal(dst, this.offs, this.lens, sa.handle, 0, 1);
    return len;
  }
}

/** Inner UDP + VXLAN datagram of a frame, as seal() puts it inside ESP. */
export function innerDatagram(frame: Buffer): Buffer {
  const v = vxlan(VNI_ENC, frame);
  const b = Buffer.alloc(8 + v.length);
  writeUdpHeader(b, 0, VXLAN_PORT, VXLAN_PORT, v.length);
  v.copy(b, 8);
  return b;
}

export interface EspScene {
  b: Datapath;
  net: Network;
  espRx: FuzzUdp;
  vxRx: FuzzUdp;
  tap: OracleTap;
  allowed: Allowed;
  /** Seals `n` genuine frames (ids from `firstId`) through A's egress; returns the ESP datagrams. */
  sealGenuine(firstId: number, n: number): Buffer[];
  sealers: { a: HarnessSealer; old: HarnessSealer; c: HarnessSealer };
  /** A's current outbound SA (the highest sequence number handed out is its `sent`). */
  outA: () => OutboundSa;
}

export function espScene(espGen: Generate, vxGen: Generate): EspScene {
  const allowed = new Allowed();
  // Host B: the datapath under test.
  const espRx = new FuzzUdp(ESP_UDP_PORT, espGen);
  const vxRx = new FuzzUdp(VXLAN_PORT, vxGen);
  const b = new Datapath(vxRx, [new FuzzUdp(40000, () => 0)], { vxlanPort: VXLAN_PORT, batch: 64, espRx });
  const tap = new OracleTap(allowed);
  const net = b.addNetwork(VNI_ENC, 1408, tap, true);
  b.setLocal(VNI_ENC, ...macParts(MAC_B), IP_B);
  b.setRemote(VNI_ENC, ...macParts(MAC_A), IP_A, A, false);
  b.setRemote(VNI_ENC, ...macParts(MAC_C), IP_C, C_HOST, false);
  // Host A: a real sender.
  const capture = new CaptureUdp();
  let nextId = 0;
  const aTap = new GenTap((dst, at) => {
    const len = genuineFrame(dst, at, nextId++);
    allowed.add(fnv(dst, at, len));
    return len;
  });
  const a = new Datapath(new FuzzUdp(VXLAN_PORT, () => 0), [capture], { vxlanPort: VXLAN_PORT, batch: 64, espRx: new FuzzUdp(ESP_UDP_PORT, () => 0) });
  const aNet = a.addNetwork(VNI_ENC, 1408, aTap, true);
  a.setLocal(VNI_ENC, ...macParts(MAC_A), IP_A);
  a.setRemote(VNI_ENC, ...macParts(MAC_B), IP_B, B, false);
  // SAs: A's old one (retired on B, in its grace), A's current one, C's.
  const kOld = km(SPI_OLD);
  const kA = km(SPI_A);
  const kC = km(SPI_C);
  b.sas.installInbound(A, kOld, FOREVER);
  b.sas.installInbound(A, kA, FOREVER);
  b.sas.installInbound(C_HOST, kC, FOREVER);
  a.sas.setOutbound(B, kA, LIFE);
  const oldStore = new SaStore(native(), () => performance.now());
  oldStore.setOutbound(B, kOld, LIFE);
  const cStore = new SaStore(native(), () => performance.now());
  cStore.setOutbound(B, kC, LIFE);
  const outA = () => a.sas.outbound(B)!;
  return {
    b, net, espRx, vxRx, tap, allowed, outA,
    sealGenuine(firstId, n) {
      nextId = firstId;
      aTap.pending = n;
      capture.sent.length = 0;
      a.pumpTap(aNet);
      if (aNet.counters[C.espSealed] < firstId + n) throw new Error(`A sealed ${aNet.counters[C.espSealed]} of ${firstId + n} genuine frames`);
      return capture.sent.splice(0);
    },
    sealers: { a: new HarnessSealer(outA), old: new HarnessSealer(() => oldStore.outbound(B)!), c: new HarnessSealer(() => cStore.outbound(B)!) },
  };
}
