#include "shared_wait.h"

#include "atomics.h"
#include "reaper.h"
#include "segment.h"

namespace rm {

void set_slot_waiting(Segment& seg, uint32_t slot, bool waiting) {
  if (slot >= kWaitBitmapWords * 64) return;
  uint64_t* w = &seg.hdr->waiting_slots[slot / 64];
  uint64_t bit = 1ull << (slot % 64);
  uint64_t old = waiting ? __atomic_fetch_or(w, bit, __ATOMIC_SEQ_CST) : __atomic_fetch_and(w, ~bit, __ATOMIC_SEQ_CST);
  // A waiter may depend on any CQE (a busy or dead issuer's): watchers must wake while
  // anyone waits (reaper.h).
  if (((old & bit) != 0) != waiting) reap_demand_reconcile(seg);
}

void wake_word_waiters(Segment& seg) {
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  // the word change is visible before we read the bitmap
  uint32_t max = seg.hdr->max_slots;
  for (uint32_t i = 0; i < kWaitBitmapWords && i * 64 < max; i++) {
    uint64_t bits = __atomic_load_n(&seg.hdr->waiting_slots[i], __ATOMIC_SEQ_CST);
    while (bits) {
      uint32_t b = (uint32_t)__builtin_ctzll(bits);
      bits &= bits - 1;
      uint32_t slot = i * 64 + b;
      if (slot < max) ring_slot(seg, slot);
    }
  }
}

bool word_offset_valid(Segment& seg, uint64_t offset) {
  return offset % 4 == 0 && offset <= seg.arena.size && seg.arena.size - offset >= 4;
}

}  // namespace rm
