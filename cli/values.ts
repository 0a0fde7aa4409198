// Option values that need more than a string: KEY=VALUE lists, ports, bounded integers, IPv4
// addresses. Each failure is a one-line usage error naming the flag.
import { isIpv4 } from '../router/wire/addr.js';
import { UsageError } from './table.js';

/** KEY=VALUE list → object (for --opt, --label). */
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

/** An integer in [min, max], or the usage error `message`. */
export function integer(v: string, min: number, max: number, message: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw new UsageError(message);
  return n;
}

export function ipv4(v: string, flag: string): string {
  if (!isIpv4(v)) throw new UsageError(`invalid ${flag} "${v}": expected an IPv4 address`);
  return v;
}

/** One of `choices`, or a usage error listing them. */
export function oneOf<T extends string>(v: string, choices: readonly T[], flag: string): T {
  if ((choices as readonly string[]).includes(v)) return v as T;
  const list = choices.length > 1 ? `${choices.slice(0, -1).join(', ')} or ${choices[choices.length - 1]}` : choices.join('');
  throw new UsageError(`invalid ${flag} "${v}" (${list})`);
}

/** A duration such as 500ms, 5s, 2m or 1h → milliseconds. */
export function duration(v: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim());
  if (!m) throw new UsageError(`invalid ${flag} "${v}": expected a duration such as 5s, 500ms or 2m`);
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h']);
}
