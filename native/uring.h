// One io_uring ring shared by many processes. The ring itself lives in kernel
// memory that each process mmaps from the ring fd; what the processes share
// besides is `RingShared` in the segment header: the two cross-process locks and
// the submission intent record used to repair after a submitter dies.
//
// Submission: submit_lock is held from reading the SQ tail, through writing SQEs
// and publishing the tail, to io_uring_enter. Whoever enters submits every published
// SQE under its own identity (fd table, mm, creds: io_submit_sqes in io_uring/io_uring.c
// runs in the entering task), so an SQE must never be left published for another
// process to submit. Reaping: complete_lock is
// held while the CQ head is advanced; every CQE is validated before use.
#pragma once
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "robust_lock.h"

namespace rm {

struct Segment;

struct RingShared {
  RobustLock submit_lock;
  RobustLock complete_lock;
  uint32_t sq_entries;
  uint32_t cq_entries;
  uint32_t setup_flags;
  uint32_t features;
  struct io_sqring_offsets sq_off;
  struct io_cqring_offsets cq_off;
  uint32_t owner_slot;        // per-process topology: the slot that submits here; ~0 = shared
  // Submission intent, written under submit_lock, read by the next holder if this
  // one died (EOWNERDEAD): the SQ tail it started from, how many SQEs it meant to
  // publish and how many it had written (each counted before its handle is marked
  // SUBMITTED, so a SUBMITTED handle of an unpublished batch is always behind a counted
  // SQE). Whether it published is read from the SQ tail itself (== intent_tail: not
  // yet), so no window separates the two.
  uint32_t intent_active;
  uint32_t intent_tail;
  uint32_t intent_count;
  uint32_t intent_prepared;
  // statistics (relaxed)
  uint64_t stat_sqes;
  uint64_t stat_enters;
  uint64_t stat_cqes;
  uint64_t stat_corrupt_cqes;
  uint64_t stat_stale_cqes;
  uint64_t stat_overflow_flushes;
  uint64_t stat_submit_repairs;
  uint64_t stat_reap_repairs;
  uint64_t stat_orphans_reaped;
  uint64_t stat_watcher_reaps;  // CQEs reaped by watcher threads (the rest by JS threads)
};

// This process's mapping of one ring.
struct RingMap {
  int fd = -1;
  // Registered with IORING_REGISTER_EVENTFD: signalled for every CQE posted. Shared by
  // every process (passed like the ring fd); -1 if unavailable (watchers then wait in
  // GETEVENTS).
  int efd = -1;
  void* sq_ptr = nullptr;
  size_t sq_len = 0;
  void* cq_ptr = nullptr;
  size_t cq_len = 0;
  io_uring_sqe* sqes = nullptr;
  size_t sqes_len = 0;
  uint32_t* sq_head = nullptr;
  uint32_t* sq_tail = nullptr;
  uint32_t* sq_mask = nullptr;
  uint32_t* sq_flags = nullptr;
  uint32_t* sq_array = nullptr;
  uint32_t* cq_head = nullptr;
  uint32_t* cq_tail = nullptr;
  uint32_t* cq_mask = nullptr;
  uint32_t* cq_flags = nullptr;  // IORING_CQ_EVENTFD_DISABLED lives here
  io_uring_cqe* cqes = nullptr;
};

int sys_io_uring_setup(unsigned entries, io_uring_params* p);
// io_uring_enter is on every IO's path (one per flush): on x86-64 a `syscall`
// instruction inlined at the caller, without libc's variadic wrapper, its errno and two
// more calls (and returns) after the kernel's. Returns -errno like the others.
#if defined(__x86_64__)
inline int sys_io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, void* arg, size_t argsz) {
  long rc;
  register long r10 __asm__("r10") = (long)flags;
  register long r8 __asm__("r8") = (long)arg;
  register long r9 __asm__("r9") = (long)argsz;
  __asm__ volatile("syscall"
                   : "=a"(rc)
                   : "0"((long)__NR_io_uring_enter), "D"((long)fd), "S"((long)to_submit), "d"((long)min_complete),
                     "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return (int)rc;
}
#else
int sys_io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, void* arg, size_t argsz);
#endif
int sys_io_uring_register(int fd, unsigned opcode, const void* arg, unsigned nr_args);

// Postmaster: create a ring, fill `shared`, map it. Returns 0 or -errno.
int ring_create(RingShared* shared, RingMap* map, uint32_t entries, uint32_t cq_entries, bool sqpoll,
                uint32_t sqpoll_idle_ms);
// Any process: map a ring from its fd and the offsets in `shared`.
int ring_map(RingShared* shared, RingMap* map, int fd);
void ring_unmap(RingMap* map);

// One SQE's worth of request, already validated by the caller.
struct SqeRequest {
  uint32_t handle_index;
  uint32_t handle_gen;
  uint8_t op;
  uint8_t link_flags;
  uint32_t file_slot;
  uint64_t offset;
  uint64_t addr;       // address valid in this process (or the registrant's, for fixed buffers)
  uint32_t len;
  bool fixed_buffer;   // addr lies in the registered arena: use READ_FIXED/WRITE_FIXED
  uint16_t buf_index;  // which registered iovec (one per GiB of arena)
  uint32_t file_gen;   // generation of the file id (threads backend re-checks it)
  uint16_t kind;       // completion kind and argument, as validated (the issuer's copy)
  uint64_t kind_arg;
};

// The issuer's self-wake (delivery.h): after each op marked in `after` (the last op of
// its chain) an IORING_OP_MSG_RING to `fd` is hard-linked, posting the op's user_data
// to the issuer's private ring once the chain is done. `linked` (out, per op) says
// whether it was; without room (fault injection, a chain as long as the SQ) it is not.
struct SubmitWake {
  int fd = -1;
  const uint8_t* after = nullptr;
  uint8_t* linked = nullptr;
  bool reap_inline = false;  // the caller reaps right after the enter (see ring_submit)
  // The submitting thread's registered index of this ring (IORING_REGISTER_RING_FDS), or
  // -1: its io_uring_enter then skips the ring file's lookup and reference count.
  int registered_ring = -1;
};

// Register `ring_fd` in the calling thread's io_uring task (IORING_REGISTER_RING_FDS,
// Linux 5.18): returns the index for IORING_ENTER_REGISTERED_RING, or -errno. Only this
// thread can enter by that index; ring_fd_unregister must run on the same thread.
int ring_fd_register(int ring_fd);
void ring_fd_unregister(int ring_fd, int index);

// Returns n once every request is accounted for: in flight, or (if io_uring_enter
// failed hard) completed with that error through the normal delivery path. Returns
// -errno only when nothing was published (-EAGAIN: no SQ room; -ETIMEDOUT: lock;
// -ESHUTDOWN): the handles are then still RESERVED and the caller takes them back.
// `inline_reap`: the caller reaps inline right after; the eventfd is then disabled
// around its io_uring_enter (under the submit lock), so its own inline completions
// wake no watcher. Anything posted in that window is in the CQ before the caller's
// inline reap (or, if its trylock fails, the lock holder's re-check) looks.
// `shutdown_exempt`: the submitter may submit while the segment is stopping (the
// postmaster's shutdown checkpoint, segment_accepts_io).
int ring_submit(Segment& seg, uint32_t ring_index, const SqeRequest* reqs, uint32_t n, int64_t lock_timeout_ns,
                bool inline_reap = false, const SubmitWake* wake = nullptr, bool shutdown_exempt = false);
// Reap every available CQE under the completion lock. Returns CQEs processed, or -errno.
// `quiet_slot`: a slot whose doorbell is not rung because the caller (that slot's own
// JS thread, reaping inline) collects its completions itself right after; ~0u: none.
// The indices of the handles it completed for `quiet_slot` are appended to `own`.
int ring_reap(Segment& seg, uint32_t ring_index, uint32_t reaper_slot, int64_t lock_timeout_ns,
              uint32_t quiet_slot = ~0u, std::vector<uint32_t>* own = nullptr);
// Ask the kernel to cancel in-flight requests by user_data (IORING_OP_ASYNC_CANCEL).
// Used for a dead issuer's IO: a poll-armed request (pipe, socket) is not cancelled
// when its submitter dies and would otherwise stay in flight forever.
int ring_cancel(Segment& seg, uint32_t ring_index, const uint64_t* user_data, uint32_t n, int64_t lock_timeout_ns);
// True if the CQ holds entries nobody has reaped yet.
bool ring_cq_pending(RingMap& m);
// True if a reap is due: entries in the CQ, or completions the kernel holds back in its
// overflow list (IORING_FEAT_NODROP: a full CQ sets IORING_SQ_CQ_OVERFLOW instead of
// dropping them, and only an enter with GETEVENTS, which ring_reap makes, moves them in).
bool ring_has_completions(RingMap& m);
// Signal the ring's eventfd so one watcher (in any process) reaps: used by a submitter
// that does not reap itself and left CQEs behind (inline completions do not signal).
void ring_poke_reapers(RingMap& m);
// Wake every watcher blocked on this ring (a NOP whose CQE is ignored).
int ring_wake_watchers(Segment& seg, uint32_t ring_index);

}  // namespace rm
