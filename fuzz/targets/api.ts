// HTTP requests to the agent's API handler (agent/api.ts serveApi) on a unix socket in this
// process, pipelined: each of 4 connections writes a batch of 32 requests at once and reads the
// 32 answers (Node's HTTP server answers pipelined requests in order), so a request costs the
// server's parser and handler, not a round trip. 1 batch in 16 ends with a raw mutated request
// (request line, headers, framing: Node's own HTTP parser) and then closes its side; that
// connection is replaced. Requests that change the agent's state and persist it (static peers,
// gossip keys: write + fsync) are 1 in 256; the rest are reads and requests the routes and
// validation refuse, which is where hostile input lands.
// The API handler: the real routes, body reader and input checks, on a real Agent and Cluster (gossip
// not started) with a datapath stub. What would touch namespaces is cut off behind validation:
// creating a network validates and stops (no sandbox), connecting validates and stops (a fuzzed
// container name could name a real process), removing a network stops after the lookup.
// Bodies are mutated bytes of valid bodies or valid JSON with fuzzed values. Every answer must
// be a JSON object with a 2xx or 4xx status: a 5xx means the input reached a code path that
// threw an unexpected error.
import { connect } from 'node:net';
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
  ['GET', '/v1/nodes'], ['GET', '/v1/nodes/h1'], ['GET', '/v1/keys'], ['POST', '/v1/keys/bogus'],
  ['GET', '/v1/join-token'], ['DELETE', '/v1/networks/net1'], ['POST', '/v1/networks/net1/connect'], ['POST', '/v1/networks/net1/disconnect'],
  ['GET', '/v1/stats'], ['GET', '/v1/networks/%zz'], ['PUT', '/v1/networks'], ['POST', '/v1/dns/query'], ['GET', '/v1/services/nope'],
  ['POST', '/v1/networks/nope/peers'], ['GET', '/nothing'],
];
/** Accepted ones change the state and persist it (write, fsync, rename): 1 request in 256. */
const MUTATING: [string, string][] = [
  ['POST', '/v1/keys/add'], ['POST', '/v1/keys/use'], ['POST', '/v1/keys/rm'], ['POST', '/v1/networks/net1/peers'],
  ['DELETE', '/v1/networks/net1/peers?vtep=192.0.2.9&mac=02:42:0a:00:09:09'],
];
const CONNS = 4;
const BATCH = 32;
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

/** The path with one character replaced (never the leading slash: a request-target without one is malformed HTTP, which the raw requests cover). */
function fuzzPath(m: Mutator, p: string): string {
  if (m.int(4) !== 0) return p;
  const chars = [...p];
  chars[1 + m.int(chars.length - 1)] = ['%', '/', '?', '..', 'net1', '%2F', 'é', ' '][m.int(8)];
  return encodeURI(chars.join('')).replace(/%25/g, '%');
}

/** One well-framed request: a fuzzed route, path and body. */
function request(m: Mutator, st: { mutating: number }): Buffer {
  const mut = m.int(256) === 0;
  if (mut) st.mutating++;
  const [method, p] = mut ? MUTATING[m.int(MUTATING.length)] : ROUTES[m.int(ROUTES.length)];
  const body = m.int(2) === 0 ? Buffer.from(jsonBody(m)) : Buffer.from(m.out.subarray(0, m.next()));
  const head = `${method} ${fuzzPath(m, p)} HTTP/1.1\r\nhost: tapmesh\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** What a batch of pipelined requests got back. */
interface Answer {
  status: number;
  /** The body is JSON (an object, or a list for the list routes). */
  json: boolean;
  text: string;
}

/** Splits a response stream into answers; returns the bytes not consumed yet. */
function parseAnswers(buf: Buffer, out: Answer[]): Buffer {
  let at = 0;
  for (;;) {
    const end = buf.indexOf('\r\n\r\n', at, 'latin1');
    if (end < 0) break;
    const head = buf.toString('latin1', at, end);
    const status = Number(head.slice(9, 12));
    const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
    const len = cl ? Number(cl[1]) : 0;
    if (end + 4 + len > buf.length) break;
    const text = buf.toString('utf8', end + 4, end + 4 + len);
    let json = false;
    try {
      JSON.parse(text);
      json = true;
    } catch {
      json = false;
    }
    out.push({ status, json, text });
    at = end + 4 + len;
  }
  return buf.subarray(at);
}

/** Writes the batch on a new or kept connection and collects the answers (until `want` arrived, or the server closed). */
class Conn {
  private sock: ReturnType<typeof connect> | null = null;
  constructor(private readonly path: string) {}

  exchange(reqs: Buffer[], raw: Buffer | null): Promise<{ answers: Answer[]; closed: boolean }> {
    return new Promise((resolve) => {
      const s = this.sock ?? connect(this.path);
      this.sock = s;
      const answers: Answer[] = [];
      let rest: Buffer = Buffer.alloc(0);
      const want = reqs.length;
      const finish = (closed: boolean) => {
        s.removeListener('data', onData);
        s.removeListener('close', onClose);
        s.removeListener('error', onError);
        clearTimeout(timer);
        if (closed || raw) {
          s.destroy();
          this.sock = null;
        }
        resolve({ answers, closed });
      };
      const onData = (c: Buffer) => {
        rest = parseAnswers(rest.length ? Buffer.concat([rest, c]) : c, answers);
        if (!raw && answers.length >= want) finish(false);
      };
      const onClose = () => finish(true);
      const onError = () => {};
      const timer = setTimeout(() => finish(true), 20_000);
      s.on('data', onData);
      s.on('close', onClose);
      s.on('error', onError);
      s.write(Buffer.concat(raw ? [...reqs, raw] : reqs));
      if (raw) s.end();
    });
  }

  close(): void {
    this.sock?.destroy();
  }
}

export const apiTarget: FuzzTarget = {
  name: 'API requests (serveApi on a unix socket)',
  count: 10_000_000,
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
    const st = { mutating: 0 };
    // Raw requests: whole valid requests, mutated as bytes (request line, headers, framing).
    const raws = new Mutator(seed ^ 0x4a7, Array.from({ length: 16 }, () => request(m, st)), 4096);
    st.mutating = 0;
    const failures = new Failures();
    const status = new Map<number, number>();
    let rejected = 0;
    let accepted = 0;
    let rawUnanswered = 0;
    let rawSent = 0;
    let lostWithRaw = 0;
    // The handler throws a UserError for every refusal it answers 4xx; capturing a stack for each
    // cost 6 % of the run. No stacks while it runs (a 5xx or a logged error still has its message).
    const stackLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    const t0 = performance.now();
    let next = 0;
    const count1 = (a: Answer, what: string) => {
      status.set(a.status, (status.get(a.status) ?? 0) + 1);
      // Node's own HTTP parser refuses what it cannot parse with a bare 400 (431, 413) and no body.
      const nodeParser = (a.status === 400 || a.status === 431 || a.status === 413) && a.text === '';
      if (a.status >= 500 || a.status < 200 || (!a.json && !nodeParser)) failures.add(`${what} → ${a.status} ${a.text.slice(0, 160)}`);
      if (a.status >= 400) rejected++;
      else accepted++;
    };
    await Promise.all(Array.from({ length: CONNS }, async () => {
      const conn = new Conn(sock);
      while (next < count && !outOfTime(next & ~1023, until)) {
        const n = Math.min(BATCH, count - next);
        const first = next;
        next += n;
        const withRaw = n > 1 && m.int(16) === 0;
        const reqs = Array.from({ length: withRaw ? n - 1 : n }, () => request(m, st));
        const raw = withRaw ? Buffer.from(raws.out.subarray(0, raws.mutate())) : null;
        const { answers, closed } = await conn.exchange(reqs, raw);
        if (raw && closed && answers.length < reqs.length) {
          // Node's HTTP server answers a parse error with a bare 400 and destroys the socket at
          // once, so the request it was still working on (pipelined just before the raw one) goes
          // with it: counted, not a failure of the agent.
          lostWithRaw += reqs.length - answers.length;
          rejected += reqs.length - answers.length;
        } else if (answers.length < reqs.length) {
          failures.add(`inputs ${first}..${first + n - 1}: ${answers.length} answers to ${reqs.length} well-framed requests${closed ? " (connection closed)" : ""}; the first unanswered: ${JSON.stringify(reqs[answers.length].toString("latin1").slice(0, 300))}`);
        }
        for (let k = 0; k < Math.min(answers.length, reqs.length); k++) count1(answers[k], `input ${first + k}: ${reqs[k].toString('latin1').split('\r\n')[0]}`);
        if (raw) {
          rawSent++;
          // The raw tail may parse as one request, several, or an incomplete one (no answer at EOF).
          if (answers.length <= reqs.length) {
            rawUnanswered++;
            rejected++;
          }
          for (let k = reqs.length; k < answers.length; k++) {
            if (k === reqs.length) count1(answers[k], `input ${first + k} (raw): ${raw.toString('latin1').slice(0, 100)}`);
            else if (answers[k].status >= 500) failures.add(`input ${first + reqs.length} (raw, part ${k - reqs.length}) → ${answers[k].status} ${answers[k].text.slice(0, 120)}`);
          }
        }
      }
      conn.close();
    }));
    const seconds = (performance.now() - t0) / 1000;
    Error.stackTraceLimit = stackLimit;
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
    for (const e of quiet.errors.slice(0, 3)) failures.add(`logged: ${e}`);
    const codes = [...status.entries()].sort((a, b) => a[0] - b[0]).map(([c, k]) => `${c}×${k}`).join(' ');
    return {
      name: this.name, inputs: rejected + accepted, rejected, accepted, seconds, failures: failures.done(),
      note: `statuses ${codes}; ${rawSent} raw mutated requests (${rawUnanswered} incomplete, closed unanswered; ${lostWithRaw} well-framed requests in flight lost when Node closed on the raw one's parse error); ${st.mutating} state-changing requests`,
    } satisfies FuzzResult;
  },
};
