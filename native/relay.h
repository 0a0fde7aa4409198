// The routing mesh's TCP relay (relay.cc), shared with its N-API bindings (relay-api.cc):
// the connection table and the events relayRun hands back.
#pragma once
#include "common.h"

#include <sys/epoll.h>

#include <memory>
#include <unordered_map>

namespace tapmesh {
namespace relay {

constexpr int kAcceptBatch = 64;
constexpr int kEvents = 256;
// One read per direction per turn, and the most a direction holds when its destination is
// full (a stalled reader costs at most this per direction, on top of the socket buffers).
constexpr size_t kScratch = 64 * 1024;
// Event kinds, as in native/index.ts RelayEvent.
constexpr int kAccept = 1, kConnected = 2, kConnectFailed = 3, kClosed = 4;


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
  // The connections whose backend connect is in flight: the deadline check walks these, not
  // every open connection (idle ones may number in the hundred thousands, with no idle timer).
  std::unordered_map<uint32_t, Conn*> dialing;
  std::unordered_map<uint32_t, Listener*> listeners;
  std::vector<Conn*> graveyard;  // freed after the epoll batch that closed them
  std::unique_ptr<uint8_t[]> scratch{new uint8_t[kScratch]};
};

// epoll data: the pointer with the low bits telling what it is.
constexpr uint64_t kTagListener = 1, kTagClient = 2, kTagBackend = 3;
inline uint64_t Tag(void* p, uint64_t t) { return reinterpret_cast<uint64_t>(p) | t; }

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

// Marks c as dialling a backend or not (c->connecting, and its place in r->dialing).
void SetConnecting(Relay* r, Conn* c, bool on);
void Linger0(int fd);
void NoDelay(int fd);
bool ParseSockaddr(const std::string& addr, uint16_t port, sockaddr_storage& ss, socklen_t& len);
int64_t NowMs();
// Closes both ends; `reset` sends RST to each end still open instead of FIN.
void Finish(Relay* r, Conn* c, bool reset, Events* ev);
void Reap(Relay* r);
void Run(Relay* r, Events& ev);
void Destroy(Relay* r);

}  // namespace relay
}  // namespace tapmesh
