#include "completion_kinds.h"

#include "atomics.h"
#include "segment.h"
#include "shared_wait.h"

namespace rm {

namespace {
// Zero-initialized before any dynamic initializer runs, so module registrations
// (static initializers in other files) may run in any order.
KindValidate g_validate[CK_MAX];
KindAction g_action[CK_MAX];

bool word_valid(Segment& seg, uint64_t arg) {
  return arg % alignof(CompletionWord) == 0 && arg <= seg.arena.size && seg.arena.size - arg >= sizeof(CompletionWord) &&
         !arena_overlaps_region(seg, arg, sizeof(CompletionWord));
}

void word_action(Segment& seg, uint64_t arg, int32_t res, uint32_t) {
  auto* w = reinterpret_cast<CompletionWord*>(seg.arena.base + arg);
  store_relaxed(&w->result, res);
  store_release(&w->done, 1u);  // pairs with load_acquire of `done` by waiters
  // The environments waiting on it (waitCompletionWord) first: the futex wake is for
  // anyone blocked on `done` itself, usually no one, and would delay their doorbells
  // by a system call.
  wake_word_waiters(seg);
  futex_wake_all(&w->done);
}

const bool registered = register_completion_kind(CK_COMPLETION_WORD, word_valid, word_action);
}  // namespace

bool register_completion_kind(uint16_t kind, KindValidate validate, KindAction action) {
  if (kind == CK_NONE || kind >= CK_MAX) return false;
  g_validate[kind] = validate;
  g_action[kind] = action;
  return true;
}

bool kind_arg_valid(Segment& seg, uint16_t kind, uint64_t kind_arg) {
  if (kind == CK_NONE) return true;
  if (kind >= CK_MAX || !g_validate[kind]) return false;
  return g_validate[kind](seg, kind_arg);
}

bool run_completion_kind(Segment& seg, uint16_t kind, uint64_t kind_arg, int32_t res, uint32_t len) {
  if (!kind_arg_valid(seg, kind, kind_arg)) return false;
  if (kind != CK_NONE) g_action[kind](seg, kind_arg, res, len);
  return true;
}

}  // namespace rm
