// Batched native AEAD rows for the crypto microbench (bench/crypto.ts loads this module): the
// addon seals (or opens) a batch of BATCH packets in place with one JS->C++ call, the way the
// egress "seal" and ingress "open" stages will. Per packet the honest per-packet JS work is
// included: writing the ESP header (SPI, seq, IV) for seal; restoring the sealed bytes for open.
// Packets alternate over PEERS SAs through a per-packet handle array, as a batch to several
// peers would. Before timing, make() checks one sealed packet against node:crypto's AES-GCM, so a
// fast-but-wrong path cannot fill the row.
import { createCipheriv, randomBytes, type CipherGCMTypes } from 'node:crypto';
import { AEAD_OPEN, native } from '../native/index.js';
import { ESP_HEADER_LEN, ESP_ICV_LEN, writeEspHeader } from '../router/wire/esp.js';

/** Packets per call: the datapath's typical recvmmsg/TAP batch. */
export const BATCH = 64;
const PEERS = 4;
const SLOT_ALIGN = 64;

interface BatchSealer {
  name: string;
  make(size: number): () => number;
}

interface Batch {
  buf: Buffer;
  offs: Int32Array;
  lens: Int32Array;
  sas: Int32Array;
  keys: { key: Buffer; salt: Buffer; spi: number }[];
}

/** BATCH records of `size` plaintext bytes each, SPIs and handles for PEERS SAs. */
function batch(size: number, keyLen: 16 | 32): Batch {
  const n = native();
  const rec = ESP_HEADER_LEN + size + ESP_ICV_LEN;
  const slot = Math.ceil(rec / SLOT_ALIGN) * SLOT_ALIGN;
  const keys = Array.from({ length: PEERS }, (_, i) => ({ key: randomBytes(keyLen), salt: randomBytes(4), spi: 0x1000 + i }));
  const handles = keys.map((k) => n.aeadCreate(k.key, k.salt));
  const b: Batch = {
    buf: randomBytes(slot * BATCH), offs: new Int32Array(BATCH), lens: new Int32Array(BATCH).fill(rec), sas: new Int32Array(BATCH), keys,
  };
  for (let i = 0; i < BATCH; i++) {
    b.offs[i] = i * slot;
    b.sas[i] = handles[i % PEERS];
    writeEspHeader(b.buf, b.offs[i], keys[i % PEERS].spi, 1);
  }
  return b;
}

/** Throws unless record 0 of a freshly sealed batch equals node:crypto's AES-GCM output. */
function verify(b: Batch, keyLen: 16 | 32, plain: Buffer): void {
  const off = b.offs[0], len = b.lens[0], k = b.keys[0];
  const nonce = Buffer.concat([k.salt, b.buf.subarray(off + 8, off + 16)]);
  const c = createCipheriv(`aes-${keyLen * 8}-gcm` as CipherGCMTypes, k.key, nonce, { authTagLength: 16 });
  c.setAAD(b.buf.subarray(off, off + 8));
  const want = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
  if (!want.equals(b.buf.subarray(off + 16, off + len))) throw new Error(`batched native aes-${keyLen * 8}-gcm: output differs from node:crypto`);
}

function sealer(keyLen: 16 | 32): BatchSealer {
  return {
    name: `batched native AEAD seal aes-${keyLen * 8}-gcm (tapmesh addon, ${BATCH}/call)`,
    make(size) {
      const n = native();
      const b = batch(size, keyLen);
      const plain = Buffer.from(b.buf.subarray(b.offs[0] + 16, b.offs[0] + 16 + size));
      n.aeadSeal(b.buf, b.offs, b.lens, b.sas, 0, BATCH);
      verify(b, keyLen, plain);
      let seq = 1;
      return () => {
        seq++;
        for (let i = 0; i < BATCH; i++) writeEspHeader(b.buf, b.offs[i], b.keys[i % PEERS].spi, seq);
        return n.aeadSeal(b.buf, b.offs, b.lens, b.sas, 0, BATCH);
      };
    },
  };
}

function opener(keyLen: 16 | 32): BatchSealer {
  return {
    name: `batched native AEAD open aes-${keyLen * 8}-gcm (tapmesh addon, ${BATCH}/call, incl. copy-back)`,
    make(size) {
      const n = native();
      const b = batch(size, keyLen);
      n.aeadSeal(b.buf, b.offs, b.lens, b.sas, 0, BATCH);
      const sealed = Buffer.from(b.buf);
      const status = new Uint8Array(BATCH);
      return () => {
        sealed.copy(b.buf); // open decrypts in place: restore the sealed records each round
        const ok = n.aeadOpen(b.buf, b.offs, b.lens, b.sas, 0, BATCH, status);
        if (ok !== BATCH) throw new Error(`open failed: status ${status.find((s) => s !== AEAD_OPEN.OK)}`);
        return ok;
      };
    },
  };
}

export function batchSealers(): BatchSealer[] {
  return [sealer(16), sealer(32), opener(16), opener(32)];
}
