// Batched AES-GCM (RFC 4106 construction) sealed and opened in place, over the OpenSSL that
// Node itself carries. Only the AEAD call lives here; ESP framing is TypeScript (router/wire/esp.ts).
//
// OpenSSL linkage:
// - Node with its bundled OpenSSL (node_shared_openssl == false, the official and nodesource
//   builds): <openssl/evp.h> comes from node-gyp's <nodedir>/include/node/openssl and nothing is
//   linked; every EVP_* symbol is left undefined in the .node file and resolves at dlopen time from
//   the node executable, which exports them. `ldd build/Release/tapmesh_native.node` shows no
//   libcrypto, so there is never a second copy.
// - Node built against the system OpenSSL (node_shared_openssl == true, e.g. Debian's nodejs):
//   the headers are the system's (/usr/include/openssl, libssl-dev) and binding.gyp links
//   -lcrypto, which is the very libcrypto.so.3 node already has loaded (same soname), not a second
//   one. InitAead checks at load time that the runtime OpenSSL has the major/minor we compiled for.
//
// Record layout (one per packet, in place at buf[off .. off+len)):
//   [0, 8)          AAD, authenticated in clear (ESP: SPI || seq)
//   [8, 16)         explicit IV, in clear; nonce = SA salt (4) || these 8 bytes
//   [16, len-16)    plaintext -> ciphertext (may be empty)
//   [len-16, len)   tag (written by seal, verified by open)
// so len >= 32. The caller owns the IV: it must never repeat under one key.
//
// SA handles are per thread (each worker has its own table; a handle is only valid on the thread
// that created it). Each SA owns two EVP_CIPHER_CTX (seal, open) whose key is set once at creation.
#include "common.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>

#include <mutex>

namespace tapmesh {
namespace {

constexpr int kAadLen = 8;
constexpr int kIvLen = 8;
constexpr int kSaltLen = 4;
constexpr int kTagLen = 16;
constexpr int kMinRecord = kAadLen + kIvLen + kTagLen;

// Per-packet open status (also documented in native/index.ts).
constexpr uint8_t kOpenOk = 0;
constexpr uint8_t kOpenAuthFail = 1;
constexpr uint8_t kOpenMalformed = 2;
constexpr uint8_t kOpenNoSa = 3;

// Handle = (generation << kIdxBits) | (slot + 1): nonzero, positive int32; a stale handle (its slot
// reused) fails the generation check instead of reaching another SA's key.
constexpr int kIdxBits = 20;
constexpr uint32_t kIdxMask = (1u << kIdxBits) - 1;
constexpr uint32_t kMaxSlots = kIdxMask;  // slot+1 must fit in the index bits
constexpr uint32_t kGenMask = (1u << (31 - kIdxBits)) - 1;

// ---------------------------------------------------------------------------------------
// Ciphers, fetched once per process (an implicit fetch per init is the OpenSSL 3 small-packet trap).

const EVP_CIPHER* g_aes128 = nullptr;
const EVP_CIPHER* g_aes256 = nullptr;
std::once_flag g_fetch_once;

void FetchCiphers() {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
  g_aes128 = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
  g_aes256 = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
#else
  g_aes128 = EVP_aes_128_gcm();
  g_aes256 = EVP_aes_256_gcm();
#endif
}

// ---------------------------------------------------------------------------------------
// SA table (per thread)

struct Sa {
  EVP_CIPHER_CTX* seal = nullptr;
  EVP_CIPHER_CTX* open = nullptr;
  uint8_t salt[kSaltLen] = {0, 0, 0, 0};
  uint32_t gen = 0;
  bool used = false;
};

struct SaTable {
  std::vector<Sa> slots;
  std::vector<uint32_t> free;
  size_t live = 0;

  ~SaTable() {
    for (Sa& s : slots) Release(s);
  }
  static void Release(Sa& s) {
    if (s.seal) EVP_CIPHER_CTX_free(s.seal);
    if (s.open) EVP_CIPHER_CTX_free(s.open);
    s.seal = s.open = nullptr;
    OPENSSL_cleanse(s.salt, sizeof s.salt);
    s.used = false;
  }
  // The SA for a handle, or nullptr when the handle is not live on this thread.
  Sa* Find(int64_t h) {
    if (h <= 0 || h > INT32_MAX) return nullptr;
    uint32_t u = static_cast<uint32_t>(h);
    uint32_t idx = (u & kIdxMask) - 1;
    if ((u & kIdxMask) == 0 || idx >= slots.size()) return nullptr;
    Sa& s = slots[idx];
    return s.used && s.gen == (u >> kIdxBits) ? &s : nullptr;
  }
};

thread_local SaTable tls_sas;

EVP_CIPHER_CTX* NewCtx(const EVP_CIPHER* cipher, const uint8_t* key, bool encrypt) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (!ctx) return nullptr;
  int ok = EVP_CipherInit_ex(ctx, cipher, nullptr, nullptr, nullptr, encrypt ? 1 : 0) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, kSaltLen + kIvLen, nullptr) == 1 &&
           EVP_CipherInit_ex(ctx, nullptr, nullptr, key, nullptr, encrypt ? 1 : 0) == 1;
  if (!ok) {
    EVP_CIPHER_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

inline void Nonce(uint8_t* nonce, const Sa& sa, const uint8_t* rec) {
  memcpy(nonce, sa.salt, kSaltLen);
  memcpy(nonce + kSaltLen, rec + kAadLen, kIvLen);
}

// One record sealed in place. False only on an OpenSSL failure (never expected).
bool SealOne(Sa& sa, uint8_t* rec, int len) {
  uint8_t nonce[kSaltLen + kIvLen];
  Nonce(nonce, sa, rec);
  EVP_CIPHER_CTX* c = sa.seal;
  int n = len - kMinRecord, outl = 0;
  uint8_t* text = rec + kAadLen + kIvLen;
  if (EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, nonce) != 1) return false;
  if (EVP_EncryptUpdate(c, nullptr, &outl, rec, kAadLen) != 1) return false;
  if (n > 0 && EVP_EncryptUpdate(c, text, &outl, text, n) != 1) return false;
  if (EVP_EncryptFinal_ex(c, text + n, &outl) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, kTagLen, text + n) == 1;
}

// One record opened in place: true iff the tag verifies (on false the caller wipes the text).
bool OpenOne(Sa& sa, uint8_t* rec, int len) {
  uint8_t nonce[kSaltLen + kIvLen];
  Nonce(nonce, sa, rec);
  EVP_CIPHER_CTX* c = sa.open;
  int n = len - kMinRecord, outl = 0;
  uint8_t* text = rec + kAadLen + kIvLen;
  if (EVP_DecryptInit_ex(c, nullptr, nullptr, nullptr, nonce) != 1) return false;
  if (EVP_DecryptUpdate(c, nullptr, &outl, rec, kAadLen) != 1) return false;
  if (n > 0 && EVP_DecryptUpdate(c, text, &outl, text, n) != 1) return false;
  if (EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, kTagLen, text + n) != 1) return false;
  return EVP_DecryptFinal_ex(c, text + n, &outl) == 1;
}

// The SA argument of seal/open: one handle (a number) for the whole batch, or an Int32Array of
// per-packet handles indexed like offs/lens.
struct SaArg {
  int64_t one = 0;
  int32_t* each = nullptr;
  size_t n = 0;
  int64_t At(int64_t i) const { return each ? each[i] : one; }
};

bool GetSaArg(const Args& a, const Napi::CallbackInfo& info, size_t i, int64_t end, SaArg& s) {
  if (i < info.Length() && info[i].IsNumber()) return a.Int(i, "sa", 0, INT32_MAX, s.one);
  if (!a.Array<int32_t>(i, "sa", 0, s.each, s.n)) return false;
  if (static_cast<int64_t>(s.n) < end)
    return a.Fail(true, "sa has " + std::to_string(s.n) + " handles, start+count is " + std::to_string(end));
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------

bool AeadSelfCheck(std::string& why) {
  std::call_once(g_fetch_once, FetchCiphers);
  unsigned long rt = OpenSSL_version_num();
  // Compare major.minor (the ABI of the EVP calls we make) between headers and runtime.
  unsigned long mask = OPENSSL_VERSION_NUMBER >= 0x30000000L ? 0xfff00000UL : 0xffff0000UL;
  if ((rt & mask) != (static_cast<unsigned long>(OPENSSL_VERSION_NUMBER) & mask)) {
    char b[160];
    snprintf(b, sizeof b, "OpenSSL headers 0x%lx but runtime 0x%lx (%s)",
             static_cast<unsigned long>(OPENSSL_VERSION_NUMBER), rt, OpenSSL_version(OPENSSL_VERSION));
    why = b;
    return false;
  }
  if (!g_aes128 || !g_aes256) {
    why = "EVP_CIPHER_fetch(AES-128-GCM/AES-256-GCM) failed";
    return false;
  }
  return true;
}

// aeadCreate(key: 16 or 32 bytes, salt: 4 bytes) -> handle
Napi::Value AeadCreate(const Napi::CallbackInfo& info) {
  Args a(info, "aeadCreate");
  uint8_t *key, *salt;
  size_t keyLen, saltLen;
  if (!a.Array<uint8_t>(0, "key", 0, key, keyLen) || !a.Array<uint8_t>(1, "salt", 0, salt, saltLen)) return {};
  if (keyLen != 16 && keyLen != 32) return a.Fail(true, "key must be 16 (AES-128) or 32 (AES-256) bytes"), Napi::Value();
  if (saltLen != kSaltLen) return a.Fail(true, "salt must be 4 bytes"), Napi::Value();
  std::string why;
  if (!AeadSelfCheck(why)) return a.Fail(false, why), Napi::Value();
  SaTable& t = tls_sas;
  if (t.free.empty() && t.slots.size() >= kMaxSlots) return a.Fail(true, "too many SAs on this thread"), Napi::Value();
  const EVP_CIPHER* cipher = keyLen == 16 ? g_aes128 : g_aes256;
  EVP_CIPHER_CTX* seal = NewCtx(cipher, key, true);
  EVP_CIPHER_CTX* open = seal ? NewCtx(cipher, key, false) : nullptr;
  if (!open) {
    if (seal) EVP_CIPHER_CTX_free(seal);
    return a.Fail(false, "EVP cipher context setup failed"), Napi::Value();
  }
  uint32_t idx;
  if (!t.free.empty()) {
    idx = t.free.back();
    t.free.pop_back();
  } else {
    idx = static_cast<uint32_t>(t.slots.size());
    t.slots.emplace_back();
  }
  Sa& s = t.slots[idx];
  s.seal = seal;
  s.open = open;
  memcpy(s.salt, salt, kSaltLen);
  s.gen = (s.gen + 1) & kGenMask;
  s.used = true;
  t.live++;
  return Napi::Number::New(a.Env(), static_cast<double>((s.gen << kIdxBits) | (idx + 1)));
}

// aeadDestroy(handle) -> boolean (false when it was not live). The key material is freed (and
// cleansed by OpenSSL) at once.
Napi::Value AeadDestroy(const Napi::CallbackInfo& info) {
  Args a(info, "aeadDestroy");
  int64_t h;
  if (!a.Int(0, "handle", 0, INT32_MAX, h)) return {};
  SaTable& t = tls_sas;
  Sa* s = t.Find(h);
  if (!s) return Napi::Boolean::New(a.Env(), false);
  SaTable::Release(*s);
  t.free.push_back(static_cast<uint32_t>(s - t.slots.data()));
  t.live--;
  return Napi::Boolean::New(a.Env(), true);
}

// aeadCount() -> number of live SAs on this thread (for leak tests).
Napi::Value AeadCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(tls_sas.live));
}

// aeadSeal(buf, offs, lens, sa, start, count) -> count. Every argument, handle and length is
// checked before anything is sealed: a bad one throws and the batch is untouched.
Napi::Value AeadSeal(const Napi::CallbackInfo& info) {
  Args a(info, "aeadSeal");
  Frames f;
  SaArg sa;
  if (!GetFrames(a, 0, 4, f) || !GetSaArg(a, info, 3, f.start + f.count, sa)) return {};
  SaTable& t = tls_sas;
  const int64_t end = f.start + f.count;
  for (int64_t i = f.start; i < end; i++) {
    if (f.lens[i] < kMinRecord)
      return a.Fail(true, "record " + std::to_string(i) + " is " + std::to_string(f.lens[i]) + " bytes, needs >= 32"), Napi::Value();
    if (!t.Find(sa.At(i))) return a.Fail(false, "record " + std::to_string(i) + ": unknown SA handle " + std::to_string(sa.At(i))), Napi::Value();
  }
  for (int64_t i = f.start; i < end; i++) {
    if (!SealOne(*t.Find(sa.At(i)), f.buf + f.offs[i], f.lens[i]))
      return a.Fail(false, "EVP seal failed at record " + std::to_string(i)), Napi::Value();
  }
  return Napi::Number::New(a.Env(), static_cast<double>(f.count));
}

// aeadOpen(buf, offs, lens, sa, start, count, status) -> number opened. Never throws for a packet:
// status[i] = 0 ok, 1 tag mismatch (text region zeroed), 2 shorter than 32 bytes, 3 unknown handle.
Napi::Value AeadOpen(const Napi::CallbackInfo& info) {
  Args a(info, "aeadOpen");
  Frames f;
  SaArg sa;
  uint8_t* status;
  size_t nStatus;
  if (!GetFrames(a, 0, 4, f) || !GetSaArg(a, info, 3, f.start + f.count, sa) ||
      !a.Array<uint8_t>(6, "status", f.start + f.count, status, nStatus))
    return {};
  SaTable& t = tls_sas;
  int64_t ok = 0;
  for (int64_t i = f.start, end = f.start + f.count; i < end; i++) {
    Sa* s = t.Find(sa.At(i));
    if (!s) {
      status[i] = kOpenNoSa;
    } else if (f.lens[i] < kMinRecord) {
      status[i] = kOpenMalformed;
    } else if (OpenOne(*s, f.buf + f.offs[i], f.lens[i])) {
      status[i] = kOpenOk;
      ok++;
    } else {
      // GCM decrypts before it can verify: wipe the unauthenticated plaintext so that a caller
      // bug forwarding a failed packet cannot leak a bit-flipped copy of a real one.
      memset(f.buf + f.offs[i] + kAadLen + kIvLen, 0, f.lens[i] - kMinRecord);
      status[i] = kOpenAuthFail;
    }
  }
  return Napi::Number::New(a.Env(), static_cast<double>(ok));
}

// aeadInfo() -> { openssl: version text, headers: compile-time version, ok, error? }
Napi::Value AeadInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  std::string why;
  bool ok = AeadSelfCheck(why);
  o.Set("openssl", OpenSSL_version(OPENSSL_VERSION));
  o.Set("headers", OPENSSL_VERSION_TEXT);
  o.Set("ok", ok);
  if (!ok) o.Set("error", why);
  return o;
}

}  // namespace tapmesh
