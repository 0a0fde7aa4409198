// fastd in TAP mode (L2, like tapmesh): per host a fastd process whose tap fd0 joins a bridge br0
// together with the container's veth; one static peer each way. Two methods: "null" (no crypto)
// and "aes128-gcm". Runs only with --peers and when `fastd` is installed.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { must, type Host } from '../../test/harness/lab.js';
import { bridgeTapToContainer, waitForLink, which } from './peer-util.js';
import { OVERLAY, type OverlaySystem, type Probe, type Topology } from './system.js';

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
        await waitForLink(h.ns, 'fd0', child, `${t.lab.dir}/${h.name}-fastd.log`);
        await bridgeTapToContainer(h.ns, t.containers[i], i, 'fd0');
        log(`${h.name}: fastd ${method} PID ${child.pid}, fd0 + veth on br0`);
      }
    },
    pids: () => [...pids],
  };
}

export function fastdSystems(): OverlaySystem[] {
  return [fastdSystem('null'), fastdSystem('aes128-gcm')];
}
