// The cap and the ageing of MACs learned from static VTEPs (learned.ts), through the datapath on
// in-memory ports: a kernel VXLAN host S sends from MACs the network has never seen.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { C, D } from './counters.js';
import { Datapath } from './datapath.js';
import { SWEEPS_PER_AGEING, learningConfig, type LearningConfig } from './learned.js';
import { MemoryTap, MemoryUnderlay } from './memory.js';
import { macParts } from './wire/addr.js';
import { ipv4Frame, ip, vxlan } from './testframes.js';

const VNI = 4096;
const A = ip('192.0.2.1');
const B = ip('192.0.2.2');
const S = ip('192.0.2.9');
const MAC_A = '02:42:0a:00:09:02';
const MAC_B = '02:42:0a:00:09:03';
const IP_A = ip('10.0.9.2');
const mac = (i: number) => `66:77:88:99:aa:${i.toString(16).padStart(2, '0')}`;

function host(learning: Partial<LearningConfig>) {
  const u = new MemoryUnderlay();
  const dp = new Datapath(u.bind(A, 4789), [u.bind(A)], { vxlanPort: 4789, batch: 16, learning });
  const tap = new MemoryTap();
  const net = dp.addNetwork(VNI, 1450, tap);
  dp.setLocal(VNI, ...macParts(MAC_A), IP_A);
  dp.addStaticVtep(VNI, S);
  /** A frame from MAC i behind S to the local endpoint. */
  const fromS = (i: number) => u.inject(S, 40000, A, 4789, vxlan(VNI, ipv4Frame(MAC_A, mac(i), ip(`10.0.9.${100 + i}`), IP_A, 17, 1, 2, 20)));
  const known = (i: number) => net.remote.find(...macParts(mac(i))) >= 0;
  return { u, dp, tap, net, fromS, known };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('learning from static VTEPs: cap', () => {
  it('learns up to maxLearned MACs; a new one beyond is dropped as learnedFull, known ones still pass', async () => {
    const h = host({ maxLearned: 2, ageingMs: 0 });
    for (const i of [1, 2, 3]) h.fromS(i);
    await flush();
    expect([h.known(1), h.known(2), h.known(3)]).toEqual([true, true, false]);
    expect(h.net.counters[C.learned]).toBe(2);
    expect(h.net.drops[D.learnedFull]).toBe(1);
    expect(h.tap.written).toHaveLength(2);
    h.fromS(1);
    h.fromS(3);
    await flush();
    expect(h.tap.written).toHaveLength(3);
    expect(h.net.drops[D.learnedFull]).toBe(2);
    expect(h.net.learned.count).toBe(2);
  });

  it('configured and gossip entries do not count; replacing or removing a learned entry frees its place', async () => {
    const h = host({ maxLearned: 2, ageingMs: 0 });
    h.dp.setRemote(VNI, ...macParts(mac(9)), ip('10.0.9.109'), S, true); // peer add --mac
    h.dp.setRemote(VNI, ...macParts(MAC_B), ip('10.0.9.3'), B, false); // from gossip
    h.fromS(1);
    h.fromS(2);
    await flush();
    expect(h.net.learned.count).toBe(2);
    // Gossip now places MAC 1 on tapmesh host B: no longer a learned entry.
    h.dp.setRemote(VNI, ...macParts(mac(1)), ip('10.0.9.101'), B, false);
    expect(h.net.learned.count).toBe(1);
    h.fromS(3);
    await flush();
    expect(h.known(3)).toBe(true);
    expect(h.net.drops[D.learnedFull]).toBe(0);
    // peer rm of S: its learned and configured entries go, the count with them.
    h.dp.deleteStaticVtep(VNI, S);
    expect(h.net.learned.count).toBe(0);
    expect([h.known(2), h.known(3), h.known(9)]).toEqual([false, false, false]);
    expect(h.known(1)).toBe(true);
  });

  it('maxLearned 0 learns nothing; a bad config is refused', async () => {
    const h = host({ maxLearned: 0 });
    h.fromS(1);
    await flush();
    expect(h.known(1)).toBe(false);
    expect(h.net.drops[D.learnedFull]).toBe(1);
    expect(() => learningConfig({ maxLearned: -1 })).toThrow(/maxLearned/);
    expect(() => learningConfig({ maxLearned: 1.5 })).toThrow(/maxLearned/);
    expect(() => learningConfig({ ageingMs: Number.NaN })).toThrow(/ageingMs/);
  });
});

describe('learning from static VTEPs: ageing', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a MAC idle for more than SWEEPS_PER_AGEING sweeps is forgotten; a frame from it starts over', async () => {
    const h = host({ maxLearned: 2, ageingMs: 1e9 }); // the timer never fires here: sweeps by hand
    h.fromS(1);
    h.fromS(2);
    await flush();
    for (let k = 0; k < SWEEPS_PER_AGEING / 2; k++) h.dp.sweepLearned();
    h.fromS(1); // traffic from MAC 1 refreshes it
    await flush();
    for (let k = 0; k < SWEEPS_PER_AGEING / 2; k++) h.dp.sweepLearned();
    expect([h.known(1), h.known(2)]).toEqual([true, true]); // MAC 2 idle for SWEEPS_PER_AGEING sweeps: kept
    expect(h.dp.sweepLearned()).toBe(1);
    expect([h.known(1), h.known(2)]).toEqual([true, false]);
    expect(h.net.counters[C.learnedAged]).toBe(1);
    expect(h.net.learned.count).toBe(1);
    // Unicast to the forgotten MAC is unknown again; MAC 3 takes the freed place.
    h.tap.inject(ipv4Frame(mac(2), MAC_A, IP_A, ip('10.0.9.102'), 17, 2, 1, 20));
    h.fromS(3);
    await flush();
    expect(h.net.drops[D.unknownDst]).toBe(1);
    expect(h.known(3)).toBe(true);
    // MAC 1 has been idle SWEEPS_PER_AGEING / 2 + 1 sweeps, MAC 3 none.
    let gone = 0;
    for (let k = 0; k < SWEEPS_PER_AGEING / 2 - 1; k++) gone += h.dp.sweepLearned();
    expect(gone).toBe(0);
    expect(h.dp.sweepLearned()).toBe(1);
    expect([h.known(1), h.known(3)]).toEqual([false, true]);
  });

  it('configured static entries and gossip entries never age; ageingMs 0 turns ageing off', async () => {
    const h = host({ ageingMs: 1e9 });
    h.dp.setRemote(VNI, ...macParts(mac(9)), ip('10.0.9.109'), S, true);
    h.dp.setRemote(VNI, ...macParts(MAC_B), ip('10.0.9.3'), B, false);
    for (let k = 0; k < 3 * SWEEPS_PER_AGEING; k++) h.dp.sweepLearned();
    expect([h.known(9), h.net.remote.find(...macParts(MAC_B)) >= 0]).toEqual([true, true]);
    const off = host({ ageingMs: 0 });
    off.fromS(1);
    await flush();
    for (let k = 0; k < 3 * SWEEPS_PER_AGEING; k++) off.dp.sweepLearned();
    expect(off.known(1)).toBe(true);
  });

  it("the datapath's timer forgets an idle MAC between ageingMs and 1.1 × ageingMs after its last frame", async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout'] });
    const h = host({ ageingMs: 300_000 });
    h.fromS(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(h.known(1)).toBe(true);
    await vi.advanceTimersByTimeAsync(299_000);
    expect(h.known(1)).toBe(true);
    await vi.advanceTimersByTimeAsync(31_000);
    expect(h.known(1)).toBe(false);
    h.dp.close();
  });
});
