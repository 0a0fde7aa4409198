// ESP-in-UDP datagrams (UDP 4500) into an encrypted network's receive path (Datapath.pumpEsp →
// crypto/open.ts → the VXLAN stages), and cleartext VXLAN carrying the encrypted VNI on 4789
// (Datapath.pumpUdp, 1 pump in 8). The scene is esp-scene.ts. Inputs on 4500, per datagram:
//   1/16  fresh: the next genuine datagram sealed by A's egress, verbatim, from A (must arrive)
//   1/64  half of them hold a genuine datagram back (an empty datagram goes in its place), half
//         release one later among other traffic (reordered; arrives unless pushed left of the
//         replay window)
//   1/16  authentic with a malformed inside: a mutated inner UDP/VXLAN/frame (1 in 4 also a bad
//         trailer) sealed under A's current SA, A's retired SA or C's SA (reaches the stages
//         behind the AEAD)
//   1/8   a verbatim replay of something already sent, from A
//   1/8   random bytes
//   rest  a datagram mutated (1 in 4 a genuine one not sent yet, so that its sequence number
//         passes the window and the tag check decides; else one already sent): SPI (another
//         peer's, the retired one, unknown, reserved), sequence number around the replay
//         window, bit flips in header / IV / ciphertext / tag, truncation to ESP boundaries,
//         then 0-3 generic mutations (mutate.ts)
// Sources: mostly the SA's peer, else the other peer or a stranger.
// Checks: every datagram listed ends in exactly one drop counter or is accepted; everything
// accepted was opened (espOpened) and written to the TAP; every written frame is the plaintext of
// an authentic datagram, each at most once (OracleTap); every fresh genuine datagram arrived.
import { C, D, DROP_NAMES } from '../../router/counters.js';
import { ESP_HEADER_LEN, ESP_ICV_LEN, ESP_MIN_LEN } from '../../router/wire/index.js';
import { REPLAY_WINDOW } from '../../crypto/replay.js';
import { Failures, Mutator, hex, type FuzzResult, type FuzzTarget } from '../mutate.js';
import { A, C_HOST, IP_A, IP_B, IP_C, MAC_A, MAC_B, MAC_C, SPI_A, SPI_C, SPI_OLD, VNI_ENC, X, espScene, fnv, innerDatagram } from './esp-scene.js';
import { arpFrame, ipv4Frame, vxlan } from '../../router/testframes.js';

const CHUNK = 64;
const RING = 256;
const HELD_MAX = 128;
/** Input state of genuine ids: sent fresh (must arrive), held (may arrive), arrived. */
const FRESH = 1;
const HELD = 2;
const ARRIVED = 3;

function plainSamples(): Buffer[] {
  const frames = [
    ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1234, 53, 40),
    ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 6, 40000, 80, 200),
    ipv4Frame(MAC_B, MAC_C, IP_C, IP_B, 17, 5000, 5001, 700),
    arpFrame(1, MAC_A, IP_A, '00:00:00:00:00:00', IP_B),
    arpFrame(2, MAC_A, IP_A, MAC_B, IP_B),
  ];
  return frames.map(innerDatagram);
}

export const espTarget: FuzzTarget = {
  name: 'ESP datagrams (Datapath.pumpEsp, crypto/open.ts)',
  count: 10_000_000,
  async run(count, seed, until) {
    const plain = new Mutator(seed ^ 0x5eed, plainSamples(), 1600);
    const ring: Buffer[] = [];
    const failures = new Failures();
    let from = A;
    let last = 0;
    let fresh: Buffer[] = [];
    let nextId = 0;
    const held: Buffer[] = [];
    // Ids used per ESP input: 1/16 fresh + 1/128 held + 1/4 of the 5/8 mutated ≈ 0.22.
    const state = new Uint8Array(1024 + Math.ceil(count * 0.3));
    let freshSent = 0;
    let mustArrive = 0;
    const seal = Buffer.alloc(2048);
    const kinds = new Float64Array(6);
    /** The id of the genuine frame inside each of A's sealed datagrams. */
    const idOf = new WeakMap<Buffer, number>();
    const tapId = (d: Buffer) => idOf.get(d)!;

    const sc = espScene((dst, at, max) => {
      const len = Math.min(generate(), max);
      m.out.copy(dst, at, 0, len);
      last = len;
      return len;
    }, (dst, at, max) => {
      // Cleartext VXLAN with the encrypted VNI (and mutations of it), from A or a stranger.
      from = m.int(4) === 0 ? X : A;
      const len = Math.min(clear.next(), max);
      clear.out.copy(dst, at, 0, len);
      return len;
    });
    const clear = new Mutator(seed ^ 0xc1ea, plainSamples().map((d) => d.subarray(8)).concat([vxlan(VNI_ENC, ipv4Frame(MAC_B, MAC_A, IP_A, IP_B, 17, 1, 2, 30))]), 1600);
    sc.espRx.from = () => from;
    sc.vxRx.from = () => from;
    sc.tap.onGenuine = (id) => {
      if (state[id] === ARRIVED) failures.add(`genuine datagram ${id} delivered twice`);
      else if (state[id] === FRESH) freshSent--;
      state[id] = ARRIVED;
    };
    const remember = (b: Buffer) => {
      if (ring.length < RING) ring.push(b);
      else ring[m.int(RING)] = b;
    };
    // Seed samples: some genuine datagrams, and one authentic datagram under each other SA.
    for (const d of genuine(8)) remember(d);
    for (const s of [sc.sealers.old, sc.sealers.c]) {
      const p = plainSamples()[s === sc.sealers.c ? 2 : 0];
      const len = s.seal(seal, p, p.length, () => {});
      remember(Buffer.from(seal.subarray(0, len)));
      sc.allowed.add(fnv(p, 16, p.length - 16));
    }

    const m = new Mutator(seed, ring, 1600); // the ring fills as datagrams are sent

    function genuine(n: number): Buffer[] {
      const ds = sc.sealGenuine(nextId, n);
      ds.forEach((d, k) => idOf.set(d, nextId + k));
      nextId += n;
      return ds;
    }

    function nextFresh(): Buffer {
      if (fresh.length === 0) {
        if (nextId + CHUNK > state.length) return ring[m.int(ring.length)]; // ids used up: a replay instead
        fresh = genuine(CHUNK).reverse();
      }
      return fresh.pop()!;
    }

    function put(b: Buffer): number {
      const len = Math.min(b.length, 1600);
      b.copy(m.out, 0, 0, len);
      return len;
    }

    function generate(): number {
      from = m.int(10) === 0 ? (m.int(2) === 0 ? C_HOST : X) : A;
      const r = m.int(64);
      if (r < 4) { // fresh genuine, verbatim from A
        kinds[0]++;
        from = A;
        const d = nextFresh();
        const id = tapId(d);
        if (state[id] === 0) {
          state[id] = FRESH;
          freshSent++;
          mustArrive++;
        }
        remember(d);
        return put(d);
      }
      if (r < 5) { // hold one back, or release one
        kinds[1]++;
        from = A;
        if (held.length < HELD_MAX && m.int(2) === 0) {
          const d = nextFresh();
          held.push(d);
          state[tapId(d)] = HELD;
          return 0; // an empty datagram in its place
        }
        const d = held.length > 0 ? held.splice(m.int(held.length), 1)[0] : nextFresh();
        if (state[tapId(d)] === 0) state[tapId(d)] = HELD;
        remember(d);
        return put(d);
      }
      if (r < 9) { // authentic, malformed inside
        kinds[2]++;
        const k = m.int(4);
        const s = k === 0 ? sc.sealers.old : k === 1 ? sc.sealers.c : sc.sealers.a;
        from = k === 1 ? C_HOST : A;
        const plen = plain.mutate();
        const badTrailer = m.int(4) === 0;
        const len = s.seal(seal, plain.out, plen, (d, l) => {
          if (badTrailer) d[l - ESP_ICV_LEN - 1 - m.int(2 + Math.min(4, l - ESP_MIN_LEN))] ^= 1 << m.int(8);
          // What the stages would deliver if this passes: the frame behind inner UDP + VXLAN, as
          // long as the inner UDP length says (open.ts requires it to match the payload).
          const udpLen = d.readUInt16BE(ESP_HEADER_LEN + 4);
          if (udpLen >= 16 && ESP_HEADER_LEN + udpLen <= l) sc.allowed.add(fnv(d, ESP_HEADER_LEN + 16, udpLen - 16));
        });
        const d = Buffer.from(seal.subarray(0, len));
        remember(d);
        return put(d);
      }
      if (r < 17) { // verbatim replay
        kinds[3]++;
        from = A;
        return put(ring[m.int(ring.length)]);
      }
      if (r < 25) {
        kinds[4]++;
        return m.random();
      }
      kinds[5]++;
      // 1 in 4 tamper with a genuine datagram not sent yet (its sequence number passes the
      // window, so the tag check decides); the rest with one already sent.
      const base = m.int(4) === 0 ? nextFresh() : ring[m.int(ring.length)];
      return espMutate(m, put(base), sc.outA().sent);
    }

    const t0 = performance.now();
    let done = 0;
    let pumps = 0;
    while (done < count) {
      if (pumps++ % 8 === 7) {
        sc.vxRx.pending = 64;
        try {
          sc.b.pumpUdp();
        } catch (e) {
          failures.add(`exception in pumpUdp (cleartext) after input ${done}: ${(e as Error).stack?.split('\n').slice(0, 3).join(' | ')}`);
        }
        sc.vxRx.pending = 0;
        done += 64;
        continue;
      }
      const n = Math.min(256, count - done);
      sc.espRx.pending = n;
      try {
        sc.b.pumpEsp();
      } catch (e) {
        failures.add(`exception after input ${done}: ${(e as Error).stack?.split('\n').slice(0, 3).join(' | ')} (last input ${hex(m.out, last)})`);
      }
      if (sc.espRx.pending !== 0) failures.add(`the datapath left ${sc.espRx.pending} slots unread in one pump`);
      sc.espRx.pending = 0;
      done += n;
      if ((pumps & 63) === 0 && performance.now() > until) break;
    }
    const seconds = (performance.now() - t0) / 1000;
    const b = sc.b;
    const net = sc.net;
    let globalDrops = 0;
    let netDrops = 0;
    for (let i = 0; i < DROP_NAMES.length; i++) {
      globalDrops += b.drops[i];
      if (i !== D.tapTxFull) netDrops += net.drops[i];
    }
    const listed = sc.espRx.listed + sc.vxRx.listed;
    const accepted = net.counters[C.vxlanRxPackets];
    const rejected = globalDrops + netDrops;
    if (rejected + accepted !== listed) failures.add(`counters do not add up: ${rejected} dropped + ${accepted} accepted != ${listed} datagrams`);
    if (net.counters[C.espOpened] !== accepted) failures.add(`${accepted} accepted but only ${net.counters[C.espOpened]} opened from ESP (cleartext got through)`);
    if (sc.tap.written + net.drops[D.tapTxFull] !== accepted) failures.add(`${accepted} accepted but ${sc.tap.written} written + ${net.drops[D.tapTxFull]} tapTxFull`);
    if (sc.tap.forged > 0) failures.add(`${sc.tap.forged} frames delivered that no authentic datagram carried (or replays): first ${sc.tap.firstForged}`);
    if (freshSent !== 0) failures.add(`${freshSent} fresh genuine datagrams (sent verbatim, in the window) were not delivered`);
    const by = (names: (keyof typeof D)[]) => names.map((n) => `${n} ${Math.round(b.drops[D[n]] + net.drops[D[n]])}`).join(', ');
    let arrived = 0;
    for (let i = 0; i < state.length; i++) if (state[i] === ARRIVED) arrived++;
    return {
      name: this.name, inputs: listed, rejected, accepted, seconds, failures: failures.done(),
      note: `${by(['espMalformed', 'espNoSa', 'espWrongPeer', 'espReplay', 'espAuthFail', 'cleartextOnEncrypted'])}, other stages ${Math.round(rejected - ['espMalformed', 'espNoSa', 'espWrongPeer', 'espReplay', 'espAuthFail', 'cleartextOnEncrypted'].reduce((s, n) => s + b.drops[D[n as keyof typeof D]] + net.drops[D[n as keyof typeof D]], 0))}; ` +
        `${arrived} genuine frames arrived, among them all ${mustArrive} sent fresh (${sc.tap.written - arrived} authentic malformed-inside ones passed the inner stages); ` +
        `inputs by kind: fresh ${kinds[0]}, held/released ${kinds[1]}, authentic-malformed ${kinds[2]}, replay ${kinds[3]}, random ${kinds[4]}, mutated ${kinds[5]}; ` +
        `cleartext on 4789 ${sc.vxRx.listed}`,
    } satisfies FuzzResult;
  },
};

/** ESP-aware mutation of m.out[0..len): SPI, sequence number near the window, region bit flips, truncation; then generic ones. */
function espMutate(m: Mutator, len: number, top: number): number {
  const o = m.out;
  switch (m.int(6)) {
    case 0: { // another SPI
      const spis = [SPI_OLD, SPI_A, SPI_C, 0, 1, 255, 256, 0xffffffff, m.rng.u32()];
      if (len >= 4) o.writeUInt32BE(spis[m.int(spis.length)] >>> 0, 0);
      break;
    }
    case 1: { // sequence number around the replay window's edges
      const seqs = [0, 1, top, top + 1, top + 2, top - 1, top - REPLAY_WINDOW, top - REPLAY_WINDOW + 1, top - REPLAY_WINDOW - 1, top + 1e6, 0xffffffff, m.rng.u32()];
      if (len >= 8) o.writeUInt32BE(seqs[m.int(seqs.length)] >>> 0, 4);
      break;
    }
    case 2: { // bit flip in one region: header, IV, ciphertext, tag
      const region = m.int(4);
      const [lo, hi] = region === 0 ? [0, 8] : region === 1 ? [8, ESP_HEADER_LEN] : region === 2 ? [ESP_HEADER_LEN, len - ESP_ICV_LEN] : [len - ESP_ICV_LEN, len];
      if (hi > lo && lo >= 0) o[lo + m.int(hi - lo)] ^= 1 << m.int(8);
      break;
    }
    case 3: { // truncation to an ESP boundary
      const cuts = [ESP_MIN_LEN - 1, ESP_MIN_LEN, ESP_HEADER_LEN, len - 1, len - 2, len - 4, len - ESP_ICV_LEN, 8, 4, 0];
      len = Math.max(0, Math.min(len, cuts[m.int(cuts.length)]));
      break;
    }
    default:
      break;
  }
  // 0-3 generic mutations on top (bit flips, lengths, splices of other sent datagrams, ...).
  return m.int(4) === 0 ? len : m.stack(len, m.int(4));
}
