// UDP sockets: open, GRO, batched recvmmsg/sendmmsg, GSO sends.
#include "common.h"

namespace tapmesh {
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


}  // namespace tapmesh
