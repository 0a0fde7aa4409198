// The container's resolver configuration. `ip netns exec NAME` bind-mounts
// /etc/netns/NAME/resolv.conf over /etc/resolv.conf, so for a container given as a named
// namespace the agent writes that file (nameserver 127.0.0.11, ndots:0, the search domains)
// and removes it when the container leaves its last network. A file tapmesh did not write (no
// MARK line) is left alone. PIDs and namespace paths get nothing: see README ("DNS").
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const MARK = '# written by tapmesh: removed when the container leaves its last network';

export type ResolvConfResult = 'written' | 'foreign' | 'none';

/** The text tapmesh writes. */
export function resolvConfText(search: readonly string[] = []): string {
  return [MARK, 'nameserver 127.0.0.11', ...(search.length ? [`search ${search.join(' ')}`] : []), 'options ndots:0', ''].join('\n');
}

/** The namespace name when `container` is one (not a PID or a path). */
export function namedNetns(container: string): string | undefined {
  return /^[A-Za-z0-9_.-]+$/.test(container) && !/^\d+$/.test(container) && container !== '.' && container !== '..' ? container : undefined;
}

export class ResolvConf {
  constructor(private readonly root = '/etc/netns') {}

  file(name: string): string {
    return path.join(this.root, name, 'resolv.conf');
  }

  /** Writes the file for a named container; 'foreign' if one tapmesh did not write is there. */
  write(container: string, search: readonly string[] = []): ResolvConfResult {
    const name = namedNetns(container);
    if (!name) return 'none';
    const f = this.file(name);
    if (existsSync(f) && !readFileSync(f, 'utf8').includes(MARK)) return 'foreign';
    mkdirSync(path.dirname(f), { recursive: true });
    writeFileSync(f, resolvConfText(search));
    return 'written';
  }

  /** Removes our file (and the directory when it is then empty); never a foreign one. */
  remove(container: string): ResolvConfResult {
    const name = namedNetns(container);
    if (!name) return 'none';
    const f = this.file(name);
    if (!existsSync(f)) return 'none';
    if (!readFileSync(f, 'utf8').includes(MARK)) return 'foreign';
    unlinkSync(f);
    const dir = path.dirname(f);
    if (readdirSync(dir).length === 0) rmdirSync(dir);
    return 'written';
  }
}
