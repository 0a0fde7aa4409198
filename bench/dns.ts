// DNS bench: the embedded resolver serving 127.0.0.11:53 inside a namespace (tm<hex>-dns),
// dnsperf (Debian) run inside it with `ip netns exec`.
//   1. local names at full speed (dnsperf keeps --outstanding queries in flight): queries/s
//   2. local names at a fixed rate (--rate) with per-query latencies (dnsperf -v): p50/p99
//   3. forwarded names (an upstream on the host loopback answering at once): queries/s
// Run: `npm run build && node dist/bench/dns.js [--seconds S] [--rate Q] [--outstanding N]`.
// Removes its namespace on exit (also on SIGINT/SIGTERM).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import dnsPacket from 'dns-packet';
import { DnsResolver } from '../dns/server.js';
import { fixture } from '../dns/testkit.js';
import { must, run } from '../test/harness/lab.js';

interface PerfResult {
  qps: number;
  sent: number;
  completed: number;
  lost: number;
  latencies: number[];
}

function dnsperf(ns: string, file: string, args: string[], verbose: boolean, outFile: string): Promise<PerfResult> {
  return new Promise((resolve, reject) => {
    // dnsperf writes to a file, read once it has finished: with -v it prints a line per query
    // (20,000/s), and splitting those in this process would take the resolver's event loop
    // during the run it measures.
    const out = openSync(outFile, 'w');
    const p = spawn('ip', ['netns', 'exec', ns, 'dnsperf', '-s', '127.0.0.11', '-d', file, ...args, ...(verbose ? ['-v'] : [])], { stdio: ['ignore', out, out] });
    closeSync(out);
    p.on('error', reject);
    p.on('close', (code) => {
      const latencies: number[] = [];
      let tail = '';
      for (const l of readFileSync(outFile, 'utf8').split('\n')) {
        // -v lines: "> NOERROR web A 0.000123" (latency in seconds, last field).
        if (l.startsWith('> ')) latencies.push(Number(l.slice(l.lastIndexOf(' ') + 1)) * 1000);
        else tail += l + '\n';
      }
      const num = (re: RegExp): number => Number(re.exec(tail)?.[1] ?? NaN);
      if (code !== 0) return reject(new Error(`dnsperf exit ${code}: ${tail.slice(-500)}`));
      resolve({ qps: num(/Queries per second:\s+([\d.]+)/), sent: num(/Queries sent:\s+(\d+)/), completed: num(/Queries completed:\s+(\d+)/), lost: num(/Queries lost:\s+(\d+)/), latencies });
    });
  });
}

function pct(xs: number[], p: number): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, rate: { type: 'string', default: '20000' }, outstanding: { type: 'string', default: '200' } } });
  const seconds = Number(values.seconds);
  const rate = Number(values.rate);
  const ns = `tm${randomBytes(3).toString('hex')}-dns`;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tm-dnsbench-'));
  const cleanup = async (): Promise<void> => {
    await run('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));
  process.once('SIGTERM', () => void cleanup().then(() => process.exit(143)));

  const upstream = dgram.createSocket('udp4');
  upstream.on('message', (m, r) => {
    try {
      const q = dnsPacket.decode(m);
      upstream.send(dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: q.questions, answers: [{ type: 'A', name: q.questions![0].name, ttl: 30, data: '198.51.100.7' }] }), r.port, r.address);
    } catch { /* ignore */ }
  });
  await new Promise<void>((r) => upstream.bind(0, '127.0.0.1', r));
  try {
    await must('ip', ['netns', 'add', ns]);
    await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const res = new DnsResolver(fixture(), { upstreams: [{ host: '127.0.0.1', port: upstream.address().port }], maxInFlight: 4096 });
    const dns = await res.serve(ns, ['front']);
    const local = path.join(dir, 'local.txt');
    writeFileSync(local, ['web A', 'tasks.web A', 'db A', 'cache A', 'web AAAA', '_80._tcp.web SRV', '9.0.0.10.in-addr.arpa PTR'].join('\n') + '\n');
    const fwd = path.join(dir, 'fwd.txt');
    writeFileSync(fwd, Array.from({ length: 50 }, (_, i) => `host${i}.example.org A`).join('\n') + '\n');
    const common = ['-l', String(seconds), '-c', '4', '-t', '2'];

    const out = path.join(dir, 'dnsperf.out');
    const max = await dnsperf(ns, local, [...common, '-q', values.outstanding!], false, out);
    const fixed = await dnsperf(ns, local, [...common, '-q', values.outstanding!, '-Q', String(rate)], true, out);
    const fwdRun = await dnsperf(ns, fwd, [...common, '-q', values.outstanding!], false, out);
    await dns.close();
    res.close();

    const lines = [
      `DNS bench (${os.cpus().length} CPUs, ${seconds} s per run, dnsperf -c 4, ${values.outstanding} outstanding)`,
      `| run | queries/s | completed | lost | p50 ms | p99 ms |`,
      `|---|---|---|---|---|---|`,
      `| local, full speed | ${max.qps.toFixed(0)} | ${max.completed} | ${max.lost} | | |`,
      `| local, at ${rate}/s | ${fixed.qps.toFixed(0)} | ${fixed.completed} | ${fixed.lost} | ${pct(fixed.latencies, 50).toFixed(3)} | ${pct(fixed.latencies, 99).toFixed(3)} |`,
      `| forwarded, full speed | ${fwdRun.qps.toFixed(0)} | ${fwdRun.completed} | ${fwdRun.lost} | | |`,
      `counters: ${JSON.stringify(res.counters)}`,
    ];
    console.log(lines.join('\n'));
  } finally {
    upstream.close();
    await cleanup();
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
