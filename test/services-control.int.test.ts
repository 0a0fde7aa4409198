// Issue 9, the services control plane on real namespaces: three agents, a service created on one
// host is listed on all, tasks attached on two hosts with `network connect --service` show in
// `service ps` everywhere, the VIP is an address no endpoint gets, weights travel, a task
// vanishes with its host, `service rm` releases the VIP; bad input is one line with exit 2
// (usage) or 1 (refused by the agent).
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, requireRoot, waitFor, type Host } from './harness/lab.js';
import { startServiceCluster } from './harness/services.js';

const root = requireRoot('services control-plane integration');

type Row = { ID: string; Name: string; Mode: string; Replicas: string; Ports: string; VIP: string };
type Task = { Name: string; Node: string; IP: string; CurrentState: string; Weight: number };
type Inspect = {
  ID: string;
  Spec: { Name: string; EndpointSpec: { Mode: string } };
  Endpoint: { VirtualIPs: { NetworkID: string; Addr: string }[]; Ports: { Protocol: string; TargetPort: number; PublishedPort: number; PublishMode: string }[] };
};

describe.skipIf(!root)('services control plane across three hosts', () => {
  const lab = new Lab();
  const hosts: Host[] = [];
  const agents: ChildProcess[] = [];
  const lines = (s: string) => s.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const ls = async (h: Host): Promise<Row[]> => lines(await lab.mustCli(h, ['service', 'ls', '--format', 'json']));
  const ps = async (h: Host, svc: string): Promise<Task[]> => lines(await lab.mustCli(h, ['service', 'ps', '--format', 'json', svc]));
  const inspect = async (h: Host, svc: string): Promise<Inspect> => JSON.parse(await lab.mustCli(h, ['service', 'inspect', svc]))[0];
  let vip = '';

  beforeAll(async () => {
    try {
      await lab.start();
      for (let i = 1; i <= 3; i++) hosts.push(await lab.addHost(`h${i}`));
      // Default (lan) timings: under the shared machine's load the fast profile's 1 s TCP timeout
      // can fail an IPAM vote (NO_QUORUM) when many endpoints are connected at once.
      const common: string[] = [];
      await startServiceCluster(lab, hosts, common, '10.0.9.0/24', agents);
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  });
  afterAll(() => lab.cleanup());

  it('a service created on host 1 (ID printed) is listed on every host with its VIP and ports', async () => {
    const id = (await lab.mustCli(hosts[0], ['service', 'create', '--name', 'web', '--network', 'svcnet', '-p', '8080:80', '--publish', 'published=8443,target=443,proxy-protocol=v2', '--lb', 'wrr'])).trim();
    expect(id).toMatch(/^[a-z0-9]{25}$/);
    for (const h of hosts) {
      const row = await waitFor(`web on ${h.name}`, async () => (await ls(h)).find((r) => r.Name === 'web'), 10_000);
      expect(row).toMatchObject({ ID: id.slice(0, 12), Mode: 'vip', Replicas: '0/0', Ports: '*:8080->80/tcp, *:8443->443/tcp (proxy-v2)' });
      expect(row.VIP).toMatch(/^10\.0\.9\.\d+$/);
      vip = row.VIP;
    }
    const table = await lab.mustCli(hosts[2], ['service', 'ls']);
    expect(table.split('\n')[0].split(/\s{2,}/)).toEqual(['ID', 'NAME', 'MODE', 'REPLICAS', 'VIP', 'PORTS']);
    expect((await lab.mustCli(hosts[1], ['service', 'ls', '-q'])).trim()).toBe(id.slice(0, 12));
    const ins = await inspect(hosts[1], 'web');
    expect(ins.ID).toBe(id);
    expect(ins.Spec.EndpointSpec.Mode).toBe('vip');
    expect(ins.Endpoint.VirtualIPs).toEqual([{ NetworkID: expect.any(String), Addr: `${vip}/24` }]);
    expect(ins.Endpoint.Ports[0]).toEqual({ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' });
  });

  it('two hosts publishing the same port at the same moment: exactly one wins (quorum claim)', async () => {
    const rs = await Promise.all([
      lab.cli(hosts[1], ['service', 'create', '--name', 'race1', '--network', 'svcnet', '-p', '7000:80']),
      lab.cli(hosts[2], ['service', 'create', '--name', 'race2', '--network', 'svcnet', '-p', '7000:81']),
    ]);
    expect(rs.map((r) => r.code).sort()).toEqual([0, 1]);
    expect(rs.find((r) => r.code === 1)!.stderr).toMatch(/port '7000' is already in use by /);
    const winner = rs[0].code === 0 ? 'race1' : 'race2';
    await waitFor(`${winner} on h1`, async () => (await ls(hosts[0])).some((r) => r.Name === winner), 10_000);
    await lab.mustCli(hosts[0], ['service', 'rm', winner]);
    await waitFor('race gone everywhere', async () => {
      for (const h of hosts) if ((await ls(h)).some((r) => r.Name.startsWith('race'))) return false;
      return true;
    }, 10_000);
  });

  it('tasks connected on two hosts with --service appear in service ps on every host; no endpoint gets the VIP', async () => {
    const t1 = await lab.addContainer(hosts[0], 't1');
    const t2 = await lab.addContainer(hosts[1], 't2');
    await lab.mustCli(hosts[0], ['network', 'connect', '--service', 'web', 'svcnet', t1]);
    await lab.mustCli(hosts[1], ['network', 'connect', '--service', 'web', '--weight', '3', 'svcnet', t2]);
    // Many more endpoints, from all hosts at once: none of them may get the VIP.
    const plain = await Promise.all(hosts.flatMap((h) => [1, 2, 3].map((i) => lab.addContainer(h, `p${i}`).then((ns) => ({ h, ns })))));
    await Promise.all(plain.map(({ h, ns }) => lab.mustCli(h, ['network', 'connect', 'svcnet', ns], 60_000)));
    for (const h of hosts) {
      const tasks = await waitFor(`2 tasks on ${h.name}`, async () => {
        const t = await ps(h, 'web');
        return t.length === 2 && t;
      }, 10_000);
      expect(tasks.map((t) => [t.Node, t.CurrentState, t.Weight])).toEqual([['h1', 'Running', 1], ['h2', 'Running', 3]]);
      expect((await ls(h)).find((r) => r.Name === 'web')!.Replicas).toBe('2/2');
    }
    const inspectNet = JSON.parse(await lab.mustCli(hosts[2], ['network', 'inspect', '--verbose', 'svcnet']))[0] as { Endpoints: { IPv4Address: string }[] };
    const ips = inspectNet.Endpoints.map((e) => e.IPv4Address.split('/')[0]);
    expect(ips).toHaveLength(11);
    expect(new Set(ips).size).toBe(11);
    expect(ips).not.toContain(vip);
    const ipOf = (await ps(hosts[0], 'web')).map((t) => t.IP);
    expect(ipOf.every((ip) => ips.includes(ip))).toBe(true);
    // The ps table shows the columns.
    const table = await lab.mustCli(hosts[2], ['service', 'ps', 'web']);
    expect(table.split('\n')[0].split(/\s{2,}/)).toEqual(['ID', 'NAME', 'NODE', 'IP', 'CURRENT STATE', 'WEIGHT', 'CONNECTIONS']);
  });

  it('service update: --task-weight from another host drains a task everywhere; ports added and removed', async () => {
    const t1 = (await ps(hosts[0], 'web')).find((t) => t.Node === 'h1')!.Name;
    await lab.mustCli(hosts[2], ['service', 'update', 'web', '--task-weight', `${t1}=0`, '--publish-add', '9090:90/udp', '--publish-rm', '8443']);
    for (const h of hosts) {
      await waitFor(`drained on ${h.name}`, async () => (await ps(h, 'web')).find((t) => t.Name === t1)?.CurrentState === 'Draining', 10_000);
      await waitFor(`ports on ${h.name}`, async () => (await ls(h)).find((r) => r.Name === 'web')?.Ports === '*:8080->80/tcp, *:9090->90/udp', 10_000);
    }
    expect((await ps(hosts[1], 'web')).find((t) => t.Name === t1)!.Weight).toBe(0);
  });

  it('bad input: one line, exit 2 for usage, 1 for what the agent refuses, and nothing changes', async () => {
    const cases: [string[], number, RegExp][] = [
      [['service', 'create', '--name', 'x', '--network', 'svcnet', '-p', '8080:99999'], 2, /invalid target port "99999"/],
      [['service', 'create', '--name', 'x', '--network', 'svcnet', '-p', '80:80/sctp'], 2, /invalid protocol "sctp"/],
      [['service', 'create', '--network', 'svcnet'], 2, /--name is required/],
      [['service', 'create', '--name', 'x', '--network', 'svcnet', '--lb', 'random'], 2, /invalid --lb "random"/],
      [['service', 'create', '--name', 'x', '--network', 'svcnet', '-p', '8080:81'], 1, /port '8080' is already in use by service 'web'/],
      [['service', 'create', '--name', 'web', '--network', 'svcnet'], 1, /service web already exists/],
      [['service', 'create', '--name', 'x', '--network', 'nonet'], 1, /network nonet not found/],
      [['service', 'create', '--name', 'db', '--network', 'svcnet', '--endpoint-mode', 'dnsrr', '-p', '5432:5432'], 1, /port published with ingress mode can't be used with dnsrr mode/],
      [['service', 'update', 'web', '--task-weight', 'ghost=1'], 1, /no task ghost in service web/],
      [['service', 'update', 'web', '--task-weight', 'x=70000'], 2, /expected 0-65535/],
      [['service', 'ps', 'nosuch'], 1, /service nosuch not found/],
      [['service', 'rm', 'nosuch'], 1, /service nosuch not found/],
      [['network', 'connect', '--weight', '2', 'svcnet', 'whatever'], 2, /--weight needs --service/],
      [['network', 'rm', 'svcnet'], 1, /in use by service web/],
    ];
    for (const [args, code, msg] of cases) {
      const r = await lab.cli(hosts[1], args);
      expect({ args, code: r.code }).toEqual({ args, code });
      expect(r.stderr).toMatch(msg);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const ctr = await lab.addContainer(hosts[2], 'bad');
    const r = await lab.cli(hosts[2], ['network', 'connect', '--service', 'nosuch', 'svcnet', ctr]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/service nosuch not found/);
    expect((await ls(hosts[0])).map((s) => s.Name)).toEqual(['web']);
    const dns = await lab.mustCli(hosts[0], ['service', 'create', '--name', 'db', '--network', 'svcnet', '--endpoint-mode', 'dnsrr']);
    expect(dns.trim()).toMatch(/^[a-z0-9]{25}$/);
    await waitFor('db on h3', async () => (await ls(hosts[2])).find((s) => s.Name === 'db' && s.Mode === 'dnsrr' && s.VIP === ''), 10_000);
    expect((await inspect(hosts[2], 'db')).Endpoint.VirtualIPs).toEqual([]);
  });

  it('a task vanishes from service ps when its host goes down', async () => {
    await lab.stopProcess(agents[1], 'SIGKILL');
    // Failure detection with lan timings: probe 1 s, suspicion a few seconds.
    await waitFor('h2 task gone on h1', async () => (await ps(hosts[0], 'web')).every((t) => t.Node !== 'h2'), 30_000);
    await waitFor('h2 task gone on h3', async () => (await ps(hosts[2], 'web')).every((t) => t.Node !== 'h2'), 30_000);
    expect((await ps(hosts[2], 'web')).map((t) => t.Node)).toEqual(['h1']);
  });

  it('service rm releases the VIP: the next endpoint may take it', async () => {
    const ctr = await lab.addContainer(hosts[0], 'late');
    const taken = await lab.cli(hosts[0], ['network', 'connect', '--ip', vip, 'svcnet', ctr]);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(/already in use/);
    await lab.mustCli(hosts[2], ['service', 'rm', 'web', 'db']);
    for (const h of [hosts[0], hosts[2]]) await waitFor(`no services on ${h.name}`, async () => (await ls(h)).length === 0, 10_000);
    await lab.mustCli(hosts[0], ['network', 'connect', '--ip', vip, 'svcnet', ctr]);
    const addr = await lab.mustExec(ctr, 'ip', ['-4', '-o', 'addr', 'show', 'eth0']);
    expect(addr).toContain(`${vip}/24`);
  });
});
