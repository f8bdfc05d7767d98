// Test-only fault injection in the submit path (RINGMASTER_TEST_HOOKS=1 to install
// rules). A rule matches ops by op type, file slot and completion kind; its Nth match
// (and every later one, if `repeat`) completes with `error` (or a short result)
// without reaching the kernel; the rest of its soft-linked chain is cancelled, as
// the kernel would. Off by default and free when off: one relaxed load per submit.
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
};

struct FaultTable {
  uint32_t enabled;    // any rule active (relaxed load on every submit)
  uint32_t pad;
  FaultRule rules[kMaxFaultRules];
};

// Returns how many of `reqs` were completed here (their handles are COMPLETED and
// `skip[i]` set); the caller submits the others. Chains are respected.
uint32_t apply_faults(Segment& seg, const SqeRequest* reqs, uint32_t n, bool* skip, WakeSet& wake);

}  // namespace rm
