// Connection sockets made ahead inside a namespace, so a new routing-mesh connection costs no
// setns: socketsInNetns makes a batch with one setns there and one back, and each connection
// takes one socket from it (the mesh's relay connects it; connectTcpOnFd does in Node). An idle
// socket here is unbound and unconnected (no port, no state in the namespace's stack) but holds
// a reference on its namespace, so drain() must run when a namespace goes (the mesh drains
// every namespace it no longer dials into).
import { native } from './index.js';
import { netnsPath } from './netns.js';

export class NetnsTcpPool {
  /** Idle descriptors per namespace path and family (`path|4`). */
  private readonly idle = new Map<string, number[]>();

  /** `batch`: sockets made per setns pair (1..256). */
  constructor(private readonly batch = 32) {
    if (!(Number.isInteger(batch) && batch >= 1 && batch <= 256)) throw new RangeError(`pool batch must be 1..256: ${batch}`);
  }

  /** An unconnected nonblocking TCP socket made in ns; the caller owns it (the mesh's relay). */
  take(ns: string | number, family: 4 | 6): number {
    const path = netnsPath(ns);
    const key = `${path}|${family}`;
    let fds = this.idle.get(key);
    if (fds === undefined || fds.length === 0) {
      fds = Array.from(native().socketsInNetns(path, family, 'tcp', this.batch));
      this.idle.set(key, fds);
    }
    return fds.pop()!;
  }

  /** Idle sockets held (all namespaces). */
  get size(): number {
    let n = 0;
    for (const fds of this.idle.values()) n += fds.length;
    return n;
  }

  /** Closes the idle sockets of namespaces `keep` does not name (all of them without `keep`). */
  drain(keep: Iterable<string | number> = []): void {
    const n = native();
    const paths = new Set([...keep].map(netnsPath));
    for (const [key, fds] of this.idle) {
      if (paths.has(key.slice(0, key.lastIndexOf('|')))) continue;
      for (const fd of fds) n.close(fd);
      this.idle.delete(key);
    }
  }
}
