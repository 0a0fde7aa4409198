// tapmesh native addon: the few Linux syscalls Node lacks (TAP devices, batched UDP with
// GSO/GRO, fd readiness on the libuv loop). Thin by design: no protocol logic lives here.
// The TypeScript contract, with semantics, is native/index.ts (interface NativeAddon).
//
// Rules followed throughout:
// - Every argument is checked before any syscall (TypeError / RangeError, never a crash).
// - Batched calls cross JS->C++ once and allocate nothing per frame: frames are read from and
//   written to the caller's buffers through their data pointers.
// - No shared mutable globals: per-thread scratch is thread_local, per-environment state
//   (poll handles) is owned by the handle itself, so the addon works in worker_threads.
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

namespace {

// sendmmsg/recvmmsg handle at most UIO_MAXIOV (1024) messages per call; larger batches
// are split into chunks of this size.
constexpr size_t kChunk = 1024;

// ---------------------------------------------------------------------------------------
// Errors

std::string ErrnoName(int err) {
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
Napi::Value ThrowErrno(Napi::Env env, const char* fn, const char* syscall, int err) {
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

bool GetSlab(const Args& a, Slab& s) {
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

bool GetFrames(const Args& a, size_t b, size_t r, Frames& f) {
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

// Errors that concern the descriptor itself rather than one frame: thrown, never skipped.
bool FdLevelError(int err) { return err == EBADF || err == ENOTSOCK || err == EFAULT; }

// ---------------------------------------------------------------------------------------
// Per-thread scratch for recvmmsg/sendmmsg (grown on demand, never shrunk).

// Control buffer for one message: room for one UDP_GRO (int) or UDP_SEGMENT (u16) cmsg.
union Ctrl {
  cmsghdr align;
  char buf[CMSG_SPACE(sizeof(int))];
};

struct Scratch {
  std::vector<mmsghdr> msgs;
  std::vector<iovec> iov;
  std::vector<sockaddr_in> addr;
  std::vector<Ctrl> ctrl;

  void Reserve(size_t n) {
    if (msgs.size() >= n) return;
    msgs.resize(n);
    iov.resize(n);
    addr.resize(n);
    ctrl.resize(n);
  }
};

thread_local Scratch tls;

// Fills message i of the scratch: one iovec, the peer address, optional control buffer.
void SetMsg(size_t i, void* data, size_t len, bool withCtrl) {
  iovec& v = tls.iov[i];
  v.iov_base = data;
  v.iov_len = len;
  msghdr& h = tls.msgs[i].msg_hdr;
  h.msg_name = &tls.addr[i];
  h.msg_namelen = sizeof(sockaddr_in);
  h.msg_iov = &v;
  h.msg_iovlen = 1;
  h.msg_control = withCtrl ? tls.ctrl[i].buf : nullptr;
  h.msg_controllen = withCtrl ? sizeof(Ctrl::buf) : 0;
  h.msg_flags = 0;
}

void SetAddr(sockaddr_in& sa, uint32_t addr, uint16_t port) {
  sa = sockaddr_in{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(addr);
  sa.sin_port = htons(port);
}

// Attaches a UDP_SEGMENT cmsg (GSO segment size) to a message whose control buffer is set.
void SetGsoCmsg(msghdr& h, Ctrl& c, uint16_t segSize) {
  h.msg_control = c.buf;
  h.msg_controllen = CMSG_SPACE(sizeof(uint16_t));
  cmsghdr* cm = CMSG_FIRSTHDR(&h);
  cm->cmsg_level = SOL_UDP;
  cm->cmsg_type = UDP_SEGMENT;
  cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
  memcpy(CMSG_DATA(cm), &segSize, sizeof segSize);
}

// The UDP_GRO cmsg of a received message: the coalesced segment size, or 0.
uint16_t GroSegSize(msghdr& h) {
  for (cmsghdr* cm = CMSG_FIRSTHDR(&h); cm != nullptr; cm = CMSG_NXTHDR(&h, cm)) {
    if (cm->cmsg_level != SOL_UDP || cm->cmsg_type != UDP_GRO) continue;
    if (cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int v;
      memcpy(&v, CMSG_DATA(cm), sizeof v);
      return static_cast<uint16_t>(v);
    }
    if (cm->cmsg_len >= CMSG_LEN(sizeof(uint16_t))) {
      uint16_t v;
      memcpy(&v, CMSG_DATA(cm), sizeof v);
      return v;
    }
  }
  return 0;
}

// ---------------------------------------------------------------------------------------
// TAP

Napi::Value TapOpen(const Napi::CallbackInfo& info) {
  Args a(info, "tapOpen");
  std::string name;
  bool vnetHdr;
  if (!a.Str(0, "name", name) || !a.Bool(1, "vnetHdr", vnetHdr)) return {};
  if (name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos) {
    a.Fail(true, "name must be at most 15 bytes without NUL");
    return {};
  }

  // The clone device: open + TUNSETIFF creates (or attaches to) a TUN/TAP interface.
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return ThrowErrno(a.Env(), a.Fn(), "open(/dev/net/tun)", errno);

  ifreq ifr{};
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | (vnetHdr ? IFF_VNET_HDR : 0);
  memcpy(ifr.ifr_name, name.data(), name.size());
  // Bind this fd to the interface; the kernel writes back the final name ("tap%d" expands).
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(a.Env(), a.Fn(), "ioctl(TUNSETIFF)", err);
  }
  Napi::Object out = Napi::Object::New(a.Env());
  out.Set("fd", fd);
  out.Set("name", std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ)));
  return out;
}

Napi::Value TapSetOffload(const Napi::CallbackInfo& info) {
  Args a(info, "tapSetOffload");
  int64_t fd, flags;
  if (!a.Int(0, "fd", 0, INT32_MAX, fd) || !a.Int(1, "flags", 0, UINT32_MAX, flags)) return {};
  // Tell the kernel which offloads (TUN_F_*) userspace accepts in frames it reads.
  if (ioctl(static_cast<int>(fd), TUNSETOFFLOAD, static_cast<unsigned long>(flags)) < 0)
    return ThrowErrno(a.Env(), a.Fn(), "ioctl(TUNSETOFFLOAD)", errno);
  return a.Env().Undefined();
}

Napi::Value TapSetVnetHdrSize(const Napi::CallbackInfo& info) {
  Args a(info, "tapSetVnetHdrSize");
  int64_t fd, size;
  if (!a.Int(0, "fd", 0, INT32_MAX, fd) || !a.Int(1, "size", 0, INT32_MAX, size)) return {};
  int sz = static_cast<int>(size);
  // Size of the virtio_net_hdr prefixed to every frame (10 or 12 bytes in practice).
  if (ioctl(static_cast<int>(fd), TUNSETVNETHDRSZ, &sz) < 0)
    return ThrowErrno(a.Env(), a.Fn(), "ioctl(TUNSETVNETHDRSZ)", errno);
  return a.Env().Undefined();
}

// readFrames(fd, slab, slotSize, headroom, max, lens)
Napi::Value ReadFrames(const Napi::CallbackInfo& info) {
  Args a(info, "readFrames");
  Slab s;
  int32_t* lens;
  size_t nLens;
  if (!GetSlab(a, s) || !a.Array<int32_t>(5, "lens", s.max, lens, nLens)) return {};
  int fd = static_cast<int>(s.fd);
  int64_t n = 0;
  while (n < s.max) {
    // A TAP returns exactly one frame per read().
    ssize_t r = read(fd, s.At(n), s.Room());
    if (r >= 0) {
      lens[n++] = static_cast<int32_t>(r);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) break;
    if (n > 0) break;  // keep what we have; a persistent error shows up on the next call
    return ThrowErrno(a.Env(), a.Fn(), "read", errno);
  }
  return Napi::Number::New(a.Env(), static_cast<double>(n));
}

// writeFrames(fd, buf, offs, lens, start, count)
Napi::Value WriteFrames(const Napi::CallbackInfo& info) {
  Args a(info, "writeFrames");
  int64_t fd;
  Frames f;
  if (!a.Int(0, "fd", 0, INT32_MAX, fd) || !GetFrames(a, 1, 4, f)) return {};
  int64_t i = f.start, end = f.start + f.count;
  while (i < end) {
    // One write() injects one frame into the kernel as if received on the interface.
    if (write(static_cast<int>(fd), f.buf + f.offs[i], static_cast<size_t>(f.lens[i])) >= 0) {
      i++;
      continue;
    }
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN) break;
    if (FdLevelError(err)) return ThrowErrno(a.Env(), a.Fn(), "write", err);
    f.lens[i++] = -err;  // skip the frame, report why
  }
  return Napi::Number::New(a.Env(), static_cast<double>(i - f.start));
}

// ---------------------------------------------------------------------------------------
// UDP

// Sets a socket buffer size, preferring the *FORCE variant that ignores rmem_max/wmem_max
// (needs CAP_NET_ADMIN). Returns false with errno set.
bool SetBuf(int fd, int forceOpt, int opt, int size) {
  if (setsockopt(fd, SOL_SOCKET, forceOpt, &size, sizeof size) == 0) return true;
  return setsockopt(fd, SOL_SOCKET, opt, &size, sizeof size) == 0;
}

int GetIntOpt(int fd, int level, int opt) {
  int v = 0;
  socklen_t len = sizeof v;
  getsockopt(fd, level, opt, &v, &len);
  return v;
}

// udpOpen(addr, port, rcvbuf, sndbuf)
Napi::Value UdpOpen(const Napi::CallbackInfo& info) {
  Args a(info, "udpOpen");
  int64_t addr, port, rcvbuf, sndbuf;
  if (!a.Int(0, "addr", 0, UINT32_MAX, addr) || !a.Int(1, "port", 0, 65535, port) ||
      !a.Int(2, "rcvbuf", 0, INT32_MAX, rcvbuf) || !a.Int(3, "sndbuf", 0, INT32_MAX, sndbuf))
    return {};

  // Non-blocking IPv4 UDP socket, not inherited by spawned processes.
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(a.Env(), a.Fn(), "socket", errno);
  auto fail = [&](const char* syscall) {
    int err = errno;
    close(fd);
    return ThrowErrno(a.Env(), a.Fn(), syscall, err);
  };

  int one = 1;
  // Allow rebinding the port right after a restart.
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) return fail("setsockopt(SO_REUSEADDR)");
  // Large buffers absorb bursts between event-loop turns (0 keeps the kernel default).
  if (rcvbuf > 0 && !SetBuf(fd, SO_RCVBUFFORCE, SO_RCVBUF, static_cast<int>(rcvbuf)))
    return fail("setsockopt(SO_RCVBUF)");
  if (sndbuf > 0 && !SetBuf(fd, SO_SNDBUFFORCE, SO_SNDBUF, static_cast<int>(sndbuf)))
    return fail("setsockopt(SO_SNDBUF)");
  // Never set DF: the overlay may carry frames larger than the path MTU; let IP fragment.
  int pmtu = IP_PMTUDISC_DONT;
  if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof pmtu) < 0) return fail("setsockopt(IP_MTU_DISCOVER)");

  sockaddr_in sa;
  SetAddr(sa, static_cast<uint32_t>(addr), static_cast<uint16_t>(port));
  // Local address and port (0.0.0.0 / 0 = any / ephemeral).
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) return fail("bind");
  // Learn the port the kernel picked when 0 was requested.
  socklen_t salen = sizeof sa;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &salen) < 0) return fail("getsockname");

  Napi::Object out = Napi::Object::New(a.Env());
  out.Set("fd", fd);
  out.Set("port", ntohs(sa.sin_port));
  out.Set("rcvbuf", GetIntOpt(fd, SOL_SOCKET, SO_RCVBUF));
  out.Set("sndbuf", GetIntOpt(fd, SOL_SOCKET, SO_SNDBUF));
  return out;
}

Napi::Value UdpSetGro(const Napi::CallbackInfo& info) {
  Args a(info, "udpSetGro");
  int64_t fd;
  bool on;
  if (!a.Int(0, "fd", 0, INT32_MAX, fd) || !a.Bool(1, "on", on)) return {};
  int v = on ? 1 : 0;
  // Let the kernel hand this socket coalesced runs of equal-size datagrams.
  if (setsockopt(static_cast<int>(fd), SOL_UDP, UDP_GRO, &v, sizeof v) < 0)
    return ThrowErrno(a.Env(), a.Fn(), "setsockopt(UDP_GRO)", errno);
  return a.Env().Undefined();
}

// udpRecv(fd, slab, slotSize, headroom, max, lens, addrs, ports[, segs])
Napi::Value UdpRecv(const Napi::CallbackInfo& info) {
  Args a(info, "udpRecv");
  Slab s;
  int32_t* lens;
  uint32_t* addrs;
  uint16_t* ports;
  uint16_t* segs = nullptr;
  size_t n1, n2, n3, n4;
  if (!GetSlab(a, s) || !a.Array<int32_t>(5, "lens", s.max, lens, n1) ||
      !a.Array<uint32_t>(6, "addrs", s.max, addrs, n2) || !a.Array<uint16_t>(7, "ports", s.max, ports, n3))
    return {};
  if (a.Present(8) && !a.Array<uint16_t>(8, "segs", s.max, segs, n4)) return {};

  int fd = static_cast<int>(s.fd);
  tls.Reserve(std::min<size_t>(static_cast<size_t>(s.max), kChunk));
  int64_t got = 0;
  while (got < s.max) {
    unsigned want = static_cast<unsigned>(std::min<int64_t>(s.max - got, kChunk));
    for (unsigned i = 0; i < want; i++) SetMsg(i, s.At(got + i), s.Room(), segs != nullptr);
    // Receive up to `want` queued datagrams in one syscall, never blocking.
    int r = recvmmsg(fd, tls.msgs.data(), want, MSG_DONTWAIT, nullptr);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      if (got > 0) break;
      return ThrowErrno(a.Env(), a.Fn(), "recvmmsg", errno);
    }
    for (int i = 0; i < r; i++) {
      msghdr& h = tls.msgs[i].msg_hdr;
      int64_t k = got + i;
      lens[k] = (h.msg_flags & MSG_TRUNC) ? -1 : static_cast<int32_t>(tls.msgs[i].msg_len);
      const sockaddr_in& sa = tls.addr[i];
      bool v4 = h.msg_namelen >= sizeof(sockaddr_in) && sa.sin_family == AF_INET;
      addrs[k] = v4 ? ntohl(sa.sin_addr.s_addr) : 0;
      ports[k] = v4 ? ntohs(sa.sin_port) : 0;
      if (segs != nullptr) segs[k] = GroSegSize(h);
    }
    got += r;
    if (static_cast<unsigned>(r) < want) break;  // queue drained
  }
  return Napi::Number::New(a.Env(), static_cast<double>(got));
}

// Shared by udpSend (gso=false) and udpSendGsoBatch (gso=true):
//   (fd, buf, offs, lens, addrs, ports, [segs,] start, count)
Napi::Value SendBatch(const Napi::CallbackInfo& info, const char* fn, bool gso) {
  Args a(info, fn);
  int64_t fd;
  Frames f;
  uint32_t* addrs;
  uint16_t* ports;
  uint16_t* segs = nullptr;
  size_t n1, n2, n3;
  size_t r = gso ? 7 : 6;  // position of `start`
  if (!a.Int(0, "fd", 0, INT32_MAX, fd) || !GetFrames(a, 1, r, f)) return {};
  int64_t end = f.start + f.count;
  if (!a.Array<uint32_t>(4, "addrs", end, addrs, n1) || !a.Array<uint16_t>(5, "ports", end, ports, n2)) return {};
  if (gso && !a.Array<uint16_t>(6, "segs", end, segs, n3)) return {};

  tls.Reserve(std::min<size_t>(static_cast<size_t>(f.count), kChunk));
  int64_t i = f.start;
  while (i < end) {
    unsigned want = static_cast<unsigned>(std::min<int64_t>(end - i, kChunk));
    for (unsigned j = 0; j < want; j++) {
      int64_t k = i + j;
      SetMsg(j, f.buf + f.offs[k], static_cast<size_t>(f.lens[k]), false);
      SetAddr(tls.addr[j], addrs[k], ports[k]);
      if (segs != nullptr && segs[k] != 0) SetGsoCmsg(tls.msgs[j].msg_hdr, tls.ctrl[j], segs[k]);
    }
    unsigned done = 0;
    while (done < want) {
      // Send the remaining messages of the chunk; the kernel stops at the first failure.
      int n = sendmmsg(static_cast<int>(fd), tls.msgs.data() + done, want - done, MSG_DONTWAIT);
      if (n > 0) {
        done += static_cast<unsigned>(n);
        continue;
      }
      int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN) return Napi::Number::New(a.Env(), static_cast<double>(i + done - f.start));
      if (FdLevelError(err)) return ThrowErrno(a.Env(), a.Fn(), "sendmmsg", err);
      f.lens[i + done] = -err;  // skip the datagram, report why
      done++;
    }
    i += want;
  }
  return Napi::Number::New(a.Env(), static_cast<double>(i - f.start));
}

Napi::Value UdpSend(const Napi::CallbackInfo& info) { return SendBatch(info, "udpSend", false); }
Napi::Value UdpSendGsoBatch(const Napi::CallbackInfo& info) { return SendBatch(info, "udpSendGsoBatch", true); }

// udpSendGso(fd, buf, off, len, addr, port, segSize)
Napi::Value UdpSendGso(const Napi::CallbackInfo& info) {
  Args a(info, "udpSendGso");
  int64_t fd, off, len, addr, port, seg;
  uint8_t* buf;
  size_t bufLen;
  if (!a.Int(0, "fd", 0, INT32_MAX, fd) || !a.Array<uint8_t>(1, "buf", 0, buf, bufLen) ||
      !a.Int(2, "off", 0, INT32_MAX, off) || !a.Int(3, "len", 0, INT32_MAX, len) ||
      !a.Int(4, "addr", 0, UINT32_MAX, addr) || !a.Int(5, "port", 0, 65535, port) ||
      !a.Int(6, "segSize", 0, 65535, seg))
    return {};
  if (off + len > static_cast<int64_t>(bufLen)) {
    a.Fail(true, "off+len (" + std::to_string(off + len) + ") exceeds buf (" + std::to_string(bufLen) + " bytes)");
    return {};
  }

  tls.Reserve(1);
  SetMsg(0, buf + off, static_cast<size_t>(len), false);
  SetAddr(tls.addr[0], static_cast<uint32_t>(addr), static_cast<uint16_t>(port));
  msghdr& h = tls.msgs[0].msg_hdr;
  if (seg != 0) SetGsoCmsg(h, tls.ctrl[0], static_cast<uint16_t>(seg));
  for (;;) {
    // One syscall; the kernel (or the NIC) cuts the payload into segSize datagrams.
    ssize_t n = sendmsg(static_cast<int>(fd), &h, MSG_DONTWAIT);
    if (n >= 0) return Napi::Number::New(a.Env(), static_cast<double>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return Napi::Number::New(a.Env(), -1);
    return ThrowErrno(a.Env(), a.Fn(), seg != 0 ? "sendmsg(UDP_SEGMENT)" : "sendmsg", errno);
  }
}

// ---------------------------------------------------------------------------------------
// Readiness: uv_poll on the calling thread's loop.

// One watched fd. Owned jointly by libuv (until the close callback has run) and by the JS
// close() function (until it is garbage collected); freed when both have let go. JS
// references are dropped in the close callback, so freeing touches no JS state.
struct Poll {
  uv_poll_t handle;
  napi_env env;
  Napi::FunctionReference cb;
  napi_async_context async = nullptr;
  napi_async_cleanup_hook_handle hook = nullptr;
  bool closing = false;
  bool raw = false;  // plain call: no async context, no microtask checkpoint (hot datapath)
  int owners = 2;

  void Release() {
    if (--owners == 0) delete this;
  }
};

void OnPollClosed(uv_handle_t* h) {
  Poll* p = static_cast<Poll*>(h->data);
  p->cb.Reset();
  napi_async_destroy(p->env, p->async);
  napi_remove_async_cleanup_hook(p->hook);  // lets environment teardown proceed
  p->Release();
}

// Idempotent; safe from inside the callback (libuv defers the close callback).
void StartClose(Poll* p) {
  if (p->closing) return;
  p->closing = true;
  uv_poll_stop(&p->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&p->handle), OnPollClosed);
}

void OnReadable(uv_poll_t* h, int /*status*/, int /*events*/) {
  // Errors (status < 0) are not special-cased: the callback's own read reports them.
  Poll* p = static_cast<Poll*>(h->data);
  if (p->closing) return;
  Napi::Env env(p->env);
  Napi::HandleScope scope(env);
  // MakeCallback opens a callback scope: async hooks see it and microtasks / nextTicks run
  // when it returns.
  if (p->raw) p->cb.Call(env.Global(), {});
  else p->cb.MakeCallback(env.Global(), {}, p->async);
  if (env.IsExceptionPending()) {
    Napi::Error err = env.GetAndClearPendingException();
    napi_fatal_exception(env, err.Value());  // 'uncaughtException' on this thread
  }
}

// Worker/environment teardown: close handles the JS side never closed.
void OnEnvTeardown(napi_async_cleanup_hook_handle, void* arg) { StartClose(static_cast<Poll*>(arg)); }

Napi::Value PollClose(const Napi::CallbackInfo& info) {
  StartClose(static_cast<Poll*>(info.Data()));
  return info.Env().Undefined();
}

// pollReadable(fd, cb) -> { close() }
Napi::Value PollReadable(const Napi::CallbackInfo& info) {
  Args a(info, "pollReadable");
  int64_t fd;
  Napi::Function cb;
  if (!a.Int(0, "fd", 0, INT32_MAX, fd) || !a.Func(1, "cb", cb)) return {};
  Napi::Env env = a.Env();
  bool raw = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();

  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
    return ThrowErrno(env, a.Fn(), "napi_get_uv_event_loop", EINVAL);

  Poll* p = new Poll();
  p->env = env;
  p->raw = raw;
  // Register the fd with this thread's epoll set (EEXIST if already polled on this loop).
  int r = uv_poll_init(loop, &p->handle, static_cast<int>(fd));
  if (r < 0) {
    delete p;
    return ThrowErrno(env, a.Fn(), "uv_poll_init", -r);
  }
  p->handle.data = p;
  // Level-triggered readability watch; OnReadable runs once per loop turn while readable.
  r = uv_poll_start(&p->handle, UV_READABLE, OnReadable);
  if (r < 0) {
    p->owners = 1;  // no JS owner yet: the close callback frees it
    p->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&p->handle),
             [](uv_handle_t* h) { static_cast<Poll*>(h->data)->Release(); });
    return ThrowErrno(env, a.Fn(), "uv_poll_start", -r);
  }
  p->cb = Napi::Persistent(cb);
  napi_async_init(env, nullptr, Napi::String::New(env, "tapmesh.pollReadable"), &p->async);
  napi_add_async_cleanup_hook(env, OnEnvTeardown, p, &p->hook);

  Napi::Function close = Napi::Function::New(env, PollClose, "close", p);
  close.AddFinalizer([](Napi::Env, Poll* q) { q->Release(); }, p);
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("close", close);
  return handle;
}

// ---------------------------------------------------------------------------------------
// Busy polling: keep this thread's loop from sleeping until a deadline. An active uv_idle
// handle makes libuv poll with timeout 0, so a packet arriving during the window is seen
// without the wake-up of a sleeping thread (costly on VMs: an IPI and a VM entry). The handle
// is unref'd (it never keeps the loop alive) and its callback is C only: no JS runs, nothing
// is allocated while spinning.

struct Awake {
  uv_idle_t idle;
  uint64_t deadline = 0;
  bool active = false;
  napi_async_cleanup_hook_handle hook = nullptr;
};
thread_local Awake* tls_awake = nullptr;

void OnIdle(uv_idle_t* h) {
  Awake* w = static_cast<Awake*>(h->data);
  if (uv_hrtime() >= w->deadline) {
    uv_idle_stop(h);
    w->active = false;
    return;
  }
  // Spin only on otherwise idle CPU: any runnable task here (the container's process waiting
  // for the packet we just delivered, a softirq thread) goes first.
  sched_yield();
}

void OnAwakeTeardown(napi_async_cleanup_hook_handle, void* arg) {
  Awake* w = static_cast<Awake*>(arg);
  if (tls_awake == w) tls_awake = nullptr;
  uv_idle_stop(&w->idle);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->idle), [](uv_handle_t* h) {
    Awake* a = static_cast<Awake*>(h->data);
    napi_remove_async_cleanup_hook(a->hook);
    delete a;
  });
}

// keepAwake(usec): spin this thread's loop for at least usec more microseconds (0 = stop).
Napi::Value KeepAwake(const Napi::CallbackInfo& info) {
  Args a(info, "keepAwake");
  int64_t us;
  if (!a.Int(0, "usec", 0, 10000000, us)) return {};
  Napi::Env env = a.Env();
  if (tls_awake == nullptr) {
    if (us == 0) return env.Undefined();
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr)
      return ThrowErrno(env, a.Fn(), "napi_get_uv_event_loop", EINVAL);
    Awake* w = new Awake();
    uv_idle_init(loop, &w->idle);
    w->idle.data = w;
    uv_unref(reinterpret_cast<uv_handle_t*>(&w->idle));
    napi_add_async_cleanup_hook(env, OnAwakeTeardown, w, &w->hook);
    tls_awake = w;
  }
  Awake* w = tls_awake;
  w->deadline = uv_hrtime() + static_cast<uint64_t>(us) * 1000;
  if (us == 0) {
    if (w->active) uv_idle_stop(&w->idle);
    w->active = false;
  } else if (!w->active) {
    uv_idle_start(&w->idle, OnIdle);
    w->active = true;
  }
  return env.Undefined();
}

// ---------------------------------------------------------------------------------------

Napi::Value Close(const Napi::CallbackInfo& info) {
  Args a(info, "close");
  int64_t fd;
  if (!a.Int(0, "fd", 0, INT32_MAX, fd)) return {};
  // EINTR from close() still releases the descriptor on Linux: never retry.
  if (close(static_cast<int>(fd)) < 0 && errno != EINTR) return ThrowErrno(a.Env(), a.Fn(), "close", errno);
  return a.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("tapOpen", Napi::Function::New(env, TapOpen, "tapOpen"));
  exports.Set("tapSetOffload", Napi::Function::New(env, TapSetOffload, "tapSetOffload"));
  exports.Set("tapSetVnetHdrSize", Napi::Function::New(env, TapSetVnetHdrSize, "tapSetVnetHdrSize"));
  exports.Set("readFrames", Napi::Function::New(env, ReadFrames, "readFrames"));
  exports.Set("writeFrames", Napi::Function::New(env, WriteFrames, "writeFrames"));
  exports.Set("udpOpen", Napi::Function::New(env, UdpOpen, "udpOpen"));
  exports.Set("udpSetGro", Napi::Function::New(env, UdpSetGro, "udpSetGro"));
  exports.Set("udpRecv", Napi::Function::New(env, UdpRecv, "udpRecv"));
  exports.Set("udpSend", Napi::Function::New(env, UdpSend, "udpSend"));
  exports.Set("udpSendGso", Napi::Function::New(env, UdpSendGso, "udpSendGso"));
  exports.Set("udpSendGsoBatch", Napi::Function::New(env, UdpSendGsoBatch, "udpSendGsoBatch"));
  exports.Set("pollReadable", Napi::Function::New(env, PollReadable, "pollReadable"));
  exports.Set("keepAwake", Napi::Function::New(env, KeepAwake, "keepAwake"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  return exports;
}

}  // namespace

NODE_API_MODULE(tapmesh_native, Init)
