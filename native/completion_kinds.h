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

// What a kind's check of its argument found. InRegion: an arena offset the argument names
// lies inside a module's arena region (a completion word there would be stored into state
// other processes trust); the submitter is told so.
enum class KindArg : uint8_t { Valid, Invalid, InRegion };
// Validate `arg` for `kind` (not Valid: reject the op / report the completion corrupt).
using KindValidate = KindArg (*)(Segment& seg, uint64_t arg);
// Run the action for a completed IO with result `res`; `len` is the length the op asked
// for (0 where it is not known: an op failed without a CQE).
using KindAction = void (*)(Segment& seg, uint64_t arg, int32_t res, uint32_t len);

// What a kind may do, beyond what every kind may.
enum KindFlags : uint32_t {
  KF_NONE = 0,
  // Its reads may land in a named arena region (segment.h, region_register): the module
  // that owns the region issues them, with this kind, into its own pages or buffers. A
  // read of any other kind there would overwrite state that other processes trust.
  KF_READS_INTO_REGION = 1u << 0,
};

// Called from a static initializer of the module that owns `kind`.
bool register_completion_kind(uint16_t kind, KindValidate validate, KindAction action, uint32_t flags = KF_NONE);

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

KindArg kind_arg_check(Segment& seg, uint16_t kind, uint64_t kind_arg);
inline bool kind_arg_valid(Segment& seg, uint16_t kind, uint64_t kind_arg) { return kind_arg_check(seg, kind, kind_arg) == KindArg::Valid; }
// Whether a read with this kind may target a named arena region (KF_READS_INTO_REGION);
// false for CK_NONE and any kind not registered.
bool kind_reads_into_region(uint16_t kind);
// Returns false if the kind or its argument is invalid (reported as corrupt by the caller).
bool run_completion_kind(Segment& seg, uint16_t kind, uint64_t kind_arg, int32_t res, uint32_t len = 0);

}  // namespace rm
