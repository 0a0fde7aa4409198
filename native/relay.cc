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
#include "relay.h"

#include <netinet/tcp.h>
#include <time.h>

namespace tapmesh {
namespace relay {

int64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

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

void SetConnecting(Relay* r, Conn* c, bool on) {
  c->connecting = on;
  if (on) r->dialing[c->id] = c;
  else r->dialing.erase(c->id);
}

void Bury(Relay* r, Conn* c) {
  c->dead = true;
  if (c->connecting) SetConnecting(r, c, false);
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
    SetConnecting(r, c, false);
    ev.Make(kConnectFailed, c->id, 1).Set(2u, ev.Num(err));
    return;
  }
  SetConnecting(r, c, false);
  c->spliced = true;
  ev.Make(kConnected, c->id, 0);
  // The client's edges came before the backend was there: read what it sent (to its EOF if it
  // hung up); the backend's direction only if this event says it has something.
  if (what & EPOLLRDHUP) c->down.fin = true;
  if (what & (EPOLLERR | EPOLLHUP)) c->down.hup = true;
  PumpConn(r, c, true, what & (EPOLLIN | EPOLLRDHUP), ev);
}

// Frees the connections closed since the last call (events of this batch may still name them).
void Reap(Relay* r) {
  for (Conn* c : r->graveyard) delete c;
  r->graveyard.clear();
}

// The relayRun steps above, for what is ready now.
void Run(Relay* r, Events& ev) {
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
  // 5. Connect deadlines (only the connections still dialling: a few, however many are open).
  int64_t now = NowMs();
  for (auto it = r->dialing.begin(); it != r->dialing.end();) {
    Conn* c = it->second;
    if (c->deadline > now) {
      ++it;
      continue;
    }
    it = r->dialing.erase(it);
    c->connecting = false;
    epoll_ctl(r->ep, EPOLL_CTL_DEL, c->backend, nullptr);
    close(c->backend);
    c->backend = -1;
    ev.Make(kConnectFailed, c->id, 1).Set(2u, ev.Num(ETIMEDOUT));
  }
  Reap(r);
}

void Destroy(Relay* r) {
  if (r->ep < 0) return;
  for (auto& [id, c] : r->conns) {
    for (int fd : {c->client, c->backend})
      if (fd >= 0) close(fd);
    delete c;
  }
  r->conns.clear();
  r->dialing.clear();
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

}  // namespace relay
}  // namespace tapmesh
