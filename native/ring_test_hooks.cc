// Forged ring states for the dead-peer and hostile suites (rules: ring_test_hooks.h).
#include "ring_test_hooks.h"

#include <cstring>

#include "atomics.h"
#include "segment.h"
#include "uring.h"

namespace rm {

namespace {
constexpr int64_t kLockTimeoutNs = 2000000000;  // a stopped holder: false, not a hang
}

bool ring_hook_hold_lock(Segment& seg, uint32_t r, bool submit, bool mid_submission, uint32_t slot) {
  if (r >= seg.hdr->ring_count) return false;
  RingShared* rs = &seg.hdr->rings[r];
  LockResult lr = robust_lock_acquire(submit ? &rs->submit_lock : &rs->complete_lock, kLockTimeoutNs);
  if (submit && lr == LockResult::Acquired && mid_submission && r < seg.rings.size()) {
    // Dying mid-submission: an intent record with a published, unsubmitted NOP.
    RingMap& m = seg.rings[r];
    uint32_t tail = load_relaxed(m.sq_tail);
    int64_t idx = handle_reserve(seg.handles, slot);
    if (idx >= 0) {
      IoHandle* h = &seg.handles.handles[idx];
      uint32_t gen = hw_gen(load_acquire(&h->word));
      store_relaxed(&h->kind, (uint16_t)0);
      handle_mark_submitted(seg.handles, (uint32_t)idx);
      io_uring_sqe* sqe = &m.sqes[tail & *m.sq_mask];
      memset(sqe, 0, sizeof(*sqe));
      sqe->opcode = IORING_OP_NOP;
      sqe->user_data = user_data_of((uint32_t)idx, gen);
      m.sq_array[tail & *m.sq_mask] = tail & *m.sq_mask;
      store_relaxed(&rs->intent_tail, tail);
      store_relaxed(&rs->intent_count, 1u);
      store_relaxed(&rs->intent_prepared, 1u);
      store_relaxed(&rs->intent_active, 1u);
      store_release(m.sq_tail, tail + 1);
    }
  }
  return lr == LockResult::Acquired || lr == LockResult::AcquiredOwnerDied;
}

bool ring_hook_submit_raw_nop(Segment& seg, uint32_t r, uint64_t user_data) {
  if (r >= seg.hdr->ring_count || r >= seg.rings.size()) return false;
  RingShared* rs = &seg.hdr->rings[r];
  RingMap& m = seg.rings[r];
  if (robust_lock_acquire(&rs->submit_lock, kLockTimeoutNs) == LockResult::TimedOut) return false;
  uint32_t tail = load_relaxed(m.sq_tail);
  io_uring_sqe* sqe = &m.sqes[tail & *m.sq_mask];
  memset(sqe, 0, sizeof(*sqe));
  sqe->opcode = IORING_OP_NOP;
  sqe->user_data = user_data;
  m.sq_array[tail & *m.sq_mask] = tail & *m.sq_mask;
  store_release(m.sq_tail, tail + 1);
  for (int tries = 0; load_acquire(m.sq_head) != tail + 1 && tries < 1000; tries++)
    sys_io_uring_enter(m.fd, tail + 1 - load_acquire(m.sq_head), 0, 0, nullptr, 0);
  bool ok = load_acquire(m.sq_head) == tail + 1;
  robust_lock_release(&rs->submit_lock);
  return ok;
}

}  // namespace rm
