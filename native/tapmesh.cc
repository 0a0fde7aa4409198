// tapmesh native addon: the few Linux syscalls Node lacks (TAP devices, batched UDP with
// GSO/GRO, fd readiness on the libuv loop, the routing mesh's TCP relay) and batched AES-GCM over the OpenSSL Node carries.
// Thin by design: no protocol logic lives here.
// The TypeScript contract, with semantics, is native/index.ts (interface NativeAddon).
//
// Rules followed throughout:
// - Every argument is checked before any syscall (TypeError / RangeError, never a crash).
// - Batched calls cross JS->C++ once and allocate nothing per frame: frames are read from and
//   written to the caller's buffers through their data pointers.
// - No shared mutable globals: per-thread scratch is thread_local, per-environment state
//   (poll handles) is owned by the handle itself, so the addon works in worker_threads.
#include "common.h"

namespace tapmesh {

// Defined in tap.cc, udp.cc, poll.cc and netns.cc.
Napi::Value TapOpen(const Napi::CallbackInfo& info);
Napi::Value TapSetOffload(const Napi::CallbackInfo& info);
Napi::Value TapSetVnetHdrSize(const Napi::CallbackInfo& info);
Napi::Value ReadFrames(const Napi::CallbackInfo& info);
Napi::Value WriteFrames(const Napi::CallbackInfo& info);
Napi::Value UdpOpen(const Napi::CallbackInfo& info);
Napi::Value UdpSetGro(const Napi::CallbackInfo& info);
Napi::Value UdpRecv(const Napi::CallbackInfo& info);
Napi::Value UdpSend(const Napi::CallbackInfo& info);
Napi::Value UdpSendGso(const Napi::CallbackInfo& info);
Napi::Value UdpSendGsoBatch(const Napi::CallbackInfo& info);
Napi::Value PollReadable(const Napi::CallbackInfo& info);
Napi::Value KeepAwake(const Napi::CallbackInfo& info);
Napi::Value SocketInNetns(const Napi::CallbackInfo& info);
Napi::Value SocketsInNetns(const Napi::CallbackInfo& info);
Napi::Value SocketBind(const Napi::CallbackInfo& info);
// Defined in relay.cc.
Napi::Value RelayCreate(const Napi::CallbackInfo& info);
Napi::Value RelayFd(const Napi::CallbackInfo& info);
Napi::Value RelayListen(const Napi::CallbackInfo& info);
Napi::Value RelayUnlisten(const Napi::CallbackInfo& info);
Napi::Value RelayConnect(const Napi::CallbackInfo& info);
Napi::Value RelayReset(const Napi::CallbackInfo& info);
Napi::Value RelayRun(const Napi::CallbackInfo& info);
Napi::Value RelayCount(const Napi::CallbackInfo& info);
Napi::Value RelayDestroy(const Napi::CallbackInfo& info);
// Defined in aead.cc.
Napi::Value AeadCreate(const Napi::CallbackInfo& info);
Napi::Value AeadDestroy(const Napi::CallbackInfo& info);
Napi::Value AeadCount(const Napi::CallbackInfo& info);
Napi::Value AeadSeal(const Napi::CallbackInfo& info);
Napi::Value AeadOpen(const Napi::CallbackInfo& info);
Napi::Value AeadInfo(const Napi::CallbackInfo& info);
// Defined in checksum.cc (raw N-API: called per segment or batch).
napi_value CsumSum(napi_env env, napi_callback_info info);
napi_value CsumBatch(napi_env env, napi_callback_info info);
// Defined in copy.cc (raw N-API: one call per super-frame).
napi_value CopyBatch(napi_env env, napi_callback_info info);

// Registers a raw N-API callback (no Napi::CallbackInfo wrapper on the hot path).
static void SetRaw(Napi::Env env, Napi::Object exports, const char* name, napi_callback cb) {
  napi_value fn;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, nullptr, &fn);
  exports.Set(name, Napi::Value(env, fn));
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
  exports.Set("socketInNetns", Napi::Function::New(env, SocketInNetns, "socketInNetns"));
  exports.Set("socketsInNetns", Napi::Function::New(env, SocketsInNetns, "socketsInNetns"));
  exports.Set("socketBind", Napi::Function::New(env, SocketBind, "socketBind"));
  exports.Set("close", Napi::Function::New(env, Close, "close"));
  for (auto [name, fn] : {std::pair{"relayCreate", RelayCreate}, {"relayFd", RelayFd}, {"relayListen", RelayListen},
                          {"relayUnlisten", RelayUnlisten}, {"relayConnect", RelayConnect}, {"relayReset", RelayReset},
                          {"relayRun", RelayRun}, {"relayCount", RelayCount}, {"relayDestroy", RelayDestroy}})
    exports.Set(name, Napi::Function::New(env, fn, name));
  exports.Set("aeadCreate", Napi::Function::New(env, AeadCreate, "aeadCreate"));
  exports.Set("aeadDestroy", Napi::Function::New(env, AeadDestroy, "aeadDestroy"));
  exports.Set("aeadCount", Napi::Function::New(env, AeadCount, "aeadCount"));
  exports.Set("aeadSeal", Napi::Function::New(env, AeadSeal, "aeadSeal"));
  exports.Set("aeadOpen", Napi::Function::New(env, AeadOpen, "aeadOpen"));
  exports.Set("aeadInfo", Napi::Function::New(env, AeadInfo, "aeadInfo"));
  SetRaw(env, exports, "csumSum", CsumSum);
  SetRaw(env, exports, "csumBatch", CsumBatch);
  SetRaw(env, exports, "copyBatch", CopyBatch);
  return exports;
}

}  // namespace tapmesh

Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return tapmesh::Init(env, exports); }

NODE_API_MODULE(tapmesh_native, InitAddon)