// The fallback backend: used when io_uring is unavailable (ENOSYS, EPERM from
// kernel.io_uring_disabled or seccomp, ENOMEM from memlock) or forced with
// RINGMASTER_BACKEND=threads. Same handle table, same doorbells, same completion
// actions; the IO is done by a per-process pool of threads with pread/pwrite/
// fdatasync. Links are a chain run in order on one thread; IOSQE_IO_DRAIN is
// emulated across processes with the tb_* words in the segment header.
#pragma once
#include <cstdint>

#include "uring.h"

namespace rm {

struct Segment;
struct ThreadBackend;

ThreadBackend* thread_backend_start(Segment* seg, int threads);
// Cancels queued chains and waits up to `timeout_ns` for the pool to exit. Returns
// false if a thread is stuck in a blocking syscall: it is detached, and the caller
// must then keep the segment mapped (the thread may still touch it).
bool thread_backend_stop(ThreadBackend* tb, int64_t timeout_ns);
// This process opened the file itself: use that fd for its slot (generation `gen`).
void thread_backend_adopt_fd(ThreadBackend* tb, uint32_t file_slot, uint32_t gen, int fd);
// The file was closed: drop this process's fd once in-flight IO is done with it.
void thread_backend_forget_fd(ThreadBackend* tb, uint32_t file_slot);
// Queues the requests; completion is delivered through the handle table. `issuer`
// is the slot that owns the handles (for dead-process accounting).
int thread_backend_submit(ThreadBackend* tb, const SqeRequest* reqs, uint32_t n, uint32_t issuer);
// Complete every chain `issuer` has queued but not started with -ECANCELED (its
// environment is going away). Returns the number of requests cancelled.
uint32_t thread_backend_cancel_issuer(ThreadBackend* tb, uint32_t issuer);
// A process died: forget the drain accounting it held.
void thread_backend_forget_slot(Segment* seg, uint32_t slot);

}  // namespace rm
