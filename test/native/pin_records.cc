// Description: the buffer pool's per-slot pin records: an entry is found or created per buffer, a full table says so (nullptr) without touching another slot's entries, an entry is freed only once it records nothing, the clock sweep's spare entry records one pin by a single store, a slot's count of a buffer (what a recount sums) reads only that slot's records of it, and the listing shows every slot's holds.
#include "../../native/pin_records.h"

#include "helpers.h"

using namespace rm;

namespace {

PoolView make_view(uint32_t slots) {
  PoolView v;
  v.max_slots = slots;
  v.n = 1024;
  v.pins = t::shared_alloc<PinEntry>((size_t)slots * kPinsPerSlot);
  return v;
}

}  // namespace

int main() {
  t::run_case("find or create, per slot", [] {
    PoolView v = make_view(3);
    T_CHECK(pin_record_for(v, 1, 7, false) == nullptr);
    PinEntry* e = pin_record_for(v, 1, 7, true);
    T_REQUIRE(e != nullptr);
    T_EQ(e->buf_plus1, 8u);
    T_EQ(e->pins + e->shared_locks + e->exclusive, 0u);
    e->pins = 2;
    T_CHECK(pin_record_for(v, 1, 7, false) == e);
    T_CHECK(pin_record_for(v, 1, 7, true) == e);  // found, not duplicated
    T_CHECK(pin_record_for(v, 0, 7, false) == nullptr);  // another slot's
    T_CHECK(pin_record_for(v, 2, 7, false) == nullptr);
    T_CHECK(e >= pin_records_of(v, 1) && e < pin_records_of(v, 1) + kPinsPerSlot);
  });

  t::run_case("a full table: nullptr, and the neighbours' entries untouched", [] {
    PoolView v = make_view(3);
    for (uint32_t i = 0; i < kPinsPerSlot; i++) T_REQUIRE(pin_record_for(v, 1, i, true) != nullptr);
    T_CHECK(pin_record_for(v, 1, kPinsPerSlot, true) == nullptr);
    T_CHECK(pin_record_spare(v, 1) == nullptr);
    for (uint32_t i = 0; i < kPinsPerSlot; i++) {
      T_EQ(pin_records_of(v, 0)[i].buf_plus1, 0u);
      T_EQ(pin_records_of(v, 2)[i].buf_plus1, 0u);
    }
    // Found ones are still found when full.
    T_CHECK(pin_record_for(v, 1, kPinsPerSlot - 1, true) != nullptr);
  });

  t::run_case("an entry is freed only when it records nothing", [] {
    PoolView v = make_view(1);
    PinEntry* e = pin_record_for(v, 0, 3, true);
    e->pins = 1;
    e->shared_locks = 1;
    pin_record_maybe_free(e);
    T_EQ(e->buf_plus1, 4u);
    e->pins = 0;
    pin_record_maybe_free(e);
    T_EQ(e->buf_plus1, 4u);
    e->shared_locks = 0;
    e->exclusive = 1;
    pin_record_maybe_free(e);
    T_EQ(e->buf_plus1, 4u);
    e->exclusive = 0;
    pin_record_maybe_free(e);
    T_EQ(e->buf_plus1, 0u);
    // Its place is reused, with clean counts.
    e->pins = 9;
    PinEntry* again = pin_record_for(v, 0, 5, true);
    T_CHECK(again == e);
    T_EQ(again->pins, 0u);
  });

  t::run_case("lookups scan only as far as the slot has used, across slots, spares and cleanup", [] {
    PoolView v = make_view(2);
    for (uint32_t b = 0; b < 10; b++) pin_record_for(v, 0, b, true)->pins = 1;
    PinEntry* mine = pin_records_of(v, 0);
    T_CHECK(pin_record_for(v, 0, 9, false) == &mine[9]);
    // Another slot in between (another environment of this thread): both still found.
    PinEntry* other = pin_record_for(v, 1, 9, true);
    T_CHECK(other == &pin_records_of(v, 1)[0]);
    T_CHECK(pin_record_for(v, 0, 9, false) == &mine[9]);
    T_CHECK(pin_record_for(v, 1, 9, false) == other);
    // A new buffer takes the next entry, and a spare the one after it: both found after.
    PinEntry* next = pin_record_for(v, 0, 100, true);
    T_CHECK(next == &mine[10]);
    next->pins = 1;
    PinEntry* s = pin_record_spare(v, 0);
    T_CHECK(s == &mine[11]);
    s->buf_plus1 = 200 + 1;
    T_CHECK(pin_record_for(v, 0, 200, false) == s);
    T_CHECK(pin_record_for(v, 0, 200, true) == s);  // found, not created again below it
    // Cleanup zeroes entries (another process, acting for the slot): the first free
    // entry is taken again, the records above it are still found.
    mine[0].buf_plus1 = 0;
    mine[0].pins = 0;
    T_CHECK(pin_record_for(v, 0, 300, true) == &mine[0]);
    T_CHECK(pin_record_for(v, 0, 200, false) == s);
    T_CHECK(pin_record_for(v, 0, 5, false) == &mine[5]);
  });

  t::run_case("the spare entry: one pin, recorded by setting buf_plus1 alone", [] {
    PoolView v = make_view(2);
    PinEntry* s = pin_record_spare(v, 1);
    T_REQUIRE(s != nullptr);
    T_EQ(s->buf_plus1, 0u);  // not a record until the sweep picks its victim
    T_EQ(s->pins, 1u);
    std::vector<PinRecordRow> rows;
    pin_records_list(v, &rows);
    T_EQ(rows.size(), 0u);
    s->buf_plus1 = 42 + 1;  // the sweep's one store after its pinning CAS
    T_CHECK(pin_record_for(v, 1, 42, false) == s);
    T_EQ(pin_records_count(v, 1, 42, kIntentPins), 1u);
  });

  t::run_case("a slot's count of a buffer: its pins or its shared locks, nobody else's", [] {
    PoolView v = make_view(3);
    PinEntry* e = pin_record_for(v, 0, 9, true);
    e->pins = 2;
    e->shared_locks = 1;
    pin_record_for(v, 1, 9, true)->pins = 5;  // another slot's
    pin_record_for(v, 0, 10, true)->pins = 7;  // another buffer
    T_EQ(pin_records_count(v, 0, 9, kIntentPins), 2u);
    T_EQ(pin_records_count(v, 0, 9, kIntentShared), 1u);
    T_EQ(pin_records_count(v, 1, 9, kIntentPins), 5u);
    T_EQ(pin_records_count(v, 2, 9, kIntentPins), 0u);
    // A spare entry not yet given its victim is no record.
    pin_record_spare(v, 2);
    T_EQ(pin_records_count(v, 2, 9, kIntentPins), 0u);
  });

  t::run_case("the listing: every slot's records, in slot order", [] {
    PoolView v = make_view(3);
    pin_record_for(v, 2, 5, true)->exclusive = 1;
    PinEntry* e = pin_record_for(v, 0, 6, true);
    e->pins = 3;
    e->shared_locks = 2;
    std::vector<PinRecordRow> rows;
    pin_records_list(v, &rows);
    T_REQUIRE(rows.size() == 2);
    T_EQ(rows[0].slot, 0u);
    T_EQ(rows[0].buffer, 6u);
    T_EQ(rows[0].pins, 3u);
    T_EQ(rows[0].shared_locks, 2u);
    T_EQ(rows[1].slot, 2u);
    T_EQ(rows[1].buffer, 5u);
    T_EQ(rows[1].exclusive, 1u);
  });

  return t::finish();
}
