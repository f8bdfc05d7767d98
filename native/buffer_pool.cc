// The shared buffer pool (layout and rules: buffer_pool.h).
#include "buffer_pool.h"
#include "crc32c.h"
#include "file_table.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "atomics.h"
#include "buffer_mapping.h"
#include "completion_kinds.h"
#include "fault_injection.h"
#include "io_handles.h"
#include "pin_records.h"
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

// Ends the IO `seq20` of buffer `id`: clears IO_IN_PROGRESS (and IO_WAITERS) and
// sets/clears the bits in `set`/`clear` by CAS, then moves io_seq to even and, if anyone
// said it waits (IO_WAITERS), wakes the waiters. False if the IO is not the current one
// (stale completion, or already aborted).
bool end_io(Segment& seg, PoolView& v, uint32_t id, uint32_t seq20, uint64_t set, uint64_t clear, int32_t err) {
  BufDesc* d = &v.d[id];
  uint32_t seq = load_acquire(&d->io_seq);  // pairs with the claimer's fetch_add
  if (!(seq & 1) || (seq & 0xFFFFF) != seq20) return false;
  if (err) store_relaxed(&d->last_error, err);  // published by the CAS below (release)
  uint64_t s = load_acquire(&d->state);
  for (;;) {
    if (!(s & BS_IO)) return false;
    uint64_t ns = (s & ~(BS_IO | BS_IO_WAITERS | clear)) | set;
    if (cas(&d->state, &s, ns)) break;
  }
  // The even value tells waiters the IO ended; their load_acquire of io_seq pairs with
  // this release, so they see the state CAS above.
  uint32_t expect = seq;
  cas(&d->io_seq, &expect, seq + 1);
  // A waiter sets IO_WAITERS (seq_cst) before it registers its wait and re-reads io_seq;
  // the CAS above read the flag and the ring below reads the waiting bitmap after the
  // io_seq step (seq_cst): either we see its flag and its bit, or it sees the new io_seq.
  if (s & BS_IO_WAITERS) wake_word_waiters(seg);
  return true;
}

// The caller is about to wait for the IO in progress on `d` to end: IO_WAITERS makes
// end_io wake it. False if no IO is in progress any more (look again instead of waiting).
bool note_io_waiter(BufDesc* d) {
  uint64_t s = load_acquire(&d->state);
  if (s & BS_IO_WAITERS) return (s & BS_IO) != 0;
  return (__atomic_fetch_or(&d->state, BS_IO_WAITERS, __ATOMIC_SEQ_CST) & BS_IO) != 0;
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
// Bits every transition keeps. RECOUNT is one: under the queue lock the shared count may
// change while it is set (the recount sums under that lock too); outside the lock a shared
// request that sees it steps aside (step_aside).
constexpr uint32_t kFlags = kLockWaiters | kLockHandoff | kLockWaking | kLockRecount;

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
        // RECOUNT is set outside the queue lock (a recount starting): not the hand-over.
        (load_acquire(&v.d[q1 - 1].content_lock) & ~kLockRecount) != (load_relaxed(&part->grant_word) & ~kLockRecount)) {
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

// A count's change found RECOUNT on its word before it began: the agent's intent goes (the
// recount waits for it), it waits the recount out, then names the count again; the caller
// looks at the word anew. `agent` ~0u: no intent to move.
static void step_aside(Segment& seg, PoolView& v, uint32_t agent, uint32_t id, uint64_t kind) {
  if (agent < v.max_slots) pin_intent_clear(v, agent);
  pool_recount_wait(seg, v, id, kind);
  if (agent < v.max_slots) pin_intent_set(v, agent, id, kind);
}

namespace {

int32_t content_lock_acquire_named(Segment& seg, PoolView& v, uint32_t slot, uint32_t id, bool excl, bool recursive_shared,
                                   PinEntry* rec, uint32_t* cell_out) {
  uint32_t* w = &v.d[id].content_lock;
  // seq_cst: after the intent store (a shared request), so a recount that set RECOUNT
  // before this load sees the intent, or this load sees RECOUNT (pin_records.h).
  uint32_t cur = __atomic_load_n(w, __ATOMIC_SEQ_CST);
  for (int t = 0; t < kMaxLockCas; t++) {
    if (!excl && (cur & kLockRecount)) {
      step_aside(seg, v, slot, id, kIntentShared);
      cur = __atomic_load_n(w, __ATOMIC_SEQ_CST);
      continue;
    }
    if ((cur & kLockHandoff) || !lock_grantable(cur, excl)) break;
    if (cas(w, &cur, lock_taken(cur, excl, slot))) {
      if (!excl) kill_point(&seg.hdr->faults, KP_POOL_SHARED_LOCK_COUNTED);
      record_hold(rec, excl);  // the record, then the intent goes (pin_records.h)
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

}  // namespace

// A shared request changes the shared count: the slot's intent word names it from before
// the first look at the word until the hold is recorded (or the request queued).
int32_t content_lock_acquire(Segment& seg, PoolView& v, uint32_t slot, uint32_t id, bool excl, bool recursive_shared,
                             PinEntry* rec, uint32_t* cell_out) {
  if (excl) return content_lock_acquire_named(seg, v, slot, id, excl, recursive_shared, rec, cell_out);
  pin_intent_set(v, slot, id, kIntentShared);
  int32_t rc = content_lock_acquire_named(seg, v, slot, id, excl, recursive_shared, rec, cell_out);
  pin_intent_clear(v, slot);
  return rc;
}

namespace {

// Takes a GRANTED cell's hold: recorded in rec, the cell freed, the wait counted. The
// exclusive hold is recorded before the cell is freed: a death in between leaves a GRANTED
// cell, which cleanup releases without fencing the page (the holder never saw the lock).
// A shared hold is recorded after, outside the queue lock, under the slot's intent word
// (set by content_lock_wait_end): a death in between leaves the intent, and cleanup
// recounts the shared count (the granted cells and the records, under that lock). Not
// begun while a recount runs.
void take_grant(Segment& seg, PoolView& v, uint32_t slot, uint32_t id, uint32_t cell, bool excl, PinEntry* rec) {
  uint64_t since = load_relaxed(&v.wq.cells[cell].since_ns);
  while (!excl && (__atomic_load_n(&v.d[id].content_lock, __ATOMIC_SEQ_CST) & kLockRecount))
    step_aside(seg, v, slot, id, kIntentShared);
  if (excl) record_hold(rec, true);
  wq_release_cell(v.wq, cell);
  if (!excl) record_hold(rec, false);
  uint64_t now = monotonic_ns();
  count_slot(v, slot, ST_LOCK_WAIT_NS, now > since ? now - since : 0);
}

}  // namespace

namespace {

int32_t content_lock_wait_end_named(Segment& seg, PoolView& v, uint32_t slot, uint32_t id, uint32_t cell, bool cancel,
                                    PinEntry* rec) {
  if (cell >= v.wq.ncells || wq_cell_slot(cell) != slot) return LW_BAD_CELL;
  WaitCell* c = &v.wq.cells[cell];
  if (load_relaxed(&c->queue_plus1) != id + 1) return LW_BAD_CELL;
  bool excl = load_relaxed(&c->mode) == kWaitExclusive;
  uint32_t st = load_acquire(&c->state);  // pairs with the waker's release store
  if (st == WC_GRANTED) {
    take_grant(seg, v, slot, id, cell, excl, rec);
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
    take_grant(seg, v, slot, id, cell, excl, rec);
    rc = LW_GRANTED;
  }
  return rc;
}

}  // namespace

// A shared waiter's grant becomes its record under its intent word (pin_records.h).
int32_t content_lock_wait_end(Segment& seg, PoolView& v, uint32_t slot, uint32_t id, uint32_t cell, bool cancel,
                              PinEntry* rec) {
  bool shared = cell < v.wq.ncells && wq_cell_slot(cell) == slot && load_relaxed(&v.wq.cells[cell].mode) == kWaitShared;
  if (!shared) return content_lock_wait_end_named(seg, v, slot, id, cell, cancel, rec);
  pin_intent_set(v, slot, id, kIntentShared);
  int32_t rc = content_lock_wait_end_named(seg, v, slot, id, cell, cancel, rec);
  pin_intent_clear(v, slot);
  return rc;
}

void content_lock_release(Segment& seg, PoolView& v, uint32_t id, bool excl, uint32_t shared, uint32_t agent) {
  uint32_t* w = &v.d[id].content_lock;
  uint32_t cur = __atomic_load_n(w, __ATOMIC_SEQ_CST);  // after the agent's intent store
  for (int t = 0; t < kMaxLockCas && !(cur & (kLockWaiters | kLockHandoff)); t++) {
    if (!excl && (cur & kLockRecount)) {
      step_aside(seg, v, agent, id, kIntentShared);
      cur = __atomic_load_n(w, __ATOMIC_SEQ_CST);
      continue;
    }
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

// ---- recounts --------------------------------------------------------------------------
//
// A dead slot's intent word names a count (a buffer's pins, or its shared content locks)
// it was changing: its CAS may or may not have happened, so its records cannot say what
// to give back. The count is rebuilt instead (pin_records.h):
//  1. the recount lock (robust, one per pool) is taken; RECOUNT is set on the word by CAS.
//     From then on no pin, unpin or shared lock/unlock outside the queue lock begins on it:
//     one that finds RECOUNT clears its intent and waits (step_aside);
//  2. every other slot whose intent names that count is waited for while its agent lives
//     (an ACTIVE slot's process, or a CLEANING slot's cleaner, agent_pid): it is between
//     its CAS and its record, a few instructions. A slot whose agent is dead is left out:
//     its records of this buffer are no more trusted than the dead slot's;
//  3. the count is the sum of the trusted records (for the shared count, taken under the
//     buffer's queue lock, plus the cells granted shared holds not yet recorded), written
//     with RECOUNT cleared in one CAS; then the queue may move (hand-overs waited).
// The recount is idempotent: the records it sums do not change while RECOUNT is set, so a
// recounter that dies anywhere leaves RECOUNT with the recount lock free, and whoever
// waits for RECOUNT takes the lock (EOWNERDEAD) and does it again (pool_recount_wait).
// Afterwards the count is what the trusted records say: a dead taker's pin is gone, and a
// dead giver's pin is not given back a second time (from somebody else's).

namespace {

constexpr int64_t kRecountLockWaitNs = 20000000ll;  // a pass of pool_recount_wait

RobustLock* recount_lock(PoolView& v) { return &v.locks[kPoolPartitions].lock; }

uint64_t own_start_time() {
  static const uint64_t t = process_start_time(getpid());
  return t;
}

// Is whoever acts for slot y (its process, or the process cleaning it) alive?
bool agent_alive(Segment& seg, PoolView& v, uint32_t y) {
  ProcSlot* ps = &seg.slots[y];
  uint32_t st = load_acquire(&ps->state);
  if (st == SLOT_ACTIVE) return !slot_owner_dead(ps);
  if (st != SLOT_CLEANING) return false;
  int32_t pid = __atomic_load_n(&v.intents[y].agent_pid, __ATOMIC_SEQ_CST);
  if (pid <= 0) return false;
  if (pid == (int32_t)getpid()) return true;
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  uint64_t t = process_start_time(pid);
  return t != 0 && t == load_relaxed(&v.intents[y].agent_start);
}

void pause_a_little(uint32_t n) {
  if (n < 64) {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  } else if (n < 2000) {
    sched_yield();
  } else {
    usleep(200);
  }
}

// Holding the recount lock, with RECOUNT set on the word: steps 2 and 3 above.
void recount_locked(Segment& seg, PoolView& v, uint32_t id, uint64_t kind, uint32_t skip_slot) {
  uint64_t tag = pin_intent_tag(id, kind);
  std::vector<uint8_t> trusted(v.max_slots, 1);
  for (uint32_t y = 0; y < v.max_slots; y++) {
    if (y == skip_slot) { trusted[y] = 0; continue; }
    // seq_cst: after the CAS that set RECOUNT (Dekker with the agent's intent store).
    for (uint32_t n = 0; __atomic_load_n(&v.intents[y].word, __ATOMIC_SEQ_CST) == tag; n++) {
      if ((n & 255) == 255 || n == 0) {
        if (!agent_alive(seg, v, y)) { trusted[y] = 0; break; }
      }
      pause_a_little(n);
    }
  }
  auto sum_records = [&]() {
    uint64_t sum = 0;
    for (uint32_t y = 0; y < v.max_slots; y++)
      if (trusted[y]) sum += pin_records_count(v, y, id, kind);
    return sum;
  };
  if (kind == kIntentPins) {
    uint64_t sum = sum_records();
    if (sum > BS_PIN_MASK) sum = BS_PIN_MASK;
    BufDesc* d = &v.d[id];
    uint64_t s = load_acquire(&d->state);
    for (;;) {
      uint64_t ns = (s & ~(BS_PIN_MASK | BS_RECOUNT)) | sum;
      if (cas(&d->state, &s, ns)) break;
    }
    if (sum == 0) pool_note_unpinned(seg, v);
  } else {
    uint32_t* w = &v.d[id].content_lock;
    Wakes g;
    queue_lock_always(seg, v, id, g);  // queued requests count and record under it
    uint64_t sum = sum_records();
    for (uint32_t i = 0; i < v.wq.ncells; i++) {
      WaitCell* c = &v.wq.cells[i];
      if (load_acquire(&c->state) == WC_GRANTED && load_relaxed(&c->queue_plus1) == id + 1 &&
          load_relaxed(&c->mode) == kWaitShared)
        sum++;
    }
    if (sum > kLockHoldMask - 1) sum = kLockHoldMask - 1;
    uint32_t cur = load_acquire(w);
    for (;;) {
      // An exclusive holder (named in the word) means no shared one: only the flag goes.
      uint32_t nw = (cur & kLockExclusive) ? (cur & ~kLockRecount) : ((cur & ~(kLockHoldMask | kLockRecount)) | (uint32_t)sum);
      if (cas(w, &cur, nw)) break;
    }
    wake_or_hand_over(seg, v, id, ~0u, g);  // hand-overs waited for the recount
    wq_unlock(v.wq, id);
    g.ring(seg);
  }
  stat_add(&v.h->gstats[G_RECOUNTS], (uint64_t)1);
  wake_word_waiters(seg);
}

bool recount_flag_set(PoolView& v, uint32_t id, uint64_t kind) {
  if (kind == kIntentPins) return (__atomic_load_n(&v.d[id].state, __ATOMIC_SEQ_CST) & BS_RECOUNT) != 0;
  return (__atomic_load_n(&v.d[id].content_lock, __ATOMIC_SEQ_CST) & kLockRecount) != 0;
}

LockResult recount_lock_take(PoolView& v) {
  for (;;) {
    LockResult r = robust_lock_acquire(recount_lock(v), kRecountLockWaitNs);
    if (r == LockResult::Acquired || r == LockResult::AcquiredOwnerDied) return r;
    if (r == LockResult::Error) usleep(1000);
  }
}

}  // namespace

void pool_recount(Segment& seg, PoolView& v, uint32_t id, uint64_t kind, uint32_t skip_slot) {
  if (id >= v.n) return;
  recount_lock_take(v);
  // seq_cst: the intents are read after this CAS (Dekker, pin_records.h).
  if (kind == kIntentPins) {
    uint64_t s = load_acquire(&v.d[id].state);
    while (!(s & BS_RECOUNT) &&
           !__atomic_compare_exchange_n(&v.d[id].state, &s, s | BS_RECOUNT, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {}
  } else {
    uint32_t w = load_acquire(&v.d[id].content_lock);
    while (!(w & kLockRecount) &&
           !__atomic_compare_exchange_n(&v.d[id].content_lock, &w, w | kLockRecount, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {}
  }
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  recount_locked(seg, v, id, kind, skip_slot);
  robust_lock_release(recount_lock(v));
}

void pool_recount_wait(Segment& seg, PoolView& v, uint32_t id, uint64_t kind) {
  // The recounter holds the recount lock from before it sets RECOUNT until after it
  // clears it: RECOUNT with the lock free means its recounter died.
  while (recount_flag_set(v, id, kind)) {
    LockResult r = robust_lock_acquire(recount_lock(v), kRecountLockWaitNs);
    if (r != LockResult::Acquired && r != LockResult::AcquiredOwnerDied) continue;
    if (recount_flag_set(v, id, kind)) recount_locked(seg, v, id, kind, ~0u);
    robust_lock_release(recount_lock(v));
  }
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

KindArg kind_valid(Segment& seg, uint64_t arg) {
  PoolView v;
  if (!pool_view(seg, &v)) return KindArg::Invalid;
  return (arg & 0xFFFFFFFFu) < v.n && (arg >> 52) == 0 ? KindArg::Valid : KindArg::Invalid;
}

void read_action(Segment& seg, uint64_t arg, int32_t res, uint32_t) {
  PoolView v;
  if (!pool_view(seg, &v)) return;
  uint32_t id = (uint32_t)(arg & 0xFFFFFFFFu);
  if (id >= v.n) return;  // validated again: another process wrote the handle
  pool_read_done(seg, v, id, (uint32_t)(arg >> 32) & 0xFFFFF, res);
}

void write_action(Segment& seg, uint64_t arg, int32_t res, uint32_t) {
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
  SlotIntent* in = &v.intents[slot];
  // From here on we act for the slot: a recount that finds its intent set asks whether
  // we are alive (recounts, above).
  store_relaxed(&in->agent_start, own_start_time());
  __atomic_store_n(&in->agent_pid, (int32_t)getpid(), __ATOMIC_SEQ_CST);
  bool woke = false;
  // The count the slot was changing when it died: nobody knows whether its CAS happened.
  uint64_t died_at = __atomic_load_n(&in->word, __ATOMIC_SEQ_CST);
  if (died_at) {
    uint32_t iid = (uint32_t)(died_at & 0xFFFFFFFFu) - 1;
    uint64_t kind = died_at >> 32;
    if (iid < v.n && (kind == kIntentPins || kind == kIntentShared)) {
      pool_recount(seg, v, iid, kind, slot);  // leaves out all of this slot's records of it
      PinEntry* mine = pin_records_of(v, slot);
      for (uint32_t i = 0; i < kPinsPerSlot; i++)
        if (load_acquire(&mine[i].buf_plus1) == iid + 1)
          store_release(kind == kIntentPins ? &mine[i].pins : &mine[i].shared_locks, 0u);
      woke = true;
    }
    pin_intent_clear(v, slot);
  }
  cleanup_wait_cells(seg, v, slot);
  PinEntry* e = &v.pins[(uint64_t)slot * kPinsPerSlot];
  for (uint32_t i = 0; i < kPinsPerSlot; i++) {
    uint32_t b1 = load_acquire(&e[i].buf_plus1);
    if (b1 == 0 || b1 > v.n) { store_relaxed(&e[i].buf_plus1, 0u); continue; }
    BufDesc* d = &v.d[b1 - 1];
    uint32_t sh = load_relaxed(&e[i].shared_locks), pins = load_relaxed(&e[i].pins);
    // Given back as the slot would have: the intent, the word, the record, no intent.
    // Shared holds (clamped at zero); exclusive locks: by owner, below.
    if (sh && !(load_acquire(&d->content_lock) & kLockExclusive)) {
      pin_intent_set(v, slot, b1 - 1, kIntentShared);
      content_lock_release(seg, v, b1 - 1, false, sh, slot);
      store_release(&e[i].shared_locks, 0u);
      pin_intent_clear(v, slot);
    }
    if (pins) {
      pin_intent_set(v, slot, b1 - 1, kIntentPins);
      uint64_t s = __atomic_load_n(&d->state, __ATOMIC_SEQ_CST);
      for (;;) {
        if (s & BS_RECOUNT) {
          step_aside(seg, v, slot, b1 - 1, kIntentPins);
          s = __atomic_load_n(&d->state, __ATOMIC_SEQ_CST);
          continue;
        }
        uint64_t cnt = s & BS_PIN_MASK;
        uint64_t ns = (s & ~BS_PIN_MASK) | (cnt - (pins < cnt ? pins : cnt));  // never underflow
        if (ns == s || cas(&d->state, &s, ns)) break;
      }
      store_release(&e[i].pins, 0u);
      pin_intent_clear(v, slot);
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
  pin_intent_clear(v, slot);
  store_release(&in->agent_pid, 0);
  if (woke) {
    if (load_acquire(&v.h->pin_waiters)) fetch_add(&v.h->unpin_seq, 1u);  // pins went back too
    wake_word_waiters(seg);
  }
}

// The pool's IO targets its own pages (its arena region).
const bool g_registered = register_completion_kind(CK_BUFFER_READ_DONE, kind_valid, read_action, KF_READS_INTO_REGION) &&
                          register_completion_kind(CK_BUFFER_WRITE_DONE, kind_valid, write_action, KF_READS_INTO_REGION) &&
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
  o += (uint64_t)(kPoolPartitions + 1) * sizeof(LockCell);  // the partitions, then the recount lock
  h.pins_off = o = align_up(o, 64);
  o += (uint64_t)max_slots * kPinsPerSlot * sizeof(PinEntry);
  h.sstats_off = o = align_up(o, 64);
  o += (uint64_t)max_slots * sizeof(SlotStats);
  h.intents_off = o = align_up(o, 64);
  o += (uint64_t)max_slots * sizeof(SlotIntent);
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
  for (uint32_t i = 0; i < kPoolPartitions + 1; i++) robust_lock_init(&locks[i].lock);
  for (uint32_t i = 0; i < kWaitPartitions; i++)
    robust_lock_init(&reinterpret_cast<WaitPartition*>(base + h.wparts_off)[i].lock);
  store_release(&ph->magic, kPoolMagic);  // pairs with load_acquire in pool_view
  return 0;
}

namespace {
// The last view this thread derived, for the segment it was derived from. Every pool call
// takes a view, and deriving one (region lookup under a mutex, the layout recomputed and
// compared) was about 2% of a TPC-B worker's CPU. The layout never changes once the
// magic is published and the region never moves, so a view stays valid for as long as
// the same segment (id) is mapped at the same address; a header scribbled later cannot
// change a view already checked.
struct CachedPoolView {
  const Segment* seg = nullptr;
  uint64_t id = 0;
  const uint8_t* arena_base = nullptr;
  uint64_t arena_size = 0;
  PoolView v;
};
thread_local CachedPoolView t_pool_view;

bool pool_view_derive(Segment& seg, PoolView* v);
}  // namespace

bool pool_view(Segment& seg, PoolView* v) {
  CachedPoolView& c = t_pool_view;
  if (c.seg == &seg && c.id == seg.id && c.arena_base == seg.arena.base && c.arena_size == seg.arena.size && seg.arena.base) {
    *v = c.v;
    return true;
  }
  if (!pool_view_derive(seg, v)) return false;
  c.seg = &seg;
  c.id = seg.id;
  c.arena_base = seg.arena.base;
  c.arena_size = seg.arena.size;
  c.v = *v;
  return true;
}

namespace {
bool pool_view_derive(Segment& seg, PoolView* v) {
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
      load_relaxed(&ph->nbuckets) != h.nbuckets || load_relaxed(&ph->wcells_off) != h.wcells_off ||
      load_relaxed(&ph->intents_off) != h.intents_off)
    return false;
  v->base = base;
  v->region_off = off;
  v->h = ph;
  v->d = reinterpret_cast<BufDesc*>(base + h.desc_off);
  v->buckets = reinterpret_cast<uint32_t*>(base + h.buckets_off);
  v->locks = reinterpret_cast<LockCell*>(base + h.locks_off);
  v->pins = reinterpret_cast<PinEntry*>(base + h.pins_off);
  v->sstats = reinterpret_cast<SlotStats*>(base + h.sstats_off);
  v->intents = reinterpret_cast<SlotIntent*>(base + h.intents_off);
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
}  // namespace

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
    uint32_t covered = load_relaxed(&d->write_gen);
    bool same = load_relaxed(&d->dirty_gen) == covered;
    // done_gen only for the IO that is still current (a stale completion, or one cleanup
    // aborted, says nothing about the page as it is now), and only forwards: a completer
    // preempted here must not take back a newer write's mark. A completer that dies
    // before this store leaves done_gen behind: a checkpoint then writes the page again.
    if (end_io(seg, v, id, seq20, 0, same ? BS_DIRTY : 0, 0)) {
      uint32_t cur = load_relaxed(&d->done_gen);
      while ((int32_t)(covered - cur) > 0 && !cas(&d->done_gen, &cur, covered)) {}
    }
  } else {
    int32_t err = issuer_gone_result(res) ? -ECANCELED : res < 0 ? res : -EIO;
    end_io(seg, v, id, seq20, 0, 0, err);  // stays dirty: retried later
  }
}


// ---- one slot's operations (buffer_pool.h) ------------------------------------------
namespace {

// A CAS that keeps failing means another process keeps rewriting the word.
constexpr int kMaxCasRetries = 1000;

// Cached: a forked worker is a new exec'd process, so the value never goes stale.
int32_t my_pid() {
  static const int32_t pid = (int32_t)getpid();
  return pid;
}

void count_stat(PoolSlot& p, SlotStat which) {
  stat_add(&p.v.h->gstats[which], (uint64_t)1);
  stat_add(&p.v.sstats[p.slot].v[which], (uint64_t)1);
}

// The state word, read after the slot's intent store (seq_cst: a recount that set RECOUNT
// before this load sees the intent, or this load sees RECOUNT; pin_records.h).
uint64_t state_after_intent(BufDesc* d) { return __atomic_load_n(&d->state, __ATOMIC_SEQ_CST); }

// Pin: refcount + 1, and usage + 1 (up to BS_USAGE_MAX) if `use`, by CAS. A full pin
// count is never exceeded (false: the caller reports too many pins). The slot's intent
// word names the count from before the CAS until the pin is in `rec` (pin_records.h).
bool pin_state(PoolSlot& p, uint32_t id, bool use, PinEntry* rec) {
  BufDesc* d = &p.v.d[id];
  pin_intent_set(p.v, p.slot, id, kIntentPins);
  uint64_t s = state_after_intent(d);
  for (;;) {
    if (s & BS_RECOUNT) {
      step_aside(*p.seg, p.v, p.slot, id, kIntentPins);
      s = state_after_intent(d);
      continue;
    }
    if ((s & BS_PIN_MASK) == BS_PIN_MASK) break;
    uint64_t ns = s + 1;
    uint64_t u = (s & BS_USAGE_MASK) >> BS_USAGE_SHIFT;
    if (use && u < BS_USAGE_MAX) ns += 1ull << BS_USAGE_SHIFT;
    if (cas(&d->state, &s, ns)) {
      kill_point(&p.seg->hdr->faults, KP_POOL_PIN_COUNTED);
      store_release(&rec->pins, load_relaxed(&rec->pins) + 1);
      pin_intent_clear(p.v, p.slot);
      return true;
    }
  }
  pin_intent_clear(p.v, p.slot);
  return false;
}

// Unpin: the word, then the record `rec`, under the slot's intent word (pin_records.h).
// -1 if the word had no pin (garbage; the record still goes down), else the pins left.
int64_t unpin_recorded(PoolSlot& p, uint32_t id, PinEntry* rec) {
  BufDesc* d = &p.v.d[id];
  pin_intent_set(p.v, p.slot, id, kIntentPins);
  uint64_t s = state_after_intent(d);
  int64_t left = -1;
  for (;;) {
    if (s & BS_RECOUNT) {
      step_aside(*p.seg, p.v, p.slot, id, kIntentPins);
      s = state_after_intent(d);
      continue;
    }
    if ((s & BS_PIN_MASK) == 0) break;
    if (cas(&d->state, &s, s - 1)) {
      left = (int64_t)((s - 1) & BS_PIN_MASK);
      break;
    }
  }
  if (left >= 0) kill_point(&p.seg->hdr->faults, KP_POOL_UNPIN_COUNTED);
  uint32_t had = load_relaxed(&rec->pins);
  if (had > 0) store_release(&rec->pins, had - 1);
  pin_record_maybe_free(rec);
  pin_intent_clear(p.v, p.slot);
  return left;
}

// Pins a found buffer for this slot. Recorded before the partition lock is released:
// the release is a futex wake, a syscall, where kills land.
PinResult pin_found(PoolSlot& p, uint32_t id) {
  PinEntry* e = pin_record_for(p.v, p.slot, id, true);
  bool pinned = e && pin_state(p, id, true, e);
  if (e && !pinned) pin_record_maybe_free(e);
  if (!pinned) return {PIN_TOO_MANY, 0};
  return {PIN_OK, id};
}

// Clock sweep: returns a victim pinned by us (refcount 0 -> 1) and recorded in `spare`
// (pin_record_spare), or -1 with *dirty = a dirty unpinned candidate (or -1). Buffers with
// a garbage state word are never taken (counted in *corrupt): nothing about them can be trusted.
int64_t clock_victim(PoolSlot& p, PinEntry* spare, int64_t* dirty, uint32_t* corrupt) {
  PoolView& v = p.v;
  *dirty = -1;
  *corrupt = 0;
  uint64_t limit = (uint64_t)v.n * (BS_USAGE_MAX + 2);
  for (uint64_t i = 0; i < limit; i++) {
    uint32_t id = fetch_add(&v.h->clock_hand, 1u) % v.n;
    BufDesc* d = &v.d[id];
    uint64_t s = load_acquire(&d->state);
    for (int tries = 0; tries < kMaxCasRetries; tries++) {
      if (!desc_state_valid(s)) { ++*corrupt; break; }
      // A torn page stays fenced; a recounted one is pinned by somebody, or was.
      if ((s & BS_PIN_MASK) || (s & BS_IO) || (s & BS_TORN) || (s & BS_RECOUNT)) break;
      if (s & BS_USAGE_MASK) {
        if (cas(&d->state, &s, (uint64_t)(s - (1ull << BS_USAGE_SHIFT)))) break;
        continue;
      }
      if (s & BS_DIRTY) {
        if (*dirty < 0) *dirty = id;
        break;
      }
      // The intent before the CAS (which expects no RECOUNT): the CAS is the check.
      pin_intent_set(v, p.slot, id, kIntentPins);
      if (cas(&d->state, &s, s + 1)) {
        kill_point(&p.seg->hdr->faults, KP_POOL_PIN_COUNTED);
        store_release(&spare->buf_plus1, id + 1);  // the record (pin_records.h)
        pin_intent_clear(v, p.slot);
        return id;
      }
      pin_intent_clear(v, p.slot);
    }
  }
  return -1;
}

}  // namespace

uint64_t pool_arena_offset(const PoolView& v, const void* word) {
  return v.region_off + (uint64_t)((const uint8_t*)word - v.base);
}

PinResult pool_pin(PoolSlot& p, uint64_t file, uint64_t block) {
  PoolView& v = p.v;
  uint32_t bucket = mapping_bucket(v, file, block);
  auto corrupt = [&](GlobalStat what) {
    pool_report_corrupt(*p.seg, v, what);
    return PinResult{PIN_CORRUPT, what == G_CORRUPT_MAPPING ? 1u : 0u};
  };
  for (int attempt = 0; attempt < 1000; attempt++) {
    if (!mapping_lock(v, bucket)) return {PIN_EXHAUSTED, 0};
    int64_t found = mapping_find(v, bucket, file, block);
    if (found == kChainBroken) {
      mapping_unlock(v, bucket);
      return corrupt(G_CORRUPT_MAPPING);
    }
    if (found >= 0 && !desc_state_valid(load_acquire(&v.d[found].state))) {
      mapping_unlock(v, bucket);
      return corrupt(G_CORRUPT_DESCRIPTORS);
    }
    if (found >= 0) {
      PinResult r = pin_found(p, (uint32_t)found);
      mapping_unlock(v, bucket);
      return r;
    }
    mapping_unlock(v, bucket);
    // A miss: this id is about to tag a page. One file is cached under one id at a time
    // (file_pool_tag), so a hit needs no check: a page carries an id only if that id's
    // entry was marked when it tagged it, and while a marked entry is open no other entry
    // of its file is marked (a freed entry's id is never matched again).
    FilePoolTag tag = file_pool_tag(*p.seg, (double)file);
    if (tag != FilePoolTag::Ok) return {PIN_ALIASED, tag == FilePoolTag::LockTimeout ? 1u : 0u};
    // The victim's pin is recorded by clock_victim right after its CAS, not after the
    // partition locks: a worker killed while it waits for one of them (preempted at a
    // syscall exit) would otherwise leak the pin forever.
    PinEntry* spare = pin_record_spare(v, p.slot);
    if (!spare) return {PIN_TOO_MANY, 0};
    int64_t dirty;
    uint32_t bad;
    int64_t vid = clock_victim(p, spare, &dirty, &bad);
    if (vid < 0) store_relaxed(&spare->pins, 0u);  // still free: no victim taken
    if (vid < 0 && dirty < 0 && bad) return corrupt(G_CORRUPT_DESCRIPTORS);  // only garbage left to evict
    if (vid < 0) return dirty >= 0 ? PinResult{PIN_NEED_CLEAN, (uint64_t)dirty} : PinResult{PIN_EXHAUSTED, 0};
    BufDesc* d = &v.d[vid];
    auto drop_victim = [&]() {
      PinEntry* rec = pin_record_for(v, p.slot, (uint32_t)vid, false);
      if (rec && unpin_recorded(p, (uint32_t)vid, rec) == 0) pool_note_unpinned(*p.seg, v);
    };
    uint64_t s = load_acquire(&d->state);
    bool evicted = false;
    if (!(s & BS_TAG)) {
      // A tagless victim may still be on the chain of its last tag (file_id, block are
      // left as they were): an evictor killed between making it tagless and unlinking it,
      // or an inserter killed between linking it and tagging it, leaves it there. Linked
      // again elsewhere it would join two chains (a cycle, or a chain cut in two when it
      // is next unlinked). Our pin is the only one a tagless buffer can have, so its
      // file_id and block are stable: take it off that chain first.
      uint64_t of = load_relaxed(&d->file_id), ob = load_relaxed(&d->block);
      uint32_t obucket = mapping_bucket(v, of, ob);
      if (!mapping_lock(v, obucket)) { drop_victim(); return {PIN_EXHAUSTED, 0}; }
      if (uint32_t* link = mapping_link_to(v, obucket, (uint32_t)vid)) mapping_unlink(v, link, (uint32_t)vid);
      mapping_unlock(v, obucket);
    } else {
      // Our pin keeps other evictors away, so the tag is stable; lookups may still pin
      // it, which the CAS below detects.
      uint64_t of = load_relaxed(&d->file_id), ob = load_relaxed(&d->block);
      uint32_t obucket = mapping_bucket(v, of, ob);
      if (!mapping_lock(v, obucket)) { drop_victim(); return {PIN_EXHAUSTED, 0}; }
      // Find its link first: a tagged buffer its chain does not reach (a scribbled tag
      // or link) must not be retagged, or it would end up on two chains.
      uint32_t* link = mapping_link_to(v, obucket, (uint32_t)vid);
      if (!link) {
        mapping_unlock(v, obucket);
        drop_victim();
        return corrupt(G_CORRUPT_MAPPING);
      }
      s = load_acquire(&d->state);
      bool ok = false;
      // Not while a recount runs (the count may be above the truth): given back, retried.
      for (int tries = 0; tries < kMaxCasRetries && (s & BS_PIN_MASK) == 1 && !(s & (BS_DIRTY | BS_IO | BS_RECOUNT)); tries++) {
        if (cas(&d->state, &s, (s & BS_PIN_MASK))) { ok = true; break; }  // tagless, invalid, pinned once
      }
      // Tagless before unlinked: a kill in between leaves a tagless buffer on this chain,
      // which lookups skip and its next user unlinks (above).
      if (ok) kill_point(&p.seg->hdr->faults, KP_POOL_VICTIM_UNTAGGED);
      if (ok) mapping_unlink(v, link, (uint32_t)vid);
      mapping_unlock(v, obucket);
      if (!ok) { drop_victim(); continue; }
      evicted = true;
    }
    if (!mapping_lock(v, bucket)) { drop_victim(); return {PIN_EXHAUSTED, 0}; }
    found = mapping_find(v, bucket, file, block);
    if (found == kChainBroken || (found >= 0 && !desc_state_valid(load_acquire(&v.d[found].state)))) {
      mapping_unlock(v, bucket);
      drop_victim();
      return corrupt(found == kChainBroken ? G_CORRUPT_MAPPING : G_CORRUPT_DESCRIPTORS);
    }
    if (found >= 0) {  // someone else brought it in meanwhile: use theirs
      drop_victim();
      PinResult r = pin_found(p, (uint32_t)found);
      mapping_unlock(v, bucket);
      return r;
    }
    store_relaxed(&d->file_id, file);
    store_relaxed(&d->block, block);
    store_relaxed(&d->lsn, (uint64_t)0);
    store_relaxed(&d->hash_next, load_relaxed(&v.buckets[bucket]));
    // Linked first, tagged second: an inserter killed in between leaves a tagless buffer
    // on the chain of its file_id and block, which lookups skip and its next user unlinks
    // (above). The other order left a tagged buffer no chain reaches, which no evictor can
    // unlink and every one reports as a corrupt mapping. Lookups need this partition lock,
    // so nobody sees the two steps apart.
    store_release(&v.buckets[bucket], (uint32_t)vid + 1);
    kill_point(&p.seg->hdr->faults, KP_POOL_VICTIM_HALF_INSERTED);
    s = load_acquire(&d->state);
    // Release: the tag stores above are visible to anyone who sees TAG_VALID.
    bool tagged = false;
    for (int tries = 0; tries < kMaxCasRetries && !tagged; tries++)
      tagged = cas(&d->state, &s, (uint64_t)((s & (BS_PIN_MASK | BS_RECOUNT)) | BS_TAG | (1ull << BS_USAGE_SHIFT)));
    if (!tagged) {  // only a scribbler rewrites an unlinked buffer we pinned
      if (load_relaxed(&v.buckets[bucket]) == (uint32_t)vid + 1) mapping_unlink(v, &v.buckets[bucket], (uint32_t)vid);
      mapping_unlock(v, bucket);
      return corrupt(G_CORRUPT_DESCRIPTORS);
    }
    mapping_unlock(v, bucket);
    if (evicted) count_stat(p, ST_EVICTIONS);
    return {PIN_OK, (uint64_t)vid};
  }
  return {PIN_EXHAUSTED, 0};
}

uint32_t pool_pin_wait_begin(PoolSlot& p, bool first) {
  if (first) {
    uint64_t* gauge = &p.v.sstats[p.slot].v[ST_PIN_WAITING];
    if (fetch_add(gauge, (uint64_t)1) == 0) fetch_add(&p.v.h->pin_waiters, 1u);
    count_stat(p, ST_PIN_WAITS);
  }
  // seq_cst: the registration above is visible before we read the seq (an unpinner
  // bumps the seq, then reads pin_waiters).
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  return load_acquire(&p.v.h->unpin_seq);
}

void pool_pin_wait_end(PoolSlot& p, double waited_ns) {
  uint64_t* gauge = &p.v.sstats[p.slot].v[ST_PIN_WAITING];
  uint64_t g = load_relaxed(gauge);
  if (g > 0) {
    store_relaxed(gauge, g - 1);
    if (g == 1) {
      uint32_t cur = load_acquire(&p.v.h->pin_waiters);
      while (cur > 0 && !cas(&p.v.h->pin_waiters, &cur, cur - 1)) {}
    }
  }
  if (waited_ns > 0 && waited_ns < 1e15) {
    stat_add(&p.v.h->gstats[ST_PIN_WAIT_NS], (uint64_t)waited_ns);
    stat_add(&p.v.sstats[p.slot].v[ST_PIN_WAIT_NS], (uint64_t)waited_ns);
  }
}

IoStartResult pool_start_read(PoolSlot& p, uint32_t id, uint32_t waited_seq, bool zero, bool first, bool check_tag,
                              uint64_t file, uint64_t block) {
  BufDesc* d = &p.v.d[id];
  for (int tries = 0; tries < kMaxCasRetries; tries++) {
    uint32_t seq = load_acquire(&d->io_seq);  // pairs with end_io's release
    uint64_t s = load_acquire(&d->state);
    // Our pin keeps the tag stable, so a different tag is another process's garbage.
    if (!desc_state_valid(s) || !(s & BS_TAG) ||
        (check_tag && (load_relaxed(&d->file_id) != file || load_relaxed(&d->block) != block))) {
      pool_report_corrupt(*p.seg, p.v, G_CORRUPT_DESCRIPTORS);
      return {IO_CORRUPT, 0};
    }
    if (s & BS_TORN) return {IO_FAILED, BP_ERR_TORN};
    if (s & BS_VALID) {
      if (first) count_stat(p, ST_HITS);
      return {IO_VALID, 0};
    }
    if (s & BS_IO) {
      if (!note_io_waiter(d)) continue;  // it ended meanwhile
      if (first) count_stat(p, ST_IO_WAITS);
      return {IO_WAIT, seq};
    }
    // The read we waited for (claim seq `waited_seq`, ended at waited_seq + 1) failed, or
    // one that started after it did: both are this block's answer now. Only an exact match
    // made two async flows of one environment livelock on a block that always fails (past
    // EOF): each found the other's newer error, claimed a new read, and its inline
    // completion gave the other the same view, without the JS thread ever yielding.
    if ((s & BS_IO_ERROR) && waited_seq != 0 && (uint32_t)(seq - waited_seq - 1) < 0x80000000u)
      return {IO_FAILED, load_relaxed(&d->last_error)};
    if (!cas(&d->state, &s, bs_claim(s, p.slot) & ~BS_IO_ERROR)) continue;
    // No syscall between the claim and the seq step: a worker preempted at a syscall
    // exit is where a SIGKILL finds it (getpid() once sat here; my_pid() is cached).
    uint32_t nseq = pool_claim_seq(d);  // odd: in progress (pairs with waiters' acquire)
    store_relaxed(&d->io_submitted, 0u);
    store_relaxed(&d->io_slot, p.slot);
    store_relaxed(&d->io_pid, my_pid());
    if (zero) {
      memset(p.v.pages + (uint64_t)id * p.v.page_size, 0, p.v.page_size);
      pool_read_done(*p.seg, p.v, id, nseq & 0xFFFFF, (int32_t)p.v.page_size);
      return {IO_VALID, 0};
    }
    count_stat(p, ST_MISSES);
    count_stat(p, ST_READS);
    return {IO_CLAIMED, nseq};
  }
  pool_report_corrupt(*p.seg, p.v, G_CORRUPT_DESCRIPTORS);
  return {IO_CORRUPT, 0};
}

void pool_io_submitted(PoolSlot& p, uint32_t id, uint32_t seq) { store_release(&p.v.d[id].io_submitted, seq); }

void pool_abort_io(PoolSlot& p, uint32_t id, uint32_t seq, int32_t err, bool write) {
  if (write) pool_write_done(*p.seg, p.v, id, seq & 0xFFFFF, err);
  else pool_read_done(*p.seg, p.v, id, seq & 0xFFFFF, err);
}

bool pool_unpin(PoolSlot& p, uint32_t id) {
  PinEntry* e = pin_record_for(p.v, p.slot, id, false);
  if (!e || load_relaxed(&e->pins) == 0) return false;
  int64_t left = unpin_recorded(p, id, e);  // the word, then the record (pin_records.h)
  if (left == 0) pool_note_unpinned(*p.seg, p.v);
  // Our record says we held a pin, so a zero count in the descriptor is garbage (or a
  // repair reset it): report it; the caller's release still succeeded.
  if (left < 0) pool_report_corrupt(*p.seg, p.v, G_CORRUPT_DESCRIPTORS);
  return true;
}

int32_t pool_lock(PoolSlot& p, uint32_t id, bool excl, bool wait_for_own, double internal_shared, uint32_t* cell,
                  bool* own_exclusive) {
  PinEntry* e = pin_record_for(p.v, p.slot, id, false);
  if (!e || load_relaxed(&e->pins) == 0) return LR_NOT_PINNED;
  if (load_acquire(&p.v.d[id].state) & BS_TORN) return LR_TORN;
  bool own_excl = load_relaxed(&e->exclusive) != 0;
  bool own_shared = (double)load_relaxed(&e->shared_locks) > internal_shared;
  *own_exclusive = own_excl;
  if ((own_excl || (excl && own_shared)) && !wait_for_own) return LR_SELF_DEADLOCK;
  int32_t r = content_lock_acquire(*p.seg, p.v, p.slot, id, excl, !excl && own_shared, e, cell);
  if (r == LA_CORRUPT) pool_report_corrupt(*p.seg, p.v, G_CORRUPT_DESCRIPTORS);
  return r;
}

int32_t pool_lock_wait_end(PoolSlot& p, uint32_t id, uint32_t cell, bool cancel) {
  PinEntry* e = pin_record_for(p.v, p.slot, id, false);
  if (!e) return LR_NOT_PINNED;
  int32_t r = content_lock_wait_end(*p.seg, p.v, p.slot, id, cell, cancel, e);
  if (r == LW_BAD_CELL) pool_report_corrupt(*p.seg, p.v, G_CORRUPT_DESCRIPTORS);
  if (r == LW_GRANTED && (load_acquire(&p.v.d[id].state) & BS_TORN)) {
    // Fenced while we waited: the grant goes straight back.
    bool excl = load_relaxed(&e->exclusive) != 0;
    if (!excl) pin_intent_set(p.v, p.slot, id, kIntentShared);
    content_lock_release(*p.seg, p.v, id, excl, 1, p.slot);
    if (excl) store_release(&e->exclusive, 0u);
    else store_release(&e->shared_locks, load_relaxed(&e->shared_locks) - 1);
    if (!excl) pin_intent_clear(p.v, p.slot);
    return LR_TORN;
  }
  return r;
}

bool pool_unlock(PoolSlot& p, uint32_t id, bool excl) {
  PinEntry* e = pin_record_for(p.v, p.slot, id, false);
  if (!e || (excl ? load_relaxed(&e->exclusive) == 0 : load_relaxed(&e->shared_locks) == 0)) return false;
  // The word first, then the record, a shared release under the slot's intent word
  // (pin_records.h); the exclusive holder is named by the word itself.
  if (!excl) pin_intent_set(p.v, p.slot, id, kIntentShared);
  content_lock_release(*p.seg, p.v, id, excl, 1, p.slot);
  if (!excl) kill_point(&p.seg->hdr->faults, KP_POOL_SHARED_UNLOCK_COUNTED);
  if (excl) store_release(&e->exclusive, 0u);
  else store_release(&e->shared_locks, load_relaxed(&e->shared_locks) - 1);
  pin_record_maybe_free(e);
  if (!excl) pin_intent_clear(p.v, p.slot);
  return true;
}

int32_t pool_mark_dirty(PoolSlot& p, uint32_t id, uint64_t lsn) {
  PinEntry* e = pin_record_for(p.v, p.slot, id, false);
  if (!e || load_relaxed(&e->exclusive) == 0) return MD_NOT_LOCKED;
  BufDesc* d = &p.v.d[id];
  // A page whose file left the table (its last handle closed: that close wrote the file's
  // dirty pages back) can never be written again, since its id names nothing; dirty, it
  // would fail every later checkpoint. Refused, it stays clean and unreachable by the
  // file's next id.
  uint32_t file_flags = 0;
  if (file_lookup(p.seg->files, p.seg->hdr->max_files, (double)load_relaxed(&d->file_id), &file_flags) < 0) return MD_FILE_CLOSED;
  // A page of a file opened read-only: every process writes it back through an fd opened
  // with the entry's flags, O_RDONLY, and the kernel refuses each write with EBADF. Dirty,
  // it would fail every flushAll, checkpoint and last close of the file, for good.
  if ((file_flags & O_ACCMODE) == O_RDONLY) return MD_READ_ONLY;
  uint8_t* page = p.v.pages + (uint64_t)id * p.v.page_size;
  uint64_t cur = load_relaxed(&d->lsn);
  if (lsn > cur) store_relaxed(&d->lsn, lsn), cur = lsn;
  // The page LSN lives in the page header and never goes backwards: d->lsn starts at 0
  // when the page is loaded, so the LSN the page came from disk with counts too (it was
  // durable when that image was written, so the WAL check keeps using d->lsn alone).
  uint64_t hdr;
  memcpy(&hdr, page, 8);
  if (hdr > cur) cur = hdr;
  memcpy(page, &cur, 8);
  store_relaxed(&d->dirty_gen, load_relaxed(&d->dirty_gen) + 1);
  uint64_t s = load_acquire(&d->state);
  bool dirtied = false;  // release: lsn/dirty_gen visible with DIRTY
  for (int tries = 0; tries < kMaxCasRetries && !dirtied && desc_state_valid(s); tries++) dirtied = cas(&d->state, &s, s | BS_DIRTY);
  if (!dirtied) {
    pool_report_corrupt(*p.seg, p.v, G_CORRUPT_DESCRIPTORS);
    return MD_CORRUPT;
  }
  return MD_DIRTIED;
}

WriteStart pool_start_write(PoolSlot& p, uint32_t id) {
  PinEntry* e = pin_record_for(p.v, p.slot, id, false);
  if (!e || (load_relaxed(&e->exclusive) == 0 && load_relaxed(&e->shared_locks) == 0)) return {WS_NOT_LOCKED, 0};
  BufDesc* d = &p.v.d[id];
  {
    uint64_t file = load_relaxed(&d->file_id), block = load_relaxed(&d->block);
    uint32_t bucket = mapping_bucket(p.v, file, block);
    if (!mapping_lock(p.v, bucket)) return {WS_BUSY, load_acquire(&d->io_seq)};
    int64_t found = mapping_find(p.v, bucket, file, block);
    mapping_unlock(p.v, bucket);
    if (found != (int64_t)id || !desc_state_valid(load_acquire(&d->state))) {
      pool_report_corrupt(*p.seg, p.v, found == kChainBroken || found < 0 ? G_CORRUPT_MAPPING : G_CORRUPT_DESCRIPTORS);
      return {WS_CORRUPT, 0};
    }
  }
  for (int tries = 0; tries < kMaxCasRetries; tries++) {
    uint32_t seq = load_acquire(&d->io_seq);
    uint64_t s = load_acquire(&d->state);
    if (!desc_state_valid(s)) break;
    if (!(s & BS_VALID) || !(s & BS_DIRTY) || !(s & BS_TAG)) return {WS_CLEAN, 0};
    if (s & BS_IO) {
      if (!note_io_waiter(d)) continue;  // it ended meanwhile
      return {WS_BUSY, seq};
    }
    if (!cas(&d->state, &s, bs_claim(s, p.slot))) continue;
    uint32_t nseq = pool_claim_seq(d);
    store_relaxed(&d->io_submitted, 0u);
    store_relaxed(&d->write_gen, load_relaxed(&d->dirty_gen));
    store_relaxed(&d->io_slot, p.slot);
    store_relaxed(&d->io_pid, my_pid());
    page_set_checksum(p.v.pages + (uint64_t)id * p.v.page_size, p.v.page_size);
    count_stat(p, ST_WRITES);
    kill_point(&p.seg->hdr->faults, KP_POOL_WRITE_CLAIMED);
    WriteStart w{WS_STARTED, nseq};
    w.file = load_relaxed(&d->file_id);
    w.block = load_relaxed(&d->block);
    w.lsn = load_relaxed(&d->lsn);
    return w;
  }
  pool_report_corrupt(*p.seg, p.v, G_CORRUPT_DESCRIPTORS);
  return {WS_CORRUPT, 0};
}

bool pool_pin_by_id(PoolSlot& p, uint32_t id, uint64_t* file, uint64_t* block, bool* dirty) {
  BufDesc* d = &p.v.d[id];
  PinEntry* e = pin_record_for(p.v, p.slot, id, true);
  if (!e) return false;
  pin_intent_set(p.v, p.slot, id, kIntentPins);
  uint64_t s = state_after_intent(d);
  for (int tries = 0;; tries++) {
    if (s & BS_RECOUNT) {
      step_aside(*p.seg, p.v, p.slot, id, kIntentPins);
      s = state_after_intent(d);
      continue;
    }
    bool garbage = tries >= kMaxCasRetries || !desc_state_valid(s);
    if (garbage || !(s & BS_TAG) || !(s & BS_VALID) || (s & BS_PIN_MASK) == BS_PIN_MASK) {
      pin_intent_clear(p.v, p.slot);
      pin_record_maybe_free(e);
      if (garbage) pool_report_corrupt(*p.seg, p.v, G_CORRUPT_DESCRIPTORS);
      return false;
    }
    if (cas(&d->state, &s, s + 1)) {
      kill_point(&p.seg->hdr->faults, KP_POOL_PIN_COUNTED);
      store_release(&e->pins, load_relaxed(&e->pins) + 1);  // the record, then the intent goes (pin_records.h)
      pin_intent_clear(p.v, p.slot);
      break;
    }
  }
  *file = load_relaxed(&d->file_id);
  *block = load_relaxed(&d->block);
  *dirty = (s & BS_DIRTY) != 0;
  return true;
}

void pool_dirty_buffers(PoolView& v, std::vector<DirtyPage>* out) {
  for (uint32_t id = 0; id < v.n; id++) {
    BufDesc* d = &v.d[id];
    uint64_t s = load_acquire(&d->state);  // pairs with markDirty's CAS: its dirty_gen is seen
    if (!desc_state_valid(s) || !(s & BS_DIRTY) || !(s & BS_VALID) || !(s & BS_TAG)) continue;
    // A markDirty after the load may make gen newer than what made the page dirty: that
    // asks for a later write, never for less.
    out->push_back({id, load_relaxed(&d->file_id), load_relaxed(&d->block), load_relaxed(&d->dirty_gen)});
  }
}

bool pool_written_since(PoolView& v, const DirtyPage& page) {
  BufDesc* d = &v.d[page.id];
  uint64_t s = load_acquire(&d->state);  // pairs with end_io's CAS
  if (!desc_state_valid(s)) return false;
  // Another tag (or none: evicted, or an evictor died half-way): eviction takes only a
  // clean page, and a dirty page becomes clean only by a write that covered every change.
  if (!(s & BS_TAG) || load_relaxed(&d->file_id) != page.file || load_relaxed(&d->block) != page.block) return true;
  if (!(s & BS_DIRTY)) return true;
  // Dirty again since, or still: written only if a completed write's gen lies in
  // [page.gen, dirty_gen now] (unsigned distances, so the u32 counters may wrap).
  uint32_t now = load_relaxed(&d->dirty_gen), done = load_relaxed(&d->done_gen);
  return (uint32_t)(done - page.gen) <= (uint32_t)(now - page.gen);
}

void pool_dirty_ahead(PoolView& v, uint32_t start, bool from_hand, uint32_t scan, uint32_t max, bool recently_used,
                      std::vector<uint32_t>* out, uint32_t* hand) {
  uint32_t h = load_relaxed(&v.h->clock_hand);
  *hand = h;
  if (from_hand) start = h;
  if (scan > v.n) scan = v.n;
  for (uint32_t i = 0; i < scan && out->size() < max; i++) {
    uint32_t id = (uint32_t)(((uint64_t)start + i) % v.n);
    uint64_t s = load_acquire(&v.d[id].state);
    if (!desc_state_valid(s)) continue;
    if ((s & BS_PIN_MASK) || (s & (BS_IO | BS_TORN)) || (!recently_used && (s & BS_USAGE_MASK))) continue;
    if ((s & BS_DIRTY) && (s & BS_VALID)) out->push_back(id);
  }
}

void pool_census(PoolSlot& p, PoolCensus* out) {
  PoolView& v = p.v;
  for (uint32_t i = 0; i < ST_COUNT; i++) {
    out->process[i] = load_relaxed(&v.sstats[p.slot].v[i]);
    out->global[i] = load_relaxed(&v.h->gstats[i]);
  }
  out->torn_total = load_relaxed(&v.h->gstats[G_TORN_PAGES]);
  out->corrupt_descriptors = load_relaxed(&v.h->gstats[G_CORRUPT_DESCRIPTORS]);
  out->corrupt_mapping = load_relaxed(&v.h->gstats[G_CORRUPT_MAPPING]);
  out->integrity_repairs = load_relaxed(&v.h->gstats[G_INTEGRITY_REPAIRS]);
  out->lock_queue_repairs = load_relaxed(&v.h->gstats[G_LOCK_QUEUE_REPAIRS]);
  out->recounts = load_relaxed(&v.h->gstats[G_RECOUNTS]);
  for (uint32_t id = 0; id < v.n; id++) {
    uint64_t s = load_acquire(&v.d[id].state);
    out->pinned += (s & BS_PIN_MASK) != 0;
    out->dirty += (s & BS_DIRTY) != 0;
    out->valid += (s & BS_VALID) != 0;
    out->io += (s & BS_IO) != 0;
    if ((s & BS_TORN) && out->torn++ < 64)
      out->torn_pages.push_back({load_relaxed(&v.d[id].file_id), load_relaxed(&v.d[id].block), (s & BS_DIRTY) != 0});
  }
  for (uint32_t i = 0; i < v.wq.ncells; i++) {
    uint32_t st = load_relaxed(&v.wq.cells[i].state);
    out->lock_waiters += st == WC_WAITING || st == WC_WOKEN;
  }
}

// Every partition lock is held (taken in ascending order; nobody else holds two, so no
// deadlock; each bounded by the lock timeout), so the mapping table is stable while it is
// checked. Descriptor state words still change under it (pins, IO): each is read once
// into a local and judged on that copy.
// Repair: a descriptor with a garbage state word is reset to free (tagless, unpinned, no
// IO, unlocked); if anything was wrong with the mapping or a descriptor was reset, the
// chains are rebuilt from the descriptors' tags (mapping_rebuild); a claimed, unsubmitted
// IO of a slot that is gone is aborted.
void pool_verify(Segment& seg, PoolView& v, bool repair, PoolVerifyReport* out) {
  std::vector<PoolAnomaly>& list = out->anomalies;
  auto add = [&](const char* st, uint32_t i, const char* problem, bool r) {
    out->found++;
    out->repaired += r;
    if (list.size() < 64) list.push_back({st, i, problem, r});
  };
  uint32_t held = mapping_lock_all(v);
  bool locked = held == kPoolPartitions;
  out->lock_timeout = !locked;
  bool rebuild = false;
  std::vector<uint8_t> reached(v.n, 0);
  if (locked) {
    for (uint32_t b = 0; b < v.nbuckets; b++) {
      uint32_t b1 = load_acquire(&v.buckets[b]);
      for (uint32_t steps = 0; b1; steps++) {
        if (b1 > v.n) { add("mappingTable", b, "chain link out of range", false); rebuild = true; break; }
        if (reached[b1 - 1]) { add("mappingTable", b, "chain cycle or buffer on two chains", false); rebuild = true; break; }
        reached[b1 - 1] = 1;
        BufDesc* d = &v.d[b1 - 1];
        uint64_t st = load_acquire(&d->state);
        bool home = mapping_bucket(v, load_relaxed(&d->file_id), load_relaxed(&d->block)) == b;
        // A tagless buffer on the chain of its last tag is what an evictor or inserter
        // killed between its two edits leaves (pool_pin: its next user unlinks it), and
        // lookups skip it: not garbage. On any other chain it is.
        if (!(st & BS_TAG)) {
          if (!home) { add("mappingTable", b, "untagged buffer on a chain not its last tag's", false); rebuild = true; }
        } else if (!home) {
          add("mappingTable", b, "buffer on the wrong chain for its tag", false);
          rebuild = true;
        }
        b1 = load_relaxed(&d->hash_next);
      }
    }
  }
  bool woke = false;
  for (uint32_t id = 0; id < v.n; id++) {
    BufDesc* d = &v.d[id];
    uint64_t st = load_acquire(&d->state);
    if (!desc_state_valid(st)) {
      bool r = false;
      if (repair && locked) {
        uint64_t expected = st;
        r = cas(&d->state, &expected, (uint64_t)0);
        if (r) {
          uint32_t seq = load_acquire(&d->io_seq);
          if (seq & 1) cas(&d->io_seq, &seq, seq + 1);  // an IO still in flight no longer matches
          store_release(&d->content_lock, 0u);
          store_relaxed(&d->hash_next, 0u);
          rebuild = woke = true;
        }
      }
      add("bufferDescriptor", id, "state word out of range", r);
      continue;
    }
    if (load_relaxed(&d->hash_next) > v.n) { add("bufferDescriptor", id, "chain link out of range", false); rebuild = true; }
    uint32_t lock = load_acquire(&d->content_lock);
    if ((lock & kLockExclusive) && ((lock & kLockHoldMask) == 0 || (lock & kLockHoldMask) > v.max_slots)) {
      uint32_t expected = lock;
      // The flags stay: the queued waiters' next look (at most a second away) moves them.
      bool r = repair && cas(&d->content_lock, &expected, lock & (kLockWaiters | kLockHandoff | kLockWaking));
      woke |= r;
      add("bufferDescriptor", id, "exclusive lock held by a slot out of range", r);
    }
    if (locked && (st & BS_TAG) && !reached[id]) { add("mappingTable", id, "tagged buffer no chain reaches", false); rebuild = true; }
    if (st & BS_IO) {
      uint32_t seq = load_acquire(&d->io_seq), islot = load_relaxed(&d->io_slot);
      if (islot >= v.max_slots) {
        add("bufferDescriptor", id, "IO claimed by a slot out of range", false);
      } else if ((seq & 1) && load_relaxed(&d->io_submitted) != seq &&
                 load_acquire(&seg.slots[islot].state) == SLOT_FREE) {
        // Cleanup aborts a dead slot's unsubmitted IO; this one was missed or forged.
        bool r = false;
        if (repair) {
          if (st & BS_VALID) pool_write_done(seg, v, id, seq & 0xFFFFF, kCorruptResult);
          else pool_read_done(seg, v, id, seq & 0xFFFFF, kCorruptResult);
          r = woke = !(load_acquire(&d->state) & BS_IO);
        }
        add("bufferDescriptor", id, "unsubmitted IO of a slot that is gone", r);
      }
    }
  }
  if (repair && locked && rebuild) {
    // All partition locks are held, so no lookup, insert or eviction runs meanwhile.
    mapping_rebuild(v, [&](uint32_t id, bool dropped) { add("mappingTable", id, "duplicate tag", dropped); });
    out->repaired++;
    if (list.size() < 64) list.push_back({"mappingTable", 0, "chains rebuilt from the tags", true});
  }
  mapping_unlock_all(v, held);
  if (woke) wake_word_waiters(seg);
  if (out->found) {
    stat_add(&seg.hdr->stat_integrity_anomalies, (uint64_t)out->found);
    stat_add(&seg.hdr->stat_corrupt_reports, (uint64_t)out->found);
  }
  if (out->repaired) {
    stat_add(&seg.hdr->stat_integrity_repairs, (uint64_t)out->repaired);
    stat_add(&v.h->gstats[G_INTEGRITY_REPAIRS], (uint64_t)out->repaired);
  }
}

void pool_ios_in_progress(PoolView& v, std::vector<PoolIoClaim>* out) {
  for (uint32_t id = 0; id < v.n; id++) {
    BufDesc* d = &v.d[id];
    uint64_t s = load_acquire(&d->state);
    if (!(s & BS_IO)) continue;
    uint32_t seq = load_acquire(&d->io_seq);
    out->push_back({id, bs_owner(s), load_relaxed(&d->io_pid), seq, load_relaxed(&d->io_submitted) == seq, (s & BS_VALID) != 0});
  }
}

uint32_t pool_lock_word(PoolView& v, uint32_t id) { return load_acquire(&v.d[id].content_lock); }

uint32_t page_set_checksum(uint8_t* page, uint32_t size) {
  uint32_t sum = page_checksum(page, size);
  memcpy(page + 8, &sum, 4);
  return sum;
}

}  // namespace rm
