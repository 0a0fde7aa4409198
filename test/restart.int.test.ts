// Issue 11, defect 1, on real namespaces: agents killed with -9 come back from whatever is left.
// Three hosts in a gossip cluster; h2's agent runs under `ip netns exec` (a private mount
// namespace), h1 and h3 under `nsenter --net`. After each kill and restart the containers keep
// MAC, IP and interface name and reach the other hosts again within 20 s; a sandbox deleted by
// hand is rebuilt; a container deleted while its agent is down is forgotten cluster-wide.
// Last, a clean stop: SIGTERM leaves the cluster and exits within 2 s.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isNsMount } from '../agent/sandbox.js';
import { Lab, must, requireRoot, waitFor, type Host } from './harness/lab.js';

const root = requireRoot('restart integration');

type Ctr = { host: Host; ns: string; ip: string; mac: string; ifname: string };
type Local = { Name: string; IPv4Address: string; MacAddress: string; Interface: string };

describe.skipIf(!root)('agents restart from any state (kill -9, started with ip netns exec or nsenter)', () => {
  const lab = new Lab();
  const hosts: Host[] = [];
  const agents = new Map<Host, ChildProcess>();
  const via = new Map<Host, 'nsenter' | 'ip-netns-exec'>();
  let secret = '';
  let netId = '';
  const ctrs: Ctr[] = [];

  const joinArgs = (h: Host) => ['--node-name', h.name, '--gossip-profile', 'fast', ...(h === hosts[0] ? [] : ['--join', hosts[0].addr]), '--secret-file', secret];
  const sandboxOf = (h: Host) => `${h.ns}-${netId.slice(0, 10)}`;
  const locals = async (h: Host): Promise<Local[]> =>
    Object.values(JSON.parse(await lab.mustCli(h, ['network', 'inspect', 'rnet']))[0].Containers as Record<string, Local>);
  /** What the container itself has: MAC and address of its interface on the overlay. */
  const inside = async (c: Ctr): Promise<{ ifname: string; mac: string; ip: string } | undefined> => {
    const out = await lab.mustExec(c.ns, 'ip', ['-o', '-4', 'addr', 'show']);
    // The overlay interface: not lo, not the gateway-bridge one (egress, 172.18.0.0/16 by default).
    const m = out.split('\n').map((l) => /^\d+: (\S+)\s+inet (\S+)\//.exec(l)).find((x) => x && x[1] !== 'lo' && !x[2].startsWith('172.18.'));
    if (!m) return undefined;
    const link = await lab.mustExec(c.ns, 'cat', [`/sys/class/net/${m[1]}/address`]);
    return { ifname: m[1], ip: m[2], mac: link.trim() };
  };
  const pingOk = async (from: string, to: string) => (await lab.exec(from, 'ping', ['-c', '1', '-W', '1', to], 5000)).code === 0;
  const kill9 = async (h: Host) => {
    const a = agents.get(h)!;
    await lab.stopProcess(a, 'SIGKILL');
  };
  const start = async (h: Host) => {
    agents.set(h, await lab.startAgent(h, joinArgs(h), via.get(h)));
  };
  /** Restart h and time until its containers reach every container on the other hosts. */
  const restartAndReach = async (h: Host, mine: Ctr[]): Promise<number> => {
    const t0 = Date.now();
    await start(h);
    const others = ctrs.filter((c) => c.host !== h);
    for (const c of mine) {
      for (const o of others) {
        await waitFor(`${c.ns} → ${o.ip} and back`, async () => (await pingOk(c.ns, o.ip)) && (await pingOk(o.ns, c.ip)), Math.max(500, 20_000 - (Date.now() - t0)), 200);
      }
    }
    return Date.now() - t0;
  };
  const sameAsBefore = async (c: Ctr) => {
    expect(await inside(c)).toEqual({ ifname: c.ifname, ip: c.ip, mac: c.mac });
    const l = (await locals(c.host)).find((x) => x.Name === c.ns);
    expect(l).toMatchObject({ IPv4Address: `${c.ip}/24`, MacAddress: c.mac, Interface: c.ifname });
  };

  beforeAll(async () => {
    try {
      await lab.start();
      for (let i = 1; i <= 3; i++) hosts.push(await lab.addHost(`h${i}`));
      via.set(hosts[0], 'nsenter').set(hosts[1], 'ip-netns-exec').set(hosts[2], 'nsenter');
      secret = path.join(lab.dir, 'join.token');
      agents.set(hosts[0], await lab.startAgent(hosts[0], ['--node-name', 'h1', '--gossip-profile', 'fast']));
      writeFileSync(secret, await lab.mustCli(hosts[0], ['join-token', '-q']), { mode: 0o600 });
      for (const h of hosts.slice(1)) await start(h);
      await waitFor('3 nodes Ready', async () => (await lab.mustCli(hosts[0], ['node', 'ls'])).split('Ready').length - 1 === 3, 15_000);
      await lab.mustCli(hosts[0], ['network', 'create', '-d', 'overlay', '--subnet', '10.0.11.0/24', 'rnet']);
      netId = JSON.parse(await lab.mustCli(hosts[0], ['network', 'inspect', 'rnet']))[0].Id as string;
      for (const h of hosts) await waitFor(`rnet on ${h.name}`, async () => (await lab.cli(h, ['network', 'inspect', 'rnet'])).code === 0, 10_000);
      // h2 holds two containers; the second one already has an eth0 (a veth of its own), so its overlay interface is eth1.
      const plan: [Host, string][] = [[hosts[0], 'a'], [hosts[1], 'c1'], [hosts[1], 'c2'], [hosts[1], 'c3'], [hosts[2], 'b']];
      for (const [h, name] of plan) {
        const ns = await lab.addContainer(h, name);
        if (name === 'c2') await must('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'x0']);
        await lab.mustCli(h, ['network', 'connect', 'rnet', ns], 30_000);
        const l = (await locals(h)).find((x) => x.Name === ns)!;
        ctrs.push({ host: h, ns, ip: l.IPv4Address.split('/')[0], mac: l.MacAddress, ifname: l.Interface });
      }
      expect(ctrs.find((c) => c.ns.endsWith('-c2'))!.ifname).toBe('eth1');
      for (const c of ctrs) for (const o of ctrs) if (c.host !== o.host) await waitFor(`${c.ns} → ${o.ip}`, () => pingOk(c.ns, o.ip), 15_000, 200);
    } catch (e) {
      await lab.cleanup();
      throw e;
    }
  }, 120_000);
  afterAll(() => lab.cleanup());

  const onH2 = () => ctrs.filter((c) => c.host === hosts[1] && !c.ns.endsWith('-c3'));

  it('an agent started with ip netns exec survives kill -9: sandbox kept, containers keep addresses and reach the other hosts within 20 s', async () => {
    const h2 = hosts[1];
    await kill9(h2);
    // The sandbox was mounted in the host's mount namespace: it outlives the agent's.
    expect(isNsMount(`/run/netns/${sandboxOf(h2)}`)).toBe(true);
    const ms = await restartAndReach(h2, onH2());
    console.log(`ip netns exec agent, kill -9 → reachable again in ${ms} ms`);
    expect(ms).toBeLessThan(20_000);
    for (const c of onH2()) await sameAsBefore(c);
  }, 60_000);

  it('a sandbox deleted by hand while the agent is down is rebuilt on start; containers re-plumbed with the same MAC, IP and interface', async () => {
    const h2 = hosts[1];
    await kill9(h2);
    await must('ip', ['netns', 'del', sandboxOf(h2)]);
    // Deleting the sandbox took the containers' interfaces with it (veth pairs die together).
    for (const c of onH2()) await waitFor(`${c.ns} without its overlay interface`, async () => (await inside(c)) === undefined, 5000);
    const ms = await restartAndReach(h2, onH2());
    console.log(`sandbox deleted, restart → reachable again in ${ms} ms`);
    expect(ms).toBeLessThan(20_000);
    expect(isNsMount(`/run/netns/${sandboxOf(h2)}`)).toBe(true);
    for (const c of onH2()) await sameAsBefore(c);
  }, 60_000);

  it('a sandbox left as an empty mount point (lost with a private mount namespace) is rebuilt, never an exit', async () => {
    const h2 = hosts[1];
    await kill9(h2);
    // What an older agent under `ip netns exec` left behind: the file, not the namespace.
    const sb = `/run/netns/${sandboxOf(h2)}`;
    await must('umount', [sb]);
    expect(isNsMount(sb)).toBe(false);
    const ms = await restartAndReach(h2, onH2());
    expect(ms).toBeLessThan(20_000);
    expect(isNsMount(sb)).toBe(true);
    for (const c of onH2()) await sameAsBefore(c);
  }, 60_000);

  it('a container deleted while its agent is down is forgotten, and its address is released cluster-wide', async () => {
    const h2 = hosts[1];
    const c3 = ctrs.find((c) => c.ns.endsWith('-c3'))!;
    await kill9(h2);
    await must('ip', ['netns', 'del', c3.ns]);
    await restartAndReach(h2, onH2());
    expect((await locals(h2)).map((l) => l.Name)).not.toContain(c3.ns);
    // The other hosts drop its endpoint, and its address can be handed out again elsewhere.
    await waitFor('c3 gone from h1', async () => {
      const v = JSON.parse(await lab.mustCli(hosts[0], ['network', 'inspect', '--verbose', 'rnet']))[0] as { Endpoints: { IPv4Address: string }[] };
      return !v.Endpoints.some((e) => e.IPv4Address === `${c3.ip}/24`);
    }, 15_000, 250);
    const reuse = await lab.addContainer(hosts[0], 'reuse');
    ctrs.splice(ctrs.indexOf(c3), 1);
    await waitFor(`${c3.ip} free again`, async () => (await lab.cli(hosts[0], ['network', 'connect', '--ip', c3.ip, 'rnet', reuse])).code === 0, 20_000, 500);
  }, 90_000);

  it('an agent started with nsenter --net survives kill -9 too', async () => {
    const h3 = hosts[2];
    await kill9(h3);
    const mine = ctrs.filter((c) => c.host === h3);
    const ms = await restartAndReach(h3, mine);
    console.log(`nsenter agent, kill -9 → reachable again in ${ms} ms`);
    expect(ms).toBeLessThan(20_000);
    for (const c of mine) await sameAsBefore(c);
  }, 60_000);

  it('SIGTERM: the agent leaves the cluster (the others show it Left at once, never Down) and exits within 2 s', async () => {
    const h3 = hosts[2];
    const a = agents.get(h3)!;
    const seen = new Set<string>();
    const exited = new Promise<number>((r) => a.once('exit', () => r(Date.now())));
    const t0 = Date.now();
    a.kill('SIGTERM');
    const status = async () => {
      const nodes = (await lab.mustCli(hosts[0], ['node', 'ls', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l) as { Hostname: string; Status: string });
      const st = nodes.find((n) => n.Hostname === 'h3')?.Status ?? 'gone';
      seen.add(st);
      return st;
    };
    await waitFor('h3 Left on h1', async () => (await status()) === 'Left', 3000, 50);
    const leftAfter = Date.now() - t0;
    const exitAfter = (await exited) - t0;
    console.log(`SIGTERM: Left on h1 after ${leftAfter} ms, agent exited after ${exitAfter} ms`);
    expect(exitAfter).toBeLessThan(2000);
    expect(seen.has('Down')).toBe(false);
    expect(seen.has('Suspect')).toBe(false);
  }, 30_000);
});
