// The buffer pool's per-slot pin records (rules: pin_records.h).
#include "pin_records.h"

#include "atomics.h"

namespace rm {

PinEntry* pin_records_of(PoolView& v, uint32_t slot) { return &v.pins[(uint64_t)slot * kPinsPerSlot]; }

PinEntry* pin_record_for(PoolView& v, uint32_t slot, uint32_t id, bool create) {
  PinEntry* e = pin_records_of(v, slot);
  PinEntry* free_e = nullptr;
  for (uint32_t i = 0; i < kPinsPerSlot; i++) {
    uint32_t b1 = load_relaxed(&e[i].buf_plus1);
    if (b1 == id + 1) return &e[i];
    if (b1 == 0 && !free_e) free_e = &e[i];
  }
  if (!create || !free_e) return nullptr;
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
  for (uint32_t i = 0; i < kPinsPerSlot; i++) {
    if (load_relaxed(&all[i].buf_plus1) != 0) continue;
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
