// Shared by the addon's files: argument checking, errno errors, batch views.
#pragma once
#include <napi.h>
#include <sched.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace tapmesh {

// sendmmsg/recvmmsg handle at most UIO_MAXIOV (1024) messages per call; larger batches
// are split into chunks of this size.
constexpr size_t kChunk = 1024;

// ---------------------------------------------------------------------------------------
// Errors

inline std::string ErrnoName(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* name = strerrorname_np(err)) return name;
#endif
  char buf[64];
  uv_err_name_r(-err, buf, sizeof buf);  // libuv uses negated errno values on Unix
  return buf;
}

// Throws Error("<fn>: <syscall>: <CODE> (<description>)") with .code (errno name),
// .errno (negative errno, as Node does) and .syscall. Returns an empty value so callers can
// `return ThrowErrno(...)`.
inline Napi::Value ThrowErrno(Napi::Env env, const char* fn, const char* syscall, int err) {
  char desc[128];
  const char* text = strerror_r(err, desc, sizeof desc);  // GNU variant: returns the text
  std::string code = ErrnoName(err);
  Napi::Error e = Napi::Error::New(env, std::string(fn) + ": " + syscall + ": " + code + " (" + text + ")");
  e.Value().Set("code", code);
  e.Value().Set("errno", -err);
  e.Value().Set("syscall", syscall);
  e.ThrowAsJavaScriptException();
  return Napi::Value();
}

// ---------------------------------------------------------------------------------------
// Argument checks. Each getter returns false after throwing TypeError/RangeError.

template <typename T> constexpr napi_typedarray_type kArrayType = napi_uint8_array;
template <> constexpr napi_typedarray_type kArrayType<int32_t> = napi_int32_array;
template <> constexpr napi_typedarray_type kArrayType<uint32_t> = napi_uint32_array;
template <> constexpr napi_typedarray_type kArrayType<uint16_t> = napi_uint16_array;

constexpr const char* ArrayTypeName(napi_typedarray_type t) {
  return t == napi_int32_array ? "an Int32Array" : t == napi_uint32_array ? "a Uint32Array"
       : t == napi_uint16_array ? "a Uint16Array" : "a Buffer or Uint8Array";
}

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : info_(info), fn_(fn) {}

  Napi::Env Env() const { return info_.Env(); }
  const char* Fn() const { return fn_; }
  bool Present(size_t i) const { return i < info_.Length() && !info_[i].IsUndefined(); }

  // Throws a TypeError (range=false) or RangeError prefixed with the function name.
  bool Fail(bool range, const std::string& what) const {
    std::string msg = std::string(fn_) + ": " + what;
    if (range)
      Napi::RangeError::New(Env(), msg).ThrowAsJavaScriptException();
    else
      Napi::TypeError::New(Env(), msg).ThrowAsJavaScriptException();
    return false;
  }

  // An integral number in [lo, hi].
  bool Int(size_t i, const char* name, int64_t lo, int64_t hi, int64_t& out) const {
    if (i >= info_.Length() || !info_[i].IsNumber()) return Fail(false, std::string(name) + " must be a number");
    double v = info_[i].As<Napi::Number>().DoubleValue();
    if (!std::isfinite(v) || std::trunc(v) != v) return Fail(false, std::string(name) + " must be an integer");
    if (v < static_cast<double>(lo) || v > static_cast<double>(hi))
      return Fail(true, std::string(name) + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    out = static_cast<int64_t>(v);
    return true;
  }

  bool Bool(size_t i, const char* name, bool& out) const {
    if (i >= info_.Length() || !info_[i].IsBoolean()) return Fail(false, std::string(name) + " must be a boolean");
    out = info_[i].As<Napi::Boolean>().Value();
    return true;
  }

  bool Str(size_t i, const char* name, std::string& out) const {
    if (i >= info_.Length() || !info_[i].IsString()) return Fail(false, std::string(name) + " must be a string");
    out = info_[i].As<Napi::String>().Utf8Value();
    return true;
  }

  bool Func(size_t i, const char* name, Napi::Function& out) const {
    if (i >= info_.Length() || !info_[i].IsFunction()) return Fail(false, std::string(name) + " must be a function");
    out = info_[i].As<Napi::Function>();
    return true;
  }

  // A typed array of element type T (uint8_t accepts Buffer / Uint8Array) with at least
  // `minLen` elements. Yields its data pointer (byteOffset applied) and element count.
  template <typename T>
  bool Array(size_t i, const char* name, int64_t minLen, T*& data, size_t& len) const {
    constexpr napi_typedarray_type type = kArrayType<T>;
    if (i >= info_.Length() || !info_[i].IsTypedArray() ||
        info_[i].As<Napi::TypedArray>().TypedArrayType() != type)
      return Fail(false, std::string(name) + " must be " + ArrayTypeName(type));
    auto arr = info_[i].As<Napi::TypedArrayOf<T>>();
    data = arr.Data();
    len = arr.ElementLength();
    if (static_cast<int64_t>(len) < minLen)
      return Fail(true, std::string(name) + " has " + std::to_string(len) + " elements, needs at least " +
                            std::to_string(minLen));
    return true;
  }

 private:
  const Napi::CallbackInfo& info_;
  const char* fn_;
};

// Common checks for slab-based receive calls: (fd, slab, slotSize, headroom, max) at
// argument positions 0..4, with slotSize*max fitting in the slab.
struct Slab {
  int64_t fd, slot, head, max;
  uint8_t* base;
  size_t len;
  uint8_t* At(int64_t i) const { return base + i * slot + head; }
  size_t Room() const { return static_cast<size_t>(slot - head); }
};

inline bool GetSlab(const Args& a, Slab& s) {
  if (!a.Int(0, "fd", 0, INT32_MAX, s.fd) || !a.Array<uint8_t>(1, "slab", 0, s.base, s.len) ||
      !a.Int(2, "slotSize", 1, INT32_MAX, s.slot) || !a.Int(3, "headroom", 0, s.slot - 1, s.head) ||
      !a.Int(4, "max", 0, INT32_MAX, s.max))
    return false;
  if (s.max * s.slot > static_cast<int64_t>(s.len))
    return a.Fail(true, "slotSize*max (" + std::to_string(s.max * s.slot) + ") exceeds the slab (" +
                            std::to_string(s.len) + " bytes)");
  return true;
}

// Common checks for batched sends: buf, offs, lens (positions b..b+2) and the range
// [start, start+count) given at positions r, r+1; every frame must lie inside buf.
struct Frames {
  uint8_t* buf;
  size_t bufLen;
  int32_t* offs;
  int32_t* lens;
  int64_t start, count;
};

inline bool GetFrames(const Args& a, size_t b, size_t r, Frames& f) {
  size_t nOffs, nLens;
  if (!a.Array<uint8_t>(b, "buf", 0, f.buf, f.bufLen) || !a.Array<int32_t>(b + 1, "offs", 0, f.offs, nOffs) ||
      !a.Array<int32_t>(b + 2, "lens", 0, f.lens, nLens) || !a.Int(r, "start", 0, INT32_MAX, f.start) ||
      !a.Int(r + 1, "count", 0, INT32_MAX, f.count))
    return false;
  int64_t end = f.start + f.count;
  if (end > static_cast<int64_t>(std::min(nOffs, nLens)))
    return a.Fail(true, "start+count (" + std::to_string(end) + ") exceeds offs/lens length");
  for (int64_t i = f.start; i < end; i++) {
    if (f.offs[i] < 0 || f.lens[i] < 0 || static_cast<int64_t>(f.offs[i]) + f.lens[i] > static_cast<int64_t>(f.bufLen))
      return a.Fail(true, "frame " + std::to_string(i) + " [" + std::to_string(f.offs[i]) + ", +" +
                              std::to_string(f.lens[i]) + ") is outside buf (" + std::to_string(f.bufLen) + " bytes)");
  }
  return true;
}

// Parses a numeric IPv4/IPv6 address and port into ss; false when addr is not of `family`.
inline bool ParseAddr(int family, const std::string& addr, uint16_t port, sockaddr_storage& ss, socklen_t& len) {
  ss = sockaddr_storage{};
  if (family == AF_INET) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&ss);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    len = sizeof(sockaddr_in);
    return inet_pton(AF_INET, addr.c_str(), &sa->sin_addr) == 1;
  }
  auto* sa = reinterpret_cast<sockaddr_in6*>(&ss);
  sa->sin6_family = AF_INET6;
  sa->sin6_port = htons(port);
  len = sizeof(sockaddr_in6);
  return inet_pton(AF_INET6, addr.c_str(), &sa->sin6_addr) == 1;
}

// Errors that concern the descriptor itself rather than one frame: thrown, never skipped.
inline bool FdLevelError(int err) { return err == EBADF || err == ENOTSOCK || err == EFAULT; }


// ---------------------------------------------------------------------------------------
// Raw N-API argument helpers, for the calls that skip Napi:: wrappers on the hot path
// (checksum.cc, copy.cc): one napi call per argument.

inline napi_value RawThrow(napi_env env, bool range, const char* msg) {
  if (range)
    napi_throw_range_error(env, nullptr, msg);
  else
    napi_throw_type_error(env, nullptr, msg);
  return nullptr;
}

// A Buffer/Uint8Array (kind napi_uint8_array) or another typed array of `want` type.
inline bool RawArray(napi_env env, napi_value v, napi_typedarray_type want, void*& data, size_t& len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type t;
  if (napi_get_typedarray_info(env, v, &t, &len, &data, nullptr, nullptr) != napi_ok) return false;
  return t == want;
}

// A non-negative integral double.
inline bool RawNum(napi_env env, napi_value v, double& out) {
  return napi_get_value_double(env, v, &out) == napi_ok && std::isfinite(out) && out >= 0 && std::trunc(out) == out;
}

}  // namespace tapmesh
