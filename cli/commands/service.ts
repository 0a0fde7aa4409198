// `tapmesh service …`: services (a name, a VIP, published ports) and their tasks (containers
// attached with `network connect --service`). Flag values are checked here with the agent's own
// parsers (agent/input.ts), so a malformed one is a usage error (exit 2) before any request.
import { UserError } from '../../agent/requests.js';
import { parsePublish, parsePublishRm, parseTaskWeight } from '../../agent/input.js';
import { SCHEDULERS } from '../../agent/tables.js';
import { inspectAll, removeAll, request, type Ctx } from '../client.js';
import { LIST_OPTIONS, jsonLines, outputFormat, table } from '../format.js';
import { UsageError, command } from '../table.js';
import { oneOf } from '../values.js';

type Row = { ID: string; Name: string; Mode: string; Replicas: string; Ports: string; VIP: string; Scheduler: string };
type TaskRow = { ID: string; Name: string; Node: string; IP: string; CurrentState: string; Weight: number; ActiveConnections: number | null };

/** The agent's parser, its one-line error turned into a usage error. */
function flag<T>(parse: (s: string) => T, values: string[]): T[] {
  return values.map((v) => {
    try {
      return parse(v);
    } catch (e) {
      if (e instanceof UserError) throw new UsageError(e.message);
      throw e;
    }
  });
}

const svcPath = (ref: string, tail = '') => `/v1/services/${encodeURIComponent(ref)}${tail}`;

const PUBLISH_HELP = 'Publish a port on every host (routing mesh): PUBLISHED:TARGET[/tcp|/udp] or published=P,target=T[,protocol=tcp|udp][,proxy-protocol=v2]';

const create = command({
  name: 'service create', summary: 'Create a service (prints its ID)',
  options: {
    name: { type: 'string', required: true, value: 'NAME', help: 'Service name' },
    network: { type: 'string', required: true, value: 'NETWORK', help: 'Network of the service and its tasks' },
    publish: { type: 'string', short: 'p', multiple: true, value: 'PORT', help: PUBLISH_HELP },
    'endpoint-mode': { type: 'string', default: 'vip', value: 'vip|dnsrr', help: 'vip: one virtual IP, balanced by the agent; dnsrr: DNS round robin, no VIP, no published ports' },
    lb: { type: 'string', default: 'rr', value: 'SCHEDULER', help: 'Load-balancing scheduler: rr, wrr, lc, wlc, sh (source hash), mh (Maglev)' },
  },
  notes: 'Tasks join with: tapmesh network connect --service NAME [--weight N] NETWORK CONTAINER',
  async run(ctx: Ctx, o) {
    const ports = flag(parsePublish, o.publish);
    const endpointMode = oneOf(o['endpoint-mode'], ['vip', 'dnsrr'], '--endpoint-mode');
    const scheduler = oneOf(o.lb, SCHEDULERS, '--lb');
    const r = (await request(ctx.socket, 'POST', '/v1/services', { name: o.name, network: o.network, ports, endpointMode, scheduler })) as { ID: string };
    ctx.out(`${r.ID}\n`);
  },
});

const ls = command({
  name: 'service ls', aliases: ['service list'], summary: 'List services',
  options: LIST_OPTIONS,
  async run(ctx: Ctx, o) {
    const format = outputFormat(o.format);
    const rows = (await request(ctx.socket, 'GET', '/v1/services')) as Row[];
    if (o.quiet) return ctx.out(rows.map((r) => `${r.ID}\n`).join(''));
    if (format === 'json') return ctx.out(jsonLines(rows));
    ctx.out(table(['ID', 'NAME', 'MODE', 'REPLICAS', 'VIP', 'PORTS'], rows.map((r) => [r.ID, r.Name, r.Mode, r.Replicas, r.VIP || '-', r.Ports])));
  },
});

const inspect = command({
  name: 'service inspect', usage: 'SERVICE...', summary: 'Show services in detail (JSON)',
  async run(ctx: Ctx, _o, refs) {
    await inspectAll(ctx, refs, (ref) => svcPath(ref), 'service');
  },
});

const ps = command({
  name: 'service ps', usage: 'SERVICE', summary: 'List the tasks of a service (every host)',
  options: LIST_OPTIONS,
  async run(ctx: Ctx, o, [ref]) {
    const format = outputFormat(o.format);
    const rows = (await request(ctx.socket, 'GET', svcPath(ref, '/tasks'))) as TaskRow[];
    if (o.quiet) return ctx.out(rows.map((r) => `${r.ID}\n`).join(''));
    if (format === 'json') return ctx.out(jsonLines(rows));
    ctx.out(table(['ID', 'NAME', 'NODE', 'IP', 'CURRENT STATE', 'WEIGHT', 'CONNECTIONS'],
      rows.map((r) => [r.ID, r.Name, r.Node, r.IP, r.CurrentState, String(r.Weight), r.ActiveConnections === null ? '-' : String(r.ActiveConnections)])));
  },
});

const rm = command({
  name: 'service rm', aliases: ['service remove'], usage: 'SERVICE...', summary: 'Remove services (their VIPs are released; tasks stay connected as plain endpoints)',
  async run(ctx: Ctx, _o, refs) {
    await removeAll(ctx, refs, (ref) => svcPath(ref));
  },
});

const update = command({
  name: 'service update', usage: 'SERVICE', summary: 'Change the published ports or task weights of a service',
  options: {
    'publish-add': { type: 'string', multiple: true, value: 'PORT', help: `Add a published port (${PUBLISH_HELP.split(': ')[1]})` },
    'publish-rm': { type: 'string', multiple: true, value: 'PORT', help: 'Remove a published port: PUBLISHED[/tcp|/udp]' },
    'task-weight': { type: 'string', multiple: true, value: 'CONTAINER=N', help: 'Set a task\'s weight, 0-65535 (0 drains: no new connections, existing ones live on)' },
  },
  async run(ctx: Ctx, o, [ref]) {
    const body = {
      publishAdd: flag(parsePublish, o['publish-add']),
      publishRm: flag(parsePublishRm, o['publish-rm']).map((p) => (p.protocol ? `${p.published}/${p.protocol}` : String(p.published))),
      taskWeights: flag(parseTaskWeight, o['task-weight']),
    };
    await request(ctx.socket, 'POST', svcPath(ref, '/update'), body);
    ctx.out(`${ref}\n`);
  },
});

export const serviceCommands = [create, ls, inspect, ps, rm, update];
