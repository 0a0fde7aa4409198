// Batched copies inside one slab. A TSO segmentation copies two ranges per segment (the headers,
// then a payload chunk); through Buffer.copyWithin each is a C++ builtin entered via V8's runtime,
// ~200 instructions before the memmove. With the addon installed (the native ports do it, once
// per thread) one crossing copies them all; unit tests and the in-memory path keep copyWithin.
// Hot path: nothing here allocates.

/** The addon's copyBatch (native/copy.cc), same contract as copyRanges. */
export type CopyFn = (buf: Uint8Array, src: Int32Array, dst: Int32Array, lens: Int32Array, count: number) => number;
let nativeCopy: CopyFn | null = null;

/** Route copyRanges through `fn` (the addon's copyBatch), or back to copyWithin with null. Returns the previous one. */
export function useNativeCopy(fn: CopyFn | null): CopyFn | null {
  const prev = nativeCopy;
  nativeCopy = fn;
  return prev;
}

/** True when copyRanges uses the addon. */
export function nativeCopyActive(): boolean {
  return nativeCopy !== null;
}

/**
 * For i < count, in order: buf[dst[i], +lens[i]) = buf[src[i], +lens[i]) (memmove semantics).
 * The caller guarantees every range lies inside buf.
 */
export function copyRanges(buf: Buffer, src: Int32Array, dst: Int32Array, lens: Int32Array, count: number): void {
  if (nativeCopy !== null) {
    nativeCopy(buf, src, dst, lens, count);
    return;
  }
  for (let i = 0; i < count; i++) buf.copyWithin(dst[i], src[i], src[i] + lens[i]);
}
