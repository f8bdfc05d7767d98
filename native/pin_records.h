// The buffer pool's pin records: per slot, kPinsPerSlot entries saying which buffers
// the slot pins and which content locks it holds (PinEntry, buffer_pool.h). A pin or a
// lock lives in two places: the descriptor's state / content_lock word (what everyone
// obeys) and the holder's record (what slot cleanup gives back when the holder dies).
// A word is changed by CAS and a record by a store after it, and a SIGKILL can land
// between the two (a contended locked CAS is where a CPU waits longest, so it lands there
// more often than chance). Neither order of the two is safe alone: record-after-CAS leaks
// a pin when the taker dies, and word-before-record on the way back makes cleanup give
// back a pin the word no longer has -- another process's pin (the clamp at zero protects
// only a word that reached zero). So each slot has an intent word (SlotIntent, its own
// cache line) that names the count it is changing:
//   - before the CAS, the slot stores {buffer, which count} (seq_cst) and then reads the
//     word; after the CAS it updates its record and clears the intent (release). A slot
//     that finds RECOUNT on the word clears its intent and waits (pool_recount_wait);
//   - slot cleanup gives a dead slot's records back by the same steps, acting for it,
//     except the count its intent names: nobody knows whether that CAS happened, so the
//     count is recounted (pool_recount, buffer_pool.cc "recounts"): RECOUNT set by CAS,
//     then every live slot's intent on that count waited out (Dekker: a slot stores its
//     intent then reads the word, the recount sets the word then reads the intents, both
//     seq_cst, so one sees the other), then the count is the sum of the records of the
//     slots whose records can be trusted, written with RECOUNT cleared in one CAS.
// Chosen over a lock around pin and record (a syscall-free pin is the hot path: the cost
// here is two stores to the slot's own cache line per pin or unpin) and over logging the
// word's old value (a CAS by another slot in between makes it useless).
// The exclusive content lock needs none of this: its holder is in the word itself.
// Only the slot's own JS thread writes its entries and its intent, and slot cleanup once
// the slot is no longer live: neither needs a lock. Worker threads have a slot each; a
// terminated thread never stops inside a native call, so its intent is always clear.
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

// The slot's intent word: names the count (kIntentPins / kIntentShared of buffer id) the
// slot is about to change, before its CAS; cleared once its record says the same.
inline void pin_intent_set(PoolView& v, uint32_t slot, uint32_t id, uint64_t kind) {
  __atomic_store_n(&v.intents[slot].word, pin_intent_tag(id, kind), __ATOMIC_SEQ_CST);  // before the word is read
}
inline void pin_intent_clear(PoolView& v, uint32_t slot) { __atomic_store_n(&v.intents[slot].word, (uint64_t)0, __ATOMIC_RELEASE); }
// What the slot's records say it holds of buffer id: pins (kIntentPins) or shared locks.
uint32_t pin_records_count(PoolView& v, uint32_t slot, uint32_t id, uint64_t kind);

// Every slot's records, for diagnostics (which process a pin count belongs to).
struct PinRecordRow {
  uint32_t slot, buffer, pins, shared_locks, exclusive;
};
void pin_records_list(PoolView& v, std::vector<PinRecordRow>* out);

}  // namespace rm
