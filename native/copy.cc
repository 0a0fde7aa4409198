// Batched copies inside one buffer: what a TSO segmentation does per segment (headers, then a
// payload chunk, into the segmentation area) costs two Buffer.copyWithin calls, each a C++
// builtin entered through V8's runtime (~200 instructions before the memmove, counted with
// callgrind). One crossing copies every range of a super-frame. No protocol logic: callers say
// what goes where.
#include "common.h"

namespace tapmesh {

// copyBatch(buf, src, dst, lens, count): for i < count, buf[dst[i], +lens[i]) = buf[src[i], +lens[i])
// (memmove: ranges may overlap), in order. Every range is checked before any byte moves
// (RangeError, nothing touched). Returns count.
napi_value CopyBatch(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 5) return RawThrow(env, false, "copyBatch: (buf, src, dst, lens, count) expected");
  void *bd, *sd, *dd, *ld;
  size_t blen, ns, nd, nl;
  if (!RawArray(env, argv[0], napi_uint8_array, bd, blen)) return RawThrow(env, false, "copyBatch: buf must be a Buffer or Uint8Array");
  if (!RawArray(env, argv[1], napi_int32_array, sd, ns) || !RawArray(env, argv[2], napi_int32_array, dd, nd) ||
      !RawArray(env, argv[3], napi_int32_array, ld, nl))
    return RawThrow(env, false, "copyBatch: src, dst and lens must be Int32Arrays");
  int32_t count;
  if (napi_get_value_int32(env, argv[4], &count) != napi_ok) return RawThrow(env, false, "copyBatch: count must be a number");
  if (count < 0 || static_cast<size_t>(count) > std::min(std::min(ns, nd), nl))
    return RawThrow(env, true, "copyBatch: count exceeds src/dst/lens");
  auto* buf = static_cast<uint8_t*>(bd);
  auto* src = static_cast<int32_t*>(sd);
  auto* dst = static_cast<int32_t*>(dd);
  auto* lens = static_cast<int32_t*>(ld);
  const auto size = static_cast<int64_t>(blen);
  for (int32_t i = 0; i < count; i++) {
    int64_t s = src[i], d = dst[i], l = lens[i];
    if (s < 0 || d < 0 || l < 0 || s + l > size || d + l > size) return RawThrow(env, true, "copyBatch: a range is outside buf");
  }
  for (int32_t i = 0; i < count; i++) memmove(buf + dst[i], buf + src[i], static_cast<size_t>(lens[i]));
  napi_value r;
  napi_create_int32(env, count, &r);
  return r;
}

}  // namespace tapmesh
