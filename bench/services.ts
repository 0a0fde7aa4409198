// Services bench (`npm run bench -- services`, or
// `node dist/bench/services.js [--seconds S] [--agent-args '...'] [--task-server node|nginx]`):
// two hosts by gossip, a service with one task on host 2 (an HTTP server answering one request
// per connection and closing it: nginx-light with one worker by default, or a Node TCP server,
// which costs two to three times the CPU per connection on the cores the rest shares), published
// 8080:80 and 5201:5201.
//   1. new TCP connections/s through the routing mesh: wrk with `Connection: close` from a client
//      namespace on the underlay to host 1's :8080 (the task is on host 2);
//   2. the same through the VIP, from a container on host 1;
//   3. the same over the plain overlay (container on host 1 → task address): the VIP's baseline,
//      and between two namespaces joined by a veth pair, no overlay at all (the same task server
//      in its own namespace): what this machine's kernel, wrk and the server reach alone; and
//      over kernel VXLAN between two more hosts (Docker's layout, test/harness/kernel-vxlan.ts):
//      what the kernel's own overlay reaches on the same cores, the bound for any overlay's VIP;
//   4. one TCP stream (iperf3) through the mesh, through the VIP, over the plain overlay
//      (container → task address) and over kernel VXLAN, in the same run;
//   5. CPU (user + system) per 1000 connections for 1 to 3: both agents, the server, wrk.
// Writes bench/results/services-latest.md and prints it. Removes everything it made.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Lab, must, repoRoot, requireRoot, run, sleep } from '../test/harness/lab.js';
import { buildOverlay } from '../test/harness/overlay.js';
import { setupKernelVxlanHost } from '../test/harness/kernel-vxlan.js';
import { macFor } from './systems/system.js';
import { curlMany } from '../test/harness/services.js';

const TASK_SERVER = `require('net').createServer({ allowHalfOpen: false }, (s) => { s.on('error', () => {}); s.once('data', () => s.end('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok')); }).listen(80, '0.0.0.0', 4096)`;

/** nginx-light in the task namespace: one worker, no logs, one short answer per request. */
function nginxConf(dir: string): string {
  return [
    'worker_processes 1;', 'daemon off;', `pid ${dir}/task-nginx.pid;`, `error_log ${dir}/task-nginx.err warn;`,
    'events { worker_connections 4096; }',
    'http {', '  access_log off;', `  client_body_temp_path ${dir}/nginx-body;`, `  proxy_temp_path ${dir}/nginx-proxy;`,
    `  fastcgi_temp_path ${dir}/nginx-fcgi;`, `  uwsgi_temp_path ${dir}/nginx-uwsgi;`, `  scgi_temp_path ${dir}/nginx-scgi;`,
    '  keepalive_timeout 0;', '  server { listen 80 backlog=4096; location / { return 200 "ok"; } }', '}', '',
  ].join('\n');
}

const progress = (m: string) => process.stderr.write(`[services] ${m}\n`);

function cpuMs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / 100; // utime + stime, in ticks of 1/100 s
}

async function wrk(lab: Lab, ns: string, url: string, seconds: number, conns: number): Promise<{ rps: number; errors: string; latency: string; cpuMs: number }> {
  // `times` after wrk: the shell's children's user and system time (wrk's own CPU).
  const r = await lab.exec(ns, 'bash', ['-c', `wrk -t2 -c${conns} -d${seconds}s -H 'Connection: close' ${url}; times`], (seconds + 30) * 1000);
  const t = /\n(\d+)m([\d.]+)s (\d+)m([\d.]+)s\s*$/.exec(r.stdout);
  const cpu = t ? (Number(t[1]) * 60 + Number(t[2]) + Number(t[3]) * 60 + Number(t[4])) * 1000 : 0;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(r.stdout)?.[1] ?? 0);
  const errors = /Socket errors:.*|Non-2xx.*/.exec(r.stdout)?.[0] ?? '';
  // wrk's thread stats line: "Latency   avg   stdev   max   +/- stdev" (a 1 s max is a SYN retransmit).
  const lat = /Latency\s+(\S+)\s+\S+\s+(\S+)/.exec(r.stdout);
  return { rps, errors, latency: lat ? `${lat[1]} / ${lat[2]}` : '-', cpuMs: cpu };
}

async function iperf(lab: Lab, ns: string, host: string, port: number, seconds: number): Promise<number> {
  const r = await lab.exec(ns, 'iperf3', ['-c', host, '-p', String(port), '-t', String(seconds), '-J'], (seconds + 30) * 1000);
  if (r.code !== 0) return 0;
  return (JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e9;
}

async function main(): Promise<number> {
  if (!requireRoot('services bench')) return 1;
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '5' },
      // e.g. --tests mesh (the rows to run: mesh, vip, plain, kvxlan, kernel, streams; all by default).
      tests: { type: 'string', default: 'mesh,vip,plain,kvxlan,kernel,streams' },
      hold: { type: 'string', default: '0' },
      // wrk's concurrent connections (-c).
      connections: { type: 'string', default: '64' }, 'agent-args': { type: 'string', default: '' }, 'task-server': { type: 'string', default: 'nginx' } },
  });
  const seconds = Number(values.seconds);
  const tests = new Set(values.tests.split(','));
  for (const t of tests) if (!['mesh', 'vip', 'plain', 'kvxlan', 'kernel', 'streams'].includes(t)) throw new Error(`--tests: unknown ${t}`);
  const taskServer = values['task-server'];
  if (taskServer !== 'node' && taskServer !== 'nginx') throw new Error(`--task-server node|nginx: ${taskServer}`);
  if (taskServer === 'nginx' && (await run('sh', ['-c', 'command -v nginx'])).code !== 0) {
    progress('no nginx here (Debian: nginx-light); run with --task-server node');
    return 1;
  }
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
    const ov = await buildOverlay(lab, { hosts: 2, containersPerHost: 2, network: 'benchnet', subnet: '10.0.40.0/24', mode: 'gossip', onStep: progress, agentArgs });
    const [h1, h2] = ov.hosts;
    await lab.mustCli(h1, ['service', 'create', '--name', 'bench', '--network', 'benchnet', '-p', '8080:80', '-p', '5201:5201']);
    const task = await lab.addContainer(h2, 'task');
    await lab.mustCli(h2, ['network', 'connect', '--service', 'bench', 'benchnet', task]);
    const startServer = (ns: string, name: string): ChildProcess => {
      if (taskServer === 'node') return lab.spawnIn(ns, process.execPath, ['-e', TASK_SERVER], `${name}-http.log`);
      const dir = path.join(lab.dir, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'nginx.conf'), nginxConf(dir));
      return lab.spawnIn(ns, 'nginx', ['-c', path.join(dir, 'nginx.conf')], `${name}-http.log`);
    };
    const http = startServer(task, 'task');
    // The kernel-only pair: kc (wrk) ↔ ks (the same server) over one veth pair.
    const kc = await lab.addNamespace(lab.ns('kc'));
    const ks = await lab.addNamespace(lab.ns('ks'));
    await must('ip', ['link', 'add', 'veth0', 'netns', kc, 'type', 'veth', 'peer', 'name', 'veth0', 'netns', ks]);
    for (const [ns, a] of [[kc, '198.18.0.1/30'], [ks, '198.18.0.2/30']] as const) {
      await must('ip', ['-n', ns, 'addr', 'add', a, 'dev', 'veth0']);
      await must('ip', ['-n', ns, 'link', 'set', 'veth0', 'up']);
    }
    const kernelServer = startServer(ks, 'kernel');
    // The kernel VXLAN pair: two more hosts on the same underlay, kernel VXLAN as Docker lays it
    // out (default offloads, as the tapmesh hosts have), wrk in kx1's container, the same server
    // (and an iperf3) in kx2's.
    const kx = [await lab.addHost('kx1'), await lab.addHost('kx2')];
    const kxc = [await lab.addContainer(kx[0], 'c'), await lab.addContainer(kx[1], 'c')];
    const kxIp = ['10.0.41.2', '10.0.41.3'];
    for (let i = 0; i < 2; i++) {
      await setupKernelVxlanHost(kx[i], {
        vni: 4097, mtu: 1450, container: kxc[i], ip: kxIp[i], prefixLen: 24, mac: macFor(kxIp[i]), defaultOffloads: true,
        remotes: [{ mac: macFor(kxIp[1 - i]), ip: kxIp[1 - i], vtep: kx[1 - i].addr }], staticNeigh: true,
      });
    }
    const kxServer = startServer(kxc[1], 'kvxlan');
    lab.spawnIn(kxc[1], 'iperf3', ['-s'], 'kvxlan-iperf.log');
    lab.spawnIn(task, 'iperf3', ['-s'], 'task-iperf.log');
    const client = await lab.addHost('cl');
    const vip = JSON.parse(await lab.mustCli(h1, ['service', 'inspect', 'bench']))[0].Endpoint.VirtualIPs[0].Addr.split('/')[0] as string;
    const taskIp = (JSON.parse(await lab.mustCli(h2, ['network', 'inspect', '--verbose', 'benchnet']))[0].Endpoints as { Name: string; IPv4Address: string }[])
      .find((e) => e.Name === task)!.IPv4Address.split('/')[0];
    // Two containers on h1: the VIP's client and the plain overlay's, so the plain test never
    // reuses a 4-tuple the task still holds in TIME_WAIT from a VIP connection (its SYN, with
    // another timestamp offset, would be refused by PAWS and wait for a retransmit).
    const [c1, c1b] = ov.containers.filter((c) => c.host === h1);
    for (let i = 0; i < 100 && (await curlMany(lab, client.ns, `http://${h1.addr}:8080/`, 1))[0] !== 'ok'; i++) await sleep(200);
    const pids = ov.agents.map((a) => a.pid!);
    const cpu = () => pids.reduce((s, p) => s + cpuMs(p), 0);
    // The task server's CPU: the process `ip netns exec` became, and nginx's worker (its child).
    const serverPids = (server: ChildProcess) => {
      const root = server.pid!;
      const kids = readFileSync(`/proc/${root}/task/${root}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      return [root, ...kids];
    };
    const rows: string[] = [];
    const conn = async (label: string, ns: string, url: string, server = http) => {
      const serverCpu = () => serverPids(server).reduce((s, p) => s + cpuMs(p), 0);
      const c0 = cpu();
      const s0 = serverCpu();
      const w = await wrk(lab, ns, url, seconds, Number(values.connections));
      const used = cpu() - c0;
      const k = (w.rps * seconds) / 1000;
      const per = (ms: number) => (k > 0 ? (ms / k).toFixed(0) : '-');
      progress(`${label}: ${w.rps.toFixed(0)} conn/s, latency avg / max ${w.latency} ${w.errors}`);
      rows.push(`| ${label} | ${w.rps.toFixed(0)} | ${w.latency} | ${per(used)} | ${per(serverCpu() - s0)} | ${per(w.cpuMs)} | ${w.errors || '-'} |`);
    };
    // --hold S: keep the lab S seconds before the tests (attach perf or a profiler to the agents).
    if (Number(values.hold) > 0) {
      progress(`holding ${values.hold} s: agents ${pids.join(' ')}`);
      await sleep(Number(values.hold) * 1000);
    }
    if (tests.has('mesh')) await conn('routing mesh (underlay client → h1:8080 → task on h2)', client.ns, `http://${h1.addr}:8080/`);
    if (tests.has('vip')) await conn('VIP (container on h1 → VIP:80 → task on h2)', c1.ns, `http://${vip}:80/`);
    if (tests.has('plain')) await conn('plain overlay (container on h1 → task address:80)', c1b.ns, `http://${taskIp}:80/`);
    if (tests.has('kvxlan')) await conn('kernel VXLAN overlay (container on kx1 → server on kx2)', kxc[0], `http://${kxIp[1]}:80/`, kxServer);
    if (tests.has('kernel')) await conn('no overlay: kernel only (veth pair, the same server)', kc, 'http://198.18.0.2:80/', kernelServer);
    const streams: [string, number][] = [];
    for (const [label, ns, host, port] of !tests.has('streams') ? [] : [
      ['plain overlay (container on h1 → task address)', c1.ns, taskIp, 5201],
      ['VIP (container on h1 → VIP:5201)', c1.ns, vip, 5201],
      ['routing mesh (underlay client → h1:5201)', client.ns, h1.addr, 5201],
      ['kernel VXLAN overlay (container on kx1 → kx2)', kxc[0], kxIp[1], 5201],
    ] as const) {
      const g = await iperf(lab, ns, host, port, seconds);
      progress(`${label}: ${g.toFixed(2)} Gbit/s`);
      streams.push([label, g]);
      await sleep(500);
    }
    const plain = streams[0]?.[1] ?? 0;
    const md = [
      `# Services bench (${new Date().toISOString()}, ${seconds} s per test, task server ${taskServer}${agentArgs.length ? `, agents with ${agentArgs.join(' ')}` : ''})`, '',
      `| new TCP connections (wrk -t2 -c${values.connections}, Connection: close) |` + ' conn/s | latency avg / max | agents CPU ms / 1000 conn | task server CPU ms / 1000 | wrk CPU ms / 1000 | errors |',
      '|---|---|---|---|---|---|---|', ...rows, '',
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
