// Issue 9 on real namespaces: three hosts by gossip, a service with tasks on hosts 1 and 2
// (HTTP servers answering with their own name and the peer address they see), published
// 8080:80. The routing mesh answers on every host's underlay address, host 3 (no task)
// included; the VIP answers from a container on each host; schedulers, client address, idle
// and half-closed connections, drain, a dead host, refusals and malformed frames.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { Lab, requireRoot, sleep, waitFor, type Host } from './harness/lab.js';
import {
  curlMany, lineClient, sendMalformed, startLineServer, startNameServer, startServiceCluster, startUdpNameServer, synFlood, udpAskMany, LINE_CLIENT,
} from './harness/services.js';

const root = requireRoot('services integration');
const UDP_IDLE_S = 2;

describe.skipIf(!root)('services: routing mesh and VIPs across three hosts', () => {
  const lab = new Lab();
  const hosts: Host[] = [];
  const agents: ChildProcess[] = [];
  /** A client on the underlay (no agent). */
  let client: Host;
  /** A plain container (no task) on each host. */
  const ctrs: { ns: string; ip: string }[] = [];
  const tasks: { ns: string; name: string }[] = [];
  let vip = '';
  const lines = (s: string) => s.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const ipOf = async (h: Host, ns: string): Promise<string> => {
    const eps = JSON.parse(await lab.mustCli(h, ['network', 'inspect', '--verbose', 'svcnet']))[0].Endpoints as { Name: string; IPv4Address: string }[];
    return eps.find((e) => e.Name === ns)!.IPv4Address.split('/')[0];
  };
  const count = (answers: string[]) => {
    const m: Record<string, number> = {};
    for (const a of answers) m[a.split(' ')[0]] = (m[a.split(' ')[0]] ?? 0) + 1;
    return m;
  };
  const drops = async (h: Host): Promise<Record<string, number>> => {
    const s = lines(await lab.mustCli(h, ['stats', '--format', 'json']));
    const net = s.find((l) => l.Network === 'svcnet') ?? s.find((l) => l.Drops);
    return (net?.Drops ?? {}) as Record<string, number>;
  };

  beforeAll(async () => {
    try {
      await lab.start();
      for (let i = 1; i <= 3; i++) hosts.push(await lab.addHost(`h${i}`));
      client = await lab.addHost('cl');
      const common = ['--gossip-profile', 'fast', '--udp-idle', String(UDP_IDLE_S)];
      await startServiceCluster(lab, hosts, common, '10.0.30.0/24', agents);
      await lab.mustCli(hosts[0], ['service', 'create', '--name', 'web', '--network', 'svcnet', '-p', '8080:80', '-p', '7070:70']);
      vip = JSON.parse(await lab.mustCli(hosts[0], ['service', 'inspect', 'web']))[0].Endpoint.VirtualIPs[0].Addr.split('/')[0];
      for (const [i, h] of hosts.slice(0, 2).entries()) {
        const ns = await lab.addContainer(h, `task${i + 1}`);
        await lab.mustCli(h, ['network', 'connect', '--service', 'web', 'svcnet', ns]);
        startNameServer(lab, ns, `task${i + 1}`);
        startLineServer(lab, ns, `task${i + 1}`, 70);
        tasks.push({ ns, name: `task${i + 1}` });
      }
      for (const h of hosts) {
        const ns = await lab.addContainer(h, 'c');
        await lab.mustCli(h, ['network', 'connect', 'svcnet', ns]);
        ctrs.push({ ns, ip: await ipOf(h, ns) });
      }
      for (const h of hosts) {
        await waitFor(`2 tasks in service ps on ${h.name}`, async () => lines(await lab.mustCli(h, ['service', 'ps', '--format', 'json', 'web'])).length === 2, 15_000);
      }
      await waitFor('mesh answering on h3', async () => (await curlMany(lab, client.ns, `http://${hosts[2].addr}:8080/`, 1))[0] !== '', 15_000, 300);
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  }, 120_000);
  afterAll(() => lab.cleanup());

  it('routing mesh: 30 curls to :8080 on each host, host 3 without a task included, all answered by both tasks', async () => {
    for (const h of hosts) {
      const answers = await curlMany(lab, client.ns, `http://${h.addr}:8080/`, 30);
      expect(answers.filter((a) => a === ''), `failed requests via ${h.name}`).toHaveLength(0);
      const by = count(answers);
      expect(Object.keys(by).sort(), `tasks answering via ${h.name}`).toEqual(['task1', 'task2']);
    }
  }, 120_000);

  it('VIP: 30 curls to VIP:80 from a container on each host, all answered by both tasks, remote tasks see the client address', async () => {
    for (const [i, c] of ctrs.entries()) {
      const answers = await curlMany(lab, c.ns, `http://${vip}:80/`, 30);
      expect(answers.filter((a) => a === ''), `failed requests from h${i + 1}`).toHaveLength(0);
      expect(Object.keys(count(answers)).sort(), `tasks answering h${i + 1}`).toEqual(['task1', 'task2']);
      // A remote task sees the real client address; a task on the client's own host sees the VIP (hairpin).
      for (const a of answers) {
        const [name, peer] = a.split(' ');
        const local = (name === 'task1' && i === 0) || (name === 'task2' && i === 1);
        expect(peer, `${name} seen from h${i + 1}`).toBe(local ? vip : c.ip);
      }
    }
  }, 120_000);

  it('the published port works on the VIP too (VIP:8080 → 80)', async () => {
    const answers = await curlMany(lab, ctrs[2].ns, `http://${vip}:8080/`, 4);
    expect(answers.every((a) => /^task[12] /.test(a))).toBe(true);
  });

  it('a port the service does not publish is refused at once on the VIP (RST), and counted', async () => {
    const before = (await drops(hosts[2])).vipRefused ?? 0;
    const t0 = Date.now();
    const r = await lab.exec(ctrs[2].ns, 'curl', ['-s', '-m', '5', `http://${vip}:9999/`]);
    expect(r.code).toBe(7); // connection refused
    expect(Date.now() - t0).toBeLessThan(2000);
    await waitFor('vipRefused counted', async () => ((await drops(hosts[2])).vipRefused ?? 0) > before, 3000);
  });

  it('a TCP connection through the VIP and one through the mesh stay usable after idling past the UDP idle timeout; half-close delivers the other direction', async () => {
    const idle = `sleep:${UDP_IDLE_S * 2 + 1}`;
    const [viaVip, viaMesh] = await Promise.all([
      lineClient(lab, ctrs[2].ns, vip, 70, ['send:one', idle, 'send:two', 'shut']),
      lineClient(lab, client.ns, hosts[2].addr, 7070, ['send:one', idle, 'send:two', 'shut']),
    ]);
    for (const out of [viaVip, viaMesh]) {
      const name = out[0].split(':')[0];
      expect(out).toEqual([`${name}:one`, `${name}:two`, `${name}:bye`]);
    }
  }, 60_000);

  /** A service on svcnet with its own task containers (name server on `port`). */
  const service = async (name: string, args: string[], taskHosts: { h: Host; weight?: number; pp?: boolean; port?: number }[]): Promise<{ vip: string; names: string[] }> => {
    await lab.mustCli(hosts[0], ['service', 'create', '--name', name, '--network', 'svcnet', ...args]);
    const names: string[] = [];
    for (const [i, t] of taskHosts.entries()) {
      const ns = await lab.addContainer(t.h, `${name}${i}`);
      await lab.mustCli(t.h, ['network', 'connect', '--service', name, ...(t.weight !== undefined ? ['--weight', String(t.weight)] : []), 'svcnet', ns]);
      startNameServer(lab, ns, `${name}${i}`, t.port ?? 80, t.pp ?? false);
      names.push(`${name}${i}`);
    }
    for (const h of hosts) {
      await waitFor(`${name} tasks on ${h.name}`, async () => lines(await lab.mustCli(h, ['service', 'ps', '--format', 'json', name])).length === taskHosts.length, 15_000);
    }
    await sleep(500);
    const v = JSON.parse(await lab.mustCli(hosts[0], ['service', 'inspect', name]))[0].Endpoint.VirtualIPs[0].Addr.split('/')[0];
    return { vip: v, names };
  };

  it('wrr: the split follows the weights 3:1 within 10 %; sh: one client always reaches one task', async () => {
    const w = await service('wsvc', ['--lb', 'wrr'], [{ h: hosts[0], weight: 3 }, { h: hosts[1], weight: 1 }]);
    const answers = await curlMany(lab, ctrs[2].ns, `http://${w.vip}:80/`, 40);
    const by = count(answers);
    expect(answers.filter((a) => a === '')).toHaveLength(0);
    expect(Math.abs((by.wsvc0 ?? 0) / 40 - 0.75)).toBeLessThanOrEqual(0.1);
    const h = await service('hsvc', ['--lb', 'sh'], [{ h: hosts[0] }, { h: hosts[1] }]);
    for (const c of ctrs) {
      const got = await curlMany(lab, c.ns, `http://${h.vip}:80/`, 10);
      expect(Object.keys(count(got)), `sh from ${c.ns}`).toHaveLength(1);
    }
  }, 120_000);

  it('PROXY v2 through the mesh: the task reads the client\'s underlay address from the header', async () => {
    await service('ppsvc', ['--publish', 'published=8081,target=81,proxy-protocol=v2'], [{ h: hosts[1], pp: true, port: 81 }]);
    await waitFor('ppsvc published on h3', async () => (await curlMany(lab, client.ns, `http://${hosts[2].addr}:8081/`, 1))[0] !== '', 10_000, 300);
    const answers = await curlMany(lab, client.ns, `http://${hosts[2].addr}:8081/`, 3);
    expect(answers).toEqual(Array(3).fill(`ppsvc0 ${client.addr}`));
  }, 60_000);

  it('weight 0 drains: an open connection lives on, new ones go to the other task', async () => {
    const log = path.join(lab.dir, 'drain-client.log');
    const child = lab.spawnIn(ctrs[2].ns, 'python3', ['-c', LINE_CLIENT, vip, '70', 'send:one', 'sleep:8', 'send:two'], 'drain-client.log');
    const exited = new Promise((r) => child.once('exit', r));
    const first = await waitFor('drain client connected', async () => readFileSync(log, 'utf8').split('\n')[0].match(/^(task[12]):one$/)?.[1], 10_000);
    const other = first === 'task1' ? 'task2' : 'task1';
    const drained = tasks.find((t) => t.name === first)!.ns;
    onTestFinished(async () => void (await lab.cli(hosts[0], ['service', 'update', 'web', '--task-weight', `${drained}=1`])));
    await lab.mustCli(hosts[0], ['service', 'update', 'web', '--task-weight', `${drained}=0`]);
    await sleep(1500);
    const answers = await curlMany(lab, ctrs[2].ns, `http://${vip}:80/`, 10);
    expect(Object.keys(count(answers))).toEqual([other]);
    await exited;
    expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual([`${first}:one`, `${first}:two`]);
  }, 60_000);

  it('malformed frames to a VIP are dropped and counted', async () => {
    const vni = JSON.parse(await lab.mustCli(hosts[2], ['network', 'inspect', 'svcnet']))[0].Options['com.docker.network.driver.overlay.vxlanid_list'];
    const before = (await drops(hosts[2])).vipMalformed ?? 0;
    await sendMalformed(lab, ctrs[2].ns, Number(vni), vip, 5);
    await waitFor('vipMalformed counted', async () => ((await drops(hosts[2])).vipMalformed ?? 0) >= before + 5, 3000);
  });

  it('a UDP published port through the mesh (9053:5300/udp): flows from the underlay via host 3 are answered by both tasks', async () => {
    await lab.mustCli(hosts[0], ['service', 'create', '--name', 'usvc', '--network', 'svcnet', '-p', '9053:5300/udp']);
    for (const [i, h] of hosts.slice(0, 2).entries()) {
      const ns = await lab.addContainer(h, `u${i}`);
      await lab.mustCli(h, ['network', 'connect', '--service', 'usvc', 'svcnet', ns]);
      startUdpNameServer(lab, ns, `u${i}`, 5300);
    }
    await waitFor('usvc answering via h3', async () => (await udpAskMany(lab, client.ns, hosts[2].addr, 9053, 1))[0] !== '', 20_000, 300);
    const answers = await udpAskMany(lab, client.ns, hosts[2].addr, 9053, 20);
    expect(answers.filter((a) => a === ''), 'unanswered UDP flows').toHaveLength(0);
    expect(answers.every((a, i) => new RegExp(`^u[01]:ping${i}$`).test(a)), answers.join(',')).toBe(true);
    expect(new Set(answers.map((a) => a.split(':')[0]))).toEqual(new Set(['u0', 'u1']));
  }, 60_000);

  it('service ps shows each task\'s live connections, summed over the hosts that balance them', async () => {
    type PsRow = { Name: string; ActiveConnections: number | null };
    const ps = async (h: Host): Promise<Record<string, number | null>> =>
      Object.fromEntries(lines(await lab.mustCli(h, ['service', 'ps', '--format', 'json', 'web']))
        .map((r: PsRow) => [tasks.find((t) => t.ns === r.Name)?.name ?? r.Name, r.ActiveConnections]));
    let seen = '';
    const psIs = async (h: Host, want: string, label: string) => waitFor(label, async () => (seen = JSON.stringify(await ps(h))) === want, 8000, 300)
      .catch((e: Error) => { throw new Error(`${e.message}: service ps on ${h.name} shows ${seen}, want ${want}`); });
    await psIs(hosts[1], '{"task1":0,"task2":0}', 'no live connections before');
    // Three idle connections: two through the VIP (from h3's container, balanced on h3) and one
    // through h1's published port (balanced on h1).
    const logs = ['ps-a.log', 'ps-b.log', 'ps-c.log'];
    const children = [
      lab.spawnIn(ctrs[2].ns, 'python3', ['-c', LINE_CLIENT, vip, '70', 'send:one', 'sleep:15'], logs[0]),
      lab.spawnIn(ctrs[2].ns, 'python3', ['-c', LINE_CLIENT, vip, '70', 'send:one', 'sleep:15'], logs[1]),
      lab.spawnIn(client.ns, 'python3', ['-c', LINE_CLIENT, hosts[0].addr, '7070', 'send:one', 'sleep:15'], logs[2]),
    ];
    const exited = children.map((c) => new Promise((r) => c.once('exit', r)));
    const served = await waitFor('3 clients answered', async () => {
      const names = logs.map((l) => readFileSync(path.join(lab.dir, l), 'utf8').match(/^(task[12]):one$/m)?.[1]);
      return names.every(Boolean) ? (names as string[]) : undefined;
    }, 10_000);
    const want: Record<string, number> = { task1: 0, task2: 0 };
    for (const n of served) want[n]++;
    // Every host shows the cluster-wide count (each host publishes what it balances).
    for (const h of [hosts[1], hosts[2]]) await psIs(h, JSON.stringify(want), 'the 3 connections counted');
    await Promise.all(exited);
    await psIs(hosts[0], '{"task1":0,"task2":0}', 'counts back to 0');
  }, 60_000);

  it('a SYN flood from the underlay to a published port stays bounded: agent memory flat, real connections answered meanwhile', async () => {
    const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${agents[2].pid}/status`, 'utf8'))![1]) / 1024;
    const before = rssMb();
    const flood = synFlood(lab, client.ns, hosts[2].addr, 8080, 30_000);
    const during = await curlMany(lab, client.ns, `http://${hosts[2].addr}:8080/`, 10);
    await flood;
    const after = await curlMany(lab, client.ns, `http://${hosts[2].addr}:8080/`, 10);
    expect([...during, ...after].filter((a) => a === ''), 'requests that failed under the flood').toHaveLength(0);
    // The half-open connections stay in h3's kernel SYN queue (SYN cookies past it): they never
    // become sockets in the agent, so its memory does not follow the flood.
    expect(rssMb() - before, `agent RSS ${before.toFixed(0)} MB -> ${rssMb().toFixed(0)} MB`).toBeLessThan(24);
    const synRecv = await lab.mustExec(hosts[2].ns, 'ss', ['-Htn', 'state', 'syn-recv', 'sport', '= :8080']);
    expect(synRecv.trim().split('\n').filter(Boolean).length).toBeLessThanOrEqual(4096);
  }, 120_000);

  it('killing a task\'s host: its VIP flows are reset, new connections go to the remaining task within detection time', async () => {
    // A connection from h3 through the VIP to task2 (on h2): retry until the scheduler gives us task2.
    let child: ChildProcess | undefined;
    let exited: Promise<number | null> = Promise.resolve(null);
    const log = path.join(lab.dir, 'kill-client.log');
    for (let i = 0; i < 6 && !child; i++) {
      writeFileSync(log, '');
      const c = lab.spawnIn(ctrs[2].ns, 'python3', ['-c', LINE_CLIENT, vip, '70', 'send:one', 'sleep:12', 'send:two'], 'kill-client.log');
      exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
      const name = await waitFor('kill client connected', async () => readFileSync(log, 'utf8').split('\n')[0].match(/^(task[12]):one$/)?.[1], 10_000);
      if (name === 'task2') child = c;
      else await lab.stopProcess(c);
    }
    expect(child).toBeDefined();
    const t0 = Date.now();
    await lab.stopProcess(agents[1], 'SIGKILL');
    await waitFor('new VIP connections all answered by task1', async () => {
      const a = await curlMany(lab, ctrs[0].ns, `http://${vip}:80/`, 4);
      return a.every((x) => x.startsWith('task1 '));
    }, 20_000, 500);
    const mesh = await curlMany(lab, client.ns, `http://${hosts[2].addr}:8080/`, 4);
    expect(mesh.every((x) => x.startsWith('task1 '))).toBe(true);
    // The open connection was reset (the client fails right after its 12 s idle, not at its 30 s socket timeout), not blackholed.
    expect(await exited).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(25_000);
  }, 120_000);
});
