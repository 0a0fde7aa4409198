// RFC 1071 internet checksum and helpers (RFC 1624 incremental update, IPv4 pseudo-header).
//
// Vocabulary used throughout router/wire:
// - a "sum" is the folded 16-bit one's-complement sum of big-endian 16-bit words (0..0xffff);
// - a "checksum" is the complement of a sum, the value stored in a header field.
// Data whose checksum field is correct sums to 0xffff, i.e. checksum(...) over it returns 0.

/**
 * Folded one's-complement sum of buf[off, off+len) as big-endian 16-bit words, plus `initial`
 * (a non-negative integer, typically a pseudo-header sum). An odd trailing byte is padded with
 * zero, so when chaining calls only the last chunk may have odd length.
 *
 * Works 8 bytes per iteration: the sum of words b0b1 + b2b3 + ... equals
 * 256 * (b0 + b2 + ...) + (b1 + b3 + ...), so high and low bytes are accumulated separately in
 * small integers and combined once at the end; no per-word carry handling is needed.
 * Does not bounds-check: the caller guarantees the range is inside buf.
 */
export function onesSum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  // Long runs go to the addon when one is installed (useNativeSum), else word-wise in JS.
  if (len >= NATIVE_MIN_LEN && nativeSum !== null) return nativeSum(buf, off, len, initial);
  if (len >= 64 && len < 1 << 22 && LITTLE_ENDIAN && ((buf.byteOffset + off) & 1) === 0) {
    return fold(wordSum(buf, off, len) + initial);
  }
  return onesSumBytes(buf, off, len, initial);
}

/** The addon's csumSum (native/checksum.cc), same contract as onesSum; null = JS only. */
export type SumFn = (buf: Uint8Array, off: number, len: number, initial: number) => number;
/** The addon's csumBatch (native/checksum.cc), same contract as fillChecksums; null = JS. */
export type BatchFn = (buf: Uint8Array, offs: Int32Array, lens: Int32Array, seeds: Uint32Array, count: number, fieldAt: number) => number;
let nativeSum: SumFn | null = null;
let nativeBatch: BatchFn | null = null;
/**
 * Below this length the JS loop beats the JS->C++ crossing (bench/csum.ts: the crossing costs
 * about as much as summing ~100 bytes in JS).
 */
export const NATIVE_MIN_LEN = 128;

/**
 * Route long sums through `fn` (the addon's csumSum), or back to JS with null. Called once at
 * start-up by the native ports (router/native-ports.ts); the in-memory path and unit tests keep
 * the JS loop unless they opt in. Returns the previous function.
 */
export function useNativeSum(fn: SumFn | null, batch: BatchFn | null = null): SumFn | null {
  const prev = nativeSum;
  nativeSum = fn;
  nativeBatch = fn === null ? null : batch;
  return prev;
}

/**
 * For i < count: zero the 16-bit field at offs[i]+fieldAt, then store there the checksum of
 * buf[offs[i], +lens[i]) seeded with seeds[i] (e.g. every TCP segment a segmentation cut, seeded
 * with its pseudo-header sum, fieldAt 16). One addon crossing for the whole batch when installed.
 * The caller guarantees every range and field lies inside buf.
 */
export function fillChecksums(buf: Uint8Array, offs: Int32Array, lens: Int32Array, seeds: Uint32Array, count: number, fieldAt: number): void {
  if (nativeBatch !== null) {
    nativeBatch(buf, offs, lens, seeds, count, fieldAt);
    return;
  }
  for (let i = 0; i < count; i++) {
    const o = offs[i];
    buf[o + fieldAt] = 0;
    buf[o + fieldAt + 1] = 0;
    const c = ~onesSum(buf, o, lens[i], seeds[i]) & 0xffff;
    buf[o + fieldAt] = c >>> 8;
    buf[o + fieldAt + 1] = c;
  }
}

/**
 * True if for every i < count the sum of buf[offs[i], +lens[i]) seeded with seeds[i] is 0xffff
 * (each range holds a correct checksum: verification). Overwrites seeds with the sums. One addon
 * crossing for the whole batch when installed. The caller guarantees every range lies inside buf.
 */
export function sumsVerify(buf: Uint8Array, offs: Int32Array, lens: Int32Array, seeds: Uint32Array, count: number): boolean {
  if (nativeBatch !== null) nativeBatch(buf, offs, lens, seeds, count, -1);
  else for (let i = 0; i < count; i++) seeds[i] = onesSum(buf, offs[i], lens[i], seeds[i]);
  for (let i = 0; i < count; i++) if (seeds[i] !== 0xffff) return false;
  return true;
}

/** True when onesSum uses the addon for long ranges. */
export function nativeSumActive(): boolean {
  return nativeSum !== null;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const u32Views = new WeakMap<ArrayBufferLike, Uint32Array>();

/** A Uint32Array over the whole ArrayBuffer behind buf, made once per buffer (slabs live long). */
function u32Of(buf: Uint8Array): Uint32Array {
  const ab = buf.buffer;
  let v = u32Views.get(ab);
  if (v === undefined) {
    v = new Uint32Array(ab, 0, ab.byteLength >>> 2);
    u32Views.set(ab, v);
  }
  return v;
}

/**
 * One's-complement sum of an even-aligned range read as little-endian 32-bit words. RFC 1071
 * §2(B): summing byte-swapped words gives the byte-swapped sum, and 2^16 ≡ 1 (mod 0xffff) lets
 * 32-bit words be added whole. Returns the big-endian 16-bit sum. Allocation-free.
 */
function wordSum(buf: Uint8Array, off: number, len: number): number {
  let s = 0;
  let i = off;
  let rest = len;
  if (((buf.byteOffset + i) & 2) !== 0) {
    s += buf[i] | (buf[i + 1] << 8);
    i += 2;
    rest -= 2;
  }
  const v = u32Of(buf);
  let w = (buf.byteOffset + i) >>> 2;
  const words = rest >>> 2;
  const end4 = w + (words & ~3);
  while (w < end4) {
    s += v[w] + v[w + 1] + v[w + 2] + v[w + 3];
    w += 4;
  }
  const end = (buf.byteOffset + i) / 4 + words;
  while (w < end) s += v[w++];
  i += words * 4;
  rest -= words * 4;
  if (rest >= 2) {
    s += buf[i] | (buf[i + 1] << 8);
    i += 2;
    rest -= 2;
  }
  if (rest === 1) s += buf[i]; // a trailing byte is the high byte of a zero-padded word
  const le = fold(s);
  return ((le & 0xff) << 8) | (le >>> 8);
}

/** The byte-wise sum (any alignment); onesSum's reference and fallback. */
export function onesSumBytes(buf: Uint8Array, off: number, len: number, initial = 0): number {
  let hi = 0;
  let lo = 0;
  let i = off;
  const end8 = off + (len - (len & 7));
  while (i < end8) {
    hi += buf[i] + buf[i + 2] + buf[i + 4] + buf[i + 6];
    lo += buf[i + 1] + buf[i + 3] + buf[i + 5] + buf[i + 7];
    i += 8;
  }
  const end2 = off + (len - (len & 1));
  while (i < end2) {
    hi += buf[i];
    lo += buf[i + 1];
    i += 2;
  }
  if (len & 1) hi += buf[i];
  return fold(hi * 256 + lo + initial);
}

/** Folds any non-negative integer below 2^53 to a 16-bit one's-complement sum. */
export function fold(sum: number): number {
  while (sum > 0xffff) {
    sum = sum > 0xffffffff ? (sum % 0x10000) + Math.floor(sum / 0x10000) : (sum & 0xffff) + (sum >>> 16);
  }
  return sum;
}

/**
 * Internet checksum of buf[off, off+len) seeded with `initial` (see onesSum): the value to store
 * in a checksum field that was zero while summing. Over data that already contains a correct
 * checksum field it returns 0, which is how verification is done.
 */
export function checksum(buf: Uint8Array, off: number, len: number, initial = 0): number {
  return ~onesSum(buf, off, len, initial) & 0xffff;
}

/**
 * Sum of the IPv4 pseudo-header used by UDP and TCP (RFC 768 / RFC 793): source, destination
 * (host-order u32), zero, protocol, and the transport length. Pass as `initial` to checksum().
 */
export function ipv4PseudoSum(src: number, dst: number, protocol: number, l4Len: number): number {
  return fold((src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + l4Len);
}

/**
 * RFC 1624 eqn. 3: new checksum after one 16-bit word covered by `csum` changes from oldWord to
 * newWord. Never allocates; use it to patch TTL, ICMP type or addresses in place.
 */
export function checksumUpdate16(csum: number, oldWord: number, newWord: number): number {
  let s = (~csum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** checksumUpdate16 for a 32-bit field (e.g. an IPv4 address), both halves at once. */
export function checksumUpdate32(csum: number, oldValue: number, newValue: number): number {
  const c = checksumUpdate16(csum, oldValue >>> 16, newValue >>> 16);
  return checksumUpdate16(c, oldValue & 0xffff, newValue & 0xffff);
}
