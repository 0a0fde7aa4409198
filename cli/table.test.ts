// The command table: parsing on node:util parseArgs, usage errors, and generated help.
import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  UsageError, argCounts, checkArgs, command, commandHelp, findCommand, groupHelp, parse, programHelp, runCommand, type Program,
} from './table.js';

const OPTS = {
  driver: { type: 'string', short: 'd', value: 'NAME', help: 'Driver' },
  opt: { type: 'string', short: 'o', multiple: true, value: 'KEY=VALUE', help: 'Option' },
  quiet: { type: 'boolean', short: 'q', help: 'Quiet' },
  port: { type: 'string', value: 'N', default: '4789', help: 'UDP port' },
  vtep: { type: 'string', value: 'ADDR', required: true, help: 'VTEP address' },
} as const;

function usageError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as Error).message;
  }
  throw new Error('expected a usage error');
}

describe('parse', () => {
  it('reads long, short, inline and grouped flags into typed values, with defaults', () => {
    const p = parse(['-qd', 'overlay', '--vtep=10.0.0.1', 'net1', '-o', 'a=b', '--opt', 'c=d'], OPTS, 'tapmesh x');
    expect(p.values).toEqual({ driver: 'overlay', opt: ['a=b', 'c=d'], quiet: true, port: '4789', vtep: '10.0.0.1' });
    expect(p.args).toEqual(['net1']);
    expect(p.argIndexes).toEqual([3]);
    expectTypeOf(p.values.driver).toEqualTypeOf<string | undefined>();
    expectTypeOf(p.values.opt).toEqualTypeOf<string[]>();
    expectTypeOf(p.values.quiet).toEqualTypeOf<boolean>();
    expectTypeOf(p.values.port).toEqualTypeOf<string>();
    expectTypeOf(p.values.vtep).toEqualTypeOf<string>();
  });

  it('gives absent booleans false and absent repeatables []', () => {
    const p = parse(['--vtep', '1.2.3.4'], OPTS, 'tapmesh x');
    expect(p.values).toEqual({ driver: undefined, opt: [], quiet: false, port: '4789', vtep: '1.2.3.4' });
  });

  it('collects repeated repeatable flags in order; the last of a plain flag wins', () => {
    const p = parse(['--vtep', 'a', '-o', '1', '--driver', 'x', '-o', '2', '-d', 'y', '--opt=3', '--vtep', 'b'], OPTS, 'tapmesh x');
    expect(p.values.opt).toEqual(['1', '2', '3']);
    expect(p.values.driver).toBe('y');
    expect(p.values.vtep).toBe('b');
  });

  it('takes the next word as a value even when it starts with a dash', () => {
    expect(parse(['--vtep', 'a', '--driver', '-x'], OPTS, 'tapmesh x').values.driver).toBe('-x');
  });

  it('treats everything after -- as arguments', () => {
    const p = parse(['--vtep', 'a', '--', '--quiet', '-d'], OPTS, 'tapmesh x');
    expect(p.args).toEqual(['--quiet', '-d']);
    expect(p.values.quiet).toBe(false);
  });

  it('refuses an unknown flag, pointing at the help', () => {
    expect(usageError(() => parse(['--bogus', 'x'], OPTS, 'tapmesh network create'))).toBe("unknown flag: --bogus (see 'tapmesh network create --help')");
    expect(usageError(() => parse(['--bogus=1'], OPTS, 'tapmesh x'))).toMatch(/^unknown flag: --bogus /);
    expect(usageError(() => parse(['-qz'], OPTS, 'tapmesh x'))).toMatch(/^unknown flag: -z /);
  });

  it('refuses a missing value, a value on a boolean and a missing required flag', () => {
    expect(usageError(() => parse(['--vtep', 'a', '--driver'], OPTS, 'tapmesh x'))).toBe('flag needs an argument: --driver');
    expect(usageError(() => parse(['--vtep', 'a', '-d'], OPTS, 'tapmesh x'))).toBe('flag needs an argument: -d');
    expect(usageError(() => parse(['--vtep', 'a', '--quiet=yes'], OPTS, 'tapmesh x'))).toBe('flag --quiet takes no value');
    expect(usageError(() => parse(['-q'], OPTS, 'tapmesh x'))).toBe('--vtep is required');
  });

  it('skips unknown flags and required checks when lenient, but still checks known ones', () => {
    const g = { socket: { type: 'string', short: 'H', value: 'PATH', help: 'Socket' } } as const;
    const p = parse(['network', '--subnet', 'x', '-H', '/s', 'ls'], g, 'tapmesh', true);
    expect(p.values.socket).toBe('/s');
    expect(p.args).toEqual(['network', 'x', 'ls']);
    expect(p.argIndexes).toEqual([0, 2, 5]);
    expect(usageError(() => parse(['network', '--socket'], g, 'tapmesh', true))).toBe('flag needs an argument: --socket');
  });
});

describe('checkArgs', () => {
  it('derives the counts from the usage string', () => {
    expect(argCounts('')).toEqual({ min: 0, max: 0 });
    expect(argCounts('NAME')).toEqual({ min: 1, max: 1 });
    expect(argCounts('NETWORK CONTAINER')).toEqual({ min: 2, max: 2 });
    expect(argCounts('[NETWORK]')).toEqual({ min: 0, max: 1 });
    expect(argCounts('NETWORK...')).toEqual({ min: 1, max: Infinity });
    expect(argCounts('[a|b]...')).toEqual({ min: 0, max: Infinity });
  });

  it('enforces exact, minimum and maximum counts with one-line messages', () => {
    expect(usageError(() => checkArgs([], 'NAME', 'tapmesh network create')))
      .toBe('"tapmesh network create" requires exactly 1 argument: NAME');
    expect(usageError(() => checkArgs(['a'], 'NETWORK CONTAINER', 'tapmesh network connect')))
      .toBe('"tapmesh network connect" requires exactly 2 arguments: NETWORK CONTAINER');
    expect(usageError(() => checkArgs([], 'NETWORK...', 'tapmesh network rm')))
      .toBe('"tapmesh network rm" requires at least 1 argument: NETWORK');
    expect(usageError(() => checkArgs(['a', 'b'], '[NETWORK]', 'tapmesh stats')))
      .toBe('"tapmesh stats" accepts at most 1 argument: NETWORK');
    expect(usageError(() => checkArgs(['x'], '', 'tapmesh node ls')))
      .toBe('"tapmesh node ls" accepts no arguments (got "x")');
    expect(() => checkArgs(['a', 'b', 'c'], 'NETWORK...', 'x')).not.toThrow();
    expect(() => checkArgs([], '[NETWORK]', 'x')).not.toThrow();
  });
});

describe('a program', () => {
  const calls: unknown[] = [];
  const create = command({
    name: 'net create', summary: 'Create a net', options: OPTS, usage: 'NAME', notes: 'Some notes.',
    async run(ctx: string, o, args) {
      calls.push([ctx, o.vtep, o.opt, args]);
      return 3;
    },
  });
  const ls = command({ name: 'net ls', aliases: ['net list'], summary: 'List nets', async run() {} });
  const version = command({ name: 'version', summary: 'Show the version', async run() {} });
  const prog: Program<string> = {
    name: 'tool', summary: 'A tool.', globals: { socket: { type: 'string', short: 'H', value: 'PATH', help: 'Socket path' } }, commands: [create, ls, version],
  };

  it('finds commands by one or two words, by alias, and groups', () => {
    expect(findCommand(prog, ['net', 'create', 'x'])).toMatchObject({ cmd: create, used: 2 });
    expect(findCommand(prog, ['net', 'list'])).toMatchObject({ cmd: ls, used: 2 });
    expect(findCommand(prog, ['version', 'x'])).toMatchObject({ cmd: version, used: 1 });
    expect(findCommand(prog, ['net', 'nope'])).toEqual({ used: 1, group: 'net' });
    expect(findCommand(prog, ['nope'])).toEqual({ used: 0 });
  });

  it('runs a command with its options and the globals merged, after checking its arguments', async () => {
    const code = await runCommand(prog, create, ['--vtep', 'v', 'n1', '-H', '/s', '-o', 'k=v'], (g) => `ctx:${String(g.socket)}`);
    expect(code).toBe(3);
    expect(calls.pop()).toEqual(['ctx:/s', 'v', ['k=v'], ['n1']]);
    await expect(runCommand(prog, create, ['--vtep', 'v'], () => '')).rejects.toThrow('"tool net create" requires exactly 1 argument: NAME');
    expect(await runCommand(prog, ls, [], () => '')).toBe(0);
  });

  it('generates command help from the declaration', () => {
    const h = commandHelp(prog, create);
    const lines = h.split('\n');
    expect(lines[0]).toBe('Usage: tool net create --vtep ADDR [OPTIONS] NAME');
    expect(lines[2]).toBe('Create a net');
    expect(h).toMatch(/^ {2}-d, --driver NAME +Driver$/m);
    expect(h).toMatch(/^ {2}-o, --opt KEY=VALUE +Option \(repeatable\)$/m);
    expect(h).toMatch(/^ {6}--port N +UDP port \(default 4789\)$/m);
    expect(h).toMatch(/^ {6}--vtep ADDR +VTEP address \(required\)$/m);
    expect(h).toMatch(/^Global options:\n {2}-H, --socket PATH +Socket path$/m);
    expect(h.trimEnd().endsWith('Some notes.')).toBe(true);
    expect(commandHelp(prog, ls)).toContain('Aliases: tool net list');
    expect(commandHelp(prog, version).split('\n')[0]).toBe('Usage: tool version');
  });

  it('generates group and program help listing every command', () => {
    const g = groupHelp(prog, 'net');
    expect(g.split('\n')[0]).toBe('Usage: tool net COMMAND');
    expect(g).toMatch(/^ {2}create +Create a net$/m);
    expect(g).toMatch(/^ {2}ls +List nets$/m);
    expect(g).not.toContain('version');
    const p = programHelp(prog);
    for (const c of prog.commands) expect(p).toMatch(new RegExp(`^  ${c.name} +${c.summary}$`, 'm'));
  });
});
