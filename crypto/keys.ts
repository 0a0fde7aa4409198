// Key material for encrypted networks (control path; node:crypto's X25519 and HKDF).
//
// - Each host has a long-term X25519 identity key, persisted in the state dir (PKCS#8 PEM, mode
//   0600) and published through gossip, which the cluster key already authenticates.
// - Each SA generation of an ordered pair of hosts gets fresh ephemeral X25519 keys on both sides.
// - SA keys come from HKDF-SHA256:
//     PRK  = Extract(salt = cluster key, IKM = DH(eph_a, eph_b) || DH(static_a, static_b))
//     KEYMAT(src -> dst) = Expand(PRK, info = label, src/dst node IDs, SPI, generation, the four
//                                 public keys in src/dst order, keyLen + 4)
//   KEYMAT = AES key || 4-byte salt (RFC 4106 §8.1). The ephemeral DH gives forward secrecy (a
//   stolen identity key does not open recorded traffic once the ephemerals are gone), the static DH
//   ties the SA to the two identities, and the cluster key keeps a host without it out. The
//   info binds direction, pair, SPI and generation, so no two SAs share a key.
import {
  createPrivateKey, createPublicKey, diffieHellman, hkdfSync, randomBytes,
  type KeyObject,
} from 'node:crypto';
import { closeSync, fchmodSync, fstatSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import path from 'node:path';

/** AES key length of every SA: AES-128-GCM (see bench/README: measured against AES-256). */
export const SA_KEY_LEN = 16;
export const SA_SALT_LEN = 4;
export const X25519_LEN = 32;
/** File name of the identity key inside the state dir. */
export const IDENTITY_FILE = 'identity.x25519.pem';
const INFO_LABEL = 'tapmesh esp sa v1';

export interface X25519Pair {
  privateKey: KeyObject;
  /** Raw 32-byte public key (what gossip carries). */
  publicKey: Uint8Array;
}

/** Key + salt of one SA direction, ready for aeadCreate and the keylog. */
export interface SaKeyMaterial {
  spi: number;
  key: Uint8Array;
  salt: Uint8Array;
}

// X25519 keys cross node:crypto as DER: PKCS#8 and SPKI with the fixed RFC 8410 prefixes (OID
// 1.3.101.110), then the 32 raw bytes. Not generateKeyPairSync + JWK export: on Node 20 a GC
// that finalises the KeyGenJob while ExportJWK holds the same key's mutex deadlocks the thread
// (seen in CI: ~KeyGenJob waiting on the mutex ExportJWKEdKey holds). A private key is 32 random
// bytes (X25519 clamps them in the scalar multiplication), so nothing is lost by not using it.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

function rawPublic(pub: KeyObject): Uint8Array {
  const der = pub.export({ type: 'spki', format: 'der' });
  if (der.length !== SPKI_X25519.length + X25519_LEN || !der.subarray(0, SPKI_X25519.length).equals(SPKI_X25519)) throw new Error('X25519 public key export failed');
  return new Uint8Array(der.subarray(SPKI_X25519.length));
}

/** A fresh X25519 pair (identity or ephemeral). */
export function generateX25519(): X25519Pair {
  const der = Buffer.concat([PKCS8_X25519, randomBytes(X25519_LEN)]);
  const privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  der.fill(0);
  return { privateKey, publicKey: rawPublic(createPublicKey(privateKey)) };
}

/** A public KeyObject from 32 raw bytes; throws RangeError on any other length. */
export function x25519PublicFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== X25519_LEN) throw new RangeError(`X25519 public key must be 32 bytes, got ${raw.length}`);
  return createPublicKey({ key: Buffer.concat([SPKI_X25519, raw]), format: 'der', type: 'spki' });
}

/** The pair of a PKCS#8 PEM private key. */
export function x25519FromPem(pem: string): X25519Pair {
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'x25519') throw new Error(`identity key is ${privateKey.asymmetricKeyType}, not x25519`);
  return { privateKey, publicKey: rawPublic(createPublicKey(privateKey)) };
}

/**
 * Loads the identity key from `<stateDir>/identity.x25519.pem`, or creates it (written to a temp
 * file with mode 0600, then renamed, so a crash never leaves a half key). A key file readable by
 * group or others is tightened to 0600.
 */
export function loadOrCreateIdentity(stateDir: string): X25519Pair {
  const file = path.join(stateDir, IDENTITY_FILE);
  let pem: string | undefined;
  try {
    const fd = openSync(file, 'r');
    try {
      if ((fstatSync(fd).mode & 0o077) !== 0) fchmodSync(fd, 0o600);
      pem = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (pem !== undefined) return x25519FromPem(pem);
  const pair = generateX25519();
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  return pair;
}

/**
 * A random SPI for an inbound SA: never 0, never 1..255 (reserved), and not one `taken` reports
 * in use on this host (the receiver picks SPIs, so uniqueness is local).
 */
export function randomSpi(taken: (spi: number) => boolean = () => false): number {
  for (;;) {
    const spi = randomBytes(4).readUInt32BE(0);
    if (spi > 255 && !taken(spi)) return spi;
  }
}

/** One side's view of an SA generation between this host (local) and a peer (remote). */
export interface PairInput {
  clusterKey: Uint8Array;
  /** Rekey generation counter (u32); every generation has fresh ephemerals and SPIs. */
  generation: number;
  localId: string;
  remoteId: string;
  localStatic: X25519Pair;
  remoteStatic: Uint8Array;
  localEphemeral: X25519Pair;
  remoteEphemeral: Uint8Array;
  /** SPI the remote chose for its inbound SA from us (what we put in packets we send). */
  outSpi: number;
  /** SPI we chose for our inbound SA from the remote. */
  inSpi: number;
  keyLen?: 16 | 32;
}

export interface PairKeys {
  /** Seals what this host sends to the peer. */
  out: SaKeyMaterial;
  /** Opens what the peer sends to this host. */
  in: SaKeyMaterial;
}

function u32(n: number, what: string): Buffer {
  if (!(Number.isInteger(n) && n >= 0 && n <= 0xffffffff)) throw new RangeError(`${what} out of range: ${n}`);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function lv(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 255) throw new RangeError(`node ID longer than 255 bytes: ${s.slice(0, 40)}…`);
  return Buffer.concat([Buffer.from([b.length]), b]);
}

/** HKDF info for the src -> dst direction; both sides build the same bytes. */
function info(i: PairInput, srcIsLocal: boolean, spi: number): Buffer {
  const localStaticPub = i.localStatic.publicKey;
  const s = srcIsLocal
    ? { id: i.localId, st: localStaticPub, ep: i.localEphemeral.publicKey }
    : { id: i.remoteId, st: i.remoteStatic, ep: i.remoteEphemeral };
  const d = srcIsLocal
    ? { id: i.remoteId, st: i.remoteStatic, ep: i.remoteEphemeral }
    : { id: i.localId, st: localStaticPub, ep: i.localEphemeral.publicKey };
  return Buffer.concat([
    Buffer.from(INFO_LABEL), lv(s.id), lv(d.id), u32(spi, 'SPI'), u32(i.generation, 'generation'), s.st, d.st, s.ep, d.ep,
  ]);
}

/**
 * Both directions' key material of one SA generation. The peer, given the mirrored input, derives
 * the same `out` as our `in` and vice versa. Throws when the inputs are malformed (bad sizes,
 * reserved SPIs, identical node IDs, empty cluster key) or a DH result is all zero (a low-order
 * point): a pair whose keys cannot be agreed gets no SA.
 */
export function derivePairKeys(i: PairInput): PairKeys {
  const keyLen = i.keyLen ?? SA_KEY_LEN;
  if (i.clusterKey.length < 16) throw new RangeError('cluster key must be at least 16 bytes');
  if (i.localId === i.remoteId) throw new RangeError('an SA pair needs two different node IDs');
  for (const [spi, what] of [[i.outSpi, 'outSpi'], [i.inSpi, 'inSpi']] as const) {
    if (!(Number.isInteger(spi) && spi > 255 && spi <= 0xffffffff)) throw new RangeError(`${what} must be in 256..2^32-1: ${spi}`);
  }
  const ee = diffieHellman({ privateKey: i.localEphemeral.privateKey, publicKey: x25519PublicFromRaw(i.remoteEphemeral) });
  const ss = diffieHellman({ privateKey: i.localStatic.privateKey, publicKey: x25519PublicFromRaw(i.remoteStatic) });
  if (ee.every((b) => b === 0) || ss.every((b) => b === 0)) throw new Error('X25519 produced an all-zero secret');
  const ikm = Buffer.concat([ee, ss]);
  const expand = (srcIsLocal: boolean, spi: number): SaKeyMaterial => {
    const km = new Uint8Array(hkdfSync('sha256', ikm, i.clusterKey, info(i, srcIsLocal, spi), keyLen + SA_SALT_LEN));
    return { spi, key: km.slice(0, keyLen), salt: km.slice(keyLen) };
  };
  const keys = { out: expand(true, i.outSpi), in: expand(false, i.inSpi) };
  ikm.fill(0);
  ee.fill(0);
  ss.fill(0);
  return keys;
}
