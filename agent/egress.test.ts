// Egress without touching any real namespace: the nft batch, and the gateway bridge's commands
// against a recording runner (no nft, ip or sysctl is run).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GatewayBridge, GWBRIDGE } from './gwbridge.js';
import { Masquerade, nftScript, type Runner } from './masquerade.js';
import type { Logger } from './log.js';

const logs: { level: string; msg: string; f?: Record<string, unknown> }[] = [];
const log: Logger = {
  info: (msg, f) => void logs.push({ level: 'info', msg, f }),
  warn: (msg, f) => void logs.push({ level: 'warn', msg, f }),
  error: (msg, f) => void logs.push({ level: 'error', msg, f }),
} as Logger;

/** Records commands; answers `ip link show NAME` from a set of links; `fail` makes matching commands throw. */
function recorder(fail?: RegExp) {
  const calls: string[] = [];
  const links = new Set<string>();
  let table = '';
  const run: Runner = async (cmd, args, input) => {
    const line = `${cmd} ${args.join(' ')}`;
    calls.push(line);
    if (fail?.test(line)) throw new Error(`${line}: Operation not supported`);
    if (cmd === 'nft' && args.join(' ') === '-f -') table = input ?? '';
    if (cmd === 'nft' && args[0] === 'list' && args[1] === 'table') return table;
    if (cmd === 'nft' && args[0] === 'list' && args[1] === 'tables') return table ? 'table ip tapmesh\n' : '';
    if (cmd === 'nft' && args[0] === 'delete') table = '';
    if (cmd === 'ip' && args[0] === 'link' && args[1] === 'add') links.add(args[2]);
    if (cmd === 'ip' && args[0] === 'link' && args[1] === 'del') links.delete(args[2]);
    if (cmd === 'nsenter' && args.includes('veth')) links.add(args[args.indexOf('peer') + 2]);
    if (cmd === 'ip' && args[0] === 'link' && args[1] === 'show' && args[2]) {
      if (!links.has(args[2])) throw new Error(`Device "${args[2]}" does not exist.`);
    }
    if (cmd === 'ip' && args[0] === '-o' && args[1] === 'link') return [...links].map((l, i) => `${i + 1}: ${l}: <UP>`).join('\n');
    return '';
  };
  return { run, calls, links, table: () => table };
}

/** Two namespace paths that exist (only the recording runner acts on them). */
const A = `/proc/${process.pid}/ns/net`;
/** Every state directory a test made (a test may make several). */
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  logs.length = 0;
});

describe('nft table', () => {
  it('is one atomic batch of our own table: create-if-missing, delete, recreate; masquerade out of every other interface', () => {
    const s = nftScript('172.18.0.0/16', GWBRIDGE);
    expect(s.split('\n').slice(0, 3)).toEqual(['table ip tapmesh {}', 'delete table ip tapmesh', 'table ip tapmesh {']);
    expect(s).toContain('type nat hook postrouting priority srcnat; policy accept;');
    expect(s).toContain('ip saddr 172.18.0.0/16 oifname != "tm_gwbridge" masquerade');
    // Nothing but our table is named.
    expect(s.match(/table \w+ \w+/g)!.every((t) => t === 'table ip tapmesh')).toBe(true);
  });

  it('install: nft, read back, then ip_forward (in the agent namespace); missing nft or kernel support is a clear error', async () => {
    const ok = recorder();
    await new Masquerade(ok.run).install('172.18.0.0/16', GWBRIDGE);
    expect(ok.calls).toEqual(['nft --version', 'nft -f -', 'nft list table ip tapmesh', 'sysctl -q -w net.ipv4.ip_forward=1']);
    await expect(new Masquerade(recorder(/^nft --version/).run).install('172.18.0.0/16', GWBRIDGE)).rejects.toThrow(/nft \(nftables\) is not installed/);
    await expect(new Masquerade(recorder(/^nft -f/).run).install('172.18.0.0/16', GWBRIDGE)).rejects.toThrow(/kernel refused table ip tapmesh/);
    const chk = recorder();
    await new Masquerade(chk.run).check('172.18.0.0/16', GWBRIDGE);
    expect(chk.calls).toEqual(['nft --version', 'nft -c -f -']);
  });

  it('remove deletes our table only when it is there', async () => {
    const r = recorder();
    await new Masquerade(r.run).remove();
    expect(r.calls).toEqual(['nft list tables ip']);
  });
});

describe('gateway bridge', () => {
  const newDir = (): string => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'tm-gw-'));
    dirs.push(d);
    return d;
  };

  it('ensure: bridge with .1, NAT installed; then unavailable reasons leave no bridge and say why', async () => {
    const r = recorder();
    const gw = new GatewayBridge(newDir(), '172.18.0.0/16', r.run, log);
    expect(await gw.ensure()).toBe(true);
    expect(r.calls).toContain(`ip link add ${GWBRIDGE} type bridge`);
    expect(r.calls).toContain(`ip addr replace 172.18.0.1/16 dev ${GWBRIDGE}`);
    expect(r.table()).toContain('masquerade');
    const bad = recorder(/^nft -f/);
    const off = new GatewayBridge(newDir(), '172.18.0.0/16', bad.run, log);
    expect(await off.ensure()).toBe(false);
    expect(off.unavailable).toMatch(/kernel refused/);
    expect(bad.links.has(GWBRIDGE)).toBe(false);
    expect(logs.some((l) => l.level === 'error' && l.msg.startsWith('egress unavailable'))).toBe(true);
  });

  it('without egress, attach does nothing (the container keeps its overlay)', async () => {
    const bad = recorder(/^nft --version/);
    const gw = new GatewayBridge(newDir(), '172.18.0.0/16', bad.run, log);
    await gw.attach(A);
    expect(bad.calls.some((c) => c.startsWith('nsenter'))).toBe(false);
    expect(gw.address(A)).toBeUndefined();
  });

  it('attach: next address from .2, veth into the agent namespace, isolated bridge port, default route via .1; persisted; detach deletes it', async () => {
    const r = recorder();
    const d = newDir();
    const gw = new GatewayBridge(d, '172.18.0.0/16', r.run, log);
    await gw.attach(A);
    await gw.attach('/proc/self/ns/net');
    expect(gw.address(A)).toBe('172.18.0.2/16');
    expect(gw.address('/proc/self/ns/net')).toBe('172.18.0.3/16');
    const batch = r.calls.find((c) => c.includes('-batch'));
    expect(batch).toBe(`nsenter --net=${A} ip -batch -`);
    expect(r.calls.some((c) => /^ip link set dev tg[0-9a-f]{10} type bridge_slave isolated on$/.test(c))).toBe(true);
    expect(r.calls.some((c) => new RegExp(`^nsenter --net=${A} ip link add eth\\d type veth peer name tg[0-9a-f]{10} netns ${process.pid}$`).test(c))).toBe(true);
    const saved = JSON.parse(readFileSync(path.join(d, 'gwbridge.json'), 'utf8'));
    expect(saved.containers[A].ip).toBe('172.18.0.2');
    // A restarted agent re-plugs the same veth with the same address, creating nothing.
    const again = new GatewayBridge(d, '172.18.0.0/16', r.run, log);
    const n = r.calls.length;
    await again.attach(A);
    expect(r.calls.slice(n).some((c) => c.startsWith('nsenter'))).toBe(false);
    expect(again.address(A)).toBe('172.18.0.2/16');
    await again.detach(A);
    expect(again.address(A)).toBeUndefined();
    expect(r.calls.at(-1)).toMatch(/^ip link del tg[0-9a-f]{10}$/);
    await again.shutdown();
    expect(r.links.has(GWBRIDGE)).toBe(false);
    expect(r.table()).toBe('');
  });

  it('a small pool runs out with a clear error', async () => {
    const r = recorder();
    const gw = new GatewayBridge(newDir(), '10.9.9.0/30', r.run, log);
    await gw.attach(A); // .2 is the only one
    await expect(gw.attach('/proc/self/ns/net')).rejects.toThrow('gateway bridge pool 10.9.9.0/30 is exhausted');
  });
});
