// The agent's side of the gossip layer: one GossipNode per agent (UDP+TCP 7946), its cluster
// key, joining (with retries), its quorum IPAM; the agent's tables are defined in tables.ts.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { GossipNode, Keyring, attachIpam, type Ipam, formatJoinToken, keyId, newSecretFileText, parseJoinToken, parseSecretFile, type MemberInfo, type ProfileName } from '../gossip/index.js';
import { writeFileAtomic } from './atomic-file.js';
import type { Logger } from './log.js';
import { AGENT_TABLES } from './tables.js';

export const GOSSIP_PORT = 7946;

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
  /** x25519: this host's identity public key (base64), for encrypted networks' key agreement. */
  meta: { vtep: string; vxlanPort: number; version: string; x25519?: string };
}

/** Node states as `tapmesh node ls` shows them (Docker's vocabulary). */
export function statusOf(m: MemberInfo): 'Ready' | 'Suspect' | 'Down' | 'Left' {
  return m.state === 'alive' ? 'Ready' : m.state === 'suspect' ? 'Suspect' : m.state === 'dead' ? 'Down' : 'Left';
}

/**
 * The cluster keyring. The agent keeps it in its state dir (cluster.secret, one join token per
 * line, primary first), so key rotations survive restarts; --secret-file seeds it on first start;
 * without either, a new key is generated (the first agent of a cluster).
 */
export function loadKeyring(stateDir: string, secretFile: string | undefined): Keyring {
  const own = path.join(stateDir, 'cluster.secret');
  if (!existsSync(own)) {
    const seed = secretFile ? readFileSync(secretFile, 'utf8') : newSecretFileText();
    parseSecretFile(seed); // a bad --secret-file fails here, before anything is written
    writeFileAtomic(own, seed);
  }
  return parseSecretFile(readFileSync(own, 'utf8'));
}

export function saveKeyring(stateDir: string, keyring: Keyring): void {
  const text = keyring.exportKeys().map((k) => formatJoinToken(k)).join('\n') + '\n';
  const file = path.join(stateDir, 'cluster.secret');
  writeFileAtomic(file, text);
}

export class Cluster {
  readonly node: GossipNode;
  readonly keyring: Keyring;
  readonly ipam: Ipam;
  /** Suspect events seen for any member since start (a flood must not cause any). */
  suspectEvents = 0;
  private retry: NodeJS.Timeout | undefined;

  constructor(private readonly opts: ClusterOptions, private readonly log: Logger) {
    const keyring = loadKeyring(opts.stateDir, opts.secretFile);
    this.keyring = keyring;
    this.node = new GossipNode({
      id: opts.id, name: opts.name, bindAddr: opts.listenAddr, bindPort: opts.listenPort,
      advertiseAddr: opts.advertiseAddr, advertisePort: opts.listenPort, keyring, profile: opts.profile,
      meta: opts.meta, stateDir: path.join(opts.stateDir, 'gossip'), tables: AGENT_TABLES,
    });
    this.ipam = attachIpam(this.node);
    this.node.onMember((e) => {
      if (e.kind === 'suspect') this.suspectEvents++;
      this.log.info('member event', { kind: e.kind, node: e.member.name, id: e.member.id, addr: e.member.addr });
    });
  }

  /** What another host needs to join: the primary key as a join token. */
  get joinToken(): string {
    return formatJoinToken(this.keyring.exportKeys()[0]);
  }

  /**
   * Key rotation without a partition, one step per command and every step on every host
   * before the next: add (receive with it too), use (send with it), remove (the old one).
   */
  keys(op: 'ls' | 'add' | 'use' | 'rm', arg?: string): { Primary: string; Keys: string[] } {
    const id = (a: string) => (a.startsWith('TMJ1-') ? keyId(parseJoinToken(a)) : a);
    if (op === 'add') this.keyring.addKey(parseJoinToken(arg ?? ''));
    if (op === 'use') this.keyring.useKey(id(arg ?? ''));
    if (op === 'rm') this.keyring.removeKey(id(arg ?? ''));
    if (op !== 'ls') {
      saveKeyring(this.opts.stateDir, this.keyring);
      this.log.info('keyring changed', { op, keys: this.keyring.list() });
    }
    return { Primary: this.keyring.primaryId(), Keys: this.keyring.list() };
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

  /** Leave gracefully (the others mark this host Left at once), waiting at most leaveMs. */
  async stop(leaveMs = 1000): Promise<void> {
    if (this.retry) clearTimeout(this.retry);
    await this.node.leave(leaveMs).catch(() => undefined);
    await this.node.stop();
  }
}
