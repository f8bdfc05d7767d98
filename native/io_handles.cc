#include "io_handles.h"

#include <cerrno>

#include "atomics.h"
#include "completion_kinds.h"

namespace rm {

// Seq_cst and clamped at 0: the count lives in shared memory, and a process killed
// between a flag change and its count leaves it off by one (it only decides whether
// reapers are woken; checkIntegrity recounts it).
static void orphans_dec(HandleTable& t) {
  if (!t.orphans) return;
  uint32_t cur = __atomic_load_n(t.orphans, __ATOMIC_SEQ_CST);
  while (cur > 0 && !__atomic_compare_exchange_n(t.orphans, &cur, cur - 1, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {}
}

static void free_handle(HandleTable& t, IoHandle* h, uint64_t observed) {
  // Generation bumps on free so any stale (index, gen) reference stops matching.
  uint64_t next = hw_make(H_FREE, 0, 0, hw_gen(observed) + 1);
  uint64_t expected = observed;
  // No count and no futex wake: no one sleeps on frees (back-pressure retries from JS),
  // and this runs once per IO.
  cas(&h->word, &expected, next);
}

int64_t handle_reserve(HandleTable& t, uint32_t owner) {
  uint32_t start = load_relaxed(t.cursor);
  for (uint32_t n = 0; n < t.count; n++) {
    uint32_t i = (start + n) % t.count;
    IoHandle* h = &t.handles[i];
    uint64_t w = load_acquire(&h->word);
    if (hw_state(w) != H_FREE) continue;
    // Owner is recorded in the same CAS that claims the handle: a claimer killed right
    // after it still leaves a handle whose owner the cleanup can find.
    if (cas(&h->word, &w, hw_make(H_RESERVED, owner, 0, hw_gen(w)))) {
      // The next scan starts here, not past it: a handle this process just freed is
      // taken again (its line is still in this core's cache), and processes stay in
      // their own stretches of the table instead of each walking the whole of it behind
      // the other, taking every line from the other's core.
      store_relaxed(t.cursor, i);
      return i;
    }
  }
  return -1;
}

void handle_unreserve(HandleTable& t, uint32_t index) {
  IoHandle* h = &t.handles[index];
  uint64_t w = load_acquire(&h->word);
  if (hw_state(w) == H_RESERVED) free_handle(t, h, w);
}

bool handle_mark_submitted(HandleTable& t, uint32_t index) {
  IoHandle* h = &t.handles[index];
  uint64_t w = load_acquire(&h->word);
  if (hw_state(w) != H_RESERVED) return false;
  return cas(&h->word, &w, hw_make(H_SUBMITTED, hw_owner(w), hw_flags(w), hw_gen(w)));
}

// A CAS that keeps failing means someone keeps rewriting the word: after this many
// re-reads we stop and call it corrupt instead of spinning.
constexpr int kMaxCasRetries = 1000;

CompleteInfo handle_complete(HandleTable& t, uint64_t user_data, int32_t res, uint32_t reaper_slot,
                             CompletionHook action, void* ctx) {
  bool action_done = false, bad_kind = false;
  CompleteInfo info{CompleteOutcome::Corrupt, 0, 0, 0};
  uint32_t index = (uint32_t)(user_data & 0xffffffffu);
  uint32_t gen = (uint32_t)(user_data >> 32);
  if (index >= t.count) return info;  // corrupt user_data: never index with it
  IoHandle* h = &t.handles[index];
  for (int tries = 0; tries < kMaxCasRetries; tries++) {
    uint64_t w = load_acquire(&h->word);
    if (hw_gen(w) != gen || hw_state(w) != H_SUBMITTED || (hw_flags(w) & ~HF_KNOWN)) {
      // A CQE for a handle that is not in flight: a duplicate after a reaper died
      // mid-batch (harmless), or garbage. Either way we must not act on it.
      info.outcome = (hw_gen(w) == gen && hw_state(w) == H_COMPLETED) ? CompleteOutcome::Stale
                                                                       : CompleteOutcome::Corrupt;
      return info;
    }
    uint32_t flags = hw_flags(w);
    int32_t final_res = (flags & HF_CANCELLED_REPAIR) ? -ECANCELED : res;
    // Result fields are written before the state CAS publishes them (release).
    store_relaxed(&h->result, final_res);
    store_relaxed(&h->reaper_slot, reaper_slot);
    info.owner = hw_owner(w);
    info.kind = load_relaxed(&h->kind);
    info.kind_arg = load_relaxed(&h->kind_arg);
    if (!action_done && action) {
      action_done = true;
      bad_kind = !action(ctx, info.kind, info.kind_arg, final_res, load_relaxed(&h->op), load_relaxed(&h->file_slot), load_relaxed(&h->len));
    }
    uint64_t done = hw_make(H_COMPLETED, hw_owner(w), flags, gen);
    if (!cas(&h->word, &w, done)) continue;  // an orphaning raced us: re-read
    if (flags & HF_ORPHAN) {
      free_handle(t, h, done);
      orphans_dec(t);
      info.outcome = CompleteOutcome::OrphanFreed;
    } else {
      info.outcome = CompleteOutcome::Delivered;
    }
    if (bad_kind) info.kind = 0xffff;  // the caller reports a corrupt completion action
    return info;
  }
  info.outcome = CompleteOutcome::Corrupt;
  return info;
}

bool handle_collect(HandleTable& t, uint32_t index, uint32_t gen, int32_t* res, uint32_t* reaper) {
  if (index >= t.count) return false;
  IoHandle* h = &t.handles[index];
  uint64_t w = load_acquire(&h->word);  // pairs with the release CAS in handle_complete
  if (hw_gen(w) != gen || hw_state(w) != H_COMPLETED) return false;
  *res = load_relaxed(&h->result);
  *reaper = load_relaxed(&h->reaper_slot);
  free_handle(t, h, w);
  return true;
}

OrphanReport handles_release_owner(HandleTable& t, uint32_t owner, bool in_flight_dies_too,
                                   void (*on_cancel)(void*, IoHandle*, uint32_t), void* ctx,
                                   std::vector<OrphanRef>* orphans) {
  OrphanReport r{0, 0, 0};
  for (uint32_t i = 0; i < t.count; i++) {
    IoHandle* h = &t.handles[i];
    for (int tries = 0; tries < kMaxCasRetries; tries++) {
      uint64_t w = load_acquire(&h->word);
      uint32_t st = hw_state(w);
      if (st == H_FREE || hw_owner(w) != owner) break;
      if (st > H_COMPLETED) break;  // garbage, not this owner's: handles_verify repairs it
      if (st == H_RESERVED || st == H_COMPLETED) {
        uint64_t expected = w;
        uint64_t next = hw_make(H_FREE, 0, 0, hw_gen(w) + 1);
        if (!cas(&h->word, &expected, next)) continue;
        r.freed++;
        break;
      }
      // SUBMITTED
      if (in_flight_dies_too) {
        uint64_t expected = w;
        if (!cas(&h->word, &expected, hw_make(H_COMPLETED, owner, hw_flags(w), hw_gen(w)))) continue;
        store_relaxed(&h->result, -ECANCELED);
        if (on_cancel) on_cancel(ctx, h, i);
        uint64_t done = hw_make(H_COMPLETED, owner, hw_flags(w), hw_gen(w));
        free_handle(t, h, done);
        r.cancelled++;
        break;
      }
      if (hw_flags(w) & HF_ORPHAN) break;
      uint64_t expected = w;
      // Counted before the flag is set: its completer may free it (and uncount it) at once.
      if (t.orphans) __atomic_fetch_add(t.orphans, 1u, __ATOMIC_SEQ_CST);
      if (!cas(&h->word, &expected, hw_make(H_SUBMITTED, owner, hw_flags(w) | HF_ORPHAN, hw_gen(w)))) {
        orphans_dec(t);
        continue;
      }
      if (orphans) orphans->push_back({i, hw_gen(w), load_relaxed(&h->ring)});
      r.orphaned++;
      break;
    }
  }
  return r;
}

void handles_recount_orphans(HandleTable& t) {
  if (!t.orphans) return;
  uint32_t n = 0;
  for (uint32_t i = 0; i < t.count; i++) {
    uint64_t w = load_acquire(&t.handles[i].word);
    if (hw_state(w) == H_SUBMITTED && (hw_flags(w) & HF_ORPHAN)) n++;
  }
  __atomic_store_n(t.orphans, n, __ATOMIC_SEQ_CST);
}

uint32_t handles_in_use(const HandleTable& t) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < t.count; i++)
    if (hw_state(load_acquire(&t.handles[i].word)) != H_FREE) n++;
  return n;
}

const char* handle_problem_name(uint32_t p) {
  switch (p) {
    case HP_BAD_STATE: return "state out of range";
    case HP_BAD_FLAGS: return "unknown flag bits";
    case HP_BAD_OWNER: return "owner slot out of range";
    case HP_FREE_WITH_JUNK: return "free handle with owner or flags set";
    case HP_OWNER_GONE: return "in use by a slot that is not attached";
    case HP_BAD_RING: return "ring out of range";
    case HP_BAD_KIND: return "completion kind out of range";
    default: return "unknown";
  }
}

VerifyCounts handles_verify(HandleTable& t, uint32_t max_slots, uint32_t ring_count, uint32_t (*slot_state)(void*, uint32_t),
                            void* ctx, bool repair, std::vector<HandleAnomaly>* out, uint32_t max_out) {
  VerifyCounts c{0, 0};
  for (uint32_t i = 0; i < t.count; i++) {
    IoHandle* h = &t.handles[i];
    uint64_t w = load_acquire(&h->word);  // read once; every check below uses this copy
    uint32_t st = hw_state(w), owner = hw_owner(w), flags = hw_flags(w);
    uint32_t problem = 0;
    if (st > H_COMPLETED) problem = HP_BAD_STATE;
    else if (flags & ~HF_KNOWN) problem = HP_BAD_FLAGS;
    else if (st == H_FREE && (owner || flags)) problem = HP_FREE_WITH_JUNK;
    else if (st != H_FREE && owner >= max_slots) problem = HP_BAD_OWNER;
    // Orphans legitimately outlive their owner; nothing else does (slot cleanup frees
    // or orphans every handle of the slot before the slot becomes FREE, and the word
    // was read before the slot state, so a claim after our read cannot fool us).
    else if (st != H_FREE && !(flags & HF_ORPHAN) && slot_state(ctx, owner) == 0) problem = HP_OWNER_GONE;
    bool word_garbage = problem != 0;
    if (!problem && (st == H_SUBMITTED || st == H_COMPLETED)) {
      if (load_relaxed(&h->ring) >= (ring_count ? ring_count : 1)) problem = HP_BAD_RING;
      else if (load_relaxed(&h->kind) >= CK_MAX) problem = HP_BAD_KIND;
    }
    if (!problem) continue;
    c.found++;
    bool repaired = false;
    if (repair && word_garbage) {
      uint64_t expected = w;
      repaired = cas(&h->word, &expected, hw_make(H_FREE, 0, 0, hw_gen(w) + 1));
      c.repaired += repaired;
    }
    if (out && out->size() < max_out) out->push_back({i, problem, w, repaired});
  }
  return c;
}

}  // namespace rm
