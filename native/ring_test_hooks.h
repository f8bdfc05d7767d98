// No structure of its own: test hooks (RINGMASTER_TEST_HOOKS=1, checked by the caller)
// that put a shared ring (RingShared, owned by uring.cc) into the states a dead or hostile
// peer leaves, so the suites can check that the next process repairs them. They write
// through uring.h's layout exactly as a submitter would, never anything a real submitter
// could not have left.
#pragma once
#include <cstdint>

namespace rm {

struct Segment;

// Takes ring r's submission lock (`submit`) or completion lock and keeps it (the caller
// is about to be SIGKILLed holding it). With `mid_submission` (submission lock only): a
// NOP is written, published and recorded in the ring's intent record as if its submitter
// died between publishing the SQ tail and io_uring_enter. False if the lock was not granted.
bool ring_hook_hold_lock(Segment& seg, uint32_t r, bool submit, bool mid_submission, uint32_t slot);
// Submits one NOP with arbitrary `user_data` on ring r (a forged completion: garbage or a
// replayed id), under the submission lock. False if it was not consumed by the kernel.
bool ring_hook_submit_raw_nop(Segment& seg, uint32_t r, uint64_t user_data);

}  // namespace rm
