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
uint32_t g_flags[CK_MAX];

// A word inside a module's region is reported as such (whatever else is wrong with it),
// from the one pass over the region table.
KindArg word_check(Segment& seg, uint64_t arg) {
  if (arg <= seg.arena.size && arena_overlaps_region(seg, arg, sizeof(CompletionWord))) return KindArg::InRegion;
  return arg % alignof(CompletionWord) == 0 && arg <= seg.arena.size && seg.arena.size - arg >= sizeof(CompletionWord)
             ? KindArg::Valid
             : KindArg::Invalid;
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

const bool registered = register_completion_kind(CK_COMPLETION_WORD, word_check, word_action);
}  // namespace

bool register_completion_kind(uint16_t kind, KindValidate validate, KindAction action, uint32_t flags) {
  if (kind == CK_NONE || kind >= CK_MAX) return false;
  g_validate[kind] = validate;
  g_action[kind] = action;
  g_flags[kind] = flags;
  return true;
}

KindArg kind_arg_check(Segment& seg, uint16_t kind, uint64_t kind_arg) {
  if (kind == CK_NONE) return KindArg::Valid;
  if (kind >= CK_MAX || !g_validate[kind]) return KindArg::Invalid;
  return g_validate[kind](seg, kind_arg);
}

bool kind_reads_into_region(uint16_t kind) { return kind < CK_MAX && (g_flags[kind] & KF_READS_INTO_REGION); }

bool run_completion_kind(Segment& seg, uint16_t kind, uint64_t kind_arg, int32_t res, uint32_t len) {
  if (!kind_arg_valid(seg, kind, kind_arg)) return false;
  if (kind != CK_NONE) g_action[kind](seg, kind_arg, res, len);
  return true;
}

}  // namespace rm
