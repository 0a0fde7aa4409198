// What every benched overlay system provides. The runner builds the same topology for each
// (two hosts on a veth underlay, one empty container namespace per host); the system's setup()
// gives each container an eth0 on the overlay (MTU 1450, 10.0.9.2 and 10.0.9.3) and connects them.
import { macFromIp, parseIpv4 } from '../../router/wire/addr.js';
import { must, type Host, type Lab } from '../../test/harness/lab.js';

export const OVERLAY = {
  subnet: '10.0.9.0/24',
  prefixLen: 24,
  ips: ['10.0.9.2', '10.0.9.3'] as const,
  mtu: 1450,
  vni: 4096,
  port: 4789,
};

/** Docker's MAC for an IPv4 address in text (router/wire/addr.ts macFromIp). */
export function macFor(ip: string): string {
  return macFromIp(parseIpv4(ip));
}

export interface Topology {
  lab: Lab;
  hosts: [Host, Host];
  /** Container netns names; containers[i] lives on hosts[i] and gets OVERLAY.ips[i]. */
  containers: [string, string];
}

export type Probe = { ok: true } | { ok: false; status: 'skipped' | 'not-built'; reason: string };

/** Thrown by setup() when the system turns out not to exist yet (e.g. an unimplemented option). */
export class NotBuiltError extends Error {}

export interface OverlaySystem {
  id: string;
  label: string;
  /** Whether the system can run on this machine at all (binary installed, feature built). */
  probe(): Promise<Probe>;
  /** Build the overlay on an already created topology; throws when setup fails. */
  setup(t: Topology, log: (msg: string) => void): Promise<void>;
  /** Userspace processes carrying the datapath (CPU seconds and peak RSS are read from these). */
  pids(): number[];
  /** Counters to diff around the measurements (e.g. per-reason drops); flat name → number. */
  counters?(): Promise<Record<string, number>>;
}

/**
 * Put every host's underlay veth (ul0) in the same transmit-offload state, whatever a system's
 * setup did to it: "on" is the veth default (checksum + TSO/GSO pass through, like a NIC with
 * tunnel offloads), "off" makes the kernel finish checksums and segment in software, like a NIC
 * without offloads. The runner applies it after setup so that every system sees the same wire.
 */
export async function setUnderlayOffload(t: Topology, on: boolean): Promise<void> {
  for (const h of t.hosts) await must('ip', ['netns', 'exec', h.ns, 'ethtool', '-K', 'ul0', 'tx', on ? 'on' : 'off']);
}
