// N-API bindings of the routing mesh's TCP relay (relay.cc has the relay itself): argument
// checks, listener and connect set-up, and the events as JS arrays. The contract is
// native/index.ts (relay*).
#include "relay.h"

#include <netinet/tcp.h>

namespace tapmesh {
using namespace relay;
namespace {

Relay* Get(const Napi::CallbackInfo& info, const char* fn) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), std::string(fn) + ": relay must be a handle from relayCreate").ThrowAsJavaScriptException();
    return nullptr;
  }
  Relay* r = info[0].As<Napi::External<Relay>>().Data();
  if (r->ep < 0) {
    Napi::Error::New(info.Env(), std::string(fn) + ": relay is destroyed").ThrowAsJavaScriptException();
    return nullptr;
  }
  return r;
}

// The relay and the id at argument 1 (a listener or connection id); false after throwing.
bool GetId(const Napi::CallbackInfo& info, const char* fn, Relay*& r, uint32_t& id) {
  if (!(r = Get(info, fn))) return false;
  int64_t v;
  if (!Args(info, fn).Int(1, "id", 0, UINT32_MAX, v)) return false;
  id = static_cast<uint32_t>(v);
  return true;
}

}  // namespace


// relayCreate() -> handle (freed with its descriptors when collected or relayDestroy'd)
Napi::Value RelayCreate(const Napi::CallbackInfo& info) {
  Relay* r = new Relay();
  r->ep = epoll_create1(EPOLL_CLOEXEC);
  if (r->ep < 0) {
    int err = errno;
    delete r;
    return ThrowErrno(info.Env(), "relayCreate", "epoll_create1", err);
  }
  return Napi::External<Relay>::New(info.Env(), r, [](Napi::Env, Relay* q) {
    Destroy(q);
    delete q;
  });
}

// relayFd(relay) -> the epoll descriptor to watch with pollReadable
Napi::Value RelayFd(const Napi::CallbackInfo& info) {
  Relay* r = Get(info, "relayFd");
  if (!r) return {};
  return Napi::Number::New(info.Env(), r->ep);
}

// relayListen(relay, addr, port, backlog, addrs) -> listener id. IPv6 listeners are IPv6-only.
Napi::Value RelayListen(const Napi::CallbackInfo& info) {
  Relay* r = Get(info, "relayListen");
  if (!r) return {};
  Args a(info, "relayListen");
  std::string addr;
  int64_t port, backlog;
  bool addrs;
  if (!a.Str(1, "addr", addr) || !a.Int(2, "port", 0, 65535, port) || !a.Int(3, "backlog", 1, 65535, backlog) ||
      !a.Bool(4, "addrs", addrs))
    return {};
  sockaddr_storage ss;
  socklen_t len;
  if (!ParseSockaddr(addr, static_cast<uint16_t>(port), ss, len)) return a.Fail(true, "addr '" + addr + "' is not a numeric address"), Napi::Value();
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(a.Env(), a.Fn(), "socket", errno);
  int one = 1;
  const char* what = nullptr;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) what = "setsockopt(SO_REUSEADDR)";
  else if (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) what = "setsockopt(IPV6_V6ONLY)";
  else if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) what = "setsockopt(TCP_NODELAY)";
  else if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) < 0) what = "bind";
  else if (listen(fd, static_cast<int>(backlog)) < 0) what = "listen";
  if (what) {
    int err = errno;
    close(fd);
    return ThrowErrno(a.Env(), a.Fn(), what, err);
  }
  Listener* l = new Listener{fd, r->nextId++, addrs};
  epoll_event e{};
  e.events = EPOLLIN;  // level-triggered: a backlog longer than one batch is taken next run
  e.data.u64 = Tag(l, kTagListener);
  if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &e) < 0) {
    int err = errno;
    close(fd);
    delete l;
    return ThrowErrno(a.Env(), a.Fn(), "epoll_ctl", err);
  }
  r->listeners[l->id] = l;
  return Napi::Number::New(a.Env(), l->id);
}

// relayUnlisten(relay, listener id): closes the listener; its connections live on.
Napi::Value RelayUnlisten(const Napi::CallbackInfo& info) {
  Relay* r;
  uint32_t id;
  if (!GetId(info, "relayUnlisten", r, id)) return {};
  auto it = r->listeners.find(id);
  if (it != r->listeners.end()) {
    close(it->second->fd);
    delete it->second;
    r->listeners.erase(it);
  }
  return info.Env().Undefined();
}

// relayConnect(relay, conn id, fd, addr, port, timeoutMs, header?) -> false if the connection
// is gone (fd closed then). The relay owns fd from here (-1: a new socket in this namespace);
// it must be nonblocking (socketsInNetns makes them so), or connect would block the loop.
// `header` is written to the backend before any client byte (PROXY v2).
Napi::Value RelayConnect(const Napi::CallbackInfo& info) {
  Relay* r = Get(info, "relayConnect");
  if (!r) return {};
  Args a(info, "relayConnect");
  int64_t id, fd, port, timeout;
  std::string addr;
  if (!a.Int(1, "id", 0, UINT32_MAX, id) || !a.Int(2, "fd", -1, INT32_MAX, fd) || !a.Str(3, "addr", addr) ||
      !a.Int(4, "port", 1, 65535, port) || !a.Int(5, "timeoutMs", 1, INT32_MAX, timeout))
    return {};
  uint8_t* hdr = nullptr;
  size_t hdrLen = 0;
  if (a.Present(6) && !a.Array<uint8_t>(6, "header", 0, hdr, hdrLen)) return {};
  if (hdrLen > kScratch) return a.Fail(true, "header is too long"), Napi::Value();
  Napi::Env env = a.Env();
  int s = static_cast<int>(fd);
  auto it = r->conns.find(static_cast<uint32_t>(id));
  if (it == r->conns.end() || it->second->backend >= 0) {
    if (s >= 0) close(s);
    return Napi::Boolean::New(env, false);
  }
  Conn* c = it->second;
  sockaddr_storage ss;
  socklen_t len;
  if (!ParseSockaddr(addr, static_cast<uint16_t>(port), ss, len)) {
    if (s >= 0) close(s);
    return a.Fail(true, "addr '" + addr + "' is not a numeric address"), Napi::Value();
  }
  if (s < 0) s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return ThrowErrno(env, a.Fn(), "socket", errno);
  NoDelay(s);
  c->backend = s;
  SetConnecting(r, c, true);
  c->deadline = NowMs() + timeout;
  c->up.len = 0;
  if (hdrLen > 0) {
    c->up.pend.reset(new uint8_t[c->up.cap = hdrLen]);
    memcpy(c->up.pend.get(), hdr, hdrLen);
    c->up.off = 0;
    c->up.len = hdrLen;
  }
  epoll_event e{};
  e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  e.data.u64 = Tag(c, kTagBackend);
  if (epoll_ctl(r->ep, EPOLL_CTL_ADD, s, &e) < 0) {
    int err = errno;
    close(s);
    c->backend = -1;
    SetConnecting(r, c, false);
    return ThrowErrno(env, a.Fn(), "epoll_ctl", err);
  }
  // EINPROGRESS is the normal answer; an immediate failure is reported by the next relayRun
  // through SO_ERROR, the same way as a late one (EPOLLOUT|EPOLLERR fire at once).
  connect(s, reinterpret_cast<sockaddr*>(&ss), len);
  return Napi::Boolean::New(env, true);
}

// relayReset(relay, conn id) -> [bytes up, bytes down] or null if unknown: RST to both ends.
Napi::Value RelayReset(const Napi::CallbackInfo& info) {
  Relay* r;
  uint32_t id;
  if (!GetId(info, "relayReset", r, id)) return {};
  Napi::Env env = info.Env();
  auto it = r->conns.find(id);
  if (it == r->conns.end()) return env.Null();
  Conn* c = it->second;
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, c->up.bytes));
  out.Set(1u, Napi::Number::New(env, c->down.bytes));
  Finish(r, c, true, nullptr);
  Reap(r);
  return out;
}

// relayRun(relay) -> events: [1, id, listener, remoteAddr, remotePort, localAddr, localPort]
// ACCEPT, [2, id] CONNECTED, [3, id, errno] CONNECT_FAILED, [4, id, up, down, reset] CLOSED.
Napi::Value RelayRun(const Napi::CallbackInfo& info) {
  Relay* r = Get(info, "relayRun");
  if (!r) return {};
  Events ev(info.Env());
  Run(r, ev);
  return ev.arr_;
}

// relayCount(relay) -> connections held (accepted and not yet closed)
Napi::Value RelayCount(const Napi::CallbackInfo& info) {
  Relay* r = Get(info, "relayCount");
  if (!r) return {};
  return Napi::Number::New(info.Env(), static_cast<double>(r->conns.size()));
}

// relayDestroy(relay): closes every listener and connection (FIN, not reset).
Napi::Value RelayDestroy(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsExternal()) {
    Napi::TypeError::New(info.Env(), "relayDestroy: relay must be a handle from relayCreate").ThrowAsJavaScriptException();
    return {};
  }
  Destroy(info[0].As<Napi::External<Relay>>().Data());
  return info.Env().Undefined();
}

}  // namespace tapmesh
