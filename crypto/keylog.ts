// Key export for debugging (agent option --keylog FILE), like SSLKEYLOGFILE: one line per SA
// installed, in the record format of Wireshark's "ESP SAs" UAT file (`esp_sa`), so that a folder
// holding that file (named esp_sa) and a `preferences` file with decryption on, given as
// WIRESHARK_CONFIG_DIR, lets tshark/Wireshark decrypt a capture.
//
// The record has the 8 fields of the UAT in epan/dissectors/packet-ipsec.c (Wireshark 4.0, the
// version on Debian 12), each a quoted string, comma-separated:
//   protocol ("IPv4"), source IP, destination IP, SPI ("0x%08x"), encryption (the enum's text),
//   encryption key (0x + hex of key || 4-byte salt), authentication ("NULL": GCM carries its own
//   ICV, any other value is refused with GCM), authentication key ("").
import { closeSync, fchmodSync, fstatSync, openSync, writeSync } from 'node:fs';

/** The UAT enum text for AES-GCM with a 16-byte ICV (RFC 4106). */
export const ESP_SA_ENCRYPTION = 'AES-GCM with 16 octet ICV [RFC4106]';
export const ESP_SA_AUTH = 'NULL';
/** Name the UAT file must have inside WIRESHARK_CONFIG_DIR. */
export const ESP_SA_FILE = 'esp_sa';
/** `preferences` lines that turn ESP decryption and the GCM tag check on. */
export const WIRESHARK_ESP_PREFERENCES = 'esp.enable_encryption_decode: TRUE\nesp.enable_authentication_check: TRUE\n';

export interface KeylogSa {
  /** Underlay IPv4 of the sender and receiver (host-order u32). */
  src: number;
  dst: number;
  spi: number;
  key: Uint8Array;
  salt: Uint8Array;
}

function ipv4(n: number): string {
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

const q = (s: string): string => `"${s}"`;

/** One esp_sa line (no newline). */
export function espSaLine(sa: KeylogSa): string {
  if (!(Number.isInteger(sa.spi) && sa.spi > 0 && sa.spi <= 0xffffffff)) throw new RangeError(`SPI out of range: ${sa.spi}`);
  if (sa.salt.length !== 4) throw new RangeError('salt must be 4 bytes');
  const keyHex = Buffer.concat([sa.key, sa.salt]).toString('hex');
  return [
    q('IPv4'), q(ipv4(sa.src)), q(ipv4(sa.dst)), q(`0x${sa.spi.toString(16).padStart(8, '0')}`),
    q(ESP_SA_ENCRYPTION), q(`0x${keyHex}`), q(ESP_SA_AUTH), q(''),
  ].join(',');
}

/**
 * Appends lines to the keylog file, creating it with mode 0600 and tightening an existing file
 * that group or others could read. Control path (once per SA installed).
 */
export function appendKeylog(file: string, sas: readonly KeylogSa[]): void {
  const fd = openSync(file, 'a', 0o600);
  try {
    if ((fstatSync(fd).mode & 0o077) !== 0) fchmodSync(fd, 0o600);
    writeSync(fd, sas.map((sa) => espSaLine(sa) + '\n').join(''));
  } finally {
    closeSync(fd);
  }
}
