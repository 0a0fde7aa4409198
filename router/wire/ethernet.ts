// Ethernet II with single-tag 802.1Q / 802.1ad awareness.
//
// MAC addresses are numbers: hi16 * 2^32 + lo32 of the 6 big-endian bytes (exact in a double),
// so 00:00:5e:00:53:01 is 0x00005e005301. Only one tag is interpreted: a QinQ frame reports
// vlan = the outer tag and ethertype = the inner TPID (0x8100). EtherType values below 0x0600
// (802.3 length frames) are reported as-is; this codec does not interpret LLC.
import { rd16, rd32s, rd48, wr16, wr32, wr48 } from './bytes.js';
import { WireError, WireParseError, assertRoom, assertUint, inBounds } from './error.js';

export const ETH_HEADER_LEN = 14;
export const ETH_VLAN_HEADER_LEN = 18;
export const MAC_BROADCAST = 0xffffffffffff;

export const EtherType = {
  Ipv4: 0x0800,
  Arp: 0x0806,
  Vlan: 0x8100,
  QinQ: 0x88a8,
  Ipv6: 0x86dd,
} as const;

export interface VlanTag {
  /** 0x8100 (802.1Q) or 0x88a8 (802.1ad). */
  tpid: number;
  /** Tag control information: PCP(3) DEI(1) VID(12). */
  tci: number;
}

export interface EthernetRepr {
  dst: number;
  src: number;
  /** EtherType of the payload (after the VLAN tag when there is one). */
  ethertype: number;
  vlan: VlanTag | null;
}

export interface EthernetParsed extends EthernetRepr {
  payloadOff: number;
  payloadLen: number;
}

function isTpid(t: number): boolean {
  return t === 0x8100 || t === 0x88a8;
}

// ---- hot-path views (no allocation, no bounds checks: call checkEth first) ----

export function ethDst(buf: Uint8Array, off: number): number {
  return rd48(buf, off);
}
export function ethSrc(buf: Uint8Array, off: number): number {
  return rd48(buf, off + 6);
}
/** Raw EtherType/TPID field at bytes 12..13 (0x8100/0x88a8 when tagged). */
export function ethType(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 12);
}
/** True when bytes 12..13 hold an 802.1Q/802.1ad TPID. */
export function ethHasVlan(buf: Uint8Array, off: number): boolean {
  return isTpid(rd16(buf, off + 12));
}
/** TCI of the tag; only meaningful when ethHasVlan. */
export function ethVlanTci(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 14);
}
/** EtherType of the payload, skipping one VLAN tag if present. */
export function ethPayloadType(buf: Uint8Array, off: number): number {
  const t = rd16(buf, off + 12);
  return isTpid(t) ? rd16(buf, off + 16) : t;
}
/** 14, or 18 when tagged. */
export function ethHeaderLenAt(buf: Uint8Array, off: number): number {
  return isTpid(rd16(buf, off + 12)) ? ETH_VLAN_HEADER_LEN : ETH_HEADER_LEN;
}
/** Absolute offset of the payload (off + 14 or off + 18). */
export function ethPayloadOff(buf: Uint8Array, off: number): number {
  return off + ethHeaderLenAt(buf, off);
}
// Table keys: a MAC as (hi16, lo32 signed), the form NumTable stores (no doubles on the hot path).
export function ethDstHi(buf: Uint8Array, off: number): number {
  return rd16(buf, off);
}
export function ethDstLo(buf: Uint8Array, off: number): number {
  return rd32s(buf, off + 2);
}
export function ethSrcHi(buf: Uint8Array, off: number): number {
  return rd16(buf, off + 6);
}
export function ethSrcLo(buf: Uint8Array, off: number): number {
  return rd32s(buf, off + 8);
}
/** The group (multicast/broadcast) bit of a MAC's hi16 key. */
export const MAC_HI_GROUP = 0x100;
/** Writes a MAC given as (hi16, lo32) at buf[off..off+6). */
export function writeMacParts(buf: Uint8Array, off: number, hi: number, lo: number): void {
  wr16(buf, off, hi);
  wr32(buf, off + 2, lo);
}
export function setEthDst(buf: Uint8Array, off: number, mac: number): void {
  wr48(buf, off, mac);
}
export function setEthSrc(buf: Uint8Array, off: number, mac: number): void {
  wr48(buf, off + 6, mac);
}
/** Writes an untagged header (dst, src, ethertype) at off; returns 14. */
export function writeEthHeader(buf: Uint8Array, off: number, dst: number, src: number, ethertype: number): number {
  wr48(buf, off, dst);
  wr48(buf, off + 6, src);
  wr16(buf, off + 12, ethertype);
  return ETH_HEADER_LEN;
}

/** 0 when buf[off, off+len) holds a full (possibly tagged) header; else a WireError code. */
export function checkEth(buf: Uint8Array, off: number, len: number): number {
  if (!inBounds(buf, off, len)) return WireError.BadBounds;
  if (len < ETH_HEADER_LEN) return WireError.Truncated;
  if (isTpid(rd16(buf, off + 12)) && len < ETH_VLAN_HEADER_LEN) return WireError.Truncated;
  return 0;
}

// ---- MAC helpers ----

/** Group bit set (multicast, including broadcast). */
export function macIsMulticast(mac: number): boolean {
  return (((mac / 0x10000000000) | 0) & 1) === 1;
}
export function macIsBroadcast(mac: number): boolean {
  return mac === MAC_BROADCAST;
}
/** Locally administered bit set (e.g. generated container MACs). */
export function macIsLocal(mac: number): boolean {
  return (((mac / 0x10000000000) | 0) & 2) === 2;
}

// ---- checked representation ----

export function ethHeaderLen(repr: EthernetRepr): number {
  return repr.vlan ? ETH_VLAN_HEADER_LEN : ETH_HEADER_LEN;
}

export function parseEth(buf: Uint8Array, off: number, len: number): EthernetParsed {
  const err = checkEth(buf, off, len);
  if (err) throw new WireParseError(err, 'ethernet');
  const tagged = ethHasVlan(buf, off);
  const hl = tagged ? ETH_VLAN_HEADER_LEN : ETH_HEADER_LEN;
  return {
    dst: ethDst(buf, off),
    src: ethSrc(buf, off),
    ethertype: ethPayloadType(buf, off),
    vlan: tagged ? { tpid: ethType(buf, off), tci: ethVlanTci(buf, off) } : null,
    payloadOff: off + hl,
    payloadLen: len - hl,
  };
}

/** Writes the header (14 or 18 bytes) at off and returns its length. Throws RangeError on bad repr/room. */
export function emitEth(repr: EthernetRepr, buf: Uint8Array, off: number): number {
  const hl = ethHeaderLen(repr);
  assertRoom(buf, off, hl, 'ethernet');
  assertUint(repr.dst, MAC_BROADCAST, 'ethernet dst');
  assertUint(repr.src, MAC_BROADCAST, 'ethernet src');
  assertUint(repr.ethertype, 0xffff, 'ethertype');
  if (repr.vlan) {
    if (!isTpid(repr.vlan.tpid)) throw new RangeError(`VLAN TPID must be 0x8100 or 0x88a8: ${repr.vlan.tpid}`);
    assertUint(repr.vlan.tci, 0xffff, 'VLAN TCI');
  } else if (isTpid(repr.ethertype)) {
    throw new RangeError('untagged frame cannot carry a TPID as its ethertype (set vlan instead)');
  }
  wr48(buf, off, repr.dst);
  wr48(buf, off + 6, repr.src);
  if (repr.vlan) {
    wr16(buf, off + 12, repr.vlan.tpid);
    wr16(buf, off + 14, repr.vlan.tci);
  }
  wr16(buf, off + hl - 2, repr.ethertype);
  return hl;
}
