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
void thread_backend_stop(ThreadBackend* tb);
// Queues the requests; completion is delivered through the handle table. `issuer`
// is the slot that owns the handles (for dead-process accounting).
int thread_backend_submit(ThreadBackend* tb, const SqeRequest* reqs, uint32_t n, uint32_t issuer);
// Complete every chain `issuer` has queued but not started with -ECANCELED (its
// environment is going away). Returns the number of requests cancelled.
uint32_t thread_backend_cancel_issuer(ThreadBackend* tb, uint32_t issuer);
// A process died: forget the drain accounting it held.
void thread_backend_forget_slot(Segment* seg, uint32_t slot);

}  // namespace rm
