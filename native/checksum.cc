// Internet checksum sums (RFC 1071) for the datapath: the byte loop the JS fallback
// (router/wire/checksum.ts) runs 4 bytes at a time, here 32 bytes per iteration over 64-bit
// accumulators. No protocol logic: callers say where to sum, with which seed, and where (if
// anywhere) to store the complement.
//
// Both calls use the raw N-API (no Napi:: wrappers, one napi call per argument) because they run
// once per segment or per batch on the hot path, where the crossing is most of the cost for short
// ranges. Arguments are still checked: a range outside the buffer is a RangeError, never a read
// out of bounds.
#include "common.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace tapmesh {

namespace {

// One's-complement sum of p[0, len) read as little-endian 32-bit words (any alignment, memcpy
// loads), folded to 16 bits and byte-swapped: the big-endian 16-bit sum RFC 1071 defines
// (§2(B): byte order only swaps the result). Position parity is relative to p, so an odd
// trailing byte is the high byte of a zero-padded big-endian word, i.e. the low byte here.
#if defined(__x86_64__)
// AVX2 head of SumLe: 64 bytes per iteration, 16-bit little-endian words zero-extended into
// 32-bit lanes (four accumulators). A lane gains at most 0xffff per iteration, so lanes are
// widened into 64 bits every 2^15 iterations (2 MB). Leaves the < 64-byte tail to the caller.
__attribute__((target("avx2"))) uint64_t SumAvx2(const uint8_t*& p, size_t& len) {
  const __m256i zero = _mm256_setzero_si256();
  uint64_t total = 0;
  while (len >= 64) {
    __m256i a0 = zero, a1 = zero, a2 = zero, a3 = zero;
    size_t iters = std::min<size_t>(len / 64, 1u << 15);
    for (size_t k = 0; k < iters; k++) {
      __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
      __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
      a0 = _mm256_add_epi32(a0, _mm256_unpacklo_epi16(v, zero));
      a1 = _mm256_add_epi32(a1, _mm256_unpackhi_epi16(v, zero));
      a2 = _mm256_add_epi32(a2, _mm256_unpacklo_epi16(w, zero));
      a3 = _mm256_add_epi32(a3, _mm256_unpackhi_epi16(w, zero));
      p += 64;
    }
    len -= iters * 64;
    alignas(32) uint32_t lanes[32];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), a0);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes + 8), a1);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes + 16), a2);
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes + 24), a3);
    for (uint32_t x : lanes) total += x;
  }
  return total;
}
const bool kAvx2 = __builtin_cpu_supports("avx2");
#endif

inline uint32_t SumLe(const uint8_t* p, size_t len) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
#if defined(__x86_64__)
  if (kAvx2 && len >= 128) a = SumAvx2(p, len);  // 16-bit LE words: the same sum mod 0xffff
#endif
  while (len >= 32) {
    uint32_t w[8];
    memcpy(w, p, 32);
    a += static_cast<uint64_t>(w[0]) + w[1];
    b += static_cast<uint64_t>(w[2]) + w[3];
    c += static_cast<uint64_t>(w[4]) + w[5];
    d += static_cast<uint64_t>(w[6]) + w[7];
    p += 32;
    len -= 32;
  }
  uint64_t s = a + b + c + d;  // < 2^61 for any buffer Node can hold
  while (len >= 4) {
    uint32_t w;
    memcpy(&w, p, 4);
    s += w;
    p += 4;
    len -= 4;
  }
  if (len >= 2) {
    s += static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8);
    p += 2;
    len -= 2;
  }
  if (len == 1) s += p[0];
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffffffffu) + (s >> 32);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return static_cast<uint32_t>(((s & 0xff) << 8) | (s >> 8));
}

// Big-endian folded sum of p[0, len) plus seed (any non-negative integer below 2^53).
inline uint32_t Sum(const uint8_t* p, size_t len, uint64_t seed) {
  uint64_t s = SumLe(p, len) + seed;
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint32_t>(s);
}

}  // namespace

// csumSum(buf, off, len, seed): folded sum of buf[off, off+len) plus seed.
napi_value CsumSum(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 4) return RawThrow(env, false, "csumSum: (buf, off, len, seed) expected");
  void* data;
  size_t blen;
  double off, len, seed;
  if (!RawArray(env, argv[0], napi_uint8_array, data, blen)) return RawThrow(env, false, "csumSum: buf must be a Buffer or Uint8Array");
  if (!RawNum(env, argv[1], off) || !RawNum(env, argv[2], len) || !RawNum(env, argv[3], seed) || seed >= 9007199254740992.0)
    return RawThrow(env, false, "csumSum: off, len, seed must be non-negative integers");
  if (off + len > static_cast<double>(blen)) return RawThrow(env, true, "csumSum: range outside buf");
  napi_value r;
  napi_create_uint32(env, Sum(static_cast<uint8_t*>(data) + static_cast<size_t>(off), static_cast<size_t>(len),
                              static_cast<uint64_t>(seed)), &r);
  return r;
}

// csumBatch(buf, offs, lens, seeds, count, fieldAt): for i < count, s = sum(buf[offs[i], +lens[i]))
// + seeds[i]. fieldAt >= 0: the 16-bit field at offs[i]+fieldAt is zeroed first and ~s stored there
// (big-endian; a result of 0 stays 0, callers wanting UDP's 0xffff pass fieldAt = -2 - at).
// fieldAt = -1: seeds[i] = s (verify: 0xffff means correct). All ranges are checked before any
// byte is touched. Returns count.
napi_value CsumBatch(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 6) return RawThrow(env, false, "csumBatch: (buf, offs, lens, seeds, count, fieldAt) expected");
  void *bd, *od, *ld, *sd;
  size_t blen, no, nl, ns;
  if (!RawArray(env, argv[0], napi_uint8_array, bd, blen)) return RawThrow(env, false, "csumBatch: buf must be a Buffer or Uint8Array");
  if (!RawArray(env, argv[1], napi_int32_array, od, no) || !RawArray(env, argv[2], napi_int32_array, ld, nl))
    return RawThrow(env, false, "csumBatch: offs and lens must be Int32Arrays");
  if (!RawArray(env, argv[3], napi_uint32_array, sd, ns)) return RawThrow(env, false, "csumBatch: seeds must be a Uint32Array");
  int32_t count, fieldAt;
  if (napi_get_value_int32(env, argv[4], &count) != napi_ok || napi_get_value_int32(env, argv[5], &fieldAt) != napi_ok)
    return RawThrow(env, false, "csumBatch: count and fieldAt must be numbers");
  if (count < 0 || static_cast<size_t>(count) > std::min(std::min(no, nl), ns))
    return RawThrow(env, true, "csumBatch: count exceeds offs/lens/seeds");
  auto* buf = static_cast<uint8_t*>(bd);
  auto* offs = static_cast<int32_t*>(od);
  auto* lens = static_cast<int32_t*>(ld);
  auto* seeds = static_cast<uint32_t*>(sd);
  bool udp = fieldAt < -1;
  int64_t at = udp ? -2 - static_cast<int64_t>(fieldAt) : fieldAt;
  for (int32_t i = 0; i < count; i++) {
    int64_t o = offs[i], l = lens[i];
    if (o < 0 || l < 0 || o + l > static_cast<int64_t>(blen) || (at >= 0 && at + 2 > l))
      return RawThrow(env, true, "csumBatch: a range is outside buf (or its field outside the range)");
  }
  for (int32_t i = 0; i < count; i++) {
    uint8_t* p = buf + offs[i];
    if (at < 0) {
      seeds[i] = Sum(p, static_cast<size_t>(lens[i]), seeds[i]);
      continue;
    }
    p[at] = 0;
    p[at + 1] = 0;
    uint32_t c = ~Sum(p, static_cast<size_t>(lens[i]), seeds[i]) & 0xffff;
    if (c == 0 && udp) c = 0xffff;
    p[at] = static_cast<uint8_t>(c >> 8);
    p[at + 1] = static_cast<uint8_t>(c);
  }
  napi_value r;
  napi_create_int32(env, count, &r);
  return r;
}

}  // namespace tapmesh
