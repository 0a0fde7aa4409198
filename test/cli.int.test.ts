// The CLI against a real agent in a namespace: Docker-shaped output and one-line errors.
import { statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab, requireRoot, run, tapmeshBin, type Host } from './harness/lab.js';

const root = requireRoot('CLI integration');

describe.skipIf(!root)('tapmesh CLI', () => {
  const lab = new Lab();
  let h: Host;
  const ctr: string[] = [];

  beforeAll(async () => {
    await lab.start();
    h = await lab.addHost('h1');
    await lab.startAgent(h);
    for (let i = 1; i <= 3; i++) ctr.push(await lab.addContainer(h, `c${i}`));
  });
  afterAll(() => lab.cleanup());

  /** Expect failure with exactly one line on stderr matching `re`. */
  async function fails(args: string[], re: RegExp): Promise<void> {
    const r = await lab.cli(h, args);
    expect(r.code, `tapmesh ${args.join(' ')} should fail`).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(re);
  }

  it('serves its API on a socket only root can open', () => {
    expect(statSync(h.socket).mode & 0o777).toBe(0o600);
  });

  it('creates networks with Docker defaults: VNI from 4096, MTU 1450, swarm scope', async () => {
    const id = (await lab.mustCli(h, ['network', 'create', '-d', 'overlay', '--subnet', '10.0.9.0/24', '--gateway', '10.0.9.99', 'overnet'])).trim();
    expect(id).toMatch(/^[a-z0-9]{25}$/);
    await lab.mustCli(h, ['network', 'create', '--subnet', '10.0.10.0/24', '--opt', 'com.docker.network.mtu=1400', 'small']);
    const [net] = JSON.parse(await lab.mustCli(h, ['network', 'inspect', 'overnet']));
    expect(net).toMatchObject({
      Name: 'overnet', Id: id, Scope: 'swarm', Driver: 'overlay',
      IPAM: { Config: [{ Subnet: '10.0.9.0/24', Gateway: '10.0.9.99' }] },
      Options: { 'com.docker.network.driver.overlay.vxlanid_list': '4096', 'com.docker.network.mtu': '1450' },
    });
    expect(Date.parse(net.Created)).not.toBeNaN();
    const [small] = JSON.parse(await lab.mustCli(h, ['network', 'inspect', 'small']));
    expect(small.Options['com.docker.network.driver.overlay.vxlanid_list']).toBe('4097');
  });

  it('lists networks as a table, as IDs, as JSON lines and filtered', async () => {
    const tableOut = await lab.mustCli(h, ['network', 'ls']);
    const lines = tableOut.trim().split('\n');
    expect(lines[0]).toMatch(/^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[1]).sort()).toEqual(['overnet', 'small']);
    expect(lines[1]).toMatch(/^[a-z0-9]{12}\s+\S+\s+overlay\s+swarm$/);
    const q = (await lab.mustCli(h, ['network', 'ls', '-q'])).trim().split('\n');
    expect(q).toHaveLength(2);
    const json = (await lab.mustCli(h, ['network', 'ls', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l));
    expect(json.map((j) => j.Name).sort()).toEqual(['overnet', 'small']);
    expect(json[0]).toMatchObject({ Driver: 'overlay', Scope: 'swarm' });
    const filtered = (await lab.mustCli(h, ['network', 'ls', '--filter', 'name=small', '-q'])).trim().split('\n');
    expect(filtered).toEqual([q[json.findIndex((j) => j.Name === 'small')]]);
  });

  it('connects containers with Docker MACs, the network MTU and addresses from IPAM', async () => {
    await lab.mustCli(h, ['network', 'connect', 'overnet', ctr[0]]);
    await lab.mustCli(h, ['network', 'connect', '--ip', '10.0.9.42', '--alias', 'web', 'overnet', ctr[1]]);
    await lab.mustCli(h, ['network', 'connect', 'small', ctr[2]]);
    const [net] = JSON.parse(await lab.mustCli(h, ['network', 'inspect', 'overnet']));
    const eps = (Object.values(net.Containers) as { Name: string; MacAddress: string; IPv4Address: string }[]).sort((a, b) => a.Name.localeCompare(b.Name));
    expect(eps.map((e) => e.Name)).toEqual([ctr[0], ctr[1]]);
    expect(eps[1]).toMatchObject({ MacAddress: '02:42:0a:00:09:2a', IPv4Address: '10.0.9.42/24' });
    // The allocated address: a host address of the subnet other than the gateway and .42; the MAC follows it.
    const m = /^10\.0\.9\.(\d+)\/24$/.exec(eps[0].IPv4Address);
    expect(m).not.toBeNull();
    const last = Number(m![1]);
    expect(last).toBeGreaterThan(0);
    expect(last).toBeLessThan(255);
    expect([99, 42]).not.toContain(last);
    const mac = `02:42:0a:00:09:${last.toString(16).padStart(2, '0')}`;
    expect(eps[0].MacAddress).toBe(mac);
    const link = await lab.mustExec(ctr[0], 'ip', ['-o', 'link', 'show', 'eth0']);
    expect(link).toContain('mtu 1450');
    expect(link).toContain(mac);
    expect(await lab.mustExec(ctr[0], 'ip', ['-o', 'addr', 'show', 'eth0'])).toContain(`10.0.9.${last}/24`);
    expect(await lab.mustExec(ctr[2], 'ip', ['-o', 'link', 'show', 'eth0'])).toContain('mtu 1400');
  });

  it('gives one-line errors and a non-zero exit for bad input', async () => {
    await fails(['network', 'inspect', 'nosuch'], /No such network: nosuch/);
    await fails(['network', 'rm', 'nosuch'], /network nosuch not found/);
    await fails(['network', 'connect', 'nosuch', ctr[0]], /network nosuch not found/);
    await fails(['network', 'connect', 'overnet', 'no-such-container'], /container "no-such-container" not found/);
    await fails(['network', 'create', '--subnet', '10.0.300.0/24', 'bad'], /invalid CIDR address: 10\.0\.300\.0\/24/);
    await fails(['network', 'create', '--subnet', '10.0.9.128/25', 'overlap'], /overlaps/);
    await fails(['network', 'create', '--subnet', '10.0.20.0/24', 'overnet'], /already exists/);
    await fails(['network', 'create', '--opt', 'encrypted=false', '--subnet', '10.0.21.0/24', 'secret'], /invalid --opt encrypted="false"/);
    await fails(['network', 'create', '--bogus', 'x'], /unknown flag: --bogus/);
    await fails(['network', 'connect', '--ip', '10.0.9.42', 'overnet', ctr[2]], /already in use/);
    await fails(['network', 'connect', '--ip', '10.1.1.1', 'overnet', ctr[2]], /not a host address of subnet/);
    await fails(['network', 'rm', 'overnet'], /has active endpoints/);
    await fails(['peer', 'add', 'overnet', '--vtep', 'nope'], /invalid IPv4 address: nope/);
    const r = await run(process.execPath, [tapmeshBin, '--socket', `${lab.dir}/absent.sock`, 'network', 'ls']);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/Is the agent running\?/);
  });

  it('reports a full IP range', async () => {
    await lab.mustCli(h, ['network', 'create', '--subnet', '10.0.30.0/29', '--ip-range', '10.0.30.4/31', 'tiny']);
    const extra = await lab.addContainer(h, 'c4');
    const extra2 = await lab.addContainer(h, 'c5');
    const extra3 = await lab.addContainer(h, 'c6');
    await lab.mustCli(h, ['network', 'connect', 'tiny', extra]);
    await lab.mustCli(h, ['network', 'connect', 'tiny', extra2]);
    await fails(['network', 'connect', 'tiny', extra3], /no available IPv4 addresses/);
  });

  it('disconnects and removes', async () => {
    await lab.mustCli(h, ['network', 'disconnect', 'overnet', ctr[0]]);
    await lab.mustCli(h, ['network', 'disconnect', 'overnet', ctr[1]]);
    expect((await lab.exec(ctr[0], 'ip', ['link', 'show', 'eth0'])).code).not.toBe(0);
    expect((await lab.mustCli(h, ['network', 'rm', 'overnet'])).trim()).toBe('overnet');
    expect(await lab.mustCli(h, ['network', 'ls', '--filter', 'name=overnet', '-q'])).toBe('');
  });

  it('shows stats as a table and as JSON lines', async () => {
    const t = await lab.mustCli(h, ['stats']);
    expect(t.split('\n')[0]).toMatch(/^NETWORK\s+VNI\s+TX PKTS/);
    const lines = (await lab.mustCli(h, ['stats', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l));
    const small = lines.find((l) => l.Network === 'small');
    expect(small).toMatchObject({ VNI: 4097, tapRxFrames: expect.any(Number), Drops: expect.any(Object) });
  });
});
