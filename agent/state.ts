// What an agent remembers across restarts: its networks, their endpoints and static peers.
// Written atomically and durably (temp file, fsync, rename, fsync of the directory) after every
// change, before the change is acknowledged.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from './atomic-file.js';

export interface EndpointRecord {
  id: string;
  /** How the container was named on the command line (netns name, PID or path). */
  container: string;
  name: string;
  ifname: string;
  veth: string;
  mac: string;
  ip: string;
  aliases: string[];
  /** Service id when the endpoint is a task (agent/services.ts). */
  service?: string;
  /** Task weight 0..65535, 0 drains; and when it was set (ms, setter's clock). */
  weight?: number;
  weightAt?: number;
}

export interface StaticPeerRecord {
  vtep: string;
  mac?: string;
  ip?: string;
}

export interface NetworkRecord {
  id: string;
  name: string;
  created: string;
  driver: 'overlay';
  subnet: string;
  gateway: string;
  ipRange?: string;
  vni: number;
  mtu: number;
  encrypted: boolean;
  attachable: boolean;
  options: Record<string, string>;
  labels: Record<string, string>;
  endpoints: EndpointRecord[];
  peers: StaticPeerRecord[];
}

export interface AgentState {
  version: 1;
  nodeId: string;
  networks: NetworkRecord[];
}

export class StateStore {
  readonly file: string;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.file = path.join(dir, 'state.json');
  }

  load(fresh: () => AgentState): AgentState {
    if (!existsSync(this.file)) return fresh();
    const s = JSON.parse(readFileSync(this.file, 'utf8')) as AgentState;
    if (s.version !== 1) throw new Error(`${this.file}: unsupported state version ${String(s.version)}`);
    return s;
  }

  save(s: AgentState): void {
    writeFileAtomic(this.file, JSON.stringify(s, null, 2));
  }
}
