// A thread's EEVDF slice (Linux 6.12+): how long it may run before the scheduler
// considers another task, and so how soon, once woken, it may preempt the task running on
// the CPU it was placed on. A thread that waits for other processes (a watcher, the
// event loop's thread) runs for microseconds per wake; asking for a short slice lets it
// preempt a busy thread there at once instead of waiting for that thread's slice
// (milliseconds) to end. No privilege is needed: SCHED_OTHER keeps its policy and nice.
#pragma once
#include <cstdint>

namespace rm {

// Asks the kernel for a `us`-microsecond slice for the calling thread (clamped by the
// kernel to 100 µs..100 ms); 0 asks for the default back. Returns 0 or -errno. Kernels
// before 6.12 accept the request and ignore it.
int request_thread_slice(uint32_t us);

// The slice this process's library threads (watchers, the eventfd channel's doorbell
// thread) ask for when they start; 0: they keep the kernel's. Set from the `wakeSliceUs`
// option before the process's first environment attaches.
void set_library_thread_slice(uint32_t us);
// Called by a library thread as it starts.
void apply_library_thread_slice();

}  // namespace rm
