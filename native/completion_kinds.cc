#include "completion_kinds.h"

#include "atomics.h"

namespace rm {

bool kind_arg_valid(uint16_t kind, uint64_t kind_arg, const ArenaView& arena) {
  switch (kind) {
    case CK_NONE: return true;
    case CK_COMPLETION_WORD:
      return kind_arg % alignof(CompletionWord) == 0 && kind_arg <= arena.size &&
             arena.size - kind_arg >= sizeof(CompletionWord);
    default: return false;
  }
}

bool run_completion_kind(uint16_t kind, uint64_t kind_arg, int32_t res, const ArenaView& arena) {
  if (!kind_arg_valid(kind, kind_arg, arena)) return false;
  if (kind == CK_COMPLETION_WORD) {
    auto* w = reinterpret_cast<CompletionWord*>(arena.base + kind_arg);
    store_relaxed(&w->result, res);
    store_release(&w->done, 1u);  // pairs with load_acquire of `done` by waiters
    futex_wake_all(&w->done);
  }
  return true;
}

}  // namespace rm
