// DNS helpers for integration tests: a small upstream resolver to run in a namespace, a hostile
// sender to run inside a container, and dig wrappers. The scripts are plain Node (no imports
// beyond built-ins and dns-packet by absolute path), started with `ip netns exec NS node FILE`.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { repoRoot, type Lab } from './lab.js';

/** Upstream: `*.example` A → 198.51.100.7, anything else NXDOMAIN; one stdout line per query. */
export const UPSTREAM_ANSWER = '198.51.100.7';

export function writeUpstreamScript(dir: string): string {
  const dnsPacket = createRequire(path.join(repoRoot, 'package.json')).resolve('dns-packet');
  const file = path.join(dir, 'upstream.cjs');
  writeFileSync(file, `
const dgram = require('node:dgram');
const dnsPacket = require(${JSON.stringify(dnsPacket)});
const s = dgram.createSocket('udp4');
s.on('message', (m, r) => {
  let q;
  try { q = dnsPacket.decode(m); } catch { return; }
  const name = (q.questions && q.questions[0] && q.questions[0].name) || '';
  const known = /\\.example$/i.test(name) && q.questions[0].type === 'A';
  console.log('query ' + name);
  s.send(dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE | (known ? 0 : 3), questions: q.questions,
    answers: known ? [{ type: 'A', name, ttl: 30, data: ${JSON.stringify(UPSTREAM_ANSWER)} }] : [] }), r.port, r.address);
});
s.bind(53, '0.0.0.0', () => console.log('listening'));
`);
  return file;
}

/**
 * Hostile sender, run inside a container: random bytes, a truncated header, a compression
 * pointer loop, then a flood of junk for FLOOD_MS while asking GOOD ("web" A) every 20 ms.
 * Prints {"junk": sent, "asked": n, "answered": n}.
 */
export function writeHostileScript(dir: string): string {
  const file = path.join(dir, 'hostile.cjs');
  writeFileSync(file, `
const dgram = require('node:dgram');
const crypto = require('node:crypto');
const [name, floodMs] = [process.argv[2], Number(process.argv[3])];
const junk = dgram.createSocket('udp4');
const good = dgram.createSocket('udp4');
function query(id) {
  const labels = Buffer.concat(name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])));
  const h = Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
  return Buffer.concat([h, labels, Buffer.from([0, 0, 1, 0, 1])]);
}
const answered = new Set();
good.on('message', (m) => { if (m.length >= 12 && (m[2] & 0x80) && (m[3] & 15) === 0 && m.readUInt16BE(6) > 0) answered.add(m.readUInt16BE(0)); });
let sent = 0;
const fixed = [crypto.randomBytes(64), Buffer.from([1, 2, 3, 4, 5]), Buffer.from([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1])];
let asked = 0;
const t0 = Date.now();
const ask = setInterval(() => { good.send(query(++asked), 53, '127.0.0.11'); }, 20);
function flood() {
  if (Date.now() - t0 > floodMs) return finish();
  for (let i = 0; i < 50; i++) { junk.send(Buffer.concat([Buffer.from([0, 0, 0x80]), crypto.randomBytes(30)]), 53, '127.0.0.11'); sent++; }
  setImmediate(flood);
}
function finish() {
  clearInterval(ask);
  setTimeout(() => { console.log(JSON.stringify({ junk: sent, asked, answered: answered.size })); process.exit(0); }, 1000);
}
good.bind(0, () => junk.bind(0, () => {
  for (const b of fixed) { junk.send(b, 53, '127.0.0.11'); sent++; }
  flood();
}));
`);
  return file;
}

/** dig inside a namespace against its /etc/resolv.conf (127.0.0.11): status and +short lines. */
export async function dig(lab: Lab, ns: string, ...args: string[]): Promise<{ status: string; lines: string[]; ms: number; out: string }> {
  const t0 = Date.now();
  const r = await lab.exec(ns, 'dig', ['@127.0.0.11', '+time=5', '+tries=1', ...args], 20_000);
  const ms = Date.now() - t0;
  const status = /status: (\w+)/.exec(r.stdout)?.[1] ?? `exit ${r.code}`;
  const answer = /;; ANSWER SECTION:\n([\s\S]*?)\n\n/.exec(r.stdout)?.[1] ?? '';
  const lines = answer.split('\n').filter(Boolean).map((l) => l.split(/\s+/).pop()!);
  return { status, lines, ms, out: r.stdout };
}
