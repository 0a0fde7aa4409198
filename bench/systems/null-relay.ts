// The floor (`--floor`): what any userspace TAP + UDP overlay pays on this machine before it does
// anything. Per host a null relay (null-relay.c, built with the machine's cc into the lab
// directory) owns a TAP on br0 next to the container's veth, the same layout as tapmesh's, and
// moves each frame to the peer as VXLAN and back with one syscall per packet each way, with no
// lookups, checks or offloads. Two variants: `null-relay` sleeps in poll() between packets (idle
// costs nothing, like any agent that respects an idle budget), `null-relay-spin` never sleeps while
// packets come at least every 2 s (a core per host; after 2 s of silence it waits in poll(), so
// that it does not disturb the other systems of the run). Their ping latency is the floor for a userspace datapath here; their
// throughput is not a ceiling (no TSO or GSO: every 1.4 KB packet crosses alone).
import path from 'node:path';
import { must, repoRoot, type Host } from '../../test/harness/lab.js';
import { bridgeTapToContainer, waitForLink, which } from './peer-util.js';
import { OVERLAY, type OverlaySystem, type Probe, type Topology } from './system.js';

function nullRelay(mode: 'block' | 'spin'): OverlaySystem {
  const pids: number[] = [];
  const cc = which('cc') ?? which('gcc');
  return {
    id: mode === 'block' ? 'null-relay' : 'null-relay-spin',
    label: mode === 'block' ? 'null relay (sleeps)' : 'null relay (spins)',
    async probe(): Promise<Probe> {
      return cc ? { ok: true } : { ok: false, status: 'skipped', reason: 'no C compiler (cc/gcc) to build bench/systems/null-relay.c' };
    },
    async setup(t: Topology, log): Promise<void> {
      const bin = path.join(t.lab.dir, 'null-relay');
      await must(cc!, ['-O2', '-o', bin, path.join(repoRoot, 'bench/systems/null-relay.c')]);
      for (let i = 0; i < 2; i++) {
        const h: Host = t.hosts[i];
        // No IPv6 on these links: its router solicitations and MLD reports would keep the
        // spinning relay awake while the other systems of the run are measured.
        for (const ns of [h.ns, t.containers[i]]) {
          await must('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
        }
        const child = t.lab.spawnIn(h.ns, bin, ['nr0', h.addr, t.hosts[1 - i].addr, String(OVERLAY.port), mode], `${h.name}-null-relay.log`);
        if (child.pid === undefined) throw new Error('null-relay did not start');
        pids.push(child.pid);
        await waitForLink(h.ns, 'nr0', child, `${t.lab.dir}/${h.name}-null-relay.log`);
        await bridgeTapToContainer(h.ns, t.containers[i], i, 'nr0', OVERLAY.mtu);
        log(`${h.name}: null relay (${mode}) PID ${child.pid}, nr0 + veth on br0`);
      }
    },
    pids: () => [...pids],
  };
}

export function nullRelaySystems(): OverlaySystem[] {
  return [nullRelay('block'), nullRelay('spin')];
}
