// fastd in TAP mode (L2, like tapmesh): per host a fastd process whose tap fd0 joins a bridge br0
// together with the container's veth; one static peer each way. Two methods: "null" (no crypto)
// and "aes128-gcm". Runs only with --peers and when `fastd` is installed.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { must, run, sleep, type Host } from '../../test/harness/lab.js';
import { containerVeth, which } from './peer-util.js';
import { OVERLAY, macFor, type OverlaySystem, type Probe, type Topology } from './system.js';

const PORT = 10000;

function fastdSystem(method: 'null' | 'aes128-gcm'): OverlaySystem {
  const pids: number[] = [];
  return {
    id: `fastd-${method}`,
    label: `fastd ${method}`,
    async probe(): Promise<Probe> {
      return which('fastd') ? { ok: true } : { ok: false, status: 'skipped', reason: 'fastd is not installed (apt-get install fastd)' };
    },
    async setup(t: Topology, log): Promise<void> {
      // Keys: fastd prints a secret with --generate-key; the public key is derived with --show-key
      // from a config holding that secret.
      const keys: { secret: string; public: string }[] = [];
      for (const h of t.hosts) {
        const secret = (await must('fastd', ['--generate-key', '--machine-readable'])).trim();
        const cfg = path.join(h.dir, 'fastd-key.conf');
        writeFileSync(cfg, `secret "${secret}";\n`);
        const pub = (await must('fastd', ['--config', cfg, '--show-key', '--machine-readable'])).trim();
        keys.push({ secret, public: pub });
      }
      for (let i = 0; i < 2; i++) {
        const h: Host = t.hosts[i];
        const other = t.hosts[1 - i];
        const cfg = path.join(h.dir, 'fastd.conf');
        writeFileSync(cfg, [
          'log level warn;', 'mode tap;', 'interface "fd0";', `method "${method}";`,
          `bind ${h.addr}:${PORT};`, `secret "${keys[i].secret}";`, `mtu ${OVERLAY.mtu};`,
          `peer "${other.name}" { key "${keys[1 - i].public}"; remote ${other.addr}:${PORT}; }`, '',
        ].join('\n'));
        const child = t.lab.spawnIn(h.ns, 'fastd', ['--config', cfg], `${h.name}-fastd.log`);
        if (child.pid === undefined) throw new Error('fastd did not start');
        pids.push(child.pid);
        for (let n = 0; ; n++) {
          if ((await run('ip', ['-n', h.ns, 'link', 'show', 'fd0'])).code === 0) break;
          if (child.exitCode !== null || n > 50) throw new Error(`fastd on ${h.name} did not create fd0; see ${t.lab.dir}/${h.name}-fastd.log`);
          await sleep(100);
        }
        await must('ip', ['-n', h.ns, 'link', 'add', 'br0', 'type', 'bridge']);
        await containerVeth(h.ns, t.containers[i], i, OVERLAY.mtu);
        for (const dev of ['fd0', 'veth0']) await must('ip', ['-n', h.ns, 'link', 'set', dev, 'master', 'br0', 'up']);
        await must('ip', ['-n', h.ns, 'link', 'set', 'br0', 'up']);
        const rip = OVERLAY.ips[1 - i];
        await must('ip', ['-n', t.containers[i], 'neigh', 'replace', rip, 'lladdr', macFor(rip), 'dev', 'eth0', 'nud', 'permanent']);
        log(`${h.name}: fastd ${method} PID ${child.pid}, fd0 + veth on br0`);
      }
    },
    pids: () => [...pids],
  };
}

export function fastdSystems(): OverlaySystem[] {
  return [fastdSystem('null'), fastdSystem('aes128-gcm')];
}
