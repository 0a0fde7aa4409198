// Services bench (`npm run bench -- services`, or `node dist/bench/services.js [--seconds S] [--agent-args '...']`):
// two hosts by gossip, a service with one task on host 2 (a Node TCP server answering one HTTP
// request per connection and closing it), published 8080:80 and 5201:5201.
//   1. new TCP connections/s through the routing mesh: wrk with `Connection: close` from a client
//      namespace on the underlay to host 1's :8080 (the task is on host 2);
//   2. the same through the VIP, from a container on host 1;
//   3. one TCP stream (iperf3) through the mesh, through the VIP and over the plain overlay
//      (container → task address), in the same run;
//   4. agent CPU (user + system, both agents) per 1000 connections for 1 and 2.
// Writes bench/results/services-latest.md and prints it. Removes everything it made.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Lab, repoRoot, requireRoot, sleep } from '../test/harness/lab.js';
import { buildOverlay } from '../test/harness/overlay.js';
import { curlMany } from '../test/harness/services.js';

const TASK_SERVER = `require('net').createServer({ allowHalfOpen: false }, (s) => { s.on('error', () => {}); s.once('data', () => s.end('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok')); }).listen(80, '0.0.0.0', 4096)`;

const progress = (m: string) => process.stderr.write(`[services] ${m}\n`);

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100; // utime + stime, in ticks of 1/100 s
}

async function wrk(lab: Lab, ns: string, url: string, seconds: number): Promise<{ rps: number; errors: string; latency: string }> {
  const r = await lab.exec(ns, 'wrk', ['-t2', '-c64', `-d${seconds}s`, '-H', 'Connection: close', url], (seconds + 30) * 1000);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? 0);
  const errors = /Socket errors:.*|Non-2xx.*/.exec(r.stdout)?.[0] ?? '';
  // wrk's thread stats line: "Latency   avg   stdev   max   +/- stdev" (a 1 s max is a SYN retransmit).
  const lat = /Latency\s+(\S+)\s+\S+\s+(\S+)/.exec(r.stdout);
  return { rps, errors, latency: lat ? `${lat[1]} / ${lat[2]}` : '-' };
}

async function iperf(lab: Lab, ns: string, host: string, port: number, seconds: number): Promise<number> {
  const r = await lab.exec(ns, 'iperf3', ['-c', host, '-p', String(port), '-t', String(seconds), '-J'], (seconds + 30) * 1000);
  if (r.code !== 0) return 0;
  return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
}

async function main(): Promise<number> {
  if (!requireRoot('services bench')) return 1;
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, 'agent-args': { type: 'string', default: '' } } });
  const seconds = Number(values.seconds);
  // e.g. --agent-args '--busy-poll 0' (each agent's busy polling against a 2-core machine's client and task).
  const agentArgs = values['agent-args'].split(' ').filter(Boolean);
  const lab = new Lab('192.0.2');
  const stop = async () => {
    await lab.cleanup();
    process.exit(130);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  try {
    const ov = await buildOverlay(lab, { hosts: 2, containersPerHost: 1, network: 'benchnet', subnet: '10.0.40.0/24', mode: 'gossip', onStep: progress, agentArgs });
    const [h1, h2] = ov.hosts;
    await lab.mustCli(h1, ['service', 'create', '--name', 'bench', '--network', 'benchnet', '-p', '8080:80', '-p', '5201:5201']);
    const task = await lab.addContainer(h2, 'task');
    await lab.mustCli(h2, ['network', 'connect', '--service', 'bench', 'benchnet', task]);
    lab.spawnIn(task, process.execPath, ['-e', TASK_SERVER], 'task-http.log');
    lab.spawnIn(task, 'iperf3', ['-s'], 'task-iperf.log');
    const client = await lab.addHost('cl');
    const vip = JSON.parse(await lab.mustCli(h1, ['service', 'inspect', 'bench']))[0].Endpoint.VirtualIPs[0].Addr.split('/')[0] as string;
    const taskIp = (JSON.parse(await lab.mustCli(h2, ['network', 'inspect', '--verbose', 'benchnet']))[0].Endpoints as { Name: string; IPv4Address: string }[])
      .find((e) => e.Name === task)!.IPv4Address.split('/')[0];
    const c1 = ov.containers.find((c) => c.host === h1)!;
    for (let i = 0; i < 100 && (await curlMany(lab, client.ns, `http://${h1.addr}:8080/`, 1))[0] !== 'ok'; i++) await sleep(200);
    const pids = ov.agents.map((a) => a.pid!);
    const cpu = () => pids.reduce((s, p) => s + cpuMs(p), 0);
    const rows: string[] = [];
    const conn = async (label: string, ns: string, url: string) => {
      const c0 = cpu();
      const w = await wrk(lab, ns, url, seconds);
      const used = cpu() - c0;
      const perK = w.rps > 0 ? used / ((w.rps * seconds) / 1000) : 0;
      progress(`${label}: ${w.rps.toFixed(0)} conn/s, latency avg / max ${w.latency} ${w.errors}`);
      rows.push(`| ${label} | ${w.rps.toFixed(0)} | ${w.latency} | ${perK.toFixed(1)} | ${w.errors || '-'} |`);
    };
    await conn('routing mesh (underlay client → h1:8080 → task on h2)', client.ns, `http://${h1.addr}:8080/`);
    await conn('VIP (container on h1 → VIP:80 → task on h2)', c1.ns, `http://${vip}:80/`);
    const streams: [string, number][] = [];
    for (const [label, ns, host, port] of [
      ['plain overlay (container on h1 → task address)', c1.ns, taskIp, 5201],
      ['VIP (container on h1 → VIP:5201)', c1.ns, vip, 5201],
      ['routing mesh (underlay client → h1:5201)', client.ns, h1.addr, 5201],
    ] as const) {
      const g = await iperf(lab, ns, host, port, seconds);
      progress(`${label}: ${g.toFixed(2)} Gbit/s`);
      streams.push([label, g]);
      await sleep(500);
    }
    const plain = streams[0][1];
    const md = [
      `# Services bench (${new Date().toISOString()}, ${seconds} s per test${agentArgs.length ? `, agents with ${agentArgs.join(' ')}` : ''})`, '',
      '| new TCP connections (wrk -c64, Connection: close) | conn/s | latency avg / max | agent CPU ms per 1000 conn | errors |', '|---|---|---|---|---|', ...rows, '',
      '| one TCP stream (iperf3) | Gbit/s | × plain overlay |', '|---|---|---|',
      ...streams.map(([l, g]) => `| ${l} | ${g.toFixed(2)} | ${plain > 0 ? (g / plain).toFixed(2) : '-'} |`), '',
    ].join('\n');
    writeFileSync(path.join(repoRoot, 'bench/results/services-latest.md'), md);
    process.stdout.write(md);
    return 0;
  } catch (e) {
    progress(`failed: ${(e as Error).message}`);
    return 1;
  } finally {
    await lab.cleanup();
  }
}

void main().then((code) => process.exit(code));
