// Readiness on the libuv loop (uv_poll) and busy polling (uv_idle).
#include "common.h"

#include <sys/epoll.h>

namespace tapmesh {
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
  Napi::HandleScope scope(p->env);
  // The C calls, not Napi::Function::Call: when the thread is being torn down (a worker's
  // terminate()) the call fails, and node-addon-api would turn that into a throw, which
  // cannot succeed either and aborts the whole process. A failed call is dropped.
  napi_value global, fn, ignored;
  if (napi_get_global(p->env, &global) != napi_ok || napi_get_reference_value(p->env, p->cb, &fn) != napi_ok || fn == nullptr) return;
  // MakeCallback opens a callback scope: async hooks see it and microtasks / nextTicks run
  // when it returns.
  napi_status st = p->raw ? napi_call_function(p->env, global, fn, 0, nullptr, &ignored)
                          : napi_make_callback(p->env, p->async, global, fn, 0, nullptr, &ignored);
  if (st == napi_ok) return;
  bool pending = false;
  napi_value err;
  if (napi_is_exception_pending(p->env, &pending) != napi_ok || !pending) return;  // teardown: JS cannot run
  if (napi_get_and_clear_last_exception(p->env, &err) != napi_ok) return;
  napi_fatal_exception(p->env, err);  // the callback threw: 'uncaughtException' on this thread
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
// handle keeps libuv from blocking, and its callback spins on the loop's own epoll set in
// slices of up to kSpinSliceNs, so a packet arriving during the window is seen without the
// wake-up of a sleeping thread (costly on VMs: an IPI and a VM entry). The handle is unref'd
// (it never keeps the loop alive) and its callback is C only: no JS runs, nothing is
// allocated while spinning.

struct Awake {
  uv_idle_t idle;
  uint64_t deadline = 0;
  bool active = false;
  napi_async_cleanup_hook_handle hook = nullptr;
};
thread_local Awake* tls_awake = nullptr;

// Longest stay inside one OnIdle: timers and closing handles wait at most this long.
constexpr uint64_t kSpinSliceNs = 200 * 1000;

void OnIdle(uv_idle_t* h) {
  Awake* w = static_cast<Awake*>(h->data);
  uint64_t now = uv_hrtime();
  if (now >= w->deadline) {
    uv_idle_stop(h);
    w->active = false;
    return;
  }
  // Spin here rather than through the loop: each loop turn also runs Node's check phase (a new
  // JS object and a callback scope for its native immediates: ~8 MB/s of garbage while
  // spinning) and libuv's bookkeeping. The loop's epoll set is level-triggered, so a peek at
  // it leaves the readiness for libuv; return as soon as anything is ready, or after a slice.
  int ep = uv_backend_fd(h->loop);
  uint64_t until = std::min(w->deadline, now + kSpinSliceNs);
  epoll_event ev;
  do {
    // Spin only on otherwise idle CPU: any runnable task here (the container's process waiting
    // for the packet we just delivered, a softirq thread) goes first.
    sched_yield();
    if (ep < 0 || epoll_wait(ep, &ev, 1, 0) != 0) return;
  } while (uv_hrtime() < until);
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


}  // namespace tapmesh
