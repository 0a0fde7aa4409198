// Flow hash of an Ethernet frame's inner flow, for the VXLAN UDP source port (RFC 7348 §5
// recommends deriving it from a hash of the inner packet so that ECMP in the underlay keeps a
// flow on one path while spreading different flows).
//
// Fields hashed:
// - IPv4 TCP/UDP/UDP-Lite/SCTP, not a fragment: src IP, dst IP, protocol, src+dst ports;
// - other IPv4, and every IPv4 fragment (MF set or offset != 0, so all fragments of one datagram
//   hash alike, as the Linux flow dissector does): src IP, dst IP, protocol;
// - IPv6 (bonus): src/dst addresses, next header, and ports when next header is TCP/UDP;
// - anything else, including IP with a truncated or malformed header: dst MAC, src MAC and
//   EtherType (the one after a single VLAN tag);
// - frames shorter than 14 bytes: every byte present, plus the length.
// The VLAN tag itself is not hashed. Never throws, never allocates, never reads outside
// buf[off, off+len) (len is clamped to the buffer; a bad off/len hashes as an empty frame).
// The hash is direction-sensitive (A->B and B->A differ). Mixing is a murmur3-style 32-bit
// finalizer over 32-bit words, written from the published algorithm description.
import { rd16, rd32 } from './bytes.js';

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number, tag: number): number {
  return fmix32(h ^ tag);
}

/** murmur3's 32-bit finaliser (fmix32), as an unsigned 32-bit result; shared with balancer/maglev.ts. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function hasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 136 || proto === 132;
}

/**
 * 32-bit unsigned hash of the frame at buf[off, off+len) (see the module comment for fields).
 * `seed` lets a host perturb the hash (e.g. a random per-process value).
 */
export function flowHash(buf: Uint8Array, off: number, len: number, seed = 0): number {
  let h = seed | 0;
  if (!((off >>> 0) === off && off <= buf.length && (len >>> 0) === len)) return finish(h, 0x5eed);
  if (len > buf.length - off) len = buf.length - off;
  const end = off + len;
  if (len < 14) {
    for (let i = off; i < end; i++) h = mix(h, buf[i]);
    return finish(h, len);
  }
  let type = rd16(buf, off + 12);
  let l3 = off + 14;
  if ((type === 0x8100 || type === 0x88a8) && len >= 18) {
    type = rd16(buf, off + 16);
    l3 = off + 18;
  }
  if (type === 0x0800 && l3 + 20 <= end && buf[l3] >> 4 === 4) {
    const hl = (buf[l3] & 0x0f) << 2;
    const proto = buf[l3 + 9];
    h = mix(h, rd32(buf, l3 + 12));
    h = mix(h, rd32(buf, l3 + 16));
    h = mix(h, proto);
    const l4 = l3 + hl;
    if (hl >= 20 && hasPorts(proto) && (rd16(buf, l3 + 6) & 0x3fff) === 0 && l4 + 4 <= end) {
      h = mix(h, rd32(buf, l4));
      return finish(h, 0x40004);
    }
    return finish(h, 0x40000);
  }
  if (type === 0x86dd && l3 + 40 <= end && buf[l3] >> 4 === 6) {
    for (let i = l3 + 8; i < l3 + 40; i += 4) h = mix(h, rd32(buf, i));
    const nh = buf[l3 + 6];
    h = mix(h, nh);
    if (hasPorts(nh) && l3 + 44 <= end) {
      h = mix(h, rd32(buf, l3 + 40));
      return finish(h, 0x60004);
    }
    return finish(h, 0x60000);
  }
  h = mix(h, rd32(buf, off));
  h = mix(h, rd32(buf, off + 4));
  h = mix(h, rd32(buf, off + 8));
  h = mix(h, type);
  return finish(h, 0x20000);
}
