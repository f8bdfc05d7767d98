// Test-only fault injection in the submit path (RINGMASTER_TEST_HOOKS=1 to install
// rules). A rule matches ops by op type, file slot and completion kind; its Nth match
// (and every later one, if `repeat`) completes with `error` (or a short result)
// without reaching the kernel; the rest of its soft-linked chain is cancelled, as
// the kernel would, or is delayed by `delay_us` (a linked IORING_OP_TIMEOUT in front of
// it; the threads backend sleeps before running it). Kill points: a process reaching
// an armed named point SIGKILLs itself there (a peer dying at that exact instruction),
// or, armed with `stop`, SIGSTOPs itself there (a live peer stalled at that instruction:
// it goes on from there after a SIGCONT).
// Off by default and free when off: one relaxed load per submit / per point.
#pragma once
#include <cstdint>
#include <set>

#include "process_table.h"
#include "uring.h"

namespace rm {

struct Segment;
constexpr uint32_t kMaxFaultRules = 8;

struct FaultRule {
  uint32_t active;     // 1 = in use
  uint32_t op_mask;    // bit (1 << IoOp) of ops it matches; 0 = any
  int32_t file_slot;   // -1 = any
  int32_t kind;        // completion kind, -1 = any
  uint32_t skip;       // matches to let through before firing (atomic countdown)
  uint32_t repeat;     // keep firing after the first time
  int32_t error;       // negative errno to complete with; 0 = short result (len / 2)
  uint32_t fired;      // how often it fired (atomic)
  uint32_t delay_us;   // > 0: not an error, the op runs after this delay
  uint32_t pad;
};

// Named places where a test can make a process die (SIGKILL itself). JS-side points
// (WAL, checkpoint) call kill_point through the addon by name.
enum KillPoint : uint32_t {
  KP_HANDLES_RESERVED = 0,      // IO handles RESERVED, nothing submitted yet
  KP_SQES_RESERVED,             // submission lock held, SQ slots claimed, first SQE written, tail not published
  KP_SQES_PUBLISHED,            // submission lock held, SQ tail published, io_uring_enter not called
  KP_CQE_DELIVERED,             // completion lock held, a CQE delivered, CQ head not yet advanced
  KP_WAL_WRITTEN,               // WAL flusher: write done, fdatasync not issued, nothing published
  KP_CHECKPOINT_PAGES_FLUSHED,  // checkpoint: pages flushed, checkpoint record not written
  KP_CHECKPOINT_RECORD_DURABLE, // checkpoint: record durable, control file not updated
  KP_CHECKPOINT_CONTROL_WRITTEN,// checkpoint: control.tmp written and synced, not renamed
  KP_WAKE_BEFORE_REAP,          // an issuer's loop woke for its completions (CQEs posted), not reaped yet
  KP_LOCK_WAKE,                 // content-lock release: queue lock held, the head unlinked, not yet WOKEN
  KP_LOCK_HANDOFF,              // content-lock hand-over: queue lock held, the word given to the head, its cell not yet GRANTED
  KP_WAL_PAGE_IMAGE_COPIED,     // page append: image and change reserved, image copied, change not
  KP_CHECKPOINT_REDO_CHOOSING,  // checkpoint start: redo epoch odd, reserved read, redo point not published
  KP_CHECKPOINT_REDO_CHOSEN,    // checkpoint: redo point chosen and published, no page flushed yet
  KP_SQE_PREPARED,              // submission lock held, an SQE written and counted in the intent, its handle not yet SUBMITTED
  KP_TB_CHAIN_COUNTED,          // threads: tb_lock held, a chain counted toward drains (its slot's tb_counted), not queued
  KP_POOL_VICTIM_UNTAGGED,      // pool eviction: partition lock held, the victim made tagless, still on its old chain
  KP_POOL_VICTIM_HALF_INSERTED, // pool insertion: partition lock held, the victim on its new chain, not yet tagged
  KP_POOL_PIN_COUNTED,          // pool pin: the state word's pin count taken (CAS), the pinner's record not yet
  KP_POOL_UNPIN_COUNTED,        // pool unpin: the state word's pin count given back (CAS), the record not yet
  KP_POOL_SHARED_LOCK_COUNTED,  // shared content lock: the word's shared count taken (CAS), the record not yet
  KP_POOL_SHARED_UNLOCK_COUNTED,// shared content unlock: the word's shared count given back (CAS), the record not yet
  KP_POOL_WRITE_CLAIMED,        // pool writeback: the write claimed (IO_IN_PROGRESS, io_seq odd, write_gen set), not submitted
  KP_COUNT
};
extern const char* const kKillPointNames[KP_COUNT];
int kill_point_by_name(const char* name);  // -1 if unknown

struct KillRule {
  uint32_t armed;  // 1 = the next matching arrival (after `skip`) dies
  int32_t pid;     // only this process (0 = any)
  uint32_t skip;   // arrivals to let through first (atomic countdown)
  uint32_t fired;  // arrivals that died (or stopped) here (set just before the signal)
  uint32_t stop;   // SIGSTOP instead of SIGKILL
};

struct FaultTable {
  uint32_t enabled;       // any rule active (relaxed load on every submit)
  uint32_t kill_enabled;  // any kill point armed (relaxed load at every point)
  FaultRule rules[kMaxFaultRules];
  KillRule kills[KP_COUNT];
};

// Installs rule `index` (< kMaxFaultRules) with the fields of `rule` (its active and fired
// words are the table's), or removes it (`rule` null); `enabled` is recomputed.
void fault_rule_set(FaultTable* ft, uint32_t index, const FaultRule* rule);
// Arms kill point `kp` for `pid` (0: any process) after `skip` arrivals, or disarms it
// (`arm` false); `stop`: the arrival stops (SIGSTOP) instead of dying. `kill_enabled` is
// recomputed.
void kill_point_arm(FaultTable* ft, KillPoint kp, bool arm, int32_t pid, uint32_t skip, bool stop = false);

// A hostile peer (test hook): overwrites `count` random entries (0: all) of a shared table
// with random bytes from `seed`. Tables: "handles", "files", "bufferDescriptors",
// "mappingTable" (the pool's bucket heads). Returns the entries written, or -1 if there is
// no such table in this segment.
int64_t debug_scribble(Segment& seg, const char* table, uint32_t seed, uint32_t count);

// Returns how many of `reqs` were completed here (their handles are COMPLETED and
// `skip[i]` set); the caller submits the others. Chains are respected.
// `delay_us` (may be null: delays ignored) gets each kept op's injected delay, 0 if none.
uint32_t apply_faults(Segment& seg, const SqeRequest* reqs, uint32_t n, bool* skip, uint32_t* delay_us, WakeSet& wake);

// Is `kp` armed for this process? (A caller may take a different path to reach it.)
bool kill_point_armed(FaultTable* ft, KillPoint kp);
void kill_point_slow(FaultTable* ft, KillPoint kp);
// Dies (or stops) here if `kp` is armed for this process (test hooks only; otherwise one load).
inline void kill_point(FaultTable* ft, KillPoint kp) {
  if (__builtin_expect(__atomic_load_n(&ft->kill_enabled, __ATOMIC_RELAXED) != 0, 0)) kill_point_slow(ft, kp);
}

}  // namespace rm
