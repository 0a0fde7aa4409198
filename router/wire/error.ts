// Drop reasons shared by every codec in router/wire.
//
// `checkX(buf, off, len)` functions return 0 (OK) or one of these codes, so the datapath can
// index a per-reason counter array (size WIRE_ERROR_COUNT) without allocating. `parseX`
// throws WireParseError carrying the same code. Codes are stable: append, never renumber.

export const WireError = {
  /** Fewer bytes than the header (or a length field) requires. */
  Truncated: 1,
  /** IP version field is not the expected one. */
  BadVersion: 2,
  /** Checksum present and wrong. */
  BadChecksum: 3,
  /** Flag bits not allowed (e.g. VXLAN flags byte other than exactly 0x08). */
  BadFlags: 4,
  /** A length field is inconsistent (e.g. IPv4 total length < header length, UDP length < 8). */
  BadLength: 5,
  /** Well-formed but a variant this codec does not handle (e.g. ARP for non-Ethernet/IPv4). */
  Unsupported: 6,
  /** Reserved bits/fields are nonzero where they must be zero. */
  BadReserved: 7,
  /** Header-length field below the protocol minimum (IPv4 IHL < 5, TCP data offset < 5). */
  BadHeaderLen: 8,
  /** Textual MAC/IPv4 address that does not parse. */
  BadAddress: 9,
  /** (off, len) is not a non-negative integer range inside the buffer: a caller bug. */
  BadBounds: 10,
} as const;

export type WireErrorCode = (typeof WireError)[keyof typeof WireError];

/** One past the largest code: size of a per-reason counter array indexed by code (0 = OK). */
export const WIRE_ERROR_COUNT = 11;

const NAMES: readonly string[] = (() => {
  const names: string[] = new Array<string>(WIRE_ERROR_COUNT).fill('Unknown');
  names[0] = 'Ok';
  for (const [name, code] of Object.entries(WireError)) names[code] = name;
  return names;
})();

/** Stable name of a reason code ('Ok' for 0, 'Unknown' for codes this build does not know). */
export function wireErrorName(code: number): string {
  return code >= 0 && code < WIRE_ERROR_COUNT && (code | 0) === code ? NAMES[code] : 'Unknown';
}

/** The only exception type parseX / parseMac / parseIpv4 throw for bad input. */
export class WireParseError extends Error {
  readonly reason: number;
  constructor(reason: number, what = 'packet') {
    super(`${what}: ${wireErrorName(reason)}`);
    this.name = 'WireParseError';
    this.reason = reason;
  }
}

/**
 * True when [off, off+len) is a valid range of non-negative integers inside buf. Every check
 * function starts with this so a bad (off, len) from the caller can never cause a read outside
 * the buffer or NaN arithmetic.
 */
export function inBounds(buf: Uint8Array, off: number, len: number): boolean {
  return (off >>> 0) === off && (len >>> 0) === len && off + len <= buf.length;
}

/** Emit-side guard: throws RangeError unless `need` bytes fit at buf[off..]. */
export function assertRoom(buf: Uint8Array, off: number, need: number, what: string): void {
  if (!((off >>> 0) === off && off + need <= buf.length)) {
    throw new RangeError(`${what}: need ${need} bytes at offset ${off}, buffer has ${buf.length}`);
  }
}

/** Emit-side guard: throws RangeError unless v is an integer in [0, max]. */
export function assertUint(v: number, max: number, what: string): void {
  if (!(Number.isInteger(v) && v >= 0 && v <= max)) throw new RangeError(`${what} out of range: ${v}`);
}
