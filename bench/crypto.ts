// AEAD microbench for the encrypted datapath: seal one packet per call, as an ESP-style sender
// would (fresh 12-byte IV from a counter, 8-byte AAD = SPI + sequence number, 16-byte tag), and
// count the honest per-packet cost: building the cipher object, IV, AAD, final and tag included.
// Each cell is time-boxed. Before timing, every candidate's output is checked against the others
// for the same algorithm, so a fast-but-wrong path cannot win.
//
// Hook for a batched path (e.g. AEAD inside the native addon, one call per batch): a module at
// crypto/bench-batch.ts (→ dist/crypto/bench-batch.js) exporting
//   batchSealers(): { name: string; make(size: number): () => number }[]
// where make(size) prepares a batch of packets of `size` bytes and the returned function seals the
// whole batch once, returning how many packets it sealed. Until that module exists the table shows
// the "batched native AEAD" slot as "not built yet".
import { createCipheriv, createSecretKey, randomBytes, type CipherGCMTypes, type KeyObject } from 'node:crypto';
import { gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import type { CryptoRow } from './report.js';

export const CRYPTO_SIZES = [64, 512, 1400, 8900] as const;
export const BATCH_SLOT = 'batched native AEAD (tapmesh addon)';

/** Seals one unit of work and returns how many packets that was (1 for per-packet paths). */
type Sealer = () => number;

interface Candidate {
  name: string;
  /** Algorithm family, for the cross-check (same key/IV/AAD/plaintext must give the same bytes). */
  alg: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';
  /** One-shot seal with explicit inputs, used only for the cross-check. */
  once(key: Uint8Array, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array;
  make(size: number): Sealer;
}

const AAD_LEN = 8;

/** A counter IV like ESP's: 4 fixed bytes, then a 64-bit counter (low 32 bits used here). */
function counterIv(): { iv: Buffer; next(): Buffer } {
  const iv = Buffer.alloc(12);
  randomBytes(4).copy(iv, 0);
  let n = 0;
  return { iv, next: () => (iv.writeUInt32BE((n = (n + 1) >>> 0), 8), iv) };
}

function nobleCandidate(alg: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305'): Candidate {
  const keyLen = alg === 'aes-128-gcm' ? 16 : 32;
  const isChacha = alg === 'chacha20-poly1305';
  return {
    name: `@noble/ciphers ${alg}`,
    alg,
    once: (key, iv, aad, pt) => (isChacha ? chacha20poly1305(key, iv, aad) : gcm(key, iv, aad)).encrypt(pt),
    make(size) {
      const key = new Uint8Array(randomBytes(keyLen));
      const pt = new Uint8Array(randomBytes(size));
      const aad = new Uint8Array(AAD_LEN);
      const out = new Uint8Array(size + 16);
      const ctr = counterIv();
      // Noble ciphers refuse a second encrypt() per instance (nonce reuse guard): one instance per
      // packet. ChaCha can write into a caller buffer, so it gets that saving.
      if (isChacha) return () => (chacha20poly1305(key, ctr.next(), aad).encrypt(pt, out), 1);
      return () => (gcm(key, ctr.next(), aad).encrypt(pt), 1);
    },
  };
}

function nodeSeal(alg: string, key: KeyObject | Buffer, iv: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
  // The three AEADs share this API shape; the union type gives us setAAD/getAuthTag.
  const c = createCipheriv(alg as CipherGCMTypes, key, iv, { authTagLength: 16 });
  c.setAAD(aad);
  const a = c.update(pt);
  const b = c.final();
  return Buffer.concat([a, b, c.getAuthTag()]);
}

function nodeCandidate(alg: 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305', keyObject: boolean): Candidate {
  const keyLen = alg === 'aes-128-gcm' ? 16 : 32;
  return {
    name: `node:crypto ${alg}${keyObject ? '' : ' (raw key Buffer per call)'}`,
    alg,
    once: (key, iv, aad, pt) => nodeSeal(alg, keyObject ? createSecretKey(key) : Buffer.from(key), iv, aad, pt),
    make(size) {
      const raw = randomBytes(keyLen);
      const key = keyObject ? createSecretKey(raw) : raw;
      const pt = randomBytes(size);
      const aad = Buffer.alloc(AAD_LEN);
      const ctr = counterIv();
      // node:crypto binds the IV at construction: a new cipher object per packet is unavoidable.
      // What can be reused is reused: the KeyObject (unless testing raw keys), IV/AAD buffers.
      return () => {
        const c = createCipheriv(alg as CipherGCMTypes, key, ctr.next(), { authTagLength: 16 });
        c.setAAD(aad);
        c.update(pt);
        c.final();
        c.getAuthTag();
        return 1;
      };
    },
  };
}

export const CANDIDATES: Candidate[] = [
  nobleCandidate('aes-128-gcm'),
  nobleCandidate('aes-256-gcm'),
  nobleCandidate('chacha20-poly1305'),
  nodeCandidate('aes-128-gcm', false),
  nodeCandidate('aes-128-gcm', true),
  nodeCandidate('aes-256-gcm', true),
  nodeCandidate('chacha20-poly1305', true),
];

/** Every candidate's output must match the first one of its algorithm. Returns name → error. */
export function crossCheck(cands: Candidate[] = CANDIDATES): Map<string, string> {
  const bad = new Map<string, string>();
  const ref = new Map<string, Uint8Array>();
  const inputs = { key128: randomBytes(16), key256: randomBytes(32), iv: randomBytes(12), aad: randomBytes(AAD_LEN), pt: randomBytes(1400) };
  for (const c of cands) {
    const key = c.alg === 'aes-128-gcm' ? inputs.key128 : inputs.key256;
    let out: Uint8Array;
    try {
      out = c.once(new Uint8Array(key), new Uint8Array(inputs.iv), new Uint8Array(inputs.aad), new Uint8Array(inputs.pt));
    } catch (e) {
      bad.set(c.name, (e as Error).message);
      continue;
    }
    const r = ref.get(c.alg);
    if (!r) ref.set(c.alg, out);
    else if (Buffer.compare(Buffer.from(r), Buffer.from(out)) !== 0) bad.set(c.name, `output differs from other ${c.alg} implementations`);
  }
  return bad;
}

/** Run `seal` for about `budgetMs` (after a short warm-up); returns packets per second. */
export function timeBox(seal: Sealer, budgetMs: number): number {
  // Warm-up lets the JIT settle (noble's pure-JS paths need it most) before the clock starts.
  const warmEnd = performance.now() + Math.max(20, budgetMs / 5);
  let sink = 0;
  while (performance.now() < warmEnd) sink += seal();
  let packets = 0;
  let chunk = 1;
  const t0 = process.hrtime.bigint();
  const budgetNs = BigInt(Math.round(budgetMs * 1e6));
  let elapsed = 0n;
  while (elapsed < budgetNs) {
    for (let i = 0; i < chunk; i++) packets += seal();
    elapsed = process.hrtime.bigint() - t0;
    if (elapsed < budgetNs / 50n) chunk *= 2; // keep clock reads rare relative to work
  }
  if (sink < 0) throw new Error('unreachable');
  return packets / (Number(elapsed) / 1e9);
}

interface BatchSealer {
  name: string;
  make(size: number): () => number;
}

async function loadBatchSealers(): Promise<BatchSealer[] | string> {
  const spec = '../crypto/bench-batch.js'; // a variable, so the compiler does not require the module yet
  try {
    const mod = (await import(spec)) as { batchSealers?: () => BatchSealer[] };
    if (typeof mod.batchSealers !== 'function') return 'crypto/bench-batch.ts exports no batchSealers()';
    return mod.batchSealers();
  } catch (e) {
    const code = (e as { code?: string }).code;
    return code === 'ERR_MODULE_NOT_FOUND' ? 'not built yet' : `failed to load: ${(e as Error).message}`;
  }
}

export interface CryptoOpts {
  budgetMs: number;
  progress: (msg: string) => void;
}

export async function benchCrypto(o: CryptoOpts): Promise<CryptoRow[]> {
  const rows: CryptoRow[] = [];
  const bad = crossCheck();
  for (const [name, err] of bad) o.progress(`crypto: ${name}: cross-check FAILED: ${err}`);
  const push = (impl: string, size: number, pps: number): void => {
    rows.push({ impl, size, status: 'ok', pps, gbps: (pps * size * 8) / 1e9, nsPerPacket: 1e9 / pps });
    o.progress(`crypto: ${impl} ${size} B: ${(pps / 1000).toFixed(1)} kpkt/s, ${((pps * size * 8) / 1e9).toFixed(3)} Gbit/s`);
  };
  for (const c of CANDIDATES) {
    for (const size of CRYPTO_SIZES) {
      if (bad.has(c.name)) {
        rows.push({ impl: c.name, size, status: 'failed', reason: bad.get(c.name) });
        continue;
      }
      push(c.name, size, timeBox(c.make(size), o.budgetMs));
    }
  }
  const batched = await loadBatchSealers();
  if (typeof batched === 'string') {
    const notBuilt = batched === 'not built yet';
    for (const size of CRYPTO_SIZES) rows.push({ impl: BATCH_SLOT, size, status: notBuilt ? 'not-built' : 'failed', reason: batched });
    o.progress(`crypto: ${BATCH_SLOT}: ${batched}`);
  } else {
    for (const b of batched) for (const size of CRYPTO_SIZES) push(b.name, size, timeBox(b.make(size), o.budgetMs));
  }
  return rows;
}
