// The command table: each command is declared once (name, options, usage, run) and everything
// else is derived from that declaration: parsing on node:util parseArgs, usage errors, and the
// help text. Used by `tapmesh` (cli/main.ts) and the bench (bench/main.ts).
import { parseArgs } from 'node:util';

/** Bad command-line input: printed as one line, exit status 2. */
export class UsageError extends Error {}

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** Repeatable: every occurrence is collected (otherwise the last one wins). */
  multiple?: boolean;
  /** Absence is a usage error (`--vtep is required`). */
  required?: boolean;
  /** Applied when absent, and shown in the help. */
  default?: string;
  /** Placeholder in the help and usage line: `--subnet CIDR`. */
  value?: string;
  /** Meaning, with the unit where the value has one. */
  help: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

type ValueOf<S extends OptionSpec> = S['type'] extends 'boolean' ? boolean
  : S['multiple'] extends true ? string[]
    : S extends { default: string } | { required: true } ? string : string | undefined;

/** The parsed options, keyed by long name: booleans are false when absent, repeatables []. */
export type Values<O extends OptionSpecs> = { [K in keyof O]: ValueOf<O[K]> };

export interface Command<C, O extends OptionSpecs = OptionSpecs> {
  /** One or two words: `stats`, `network create`; '' for a program with a single command. */
  name: string;
  aliases?: string[];
  /** One line, for the command list. */
  summary: string;
  /** Flags; none when absent. */
  options?: O;
  /**
   * The positional arguments as the usage line shows them; their counts are derived from it:
   * `NAME` one, `NETWORK CONTAINER` two, `[NETWORK]` at most one, `NETWORK...` at least one.
   * None when absent.
   */
  usage?: string;
  /** More help text after the options (value formats, examples). */
  notes?: string;
  /** A number is the exit status (-1: keep running); nothing means 0. */
  run(ctx: C, opts: Values<O>, args: string[]): Promise<number | void>;
}

/** Identity, so that `run` sees the option types of its own declaration. */
export function command<C, O extends OptionSpecs>(c: Command<C, O>): Command<C, O> {
  return c;
}

export interface Program<C> {
  /** How users invoke it: `tapmesh`, `node dist/bench/main.js`. */
  name: string;
  summary: string;
  /** Accepted anywhere on the command line, by every command. */
  globals: OptionSpecs;
  commands: Command<C, OptionSpecs>[];
}

export interface Parsed<O extends OptionSpecs> {
  values: Values<O>;
  args: string[];
  /** argv indexes of `args` (to take command words out of argv). */
  argIndexes: number[];
}

/**
 * Parse argv against `options`. `helpRef` names the help to point at in errors. With `lenient`,
 * unknown flags are skipped (the first pass over a whole command line, which knows only the
 * global options); known ones are checked either way.
 */
export function parse<O extends OptionSpecs>(argv: string[], options: O, helpRef: string, lenient = false): Parsed<O> {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const [name, s] of Object.entries(options)) config[name] = s.short ? { type: s.type, short: s.short } : { type: s.type };
  // strict: false and tokens, so that the errors are ours: one line each, naming the help.
  const { tokens } = parseArgs({ args: argv, options: config, strict: false, allowPositionals: true, tokens: true });
  const values: Record<string, string | boolean | string[] | undefined> = {};
  const args: string[] = [];
  const argIndexes: number[] = [];
  for (const t of tokens) {
    if (t.kind === 'positional') {
      args.push(t.value);
      argIndexes.push(t.index);
      continue;
    }
    if (t.kind !== 'option') continue;
    const spec = Object.hasOwn(options, t.name) ? options[t.name] : undefined;
    if (!spec) {
      if (lenient) continue;
      throw new UsageError(`unknown flag: ${t.rawName} (see '${helpRef} --help')`);
    }
    if (spec.type === 'boolean') {
      if (t.inlineValue) throw new UsageError(`flag ${t.rawName} takes no value`);
      values[t.name] = true;
    } else if (t.value === undefined) {
      throw new UsageError(`flag needs an argument: ${t.rawName}`);
    } else if (spec.multiple) {
      ((values[t.name] ??= []) as string[]).push(t.value);
    } else {
      values[t.name] = t.value;
    }
  }
  for (const [name, s] of Object.entries(options)) {
    if (values[name] !== undefined) continue;
    if (s.required && !lenient) throw new UsageError(`--${name} is required`);
    values[name] = s.type === 'boolean' ? false : s.multiple ? [] : s.default;
  }
  return { values: values as Values<O>, args, argIndexes };
}

/** How many positional arguments a usage string admits. */
export function argCounts(usage: string): { min: number; max: number } {
  const words = usage.split(/\s+/).filter(Boolean);
  const min = words.filter((w) => !w.startsWith('[')).length;
  return { min, max: words.some((w) => w.endsWith('...')) ? Infinity : words.length };
}

/** The one-line errors for a wrong number of positional arguments. */
export function checkArgs(args: string[], usage: string, who: string): void {
  const { min, max } = argCounts(usage);
  const what = usage.replace(/[[\]]|\.\.\./g, '');
  const n = (k: number) => `${k} argument${k === 1 ? '' : 's'}`;
  if (args.length > max) {
    if (max === 0) throw new UsageError(`"${who}" accepts no arguments (got "${args[0]}")`);
    throw new UsageError(`"${who}" accepts at most ${n(max)}: ${what}`);
  }
  if (args.length < min) {
    if (min === max) throw new UsageError(`"${who}" requires exactly ${n(min)}: ${what}`);
    throw new UsageError(`"${who}" requires at least ${n(min)}: ${what}`);
  }
}

/** Find the command named by the first one or two words; `group` when only a group matched. */
export function findCommand<C>(p: Program<C>, words: string[]): { cmd?: Command<C, OptionSpecs>; used: number; group?: string } {
  const named = (c: Command<C, OptionSpecs>, n: string) => c.name === n || (c.aliases ?? []).includes(n);
  if (words.length >= 2) {
    const cmd = p.commands.find((c) => named(c, `${words[0]} ${words[1]}`));
    if (cmd) return { cmd, used: 2 };
  }
  if (words.length >= 1) {
    const cmd = p.commands.find((c) => named(c, words[0]));
    if (cmd) return { cmd, used: 1 };
    if (p.commands.some((c) => c.name.startsWith(`${words[0]} `))) return { used: 1, group: words[0] };
  }
  return { used: 0 };
}

/** Subcommand names of a group (`network` → create, ls, …), in table order. */
export function subcommands<C>(p: Program<C>, group: string): string[] {
  return p.commands.filter((c) => c.name.startsWith(`${group} `)).map((c) => c.name.slice(group.length + 1));
}

/** Run one command: parse its options (and the globals), check its arguments, call it. */
export async function runCommand<C>(p: Program<C>, cmd: Command<C, OptionSpecs>, argv: string[], ctx: (globals: Values<OptionSpecs>) => C): Promise<number> {
  const who = [p.name, cmd.name].filter(Boolean).join(' ');
  const { values, args } = parse(argv, { ...p.globals, ...cmd.options }, who);
  checkArgs(args, cmd.usage ?? '', who);
  const code = await cmd.run(ctx(values), values, args);
  return code ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Help, generated from the declarations.

function flagText(name: string, s: OptionSpec): string {
  return `--${name}${s.type === 'string' ? ` ${s.value ?? 'VALUE'}` : ''}`;
}

function optionLines(options: OptionSpecs): string[] {
  const rows = Object.entries(options).map(([name, s]) => {
    const left = `${s.short ? `-${s.short}, ` : '    '}${flagText(name, s)}`;
    const extra = [s.multiple ? 'repeatable' : '', s.default !== undefined ? `default ${s.default}` : '', s.required ? 'required' : ''].filter(Boolean);
    return [left, `${s.help}${extra.length ? ` (${extra.join('; ')})` : ''}`];
  });
  const w = Math.max(0, ...rows.map(([l]) => l.length));
  return rows.map(([l, r]) => `  ${l.padEnd(w)}  ${r}`);
}

function usageLine<C>(p: Program<C>, cmd: Command<C, OptionSpecs>): string {
  const options: OptionSpecs = cmd.options ?? {};
  const required = Object.entries(options).filter(([, s]) => s.required).map(([n, s]) => flagText(n, s));
  const optional = Object.values(options).some((s) => !s.required);
  return ['Usage:', p.name, cmd.name, ...required, optional ? '[OPTIONS]' : '', cmd.usage ?? ''].filter(Boolean).join(' ');
}

export function commandHelp<C>(p: Program<C>, cmd: Command<C, OptionSpecs>): string {
  const lines = [usageLine(p, cmd), '', cmd.summary];
  if (cmd.aliases?.length) lines.push(`Aliases: ${cmd.aliases.map((a) => `${p.name} ${a}`).join(', ')}`);
  if (cmd.options && Object.keys(cmd.options).length) lines.push('', 'Options:', ...optionLines(cmd.options));
  if (Object.keys(p.globals).length) lines.push('', 'Global options:', ...optionLines(p.globals));
  if (cmd.notes) lines.push('', cmd.notes.trimEnd());
  return `${lines.join('\n')}\n`;
}

function commandList<C>(cmds: Command<C, OptionSpecs>[], prefix = ''): string[] {
  const rows = cmds.map((c) => [c.name.slice(prefix.length), c.summary]);
  const w = Math.max(0, ...rows.map(([l]) => l.length));
  return rows.map(([l, r]) => `  ${l.padEnd(w)}  ${r}`);
}

export function groupHelp<C>(p: Program<C>, group: string): string {
  const cmds = p.commands.filter((c) => c.name.startsWith(`${group} `));
  return [`Usage: ${p.name} ${group} COMMAND`, '', 'Commands:', ...commandList(cmds, `${group} `), '',
    `Run '${p.name} ${group} COMMAND --help' for more information on a command.`, ''].join('\n');
}

export function programHelp<C>(p: Program<C>): string {
  return [`Usage: ${p.name} [OPTIONS] COMMAND`, '', p.summary, '', 'Commands:', ...commandList(p.commands), '',
    'Global options:', ...optionLines(p.globals), '', `Run '${p.name} COMMAND --help' for more information on a command.`, ''].join('\n');
}
