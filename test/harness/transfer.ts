// A TCP transfer between two namespaces whose integrity is checked end to end: the client
// streams N random bytes and prints their SHA-256; the server prints the SHA-256 of what
// arrived. Both sides run as plain Node scripts inside the namespaces.
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Lab } from './lab.js';

const SERVER = `
const net = require('node:net'); const crypto = require('node:crypto');
const srv = net.createServer((s) => { const h = crypto.createHash('sha256'); let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => { process.stdout.write(JSON.stringify({ bytes: n, sha256: h.digest('hex') }) + String.fromCharCode(10), () => process.exit(0)); }); });
srv.listen(Number(process.argv[2]), () => console.error('listening'));
setTimeout(() => process.exit(3), Number(process.argv[3])).unref();
`;
const CLIENT = `
const net = require('node:net'); const crypto = require('node:crypto');
const [host, port, total, deadline, rate] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Date.now() + 10000, Number(process.argv[5] || 0)];
function attempt() {
  const s = net.connect(port, host); const h = crypto.createHash('sha256'); let sent = 0;
  s.on('error', (e) => { if (sent === 0 && Date.now() < deadline) setTimeout(attempt, 200); else { console.error(e.message); process.exit(2); } });
  s.on('connect', () => { const t0 = Date.now(); const pump = () => { while (sent < total) { if (rate > 0 && sent > (rate * (Date.now() - t0)) / 1000) return setTimeout(pump, 10); const c = crypto.randomBytes(Math.min(65536, total - sent)); h.update(c); sent += c.length; if (!s.write(c)) return s.once('drain', pump); } s.end(); console.log(JSON.stringify({ bytes: sent, sha256: h.digest('hex') })); }; pump(); });
}
attempt();
`;

export interface TransferResult {
  sent: { bytes: number; sha256: string };
  received: { bytes: number; sha256: string };
}

/**
 * The lab's copies of these scripts, written once per lab, whole (temp + rename): concurrent
 * transfers never see a half-written script. Returns their paths.
 */
function scripts(lab: Lab, ...files: [string, string][]): string[] {
  return files.map(([name, text]) => {
    const file = path.join(lab.dir, name);
    if (!existsSync(file)) {
      writeFileSync(`${file}.${process.pid}.tmp`, text);
      renameSync(`${file}.${process.pid}.tmp`, file);
    }
    return file;
  });
}

/** `bytesPerSec` (0: as fast as possible) paces the client, for a stream that lasts. */
export async function tcpTransfer(lab: Lab, fromNs: string, toNs: string, toIp: string, bytes: number, port = 5001, timeoutMs = 60_000, bytesPerSec = 0): Promise<TransferResult> {
  const [srv, cli] = scripts(lab, ['xfer-server.cjs', SERVER], ['xfer-client.cjs', CLIENT]);
  const server = lab.exec(toNs, process.execPath, [srv, String(port), String(timeoutMs)], timeoutMs + 5000);
  const client = await lab.exec(fromNs, process.execPath, [cli, toIp, String(port), String(bytes), String(bytesPerSec)], timeoutMs);
  const s = await server;
  if (client.code !== 0) throw new Error(`transfer client failed: ${client.stderr}`);
  if (s.code !== 0) throw new Error(`transfer server failed (${s.code}): ${s.stderr}`);
  return { sent: JSON.parse(client.stdout), received: JSON.parse(s.stdout) };
}

// UDP: the client sends `count` datagrams of `size` bytes in bursts of 16 (back to back, so a
// receiving agent gets runs it can merge), 2 ms apart; each carries its sequence number and a
// pattern derived from it. (Bursts of 64 every 5 ms now and then lost 2-7% before any agent saw
// them, in the sending host's kernel: a kernel VXLAN host's container sent 1000 datagrams and its
// eth0 carried ~970, with the tree before this change too; the test is about the overlay.) The
// server (receive buffer 4 MB, so the application is not what drops) counts what arrived, whole
// and unchanged, until 2 s pass with nothing new.
const UDP_SERVER = `
const s = require('node:dgram').createSocket('udp4'); const [port, count] = [Number(process.argv[2]), Number(process.argv[3])];
const seen = new Set(); let received = 0, intact = 0, last = Date.now();
s.on('message', (m) => { received++; last = Date.now(); const q = m.readUInt32BE(0); let ok = true;
  for (let i = 4; i < m.length; i++) if (m[i] !== ((q * 31 + i) & 255)) { ok = false; break; }
  if (ok) { intact++; seen.add(q); } if (seen.size === count) done(); });
function done() { process.stdout.write(JSON.stringify({ received, intact, distinct: seen.size }) + String.fromCharCode(10), () => process.exit(0)); }
s.bind(port, () => { s.setRecvBufferSize(4 << 20); console.error('listening'); });
setInterval(() => { if (Date.now() - last > 2000 && received > 0) done(); }, 100);
setTimeout(done, Number(process.argv[4])).unref();
`;
const UDP_CLIENT = `
const s = require('node:dgram').createSocket('udp4'); const [host, port, count, size] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5])];
let q = 0;
function burst() { for (let k = 0; k < 16 && q < count; k++, q++) { const m = Buffer.alloc(size); m.writeUInt32BE(q, 0); for (let i = 4; i < size; i++) m[i] = (q * 31 + i) & 255; s.send(m, port, host); }
  if (q < count) setTimeout(burst, 2); else setTimeout(() => s.close(), 200); }
burst();
`;

export interface UdpBurstResult {
  received: number;
  intact: number;
  distinct: number;
}

/** `count` datagrams of `size` bytes from fromNs to toIp:port; what the receiver got (see above). */
export async function udpBurst(lab: Lab, fromNs: string, toNs: string, toIp: string, count: number, size: number, port = 5301, timeoutMs = 30_000): Promise<UdpBurstResult> {
  const [srv, cli] = scripts(lab, ['udp-server.cjs', UDP_SERVER], ['udp-client.cjs', UDP_CLIENT]);
  const server = lab.exec(toNs, process.execPath, [srv, String(port), String(count), String(timeoutMs)], timeoutMs + 5000);
  await new Promise((r) => setTimeout(r, 500)); // the server binds first
  const client = await lab.exec(fromNs, process.execPath, [cli, toIp, String(port), String(count), String(size)], timeoutMs);
  const s = await server;
  if (client.code !== 0) throw new Error(`udp client failed: ${client.stderr}`);
  if (s.code !== 0) throw new Error(`udp server failed (${s.code}): ${s.stderr}`);
  return JSON.parse(s.stdout) as UdpBurstResult;
}
