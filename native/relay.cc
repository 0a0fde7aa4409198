// TCP relay for the routing mesh: accept on listening sockets, a nonblocking connect on a
// socket the caller hands in, then bytes both ways with half-close, all on one epoll set that
// the caller watches with pollReadable and drains with relayRun. Which task a connection goes
// to, retries, PROXY v2 encoding and counters stay in TypeScript (balancer/mesh.ts): this file
// only moves descriptors and bytes, so a connection costs a few syscalls and no JS objects
// beyond its events.
//   relayRun, per ready descriptor:
//   1. listener: accept4 up to kAcceptBatch, event ACCEPT (addresses for PROXY v2).
//   2. backend connecting: SO_ERROR → CONNECTED (pump both ways) or CONNECT_FAILED.
//   3. spliced: pump(client → backend) and pump(backend → client); EOF is passed on as
//      shutdown(SHUT_WR), the other direction keeps flowing; both ends done → CLOSED.
//   4. an error or RST on either side resets the other (SO_LINGER 0) → CLOSED with reset.
//   5. connects past their deadline fail with ETIMEDOUT.
#include "common.h"

#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <time.h>

#include <memory>
#include <unordered_map>

namespace tapmesh {
namespace {

constexpr int kAcceptBatch = 64;
constexpr int kEvents = 256;
// One read per direction per turn, and the most a direction holds when its destination is
// full (a stalled reader costs at most this per direction, on top of the socket buffers).
constexpr size_t kScratch = 64 * 1024;
// Event kinds, as in native/index.ts RelayEvent.
constexpr int kAccept = 1, kConnected = 2, kConnectFailed = 3, kClosed = 4;

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// One direction of a spliced connection.
struct Flow {
  std::unique_ptr<uint8_t[]> pend;  // bytes read but not yet written (the destination was full)
  size_t cap = 0, off = 0, len = 0;
  bool fin = false;   // an event said the source sent FIN (EPOLLRDHUP): all its data is queued
  bool hup = false;   // an event said the source failed (EPOLLERR/EPOLLHUP): read on to the error
  bool eof = false;   // the source sent FIN
  bool shut = false;  // FIN passed on to the destination
  double bytes = 0;
};

struct Conn {
  uint32_t id;
  int client = -1, backend = -1;
  bool connecting = false, spliced = false, dead = false;
  int64_t deadline = 0;
  Flow up, down;  // up: client → backend; down: backend → client
};

struct Listener {
  int fd;
  uint32_t id;
  bool addrs;  // report the client's addresses on ACCEPT (PROXY v2): one getsockname more
};

struct Relay {
  int ep = -1;
  uint32_t nextId = 1;
  std::unordered_map<uint32_t, Conn*> conns;
  std::unordered_map<uint32_t, Listener*> listeners;
  std::vector<Conn*> graveyard;  // freed after the epoll batch that closed them
  std::unique_ptr<uint8_t[]> scratch{new uint8_t[kScratch]};
};

// epoll data: the pointer with the low bits telling what it is.
constexpr uint64_t kTagListener = 1, kTagClient = 2, kTagBackend = 3;
uint64_t Tag(void* p, uint64_t t) { return reinterpret_cast<uint64_t>(p) | t; }

void Linger0(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

void NoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

std::string AddrString(const sockaddr_storage& ss, int& port) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (ss.ss_family == AF_INET) {
    auto* s = reinterpret_cast<const sockaddr_in*>(&ss);
    inet_ntop(AF_INET, &s->sin_addr, buf, sizeof buf);
    port = ntohs(s->sin_port);
  } else if (ss.ss_family == AF_INET6) {
    auto* s = reinterpret_cast<const sockaddr_in6*>(&ss);
    inet_ntop(AF_INET6, &s->sin6_addr, buf, sizeof buf);
    port = ntohs(s->sin6_port);
  }
  return buf;
}

// A numeric IPv4 or IPv6 address, whichever it is.
bool ParseSockaddr(const std::string& addr, uint16_t port, sockaddr_storage& ss, socklen_t& len) {
  return ParseAddr(AF_INET, addr, port, ss, len) || ParseAddr(AF_INET6, addr, port, ss, len);
}

class Events {
 public:
  explicit Events(Napi::Env env) : env_(env), arr_(Napi::Array::New(env)) {}
  Napi::Value Num(double v) const { return Napi::Number::New(env_, v); }
  Napi::Array Make(int kind, uint32_t id, size_t extra) {
    Napi::Array e = Napi::Array::New(env_, 2 + extra);
    e.Set(0u, Num(kind));
    e.Set(1u, Num(id));
    arr_.Set(n_++, e);
    return e;
  }
  void Closed(const Conn* c, bool reset) {
    Napi::Array e = Make(kClosed, c->id, 3);
    e.Set(2u, Num(c->up.bytes));
    e.Set(3u, Num(c->down.bytes));
    e.Set(4u, Napi::Boolean::New(env_, reset));
  }
  Napi::Env env_;
  Napi::Array arr_;
  uint32_t n_ = 0;
};

void Bury(Relay* r, Conn* c) {
  c->dead = true;
  r->conns.erase(c->id);
  r->graveyard.push_back(c);
}

// Closes both ends; `reset` sends RST to each end still open instead of FIN.
void Finish(Relay* r, Conn* c, bool reset, Events* ev) {
  if (c->dead) return;
  for (int* fd : {&c->client, &c->backend}) {
    if (*fd < 0) continue;
    if (reset) Linger0(*fd);
    close(*fd);  // also leaves the epoll set
    *fd = -1;
  }
  if (ev) ev->Closed(c, reset);
  Bury(r, c);
}

// 3. Moves what src has into dst until src is empty or dst is full. False on an error. A short
// read ends the turn (edge-triggered epoll reports the next arrival); if the source's FIN was
// seen (f.fin, kept: that edge does not come again), a short read has emptied the queue up to
// it, so it is the EOF without a read returning 0; after an error (f.hup) read on to it. When
// the other direction is already done, EOF needs no shutdown(): Finish closes both ends.
bool Pump(Relay* r, Flow& f, const Flow& other, int src, int dst) {
  for (;;) {
    while (f.len > 0) {
      ssize_t w = send(dst, f.pend.get() + f.off, f.len, MSG_NOSIGNAL);
      if (w < 0) return errno == EAGAIN || errno == EINTR;
      f.off += static_cast<size_t>(w);
      f.len -= static_cast<size_t>(w);
    }
    if (f.eof) {
      if (!f.shut) {
        f.shut = true;
        if (!other.shut && shutdown(dst, SHUT_WR) < 0 && errno != ENOTCONN) return false;
      }
      return true;
    }
    ssize_t n = recv(src, r->scratch.get(), kScratch, 0);
    if (n == 0) {
      f.eof = true;
      continue;
    }
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    f.bytes += static_cast<double>(n);
    ssize_t w = send(dst, r->scratch.get(), static_cast<size_t>(n), MSG_NOSIGNAL);
    if (w < 0) {
      if (errno != EAGAIN) return false;
      w = 0;
    }
    if (w < n) {
      // dst is full: keep the rest and stop reading src until EPOLLOUT on dst.
      if (f.cap < kScratch) f.pend.reset(new uint8_t[f.cap = kScratch]);
      f.off = 0;
      f.len = static_cast<size_t>(n - w);
      memcpy(f.pend.get(), r->scratch.get() + w, f.len);
    } else if (static_cast<size_t>(n) < kScratch && !f.hup) {
      if (!f.fin) return true;
      f.eof = true;
    }
  }
}

// Pumps the directions `up`/`down` asks for; ends the connection when both are done.
void PumpConn(Relay* r, Conn* c, bool up, bool down, Events& ev) {
  if ((up && !Pump(r, c->up, c->down, c->client, c->backend)) || (down && !Pump(r, c->down, c->up, c->backend, c->client)))
    return Finish(r, c, true, &ev);
  if (c->up.shut && c->down.shut) Finish(r, c, false, &ev);
}

void Accept(Relay* r, Listener* l, Events& ev) {
  for (int i = 0; i < kAcceptBatch; i++) {
    sockaddr_storage peer{}, local{};
    socklen_t pl = sizeof peer, ll = sizeof local;
    int fd = accept4(l->fd, reinterpret_cast<sockaddr*>(&peer), &pl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a connection reset before accept: nothing to report
    if (l->addrs) getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll);
    Conn* c = new Conn();
    c->id = r->nextId++;
    if (c->id == 0) c->id = r->nextId++;
    c->client = fd;  // TCP_NODELAY comes from the listener (Linux copies it to accepted sockets)
    epoll_event e{};
    // Edge-triggered: nothing is read until a backend is attached (a FIN or data waits in the
    // kernel); an RST before then ends the connection.
    e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    e.data.u64 = Tag(c, kTagClient);
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, fd, &e) < 0) {  // ENOMEM/ENOSPC: refuse it, never strand it
      Linger0(fd);
      close(fd);
      delete c;
      continue;
    }
    r->conns[c->id] = c;
    Napi::Array a = ev.Make(kAccept, c->id, l->addrs ? 5 : 1);
    a.Set(2u, ev.Num(l->id));
    if (!l->addrs) continue;
    int pport = 0, lport = 0;
    std::string pa = AddrString(peer, pport), la = AddrString(local, lport);
    a.Set(3u, Napi::String::New(ev.env_, pa));
    a.Set(4u, ev.Num(pport));
    a.Set(5u, Napi::String::New(ev.env_, la));
    a.Set(6u, ev.Num(lport));
  }
}

// 2. The backend's connect finished one way or the other.
void Connected(Relay* r, Conn* c, uint32_t what, Events& ev) {
  int err = 0;
  socklen_t el = sizeof err;
  // Writable without an error: connected (no getsockopt needed).
  if ((what & (EPOLLERR | EPOLLHUP)) || !(what & EPOLLOUT))
    if (getsockopt(c->backend, SOL_SOCKET, SO_ERROR, &err, &el) < 0) err = errno;
  if (err == 0 && !(what & EPOLLOUT)) return;  // not finished yet
  if (err == EINPROGRESS || err == EALREADY) return;
  if (err != 0) {
    close(c->backend);
    c->backend = -1;
    c->connecting = false;
    ev.Make(kConnectFailed, c->id, 1).Set(2u, ev.Num(err));
    return;
  }
  c->connecting = false;
  c->spliced = true;
  ev.Make(kConnected, c->id, 0);
  // The client's edges came before the backend was there: read what it sent (to its EOF if it
  // hung up); the backend's direction only if this event says it has something.
  if (what & EPOLLRDHUP) c->down.fin = true;
  if (what & (EPOLLERR | EPOLLHUP)) c->down.hup = true;
  PumpConn(r, c, true, what & (EPOLLIN | EPOLLRDHUP), ev);
}

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

void Destroy(Relay* r) {
  if (r->ep < 0) return;
  for (auto& [id, c] : r->conns) {
    for (int fd : {c->client, c->backend})
      if (fd >= 0) close(fd);
    delete c;
  }
  r->conns.clear();
  for (auto& [id, l] : r->listeners) {
    close(l->fd);
    delete l;
  }
  r->listeners.clear();
  for (Conn* c : r->graveyard) delete c;
  r->graveyard.clear();
  close(r->ep);
  r->ep = -1;
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
  c->connecting = true;
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
    c->connecting = false;
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
  for (Conn* d : r->graveyard) delete d;
  r->graveyard.clear();
  return out;
}

// relayRun(relay) -> events: [1, id, listener, remoteAddr, remotePort, localAddr, localPort]
// ACCEPT, [2, id] CONNECTED, [3, id, errno] CONNECT_FAILED, [4, id, up, down, reset] CLOSED.
Napi::Value RelayRun(const Napi::CallbackInfo& info) {
  Relay* r = Get(info, "relayRun");
  if (!r) return {};
  Events ev(info.Env());
  epoll_event es[kEvents];
  int n = epoll_wait(r->ep, es, kEvents, 0);
  for (int i = 0; i < n; i++) {
    uint64_t tag = es[i].data.u64 & 3;
    void* p = reinterpret_cast<void*>(es[i].data.u64 & ~uint64_t{3});
    if (tag == kTagListener) {
      Accept(r, static_cast<Listener*>(p), ev);
      continue;
    }
    Conn* c = static_cast<Conn*>(p);
    if (c->dead) continue;
    uint32_t what = es[i].events;
    constexpr uint32_t kIn = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
    if (tag == kTagBackend && c->connecting) {
      Connected(r, c, what, ev);
    } else if (c->spliced) {
      // Readable end: its direction; writable end: the direction held up writing to it, if
      // any. Errors surface as recv/send failures.
      bool in = what & kIn, out = what & EPOLLOUT;
      Flow& from = tag == kTagClient ? c->up : c->down;
      if (what & EPOLLRDHUP) from.fin = true;
      if (what & (EPOLLERR | EPOLLHUP)) from.hup = true;
      if (tag == kTagClient) PumpConn(r, c, in, out && c->down.len > 0, ev);
      else PumpConn(r, c, out && c->up.len > 0, in, ev);
    } else if (tag == kTagClient && (what & (EPOLLERR | EPOLLHUP))) {
      Finish(r, c, true, &ev);  // the client reset or vanished before a backend took it
    } else if (tag == kTagClient && (what & EPOLLRDHUP)) {
      c->up.fin = true;  // a half-close: passed on once connected
    }
  }
  // 5. Connect deadlines.
  int64_t now = NowMs();
  for (auto& [id, c] : r->conns) {
    if (!c->connecting || c->deadline > now) continue;
    epoll_ctl(r->ep, EPOLL_CTL_DEL, c->backend, nullptr);
    close(c->backend);
    c->backend = -1;
    c->connecting = false;
    ev.Make(kConnectFailed, c->id, 1).Set(2u, ev.Num(ETIMEDOUT));
  }
  for (Conn* c : r->graveyard) delete c;
  r->graveyard.clear();
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
