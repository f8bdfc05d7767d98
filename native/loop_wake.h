// The event-loop side of delivery (delivery.h): a libuv poll handle on the
// environment's wake fd and a sweep timer, on the environment's own loop. The loop
// calls back on its own thread; the caller turns that into JS calls.
#pragma once
#include <cstdint>

namespace rm {

struct LoopWake;

struct LoopWakeCallbacks {
  void (*ready)(void* ctx);   // the wake fd is readable
  void (*sweep)(void* ctx);   // the sweep timer fired
  void* ctx;
  // Both handles are closed (after loop_wake_close). Its own context: the one above
  // may be gone by then.
  void (*closed)(void* closed_ctx);
  void* closed_ctx;
};

// `loop` is the environment's uv_loop_t (napi_get_uv_event_loop). nullptr on failure.
LoopWake* loop_wake_start(void* loop, int fd, const LoopWakeCallbacks& cb);
// Keep the loop alive while IO or waits are pending (ref), not otherwise. Cheap if unchanged.
void loop_wake_ref(LoopWake* w, bool ref);
// Run the sweep every `ms` milliseconds (0: stop it). Cheap if unchanged. The timer
// never keeps the loop alive by itself.
void loop_wake_sweep_every(LoopWake* w, uint32_t ms);
// Close both handles; `closed` is called from the loop once they are, and `w` is freed.
void loop_wake_close(LoopWake* w);

}  // namespace rm
