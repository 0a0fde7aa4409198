// Byte writer and length-checked reader shared by every gossip codec.
//
// Integers on the wire are unsigned LEB128 varints (up to 2^53-1, so Lamport times and
// incarnations never wrap in practice); strings and byte strings are varint length + bytes.
// Every Reader method checks the remaining length before it reads and throws MalformedError
// otherwise, so a receiver only ever has to catch that one type.

export class MalformedError extends Error {
  constructor(message: string) {
    super(`malformed gossip message: ${message}`);
    this.name = 'MalformedError';
  }
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  pos = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.room(1);
    this.buf[this.pos++] = v;
    return this;
  }

  u16(v: number): this {
    this.room(2);
    this.view.setUint16(this.pos, v);
    this.pos += 2;
    return this;
  }

  f64(v: number): this {
    this.room(8);
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
    return this;
  }

  /** Unsigned varint; v must be an integer in [0, 2^53). */
  uint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`varint out of range: ${v}`);
    this.room(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  bytes(b: Uint8Array): this {
    this.uint(b.length);
    this.raw(b);
    return this;
  }

  raw(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  str(s: string): this {
    const n = s.length;
    if (n < 128) {
      // Fast path for short ASCII (ids, names, addresses): no intermediate buffer.
      this.room(1 + n);
      const start = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        this.buf[start + i] = c;
      }
      if (i === n) {
        this.buf[this.pos] = n;
        this.pos = start + n;
        return this;
      }
    }
    return this.bytes(utf8.encode(s));
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

export class Reader {
  pos = 0;
  private readonly view: DataView;
  private readonly latin1: Buffer;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.latin1 = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.buf.length - this.pos) throw new MalformedError(`truncated ${what}`);
  }

  u8(): number {
    this.need(1, 'u8');
    return this.buf[this.pos++];
  }

  u16(): number {
    this.need(2, 'u16');
    const v = this.view.getUint16(this.pos);
    this.pos += 2;
    return v;
  }

  f64(): number {
    this.need(8, 'f64');
    const v = this.view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  uint(): number {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      v += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw new MalformedError('non-minimal varint');
        if (!Number.isSafeInteger(v)) throw new MalformedError('varint too large');
        return v;
      }
      scale *= 0x80;
    }
    throw new MalformedError('varint too long');
  }

  bool(): boolean {
    const b = this.u8();
    if (b > 1) throw new MalformedError('bad boolean');
    return b === 1;
  }

  /** A count of items that each take at least `minItemBytes`: bounded by what is left. */
  count(minItemBytes: number, max = Number.MAX_SAFE_INTEGER): number {
    const n = this.uint();
    if (n > max || n * minItemBytes > this.remaining) throw new MalformedError(`count ${n} exceeds data`);
    return n;
  }

  raw(n: number): Uint8Array {
    this.need(n, 'bytes');
    const out = this.buf.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  bytes(max = Number.MAX_SAFE_INTEGER): Uint8Array {
    const n = this.uint();
    if (n > max) throw new MalformedError(`byte string of ${n} > ${max}`);
    return this.raw(n);
  }

  str(max = 65535): string {
    const n = this.uint();
    if (n > max) throw new MalformedError(`string of ${n} > ${max} bytes`);
    this.need(n, 'string');
    const start = this.pos;
    this.pos += n;
    const b = this.buf.subarray(start, start + n);
    let ascii = true;
    for (let i = 0; i < n && ascii; i++) if (b[i] >= 0x80) ascii = false;
    if (ascii) return this.latin1.toString('latin1', start, start + n);
    try {
      return utf8Strict.decode(b);
    } catch {
      throw new MalformedError('invalid UTF-8');
    }
  }

  end(): void {
    if (this.pos !== this.buf.length) throw new MalformedError(`${this.buf.length - this.pos} trailing bytes`);
  }
}
