// The shared buffer pool (layout and rules: buffer_pool.h).
#include "buffer_pool.h"
#include "crc32c.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "atomics.h"
#include "completion_kinds.h"
#include "fault_injection.h"
#include "process_table.h"
#include "segment.h"
#include "shared_wait.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace rm {

namespace {

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// ---- per-process cache of the region location (region_get takes a shared lock) --
std::mutex g_cache_mu;
std::unordered_map<Segment*, std::pair<uint64_t, std::pair<uint64_t, uint64_t>>> g_cache;  // seg -> (id, (off, size))

bool region_of(Segment& seg, uint64_t* off, uint64_t* size) {
  {
    std::lock_guard<std::mutex> g(g_cache_mu);
    auto it = g_cache.find(&seg);
    if (it != g_cache.end() && it->second.first == seg.id) {
      *off = it->second.second.first;
      *size = it->second.second.second;
      return true;
    }
  }
  if (region_get(seg, "bufferpool", off, size) != 0) return false;
  std::lock_guard<std::mutex> g(g_cache_mu);
  g_cache[&seg] = {seg.id, {*off, *size}};  // regions are never moved once set
  return true;
}

// Ends the IO `seq20` of buffer `id`: clears IO_IN_PROGRESS and sets/clears the bits
// in `set`/`clear` by CAS, then moves io_seq to even and wakes every waiter. False if
// the IO is not the current one (stale completion, or already aborted).
bool end_io(Segment& seg, PoolView& v, uint32_t id, uint32_t seq20, uint64_t set, uint64_t clear, int32_t err) {
  BufDesc* d = &v.d[id];
  uint32_t seq = load_acquire(&d->io_seq);  // pairs with the claimer's fetch_add
  if (!(seq & 1) || (seq & 0xFFFFF) != seq20) return false;
  if (err) store_relaxed(&d->last_error, err);  // published by the CAS below (release)
  uint64_t s = load_acquire(&d->state);
  for (;;) {
    if (!(s & BS_IO)) return false;
    uint64_t ns = (s & ~(BS_IO | clear)) | set;
    if (cas(&d->state, &s, ns)) break;
  }
  // The even value tells waiters the IO ended; their load_acquire of io_seq pairs with
  // this release, so they see the state CAS above.
  uint32_t expect = seq;
  cas(&d->io_seq, &expect, seq + 1);
  wake_word_waiters(seg);
  return true;
}

}  // namespace

// A claimer has just set IO_IN_PROGRESS by CAS. The previous IO's end_io clears that bit
// before it moves io_seq to even, so a claim can land in between (or after that completer
// died there): then io_seq is still odd, and a plain +1 would make it even while the new
// IO is in progress, so nobody could ever end it (a stuck buffer, found by the mixed kill
// soak). Step to the next odd value instead; the late completer's CAS then fails, harmlessly.
uint32_t pool_claim_seq(BufDesc* d) {
  uint32_t cur = load_acquire(&d->io_seq);
  for (;;) {
    uint32_t next = (cur & 1) ? cur + 2 : cur + 1;
    if (cas(&d->io_seq, &cur, next)) return next;  // acq_rel: pairs with waiters' acquire
  }
}

// ---- content locks -------------------------------------------------------------------
//
// PostgreSQL's LWLock discipline, plus a hand-over mode against starvation:
//  - Acquire is one CAS while HANDOFF is clear, even with waiters queued: a running
//    process takes a free lock at once instead of the lock idling until a sleeper wakes
//    (measured: strict FIFO hand-over of a hot lock between 8 processes ran at a tenth of
//    the barging rate).
//  - A waiter queues under the partition lock (WAITERS set first, by a CAS on the word it
//    judged, so no release slips between its look and its queueing). While WAITERS or
//    HANDOFF is set, every release runs under the partition lock and wakes whom it lets
//    run: the head, or the head's run of shared waiters -- and nobody more while WAKING is
//    set (a woken waiter has not retried yet), so there is no storm.
//  - A woken waiter retries; if a barger got there first, it goes back to the head of the
//    queue and sets HANDOFF: from then on nobody barges, and the next release hands the
//    lock straight to the head (GRANTED), which clears HANDOFF. So a waiter loses at most
//    one race (the Linux mutex's rule), and the wait is bounded by the queue ahead of it.
// A hand-over writes the partition's intent record (cell, word before) before its CAS and
// clears it after the cell is GRANTED: while HANDOFF is set the word changes only under the
// lock, and no word reached without the lock has HANDOFF, so after a releaser's death the
// next holder knows the hand-over happened iff the word differs from the recorded one.

namespace {

constexpr int64_t kQueueLockTimeoutNs = 2000000000ll;
constexpr int kMaxLockCas = 1000;
constexpr uint32_t kFlags = kLockWaiters | kLockHandoff | kLockWaking;

bool lock_grantable(uint32_t w, bool excl) {
  w &= ~kFlags;
  if (excl) return w == 0;
  return !(w & kLockExclusive) && (w & kLockHoldMask) < kLockHoldMask;
}
uint32_t lock_taken(uint32_t w, bool excl, uint32_t slot) {
  return (w & kFlags) | (excl ? exclusive_word(slot) : (w & ~kFlags) + 1);
}
uint32_t lock_released(uint32_t w, bool excl, uint32_t shared) {
  if (excl || (w & kLockExclusive)) return w & kFlags;
  uint32_t cnt = w & kLockHoldMask;
  return (w & kFlags) | (cnt - (shared < cnt ? shared : cnt));  // never below zero
}

// Cells woken or granted under the lock; their doorbells are rung once it is released.
struct Wakes {
  uint32_t cells[kWaitCellsPerSlot];
  uint32_t n = 0;
  bool overflow = false;
  void add(uint32_t c) {
    if (n < kWaitCellsPerSlot) cells[n++] = c;
    else overflow = true;
  }
  void ring(Segment& seg) {
    for (uint32_t i = 0; i < n; i++) wq_wake(seg, cells[i]);
    if (overflow) wake_word_waiters(seg);  // more than we kept: ring everyone once
  }
};

void count_slot(PoolView& v, uint32_t slot, SlotStat which, uint64_t n) {
  stat_add(&v.h->gstats[which], n);
  if (slot < v.max_slots) stat_add(&v.sstats[slot].v[which], n);
}

// Sets / clears flag bits by CAS (bounded: only garbage keeps a CAS failing).
void set_flags(uint32_t* w, uint32_t set, uint32_t clear) {
  uint32_t cur = load_acquire(w);
  for (int t = 0; t < kMaxLockCas; t++) {
    uint32_t nw = (cur | set) & ~clear;
    if (nw == cur || cas(w, &cur, nw)) return;
  }
}

// Under the queue lock: lets the queue of buffer id move after a release (or anything else
// that may have made its head runnable). HANDOFF: hand the lock to the head (and its run of
// shared waiters). Otherwise wake them, unless a woken waiter has not retried yet.
void wake_or_hand_over(Segment& seg, PoolView& v, uint32_t id, uint32_t releaser, Wakes& g) {
  uint32_t* w = &v.d[id].content_lock;
  WaitPartition* part = &v.wq.parts[wq_partition_of(id)];
  uint32_t repairs = 0;
  for (uint32_t guard = 0; guard <= v.wq.ncells + 1; guard++) {
    int64_t h = wq_head(v.wq, id, &repairs);
    uint32_t cur = load_acquire(w);
    if (h < 0) {  // nobody queued: the fast paths may run again
      set_flags(w, 0, kLockWaiters | kLockHandoff);
      break;
    }
    if (!(cur & kLockWaiters)) { set_flags(w, kLockWaiters, 0); continue; }
    bool excl = load_relaxed(&v.wq.cells[h].mode) == kWaitExclusive;
    if (!lock_grantable(cur, excl)) break;  // the holder's release comes back here
    if (cur & kLockHandoff) {
      int64_t nx = wq_next(v.wq, (uint32_t)h);
      // The last hand-over of a run ends HANDOFF (the queue is fair again); WAITERS stays
      // until a pass finds the queue empty.
      bool more = nx >= 0 && !excl && load_relaxed(&v.wq.cells[nx].mode) == kWaitShared;
      uint32_t nw = lock_taken(cur, excl, wq_cell_slot((uint32_t)h)) & ~(more ? 0u : kLockHandoff);
      store_relaxed(&part->grant_word, cur);
      store_release(&part->grant_cell_plus1, (uint32_t)h + 1);
      if (cas(w, &cur, nw)) {
        kill_point(&seg.hdr->faults, KP_LOCK_HANDOFF);
        wq_remove(v.wq, id, (uint32_t)h);
        wq_grant(v.wq, (uint32_t)h);
        g.add((uint32_t)h);
        count_slot(v, releaser, ST_LOCK_HANDOFFS, 1);
      }
      store_release(&part->grant_cell_plus1, 0u);
      continue;  // a shared run goes on; otherwise the next pass stops at "not grantable"
    }
    if (cur & kLockWaking) break;  // one wake in flight at a time
    // Wake the head, and the shared waiters right behind a shared head: all of them can run.
    uint32_t woken = 0;
    while (h >= 0 && woken < v.wq.ncells) {
      int64_t nx = wq_next(v.wq, (uint32_t)h);
      wq_remove(v.wq, id, (uint32_t)h);
      kill_point(&seg.hdr->faults, KP_LOCK_WAKE);
      wq_wake_up(v.wq, (uint32_t)h);
      g.add((uint32_t)h);
      woken++;
      if (excl || nx < 0 || load_relaxed(&v.wq.cells[nx].mode) != kWaitShared) break;
      h = nx;
    }
    count_slot(v, releaser, ST_LOCK_WAKEUPS, woken);
    set_flags(w, kLockWaking | (wq_head(v.wq, id) >= 0 ? kLockWaiters : 0), wq_head(v.wq, id) >= 0 ? 0 : kLockWaiters);
    break;
  }
  if (repairs) stat_add(&v.h->gstats[G_LOCK_QUEUE_REPAIRS], (uint64_t)repairs);
}

// After EOWNERDEAD on the partition lock of queue q: the dead holder may have been in the
// middle of linking, unlinking, waking or handing over. Rebuild the partition's queues from
// the cells, finish a hand-over whose CAS happened, clear WAKING where no woken waiter is
// left, then let every queue of the partition move.
void repair_partition(Segment& seg, PoolView& v, uint32_t q, Wakes& g) {
  wq_rebuild(v.wq, q);
  stat_add(&v.h->gstats[G_LOCK_QUEUE_REPAIRS], (uint64_t)1);
  uint32_t p = wq_partition_of(q);
  WaitPartition* part = &v.wq.parts[p];
  uint32_t c1 = load_acquire(&part->grant_cell_plus1);
  if (c1 != 0 && c1 <= v.wq.ncells) {
    WaitCell* c = &v.wq.cells[c1 - 1];
    uint32_t q1 = load_relaxed(&c->queue_plus1);
    if (q1 != 0 && q1 <= v.n && wq_partition_of(q1 - 1) == p && load_acquire(&c->state) == WC_WAITING &&
        load_acquire(&v.d[q1 - 1].content_lock) != load_relaxed(&part->grant_word)) {
      wq_remove(v.wq, q1 - 1, c1 - 1);
      wq_grant(v.wq, c1 - 1);
      g.add(c1 - 1);
    }
  }
  store_release(&part->grant_cell_plus1, 0u);
  std::vector<uint8_t> woken_left(v.n / kWaitPartitions + 1, 0);
  for (uint32_t i = 0; i < v.wq.ncells; i++) {
    uint32_t q1 = load_relaxed(&v.wq.cells[i].queue_plus1);
    if (load_acquire(&v.wq.cells[i].state) == WC_WOKEN && q1 != 0 && q1 <= v.n && wq_partition_of(q1 - 1) == p)
      woken_left[(q1 - 1) / kWaitPartitions] = 1;
  }
  for (uint32_t k = p; k < v.n; k += kWaitPartitions) {
    if (!woken_left[k / kWaitPartitions]) set_flags(&v.d[k].content_lock, 0, kLockWaking);
    wake_or_hand_over(seg, v, k, ~0u, g);
  }
}

// Takes buffer id's queue lock, retrying a stopped holder's timeouts forever: a release
// must not be lost. Repairs after a dead holder.
void queue_lock_always(Segment& seg, PoolView& v, uint32_t id, Wakes& g) {
  for (;;) {
    WqLock l = wq_lock(v.wq, id, kQueueLockTimeoutNs);
    if (l == WqLock::TimedOut) continue;
    if (l == WqLock::HeldOwnerDied) repair_partition(seg, v, id, g);
    return;
  }
}

void record_hold(PinEntry* rec, bool excl) {
  if (!rec) return;
  if (excl) store_release(&rec->exclusive, 1u);
  else store_release(&rec->shared_locks, load_relaxed(&rec->shared_locks) + 1);
}

}  // namespace

int32_t content_lock_acquire(Segment& seg, PoolView& v, uint32_t slot, uint32_t id, bool excl, bool recursive_shared,
                             PinEntry* rec, uint32_t* cell_out) {
  uint32_t* w = &v.d[id].content_lock;
  uint32_t cur = load_acquire(w);  // pairs with the release CAS of the last unlocker
  for (int t = 0; t < kMaxLockCas && !(cur & kLockHandoff) && lock_grantable(cur, excl); t++) {
    if (cas(w, &cur, lock_taken(cur, excl, slot))) {
      record_hold(rec, excl);  // one store right after the CAS (see the shared-lock window)
      return LA_ACQUIRED;
    }
  }
  if (!excl && !(cur & kLockExclusive) && (cur & kLockHoldMask) == kLockHoldMask) return LA_CORRUPT;
  Wakes g;
  WqLock l = wq_lock(v.wq, id, kQueueLockTimeoutNs);
  if (l == WqLock::TimedOut) return LA_BUSY;
  if (l == WqLock::HeldOwnerDied) repair_partition(seg, v, id, g);
  int32_t rc = LA_CORRUPT;
  cur = load_acquire(w);
  for (int t = 0; t < kMaxLockCas; t++) {
    if (!excl && recursive_shared && !(cur & kLockExclusive)) {
      // Never behind a waiter: it may be waiting for the shared hold we already have.
      if ((cur & kLockHoldMask) == kLockHoldMask) break;
      if (cas(w, &cur, cur + 1)) { record_hold(rec, false); rc = LA_ACQUIRED; break; }
      continue;
    }
    if (!(cur & kLockHandoff) && lock_grantable(cur, excl)) {
      if (cas(w, &cur, lock_taken(cur, excl, slot))) { record_hold(rec, excl); rc = LA_ACQUIRED; break; }
      continue;
    }
    if (!(cur & kLockWaiters)) {
      // Judged on `cur`: if a release lands first this CAS fails and we look again.
      if (!cas(w, &cur, cur | kLockWaiters)) continue;
      cur |= kLockWaiters;
    }
    int64_t cell = wq_claim_cell(v.wq, slot);
    if (cell < 0) { rc = LA_NO_CELL; break; }
    wq_push(v.wq, id, (uint32_t)cell, excl ? kWaitExclusive : kWaitShared);
    *cell_out = (uint32_t)cell;
    count_slot(v, slot, ST_LOCK_WAITS, 1);
    rc = LA_QUEUED;
    break;
  }
  // A stale flag (no cell to queue, a repair) is cleared, and a head that can already run
  // (a free lock in HANDOFF) moves on.
  wake_or_hand_over(seg, v, id, slot, g);
  wq_unlock(v.wq, id);
  g.ring(seg);
  return rc;
}

namespace {

// Takes a GRANTED cell's hold: recorded in rec, the cell freed, the wait counted. The
// exclusive hold is recorded before the cell is freed: a death in between leaves a GRANTED
// cell, which cleanup releases without fencing the page (the holder never saw the lock).
// A shared hold is recorded after: a death in between leaks that one shared hold, as a
// death between the fast path's CAS and its record does (never an over-release).
void take_grant(PoolView& v, uint32_t slot, uint32_t cell, bool excl, PinEntry* rec) {
  uint64_t since = load_relaxed(&v.wq.cells[cell].since_ns);
  if (excl) record_hold(rec, true);
  wq_release_cell(v.wq, cell);
  if (!excl) record_hold(rec, false);
  uint64_t now = monotonic_ns();
  count_slot(v, slot, ST_LOCK_WAIT_NS, now > since ? now - since : 0);
}

}  // namespace

int32_t content_lock_wait_end(Segment& seg, PoolView& v, uint32_t slot, uint32_t id, uint32_t cell, bool cancel,
                              PinEntry* rec) {
  if (cell >= v.wq.ncells || wq_cell_slot(cell) != slot) return LW_BAD_CELL;
  WaitCell* c = &v.wq.cells[cell];
  if (load_relaxed(&c->queue_plus1) != id + 1) return LW_BAD_CELL;
  bool excl = load_relaxed(&c->mode) == kWaitExclusive;
  uint32_t st = load_acquire(&c->state);  // pairs with the waker's release store
  if (st == WC_GRANTED) {
    take_grant(v, slot, cell, excl, rec);
    return LW_GRANTED;
  }
  if (st != WC_WAITING && st != WC_WOKEN) return LW_BAD_CELL;
  Wakes g;
  WqLock l = wq_lock(v.wq, id, kQueueLockTimeoutNs);
  if (l == WqLock::TimedOut) return LW_WAITING;  // a stopped holder: the caller tries again
  if (l == WqLock::HeldOwnerDied) repair_partition(seg, v, id, g);
  uint32_t* w = &v.d[id].content_lock;
  int32_t rc = LW_WAITING;
  st = load_acquire(&c->state);
  if (st == WC_WOKEN) {
    // Our retry: the wake is used up, whatever happens next.
    set_flags(w, 0, kLockWaking);
    uint32_t cur = load_acquire(w);
    for (int t = 0; t < kMaxLockCas && !(cur & kLockHandoff) && lock_grantable(cur, excl); t++) {
      if (cas(w, &cur, lock_taken(cur, excl, slot))) { rc = LW_GRANTED; break; }
    }
    if (rc != LW_GRANTED) {
      // Someone barged in between our wake and our retry: back to the head, and no more
      // barging until the lock has been handed to us.
      wq_push_front(v.wq, id, cell);
      set_flags(w, kLockWaiters | kLockHandoff, 0);
      st = WC_WAITING;
    }
  }
  if (st == WC_WAITING && cancel) {
    wq_remove(v.wq, id, cell);
    uint64_t since = load_relaxed(&c->since_ns), now = monotonic_ns();
    wq_release_cell(v.wq, cell);
    count_slot(v, slot, ST_LOCK_TIMEOUTS, 1);
    count_slot(v, slot, ST_LOCK_WAIT_NS, now > since ? now - since : 0);
    rc = LW_CANCELLED;
  }
  // Our leaving (or retrying) may let others move; without a cancel this is also the safety
  // net for a release whose wake was lost (a releaser that died, a scribbled word).
  wake_or_hand_over(seg, v, id, ~0u, g);
  if (rc == LW_GRANTED) {
    record_hold(rec, excl);
    uint64_t since = load_relaxed(&c->since_ns), now = monotonic_ns();
    wq_release_cell(v.wq, cell);
    count_slot(v, slot, ST_LOCK_WAIT_NS, now > since ? now - since : 0);
  }
  wq_unlock(v.wq, id);
  g.ring(seg);
  if (rc == LW_WAITING && load_acquire(&c->state) == WC_GRANTED) {
    take_grant(v, slot, cell, excl, rec);
    rc = LW_GRANTED;
  }
  return rc;
}

void content_lock_release(Segment& seg, PoolView& v, uint32_t id, bool excl, uint32_t shared) {
  uint32_t* w = &v.d[id].content_lock;
  uint32_t cur = load_acquire(w);
  for (int t = 0; t < kMaxLockCas && !(cur & (kLockWaiters | kLockHandoff)); t++) {
    uint32_t nw = lock_released(cur, excl, shared);
    if (nw == cur || cas(w, &cur, nw)) return;  // release: page edits visible to the next locker
  }
  Wakes g;
  queue_lock_always(seg, v, id, g);
  cur = load_acquire(w);
  for (int t = 0; t < kMaxLockCas; t++) {
    uint32_t nw = lock_released(cur, excl, shared);
    if (nw == cur || cas(w, &cur, nw)) break;
  }
  wake_or_hand_over(seg, v, id, ~0u, g);
  wq_unlock(v.wq, id);
  g.ring(seg);
}

namespace {

// Slot cleanup, first step: the slot's wait cells. A queued request leaves its queue; a
// woken one gives its wake back; a granted one that was never taken gives its hold back
// (the slot never saw it: no fence).
void cleanup_wait_cells(Segment& seg, PoolView& v, uint32_t slot) {
  uint64_t first = (uint64_t)slot * kWaitCellsPerSlot;
  if (first + kWaitCellsPerSlot > v.wq.ncells) return;
  for (uint32_t i = 0; i < kWaitCellsPerSlot; i++) {
    uint32_t cell = (uint32_t)first + i;
    WaitCell* c = &v.wq.cells[cell];
    uint32_t st = load_acquire(&c->state);
    if (st == WC_FREE) continue;
    uint32_t q1 = load_relaxed(&c->queue_plus1);
    if ((st != WC_WAITING && st != WC_GRANTED && st != WC_WOKEN) || q1 == 0 || q1 > v.n) {
      wq_release_cell(v.wq, cell);  // claimed but never queued, or garbage
      continue;
    }
    uint32_t id = q1 - 1;
    Wakes g;
    queue_lock_always(seg, v, id, g);
    uint32_t* w = &v.d[id].content_lock;
    st = load_acquire(&c->state);
    bool excl = load_relaxed(&c->mode) == kWaitExclusive;
    if (st == WC_WAITING) wq_remove(v.wq, id, cell);
    if (st == WC_WOKEN) set_flags(w, 0, kLockWaking);
    wq_release_cell(v.wq, cell);
    if (st == WC_GRANTED) {
      uint32_t cur = load_acquire(w);
      // An exclusive grant names this slot; anything else is not ours to release.
      if (!excl || (cur & ~kFlags) == exclusive_word(slot)) {
        for (int t = 0; t < kMaxLockCas; t++) {
          uint32_t nw = lock_released(cur, excl, 1);
          if (nw == cur || cas(w, &cur, nw)) break;
        }
      }
    }
    wake_or_hand_over(seg, v, id, ~0u, g);
    wq_unlock(v.wq, id);
    g.ring(seg);
  }
}

}  // namespace

namespace {

bool kind_valid(Segment& seg, uint64_t arg) {
  PoolView v;
  if (!pool_view(seg, &v)) return false;
  return (arg & 0xFFFFFFFFu) < v.n && (arg >> 52) == 0;
}

void read_action(Segment& seg, uint64_t arg, int32_t res) {
  PoolView v;
  if (!pool_view(seg, &v)) return;
  uint32_t id = (uint32_t)(arg & 0xFFFFFFFFu);
  if (id >= v.n) return;  // validated again: another process wrote the handle
  pool_read_done(seg, v, id, (uint32_t)(arg >> 32) & 0xFFFFF, res);
}

void write_action(Segment& seg, uint64_t arg, int32_t res) {
  PoolView v;
  if (!pool_view(seg, &v)) return;
  uint32_t id = (uint32_t)(arg & 0xFFFFFFFFu);
  if (id >= v.n) return;
  pool_write_done(seg, v, id, (uint32_t)(arg >> 32) & 0xFFFFF, res);
}

// Is an IO with this completion (kind, arg) submitted and not yet completed? Its handle
// holds both from before the SQE is published until the completion action has run.
bool claim_in_flight(Segment& seg, uint16_t kind, uint64_t arg) {
  for (uint32_t i = 0; i < seg.handles.count; i++) {
    IoHandle* h = &seg.handles.handles[i];
    if (hw_state(load_acquire(&h->word)) != H_SUBMITTED) continue;
    if (load_relaxed(&h->kind) == kind && load_relaxed(&h->kind_arg) == arg) return true;
  }
  return false;
}

// A dead or detached slot's pins and content locks go back; IO it claimed but never
// submitted is aborted with ECANCELED (submitted IO always completes through a CQE or
// the handle cleanup, which runs the completion action).
void cleanup_hook(Segment& seg, uint32_t slot, bool process_died) {
  PoolView v;
  if (!pool_view(seg, &v) || slot >= v.max_slots) return;
  cleanup_wait_cells(seg, v, slot);
  PinEntry* e = &v.pins[(uint64_t)slot * kPinsPerSlot];
  bool woke = false;
  for (uint32_t i = 0; i < kPinsPerSlot; i++) {
    uint32_t b1 = load_acquire(&e[i].buf_plus1);
    if (b1 == 0 || b1 > v.n) { store_relaxed(&e[i].buf_plus1, 0u); continue; }
    BufDesc* d = &v.d[b1 - 1];
    uint32_t sh = load_relaxed(&e[i].shared_locks), pins = load_relaxed(&e[i].pins);
    // Shared holds (clamped at zero); exclusive locks: by owner, below.
    if (sh && !(load_acquire(&d->content_lock) & kLockExclusive)) content_lock_release(seg, v, b1 - 1, false, sh);
    uint64_t s = load_acquire(&d->state);
    for (;;) {
      uint64_t cnt = s & BS_PIN_MASK;
      uint64_t ns = (s & ~BS_PIN_MASK) | (cnt - (pins < cnt ? pins : cnt));  // never underflow
      if (ns == s || cas(&d->state, &s, ns)) break;
    }
    store_relaxed(&e[i].pins, 0u);
    store_relaxed(&e[i].shared_locks, 0u);
    store_relaxed(&e[i].exclusive, 0u);
    store_release(&e[i].buf_plus1, 0u);
    woke = true;
  }
  for (uint32_t id = 0; id < v.n; id++) {
    BufDesc* d = &v.d[id];
    // An exclusive lock this slot still holds: the holder died (or its thread was
    // terminated) mid-update, maybe with the page half-changed. PostgreSQL restarts
    // every process here; we fence the page (TORN) and release the lock, so waiters
    // get ERR_RINGMASTER_PAGE_TORN instead of a torn page or a hang.
    uint32_t mine = exclusive_word(slot);
    if ((load_acquire(&d->content_lock) & (kLockExclusive | kLockHoldMask)) == mine) {
      uint64_t st = load_acquire(&d->state);
      bool fence = !(load_relaxed(&v.h->flags) & POOL_RELEASE_ON_HOLDER_DEATH);
      for (int tries = 0; fence && tries < 1000 && !(st & BS_TORN); tries++)
        if (cas(&d->state, &st, st | BS_TORN)) {
          stat_add(&v.h->gstats[G_TORN_PAGES], (uint64_t)1);
          break;
        }
      // TORN first: the waiter the release hands the lock to finds the page fenced.
      content_lock_release(seg, v, id, true);
      woke = true;
    }
    uint64_t s = load_acquire(&d->state);
    if (!(s & BS_IO) || bs_owner(s) != slot) continue;
    uint32_t seq = load_acquire(&d->io_seq);
    // Even: the claimer died between its claim CAS and its seq step; give the IO its seq
    // (nobody else can claim while IO_IN_PROGRESS is set) and abort it like any unsubmitted one.
    if (!(seq & 1)) seq = pool_claim_seq(d);
    else if (load_relaxed(&d->io_submitted) == seq) continue;
    // JS marks the claim submitted only after its submit call returns: a claimer killed
    // in between has its IO in flight. Aborting the claim now would let the buffer be
    // reused while the kernel still reads into it; its completion ends the claim instead.
    else if (claim_in_flight(seg, (s & BS_VALID) ? CK_BUFFER_WRITE_DONE : CK_BUFFER_READ_DONE,
                             ((uint64_t)(seq & 0xFFFFF) << 32) | id)) continue;
    if (s & BS_VALID) pool_write_done(seg, v, id, seq & 0xFFFFF, -ECANCELED);
    else pool_read_done(seg, v, id, seq & 0xFFFFF, -ECANCELED);
    woke = true;
  }
  // A waiter that died (or detached) mid-wait is counted no more.
  uint64_t waiting = load_relaxed(&v.sstats[slot].v[ST_PIN_WAITING]);
  if (waiting) {
    uint32_t cur = load_acquire(&v.h->pin_waiters);
    while (cur > 0 && !cas(&v.h->pin_waiters, &cur, cur - 1)) {}
  }
  for (uint32_t k = 0; k < ST_COUNT; k++) store_relaxed(&v.sstats[slot].v[k], (uint64_t)0);
  if (woke) {
    if (load_acquire(&v.h->pin_waiters)) fetch_add(&v.h->unpin_seq, 1u);  // pins went back too
    wake_word_waiters(seg);
  }
}

const bool g_registered = register_completion_kind(CK_BUFFER_READ_DONE, kind_valid, read_action) &&
                          register_completion_kind(CK_BUFFER_WRITE_DONE, kind_valid, write_action) &&
                          register_slot_cleanup_hook(cleanup_hook);

}  // namespace


uint32_t page_checksum(const uint8_t* page, uint32_t size) {
  uint32_t c = crc32c(0xFFFFFFFFu, page, 8);  // the LSN is covered; the checksum field is not
  c = crc32c(c, page + 12, size - 12);
  return ~c;
}

bool page_all_zero(const uint8_t* page, uint32_t size) {
  for (uint32_t i = 0; i < size; i += 8) {
    uint64_t w;
    memcpy(&w, page + i, 8);
    if (w) return false;
  }
  return true;
}

uint64_t pool_layout_size(uint32_t pages, uint32_t page_size, uint32_t max_slots, PoolHeader* out) {
  PoolHeader h{};
  h.pages = pages;
  h.page_size = page_size;
  uint32_t nb = 1;
  while (nb < pages * 2u && nb < (1u << 30)) nb <<= 1;
  h.nbuckets = nb;
  h.max_slots = max_slots;
  uint64_t o = align_up(sizeof(PoolHeader), 64);
  h.desc_off = o;
  o += (uint64_t)pages * sizeof(BufDesc);
  h.buckets_off = o = align_up(o, 64);
  o += (uint64_t)nb * 4;
  h.locks_off = o = align_up(o, 64);
  o += (uint64_t)kPoolPartitions * sizeof(LockCell);
  h.pins_off = o = align_up(o, 64);
  o += (uint64_t)max_slots * kPinsPerSlot * sizeof(PinEntry);
  h.sstats_off = o = align_up(o, 64);
  o += (uint64_t)max_slots * sizeof(SlotStats);
  h.wparts_off = o = align_up(o, 64);
  o += (uint64_t)kWaitPartitions * sizeof(WaitPartition);
  h.wqueues_off = o = align_up(o, 64);
  o += (uint64_t)pages * sizeof(WaitQueue);
  h.wcells_off = o = align_up(o, 64);
  o += (uint64_t)max_slots * kWaitCellsPerSlot * sizeof(WaitCell);
  h.pages_off = o = align_up(o, 4096);
  o += (uint64_t)pages * page_size;
  h.region_size = o;
  if (out) *out = h;
  return o;
}

int pool_init(Segment& seg, uint64_t off, uint64_t size, uint32_t pages, uint32_t page_size, uint32_t flags) {
  PoolHeader h;
  uint64_t need = pool_layout_size(pages, page_size, seg.hdr->max_slots, &h);
  h.flags = flags;
  if (size < need || off > seg.arena.size || seg.arena.size - off < need || off % 4096) return -EINVAL;
  uint8_t* base = seg.arena.base + off;
  auto* ph = reinterpret_cast<PoolHeader*>(base);
  if (load_acquire(&ph->magic) != 0) return -EEXIST;
  h.magic = 0;
  memcpy(ph, &h, sizeof(h));  // nobody reads the header before the magic below is published
  auto* locks = reinterpret_cast<LockCell*>(base + h.locks_off);
  for (uint32_t i = 0; i < kPoolPartitions; i++) robust_lock_init(&locks[i].lock);
  for (uint32_t i = 0; i < kWaitPartitions; i++)
    robust_lock_init(&reinterpret_cast<WaitPartition*>(base + h.wparts_off)[i].lock);
  store_release(&ph->magic, kPoolMagic);  // pairs with load_acquire in pool_view
  return 0;
}

bool pool_view(Segment& seg, PoolView* v) {
  uint64_t off, size;
  if (!region_of(seg, &off, &size)) return false;
  if (off > seg.arena.size || seg.arena.size - off < size || size < sizeof(PoolHeader)) return false;
  uint8_t* base = seg.arena.base + off;
  auto* ph = reinterpret_cast<PoolHeader*>(base);
  if (load_acquire(&ph->magic) != kPoolMagic) return false;  // pairs with pool_init's release
  // Read every layout field once, recompute the layout and compare: a scribbled
  // header cannot make us index outside the region.
  uint32_t pages = load_relaxed(&ph->pages), ps = load_relaxed(&ph->page_size), ms = load_relaxed(&ph->max_slots);
  if (pages == 0 || pages > (1u << 24) || ps < 4096 || ps > 32768 || (ps & (ps - 1)) || ms == 0 || ms > 4096) return false;
  PoolHeader h;
  uint64_t need = pool_layout_size(pages, ps, ms, &h);
  if (need > size || load_relaxed(&ph->desc_off) != h.desc_off || load_relaxed(&ph->pages_off) != h.pages_off ||
      load_relaxed(&ph->nbuckets) != h.nbuckets || load_relaxed(&ph->wcells_off) != h.wcells_off)
    return false;
  v->base = base;
  v->region_off = off;
  v->h = ph;
  v->d = reinterpret_cast<BufDesc*>(base + h.desc_off);
  v->buckets = reinterpret_cast<uint32_t*>(base + h.buckets_off);
  v->locks = reinterpret_cast<LockCell*>(base + h.locks_off);
  v->pins = reinterpret_cast<PinEntry*>(base + h.pins_off);
  v->sstats = reinterpret_cast<SlotStats*>(base + h.sstats_off);
  v->pages = base + h.pages_off;
  v->wq.parts = reinterpret_cast<WaitPartition*>(base + h.wparts_off);
  v->wq.queues = reinterpret_cast<WaitQueue*>(base + h.wqueues_off);
  v->wq.nqueues = pages;
  v->wq.cells = reinterpret_cast<WaitCell*>(base + h.wcells_off);
  v->wq.ncells = ms * kWaitCellsPerSlot;
  v->wq.next_ticket = &ph->wait_ticket;
  v->n = pages;
  v->page_size = ps;
  v->nbuckets = h.nbuckets;
  v->max_slots = ms;
  return true;
}

void pool_note_unpinned(Segment& seg, PoolView& v) {
  // seq_cst against the waiter's registration: it registers, then reads the seq and looks
  // again; we unpinned (the CAS), then read pin_waiters. One of us sees the other.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (load_acquire(&v.h->pin_waiters) == 0) return;  // the common case: one load
  fetch_add(&v.h->unpin_seq, 1u);
  wake_word_waiters(seg);
}

void pool_report_corrupt(Segment& seg, PoolView& v, GlobalStat which) {
  stat_add(&v.h->gstats[which], (uint64_t)1);
  stat_add(&seg.hdr->stat_corrupt_reports, (uint64_t)1);
}

void pool_read_done(Segment& seg, PoolView& v, uint32_t id, uint32_t seq20, int32_t res) {
  BufDesc* d = &v.d[id];
  int32_t err = 0;
  if (issuer_gone_result(res)) err = -ECANCELED;  // waiters retry with their own read
  else if (res < 0) err = res;
  else if (res == 0) err = BP_ERR_PAST_EOF;
  else if ((uint32_t)res != v.page_size) err = BP_ERR_SHORT_READ;
  else {
    const uint8_t* p = v.pages + (uint64_t)id * v.page_size;
    if (!page_all_zero(p, v.page_size)) {
      uint32_t stored;
      memcpy(&stored, p + 8, 4);
      if (stored != page_checksum(p, v.page_size)) err = BP_ERR_CHECKSUM;
    }
  }
  int32_t pid = load_relaxed(&d->io_pid);
  uint32_t issuer = load_relaxed(&d->io_slot);
  bool ok = err == 0 ? end_io(seg, v, id, seq20, BS_VALID, BS_IO_ERROR, 0) : end_io(seg, v, id, seq20, BS_IO_ERROR, BS_VALID, err);
  if (ok && pid != getpid()) {
    stat_add(&v.h->gstats[ST_COMPLETED_BY_OTHER], (uint64_t)1);
    if (issuer < v.max_slots) stat_add(&v.sstats[issuer].v[ST_COMPLETED_BY_OTHER], (uint64_t)1);
  }
}

void pool_write_done(Segment& seg, PoolView& v, uint32_t id, uint32_t seq20, int32_t res) {
  BufDesc* d = &v.d[id];
  if (res >= 0 && (uint32_t)res == v.page_size) {
    // Clean only if nobody re-dirtied it while the write was in flight.
    bool same = load_relaxed(&d->dirty_gen) == load_relaxed(&d->write_gen);
    end_io(seg, v, id, seq20, 0, same ? BS_DIRTY : 0, 0);
  } else {
    int32_t err = issuer_gone_result(res) ? -ECANCELED : res < 0 ? res : -EIO;
    end_io(seg, v, id, seq20, 0, 0, err);  // stays dirty: retried later
  }
}

}  // namespace rm
