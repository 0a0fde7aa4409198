// HTTP+JSON over the agent's unix socket.
import http from 'node:http';

/** Where the agent serves its API unless --socket or TAPMESH_SOCKET says otherwise. */
export const DEFAULT_SOCKET = '/run/tapmesh/tapmesh.sock';

/** What every command is run with: the agent's socket and stdout. */
export interface Ctx {
  socket: string;
  out: (s: string) => void;
}

export class DaemonError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

export class NotRunningError extends Error {}

export function request(socketPath: string, method: string, path: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ socketPath, method, path, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let v: unknown;
        try {
          v = text ? JSON.parse(text) : undefined;
        } catch {
          return reject(new DaemonError(`malformed response from agent: ${text.slice(0, 200)}`, res.statusCode ?? 500));
        }
        if ((res.statusCode ?? 500) >= 400) {
          const msg = (v as { message?: string } | undefined)?.message ?? `HTTP ${res.statusCode}`;
          return reject(new DaemonError(msg, res.statusCode ?? 500));
        }
        resolve(v);
      });
    });
    req.setTimeout(60_000, () => req.destroy(new Error('timed out waiting for the agent')));
    req.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || e.code === 'EACCES') {
        reject(new NotRunningError(`Cannot connect to the tapmesh agent at ${socketPath} (${e.code}). Is the agent running?`));
      } else reject(e);
    });
    req.end(payload);
  });
}

/** `X inspect REF...`: a JSON array of what was found, then one error naming every missing ref. */
export async function inspectAll(ctx: Ctx, refs: string[], path: (ref: string) => string, kind: string): Promise<void> {
  const found: unknown[] = [];
  const missing: string[] = [];
  for (const ref of refs) {
    try {
      found.push(await request(ctx.socket, 'GET', path(ref)));
    } catch (e) {
      if (e instanceof DaemonError && e.status === 404) missing.push(ref);
      else throw e;
    }
  }
  ctx.out(`${JSON.stringify(found, null, 4)}\n`);
  if (missing.length) throw new DaemonError(`No such ${kind}: ${missing.join(', ')}`, 404);
}

/** `X rm REF...`: each one removed is printed; the others' errors are reported together at the end. */
export async function removeAll(ctx: Ctx, refs: string[], path: (ref: string) => string): Promise<void> {
  const errors: string[] = [];
  for (const ref of refs) {
    try {
      await request(ctx.socket, 'DELETE', path(ref));
      ctx.out(`${ref}\n`);
    } catch (e) {
      if (e instanceof DaemonError) errors.push(e.message);
      else throw e;
    }
  }
  if (errors.length) throw new DaemonError(errors.join('; '), 400);
}
