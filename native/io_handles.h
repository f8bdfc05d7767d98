// The IO handle table: one entry per IO that may be in flight anywhere. An IO's
// lifecycle is a state machine, moved only by CAS on `word`:
//
//   FREE --reserve(issuer)--> RESERVED --publish SQE(issuer, under submit lock)--> SUBMITTED
//   SUBMITTED --CQE reaped (any process, under completion lock)--> COMPLETED
//   COMPLETED --result collected (issuer's doorbell thread)--> FREE, generation+1
//   RESERVED  --submission failed (issuer)--> FREE, generation+1
//
// `word` packs state, owner slot, flags and generation so one CAS moves them together.
// user_data in the SQE is (generation << 32 | index); a CQE whose generation does not
// match, or whose index is out of range, is reported as corrupt and never dereferenced.
// If the issuer dies, its handles get the ORPHAN flag and the completer frees them.
#pragma once
#include <cstdint>
#include <vector>

namespace rm {

enum HandleState : uint32_t { H_FREE = 0, H_RESERVED = 1, H_SUBMITTED = 2, H_COMPLETED = 3 };
enum HandleFlag : uint32_t {
  HF_ORPHAN = 1,            // issuer is gone: whoever completes it also frees it
  HF_CANCELLED_REPAIR = 2,  // rewritten to a NOP by a lock repair: report -ECANCELED
  HF_KNOWN = 3,             // any other bit is garbage
};
// Result of an op whose handle another process scribbled on (EUCLEAN: "structure
// needs cleaning"); JS reports it as ERR_RINGMASTER_CORRUPT.
constexpr int32_t kCorruptResult = -117;
enum IoOp : uint8_t { OP_NOP = 0, OP_READ = 1, OP_WRITE = 2, OP_FSYNC = 3, OP_FDATASYNC = 4, OP_MAX = 5 };
// LF_SELF_WAKE (on any op of a chain): the issuer's self-wake goes behind this chain even
// if it has soft links. If one breaks, the message is cancelled with the rest and the
// issuer learns of it at its next sweep (or a watcher reaps it under demand): for chains
// whose break is a terminal failure anyway (the WAL's commit).
enum IoLinkFlag : uint8_t { LF_LINK = 1, LF_HARDLINK = 2, LF_DRAIN = 4, LF_SELF_WAKE = 8 };

constexpr uint64_t kNoArena = ~0ull;
constexpr uint64_t kWakeUserData = ~0ull;        // NOP used to wake watcher threads
constexpr uint64_t kCancelUserData = ~0ull - 1;  // ASYNC_CANCEL issued for a dead issuer's IO
constexpr uint64_t kDelayUserData = ~0ull - 2;   // TIMEOUT in front of an op (injected delay, tests)
constexpr uint64_t kSelfWakeUserData = ~0ull - 3;  // MSG_RING to the issuer's wake ring (delivery.h)
inline bool is_internal_user_data(uint64_t ud) { return ud >= kSelfWakeUserData; }  // no handle behind it

struct IoHandle {
  uint64_t word;        // state:8 | owner:16 | flags:8 | generation:32
  int32_t result;
  uint32_t reaper_slot;  // which slot's process reaped it (diagnostics, tests)
  uint8_t op;
  uint8_t link_flags;
  uint16_t ring;
  uint32_t file_slot;
  uint64_t offset;
  uint64_t arena_offset;  // kNoArena: a private buffer in the issuer's address space
  uint32_t len;
  uint16_t kind;          // completion action id (completion_kinds.h)
  uint16_t batch_pos;
  uint64_t kind_arg;
  uint64_t submit_ns;     // reserved (not written: a clock read per op)
};
static_assert(sizeof(IoHandle) == 64, "IoHandle layout is part of the segment ABI");

inline uint32_t hw_state(uint64_t w) { return (uint32_t)(w & 0xff); }
inline uint32_t hw_owner(uint64_t w) { return (uint32_t)((w >> 8) & 0xffff); }
inline uint32_t hw_flags(uint64_t w) { return (uint32_t)((w >> 24) & 0xff); }
inline uint32_t hw_gen(uint64_t w) { return (uint32_t)(w >> 32); }
inline uint64_t hw_make(uint32_t state, uint32_t owner, uint32_t flags, uint32_t gen) {
  return (uint64_t)state | ((uint64_t)owner << 8) | ((uint64_t)flags << 24) | ((uint64_t)gen << 32);
}
inline uint64_t user_data_of(uint32_t index, uint32_t gen) { return ((uint64_t)gen << 32) | index; }

struct HandleTable {
  IoHandle* handles;
  uint32_t count;
  // Allocation hint, private to this process (relaxed atomic: its threads share it). A
  // shared one was written by every reservation of every process, a cache line that
  // then moved between cores on each IO; each process starts its scan elsewhere.
  uint32_t* cursor;
  uint32_t* orphans;       // ORPHAN handles not yet freed (reap demand, reaper.h); may be null
};

// Returns the index, or -1 if every handle is in use.
int64_t handle_reserve(HandleTable& t, uint32_t owner);
// RESERVED -> FREE (submission failed before the SQE was published).
void handle_unreserve(HandleTable& t, uint32_t index);
bool handle_mark_submitted(HandleTable& t, uint32_t index);

enum class CompleteOutcome { Delivered, OrphanFreed, Corrupt, Stale };
struct CompleteInfo { CompleteOutcome outcome; uint32_t owner; uint16_t kind; uint64_t kind_arg; };
// SUBMITTED -> COMPLETED for a CQE's user_data. Validates everything it reads. The
// completion action (by kind id) runs before the state flips, so when the issuer sees
// COMPLETED the shared state the action maintains is already updated.
// `op` and `file_slot` are the handle's (written by the issuer before it published it).
using CompletionHook = bool (*)(void* ctx, uint16_t kind, uint64_t kind_arg, int32_t res, uint8_t op, uint32_t file_slot, uint32_t len);
CompleteInfo handle_complete(HandleTable& t, uint64_t user_data, int32_t res, uint32_t reaper_slot,
                             CompletionHook action, void* ctx);
// COMPLETED -> FREE by the issuer. Returns false if the handle is not (index, gen) COMPLETED.
bool handle_collect(HandleTable& t, uint32_t index, uint32_t gen, int32_t* res, uint32_t* reaper);
// A slot's owner died: free what it reserved or already completed, orphan what is in
// flight. If `in_flight_dies_too`, in-flight handles are completed with -ECANCELED now
// (threads backend: the pool died with the process). Returns handles touched.
struct OrphanReport { uint32_t freed; uint32_t orphaned; uint32_t cancelled; };
struct OrphanRef { uint32_t index; uint32_t gen; uint16_t ring; };
OrphanReport handles_release_owner(HandleTable& t, uint32_t owner, bool in_flight_dies_too,
                                   void (*on_cancel)(void* ctx, IoHandle* h, uint32_t index), void* ctx,
                                   std::vector<OrphanRef>* orphans);
uint32_t handles_in_use(const HandleTable& t);
// Set the orphan count to the ORPHAN handles still in flight (integrity scans).
void handles_recount_orphans(HandleTable& t);

// Integrity scan (O(table), lock-free). `slot_state(ctx, owner)` returns the owner
// slot's SlotState. A word that no legal transition produces (unknown state or flag,
// owner out of range, junk in a FREE word, an un-orphaned handle whose owner slot is
// free) is "word garbage": with `repair`, it is CASed (from exactly what was read) to
// FREE with a new generation. Field anomalies of in-flight handles are only reported.
enum HandleProblem : uint32_t {
  HP_BAD_STATE = 1, HP_BAD_FLAGS, HP_BAD_OWNER, HP_FREE_WITH_JUNK, HP_OWNER_GONE, HP_BAD_RING, HP_BAD_KIND,
};
const char* handle_problem_name(uint32_t p);
struct HandleAnomaly { uint32_t index; uint32_t problem; uint64_t word; bool repaired; };
struct VerifyCounts { uint32_t found; uint32_t repaired; };
VerifyCounts handles_verify(HandleTable& t, uint32_t max_slots, uint32_t ring_count, uint32_t (*slot_state)(void*, uint32_t),
                            void* ctx, bool repair, std::vector<HandleAnomaly>* out, uint32_t max_out);

}  // namespace rm
