// Issue 8, on real namespaces: three tapmesh hosts in one gossip cluster on an `--opt encrypted`
// network. Ping and 50 MB TCP between every pair; the underlay capture holds no VXLAN and no
// inner payload in cleartext; tshark with the --keylog file decrypts it down to ICMP and TCP.
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ESP_SA_FILE, WIRESHARK_ESP_PREFERENCES } from '../crypto/keylog.js';
import { Lab, must, requireRoot, sleep } from './harness/lab.js';
import { encryptedOverlay, espOf, ping, tcpdumpListening } from './harness/esp.js';
import type { Overlay } from './harness/overlay.js';
import { tcpTransfer } from './harness/transfer.js';

const root = requireRoot('encrypted overlay integration');
const MARKER = 'TMSECRETMARKER42';
const MARKER_HEX = Buffer.from(MARKER.slice(0, 16)).toString('hex');

describe.skipIf(!root)('encrypted overlay across three tapmesh hosts', () => {
  const lab = new Lab();
  let ov: Overlay;
  let keylog: string;

  beforeAll(async () => {
    keylog = path.join(lab.dir, 'esp.keylog');
    mkdirSync(lab.dir, { recursive: true });
    ov = await encryptedOverlay(lab, 3, ['--gossip-profile', 'fast', '--keylog', keylog]);
  }, 90_000);
  afterAll(() => lab.cleanup());

  it('network inspect shows "encrypted": "" and the encrypted MTU; --verbose lists SAs without keys', async () => {
    const [net] = JSON.parse(await lab.mustCli(ov.hosts[0], ['network', 'inspect', ov.network]));
    expect(net.Options.encrypted).toBe('');
    expect(net.Options['com.docker.network.mtu']).toBe('1408');
    const [v] = JSON.parse(await lab.mustCli(ov.hosts[0], ['network', 'inspect', '--verbose', ov.network]));
    const sas = v.SecurityAssociations as Record<string, unknown>[];
    expect(sas.filter((s) => s.Direction === 'out' && s.Current)).toHaveLength(2);
    for (const s of sas) expect(Object.keys(s).sort()).toEqual(['AgeSeconds', 'Current', 'Direction', 'Packets', 'Peer', 'PeerName', 'SPI']);
    const keys = readFileSync(keylog, 'utf8').trim().split('\n').map((l) => l.split(',')[5].replace(/"|0x/g, ''));
    expect(keys.length).toBeGreaterThanOrEqual(4); // both directions of this host's SAs at least
    const text = JSON.stringify(v) + (await lab.mustCli(ov.hosts[0], ['stats', '--format', 'json']));
    for (const k of keys) expect(text).not.toContain(k.slice(0, 32));
    expect(statSync(keylog).mode & 0o777).toBe(0o600);
  });

  it('ping between every pair', async () => {
    for (const a of ov.containers) {
      for (const b of ov.containers) {
        if (a !== b) expect((await ping(lab, a.ns, b.ip)).ok, `${a.ns} → ${b.ip}`).toBe(true);
      }
    }
  });

  it('the underlay carries only ESP: no VXLAN header, no marker in cleartext; the keylog decrypts it to ICMP and TCP', async () => {
    const [a, b] = ov.containers;
    const pcap = path.join(lab.dir, 'underlay.pcap');
    const cap = lab.spawnIn(lab.underlayNs, 'tcpdump', ['--immediate-mode', '-i', 'br0', '-s', '0', '-U', '-w', pcap, 'udp'], 'tcpdump-ul.log');
    await tcpdumpListening(lab, 'tcpdump-ul.log');
    expect((await ping(lab, a.ns, b.ip, ['-c', '5', '-i', '0.2', '-p', MARKER_HEX, '-s', '200'])).ok).toBe(true);
    const t = await tcpTransfer(lab, a.ns, b.ns, b.ip, 256 * 1024, 5010);
    expect(t.received.sha256).toBe(t.sent.sha256);
    await sleep(500);
    await lab.stopProcess(cap, 'SIGINT');
    const raw = readFileSync(pcap);
    expect(raw.length).toBeGreaterThan(10_000);
    expect(raw.includes(MARKER)).toBe(false);
    // Nothing on the VXLAN port, everything on 4500.
    const plain = await must('tshark', ['-r', pcap, '-Y', 'udp.port == 4789 || vxlan', '-T', 'fields', '-e', 'frame.number']);
    expect(plain.trim()).toBe('');
    const esp = await must('tshark', ['-r', pcap, '-Y', 'esp', '-T', 'fields', '-e', 'esp.spi']);
    expect(esp.trim().split('\n').length).toBeGreaterThan(20);

    // With the keylog as Wireshark's esp_sa UAT file, tshark decrypts down to the inner frames.
    const conf = path.join(lab.dir, 'wireshark');
    mkdirSync(conf, { recursive: true });
    writeFileSync(path.join(conf, ESP_SA_FILE), readFileSync(keylog));
    writeFileSync(path.join(conf, 'preferences'), WIRESHARK_ESP_PREFERENCES);
    const env = { ...process.env, WIRESHARK_CONFIG_DIR: conf, HOME: conf };
    const icmp = await must('tshark', ['-r', pcap, '-Y', `icmp && data.data contains ${MARKER_HEX.slice(0, 16).match(/../g)!.join(':')}`, '-T', 'fields', '-e', 'ip.src'], { env });
    expect(icmp.trim().split('\n').filter(Boolean).length).toBeGreaterThanOrEqual(5);
    const tcp = await must('tshark', ['-r', pcap, '-Y', 'tcp.port == 5010 && vxlan', '-T', 'fields', '-e', 'tcp.len'], { env });
    expect(tcp.trim().split('\n').filter(Boolean).length).toBeGreaterThan(10);
  }, 60_000);

  it('a 50 MB TCP transfer between every pair arrives intact', async () => {
    const [a, b, c] = ov.containers;
    for (const [x, y, port] of [[a, b, 5011], [b, c, 5012], [c, a, 5013]] as const) {
      const r = await tcpTransfer(lab, x.ns, y.ns, y.ip, 50 * 1024 * 1024, port, 120_000);
      expect(r.received.bytes, `${x.ns} → ${y.ip}`).toBe(50 * 1024 * 1024);
      expect(r.received.sha256).toBe(r.sent.sha256);
    }
    const esp = await espOf(lab, a.host);
    expect(esp.counters.sealed).toBeGreaterThan(10_000);
    expect(esp.counters.authFail + esp.counters.malformed).toBe(0);
    // The offloads stayed on: TSO super-frames sealed per segment, GSO runs the kernel took.
    const lines = (await lab.mustCli(a.host, ['stats', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const net = lines.find((l) => l.Network === ov.network) as { tsoFrames?: number; Drops: Record<string, number> };
    expect(net.tsoFrames ?? 0).toBeGreaterThan(0);
    expect(net.Drops.udpTxError ?? 0).toBe(0);
  }, 400_000);
});
