// The buffer pool's pin records: per slot, kPinsPerSlot entries saying which buffers
// the slot pins and which content locks it holds (PinEntry, buffer_pool.h). A pin or a
// lock lives in two places: the descriptor's state / content_lock word (what everyone
// obeys) and the holder's record (what slot cleanup gives back when the holder dies).
// The rule that keeps the two honest with a SIGKILL at any instruction:
//   - taking: the record is written by ONE store right after the CAS that took the pin
//     (nothing that can be a syscall in between, since that is where a kill lands), so
//     at worst one pin is lost in a window of one instruction;
//   - giving back: the word first, then the record, so a death in between leaves a
//     record of a hold the word no longer has, which cleanup clamps (never below zero).
// Only the slot's own JS thread writes its entries, and slot cleanup once the slot is
// no longer live: the entries need no lock.
#pragma once
#include <cstdint>
#include <vector>

#include "buffer_pool.h"

namespace rm {

// The slot's kPinsPerSlot entries.
PinEntry* pin_records_of(PoolView& v, uint32_t slot);
// The slot's record for buffer `id`; with `create`, a free entry is taken if there is
// none (nullptr: the table is full).
PinEntry* pin_record_for(PoolView& v, uint32_t slot, uint32_t id, bool create);
// Frees the entry once it records nothing.
void pin_record_maybe_free(PinEntry* e);
// A free entry set up to record one pin of a buffer not chosen yet: the clock sweep
// records its victim by one store (buf_plus1) right after the pinning CAS.
PinEntry* pin_record_spare(PoolView& v, uint32_t slot);
// Undoes one recorded pin of `id` (after the descriptor's count went down).
void pin_record_drop_pin(PoolView& v, uint32_t slot, uint32_t id);

// Every slot's records, for diagnostics (which process a pin count belongs to).
struct PinRecordRow {
  uint32_t slot, buffer, pins, shared_locks, exclusive;
};
void pin_records_list(PoolView& v, std::vector<PinRecordRow>* out);

}  // namespace rm
