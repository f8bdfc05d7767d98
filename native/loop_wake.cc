#include "loop_wake.h"

#include <uv.h>

namespace rm {

struct LoopWake {
  uv_poll_t poll;
  uv_timer_t timer;
  LoopWakeCallbacks cb;
  bool referenced = false;
  uint32_t sweep_ms = 0;
  int open_handles = 0;
};

namespace {

void on_poll(uv_poll_t* h, int status, int events) {
  auto* w = static_cast<LoopWake*>(h->data);
  (void)status;  // an error (EBADF after close) still means: look
  (void)events;
  w->cb.ready(w->cb.ctx);
}

void on_timer(uv_timer_t* t) {
  auto* w = static_cast<LoopWake*>(t->data);
  w->cb.sweep(w->cb.ctx);
}

void on_close(uv_handle_t* h) {
  auto* w = static_cast<LoopWake*>(h->data);
  if (--w->open_handles > 0) return;
  LoopWakeCallbacks cb = w->cb;
  delete w;
  if (cb.closed) cb.closed(cb.closed_ctx);
}

}  // namespace

LoopWake* loop_wake_start(void* loop_ptr, int fd, const LoopWakeCallbacks& cb) {
  auto* loop = static_cast<uv_loop_t*>(loop_ptr);
  auto* w = new LoopWake();
  w->cb = cb;
  if (uv_poll_init(loop, &w->poll, fd) != 0) {
    delete w;
    return nullptr;
  }
  w->poll.data = w;
  w->open_handles = 1;
  uv_timer_init(loop, &w->timer);
  w->timer.data = w;
  w->open_handles = 2;
  uv_unref(reinterpret_cast<uv_handle_t*>(&w->timer));  // the sweep alone never keeps the loop alive
  uv_poll_start(&w->poll, UV_READABLE, on_poll);
  uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));   // nothing pending yet
  return w;
}

void loop_wake_ref(LoopWake* w, bool ref) {
  if (w->referenced == ref) return;
  w->referenced = ref;
  if (ref) uv_ref(reinterpret_cast<uv_handle_t*>(&w->poll));
  else uv_unref(reinterpret_cast<uv_handle_t*>(&w->poll));
}

void loop_wake_sweep_every(LoopWake* w, uint32_t ms) {
  if (w->sweep_ms == ms) return;
  w->sweep_ms = ms;
  if (ms == 0) uv_timer_stop(&w->timer);
  else uv_timer_start(&w->timer, on_timer, ms, ms);
}

void loop_wake_close(LoopWake* w) {
  uv_poll_stop(&w->poll);
  uv_timer_stop(&w->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->timer), on_close);
}

}  // namespace rm
