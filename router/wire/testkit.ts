// Test support for the router/wire codec tests (no test-framework imports, so it type-checks
// and builds like any other module). Not used by the datapath.
import { WireParseError } from './error.js';

/** Thrown by a guarded() buffer when code under test touches a byte outside the allowed window. */
export class OutOfRangeAccess extends Error {
  constructor(what: string) {
    super(what);
    this.name = 'OutOfRangeAccess';
  }
}

/**
 * A Proxy over buf that behaves like it for indexing and `.length`, but throws OutOfRangeAccess
 * on any read of an index outside [lo, hi) (including negative, fractional or NaN indices) and on
 * any write. Lets tests prove that check/parse/flowHash read only buf[off, off+len).
 */
export function guarded(buf: Uint8Array, lo: number, hi: number): Uint8Array {
  return new Proxy(buf, {
    get(target, prop) {
      if (typeof prop === 'string' && (String(Number(prop)) === prop || prop === '-0')) {
        const i = Number(prop);
        if (!(Number.isInteger(i) && i >= lo && i < hi)) {
          throw new OutOfRangeAccess(`read of [${prop}] outside [${lo}, ${hi})`);
        }
        return target[i];
      }
      return Reflect.get(target, prop, target);
    },
    set(_target, prop) {
      throw new OutOfRangeAccess(`write of [${String(prop)}] through a read-only guard`);
    },
  });
}

export type Outcome<T> = { ok: true; value: T } | { ok: false; reason: number };

/** Runs a parse; WireParseError becomes {ok:false, reason}; any other exception propagates. */
export function attempt<T>(fn: () => T): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (e instanceof WireParseError) return { ok: false, reason: e.reason };
    throw e;
  }
}

/**
 * Reference internet checksum written the textbook way (RFC 1071 §4.1: add 16-bit words with
 * end-around carry after every addition, complement at the end), independent of checksum.ts.
 * `extra` are 16-bit words prepended (pseudo-header).
 */
export function refChecksum(bytes: ArrayLike<number>, extra: readonly number[] = []): number {
  let sum = 0;
  const add = (w: number): void => {
    sum += w;
    if (sum > 0xffff) sum = (sum & 0xffff) + 1;
  };
  for (const w of extra) add(w);
  for (let i = 0; i < bytes.length; i += 2) add((bytes[i] << 8) | (i + 1 < bytes.length ? bytes[i + 1] : 0));
  return ~sum & 0xffff;
}

/** Pseudo-header words for refChecksum. */
export function pseudoWords(src: number, dst: number, proto: number, len: number): number[] {
  return [src >>> 16, src & 0xffff, dst >>> 16, dst & 0xffff, proto, len];
}

/** Copies `pkt` into a fresh buffer of pre + pkt.length + post bytes filled with `fill`. */
export function embed(pkt: Uint8Array, pre: number, post: number, fill = 0xa5): Uint8Array {
  const b = new Uint8Array(pre + pkt.length + post).fill(fill);
  b.set(pkt, pre);
  return b;
}

/** Bytes from a hex string; whitespace ignored. */
export function hex(s: string): Uint8Array {
  const t = s.replace(/\s+/g, '');
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(t.slice(2 * i, 2 * i + 2), 16);
  return out;
}
