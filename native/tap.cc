// TAP devices: open, offload ioctls, batched frame read/write.
#include "common.h"

namespace tapmesh {
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


}  // namespace tapmesh
