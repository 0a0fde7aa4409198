// PROXY protocol version 2 (haproxy doc/proxy-protocol.txt §2.2): the binary header a routing-
// mesh connection to a task starts with when its port has proxy-protocol=v2, so the task learns
// the client's address. Layout: 12-byte signature; version (high nibble, 2) | command (0 LOCAL,
// 1 PROXY); family (0 UNSPEC, 1 INET, 2 INET6, 3 UNIX) | transport (0 UNSPEC, 1 STREAM,
// 2 DGRAM); 16-bit big-endian length of the rest; the address block (12 / 36 / 216 bytes);
// then TLVs (type, 16-bit length, value) up to the length. Per the spec, a LOCAL header's
// addresses are ignored, an UNSPEC family carries none, the address block may be followed by
// TLVs that a receiver skips when it does not know them, and a receiver never accepts a partial
// header. Per-connection control path: plain objects are fine here.

export const PROXY_V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);
export const PROXY_V2_FIXED_LEN = 16;

export const PP2_TYPE = {
  Alpn: 0x01, Authority: 0x02, Crc32c: 0x03, Noop: 0x04, UniqueId: 0x05, Ssl: 0x20, Netns: 0x30,
} as const;

export type ProxyV2Command = 'local' | 'proxy';
export type ProxyV2Family = 'unspec' | 'inet' | 'inet6' | 'unix';
export type ProxyV2Transport = 'unspec' | 'stream' | 'dgram';

export interface ProxyV2Tlv {
  type: number;
  value: Uint8Array;
}

export interface ProxyV2Header {
  command: ProxyV2Command;
  family: ProxyV2Family;
  transport: ProxyV2Transport;
  /** Dotted quad (inet), RFC 5952 text (inet6), socket path (unix), '' (unspec). */
  srcAddr: string;
  dstAddr: string;
  /** 0 for unix/unspec. */
  srcPort: number;
  dstPort: number;
  tlvs: ProxyV2Tlv[];
}

export type ProxyV2Parse =
  | { kind: 'ok'; header: ProxyV2Header; /** Bytes the header occupies. */ length: number }
  | { kind: 'incomplete'; /** Total bytes needed so far (at least). */ need: number }
  | { kind: 'invalid'; reason: string };

const FAMILIES: readonly ProxyV2Family[] = ['unspec', 'inet', 'inet6', 'unix'];
const TRANSPORTS: readonly ProxyV2Transport[] = ['unspec', 'stream', 'dgram'];
const ADDR_LEN = [0, 12, 36, 216];
const UNIX_PATH = 108;

/** Bytes encodeProxyV2 will produce for h. */
export function proxyV2Length(h: ProxyV2Header): number {
  const fam = FAMILIES.indexOf(h.family);
  let n = PROXY_V2_FIXED_LEN + (h.command === 'local' && fam === 0 ? 0 : ADDR_LEN[fam] ?? 0);
  for (const t of h.tlvs) n += 3 + t.value.length;
  return n;
}

/** The whole header, ready for one write (the spec asks for a single segment). Throws RangeError. */
export function encodeProxyV2(h: ProxyV2Header): Uint8Array {
  const fam = FAMILIES.indexOf(h.family);
  const tr = TRANSPORTS.indexOf(h.transport);
  if (fam < 0 || tr < 0) throw new RangeError(`PROXY v2: bad family/transport ${h.family}/${h.transport}`);
  if (h.command !== 'local' && h.command !== 'proxy') throw new RangeError(`PROXY v2: bad command ${String(h.command)}`);
  const total = proxyV2Length(h);
  if (total - PROXY_V2_FIXED_LEN > 0xffff) throw new RangeError('PROXY v2: header longer than 65535 + 16');
  const out = new Uint8Array(total);
  out.set(PROXY_V2_SIGNATURE, 0);
  out[12] = 0x20 | (h.command === 'proxy' ? 1 : 0);
  out[13] = (fam << 4) | tr;
  out[14] = (total - PROXY_V2_FIXED_LEN) >>> 8;
  out[15] = (total - PROXY_V2_FIXED_LEN) & 0xff;
  let o = PROXY_V2_FIXED_LEN;
  const port = (p: number): number => {
    if (!(Number.isInteger(p) && p >= 0 && p <= 65535)) throw new RangeError(`PROXY v2: bad port ${p}`);
    return p;
  };
  if (fam === 1 || fam === 2) {
    const s = fam === 1 ? ipv4Bytes(h.srcAddr) : ipv6Bytes(h.srcAddr);
    const d = fam === 1 ? ipv4Bytes(h.dstAddr) : ipv6Bytes(h.dstAddr);
    out.set(s, o);
    out.set(d, o + s.length);
    o += 2 * s.length;
    const sp = port(h.srcPort);
    const dp = port(h.dstPort);
    out[o] = sp >>> 8;
    out[o + 1] = sp & 0xff;
    out[o + 2] = dp >>> 8;
    out[o + 3] = dp & 0xff;
    o += 4;
  } else if (fam === 3) {
    for (const p of [h.srcAddr, h.dstAddr]) {
      const b = new TextEncoder().encode(p);
      if (b.length > UNIX_PATH || b.includes(0)) throw new RangeError('PROXY v2: unix path too long or has NUL');
      out.set(b, o);
      o += UNIX_PATH;
    }
  }
  for (const t of h.tlvs) {
    if (!(Number.isInteger(t.type) && t.type >= 0 && t.type <= 255)) throw new RangeError(`PROXY v2: bad TLV type ${t.type}`);
    out[o] = t.type;
    out[o + 1] = t.value.length >>> 8;
    out[o + 2] = t.value.length & 0xff;
    out.set(t.value, o + 3);
    o += 3 + t.value.length;
  }
  return out;
}

/**
 * Parses a header at buf[off, off+len). Never throws: bad bytes give 'invalid' (close the
 * connection), too few give 'incomplete' (read more; a receiver must not act on part of it).
 */
export function parseProxyV2(buf: Uint8Array, off = 0, len = buf.length - off): ProxyV2Parse {
  if (!(Number.isInteger(off) && Number.isInteger(len) && off >= 0 && len >= 0 && off + len <= buf.length)) {
    return { kind: 'invalid', reason: 'bad range' };
  }
  const have = Math.min(len, PROXY_V2_SIGNATURE.length);
  for (let i = 0; i < have; i++) if (buf[off + i] !== PROXY_V2_SIGNATURE[i]) return { kind: 'invalid', reason: 'signature' };
  if (len < PROXY_V2_FIXED_LEN) return { kind: 'incomplete', need: PROXY_V2_FIXED_LEN };
  const vc = buf[off + 12];
  if (vc >> 4 !== 2) return { kind: 'invalid', reason: 'version' };
  const cmd = vc & 0x0f;
  if (cmd > 1) return { kind: 'invalid', reason: 'command' };
  const fam = buf[off + 13] >> 4;
  const tr = buf[off + 13] & 0x0f;
  if (fam > 3 || tr > 2) return { kind: 'invalid', reason: 'family/transport' };
  const rest = (buf[off + 14] << 8) | buf[off + 15];
  const total = PROXY_V2_FIXED_LEN + rest;
  if (len < total) return { kind: 'incomplete', need: total };
  const header: ProxyV2Header = {
    command: cmd === 1 ? 'proxy' : 'local', family: FAMILIES[fam], transport: TRANSPORTS[tr],
    srcAddr: '', dstAddr: '', srcPort: 0, dstPort: 0, tlvs: [],
  };
  const alen = ADDR_LEN[fam];
  if (rest < alen) {
    // A LOCAL header may omit the addresses (they are to be ignored anyway).
    if (cmd === 1) return { kind: 'invalid', reason: 'address block shorter than the family needs' };
    return { kind: 'ok', header: { ...header, family: 'unspec', transport: 'unspec' }, length: total };
  }
  let o = off + PROXY_V2_FIXED_LEN;
  if (fam === 1 || fam === 2) {
    const n = fam === 1 ? 4 : 16;
    header.srcAddr = fam === 1 ? formatIpv4(buf, o) : formatIpv6(buf.subarray(o, o + 16));
    header.dstAddr = fam === 1 ? formatIpv4(buf, o + n) : formatIpv6(buf.subarray(o + n, o + 2 * n));
    header.srcPort = (buf[o + 2 * n] << 8) | buf[o + 2 * n + 1];
    header.dstPort = (buf[o + 2 * n + 2] << 8) | buf[o + 2 * n + 3];
  } else if (fam === 3) {
    header.srcAddr = unixPath(buf.subarray(o, o + UNIX_PATH));
    header.dstAddr = unixPath(buf.subarray(o + UNIX_PATH, o + 2 * UNIX_PATH));
  }
  o += alen;
  const end = off + total;
  while (o < end) {
    if (end - o < 3) return { kind: 'invalid', reason: 'truncated TLV' };
    const tl = (buf[o + 1] << 8) | buf[o + 2];
    if (o + 3 + tl > end) return { kind: 'invalid', reason: 'TLV past the header' };
    header.tlvs.push({ type: buf[o], value: buf.slice(o + 3, o + 3 + tl) });
    o += 3 + tl;
  }
  return { kind: 'ok', header, length: total };
}

/**
 * Header for a proxied connection from Node socket addresses (remoteAddress/localAddress):
 * an IPv4-mapped IPv6 pair ("::ffff:1.2.3.4", what a dual-stack listener reports) becomes INET.
 */
export function proxyV2For(
  src: string, srcPort: number, dst: string, dstPort: number, transport: 'stream' | 'dgram' = 'stream', tlvs: ProxyV2Tlv[] = [],
): ProxyV2Header {
  const s = unmap(src);
  const d = unmap(dst);
  const v4 = isIpv4(s) && isIpv4(d);
  if (!v4 && (isIpv4(s) || isIpv4(d))) throw new RangeError('PROXY v2: mixed address families');
  return {
    command: 'proxy', family: v4 ? 'inet' : 'inet6', transport,
    srcAddr: v4 ? s : formatIpv6(ipv6Bytes(s)), dstAddr: v4 ? d : formatIpv6(ipv6Bytes(d)), srcPort, dstPort, tlvs,
  };
}

// ---- addresses ----

const V4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

function isIpv4(s: string): boolean {
  return V4_RE.test(s);
}

function unmap(s: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  return m ? m[1] : s;
}

function ipv4Bytes(s: string): Uint8Array {
  if (!isIpv4(s)) throw new RangeError(`PROXY v2: not an IPv4 address: ${s}`);
  return Uint8Array.from(s.split('.').map(Number));
}

function formatIpv4(b: Uint8Array, o: number): string {
  return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
}

/** RFC 4291 §2.2 text (with '::' and a trailing dotted quad) to 16 bytes. Throws RangeError. */
export function ipv6Bytes(s: string): Uint8Array {
  const bad = (): never => {
    throw new RangeError(`PROXY v2: not an IPv6 address: ${s}`);
  };
  if (typeof s !== 'string' || s.length > 45) bad();
  const halves = s.split('::');
  if (halves.length > 2) bad();
  const words = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    const groups = part.split(':');
    groups.forEach((g, i) => {
      if (i === groups.length - 1 && g.includes('.')) {
        const v = ipv4Bytes(g);
        out.push((v[0] << 8) | v[1], (v[2] << 8) | v[3]);
      } else if (/^[0-9a-f]{1,4}$/i.test(g)) out.push(parseInt(g, 16));
      else bad();
    });
    return out;
  };
  const head = words(halves[0]);
  const tail = halves.length === 2 ? words(halves[1]) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) bad();
  const all = [...head, ...new Array<number>(halves.length === 2 ? fill : 0).fill(0), ...tail];
  const b = new Uint8Array(16);
  all.forEach((w, i) => {
    b[2 * i] = w >>> 8;
    b[2 * i + 1] = w & 0xff;
  });
  return b;
}

/** RFC 5952 canonical text: lowercase, no leading zeros, longest zero run (>= 2) as '::'. */
export function formatIpv6(b: Uint8Array): string {
  const w: number[] = [];
  for (let i = 0; i < 8; i++) w.push((b[2 * i] << 8) | b[2 * i + 1]);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (w[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]): string => a.map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(w) : `${hex(w.slice(0, best))}::${hex(w.slice(best + bestLen))}`;
}

function unixPath(b: Uint8Array): string {
  const z = b.indexOf(0);
  return new TextDecoder('utf-8', { fatal: false }).decode(z < 0 ? b : b.subarray(0, z));
}
