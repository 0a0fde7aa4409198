// `tapmesh join-token` and `tapmesh key …`: the cluster keyring and its rotation.
import { newSecretFileText } from '../../gossip/index.js';
import { request, type Ctx } from '../client.js';
import { table } from '../format.js';
import { command } from '../table.js';

const ROTATION = 'Rotate without a partition: `key add` on every host, then `key use` on every host, then `key rm` of the old key on every host.';

const joinToken = command({
  name: 'join-token', summary: 'Print what another host needs to join this cluster',
  options: { quiet: { type: 'boolean', short: 'q', help: 'Only the token' } },
  async run(ctx: Ctx, o) {
    const r = (await request(ctx.socket, 'GET', '/v1/join-token')) as { Token: string; Addr: string };
    if (o.quiet) return ctx.out(`${r.Token}\n`);
    ctx.out(`To add a host to this cluster, put this token in a file (mode 0600) on it and run:\n\n` +
      `    tapmesh agent --advertise-addr <its address> --join ${r.Addr} --secret-file <that file>\n\n${r.Token}\n`);
  },
});

const ls = command({
  name: 'key ls', summary: 'List the cluster keys (the primary one marked *)',
  async run(ctx: Ctx) {
    const r = (await request(ctx.socket, 'GET', '/v1/keys')) as { Primary: string; Keys: string[] };
    ctx.out(table(['KEY ID', 'PRIMARY'], r.Keys.map((k) => [k, k === r.Primary ? '*' : ''])));
  },
});

const generate = command({
  name: 'key new', summary: 'Print a new cluster key (a secret file); needs no agent',
  async run(ctx: Ctx) {
    ctx.out(newSecretFileText());
  },
});

/** add, use, rm: one request each, the same shape. */
function step(sub: 'add' | 'use' | 'rm', usage: string, summary: string) {
  return command({
    name: `key ${sub}`, summary,
      usage,
    notes: ROTATION,
    async run(ctx: Ctx, _o, [key]) {
      await request(ctx.socket, 'POST', `/v1/keys/${sub}`, { key });
    },
  });
}

export const keyCommands = [
  joinToken, ls, generate,
  step('add', 'TOKEN', 'Add a key to the keyring (step 1 of a rotation)'),
  step('use', 'ID|TOKEN', 'Make a key the primary one (step 2)'),
  step('rm', 'ID|TOKEN', 'Remove a key (step 3)'),
];
