// tapmesh, driven exactly as a user would: one agent per host namespace (Lab.startAgent), then the
// CLI: create the overlay network on both hosts, connect each host's container, and add the other
// host's endpoint as a static peer. The agents' PIDs feed the CPU-per-GB and peak-RSS figures;
// `stats --format json` is read before and after for drops per reason.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { run, tapmeshBin, waitFor, type Host, type Lab } from '../../test/harness/lab.js';
import { NotBuiltError, OVERLAY, macFor, type OverlaySystem, type Probe, type Topology } from './system.js';

const NET = 'benchnet';

/** Numeric leaves of a JSON value as flat dotted names ("drops.no_fdb" → 3). */
export function flattenNumbers(v: unknown, prefix: string, out: Record<string, number>): Record<string, number> {
  if (typeof v === 'number' && Number.isFinite(v)) out[prefix] = (out[prefix] ?? 0) + v;
  else if (Array.isArray(v)) v.forEach((x, i) => flattenNumbers(x, `${prefix}[${i}]`, out));
  else if (typeof v === 'object' && v !== null) {
    const o = v as Record<string, unknown>;
    // Label rows by their name/network when they have one, so diffs stay stable.
    const label = typeof o.network === 'string' ? o.network : typeof o.name === 'string' ? o.name : undefined;
    for (const [k, x] of Object.entries(o)) flattenNumbers(x, `${prefix}${label ? `[${label}]` : ''}.${k}`, out);
  }
  return out;
}

const NOT_BUILT = /(not|un)[\s-]*(yet[\s-]*)?(supported|implemented|built|available)|unknown option/i;

/** The encrypted network: created once and replicated, containers connected, SAs agreed. */
async function setupEncrypted(t: Topology, log: (msg: string) => void): Promise<void> {
  const [h1, h2] = t.hosts;
  await waitFor('both hosts Ready', async () => (await t.lab.mustCli(h1, ['node', 'ls', '--format', 'json'])).split('\n').filter((l) => l.includes('"Ready"')).length === 2, 20_000, 200);
  await t.lab.mustCli(h1, ['network', 'create', '-d', 'overlay', '--subnet', OVERLAY.subnet, '--opt', `com.docker.network.driver.overlay.vxlanid_list=${OVERLAY.vni}`, '--opt', 'encrypted', NET]);
  await waitFor(`${NET} on ${h2.name}`, async () => (await t.lab.cli(h2, ['network', 'ls', '-q', '--filter', `name=${NET}`])).stdout.trim() !== '', 10_000, 100);
  for (let i = 0; i < 2; i++) await t.lab.mustCli(t.hosts[i], ['network', 'connect', '--ip', OVERLAY.ips[i], NET, t.containers[i]]);
  await waitFor('SAs both ways', async () => {
    for (const h of t.hosts) {
      const lines = (await t.lab.mustCli(h, ['stats', '--format', 'json'])).trim().split('\n').map((l) => JSON.parse(l) as { Network: string; Esp?: { sas: { Direction: string; Current: boolean }[] } });
      if (!lines.find((l) => l.Network === '')?.Esp?.sas.some((s) => s.Direction === 'out' && s.Current)) return false;
    }
    return true;
  }, 20_000, 200);
  log(`${NET} (encrypted, MTU 1408): ${t.containers[0]} ${OVERLAY.ips[0]} on ${h1.name}, ${t.containers[1]} ${OVERLAY.ips[1]} on ${h2.name}; SAs agreed`);
}

export function tapmesh(encrypted: boolean): OverlaySystem {
  const pids: number[] = [];
  let lab: Lab | undefined;
  let hosts: Host[] = [];
  return {
    id: encrypted ? 'tapmesh-encrypted' : 'tapmesh',
    label: encrypted ? 'tapmesh encrypted' : 'tapmesh',
    async probe(): Promise<Probe> {
      if (!existsSync(tapmeshBin)) {
        // Plain tapmesh is a required system: let setup fail loudly. The encrypted slot waits.
        return encrypted ? { ok: false, status: 'not-built', reason: `${tapmeshBin} does not exist yet` } : { ok: true };
      }
      if (!encrypted) return { ok: true };
      const help = await run(process.execPath, [tapmeshBin, 'network', 'create', '--help'], { timeoutMs: 10_000 });
      if (!/encrypt/i.test(help.stdout + help.stderr)) return { ok: false, status: 'not-built', reason: '`tapmesh network create --help` does not mention encrypted' };
      return { ok: true };
    },
    async setup(t: Topology, log): Promise<void> {
      lab = t.lab;
      hosts = t.hosts;
      if (!existsSync(tapmeshBin)) throw new Error(`${tapmeshBin} does not exist (tapmesh not built)`);
      // Encrypted: SAs are agreed through gossip, so the second agent joins the first one's
      // cluster (same topology otherwise; static peers cannot take part in an encrypted network).
      let joinArgs: string[] = [];
      for (const h of t.hosts) {
        // TAPMESH_AGENT_ARGS (e.g. "--busy-poll 0") measures another agent configuration.
        const child = await t.lab.startAgent(h, [...joinArgs, ...(process.env.TAPMESH_AGENT_ARGS ?? '').split(' ').filter(Boolean)]);
        if (child.pid === undefined) throw new Error(`agent on ${h.name} has no PID`);
        pids.push(child.pid);
        log(`${h.name}: agent PID ${child.pid} (${h.socket})`);
        if (encrypted && joinArgs.length === 0) {
          const secret = path.join(t.lab.dir, `${h.name}-join.token`);
          writeFileSync(secret, await t.lab.mustCli(h, ['join-token', '-q']), { mode: 0o600 });
          joinArgs = ['--join', h.addr, '--secret-file', secret, '--gossip-profile', 'fast'];
        }
      }
      if (encrypted) return setupEncrypted(t, log);
      const create = ['network', 'create', '-d', 'overlay', '--subnet', OVERLAY.subnet,
        '--opt', `com.docker.network.driver.overlay.vxlanid_list=${OVERLAY.vni}`, ...(encrypted ? ['--opt', 'encrypted'] : []), NET];
      for (const h of t.hosts) {
        const r = await t.lab.cli(h, create);
        if (r.code !== 0) {
          const msg = `tapmesh ${create.join(' ')} on ${h.name} → exit ${r.code}: ${r.stderr.trim()}`;
          if (encrypted && /encrypt/i.test(r.stderr) && NOT_BUILT.test(r.stderr)) throw new NotBuiltError(msg);
          throw new Error(msg);
        }
      }
      for (let i = 0; i < 2; i++) {
        const h = t.hosts[i];
        await t.lab.mustCli(h, ['network', 'connect', '--ip', OVERLAY.ips[i], NET, t.containers[i]]);
        const otherIp = OVERLAY.ips[1 - i];
        await t.lab.mustCli(h, ['peer', 'add', NET, '--vtep', t.hosts[1 - i].addr, '--mac', macFor(otherIp), '--ip', otherIp]);
        log(`${h.name}: network ${NET}${encrypted ? ' (encrypted)' : ''}, ${t.containers[i]} eth0 ${OVERLAY.ips[i]}, peer ${otherIp} at ${t.hosts[1 - i].addr}`);
      }
    },
    pids: () => [...pids],
    async counters(): Promise<Record<string, number>> {
      const out: Record<string, number> = {};
      if (!lab) return out;
      for (const h of hosts) {
        const r = await lab.cli(h, ['stats', '--format', 'json'], 10_000);
        if (r.code !== 0) continue;
        for (const line of r.stdout.split('\n')) {
          if (!line.trim()) continue;
          try {
            flattenNumbers(JSON.parse(line), h.name, out);
          } catch {
            /* not a JSON line; ignore */
          }
        }
      }
      return out;
    },
  };
}
