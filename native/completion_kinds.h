// Completion actions, identified by a kind id stored in the IO handle, never by a
// pointer or a JS closure: they run in whichever process reaps the CQE, which may
// not be the issuer. Each action touches only shared memory, by arena offset, and
// validates its argument (another process wrote it).
//
// The buffer pool and WAL add their kinds here (buffer-read-done, wal-write-done...).
#pragma once
#include <cstdint>

namespace rm {

enum CompletionKind : uint16_t {
  CK_NONE = 0,
  // kind_arg = arena offset of a CompletionWord. Stores the result, sets `done`,
  // and wakes every process waiting on it: the primitive "others wait on my IO".
  CK_COMPLETION_WORD = 1,
  CK_MAX = 2,
};

struct CompletionWord {
  uint32_t done;    // futex: 0 pending, 1 done
  int32_t result;
};

struct ArenaView { uint8_t* base; uint64_t size; };

// Returns false if the kind or its argument is invalid (reported as corrupt by the caller).
bool kind_arg_valid(uint16_t kind, uint64_t kind_arg, const ArenaView& arena);
bool run_completion_kind(uint16_t kind, uint64_t kind_arg, int32_t res, const ArenaView& arena);

}  // namespace rm
