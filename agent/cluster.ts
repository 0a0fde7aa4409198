// The agent's side of the gossip layer: one GossipNode per agent (UDP+TCP 7946), its cluster
// key, joining (with retries), and the shapes of what the agent keeps in the replicated tables.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { GossipNode, Keyring, loadSecretFile, newSecretFileText, parseSecretFile, type MemberInfo, type ProfileName } from '../gossip/index.js';
import type { Logger } from './log.js';

export const GOSSIP_PORT = 7946;

/** `networks` table value (cluster-scoped: it outlives the node that wrote it). */
export interface NetworkEntry {
  name: string;
  created: string;
  subnet: string;
  gateway: string;
  ipRange?: string;
  vni: number;
  mtu: number;
  attachable: boolean;
  options: Record<string, string>;
  labels: Record<string, string>;
}

/** `endpoints` table value (owner-scoped: suspended when its host is declared down). */
export interface EndpointEntry {
  network: string;
  name: string;
  mac: string;
  ip: string;
  host: string;
  vtep: string;
  aliases: string[];
}

export interface ClusterOptions {
  id: string;
  name: string;
  listenAddr: string;
  listenPort: number;
  advertiseAddr: string;
  join: string[];
  secretFile?: string;
  stateDir: string;
  profile: ProfileName;
  meta: { vtep: string; vxlanPort: number; version: string };
}

/** Node states as `tapmesh node ls` shows them (Docker's vocabulary). */
export function statusOf(m: MemberInfo): 'Ready' | 'Suspect' | 'Down' | 'Left' {
  return m.state === 'alive' ? 'Ready' : m.state === 'suspect' ? 'Suspect' : m.state === 'dead' ? 'Down' : 'Left';
}

/** The cluster key: --secret-file, else the one this agent generated earlier, else a new one. */
export function loadKeyring(stateDir: string, secretFile: string | undefined): { keyring: Keyring; text: string } {
  if (secretFile) return { keyring: loadSecretFile(secretFile), text: readFileSync(secretFile, 'utf8') };
  const own = path.join(stateDir, 'cluster.secret');
  if (!existsSync(own)) writeFileSync(own, newSecretFileText(), { mode: 0o600 });
  const text = readFileSync(own, 'utf8');
  return { keyring: parseSecretFile(text), text };
}

export class Cluster {
  readonly node: GossipNode;
  readonly joinToken: string;
  /** Suspect events seen for any member since start (a flood must not cause any). */
  suspectEvents = 0;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ClusterOptions, private readonly log: Logger) {
    const { keyring, text } = loadKeyring(opts.stateDir, opts.secretFile);
    this.joinToken = text.split(/\r?\n/).map((l) => l.trim()).find((l) => l && !l.startsWith('#')) ?? '';
    this.node = new GossipNode({
      id: opts.id, name: opts.name, bindAddr: opts.listenAddr, bindPort: opts.listenPort,
      advertiseAddr: opts.advertiseAddr, advertisePort: opts.listenPort, keyring, profile: opts.profile,
      meta: opts.meta, stateDir: path.join(opts.stateDir, 'gossip'),
    });
    this.node.onMember((e) => {
      if (e.kind === 'suspect') this.suspectEvents++;
      this.log.info('member event', { kind: e.kind, node: e.member.name, id: e.member.id, addr: e.member.addr });
    });
  }

  async start(): Promise<void> {
    await this.node.start();
    if (this.opts.join.length > 0) this.tryJoin();
  }

  /** Join the seeds; keep trying in the background (a seed may start later, or a key may be wrong). */
  private tryJoin(): void {
    const seeds = this.opts.join.map((a) => (a.includes(':') ? a : `${a}:${GOSSIP_PORT}`));
    this.node.join(seeds).then(
      (n) => this.log.info('joined cluster', { seeds, answered: n, members: this.node.members().length }),
      (e: Error) => {
        this.log.error('join failed; retrying in 5 s', { seeds, error: e.message, droppedAuth: this.node.stats().dropped.auth });
        this.retry = setTimeout(() => this.tryJoin(), 5000);
      },
    );
  }

  async stop(): Promise<void> {
    if (this.retry) clearTimeout(this.retry);
    await this.node.leave().catch(() => undefined);
    await this.node.stop();
  }
}
