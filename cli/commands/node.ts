// `tapmesh node …`: the hosts of the cluster, as gossip sees them.
import { request, type Ctx } from '../client.js';
import { LIST_OPTIONS, jsonLines, outputFormat, table } from '../format.js';
import { command } from '../table.js';

type NodeReply = { ID: string; Hostname: string; Status: string; Addr: string; Self: boolean };

const ls = command({
  name: 'node ls', aliases: ['node list'], summary: 'List the hosts of the cluster (gossip membership)',
  options: LIST_OPTIONS,
  async run(ctx: Ctx, o) {
    const format = outputFormat(o.format);
    const nodes = ((await request(ctx.socket, 'GET', '/v1/nodes')) as NodeReply[]).sort((a, b) => a.Hostname.localeCompare(b.Hostname));
    if (o.quiet) return ctx.out(nodes.map((n) => `${n.ID}\n`).join(''));
    if (format === 'json') return ctx.out(jsonLines(nodes.map((n) => ({ ID: n.ID, Hostname: n.Hostname, Status: n.Status, Addr: n.Addr, Self: n.Self }))));
    ctx.out(table(['ID', 'HOSTNAME', 'STATUS', 'ADDR'], nodes.map((n) => [`${n.ID}${n.Self ? ' *' : ''}`, n.Hostname, n.Status, n.Addr])));
  },
});

const inspect = command({
  name: 'node inspect', usage: 'NODE...', summary: 'Show hosts of the cluster in detail (JSON)',
  async run(ctx: Ctx, _o, refs) {
    const out: unknown[] = [];
    for (const ref of refs) out.push(await request(ctx.socket, 'GET', `/v1/nodes/${encodeURIComponent(ref)}`));
    ctx.out(`${JSON.stringify(out, null, 4)}\n`);
  },
});

export const nodeCommands = [ls, inspect];
