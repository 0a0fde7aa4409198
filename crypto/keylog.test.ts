// The keylog line format, and the proof that it works: ESP-in-UDP packets sealed by the addon
// (VXLAN inside, an ICMP echo inside that) are written to a pcap, and tshark, given only the
// esp_sa file our code wrote, decrypts them down to the inner ICMP payload with a good ICV.
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { native } from '../native/index.js';
import {
  ESP_HEADER_LEN, ESP_NEXT_UDP, ESP_UDP_PORT, VXLAN_PORT, emitEth, emitIcmp, emitIpv4, parseIpv4, parseMac,
  udpFillChecksum, writeEspHeader, writeEspTrailer, writeUdpHeader, writeVxlanHeader,
} from '../router/wire/index.js';
import { ESP_SA_FILE, WIRESHARK_ESP_PREFERENCES, appendKeylog, espSaLine, type KeylogSa } from './keylog.js';

const hasTshark = ((): boolean => {
  try {
    execFileSync('tshark', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasTshark && process.env.CI === 'true') throw new Error('crypto/keylog.test.ts needs tshark in CI; refusing to skip');
if (!hasTshark) console.warn('crypto/keylog.test.ts: tshark NOT FOUND - skipping the decryption test');

const dir = mkdtempSync(path.join(tmpdir(), 'tm-keylog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MARKER = 'tapmesh-secret-marker';
const A = parseIpv4('192.0.2.1'), B = parseIpv4('192.0.2.2');

/** One underlay frame: Ethernet / IPv4 / UDP 4500 / ESP( UDP 4789 / VXLAN / inner frame ). */
function espFrame(n: ReturnType<typeof native>, sa: KeylogSa & { handle: number }, seq: number, vni: number, inner: Uint8Array): Buffer {
  const esp = 14 + 20 + 8;
  const vxlanDatagram = 8 + 8 + inner.length;
  const buf = Buffer.alloc(esp + ESP_HEADER_LEN + vxlanDatagram + 3 + 2 + 16);
  // inner UDP datagram (checksum 0: it is inside the authenticated ESP payload)
  writeUdpHeader(buf, esp + 16, 40000 + (seq & 0xff), VXLAN_PORT, 8 + inner.length);
  writeVxlanHeader(buf, esp + 24, vni);
  buf.set(inner, esp + 32);
  writeEspHeader(buf, esp, sa.spi, seq);
  const espLen = writeEspTrailer(buf, esp, vxlanDatagram, ESP_NEXT_UDP);
  expect(n.aeadSeal(buf, new Int32Array([esp]), new Int32Array([espLen]), sa.handle, 0, 1)).toBe(1);
  const total = esp + espLen;
  writeUdpHeader(buf, 34, 4500, ESP_UDP_PORT, espLen);
  udpFillChecksum(buf, 34, sa.src, sa.dst);
  emitIpv4({ src: sa.src, dst: sa.dst, protocol: 17, ttl: 64, payloadLen: 8 + espLen, ident: seq & 0xffff, dontFrag: false,
    moreFrags: false, fragOffset: 0, tos: 0, optionsLen: 0 }, buf, 14);
  emitEth({ dst: parseMac('02:00:00:00:00:02'), src: parseMac('02:00:00:00:00:01'), ethertype: 0x0800, vlan: null }, buf, 0);
  return buf.subarray(0, total);
}

/** Inner Ethernet / IPv4 / ICMP echo carrying the marker. */
function echo(type: 0 | 8, seq: number): Uint8Array {
  const payload = Buffer.from(`${MARKER}-${seq}`);
  const buf = Buffer.alloc(14 + 20 + 8 + payload.length);
  emitEth({ dst: parseMac('02:42:0a:00:00:03'), src: parseMac('02:42:0a:00:00:02'), ethertype: 0x0800, vlan: null }, buf, 0);
  emitIpv4({ src: parseIpv4('10.0.0.2'), dst: parseIpv4('10.0.0.3'), protocol: 1, ttl: 64, payloadLen: 8 + payload.length,
    ident: seq, dontFrag: true, moreFrags: false, fragOffset: 0, tos: 0, optionsLen: 0 }, buf, 14);
  buf.set(payload, 42);
  emitIcmp({ type, code: 0, ident: 0x77, seq, payloadLen: payload.length }, buf, 34);
  return buf;
}

function pcap(frames: Uint8Array[]): Buffer {
  const g = Buffer.alloc(24);
  g.writeUInt32LE(0xa1b2c3d4, 0);
  g.writeUInt16LE(2, 4);
  g.writeUInt16LE(4, 6);
  g.writeUInt32LE(65535, 16);
  g.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  const recs = frames.map((f, i) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(1_700_000_000 + i, 0);
    h.writeUInt32LE(f.length, 8);
    h.writeUInt32LE(f.length, 12);
    return Buffer.concat([h, f]);
  });
  return Buffer.concat([g, ...recs]);
}

describe('keylog', () => {
  it('formats one esp_sa UAT record', () => {
    const line = espSaLine({ src: A, dst: B, spi: 0x1001, key: Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'), salt: Buffer.from('a1b2c3d4', 'hex') });
    expect(line).toBe('"IPv4","192.0.2.1","192.0.2.2","0x00001001","AES-GCM with 16 octet ICV [RFC4106]",'
      + '"0x000102030405060708090a0b0c0d0e0fa1b2c3d4","NULL",""');
    expect(() => espSaLine({ src: A, dst: B, spi: 0, key: new Uint8Array(16), salt: new Uint8Array(4) })).toThrow(RangeError);
  });

  it('appendKeylog creates the file 0600, appends, and tightens a loose mode', () => {
    const f = path.join(dir, 'keylog-mode');
    const sa = { src: A, dst: B, spi: 0x2000, key: new Uint8Array(16), salt: new Uint8Array(4) };
    appendKeylog(f, [sa]);
    expect(statSync(f).mode & 0o777).toBe(0o600);
    chmodSync(f, 0o644);
    appendKeylog(f, [{ ...sa, spi: 0x2001 }]);
    expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(readFileSync(f, 'utf8').trim().split('\n').map((l) => l.split(',')[3])).toEqual(['"0x00002000"', '"0x00002001"']);
  });

  it.skipIf(!hasTshark)('tshark decrypts addon-sealed ESP-in-UDP down to the inner ICMP with the keylog file alone', () => {
    const n = native();
    const mk = (src: number, dst: number, keyLen: number) => {
      const key = new Uint8Array(randomBytes(keyLen)), salt = new Uint8Array(randomBytes(4));
      const spi = randomBytes(4).readUInt32BE(0) | 0x100;
      return { src, dst, spi: spi >>> 0, key, salt, handle: n.aeadCreate(key, salt) };
    };
    const ab = mk(A, B, 16), ba = mk(B, A, 32); // one AES-128 and one AES-256 SA
    const frames: Uint8Array[] = [];
    for (let s = 1; s <= 3; s++) {
      frames.push(espFrame(n, ab, s, 0x1001, echo(8, s)));
      frames.push(espFrame(n, ba, s, 0x1001, echo(0, s)));
    }
    n.aeadDestroy(ab.handle);
    n.aeadDestroy(ba.handle);
    const cap = path.join(dir, 'esp.pcap');
    const raw = pcap(frames);
    expect(raw.includes(Buffer.from(MARKER))).toBe(false); // nothing in clear
    writeFileSync(cap, raw);
    const conf = path.join(dir, 'wireshark');
    execFileSync('mkdir', ['-p', conf]);
    appendKeylog(path.join(conf, ESP_SA_FILE), [ab, ba]);
    writeFileSync(path.join(conf, 'preferences'), WIRESHARK_ESP_PREFERENCES);
    const out = execFileSync('tshark', ['-n', '-r', cap, '-T', 'fields', '-E', 'separator=|',
      '-e', 'frame.protocols', '-e', 'esp.spi', '-e', 'esp.sequence', '-e', 'esp.icv_good', '-e', 'vxlan.vni',
      '-e', 'icmp.type', '-e', 'icmp.seq', '-e', 'data.data'],
    { encoding: 'utf8', env: { ...process.env, WIRESHARK_CONFIG_DIR: conf }, stdio: ['ignore', 'pipe', 'ignore'] });
    const rows = out.trim().split('\n').map((l) => l.split('|'));
    expect(rows.length).toBe(6);
    rows.forEach((r, i) => {
      const s = (i >> 1) + 1;
      expect(r[0]).toBe('eth:ethertype:ip:udp:udpencap:esp:udp:vxlan:eth:ethertype:ip:icmp:data');
      expect(Number(r[1])).toBe(i % 2 === 0 ? ab.spi : ba.spi);
      expect(Number(r[2])).toBe(s);
      expect(r[3]).toBe('1');
      expect(Number(r[4])).toBe(0x1001);
      expect(r[5]).toBe(i % 2 === 0 ? '8' : '0');
      expect(Number(r[6])).toBe(s);
      expect(Buffer.from(r[7], 'hex').toString()).toBe(`${MARKER}-${s}`);
    });
  });
});
