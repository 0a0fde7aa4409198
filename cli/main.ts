// `tapmesh`: the command line. `agent` runs the daemon; every other command is a client of the
// agent's API on its unix socket (--socket PATH or TAPMESH_SOCKET). The commands are declared
// in cli/commands/ on the table mechanism of cli/table.ts; this file only dispatches.
import { pathToFileURL } from 'node:url';
import { agentCommands } from './commands/agent.js';
import { keyCommands } from './commands/key.js';
import { networkCommands } from './commands/network.js';
import { nodeCommands } from './commands/node.js';
import { serviceCommands } from './commands/service.js';
import { statsCommands } from './commands/stats.js';
import { DEFAULT_SOCKET, DaemonError, NotRunningError, type Ctx } from './client.js';
import {
  UsageError, command, commandHelp, findCommand, groupHelp, parse, programHelp, runCommand, subcommands, type Program,
} from './table.js';
import { VERSION } from './version.js';

const out = (s: string) => void process.stdout.write(s);

const GLOBALS = {
  socket: { type: 'string', short: 'H', value: 'PATH', help: `Agent API socket (default $TAPMESH_SOCKET or ${DEFAULT_SOCKET})` },
  help: { type: 'boolean', short: 'h', help: 'Show help' },
} as const;

/** The help text for `words` (a command, a group, or nothing: the whole program). */
function helpFor(words: string[]): string {
  const { cmd, group, used } = findCommand(PROGRAM, words);
  if (cmd) return commandHelp(PROGRAM, cmd);
  if (group) return groupHelp(PROGRAM, group);
  if (used === 0 && words.length > 0) throw new UsageError(`unknown command "${words.join(' ')}" (see 'tapmesh --help')`);
  return programHelp(PROGRAM);
}

const help = command({
  name: 'help', usage: '[COMMAND]...', summary: 'Show help for a command',
  async run(ctx: Ctx, _o, words) {
    ctx.out(helpFor(words));
  },
});

const version = command({
  name: 'version', summary: 'Show the version',
  async run(ctx: Ctx) {
    ctx.out(`tapmesh ${VERSION}\n`);
  },
});

const PROGRAM: Program<Ctx> = {
  name: 'tapmesh',
  summary: 'A userspace overlay network router for container hosts.',
  globals: GLOBALS,
  commands: [...agentCommands, ...networkCommands, ...serviceCommands, ...nodeCommands, ...keyCommands, ...statsCommands, help, version],
};

export async function main(argv: string[]): Promise<number> {
  // First pass, global options only: where the command words are, and whether help is wanted
  // (`--help` anywhere shows the help of the command it follows).
  const pre = parse(argv, GLOBALS, 'tapmesh', true);
  const found = findCommand(PROGRAM, pre.args);
  const words = pre.args.slice(0, found.used);
  if (pre.values.help || pre.args.length === 0) {
    out(found.cmd || found.group ? helpFor(words) : programHelp(PROGRAM));
    return pre.values.help ? 0 : 1;
  }
  if (found.group) {
    const subs = subcommands(PROGRAM, found.group);
    if (pre.args.length < 2) throw new UsageError(`"tapmesh ${found.group}" requires a subcommand: ${subs.join(', ')}`);
    throw new UsageError(`unknown command "${found.group} ${pre.args[1]}" (see 'tapmesh ${found.group} --help')`);
  }
  if (!found.cmd) throw new UsageError(`unknown command "${pre.args[0]}" (see 'tapmesh --help')`);
  const skip = new Set(pre.argIndexes.slice(0, found.used));
  const rest = argv.filter((_, i) => !skip.has(i));
  return runCommand(PROGRAM, found.cmd, rest, (g) => ({ socket: (g.socket as string | undefined) ?? process.env.TAPMESH_SOCKET ?? DEFAULT_SOCKET, out }));
}

export function runCli(argv: string[]): void {
  main(argv).then(
    (code) => {
      if (code >= 0) process.exitCode = code;
    },
    (e: Error) => {
      if (e instanceof UsageError) process.stderr.write(`tapmesh: ${e.message}\n`);
      else if (e instanceof DaemonError) process.stderr.write(`Error response from agent: ${e.message}\n`);
      else if (e instanceof NotRunningError) process.stderr.write(`${e.message}\n`);
      else process.stderr.write(`tapmesh: ${e.message.split('\n')[0]}\n`);
      // exit() rather than exitCode: a half-started agent may hold a worker thread open.
      process.exit(e instanceof UsageError ? 2 : 1);
    },
  );
}

// `node dist/cli/main.js …` runs it as bin/tapmesh does.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) runCli(process.argv.slice(2));
