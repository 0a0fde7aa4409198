// Cluster key, keyring and the sealed envelope around every gossip packet and stream blob.
//
// Envelope (33 bytes of overhead):
//   version:u8 (=1) | keyId:4 | nonce:12 | AES-256-GCM ciphertext | tag:16
//   AAD = version | keyId | channel:u8
// keyId is the first 4 bytes of SHA-256("tapmesh key id" | key): it lets the receiver pick the
// key instead of trying each. A packet sealed with key K always carries id(K) and the id is
// authenticated, so trying only the keys whose id matches is the same as trying every key.
// The channel (1 datagram, 2 stream request, 3 stream response) is not sent: the receiver knows
// it from where the bytes arrived, so a sealed datagram cannot be replayed as a stream answer
// (or the reverse). The message kind itself (first plaintext byte) is inside the ciphertext and
// thus authenticated too. Nonces are 12 random bytes from node:crypto (never from the
// simulator's seeded PRNG), drawn from a pool refilled 4 KiB at a time: one randomFillSync call
// costs more than the AES-GCM of a typical gossip packet. There is no replay window: SWIM
// messages are idempotent or carry sequence numbers/incarnations, as in memberlist.
//
// Join token: "TMJ1-" + base64url(key[32] | first 4 bytes of SHA-256(key)) (48 characters
// after the prefix). The checksum catches copy/paste damage before a node silently fails to
// authenticate. A secret file holds one token per line (blank lines and '#' comments ignored);
// the first line is the primary key, the others are accepted for receiving (rotation).

import { createCipheriv, createDecipheriv, createHash, randomBytes, randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const SEAL_VERSION = 1;
export const KEY_BYTES = 32;
const NONCE = 12;
const HEADER = 1 + 4 + NONCE;
const TAG = 16;
export const SEAL_OVERHEAD = HEADER + TAG;

export const Channel = { packet: 1, request: 2, response: 3 } as const;
export type ChannelCode = (typeof Channel)[keyof typeof Channel];

export class AuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthError';
  }
}

export function keyId(key: Uint8Array): string {
  return createHash('sha256').update('tapmesh key id').update(key).digest().subarray(0, 4).toString('hex');
}

export function generateKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_BYTES));
}

interface KeyEntry {
  key: Buffer;
  id: Buffer;
  idHex: string;
  /** AAD per channel code (index 1..3): version | id | channel, built once at install. */
  aad: Buffer[];
}

const NONCE_POOL = 4096 - (4096 % NONCE);
const noncePool = Buffer.allocUnsafe(NONCE_POOL);
let noncePos = NONCE_POOL;

/** Write 12 fresh random bytes at out[at..at+12). Each pooled byte is handed out once. */
function fillNonce(out: Buffer, at: number): void {
  if (noncePos === NONCE_POOL) {
    randomFillSync(noncePool);
    noncePos = 0;
  }
  noncePool.copy(out, at, noncePos, noncePos + NONCE);
  noncePos += NONCE;
}

/**
 * Several keys installed, one primary used for sealing; opening tries every key whose id
 * matches. Rolling a key without a partition: addKey(new) on every node, then useKey(new) on
 * every node, then removeKey(old) on every node (each step completes everywhere before the next).
 */
export class Keyring {
  private keys: KeyEntry[] = [];
  private primary: KeyEntry;

  constructor(primary: Uint8Array, others: Uint8Array[] = []) {
    this.primary = this.install(primary);
    for (const k of others) this.install(k);
  }

  /** Install a key for receiving (idempotent). */
  addKey(key: Uint8Array): void {
    this.install(key);
  }

  private install(key: Uint8Array): KeyEntry {
    if (key.length !== KEY_BYTES) throw new Error(`cluster key must be ${KEY_BYTES} bytes, got ${key.length}`);
    const idHex = keyId(key);
    const have = this.keys.find((k) => k.idHex === idHex && k.key.equals(key));
    if (have) return have;
    const id = Buffer.from(idHex, 'hex');
    const aad = [0, Channel.packet, Channel.request, Channel.response].map((ch) => Buffer.from([SEAL_VERSION, id[0], id[1], id[2], id[3], ch]));
    const e = { key: Buffer.from(key), id, idHex, aad };
    this.keys.push(e);
    return e;
  }

  /** Make an installed key (by bytes or id) the primary for sending. */
  useKey(key: Uint8Array | string): void {
    const e = this.find(key);
    if (!e) throw new Error('key is not installed');
    this.primary = e;
  }

  removeKey(key: Uint8Array | string): void {
    const e = this.find(key);
    if (!e) return;
    if (e === this.primary) throw new Error('cannot remove the primary key; use another key first');
    this.keys = this.keys.filter((k) => k !== e);
  }

  /** The installed keys, primary first (for persisting the keyring). */
  exportKeys(): Uint8Array[] {
    return [this.primary.key, ...this.keys.filter((k) => k !== this.primary).map((k) => k.key)].map((k) => new Uint8Array(k));
  }

  /** Key ids, primary first. */
  list(): string[] {
    return [this.primary.idHex, ...this.keys.filter((k) => k !== this.primary).map((k) => k.idHex)];
  }

  primaryId(): string {
    return this.primary.idHex;
  }

  private find(key: Uint8Array | string): KeyEntry | undefined {
    if (typeof key === 'string') return this.keys.find((k) => k.idHex === key);
    const b = Buffer.from(key);
    return this.keys.find((k) => k.key.equals(b));
  }

  seal(plain: Uint8Array, channel: ChannelCode): Uint8Array {
    const k = this.primary;
    const out = Buffer.allocUnsafe(HEADER + plain.length + TAG);
    out[0] = SEAL_VERSION;
    k.id.copy(out, 1);
    fillNonce(out, HEADER - NONCE);
    const c = createCipheriv('aes-256-gcm', k.key, out.subarray(HEADER - NONCE, HEADER), { authTagLength: TAG });
    c.setAAD(k.aad[channel]);
    const n = c.update(plain).copy(out, HEADER);
    c.final();
    c.getAuthTag().copy(out, HEADER + n);
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  }

  /** Open a sealed blob or throw AuthError (bad version, unknown key, failed tag). */
  open(sealed: Uint8Array, channel: ChannelCode): Uint8Array {
    if (sealed.length < SEAL_OVERHEAD) throw new AuthError('sealed message too short');
    if (sealed[0] !== SEAL_VERSION) throw new AuthError(`unknown seal version ${sealed[0]}`);
    const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length);
    const id = buf.subarray(1, 5);
    for (const k of this.keys) {
      if (!k.id.equals(id)) continue;
      try {
        const d = createDecipheriv('aes-256-gcm', k.key, buf.subarray(5, HEADER), { authTagLength: TAG });
        d.setAAD(k.aad[channel]); // the same bytes as version | the blob's id | channel: the id matched
        d.setAuthTag(buf.subarray(buf.length - TAG));
        const a = d.update(buf.subarray(HEADER, buf.length - TAG));
        const b = d.final();
        const plain = b.length ? Buffer.concat([a, b]) : a;
        return new Uint8Array(plain.buffer, plain.byteOffset, plain.length);
      } catch {
        /* try the next key with the same id (an id collision) */
      }
    }
    throw new AuthError('no installed key opens the message');
  }
}

const TOKEN_PREFIX = 'TMJ1-';

function checksum(key: Uint8Array): Buffer {
  return createHash('sha256').update(key).digest().subarray(0, 4);
}

export function formatJoinToken(key: Uint8Array): string {
  if (key.length !== KEY_BYTES) throw new Error(`cluster key must be ${KEY_BYTES} bytes`);
  return TOKEN_PREFIX + Buffer.concat([Buffer.from(key), checksum(key)]).toString('base64url');
}

export function parseJoinToken(token: string): Uint8Array {
  const t = token.trim();
  if (!t.startsWith(TOKEN_PREFIX)) throw new Error(`join token must start with ${TOKEN_PREFIX}`);
  const body = t.slice(TOKEN_PREFIX.length);
  if (!/^[A-Za-z0-9_-]{48}$/.test(body)) throw new Error('join token has the wrong length or characters');
  const raw = Buffer.from(body, 'base64url');
  const key = raw.subarray(0, KEY_BYTES);
  if (!raw.subarray(KEY_BYTES).equals(checksum(key))) throw new Error('join token checksum mismatch (damaged token?)');
  return new Uint8Array(key);
}

/** Parse secret-file text: one join token per line; first = primary. */
export function parseSecretFile(text: string): Keyring {
  const keys = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map(parseJoinToken);
  if (keys.length === 0) throw new Error('secret file holds no join token');
  return new Keyring(keys[0], keys.slice(1));
}

export function loadSecretFile(path: string): Keyring {
  return parseSecretFile(readFileSync(path, 'utf8'));
}

/** Text for a new secret file (what `tapmesh join-token` prints). */
export function newSecretFileText(): string {
  return `${formatJoinToken(generateKey())}\n`;
}
