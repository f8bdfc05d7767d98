// FIFO wait queues in shared memory, for JS threads that wait for a shared resource (a
// buffer's content lock). The resource's owner module decides who may run; this file only
// keeps the order and the cells, and survives a participant dying at any instruction.
//
// A waiter takes one of its slot's wait cells (only that slot's JS thread claims them),
// links it at the tail of the resource's queue under the queue's partition lock (a robust
// mutex) and sleeps on the cell's `state` word with the session's shared word wait. A
// releaser decides, under the same lock, whom the release lets run: it takes their cells
// off the queue, marks them WOKEN (they try again) or GRANTED (the resource was handed to
// them; release store: what the releaser did is visible to the grantee) and rings only
// their slots' doorbells (wq_wake), never every waiting process. A woken waiter that loses
// its retry goes back to the head of the queue (wq_push_front: its ticket is still the
// oldest). The grantee takes a grant (GRANTED -> FREE) without the lock: a granted cell is
// no longer on any queue.
//
// Crash safety. Queue links (head, tail, next) change only under the partition lock. A
// holder that dies mid-edit leaves the mutex EOWNERDEAD, and the next holder rebuilds every
// queue of the partition from the cells themselves (the WAITING cells, in ticket order):
// a cell's state, queue and ticket are written before it is linked, and a cell leaves
// WAITING only after it was unlinked. The `grant_*` intent record in the partition lets the
// owner module finish or forget a grant its releaser died in (see wq_repair). A dead
// waiter's cells are given back by slot cleanup (the owner module's hook). Every index read
// from shared memory is bounds-checked and every walk is bounded by the cell count: a
// scribbled link makes the queue be rebuilt, never a wild access or an endless loop.
#pragma once
#include <cstdint>

#include "robust_lock.h"

namespace rm {

struct Segment;

// WAITING must stay 1: JS waits for the state word to differ from it.
enum WaitCellState : uint32_t { WC_FREE = 0, WC_WAITING = 1, WC_GRANTED = 2, WC_CLAIMED = 3, WC_WOKEN = 4 };

struct WaitCell {
  uint32_t state;        // WaitCellState; the word the waiter sleeps on (waitWord)
  uint32_t queue_plus1;  // the queue it waits in (resource index + 1); 0 = none
  uint32_t next;         // next cell index + 1 in that queue (0 = last)
  uint32_t mode;         // the owner module's request kind (shared / exclusive)
  uint64_t ticket;       // enqueue order, from the partition-independent counter
  uint64_t since_ns;     // CLOCK_MONOTONIC when it was queued (wait time statistics)
};
static_assert(sizeof(WaitCell) == 32, "WaitCell is part of the segment ABI");

struct WaitQueue {
  uint32_t head;  // cell index + 1 (0 = empty)
  uint32_t tail;
};

struct WaitPartition {
  RobustLock lock;            // guards the queues q with q % partitions == this partition
  uint32_t grant_cell_plus1;  // a grant in progress: the cell being granted ...
  uint32_t grant_word;        // ... and the resource word before the grant changed it
  char pad[64 - (sizeof(RobustLock) + 8) % 64];
};
static_assert(sizeof(WaitPartition) % 64 == 0, "one partition per cache line group");

constexpr uint32_t kWaitCellsPerSlot = 32;
constexpr uint32_t kWaitPartitions = 64;

// Process-local view of a set of queues (the owner module lays them out and validates the
// geometry before building it).
struct WaitQueues {
  WaitCell* cells = nullptr;
  uint32_t ncells = 0;  // max_slots * kWaitCellsPerSlot
  WaitQueue* queues = nullptr;
  uint32_t nqueues = 0;
  WaitPartition* parts = nullptr;  // kWaitPartitions of them
  uint64_t* next_ticket = nullptr;
};

void wq_init(WaitQueues& w);  // zeroed memory: initialises the partition locks

inline uint32_t wq_partition_of(uint32_t q) { return q % kWaitPartitions; }
inline uint32_t wq_cell_slot(uint32_t cell) { return cell / kWaitCellsPerSlot; }

enum class WqLock { Held, HeldOwnerDied, TimedOut };
// Takes queue q's partition lock (bounded). HeldOwnerDied: the previous holder died inside;
// the caller must run its repair (which calls wq_rebuild) before touching the queues.
WqLock wq_lock(WaitQueues& w, uint32_t q, int64_t timeout_ns);
void wq_unlock(WaitQueues& w, uint32_t q);

// A free cell of `slot`, now WC_CLAIMED (not yet on a queue), or -1 if all are in use.
int64_t wq_claim_cell(WaitQueues& w, uint32_t slot);
// Under the lock: a claimed cell, queued at the tail of q as WAITING with `mode`.
void wq_push(WaitQueues& w, uint32_t q, uint32_t cell, uint32_t mode);
// Under the lock: a cell that was woken (not on any queue) back at the head of q, WAITING
// again with its old ticket (older than every cell queued after it was woken).
void wq_push_front(WaitQueues& w, uint32_t q, uint32_t cell);
// Under the lock: the first cell of q (-1 = empty), validated (WAITING, in this queue). A
// broken queue is rebuilt first (counted in *repairs if given).
int64_t wq_head(WaitQueues& w, uint32_t q, uint32_t* repairs = nullptr);
// Under the lock: the cell after `cell` in its queue (-1 = none).
int64_t wq_next(WaitQueues& w, uint32_t cell);
// Under the lock: unlinks `cell` from q wherever it is; false if it was not on q.
bool wq_remove(WaitQueues& w, uint32_t q, uint32_t cell);
// Under the lock, after wq_remove: WAITING -> GRANTED / WOKEN (release).
void wq_grant(WaitQueues& w, uint32_t cell);
void wq_wake_up(WaitQueues& w, uint32_t cell);
// Any thread: a cell back to FREE (after its grant was taken, or its wait cancelled).
void wq_release_cell(WaitQueues& w, uint32_t cell);
// Under the lock, after EOWNERDEAD: every queue of q's partition rebuilt from its WAITING
// cells in ticket order. Returns the number of queues rebuilt.
uint32_t wq_rebuild(WaitQueues& w, uint32_t q);

// Rings the doorbell of the slot that owns `cell` (after the lock is released).
void wq_wake(Segment& seg, uint32_t cell);

}  // namespace rm
