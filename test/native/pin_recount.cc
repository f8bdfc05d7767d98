// Description: the buffer pool's recount of a pin or shared-lock count that a dead slot's intent word names (a real segment and pool, threads backend): a slot killed after its unpin CAS (record still 1) or after its pin CAS (record still 0) is left out and every live slot's pin is kept, a live slot's records count, a dead slot with an intent that is not the one being cleaned is left out too, the shared count is recounted the same way (with a granted-but-unrecorded cell counted), a recounter that dies holding the recount lock leaves RECOUNT for the next waiter to finish, and RECOUNT is a valid state bit, not a pin.
#include "../../native/buffer_pool.h"

#include <sys/wait.h>

#include "../../native/atomics.h"
#include "../../native/io_method.h"
#include "../../native/pin_records.h"
#include "../../native/process_table.h"
#include "../../native/segment.h"
#include "helpers.h"

using namespace rm;

namespace {

constexpr uint32_t kSlots = 4;
constexpr uint32_t kBuf = 3;

// The pid of a process that has exited (and been reaped): a dead slot owner.
int32_t dead_pid() {
  pid_t c = fork();
  if (c == 0) _exit(0);
  int st;
  waitpid(c, &st, 0);
  return (int32_t)c;
}

void clear_pool(PoolView& v) {
  for (uint32_t s = 0; s < kSlots; s++) {
    PinEntry* e = pin_records_of(v, s);
    for (uint32_t i = 0; i < kPinsPerSlot; i++) e[i] = PinEntry{};
    v.intents[s].word = 0;
  }
  v.d[kBuf].state = BS_TAG | BS_VALID;
  v.d[kBuf].content_lock = 0;
}

void record(PoolView& v, uint32_t slot, uint32_t pins, uint32_t shared) {
  PinEntry* e = pin_record_for(v, slot, kBuf, true);
  T_REQUIRE(e != nullptr);
  e->pins = pins;
  e->shared_locks = shared;
}

}  // namespace

int main() {
  char dir[] = "/tmp/rm-pin-recount-XXXXXX";
  T_REQUIRE(mkdtemp(dir) != nullptr);
  SegmentConfig cfg;
  cfg.backend = BACKEND_THREADS;
  cfg.max_slots = kSlots;
  cfg.max_files = 4;
  cfg.arena_size = 4 << 20;
  cfg.data_dir = dir;
  Segment* segp = new Segment;
  Segment& seg = *segp;
  std::string err;
  int rc = segment_create(cfg, segp, &err);
  if (rc != 0) fprintf(stderr, "segment_create: %s\n", err.c_str());
  T_REQUIRE(rc == 0);
  uint64_t size = pool_layout_size(16, 4096, kSlots, nullptr), off = 0;
  T_REQUIRE(arena_alloc(seg, size, 4096, &off) == 0);
  T_REQUIRE(pool_init(seg, off, size, 16, 4096, 0) == 0);
  T_REQUIRE(region_set(seg, "bufferpool", off, size) == 0);
  PoolView v;
  T_REQUIRE(pool_view(seg, &v));
  // Slots 0 and 1: live (this process). Slot 2: the dead one being cleaned. Slot 3: dead,
  // not noticed yet (ACTIVE, its pid gone).
  for (uint32_t s = 0; s < kSlots; s++) T_REQUIRE(slot_claim(seg.slots, kSlots, SLOT_FORKED, 0, false) == (int)s);
  store_release(&seg.slots[2].state, (uint32_t)SLOT_CLEANING);
  seg.slots[3].pid = dead_pid();
  BufDesc* d = &v.d[kBuf];

  t::run_case("died after its unpin CAS: the survivors' pins stay (cleanup used to subtract it again)", [&] {
    clear_pool(v);
    record(v, 0, 1, 0);
    record(v, 1, 2, 0);
    record(v, 2, 1, 0);                     // the dead slot's record still says 1 ...
    d->state = BS_TAG | BS_VALID | 3;       // ... the word no longer has it
    v.intents[2].word = pin_intent_tag(kBuf, kIntentPins);
    pool_recount(seg, v, kBuf, kIntentPins, 2);
    T_EQ(d->state & BS_PIN_MASK, 3u);
    T_EQ(d->state & ~BS_PIN_MASK, BS_TAG | BS_VALID);  // RECOUNT cleared, the rest kept
  });

  t::run_case("died after its pin CAS: the pin the record never got goes", [&] {
    clear_pool(v);
    record(v, 0, 1, 0);
    d->state = BS_TAG | BS_VALID | BS_DIRTY | 2;
    v.intents[2].word = pin_intent_tag(kBuf, kIntentPins);
    pool_recount(seg, v, kBuf, kIntentPins, 2);
    T_EQ(d->state, BS_TAG | BS_VALID | BS_DIRTY | 1);
  });

  t::run_case("a dead slot with an intent on the count is left out; one without is counted (its cleanup subtracts)", [&] {
    clear_pool(v);
    record(v, 0, 1, 0);
    record(v, 3, 4, 0);
    v.intents[3].word = pin_intent_tag(kBuf, kIntentPins);
    d->state = BS_TAG | 9;
    pool_recount(seg, v, kBuf, kIntentPins, 2);
    T_EQ(d->state & BS_PIN_MASK, 1u);
    v.intents[3].word = pin_intent_tag(kBuf + 1, kIntentPins);  // another count: trusted
    pool_recount(seg, v, kBuf, kIntentPins, 2);
    T_EQ(d->state & BS_PIN_MASK, 5u);
    v.intents[3].word = 0;
  });

  t::run_case("the shared count: records and granted-but-unrecorded cells; an exclusive holder is left alone", [&] {
    clear_pool(v);
    record(v, 0, 1, 1);
    record(v, 2, 1, 1);  // the dead slot: left out
    d->content_lock = 5;
    v.intents[2].word = pin_intent_tag(kBuf, kIntentShared);
    pool_recount(seg, v, kBuf, kIntentShared, 2);
    T_EQ(d->content_lock, 1u);
    // A shared hold handed over to a queued waiter of slot 1 and not yet taken.
    int64_t cell = wq_claim_cell(v.wq, 1);
    T_REQUIRE(cell >= 0);
    T_REQUIRE(wq_lock(v.wq, kBuf, 1000000000ll) == WqLock::Held);
    wq_push(v.wq, kBuf, (uint32_t)cell, kWaitShared);
    wq_remove(v.wq, kBuf, (uint32_t)cell);
    wq_grant(v.wq, (uint32_t)cell);
    wq_unlock(v.wq, kBuf);
    pool_recount(seg, v, kBuf, kIntentShared, 2);
    T_EQ(d->content_lock, 2u);
    wq_release_cell(v.wq, (uint32_t)cell);
    d->content_lock = exclusive_word(1);
    pool_recount(seg, v, kBuf, kIntentShared, 2);
    T_EQ(d->content_lock, exclusive_word(1));
  });

  t::run_case("a recounter killed holding the recount lock: the next waiter finishes the recount", [&] {
    clear_pool(v);
    record(v, 0, 2, 0);
    d->state = BS_TAG | BS_VALID | 7;
    pid_t c = fork();
    if (c == 0) {
      robust_lock_acquire(&v.locks[kPoolPartitions].lock, 1000000000ll);
      __atomic_fetch_or(&d->state, BS_RECOUNT, __ATOMIC_SEQ_CST);
      _exit(0);  // dies mid-recount, the robust lock held
    }
    int st;
    waitpid(c, &st, 0);
    T_CHECK(d->state & BS_RECOUNT);
    pool_recount_wait(seg, v, kBuf, kIntentPins);  // a pinner that found RECOUNT
    T_EQ(d->state, BS_TAG | BS_VALID | 2);
  });

  t::run_case("RECOUNT is a valid state bit, not a pin", [&] {
    T_CHECK(desc_state_valid(BS_TAG | BS_VALID | BS_RECOUNT));
    T_EQ((BS_TAG | BS_RECOUNT) & BS_PIN_MASK, 0u);
    T_EQ(kLockRecount & kLockHoldMask, 0u);
  });

  return t::finish();
}
