// A small, strict argument parser: known flags only, `--flag value` or `--flag=value`,
// repeatable flags collect into arrays, and anything unexpected is a one-line usage error.
export class UsageError extends Error {}

export interface FlagSpec {
  /** Long name without dashes, e.g. "subnet". */
  name: string;
  short?: string;
  kind: 'string' | 'bool' | 'multi';
}

export interface Parsed {
  flags: Map<string, string | boolean | string[]>;
  positional: string[];
}

export function parseArgs(argv: string[], specs: FlagSpec[], command: string): Parsed {
  const byName = new Map<string, FlagSpec>();
  for (const s of specs) {
    byName.set(`--${s.name}`, s);
    if (s.short) byName.set(`-${s.short}`, s);
  }
  const flags = new Map<string, string | boolean | string[]>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const key = eq > 0 && a.startsWith('--') ? a.slice(0, eq) : a;
    const spec = byName.get(key);
    if (!spec) throw new UsageError(`unknown flag: ${key} (see 'tapmesh ${command} --help')`);
    if (spec.kind === 'bool') {
      if (eq > 0) throw new UsageError(`flag ${key} takes no value`);
      flags.set(spec.name, true);
      continue;
    }
    let value: string;
    if (eq > 0) value = a.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: ${key}`);
      value = argv[++i];
    }
    if (spec.kind === 'multi') {
      const prev = (flags.get(spec.name) as string[] | undefined) ?? [];
      prev.push(value);
      flags.set(spec.name, prev);
    } else {
      flags.set(spec.name, value);
    }
  }
  return { flags, positional };
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function multi(p: Parsed, name: string): string[] {
  const v = p.flags.get(name);
  return Array.isArray(v) ? v : [];
}

export function bool(p: Parsed, name: string): boolean {
  return p.flags.get(name) === true;
}

/** KEY=VALUE list → object (for --opt, --label, --filter). */
export function keyValues(items: string[], flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const it of items) {
    const eq = it.indexOf('=');
    if (eq === 0) throw new UsageError(`invalid ${flag} "${it}": expected KEY=VALUE`);
    if (eq < 0) out[it] = '';
    else out[it.slice(0, eq)] = it.slice(eq + 1);
  }
  return out;
}

export function port(v: string, flag: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw new UsageError(`invalid ${flag} "${v}": expected a port 1-65535`);
  return Number(v);
}
