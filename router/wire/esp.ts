// ESP (RFC 4303) with AES-GCM (RFC 4106, 16-byte ICV), carried in UDP (RFC 3948), in transport
// mode around the VXLAN datagram (next header 17). Packet from the ESP start:
//   bytes 0..3 SPI | 4..7 sequence number (32-bit, no ESN) | 8..15 explicit IV
//   | payload (the inner UDP datagram: UDP 8 + VXLAN 8 + Ethernet frame)
//   | padding 1,2,3.. (0..3 bytes) | pad length (1) | next header (1) | ICV (16)
// SPI, seq and IV are in clear and form the AEAD's AAD (SPI || seq) and nonce tail (IV);
// payload..next header is ciphertext, which ends on a 4-byte boundary (§2.4) because the
// 16-byte header keeps the payload aligned. That is exactly the record layout of the addon's
// aeadSeal/aeadOpen (native/index.ts): AAD = bytes 0..7, IV = bytes 8..15, tag = last 16.
//
// checkEsp gates a received packet before decryption (length, SPI, alignment); the trailer is
// readable only after aeadOpen verified the tag, through checkEspTrailer.
import { rd32, wr32 } from './bytes.js';
import { WireError, WireParseError, assertRoom, assertUint, inBounds } from './error.js';

export const ESP_SPI_OFF = 0;
export const ESP_SEQ_OFF = 4;
export const ESP_IV_OFF = 8;
export const ESP_IV_LEN = 8;
/** SPI + seq + explicit IV: the payload starts here. */
export const ESP_HEADER_LEN = 16;
/** Pad length + next header, right before the ICV. */
export const ESP_TRAILER_LEN = 2;
export const ESP_ICV_LEN = 16;
/** Smallest ESP packet: header, empty payload, no padding, trailer, ICV. */
export const ESP_MIN_LEN = ESP_HEADER_LEN + ESP_TRAILER_LEN + ESP_ICV_LEN;
/** Ciphertext (payload + padding + trailer) length is a multiple of this (IPv4, §2.4). */
export const ESP_ALIGN = 4;
/** SPIs 1..255 are IANA-reserved and 0 is never sent (§2.1): valid SPIs are above this. */
export const ESP_SPI_RESERVED_MAX = 255;
/** IANA protocol numbers for the next header field. */
export const ESP_NEXT_UDP = 17;
/** A dummy (TFC) packet, which the receiver must drop silently (§2.6). */
export const ESP_NEXT_NONE = 59;
/** UDP port of ESP-in-UDP (RFC 3948 / IKE NAT-T). tshark dissects it as udpencap without -d. */
export const ESP_UDP_PORT = 4500;

// ---- sizes around the VXLAN datagram ----

/** Outer IPv4 20 + UDP 8: what the kernel adds in front of the ESP packet. */
export const ESP_OUTER_LEN = 20 + 8;
/**
 * Exact ESP-in-UDP overhead around the VXLAN datagram, padding excluded: outer IPv4 20 + UDP 8 +
 * ESP 8 + IV 8 + pad length/next header 2 + ICV 16 = 62 (plus 0..3 bytes of padding).
 */
export const ESP_UDP_OVERHEAD = ESP_OUTER_LEN + ESP_HEADER_LEN + ESP_TRAILER_LEN + ESP_ICV_LEN;
/** The VXLAN datagram around an inner Ethernet frame (no FCS): UDP 8 + VXLAN 8 + Ethernet 14. */
export const VXLAN_DATAGRAM_OVERHEAD = 8 + 8 + 14;
/** Default container MTU of a plain network on a 1500-byte IPv4 underlay (1500 - 20 - 8 - 8 - 14). */
export const PLAIN_DEFAULT_MTU = 1450;
/**
 * What encryption adds over plain VXLAN: the ESP-in-UDP overhead minus the outer IPv4+UDP that the
 * plain path already pays (the inner UDP header replaces it byte for byte): 8 + 16 + 2 + 16 = 42.
 */
export const ESP_EXTRA_OVER_PLAIN = ESP_UDP_OVERHEAD - ESP_OUTER_LEN + 8;
/**
 * Container MTU of an encrypted network whose plain MTU would be `plainMtu`: minus the exact
 * overhead, rounded down to 4 bytes. A multiple-of-4 MTU makes the padding 0 (30 + mtu + 2 is
 * then a multiple of 4), so a full-size frame fits exactly.
 */
export function espEncryptedMtu(plainMtu: number): number {
  return Math.max(0, (plainMtu - ESP_EXTRA_OVER_PLAIN) & ~(ESP_ALIGN - 1));
}
/** 1408 (Docker's kernel ESP with an 8-byte ICV and raw protocol 50: 1424). */
export const ENCRYPTED_DEFAULT_MTU = espEncryptedMtu(PLAIN_DEFAULT_MTU);
/** Bytes a sealer writes in front of the VXLAN header: ESP header 16 + inner UDP header 8. */
export const ESP_HEADROOM = ESP_HEADER_LEN + 8;
/** Bytes a sealer may write behind the frame: padding up to 3 + trailer 2 + ICV 16. */
export const ESP_TAILROOM = ESP_ALIGN - 1 + ESP_TRAILER_LEN + ESP_ICV_LEN;

export interface EspRepr {
  spi: number;
  seq: number;
  /** Length of the payload (the inner UDP datagram), before padding. */
  payloadLen: number;
  nextHeader: number;
}

export interface EspParsed {
  spi: number;
  seq: number;
  ivOff: number;
  /** Ciphertext start (= payload start once opened) and its length (payload + padding + 2). */
  cipherOff: number;
  cipherLen: number;
  icvOff: number;
}

export interface EspTrailerParsed {
  payloadOff: number;
  payloadLen: number;
  padLen: number;
  nextHeader: number;
}

// ---- hot-path views (call checkEsp first; trailer views only after the tag verified) ----

export function espSpi(buf: Uint8Array, off: number): number {
  return rd32(buf, off + ESP_SPI_OFF);
}
export function espSeq(buf: Uint8Array, off: number): number {
  return rd32(buf, off + ESP_SEQ_OFF);
}
/** Padding needed behind a payload of `payloadLen` bytes (0..3). */
export function espPadFor(payloadLen: number): number {
  return (ESP_ALIGN - ((payloadLen + ESP_TRAILER_LEN) & (ESP_ALIGN - 1))) & (ESP_ALIGN - 1);
}
/** Total ESP packet length (header to ICV) for a payload of `payloadLen` bytes. */
export function espLenFor(payloadLen: number): number {
  return ESP_HEADER_LEN + payloadLen + espPadFor(payloadLen) + ESP_TRAILER_LEN + ESP_ICV_LEN;
}
/** Pad length field of an opened ESP packet of total length `len`. */
export function espPadLen(buf: Uint8Array, off: number, len: number): number {
  return buf[off + len - ESP_ICV_LEN - 2];
}
/** Next header field of an opened ESP packet of total length `len`. */
export function espNextHeader(buf: Uint8Array, off: number, len: number): number {
  return buf[off + len - ESP_ICV_LEN - 1];
}
/** Payload length of an opened packet whose trailer passed checkEspTrailer. */
export function espPayloadLen(buf: Uint8Array, off: number, len: number): number {
  return len - ESP_MIN_LEN - espPadLen(buf, off, len);
}

/**
 * Writes SPI, seq and the explicit IV. The IV is the SA's 64-bit packet counter, here 0 || seq:
 * unique per key because seq never repeats under one SA (the same choice RFC 8750 makes
 * implicitly). No bounds check; returns 16.
 */
export function writeEspHeader(buf: Uint8Array, off: number, spi: number, seq: number): number {
  wr32(buf, off + ESP_SPI_OFF, spi);
  wr32(buf, off + ESP_SEQ_OFF, seq);
  wr32(buf, off + ESP_IV_OFF, 0);
  wr32(buf, off + ESP_IV_OFF + 4, seq);
  return ESP_HEADER_LEN;
}

/**
 * Writes the padding (1, 2, 3 as §2.4 defaults) and trailer behind a payload of `payloadLen`
 * bytes already at off+16, and leaves the ICV bytes for the sealer. No bounds check; returns the
 * total ESP length (what aeadSeal's lens[i] must be).
 */
export function writeEspTrailer(buf: Uint8Array, off: number, payloadLen: number, nextHeader: number): number {
  const pad = espPadFor(payloadLen);
  let p = off + ESP_HEADER_LEN + payloadLen;
  for (let i = 1; i <= pad; i++) buf[p++] = i;
  buf[p] = pad;
  buf[p + 1] = nextHeader;
  return p + ESP_TRAILER_LEN + ESP_ICV_LEN - off;
}

/**
 * 0 when a received packet may be handed to aeadOpen: Truncated (shorter than 34 bytes),
 * BadReserved (SPI 0: not ESP, e.g. an IKE marker), BadLength (ciphertext not on a 4-byte
 * boundary, which no conforming sender produces).
 */
export function checkEsp(buf: Uint8Array, off: number, len: number): number {
  if (!inBounds(buf, off, len)) return WireError.BadBounds;
  if (len < ESP_MIN_LEN) return WireError.Truncated;
  if (espSpi(buf, off) === 0) return WireError.BadReserved;
  if (((len - ESP_HEADER_LEN - ESP_ICV_LEN) & (ESP_ALIGN - 1)) !== 0) return WireError.BadLength;
  return 0;
}

/**
 * 0 when the trailer of an opened packet (checkEsp passed, tag verified) is sound: BadLength when
 * the pad length exceeds the ciphertext, BadReserved when the padding is not 1, 2, 3, ...
 */
export function checkEspTrailer(buf: Uint8Array, off: number, len: number): number {
  const pad = espPadLen(buf, off, len);
  if (pad > len - ESP_MIN_LEN) return WireError.BadLength;
  const p = off + len - ESP_ICV_LEN - ESP_TRAILER_LEN - pad;
  for (let i = 0; i < pad; i++) if (buf[p + i] !== i + 1) return WireError.BadReserved;
  return 0;
}

// ---- checked representation ----

export function parseEsp(buf: Uint8Array, off: number, len: number): EspParsed {
  const err = checkEsp(buf, off, len);
  if (err) throw new WireParseError(err, 'esp');
  return {
    spi: espSpi(buf, off),
    seq: espSeq(buf, off),
    ivOff: off + ESP_IV_OFF,
    cipherOff: off + ESP_HEADER_LEN,
    cipherLen: len - ESP_HEADER_LEN - ESP_ICV_LEN,
    icvOff: off + len - ESP_ICV_LEN,
  };
}

/** Reads the trailer of an opened packet (see checkEspTrailer). */
export function parseEspTrailer(buf: Uint8Array, off: number, len: number): EspTrailerParsed {
  const e = checkEsp(buf, off, len) || checkEspTrailer(buf, off, len);
  if (e) throw new WireParseError(e, 'esp trailer');
  const padLen = espPadLen(buf, off, len);
  return { payloadOff: off + ESP_HEADER_LEN, payloadLen: len - ESP_MIN_LEN - padLen, padLen, nextHeader: espNextHeader(buf, off, len) };
}

/**
 * Writes header and trailer around the repr.payloadLen payload bytes already at off+16 (the ICV
 * is left for the sealer); returns the total ESP length. Throws RangeError on a bad repr (SPI
 * must be above 255) or too small a buffer.
 */
export function emitEsp(repr: EspRepr, buf: Uint8Array, off: number): number {
  assertUint(repr.spi, 0xffffffff, 'ESP SPI');
  if (repr.spi <= ESP_SPI_RESERVED_MAX) throw new RangeError(`ESP SPI out of range: ${repr.spi} (0..255 reserved)`);
  assertUint(repr.seq, 0xffffffff, 'ESP seq');
  assertUint(repr.payloadLen, 0xffff, 'ESP payloadLen');
  assertUint(repr.nextHeader, 0xff, 'ESP nextHeader');
  assertRoom(buf, off, espLenFor(repr.payloadLen), 'esp');
  writeEspHeader(buf, off, repr.spi, repr.seq);
  return writeEspTrailer(buf, off, repr.payloadLen, repr.nextHeader);
}
