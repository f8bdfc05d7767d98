// Description: FIFO wait queues in shared memory: waiters are served in arrival order, a woken waiter that lost its retry goes back to the head with its old ticket, a grant hands over one cell, a slot's cells run out cleanly, a waiter that dies mid-link leaves the partition lock EOWNERDEAD and the rebuild restores ticket order, a scribbled head is rebuilt, and a dead waiter's cell is given back.
#include "../../native/wait_queue.h"

#include <vector>

#include "helpers.h"

using namespace rm;

namespace {

constexpr uint32_t kSlots = 4;
constexpr uint32_t kQueues = 130;  // queues q and q + 64 share a partition
constexpr int64_t kLong = 10ll * 1000000000;

WaitQueues make_queues() {
  WaitQueues w;
  w.ncells = kSlots * kWaitCellsPerSlot;
  w.cells = t::shared_alloc<WaitCell>(w.ncells);
  w.nqueues = kQueues;
  w.queues = t::shared_alloc<WaitQueue>(kQueues);
  w.parts = t::shared_alloc<WaitPartition>(kWaitPartitions);
  w.next_ticket = t::shared_alloc<uint64_t>();
  wq_init(w);
  return w;
}

// The queue's cells, head to tail (bounded walk).
std::vector<int64_t> order(WaitQueues& w, uint32_t q) {
  std::vector<int64_t> out;
  for (int64_t c = wq_head(w, q); c >= 0 && out.size() <= w.ncells; c = wq_next(w, (uint32_t)c)) out.push_back(c);
  return out;
}

int64_t enqueue(WaitQueues& w, uint32_t q, uint32_t slot, uint32_t mode = 1) {
  int64_t c = wq_claim_cell(w, slot);
  T_REQUIRE(c >= 0);
  T_REQUIRE(wq_lock(w, q, kLong) == WqLock::Held);
  wq_push(w, q, (uint32_t)c, mode);
  wq_unlock(w, q);
  return c;
}

}  // namespace

int main() {
  t::run_case("arrival order, removal from the head, the middle and the tail", [] {
    WaitQueues w = make_queues();
    const uint32_t q = 5;
    T_EQ(wq_head(w, q), -1);
    int64_t a = enqueue(w, q, 0), b = enqueue(w, q, 1), c = enqueue(w, q, 2), d = enqueue(w, q, 1);
    T_CHECK(order(w, q) == (std::vector<int64_t>{a, b, c, d}));
    T_EQ(wq_cell_slot((uint32_t)b), 1u);
    T_EQ(w.cells[a].state, (uint32_t)WC_WAITING);
    T_CHECK(w.cells[a].ticket < w.cells[b].ticket && w.cells[b].ticket < w.cells[c].ticket);
    T_REQUIRE(wq_lock(w, q, kLong) == WqLock::Held);
    T_CHECK(wq_remove(w, q, (uint32_t)b));  // middle
    T_CHECK(order(w, q) == (std::vector<int64_t>{a, c, d}));
    T_CHECK(wq_remove(w, q, (uint32_t)d));  // tail: the tail moves back
    T_EQ(w.queues[q].tail, (uint32_t)c + 1);
    T_CHECK(!wq_remove(w, q, (uint32_t)d));  // not there any more
    T_CHECK(!wq_remove(w, q + 1, (uint32_t)a));  // another queue
    T_CHECK(wq_remove(w, q, (uint32_t)a));  // head
    T_CHECK(order(w, q) == (std::vector<int64_t>{c}));
    T_CHECK(wq_remove(w, q, (uint32_t)c));
    T_EQ(wq_head(w, q), -1);
    T_EQ(w.queues[q].tail, 0u);
    wq_unlock(w, q);
    // A new waiter after the queue emptied is its only member.
    int64_t e = enqueue(w, q, 3);
    T_CHECK(order(w, q) == (std::vector<int64_t>{e}));
  });

  t::run_case("hand-over: the head is granted, the grantee frees its cell; a woken loser goes back first", [] {
    WaitQueues w = make_queues();
    const uint32_t q = 7;
    int64_t a = enqueue(w, q, 0, kWaitCellsPerSlot), b = enqueue(w, q, 1), c = enqueue(w, q, 2);
    // The releaser: under the lock, takes the head off and grants it.
    T_REQUIRE(wq_lock(w, q, kLong) == WqLock::Held);
    int64_t h = wq_head(w, q);
    T_EQ(h, a);
    T_EQ(w.cells[h].mode, kWaitCellsPerSlot);
    T_CHECK(wq_remove(w, q, (uint32_t)h));
    wq_grant(w, (uint32_t)h);
    wq_unlock(w, q);
    T_EQ(w.cells[a].state, (uint32_t)WC_GRANTED);
    T_CHECK(order(w, q) == (std::vector<int64_t>{b, c}));
    wq_release_cell(w, (uint32_t)a);  // the grantee took it (no lock: not on any queue)
    T_EQ(w.cells[a].state, (uint32_t)WC_FREE);
    T_EQ(w.cells[a].queue_plus1, 0u);
    // Next release wakes b to retry; b loses the race and goes back in front of c.
    T_REQUIRE(wq_lock(w, q, kLong) == WqLock::Held);
    T_CHECK(wq_remove(w, q, (uint32_t)b));
    wq_wake_up(w, (uint32_t)b);
    T_EQ(w.cells[b].state, (uint32_t)WC_WOKEN);
    uint64_t ticket = w.cells[b].ticket;
    int64_t later = wq_claim_cell(w, 3);
    wq_push(w, q, (uint32_t)later, 1);  // a newcomer queued while b was awake
    wq_push_front(w, q, (uint32_t)b);
    wq_unlock(w, q);
    T_CHECK(order(w, q) == (std::vector<int64_t>{b, c, later}));
    T_EQ(w.cells[b].ticket, ticket);
    T_EQ(w.cells[b].state, (uint32_t)WC_WAITING);
    // push_front on an empty queue sets the tail too.
    const uint32_t q2 = 8;
    int64_t x = wq_claim_cell(w, 0);
    T_REQUIRE(wq_lock(w, q2, kLong) == WqLock::Held);
    wq_push_front(w, q2, (uint32_t)x);
    int64_t y = wq_claim_cell(w, 0);
    wq_push(w, q2, (uint32_t)y, 1);
    wq_unlock(w, q2);
    T_CHECK(order(w, q2) == (std::vector<int64_t>{x, y}));
  });

  t::run_case("a slot's cells run out: -1, never another slot's cell; a freed cell is claimable again", [] {
    WaitQueues w = make_queues();
    std::vector<int64_t> mine;
    for (uint32_t i = 0; i < kWaitCellsPerSlot; i++) mine.push_back(wq_claim_cell(w, 2));
    for (int64_t c : mine) T_EQ(wq_cell_slot((uint32_t)c), 2u);
    T_EQ(wq_claim_cell(w, 2), -1);
    T_EQ(wq_claim_cell(w, kSlots), -1);  // out of range
    T_EQ(wq_claim_cell(w, 1u << 30), -1);
    wq_release_cell(w, (uint32_t)mine[5]);
    T_EQ(wq_claim_cell(w, 2), mine[5]);
  });

  t::run_case("a waiter dies mid-link holding the lock: EOWNERDEAD, and the rebuild restores ticket order", [] {
    WaitQueues w = make_queues();
    const uint32_t q = 9, sibling = 9 + kWaitPartitions;  // same partition
    int64_t a = enqueue(w, q, 0), s1 = enqueue(w, sibling, 0), b = enqueue(w, q, 1);
    int64_t dying = wq_claim_cell(w, 3);
    T_REQUIRE(dying >= 0);
    t::ChildResult r = t::run_child([&] {
      if (wq_lock(w, q, kLong) != WqLock::Held) _exit(2);
      // wq_push's first half: the cell says WAITING in q, with its ticket, and the queue's
      // tail already names it, but b's next link was never written.
      WaitCell* c = &w.cells[dying];
      c->queue_plus1 = q + 1;
      c->next = 0;
      c->mode = 1;
      c->ticket = __atomic_fetch_add(w.next_ticket, 1, __ATOMIC_ACQ_REL);
      __atomic_store_n(&c->state, (uint32_t)WC_WAITING, __ATOMIC_RELEASE);
      __atomic_store_n(&w.queues[q].tail, (uint32_t)dying + 1, __ATOMIC_RELEASE);
      raise(SIGKILL);
    });
    T_REQUIRE(r.signaled(SIGKILL));
    T_CHECK(order(w, q) == (std::vector<int64_t>{a, b}));  // the half-linked cell is unreachable
    int64_t s2 = wq_claim_cell(w, 1);
    T_REQUIRE(wq_lock(w, q, kLong) == WqLock::HeldOwnerDied);
    T_EQ(wq_rebuild(w, q), 2u);  // q and its sibling: every queue of the partition
    T_CHECK(order(w, q) == (std::vector<int64_t>{a, b, dying}));
    T_CHECK(order(w, sibling) == (std::vector<int64_t>{s1}));
    wq_push(w, sibling, (uint32_t)s2, 1);  // the rebuilt queues take new waiters normally
    wq_unlock(w, q);
    T_CHECK(order(w, sibling) == (std::vector<int64_t>{s1, s2}));
    T_EQ(w.parts[wq_partition_of(q)].lock.owner_died_count, 1u);
    T_REQUIRE(wq_lock(w, q, kLong) == WqLock::Held);  // consistent again
    wq_unlock(w, q);
  });

  t::run_case("the dead waiter's cell is given back (slot cleanup): the others keep their order", [] {
    WaitQueues w = make_queues();
    const uint32_t q = 11;
    int64_t a = enqueue(w, q, 0), dead = enqueue(w, q, 3), b = enqueue(w, q, 1);
    T_REQUIRE(wq_lock(w, q, kLong) == WqLock::Held);
    T_CHECK(wq_remove(w, q, (uint32_t)dead));
    wq_unlock(w, q);
    wq_release_cell(w, (uint32_t)dead);
    T_CHECK(order(w, q) == (std::vector<int64_t>{a, b}));
    T_EQ(w.cells[dead].state, (uint32_t)WC_FREE);
  });

  t::run_case("a scribbled head or link: wq_head rebuilds (and counts it), never walks off the table", [] {
    WaitQueues w = make_queues();
    const uint32_t q = 12;
    int64_t a = enqueue(w, q, 0), b = enqueue(w, q, 1);
    T_REQUIRE(wq_lock(w, q, kLong) == WqLock::Held);
    uint32_t repairs = 0;
    w.queues[q].head = 0xFFFFFFF0u;  // out of range
    T_EQ(wq_head(w, q, &repairs), a);
    T_EQ(repairs, 1u);
    w.queues[q].head = (uint32_t)b + 1;  // in range, but a cell of a queue... made wrong:
    w.cells[b].queue_plus1 = q + 2;      // b claims another queue
    T_EQ(wq_head(w, q, &repairs), a);    // rebuilt from the cells: b is not q's any more
    T_EQ(repairs, 2u);
    T_CHECK(order(w, q) == (std::vector<int64_t>{a}));
    w.cells[a].next = 0xFFFFu;  // a link past the table ends the walk
    T_EQ(wq_next(w, (uint32_t)a), -1);
    T_CHECK(!wq_remove(w, q, (uint32_t)b));
    // A cycle a -> a: removal's walk is bounded by the cell count.
    w.cells[a].next = (uint32_t)a + 1;
    T_CHECK(!wq_remove(w, q, (uint32_t)b));
    wq_unlock(w, q);
  });

  return t::finish();
}
