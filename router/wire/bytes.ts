// Big-endian field access by direct byte math. No bounds checks (callers validate first with
// checkX / inBounds), no allocation, monomorphic over Uint8Array and Buffer.

/** Unsigned 16-bit big-endian at buf[i]. */
export function rd16(buf: Uint8Array, i: number): number {
  return (buf[i] << 8) | buf[i + 1];
}

/** Unsigned 32-bit big-endian at buf[i] (>>> 0, so 0..2^32-1). */
export function rd32(buf: Uint8Array, i: number): number {
  return ((buf[i] << 24) | (buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3]) >>> 0;
}

/** Signed 32-bit big-endian at buf[i] (-2^31..2^31-1): the int32 key form NumTable uses. */
export function rd32s(buf: Uint8Array, i: number): number {
  return (buf[i] << 24) | (buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3];
}

/** 48-bit big-endian at buf[i] as hi16 * 2^32 + lo32 (exact in a double). */
export function rd48(buf: Uint8Array, i: number): number {
  return ((buf[i] << 8) | buf[i + 1]) * 0x100000000 + rd32(buf, i + 2);
}

export function wr16(buf: Uint8Array, i: number, v: number): void {
  buf[i] = v >>> 8;
  buf[i + 1] = v;
}

export function wr32(buf: Uint8Array, i: number, v: number): void {
  buf[i] = v >>> 24;
  buf[i + 1] = v >>> 16;
  buf[i + 2] = v >>> 8;
  buf[i + 3] = v;
}

/** Writes a 48-bit number (0..2^48-1) big-endian at buf[i]. */
export function wr48(buf: Uint8Array, i: number, v: number): void {
  wr16(buf, i, (v / 0x100000000) | 0);
  wr32(buf, i + 2, v >>> 0);
}

/**
 * a[ai, ai+n) equals b[bi, bi+n). For the few bytes of a header (TCP options), where
 * Buffer.compare's argument checks cost more than the comparison.
 */
export function sameBytes(a: Uint8Array, ai: number, b: Uint8Array, bi: number, n: number): boolean {
  for (let k = 0; k < n; k++) if (a[ai + k] !== b[bi + k]) return false;
  return true;
}
