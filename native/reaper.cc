#include "reaper.h"

#include <cerrno>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "atomics.h"
#include "sched_slice.h"
#include "segment.h"
#include "shared_wait.h"

#ifndef IORING_ENTER_EXT_ARG
#define IORING_ENTER_EXT_ARG (1U << 3)
#endif

namespace rm {

namespace {

constexpr int64_t kReapLockTimeoutNs = 2000000000;  // a SIGSTOPped holder: retry, never hang
constexpr int kSweepMs = 250;
constexpr uint32_t kStillSweeps = 4;

void watcher_main(Segment* seg, uint32_t ring) {
  RingMap& m = seg->rings[ring];
  apply_library_thread_slice();  // woken by other processes; runs microseconds per wake
  if (m.efd >= 0) {
    // EPOLLEXCLUSIVE: one event wakes one watcher among all processes, not all of
    // them; that one reaps for everybody and rings the issuers' doorbells. The 250 ms
    // timeout sweeps up after a waker that died between consuming the event and
    // reaping, and after a signal the kernel skipped (see reaper.h).
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u32 = 1;
    epoll_ctl(ep, EPOLL_CTL_ADD, m.efd, &ev);
    struct epoll_event stop = {};
    stop.events = EPOLLIN;
    stop.data.u32 = 2;
    if (seg->stop_efd >= 0) epoll_ctl(ep, EPOLL_CTL_ADD, seg->stop_efd, &stop);
    uint32_t still_head = ~0u;  // CQ head at the last sweep that found entries nobody demands
    uint32_t still_sweeps = 0;
    while (!seg->stopping.load()) {
      struct epoll_event got[2];
      int n = epoll_wait(ep, got, 2, kSweepMs);
      if (seg->stopping.load()) break;
      for (int i = 0; i < n; i++) {
        if (got[i].data.u32 == 1) {
          uint64_t v;
          ssize_t r = read(m.efd, &v, sizeof(v));  // may be EAGAIN: another process took it
          (void)r;
        }
      }
      bool pending = ring_has_completions(m);
      bool reap = n > 0 || (pending && reap_demand_present(*seg));
      if (!reap && pending) {
        // Entries nobody demands: a busy issuer's own, which it takes when it returns.
        // Left alone, unless they sit through a second of sweeps (an issuer busy that
        // long, or demand miscounted in shared memory): then a watcher takes them.
        uint32_t head = load_acquire(m.cq_head);
        if (head == still_head) reap = ++still_sweeps >= kStillSweeps;
        else { still_head = head; still_sweeps = 0; }
      }
      if (reap) {
        ring_reap(*seg, ring, load_relaxed(&seg->reaper_slot), kReapLockTimeoutNs);
        still_head = ~0u;
        still_sweeps = 0;
      }
    }
    close(ep);
    return;
  }
  // No eventfd: wait in io_uring_enter. Every watcher wakes on every CQE (waiters in
  // io_cqring_wait are all woken; a CQE is not reserved for one of them), so the CQ head
  // is moved under complete_lock.
  struct __kernel_timespec ts = {0, (long long)kSweepMs * 1000000};
  struct io_uring_getevents_arg arg = {};
  arg.ts = (uint64_t)(uintptr_t)&ts;
  while (!seg->stopping.load()) {
    sys_io_uring_enter(m.fd, 0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
    if (seg->stopping.load()) break;
    ring_reap(*seg, ring, load_relaxed(&seg->reaper_slot), kReapLockTimeoutNs);
  }
}

void set_bit(uint64_t* words, uint32_t slot, bool on) {
  if (slot >= 64 * 64) return;
  uint64_t bit = 1ull << (slot % 64);
  if (on) __atomic_fetch_or(&words[slot / 64], bit, __ATOMIC_SEQ_CST);
  else __atomic_fetch_and(&words[slot / 64], ~bit, __ATOMIC_SEQ_CST);
}

// Clear the flag, then look: a CQE posted (or held back on overflow) while it was set
// signalled nobody. If it was clear already, every CQE since signalled the watchers
// itself: nothing to poke.
void enable_eventfd(RingMap& m) {
  uint32_t old = __atomic_fetch_and(m.cq_flags, ~(uint32_t)IORING_CQ_EVENTFD_DISABLED, __ATOMIC_SEQ_CST);
  if ((old & IORING_CQ_EVENTFD_DISABLED) && ring_has_completions(m)) ring_poke_reapers(m);
}

}  // namespace

void reapers_start(Segment* seg, const std::vector<uint32_t>& rings) {
  if (seg->stop_efd < 0) seg->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  for (uint32_t r : rings) seg->watchers.emplace_back(watcher_main, seg, r);
}

void reapers_stop(Segment* seg) {
  seg->stopping = true;
  // Wake this process's watchers: the local stop eventfd for eventfd watchers, a NOP
  // on the ring for GETEVENTS watchers.
  if (seg->stop_efd >= 0) {
    uint64_t one = 1;
    ssize_t w = write(seg->stop_efd, &one, sizeof(one));
    (void)w;
  }
  if (load_acquire(&seg->hdr->backend) == BACKEND_IO_URING)
    for (uint32_t r = 0; r < seg->rings.size(); r++)
      if (seg->rings[r].efd < 0 && !seg->watchers.empty()) ring_wake_watchers(*seg, r);
  for (auto& t : seg->watchers) if (t.joinable()) t.join();
  seg->watchers.clear();
}

bool reap_demand_present(Segment& seg) {
  SegmentHeader* h = seg.hdr;
  if (__atomic_load_n(&h->orphans_outstanding, __ATOMIC_SEQ_CST) != 0) return true;
  uint32_t max = h->max_slots;
  for (uint32_t i = 0; i < kWaitBitmapWords && i * 64 < max; i++)
    if (__atomic_load_n(&h->foreign_slots[i], __ATOMIC_SEQ_CST) | __atomic_load_n(&h->waiting_slots[i], __ATOMIC_SEQ_CST))
      return true;
  return false;
}

void reap_demand_reconcile(Segment& seg) {
  if (load_relaxed(&seg.hdr->backend) != BACKEND_IO_URING) return;
  for (auto& m : seg.rings) {
    if (m.efd < 0 || !m.cq_flags) continue;  // no eventfd to gate: watchers wake on every CQE
    if (reap_demand_present(seg)) {
      enable_eventfd(m);
      continue;
    }
    __atomic_fetch_or(m.cq_flags, (uint32_t)IORING_CQ_EVENTFD_DISABLED, __ATOMIC_SEQ_CST);
    // A demander that raised its bit after our look cleared the flag before we set it:
    // look again and give it back.
    if (reap_demand_present(seg)) enable_eventfd(m);
  }
}

void reap_demand_foreign(Segment& seg, uint32_t slot, bool on) {
  set_bit(seg.hdr->foreign_slots, slot, on);
  reap_demand_reconcile(seg);
}

void reap_demand_forget_slot(Segment& seg, uint32_t slot) {
  set_bit(seg.hdr->foreign_slots, slot, false);
  set_bit(seg.hdr->waiting_slots, slot, false);
  reap_demand_reconcile(seg);
}

}  // namespace rm
