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
const [host, port, total, deadline] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4]), Date.now() + 10000];
function attempt() {
  const s = net.connect(port, host); const h = crypto.createHash('sha256'); let sent = 0;
  s.on('error', (e) => { if (sent === 0 && Date.now() < deadline) setTimeout(attempt, 200); else { console.error(e.message); process.exit(2); } });
  s.on('connect', () => { const pump = () => { while (sent < total) { const c = crypto.randomBytes(Math.min(65536, total - sent)); h.update(c); sent += c.length; if (!s.write(c)) return s.once('drain', pump); } s.end(); console.log(JSON.stringify({ bytes: sent, sha256: h.digest('hex') })); }; pump(); });
}
attempt();
`;

export interface TransferResult {
  sent: { bytes: number; sha256: string };
  received: { bytes: number; sha256: string };
}

export async function tcpTransfer(lab: Lab, fromNs: string, toNs: string, toIp: string, bytes: number, port = 5001, timeoutMs = 60_000): Promise<TransferResult> {
  const srv = path.join(lab.dir, 'xfer-server.cjs');
  const cli = path.join(lab.dir, 'xfer-client.cjs');
  // Written once per lab, whole (temp + rename): concurrent transfers never see a half-written script.
  for (const [file, text] of [[srv, SERVER], [cli, CLIENT]]) {
    if (existsSync(file)) continue;
    writeFileSync(`${file}.${process.pid}.tmp`, text);
    renameSync(`${file}.${process.pid}.tmp`, file);
  }
  const server = lab.exec(toNs, process.execPath, [srv, String(port), String(timeoutMs)], timeoutMs + 5000);
  const client = await lab.exec(fromNs, process.execPath, [cli, toIp, String(port), String(bytes)], timeoutMs);
  const s = await server;
  if (client.code !== 0) throw new Error(`transfer client failed: ${client.stderr}`);
  if (s.code !== 0) throw new Error(`transfer server failed (${s.code}): ${s.stderr}`);
  return { sent: JSON.parse(client.stdout), received: JSON.parse(s.stdout) };
}
