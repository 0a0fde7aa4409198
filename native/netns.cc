// Sockets created inside another network namespace. A socket keeps the namespace it was
// created in for its whole life, so the calling thread enters the target namespace only for
// the socket() call and returns at once; bind/listen/connect/IO then work from any thread.
// No protocol logic: callers bind, connect and wrap the descriptor in TypeScript.
#include "common.h"

#include <netinet/tcp.h>

namespace tapmesh {

static int SocketFamily(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) < 0) return -1;
  return ss.ss_family;
}

// Creates `count` sockets inside the namespace at nsPath into fds[]: one setns there and one
// back for the whole batch (the routing mesh takes its connection sockets from such a batch).
// Returns 0 or the failing errno with *what set to the failing call; on failure no fd is left open.
static int SocketsIn(const std::string& nsPath, int family, int type, int count, int* fds, const char** what) {
  // This thread's own namespace, to come back to (thread-self: libuv threads may differ).
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) return *what = "open(/proc/thread-self/ns/net)", errno;
  int target = open(nsPath.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int err = errno;
    close(self);
    return *what = "open(nsPath)", err;
  }
  // Enter the target namespace on this thread only (CLONE_NEWNET is per thread).
  if (setns(target, CLONE_NEWNET) < 0) {
    int err = errno;  // EINVAL: not a netns file; EPERM: no CAP_SYS_ADMIN
    close(target);
    close(self);
    return *what = "setns", err;
  }
  int made = 0, sockErr = 0;
  for (; made < count; made++) {
    fds[made] = socket(family == 4 ? AF_INET : AF_INET6, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fds[made] < 0) {
      sockErr = errno;
      break;
    }
  }
  // Return home before anything else. Failing here would leave this thread (the main JS
  // thread) opening every later socket in the wrong namespace: a cross-network leak, so it
  // is fatal rather than an exception.
  if (setns(self, CLONE_NEWNET) < 0) Napi::Error::Fatal("socketInNetns", "setns back to the original netns failed");
  close(target);
  close(self);
  if (sockErr != 0) {
    for (int i = 0; i < made; i++) close(fds[i]);
    return *what = "socket", sockErr;
  }
  return 0;
}

static bool SocketArgs(Args& a, std::string& nsPath, int64_t& family, int& type) {
  std::string t;
  if (!a.Str(0, "nsPath", nsPath) || !a.Int(1, "family", 4, 6, family) || !a.Str(2, "type", t)) return false;
  if (family != 4 && family != 6) return a.Fail(true, "family must be 4 or 6"), false;
  if (t != "udp" && t != "tcp") return a.Fail(true, "type must be 'udp' or 'tcp'"), false;
  type = t == "udp" ? SOCK_DGRAM : SOCK_STREAM;
  return true;
}

// socketInNetns(nsPath, family 4|6, type 'udp'|'tcp') -> fd
Napi::Value SocketInNetns(const Napi::CallbackInfo& info) {
  Args a(info, "socketInNetns");
  std::string nsPath;
  int64_t family;
  int type;
  if (!SocketArgs(a, nsPath, family, type)) return {};
  int fd;
  const char* what = "";
  int err = SocketsIn(nsPath, static_cast<int>(family), type, 1, &fd, &what);
  if (err != 0) return ThrowErrno(a.Env(), a.Fn(), what, err);
  return Napi::Number::New(a.Env(), fd);
}

// socketsInNetns(nsPath, family 4|6, type 'udp'|'tcp', count 1..256) -> Int32Array of fds
Napi::Value SocketsInNetns(const Napi::CallbackInfo& info) {
  Args a(info, "socketsInNetns");
  std::string nsPath;
  int64_t family, count;
  int type;
  if (!SocketArgs(a, nsPath, family, type) || !a.Int(3, "count", 1, 256, count)) return {};
  int fds[256];
  const char* what = "";
  int err = SocketsIn(nsPath, static_cast<int>(family), type, static_cast<int>(count), fds, &what);
  if (err != 0) return ThrowErrno(a.Env(), a.Fn(), what, err);
  Napi::Int32Array out = Napi::Int32Array::New(a.Env(), static_cast<size_t>(count));
  for (size_t i = 0; i < static_cast<size_t>(count); i++) out[i] = fds[i];
  return out;
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
