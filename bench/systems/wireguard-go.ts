// wireguard-go (userspace WireGuard, L3): per host a wireguard-go process owning a wg device, configured
// with `wg` (device named after the lab tag); the container's eth0 is a veth routed through the host namespace (proxy ARP answers
// for the remote container). WireGuard over IPv4 costs 60 bytes, so on a 1500-byte underlay the
// container MTU is 1440 here instead of 1450 (noted in the results). Runs only with --peers and
// when wireguard-go and wg are installed.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { must, run, sleep } from '../../test/harness/lab.js';
import { containerVeth, which } from './peer-util.js';
import { OVERLAY, type OverlaySystem, type Probe, type Topology } from './system.js';

const PORT = 51820;
export const WG_MTU = 1440;

export function wireguardGo(): OverlaySystem {
  const pids: number[] = [];
  return {
    id: 'wireguard-go',
    label: 'wireguard-go',
    async probe(): Promise<Probe> {
      const missing = ['wireguard-go', 'wg'].filter((b) => !which(b));
      return missing.length ? { ok: false, status: 'skipped', reason: `${missing.join(' and ')} not installed (apt-get install wireguard-go wireguard-tools)` } : { ok: true };
    },
    async setup(t: Topology, log): Promise<void> {
      const keys: { priv: string; pub: string }[] = [];
      for (let i = 0; i < 2; i++) {
        const priv = (await must('wg', ['genkey'])).trim();
        const r = await run('wg', ['pubkey'], { input: `${priv}\n` });
        if (r.code !== 0) throw new Error(`wg pubkey: ${r.stderr}`);
        keys.push({ priv, pub: r.stdout.trim() });
      }
      for (let i = 0; i < 2; i++) {
        const h = t.hosts[i];
        const other = t.hosts[1 - i];
        // wireguard-go's control socket is /var/run/wireguard/<ifname>.sock, shared by every
        // namespace: the name must be unique on the machine, hence the lab's tag in it.
        const dev = `${t.lab.tag}w${i + 1}`;
        // Foreground (-f) so the PID we hold is the datapath process itself.
        const child = t.lab.spawn('ip', ['netns', 'exec', h.ns, 'wireguard-go', '-f', dev], `${h.name}-wireguard-go.log`,
          { ...process.env, WG_PROCESS_FOREGROUND: '1', LOG_LEVEL: 'error' });
        if (child.pid === undefined) throw new Error('wireguard-go did not start');
        pids.push(child.pid);
        for (let n = 0; ; n++) {
          if ((await run('ip', ['-n', h.ns, 'link', 'show', dev])).code === 0) break;
          if (child.exitCode !== null || n > 50) throw new Error(`wireguard-go on ${h.name} did not create ${dev}; see ${t.lab.dir}`);
          await sleep(100);
        }
        const keyFile = path.join(h.dir, 'wg.key');
        writeFileSync(keyFile, `${keys[i].priv}\n`, { mode: 0o600 });
        await must('ip', ['netns', 'exec', h.ns, 'wg', 'set', dev, 'listen-port', String(PORT), 'private-key', keyFile,
          'peer', keys[1 - i].pub, 'endpoint', `${other.addr}:${PORT}`, 'allowed-ips', `${OVERLAY.ips[1 - i]}/32`]);
        await must('ip', ['-n', h.ns, 'link', 'set', dev, 'mtu', String(WG_MTU), 'up']);
        await containerVeth(h.ns, t.containers[i], i, WG_MTU);
        // Routed: host forwards between veth0 and wg0; proxy ARP answers for the remote container.
        await must('ip', ['netns', 'exec', h.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.veth0.proxy_arp=1']);
        await must('ip', ['-n', h.ns, 'route', 'add', `${OVERLAY.ips[i]}/32`, 'dev', 'veth0']);
        await must('ip', ['-n', h.ns, 'route', 'add', `${OVERLAY.ips[1 - i]}/32`, 'dev', dev]);
        log(`${h.name}: wireguard-go PID ${child.pid}, ${dev} MTU ${WG_MTU}, container routed via veth0`);
      }
    },
    pids: () => [...pids],
  };
}
