// The process table: one slot per attached JS environment (the postmaster, each
// forked worker, each worker thread that attaches). A slot is the identity that owns
// IO handles and receives completion doorbells. Slots are claimed and released by
// CAS on `state`; a slot whose process died is cleaned by whoever notices
// (the postmaster on child exit, or any process that finds the pid gone).
#pragma once
#include <cstdint>
#include <sys/types.h>

namespace rm {

enum SlotState : uint32_t { SLOT_FREE = 0, SLOT_ACTIVE = 1, SLOT_CLEANING = 2 };
enum SlotKind : uint32_t { SLOT_POSTMASTER = 1, SLOT_FORKED = 2, SLOT_THREAD = 3 };

struct ProcSlot {
  uint32_t state;       // SlotState; CAS only
  uint32_t generation;  // bumped on each claim so a stale slot reference is detected
  int32_t pid;
  int32_t tid;
  uint64_t start_time;  // /proc/<pid>/stat starttime: a recycled pid is not our process
  uint32_t doorbell;    // futex: bumped (release) after an IO this slot issued completes
  uint32_t kind;        // SlotKind
  uint32_t reaps;       // 1 if this process runs ring watcher threads
  uint32_t home_ring;   // the ring it submits to by default
  // statistics, relaxed counters
  uint64_t stat_submitted;
  uint64_t stat_completed;            // completions delivered to this slot
  uint64_t stat_completed_by_other;   // ... that another process reaped
  uint64_t stat_reaped;               // CQEs this slot's process reaped (any issuer)
  uint64_t stat_reaped_for_other;     // CQEs it reaped for another process
  uint64_t tb_counted;     // threads backend: this slot's chains counted toward a pending drain (the only count)
  uint64_t tb_owns_drain;  // threads backend: this slot's chain is the pending drain
};
static_assert(sizeof(ProcSlot) == 96, "ProcSlot layout is part of the segment ABI");

uint64_t process_start_time(pid_t pid);  // 0 if the process does not exist
int slot_claim(ProcSlot* slots, uint32_t count, SlotKind kind, uint32_t home_ring, bool reaps);
void slot_release(ProcSlot* slot);
// True if the slot's process is gone (or the pid now belongs to someone else).
bool slot_owner_dead(const ProcSlot* slot);
void slot_ring_doorbell(ProcSlot* slot);

// The slots whose doorbells a completer rings once it is done (deduplicated). Fixed
// capacity, no allocation on the per-IO path; past capacity it remembers to ring all.
struct WakeSet {
  static constexpr uint32_t kCap = 32;
  uint32_t slots[kCap];
  uint32_t n = 0;
  bool all = false;
  uint32_t orphans_freed = 0;  // orphan handles freed while delivering (reap demand, reaper.h)
  void insert(uint32_t s) {
    for (uint32_t i = 0; i < n; i++) if (slots[i] == s) return;
    if (n < kCap) slots[n++] = s;
    else all = true;
  }
  void erase(uint32_t s) {
    for (uint32_t i = 0; i < n; i++)
      if (slots[i] == s) { slots[i] = slots[--n]; return; }
  }
};

// Modules that keep per-process state in shared memory (pins, content locks, WAL
// insertion reservations) register a hook, run by whoever cleans a dead or detached
// slot, after its IO handles were released. `process_died` is false for a detach.
struct Segment;
using SlotCleanupHook = void (*)(Segment& seg, uint32_t slot, bool process_died);
bool register_slot_cleanup_hook(SlotCleanupHook hook);
void run_slot_cleanup_hooks(Segment& seg, uint32_t slot, bool process_died);

}  // namespace rm
