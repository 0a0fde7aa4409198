// Docker-shaped output: aligned tables (3-space gutters) and one JSON object per line, and the
// options every listing command shares (-q, --format).
import { UsageError, type OptionSpec } from './table.js';

export const FORMAT_OPTION = { type: 'string', value: 'json|table', help: 'Output format: table, or json (one JSON object per line)' } as const satisfies OptionSpec;

/** What Docker's listings take: `-q` for IDs only, and --format. */
export const LIST_OPTIONS = {
  quiet: { type: 'boolean', short: 'q', help: 'Only IDs' },
  format: FORMAT_OPTION,
} as const satisfies Record<string, OptionSpec>;

export function outputFormat(v: string | undefined): 'table' | 'json' {
  if (v === undefined || v === 'table') return 'table';
  if (v === 'json') return 'json';
  throw new UsageError(`unsupported --format "${v}" (use json or table)`);
}

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] + 3))).join('').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

export function jsonLines(items: unknown[]): string {
  return items.map((i) => JSON.stringify(i)).join('\n') + (items.length ? '\n' : '');
}

export function humanBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let u = 0;
  let v = n;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${v}B` : `${v.toFixed(v < 10 ? 2 : 1)}${units[u]}`;
}
