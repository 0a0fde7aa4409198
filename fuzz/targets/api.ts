// HTTP requests to the agent's API handler (agent/api.ts serveApi) on a unix socket in this
// process: the real routes, body reader and input checks, on a real Agent and Cluster (gossip
// not started) with a datapath stub. What would touch namespaces is cut off behind validation:
// creating a network validates and stops (no sandbox), connecting validates and stops (a fuzzed
// container name could name a real process), removing a network stops after the lookup.
// Bodies are mutated bytes of valid bodies or valid JSON with fuzzed values. Every answer must
// be a JSON object with a 2xx or 4xx status: a 5xx means the input reached a code path that
// threw an unexpected error.
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Agent } from '../../agent/agent.js';
import { serveApi } from '../../agent/api.js';
import { Cluster } from '../../agent/cluster.js';
import { parseIp } from '../../agent/input.js';
import type { Logger } from '../../agent/log.js';
import { UserError, type ConnectRequest, type CreateNetworkRequest } from '../../agent/requests.js';
import type { EndpointRecord, NetworkRecord } from '../../agent/state.js';
import type { DatapathEngine, DpCommandOf, DpOp, DpResults } from '../../router/engine.js';
import { Failures, Mutator, outOfTime, type FuzzResult, type FuzzTarget } from '../mutate.js';

class StubEngine implements DatapathEngine {
  async call<O extends DpOp>(cmd: DpCommandOf<O>): Promise<DpResults[O]> {
    return (cmd.op === 'forwarding' ? [] : cmd.op === 'stats' ? { drops: {}, networks: {} } : undefined) as DpResults[O];
  }
  stats() {
    return this.call({ op: 'stats' });
  }
  async close(): Promise<void> {}
}

class FuzzAgent extends Agent {
  override async createNetwork(req: CreateNetworkRequest): Promise<NetworkRecord> {
    return this['validateCreate'](req); // the real checks; no VNI claim, no sandbox
  }
  override async connect(ref: string, req: ConnectRequest): Promise<EndpointRecord> {
    this.findNetwork(ref);
    if (!req.container) throw new UserError('container is required');
    if (req.ip !== undefined) parseIp(req.ip);
    throw new UserError('fuzz: connect validated, not performed', 409);
  }
  override async removeNetwork(ref: string): Promise<NetworkRecord> {
    this.findNetwork(ref);
    throw new UserError('fuzz: remove looked up, not performed', 409);
  }
}

const quiet: Logger & { errors: string[] } = { errors: [], info() {}, warn() {}, error(msg, f) { quiet.errors.push(`${msg} ${JSON.stringify(f)}`); } };

const ROUTES: [string, string][] = [
  ['GET', '/v1/info'], ['GET', '/v1/networks'], ['POST', '/v1/networks'], ['GET', '/v1/networks/net1'], ['GET', '/v1/networks/net1?verbose=1'],
  ['GET', '/v1/nodes'], ['GET', '/v1/nodes/h1'], ['GET', '/v1/keys'], ['POST', '/v1/keys/add'], ['POST', '/v1/keys/use'], ['POST', '/v1/keys/rm'],
  ['GET', '/v1/join-token'], ['DELETE', '/v1/networks/net1'], ['POST', '/v1/networks/net1/connect'], ['POST', '/v1/networks/net1/disconnect'],
  ['POST', '/v1/networks/net1/peers'], ['DELETE', '/v1/networks/net1/peers?vtep=192.0.2.9&mac=02:42:0a:00:09:09'], ['GET', '/v1/stats'],
  ['GET', '/v1/networks/%zz'], ['PUT', '/v1/networks'],
];
const BODIES: Record<string, unknown>[] = [
  { name: 'web', driver: 'overlay', subnet: '10.0.20.0/24', gateway: '10.0.20.1', options: { 'com.docker.network.mtu': '1400' }, labels: { a: 'b' }, attachable: true },
  { name: 'w2', subnet: '10.0.30.0/24', ipRange: '10.0.30.128/25', options: { 'com.docker.network.driver.overlay.vxlanid_list': '5000' } },
  { container: 'c1', ip: '10.0.9.7', aliases: ['x', 'y'] },
  { vtep: '192.0.2.9', mac: '02:42:0a:00:09:09', ip: '10.0.9.9' },
  { key: 'TMJ1-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
  {},
];
const WEIRD: unknown[] = [null, true, 0, -1, 1e308, 4096, 16777216, '', 'x'.repeat(300), '10.0.9.300', '::1', '../../etc', '\u0000', [], ['a'], {}, { __proto__: { x: 1 } }, { constructor: 'x' }];

function jsonBody(m: Mutator): string {
  const base: Record<string, unknown> = { ...BODIES[m.int(BODIES.length)] };
  const keys = [...Object.keys(base), 'name', 'options', 'container', 'vtep', '__proto__', 'toString'];
  for (let k = 1 + m.int(3); k > 0; k--) base[keys[m.int(keys.length)]] = WEIRD[m.int(WEIRD.length)];
  return JSON.stringify(base);
}

function fuzzPath(m: Mutator, p: string): string {
  if (m.int(4) !== 0) return p;
  const chars = [...p];
  chars[m.int(chars.length)] = ['%', '/', '?', '..', 'net1', '%2F', 'é', ' '][m.int(8)];
  return encodeURI(chars.join('')).replace(/%25/g, '%');
}

export const apiTarget: FuzzTarget = {
  name: 'API requests (serveApi on a unix socket)',
  count: 200_000,
  async run(count, seed, until) {
    const dir = mkdtempSync(path.join(tmpdir(), 'tapmesh-fuzz-api-'));
    const agent = new FuzzAgent({ advertiseAddr: '192.0.2.1', dataPathAddr: '192.0.2.1', vxlanPort: 4789, stateDir: dir, netnsPrefix: 'tmfuzz', offload: false }, new StubEngine(), quiet);
    agent.state.networks.push({
      id: 'net1id000000000000000000a', name: 'net1', created: new Date(0).toISOString(), driver: 'overlay', subnet: '10.0.9.0/24', gateway: '10.0.9.1',
      vni: 4096, mtu: 1450, encrypted: false, attachable: false, options: {}, labels: {}, endpoints: [], peers: [],
    });
    const cluster = new Cluster({ id: agent.nodeId, name: 'h1', listenAddr: '127.0.0.1', listenPort: 7946, advertiseAddr: '192.0.2.1', join: [], stateDir: dir, profile: 'lan', meta: { vtep: '192.0.2.1', vxlanPort: 4789, version: 'fuzz' } }, quiet);
    const sock = path.join(dir, 'api.sock');
    const server = await serveApi(sock, agent, cluster, quiet);
    const m = new Mutator(seed, BODIES.map((b) => Buffer.from(JSON.stringify(b))), 4096);
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const failures = new Failures();
    const status = new Map<number, number>();
    let rejected = 0;
    let accepted = 0;
    const one = (i: number) => new Promise<void>((resolve) => {
      const [method, p] = ROUTES[m.int(ROUTES.length)];
      const body = m.int(2) === 0 ? Buffer.from(jsonBody(m)) : Buffer.from(m.out.subarray(0, m.next()));
      const req = http.request({ socketPath: sock, method, path: fuzzPath(m, p), agent: keepAlive, headers: { 'content-length': body.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          status.set(code, (status.get(code) ?? 0) + 1);
          let parsed: unknown;
          try {
            parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            parsed = undefined;
          }
          // Node's own HTTP parser answers a request line it cannot parse with a bare 400.
          const nodeParser = code === 400 && chunks.length === 0;
          if (code >= 500 || code < 200 || (parsed === undefined && !nodeParser)) failures.add(`input ${i}: ${method} ${p} → ${code} ${Buffer.concat(chunks).toString('utf8').slice(0, 160)} (body ${body.toString('utf8').slice(0, 120)})`);
          if (code >= 400) rejected++;
          else accepted++;
          resolve();
        });
      });
      req.on('error', (e) => {
        failures.add(`input ${i}: ${method} ${p}: ${e.message}`);
        resolve();
      });
      req.end(body);
    });
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < count && !outOfTime(next, until)) await one(next++);
    }));
    const seconds = (performance.now() - t0) / 1000;
    keepAlive.destroy();
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
    for (const e of quiet.errors.slice(0, 3)) failures.add(`logged: ${e}`);
    const codes = [...status.entries()].sort((a, b) => a[0] - b[0]).map(([c, n]) => `${c}×${n}`).join(' ');
    return { name: this.name, inputs: rejected + accepted, rejected, accepted, seconds, failures: failures.done(), note: `statuses ${codes}` } satisfies FuzzResult;
  },
};
