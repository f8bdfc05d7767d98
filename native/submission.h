// Submission: the ops one JS environment staged during a turn of its event loop go to
// the kernel (or the pool) together. JS appends each op to a staging area (kOpFields
// float64 fields per op, shared with this layer) and flushes once per turn; a flush
// validates the ops, reserves their IO handles, registers them with the environment's
// delivery, and hands whole chains to the IO method: one submit (one io_uring_enter)
// per ring per flush, more only when the SQ fills. Then it reaps inline (page-cache
// hits complete inside the enter) and reports, per op, its handle and, if it already
// completed, its result.
//
// A batch (Batch.submit(), a single-op helper) is a run of ops ending at one flagged
// kOpBatchEnd; links never cross it. A batch that fails validation is reported and
// not submitted; batches before it are. When handles, SQ room or a ring lock run out,
// the flush stops at a chain boundary and the rest stays staged.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "delivery.h"
#include "io_handles.h"
#include "uring.h"

namespace rm {

struct Segment;

// op, linkFlags, fileId, offset, length, arenaOffset (-1: private), kind, kindArg, ring (-1: home), flags
constexpr uint32_t kOpFields = 10;
constexpr uint32_t kOpFlagBatchEnd = 1;
constexpr int32_t kPendingResult = INT32_MIN;  // in a flush's per-op result: not completed yet

// A private buffer, as the N-API layer found it (js_bytes.h: any ArrayBufferView).
struct PrivateBuffer {
  const char* not_a_view = nullptr;  // why the value is not an ArrayBufferView (js_bytes), if it is not
  bool typed_array = false;
  bool detached = false;
  uint8_t* data = nullptr;
  uint64_t length = 0;
};
// Resolve the private buffer of staged op `i` (only called for reads and writes without
// an arena offset). False: the environment is going away.
using BufferResolver = bool (*)(void* ctx, uint32_t i, PrivateBuffer* out);

struct FlushOutcome {
  uint32_t consumed = 0;   // ops [start, start + consumed) are submitted or completed
  int stop = 0;            // why it stopped early: 0, -EAGAIN (handles, SQ), -ETIMEDOUT (lock), -ESHUTDOWN
  bool terminating = false;  // a buffer could not be resolved: the environment is going away
  // A batch failed validation (nothing of it submitted): its first op, the op within
  // the batch, -errno and why; it spans [error_batch, error_batch_end).
  bool invalid = false;
  uint32_t error_batch = 0;
  uint32_t error_batch_end = 0;
  uint32_t error_op = 0;
  int error = 0;
  std::string why;
};

// What the flush remembers of each op it handed to the IO method.
struct SubmittedOp {
  uint32_t stage;
  uint32_t index;
  uint32_t gen;
  uint32_t file_slot;
  uint8_t op;
  uint8_t self_wake;
  uint8_t observed;  // its completion kind is watched by others (a completion word)
};

// Per-environment scratch, reused by every flush (no allocation once warm).
struct FlushScratch {
  std::vector<SqeRequest> batch;  // the batch being gathered
  std::vector<SqeRequest> call;   // chains for the next submit call
  std::vector<uint8_t> call_after, call_linked, call_observed;
  std::vector<uint32_t> call_stage;  // call[k] is staged op call_stage[k]
  std::vector<SubmittedOp> done;
};

// Validate one op's fields and fill its request and handle. Returns 0 or -errno
// (-EINVAL, -ERANGE, -EBADF, -EOPNOTSUPP) with `why`.
int op_from_fields(Segment& seg, const double* f, const PrivateBuffer* buf, SqeRequest* r, IoHandle* h, std::string* why);

// Flush staged ops [start, end) of `fields` for the environment (`slot`, `home_ring`,
// `delivery`). `shutdown_exempt`: the environment may submit while the segment is
// stopping (the postmaster's shutdown checkpoint, segment_accepts_io). Writes 4 int32 per consumed op to `out`: handle index, generation,
// result or kPendingResult, reaper slot.
FlushOutcome flush_staged(Segment& seg, uint32_t slot, uint32_t home_ring, bool shutdown_exempt, Delivery& delivery, FlushScratch& scratch,
                          const double* fields, uint32_t start, uint32_t end, BufferResolver resolve, void* ctx,
                          int32_t* out);

}  // namespace rm
