// `npm run demo`: three hosts in network namespaces on this machine, a tapmesh agent on each, one
// overlay across them, two containers per host; prints a ping matrix and an iperf3 figure, then a
// service with tasks on two hosts, published on 8080: curl on every host's port is answered by
// the tasks in turn (the routing mesh); then an `--opt encrypted` network between two hosts: ping
// across it while the underlay is captured (ESP on 4500, no VXLAN). Removes everything it made
// (also on Ctrl-C).
import path from 'node:path';
import { tcpdumpListening } from './harness/esp.js';
import { Lab, must, requireRoot, sleep, waitFor, type Host } from './harness/lab.js';
import { buildOverlay } from './harness/overlay.js';
import { curlMany, startNameServer } from './harness/services.js';

const t0 = Date.now();
const step = (msg: string) => process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s] ${msg}\n`);

async function pingOk(lab: Lab, from: string, to: string): Promise<number | undefined> {
  const r = await lab.exec(from, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', '-q', to], 15_000);
  const m = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  return r.code === 0 && m ? Number(m[1]) : undefined;
}

async function main(): Promise<void> {
  if (!requireRoot('demo')) process.exit(1);
  const lab = new Lab();
  let cleaning = false;
  const cleanup = async (code: number) => {
    if (cleaning) return;
    cleaning = true;
    step('cleaning up namespaces and processes');
    await lab.cleanup();
    process.exit(code);
  };
  process.on('SIGINT', () => void cleanup(130));
  process.on('SIGTERM', () => void cleanup(143));
  try {
    step(`run tag ${lab.tag}: building underlay and 3 hosts`);
    const ov = await buildOverlay(lab, { hosts: 3, containersPerHost: 2, network: 'overnet', subnet: '10.0.9.0/24', gateway: '10.0.9.99', mode: 'gossip', onStep: step });
    process.stdout.write(`\n$ tapmesh node ls   (on ${ov.hosts[0].name})\n${await lab.mustCli(ov.hosts[0], ['node', 'ls'])}`);
    process.stdout.write(`\n$ tapmesh network ls   (on ${ov.hosts[2].name})\n${await lab.mustCli(ov.hosts[2], ['network', 'ls'])}\n`);
    step('ping matrix (average RTT in ms, container → container):');
    const names = ov.containers.map((c) => `${c.host.name}/${c.name}`);
    const rows: string[] = [`${''.padEnd(10)}${names.map((n) => n.padStart(10)).join('')}`];
    let failures = 0;
    for (const a of ov.containers) {
      const cells: string[] = [];
      for (const b of ov.containers) {
        if (a === b) {
          cells.push('-'.padStart(10));
          continue;
        }
        const rtt = await pingOk(lab, a.ns, b.ip);
        if (rtt === undefined) failures++;
        cells.push((rtt === undefined ? 'FAIL' : rtt.toFixed(3)).padStart(10));
      }
      rows.push(`${`${a.host.name}/${a.name}`.padEnd(10)}${cells.join('')}`);
    }
    process.stdout.write(`${rows.join('\n')}\n`);
    const src = ov.containers[0];
    const dst = ov.containers.find((c) => c.host !== src.host)!;
    step(`iperf3 TCP ${src.host.name}/${src.name} → ${dst.host.name}/${dst.name} (5 s)`);
    lab.spawnIn(dst.ns, 'iperf3', ['-s', '-1'], 'iperf3-server.log');
    await new Promise((r) => setTimeout(r, 500));
    const r = await lab.exec(src.ns, 'iperf3', ['-c', dst.ip, '-t', '5', '-J'], 30_000);
    if (r.code === 0) {
      const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
      process.stdout.write(`iperf3: ${(j.end.sum_received.bits_per_second / 1e9).toFixed(2)} Gbit/s over the overlay\n`);
    } else {
      process.stdout.write(`iperf3 failed: ${r.stderr.trim() || r.stdout.slice(0, 200)}\n`);
      failures++;
    }
    failures += await meshDemo(lab, ov.hosts);
    failures += await encryptedDemo(lab, ov.hosts);
    const stats = await lab.mustCli(ov.hosts[0], ['stats']);
    process.stdout.write(`\ntapmesh stats on ${ov.hosts[0].name}:\n${stats}`);
    await cleanup(failures === 0 ? 0 : 1);
  } catch (e) {
    process.stderr.write(`demo failed: ${(e as Error).message}\n`);
    await cleanup(1);
  }
}

/** A service with a task on hosts 1 and 2, published 8080:80; curl from the underlay to every host. */
async function meshDemo(lab: Lab, hosts: Host[]): Promise<number> {
  step('service web: tasks on h1 and h2, published 8080:80 on every host');
  process.stdout.write(`\n$ tapmesh service create --name web --network overnet -p 8080:80\n${await lab.mustCli(hosts[0], ['service', 'create', '--name', 'web', '--network', 'overnet', '-p', '8080:80'])}`);
  for (const [i, h] of hosts.slice(0, 2).entries()) {
    const ns = await lab.addContainer(h, `web${i + 1}`);
    await lab.mustCli(h, ['network', 'connect', '--service', 'web', 'overnet', ns]);
    startNameServer(lab, ns, `web${i + 1}@${h.name}`);
  }
  const client = await lab.addHost('client');
  const deadline = Date.now() + 20_000;
  while ((await curlMany(lab, client.ns, `http://${hosts[2].addr}:8080/`, 1))[0] === '' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 300));
  process.stdout.write(`\n$ tapmesh service ps web   (on ${hosts[2].name})\n${await lab.mustCli(hosts[2], ['service', 'ps', 'web'])}`);
  let failures = 0;
  for (const h of hosts) {
    const answers = await curlMany(lab, client.ns, `http://${h.addr}:8080/`, 4);
    failures += answers.filter((a) => a === '').length;
    process.stdout.write(`curl http://${h.addr}:8080/ ×4 (${h.name}${h === hosts[2] ? ', no task here' : ''}): ${answers.map((a) => a.split(' ')[0] || 'FAIL').join(', ')}\n`);
  }
  return failures;
}

/** An `--opt encrypted` network with a container on hosts 1 and 2: ping across it, and what the underlay carried meanwhile. */
async function encryptedDemo(lab: Lab, hosts: Host[]): Promise<number> {
  const [h1, h2] = hosts;
  step('encrypted network secnet: a container on h1 and on h2, ping across, underlay captured on h2');
  const create = ['network', 'create', '-d', 'overlay', '--subnet', '10.0.30.0/24', '--opt', 'encrypted', 'secnet'];
  process.stdout.write(`\n$ tapmesh ${create.join(' ')}\n${await lab.mustCli(h1, create)}`);
  await waitFor('secnet listed on h2', async () => (await lab.mustCli(h2, ['network', 'ls'])).includes('secnet'), 20_000, 200);
  const ips = ['10.0.30.11', '10.0.30.12'];
  const nss: string[] = [];
  for (const [i, h] of [h1, h2].entries()) {
    const ns = await lab.addContainer(h, 'sec');
    await lab.mustCli(h, ['network', 'connect', '--ip', ips[i], 'secnet', ns]);
    nss.push(ns);
  }
  // The first packets wait for the pair's SA (agreed over gossip): retry until one ping answers.
  const deadline = Date.now() + 20_000;
  while ((await lab.exec(nss[0], 'ping', ['-c', '1', '-W', '1', ips[1]], 5_000)).code !== 0 && Date.now() < deadline) await sleep(300);
  const pcap = path.join(lab.dir, 'demo-secnet.pcap');
  const cap = lab.spawnIn(h2.ns, 'tcpdump', ['--immediate-mode', '-i', 'ul0', '-s', '0', '-U', '-w', pcap, `udp and src host ${h1.addr} and (port 4789 or port 4500)`], 'tcpdump-demo.log');
  await tcpdumpListening(lab, 'tcpdump-demo.log');
  const r = await lab.exec(nss[0], 'ping', ['-c', '5', '-i', '0.2', '-W', '2', '-q', ips[1]], 30_000);
  await sleep(300);
  await lab.stopProcess(cap, 'SIGINT');
  const ports = (await must('tshark', ['-r', pcap, '-T', 'fields', '-e', 'udp.dstport'])).trim().split('\n').filter(Boolean);
  const esp = ports.filter((p) => p === '4500').length;
  const vxlan = ports.filter((p) => p === '4789').length;
  const summary = /\d+ packets transmitted.*|rtt.*/g;
  process.stdout.write(`ping ${h1.name}/sec → ${h2.name}/sec (${ips[1]}) over secnet: ${(r.stdout.match(summary) ?? ['FAIL']).join('; ')}\n`);
  process.stdout.write(`underlay on ${h2.name} meanwhile, from ${h1.name}: ${esp} ESP datagrams on UDP 4500, ${vxlan} cleartext VXLAN on 4789\n`);
  return r.code === 0 && esp > 0 && vxlan === 0 ? 0 : 1;
}

export type { Host };
void main();
