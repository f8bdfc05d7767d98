// FIFO wait queues in shared memory (rules: wait_queue.h).
#include "wait_queue.h"

#include <algorithm>
#include <vector>

#include "atomics.h"
#include "process_table.h"
#include "segment.h"

namespace rm {

void wq_init(WaitQueues& w) {
  for (uint32_t p = 0; p < kWaitPartitions; p++) robust_lock_init(&w.parts[p].lock);
}

WqLock wq_lock(WaitQueues& w, uint32_t q, int64_t timeout_ns) {
  LockResult r = robust_lock_acquire(&w.parts[wq_partition_of(q)].lock, timeout_ns);
  if (r == LockResult::Acquired) return WqLock::Held;
  if (r == LockResult::AcquiredOwnerDied) return WqLock::HeldOwnerDied;
  return WqLock::TimedOut;
}

void wq_unlock(WaitQueues& w, uint32_t q) { robust_lock_release(&w.parts[wq_partition_of(q)].lock); }

int64_t wq_claim_cell(WaitQueues& w, uint32_t slot) {
  uint64_t first = (uint64_t)slot * kWaitCellsPerSlot;
  if (first + kWaitCellsPerSlot > w.ncells) return -1;
  for (uint32_t i = 0; i < kWaitCellsPerSlot; i++) {
    WaitCell* c = &w.cells[first + i];
    uint32_t s = load_acquire(&c->state);
    if (s == WC_FREE && cas(&c->state, &s, (uint32_t)WC_CLAIMED)) return (int64_t)(first + i);
  }
  return -1;
}

void wq_push(WaitQueues& w, uint32_t q, uint32_t cell, uint32_t mode) {
  WaitCell* c = &w.cells[cell];
  store_relaxed(&c->queue_plus1, q + 1);
  store_relaxed(&c->next, 0u);
  store_relaxed(&c->mode, mode);
  store_relaxed(&c->ticket, fetch_add(w.next_ticket, (uint64_t)1));
  store_relaxed(&c->since_ns, monotonic_ns());
  // WAITING before linking: a rebuild after our death finds every linked cell by its state.
  store_release(&c->state, (uint32_t)WC_WAITING);
  WaitQueue* wq = &w.queues[q];
  uint32_t tail = load_relaxed(&wq->tail);
  if (tail == 0 || tail > w.ncells || load_relaxed(&wq->head) == 0) {
    store_release(&wq->head, cell + 1);
  } else {
    store_release(&w.cells[tail - 1].next, cell + 1);
  }
  store_release(&wq->tail, cell + 1);
}

void wq_push_front(WaitQueues& w, uint32_t q, uint32_t cell) {
  WaitCell* c = &w.cells[cell];
  WaitQueue* wq = &w.queues[q];
  uint32_t head = load_relaxed(&wq->head);
  if (head > w.ncells) head = 0;  // garbage: the next wq_head rebuilds anyway
  store_relaxed(&c->queue_plus1, q + 1);
  store_relaxed(&c->next, head);
  store_release(&c->state, (uint32_t)WC_WAITING);
  store_release(&wq->head, cell + 1);
  if (head == 0) store_release(&wq->tail, cell + 1);
}

namespace {

bool cell_waits_in(WaitQueues& w, uint32_t cell, uint32_t q) {
  WaitCell* c = &w.cells[cell];
  return load_acquire(&c->state) == WC_WAITING && load_relaxed(&c->queue_plus1) == q + 1;
}

}  // namespace

int64_t wq_head(WaitQueues& w, uint32_t q, uint32_t* repairs) {
  for (int attempt = 0; attempt < 2; attempt++) {
    uint32_t h = load_acquire(&w.queues[q].head);
    if (h == 0) return -1;
    if (h <= w.ncells && cell_waits_in(w, h - 1, q)) return (int64_t)(h - 1);
    // A link another process scribbled (or a state nobody should have written): start over
    // from the cells.
    wq_rebuild(w, q);
    if (repairs) ++*repairs;
  }
  return -1;
}

int64_t wq_next(WaitQueues& w, uint32_t cell) {
  uint32_t n = load_relaxed(&w.cells[cell].next);
  if (n == 0 || n > w.ncells) return -1;
  return (int64_t)(n - 1);
}

bool wq_remove(WaitQueues& w, uint32_t q, uint32_t cell) {
  WaitQueue* wq = &w.queues[q];
  uint32_t prev = 0;  // index + 1
  uint32_t cur = load_acquire(&wq->head);
  for (uint32_t steps = 0; cur != 0 && steps <= w.ncells; steps++) {
    if (cur > w.ncells) break;
    uint32_t next = load_relaxed(&w.cells[cur - 1].next);
    if (cur == cell + 1) {
      if (prev == 0) store_release(&wq->head, next);
      else store_release(&w.cells[prev - 1].next, next);
      if (load_relaxed(&wq->tail) == cur) store_release(&wq->tail, prev);
      store_relaxed(&w.cells[cell].next, 0u);
      return true;
    }
    prev = cur;
    cur = next;
  }
  return false;
}

void wq_grant(WaitQueues& w, uint32_t cell) { store_release(&w.cells[cell].state, (uint32_t)WC_GRANTED); }
void wq_wake_up(WaitQueues& w, uint32_t cell) { store_release(&w.cells[cell].state, (uint32_t)WC_WOKEN); }

void wq_release_cell(WaitQueues& w, uint32_t cell) {
  WaitCell* c = &w.cells[cell];
  store_relaxed(&c->queue_plus1, 0u);
  store_relaxed(&c->next, 0u);
  store_release(&c->state, (uint32_t)WC_FREE);
}

uint32_t wq_rebuild(WaitQueues& w, uint32_t q) {
  uint32_t p = wq_partition_of(q);
  struct Waiting { uint64_t ticket; uint32_t cell; uint32_t queue; };
  std::vector<Waiting> waiting;
  for (uint32_t i = 0; i < w.ncells; i++) {
    WaitCell* c = &w.cells[i];
    if (load_acquire(&c->state) != WC_WAITING) continue;
    uint32_t q1 = load_relaxed(&c->queue_plus1);  // read once: the bound check holds for the use
    if (q1 == 0 || q1 > w.nqueues || wq_partition_of(q1 - 1) != p) continue;
    waiting.push_back({load_relaxed(&c->ticket), i, q1 - 1});
  }
  std::sort(waiting.begin(), waiting.end(),
            [](const Waiting& a, const Waiting& b) { return a.ticket != b.ticket ? a.ticket < b.ticket : a.cell < b.cell; });
  uint32_t n = 0;
  for (uint32_t k = p; k < w.nqueues; k += kWaitPartitions, n++) {
    store_relaxed(&w.queues[k].head, 0u);
    store_relaxed(&w.queues[k].tail, 0u);
  }
  for (const Waiting& t : waiting) {
    uint32_t k = t.queue;
    store_relaxed(&w.cells[t.cell].next, 0u);
    uint32_t tail = load_relaxed(&w.queues[k].tail);
    if (tail == 0) store_release(&w.queues[k].head, t.cell + 1);
    else store_release(&w.cells[tail - 1].next, t.cell + 1);
    store_release(&w.queues[k].tail, t.cell + 1);
  }
  return n;
}

void wq_wake(Segment& seg, uint32_t cell) {
  uint32_t slot = wq_cell_slot(cell);
  if (slot < seg.hdr->max_slots) ring_slot(seg, slot);  // its eventfd in this process, else its doorbell
}

}  // namespace rm
