// Compact binary encoding of JSON-able values (table entry values, node meta).
//
// One tag byte per value: null, false, true, non-negative integer (varint), negative integer
// (varint of the magnitude), float64, string, array (count + items), object (count + key/value
// pairs, keys in insertion order). Integers are any safe integer except -0; everything else
// numeric is a float64. Depth is capped so a hostile blob cannot exhaust the stack.

import { MalformedError, Reader, Writer } from './buf.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const enum Tag {
  Null = 0,
  False = 1,
  True = 2,
  PosInt = 3,
  NegInt = 4,
  Float = 5,
  Str = 6,
  Arr = 7,
  Obj = 8,
}

export const MAX_VALUE_DEPTH = 32;

export function writeValue(w: Writer, v: JsonValue, depth = 0): void {
  if (depth > MAX_VALUE_DEPTH) throw new RangeError('value nested too deeply');
  if (v === null) w.u8(Tag.Null);
  else if (v === false) w.u8(Tag.False);
  else if (v === true) w.u8(Tag.True);
  else if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
      if (v >= 0) w.u8(Tag.PosInt).uint(v);
      else w.u8(Tag.NegInt).uint(-v);
    } else w.u8(Tag.Float).f64(v);
  } else if (typeof v === 'string') w.u8(Tag.Str).str(v);
  else if (Array.isArray(v)) {
    w.u8(Tag.Arr).uint(v.length);
    for (const x of v) writeValue(w, x, depth + 1);
  } else if (typeof v === 'object') {
    const keys = Object.keys(v);
    w.u8(Tag.Obj).uint(keys.length);
    for (const k of keys) {
      const x = v[k];
      if (x === undefined) throw new TypeError(`value of ${k} is undefined (not JSON-able)`);
      w.str(k);
      writeValue(w, x, depth + 1);
    }
  } else throw new TypeError(`not a JSON-able value: ${typeof v}`);
}

export function readValue(r: Reader, depth = 0): JsonValue {
  if (depth > MAX_VALUE_DEPTH) throw new MalformedError('value nested too deeply');
  const tag = r.u8();
  switch (tag) {
    case Tag.Null:
      return null;
    case Tag.False:
      return false;
    case Tag.True:
      return true;
    case Tag.PosInt:
      return r.uint();
    case Tag.NegInt: {
      const m = r.uint();
      if (m === 0) throw new MalformedError('negative zero integer');
      return -m;
    }
    case Tag.Float:
      return r.f64();
    case Tag.Str:
      return r.str(1 << 20);
    case Tag.Arr: {
      const n = r.count(1);
      const out: JsonValue[] = [];
      for (let i = 0; i < n; i++) out.push(readValue(r, depth + 1));
      return out;
    }
    case Tag.Obj: {
      const n = r.count(2);
      const out: { [key: string]: JsonValue } = {};
      for (let i = 0; i < n; i++) {
        const k = r.str();
        const v = readValue(r, depth + 1);
        // defineProperty: a key "__proto__" must stay an own data property, not a prototype.
        Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    default:
      throw new MalformedError(`unknown value tag ${tag}`);
  }
}

export function encodeValue(v: JsonValue): Uint8Array {
  const w = new Writer(64);
  writeValue(w, v);
  return w.finish();
}

export function decodeValue(b: Uint8Array): JsonValue {
  const r = new Reader(b);
  const v = readValue(r);
  r.end();
  return v;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
