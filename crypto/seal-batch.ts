// The seal stage's batch (crypto/seal.ts): records whose ESP headers and trailers are written,
// waiting for one aeadSeal call. The Sender calls flush() before it writes anything to a socket
// (its beforeSend hook), so no record leaves unsealed and none is sealed twice.
import type { NativeAddon } from '../native/index.js';

/** Records waiting for the batch's one aeadSeal call (all in one buffer). */
export class SealBatch {
  readonly offs: Int32Array;
  readonly lens: Int32Array;
  readonly handles: Int32Array;
  count = 0;
  private buf: Buffer | null = null;

  constructor(private readonly aead: Pick<NativeAddon, 'aeadSeal'>, readonly cap = 1024) {
    this.offs = new Int32Array(cap);
    this.lens = new Int32Array(cap);
    this.handles = new Int32Array(cap);
  }

  add(buf: Buffer, off: number, len: number, handle: number): void {
    if (this.count === this.cap || (this.buf !== buf && this.count > 0)) this.flush();
    this.buf = buf;
    const k = this.count++;
    this.offs[k] = off;
    this.lens[k] = len;
    this.handles[k] = handle;
  }

  /** Seal everything collected (before any of it is sent). */
  flush(): void {
    if (this.count === 0 || this.buf === null) return;
    this.aead.aeadSeal(this.buf, this.offs, this.lens, this.handles, 0, this.count);
    this.count = 0;
    this.buf = null;
  }
}
