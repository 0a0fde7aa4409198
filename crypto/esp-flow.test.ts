// The seal and open stages end to end, as the datapath will run them, on the real addon: a batch
// of VXLAN datagrams to several peers sealed in place in a slab (ESP header + inner UDP header in
// the headroom, padding/trailer/ICV in the tailroom), then opened on the receiving side with the
// checks in their order: 1 checkEsp, 2 SPI -> inbound SA and sender check, 3 replay check,
// 4 aeadOpen (batched), 5 replay commit, 6 trailer check and next header. Replays, flipped bits,
// unknown SPIs, a wrong sender and truncation are each dropped under their own reason.
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { AEAD_OPEN, native } from '../native/index.js';
import {
  ESP_HEADER_LEN, ESP_HEADROOM, ESP_NEXT_UDP, ESP_TAILROOM, VXLAN_PORT, checkEsp, checkEspTrailer, espNextHeader,
  espPayloadLen, espSeq, espSpi, vxlanVni, writeEspHeader, writeEspTrailer, writeUdpHeader, writeVxlanHeader,
} from '../router/wire/index.js';
import { Replay } from './replay.js';
import { InboundSaTable, createInboundSa, createOutboundSa, type OutboundSa } from './sa.js';

const n = native();
const SLOT = 2048;
const FRAME_AT = 64; // where the plain path would put the Ethernet frame (VXLAN header at FRAME_AT-8)

type Drop = 'malformed' | 'noSa' | 'wrongPeer' | 'replay' | 'auth' | 'trailer';

describe('ESP seal/open stages over the addon', () => {
  it('a batch to several peers seals in place and opens on the other side; hostile copies are dropped by reason', () => {
    const peers = [0x0a000002, 0x0a000003, 0x0a000004];
    const me = 0x0a000001;
    const inbound = new InboundSaTable();
    const outs: OutboundSa[] = [];
    for (const p of peers) {
      const km = { spi: 0x10000 + p, key: new Uint8Array(randomBytes(16)), salt: new Uint8Array(randomBytes(4)) };
      outs.push(createOutboundSa(n, km, p, 0));
      inbound.add(createInboundSa(n, km, me, 0)); // the receiver's copy (sender = me)
    }
    const count = 30;
    const slab = Buffer.alloc(SLOT * (count + 8));
    const offs = new Int32Array(count + 8), lens = new Int32Array(count + 8), sas = new Int32Array(count + 8);
    const frames: Buffer[] = [];

    // ---- seal stage: frames were placed at FRAME_AT with the VXLAN header in front (plain path) ----
    const firstSeq = outs.map((o) => o.reserve(count / peers.length));
    for (let i = 0; i < count; i++) {
      const p = i % peers.length, base = i * SLOT;
      const frame = randomBytes(60 + ((i * 97) % 1400));
      frames.push(frame);
      slab.set(frame, base + FRAME_AT);
      writeVxlanHeader(slab, base + FRAME_AT - 8, 4097 + p);
      const esp = base + FRAME_AT - 8 - ESP_HEADROOM; // headroom: ESP 16 + inner UDP 8
      writeUdpHeader(slab, esp + ESP_HEADER_LEN, 50000 + i, VXLAN_PORT, 8 + frame.length);
      writeEspHeader(slab, esp, outs[p].spi, firstSeq[p] + Math.floor(i / peers.length));
      offs[i] = esp;
      lens[i] = writeEspTrailer(slab, esp, 16 + frame.length, ESP_NEXT_UDP);
      expect(esp + lens[i]).toBeLessThanOrEqual(base + FRAME_AT + frame.length + ESP_TAILROOM);
      sas[i] = outs[p].handle;
    }
    expect(n.aeadSeal(slab, offs, lens, sas, 0, count)).toBe(count);
    for (let i = 0; i < count; i++) expect(slab.includes(frames[i].subarray(0, 32), offs[i])).toBe(false);

    // ---- hostile copies appended to the received batch ----
    const copy = (from: number, to: number): void => {
      slab.copy(slab, to * SLOT, offs[from], offs[from] + lens[from]);
      offs[to] = to * SLOT;
      lens[to] = lens[from];
    };
    copy(0, count); // replay of packet 0
    copy(1, count + 1);
    slab[offs[count + 1] + 40] ^= 4; // flipped bit
    copy(2, count + 2);
    slab.writeUInt32BE(0xdeadbeef, offs[count + 2]); // unknown SPI
    copy(3, count + 3);
    lens[count + 3] = 21; // truncated
    copy(4, count + 4); // from the wrong sender (see src below)
    copy(5, count + 5);
    lens[count + 5] -= 3; // not on a 4-byte boundary
    const total = count + 6;
    const src = (i: number): number => (i === count + 4 ? 0x0a0000ff : me);

    // ---- open stage ----
    const drops: Record<Drop, number> = { malformed: 0, noSa: 0, wrongPeer: 0, replay: 0, auth: 0, trailer: 0 };
    const keep = new Int32Array(total); // 1 = goes to aeadOpen
    for (let i = 0; i < total; i++) {
      if (checkEsp(slab, offs[i], lens[i]) !== 0) { drops.malformed++; continue; } // 1
      const sa = inbound.get(espSpi(slab, offs[i])); // 2
      if (!sa || !sa.live(0)) { drops.noSa++; continue; }
      if (sa.peerAddr !== src(i)) { drops.wrongPeer++; continue; }
      if (sa.window.check(espSeq(slab, offs[i])) !== Replay.Ok) { drops.replay++; continue; } // 3
      sas[i] = sa.handle;
      keep[i] = 1;
    }
    // Packets that passed 1-3 are opened in one batched call, compacted into their own arrays.
    const status = new Uint8Array(total);
    const openOffs = new Int32Array(total), openLens = new Int32Array(total), openSas = new Int32Array(total), idx: number[] = [];
    for (let i = 0; i < total; i++) if (keep[i]) { openOffs[idx.length] = offs[i]; openLens[idx.length] = lens[i]; openSas[idx.length] = sas[i]; idx.push(i); }
    n.aeadOpen(slab, openOffs, openLens, openSas, 0, idx.length, status); // 4
    const delivered: number[] = [];
    idx.forEach((i, k) => {
      if (status[k] !== AEAD_OPEN.OK) { drops.auth++; return; }
      const sa = inbound.get(espSpi(slab, offs[i]))!;
      if (sa.window.commit(espSeq(slab, offs[i])) !== Replay.Ok) { drops.replay++; return; } // 5
      if (checkEspTrailer(slab, offs[i], lens[i]) !== 0 || espNextHeader(slab, offs[i], lens[i]) !== ESP_NEXT_UDP) { drops.trailer++; return; } // 6
      sa.packets++;
      delivered.push(i);
    });

    expect(drops).toEqual({ malformed: 2, noSa: 1, wrongPeer: 1, replay: 1, auth: 1, trailer: 0 });
    expect(delivered).toEqual(Array.from({ length: count }, (_, i) => i));
    for (const i of delivered) {
      const esp = offs[i];
      const udpLen = espPayloadLen(slab, esp, lens[i]);
      expect(udpLen).toBe(16 + frames[i].length);
      expect(vxlanVni(slab, esp + ESP_HEADER_LEN + 8)).toBe(4097 + (i % peers.length));
      expect(slab.subarray(esp + 32, esp + 32 + frames[i].length).equals(frames[i])).toBe(true);
    }
    // The replayed packet 0 opened fine the first time and is refused from now on.
    expect(inbound.get(outs[0].spi)!.window.check(espSeq(slab, offs[0]))).toBe(Replay.Duplicate);
    for (const o of outs) o.release(n);
    for (const sa of [...inbound]) n.aeadDestroy(inbound.remove(sa.spi)!.handle);
  });

  it('two copies of one packet inside the same batch: both pass the check, only one is committed', () => {
    const km = { spi: 0x4242, key: new Uint8Array(16).fill(3), salt: new Uint8Array(4).fill(1) };
    const out = createOutboundSa(n, km, 2, 0), inb = createInboundSa(n, km, 1, 0);
    const slab = Buffer.alloc(256);
    writeEspHeader(slab, 0, km.spi, out.reserve(1));
    const len = writeEspTrailer(slab, 0, 40, ESP_NEXT_UDP);
    n.aeadSeal(slab, new Int32Array([0]), new Int32Array([len]), out.handle, 0, 1);
    slab.copy(slab, 128, 0, len);
    const seq = espSeq(slab, 0);
    expect([inb.window.check(seq), inb.window.check(seq)]).toEqual([Replay.Ok, Replay.Ok]);
    const st = new Uint8Array(2);
    expect(n.aeadOpen(slab, new Int32Array([0, 128]), new Int32Array([len, len]), inb.handle, 0, 2, st)).toBe(2);
    expect([inb.window.commit(seq), inb.window.commit(seq)]).toEqual([Replay.Ok, Replay.Duplicate]);
    out.release(n);
    n.aeadDestroy(inb.handle);
  });
});
