// The buffer pool's per-slot pin records (rules: pin_records.h).
#include "pin_records.h"

#include "atomics.h"

namespace rm {

PinEntry* pin_records_of(PoolView& v, uint32_t slot) { return &v.pins[(uint64_t)slot * kPinsPerSlot]; }

namespace {
// How far this thread's slot's entries can be in use: none at or past `end` is. Only the
// slot's own JS thread makes an entry non-zero (pin_records.h), so the thread can keep
// that bound for itself, with no shared word: cleanup only zeroes entries, which keeps it
// an upper bound. A lookup (every pin, unpin, lock and unlock: about 25 per TPC-B
// transaction) then scans the entries a session pool actually uses, not all 256; a pin of
// a buffer the slot has no record of scanned all 256 to prove it had none (2.6 µs per
// transaction in `pin_record_for`, the largest native symbol of TPC-B).
struct PinScanBound {
  PinEntry* base = nullptr;  // the slot's entries this bound is for (another environment of the thread: recomputed)
  uint32_t end = 0;
};
thread_local PinScanBound t_pin_bound;

uint32_t pin_scan_end(PinEntry* e) {
  PinScanBound& b = t_pin_bound;
  if (b.base != e) {
    uint32_t end = 0;
    for (uint32_t i = 0; i < kPinsPerSlot; i++)
      if (load_relaxed(&e[i].buf_plus1) != 0 || load_relaxed(&e[i].pins) != 0) end = i + 1;
    b.base = e;
    b.end = end;
  }
  return b.end;
}

void pin_scan_used(PinEntry* e, uint32_t i) {
  if (t_pin_bound.base == e && i + 1 > t_pin_bound.end) t_pin_bound.end = i + 1;
}
}  // namespace

PinEntry* pin_record_for(PoolView& v, uint32_t slot, uint32_t id, bool create) {
  PinEntry* e = pin_records_of(v, slot);
  PinEntry* free_e = nullptr;
  const uint32_t end = pin_scan_end(e);
  for (uint32_t i = 0; i < end; i++) {
    uint32_t b1 = load_relaxed(&e[i].buf_plus1);
    if (b1 == id + 1) return &e[i];
    if (b1 == 0 && !free_e) free_e = &e[i];
  }
  if (!create) return nullptr;
  if (!free_e) {
    if (end >= kPinsPerSlot) return nullptr;
    free_e = &e[end];
  }
  pin_scan_used(e, (uint32_t)(free_e - e));
  store_relaxed(&free_e->pins, 0u);
  store_relaxed(&free_e->shared_locks, 0u);
  store_relaxed(&free_e->exclusive, 0u);
  store_release(&free_e->buf_plus1, id + 1);  // cleanup reads the counts after this
  return free_e;
}

void pin_record_maybe_free(PinEntry* e) {
  if (load_relaxed(&e->pins) == 0 && load_relaxed(&e->shared_locks) == 0 && load_relaxed(&e->exclusive) == 0)
    store_release(&e->buf_plus1, 0u);
}

PinEntry* pin_record_spare(PoolView& v, uint32_t slot) {
  PinEntry* all = pin_records_of(v, slot);
  pin_scan_end(all);
  for (uint32_t i = 0; i < kPinsPerSlot; i++) {
    if (load_relaxed(&all[i].buf_plus1) != 0) continue;
    pin_scan_used(all, i);  // its caller stores buf_plus1 once it has a victim
    store_relaxed(&all[i].pins, 1u);  // cleanup ignores an entry until buf_plus1 is set
    store_relaxed(&all[i].shared_locks, 0u);
    store_relaxed(&all[i].exclusive, 0u);
    return &all[i];
  }
  return nullptr;
}

uint32_t pin_records_count(PoolView& v, uint32_t slot, uint32_t id, uint64_t kind) {
  PinEntry* e = pin_records_of(v, slot);
  uint64_t n = 0;
  for (uint32_t i = 0; i < kPinsPerSlot; i++) {
    if (load_acquire(&e[i].buf_plus1) != id + 1) continue;
    n += load_relaxed(kind == kIntentPins ? &e[i].pins : &e[i].shared_locks);
  }
  return n > 0xFFFFFFFFu ? 0xFFFFFFFFu : (uint32_t)n;
}

void pin_records_list(PoolView& v, std::vector<PinRecordRow>* out) {
  for (uint32_t slot = 0; slot < v.max_slots; slot++) {
    PinEntry* e = pin_records_of(v, slot);
    for (uint32_t i = 0; i < kPinsPerSlot; i++) {
      uint32_t b1 = load_acquire(&e[i].buf_plus1);
      if (b1 == 0) continue;
      out->push_back({slot, b1 - 1, load_relaxed(&e[i].pins), load_relaxed(&e[i].shared_locks), load_relaxed(&e[i].exclusive)});
    }
  }
}

}  // namespace rm
