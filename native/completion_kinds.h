// Completion actions, identified by a kind id stored in the IO handle, never by a
// pointer or a JS closure: they run in whichever process reaps the CQE, which may
// not be the issuer. Each action touches only shared memory, by arena offset, and
// validates its argument (another process wrote it).
//
// The ids are fixed here (they are part of the segment ABI); each module registers
// the functions for its ids from its own file (buffer pool, WAL), at load time.
#pragma once
#include <cstdint>

namespace rm {

struct Segment;

enum CompletionKind : uint16_t {
  CK_NONE = 0,
  // kind_arg = arena offset of a CompletionWord. Stores the result, sets `done`,
  // and wakes every process waiting on it: the primitive "others wait on my IO".
  CK_COMPLETION_WORD = 1,
  CK_BUFFER_READ_DONE = 2,   // bufferpool: kind_arg = buffer id
  CK_BUFFER_WRITE_DONE = 3,  // bufferpool: kind_arg = buffer id
  CK_WAL_WRITE_DONE = 4,     // wal: kind_arg = module-defined
  CK_WAL_SYNC_DONE = 5,      // wal: kind_arg = module-defined
  CK_WAL_DSYNC_WRITE_DONE = 6,  // wal: kind_arg = module-defined
  CK_MAX = 16,
};

struct CompletionWord {
  uint32_t done;    // futex: 0 pending, 1 done
  int32_t result;
};

struct ArenaView { uint8_t* base; uint64_t size; };

// Validate `arg` for `kind` (false: reject the op / report the completion corrupt).
using KindValidate = bool (*)(Segment& seg, uint64_t arg);
// Run the action for a completed IO with result `res`; `len` is the length the op asked
// for (0 where it is not known: an op failed without a CQE).
using KindAction = void (*)(Segment& seg, uint64_t arg, int32_t res, uint32_t len);

// Called from a static initializer of the module that owns `kind`.
bool register_completion_kind(uint16_t kind, KindValidate validate, KindAction action);

// Results that mean "this request never ran to completion because its issuer died or
// detached, or its link broke": ECANCELED, EINTR, and EFAULT, which Linux gives a
// request that must be re-issued from an exiting submitter's task context
// (io_req_task_submit when io_should_terminate_tw(); seen in the mixed kill soak for
// fixed-buffer WAL writes and pool reads of a SIGKILLed worker). Every action here
// acts on arena memory or fds only, where a genuine EFAULT cannot happen.
inline bool issuer_gone_result(int32_t res) { return res == -125 /* ECANCELED */ || res == -4 /* EINTR */ || res == -14 /* EFAULT */; }

// Whether others may watch this kind's effect by polling shared memory rather than by
// registering a shared wait (a completion word: completionWordResult()). Such an op
// must be reaped promptly even if its issuer's JS thread is busy (reaper.h).
inline bool kind_observed_by_polling(uint16_t kind) { return kind == CK_COMPLETION_WORD; }

// The WAL's own writes: the WAL syncs (or O_DSYNC-writes) its segments itself before it
// reports anything durable, so the data-file sync requests and the write barrier leave
// them out (file_sync.h).
inline bool is_wal_write_kind(uint16_t kind) { return kind == CK_WAL_WRITE_DONE || kind == CK_WAL_DSYNC_WRITE_DONE; }

bool kind_arg_valid(Segment& seg, uint16_t kind, uint64_t kind_arg);
// Returns false if the kind or its argument is invalid (reported as corrupt by the caller).
bool run_completion_kind(Segment& seg, uint16_t kind, uint64_t kind_arg, int32_t res, uint32_t len = 0);

}  // namespace rm
