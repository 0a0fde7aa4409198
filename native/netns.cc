// Sockets created inside another network namespace. A socket keeps the namespace it was
// created in for its whole life, so the calling thread enters the target namespace only for
// the socket() call and returns at once; bind/listen/connect/IO then work from any thread.
// No protocol logic: callers bind, connect and wrap the descriptor in TypeScript.
#include "common.h"

#include <netinet/tcp.h>

namespace tapmesh {

// Parses a numeric IPv4/IPv6 address and port into ss; false when addr is not of `family`.
static bool ParseAddr(int family, const std::string& addr, uint16_t port, sockaddr_storage& ss, socklen_t& len) {
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

static int SocketFamily(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return -1;
  return ss.ss_family;
}

// socketInNetns(nsPath, family 4|6, type 'udp'|'tcp') -> fd
Napi::Value SocketInNetns(const Napi::CallbackInfo& info) {
  Args a(info, "socketInNetns");
  std::string nsPath, type;
  int64_t family;
  if (!a.Str(0, "nsPath", nsPath) || !a.Int(1, "family", 4, 6, family) || !a.Str(2, "type", type)) return {};
  if (family != 4 && family != 6) return a.Fail(true, "family must be 4 or 6"), Napi::Value();
  if (type != "udp" && type != "tcp") return a.Fail(true, "type must be 'udp' or 'tcp'"), Napi::Value();
  Napi::Env env = a.Env();

  // This thread's own namespace, to come back to (thread-self: libuv threads may differ).
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return ThrowErrno(env, a.Fn(), "open(/proc/thread-self/ns/net)", errno);
  int target = open(nsPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int err = errno;
    close(self);
    return ThrowErrno(env, a.Fn(), "open(nsPath)", err);
  }
  // Enter the target namespace on this thread only (CLONE_NEWNET is per thread).
  if (setns(target, CLONE_NEWNET) < 0) {
    int err = errno;  // EINVAL: not a netns file; EPERM: no CAP_SYS_ADMIN
    close(target);
    close(self);
    return ThrowErrno(env, a.Fn(), "setns", err);
  }
  int fd = socket(family == 4 ? AF_INET : AF_INET6,
                  (type == "udp" ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int sockErr = errno;
  // Return home before anything else. Failing here would leave this thread (the main JS
  // thread) opening every later socket in the wrong namespace: a cross-network leak, so it
  // is fatal rather than an exception.
  if (setns(self, CLONE_NEWNET) < 0) Napi::Error::Fatal("socketInNetns", "setns back to the original netns failed");
  close(target);
  close(self);
  if (fd < 0) return ThrowErrno(env, a.Fn(), "socket", sockErr);
  return Napi::Number::New(env, fd);
}

// socketBind(fd, addr, port) -> bound port. TCP sockets get SO_REUSEADDR first (rebind over
// TIME_WAIT after a restart); UDP sockets do not (two live sockets on one port would split
// the traffic).
Napi::Value SocketBind(const Napi::CallbackInfo& info) {
  Args a(info, "socketBind");
  int64_t fd, port;
  std::string addr;
  if (!a.Int(0, "fd", 0, INT32_MAX, fd) || !a.Str(1, "addr", addr) || !a.Int(2, "port", 0, 65535, port)) return {};
  Napi::Env env = a.Env();
  int s = static_cast<int>(fd);
  int family = SocketFamily(s);
  if (family < 0) return ThrowErrno(env, a.Fn(), "getsockname", errno);
  sockaddr_storage ss;
  socklen_t len;
  if (!ParseAddr(family, addr, static_cast<uint16_t>(port), ss, len))
    return a.Fail(true, "addr '" + addr + "' is not a numeric address of the socket's family"), Napi::Value();
  int type = 0;
  socklen_t tl = sizeof type;
  if (getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &tl) < 0) return ThrowErrno(env, a.Fn(), "getsockopt(SO_TYPE)", errno);
  int one = 1;
  if (type == SOCK_STREAM && setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
    return ThrowErrno(env, a.Fn(), "setsockopt(SO_REUSEADDR)", errno);
  if (bind(s, reinterpret_cast<sockaddr*>(&ss), len) < 0) return ThrowErrno(env, a.Fn(), "bind", errno);
  socklen_t sl = sizeof ss;
  if (getsockname(s, reinterpret_cast<sockaddr*>(&ss), &sl) < 0) return ThrowErrno(env, a.Fn(), "getsockname", errno);
  uint16_t bound = family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                     : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port;
  return Napi::Number::New(env, ntohs(bound));
}

}  // namespace tapmesh
