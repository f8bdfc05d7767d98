// Delivery: how one JS environment (a session) learns that its IO completed or that a
// shared word it waits on changed, with one wakeup of its own JS thread and no helper
// thread in between. Everything here runs on that JS thread (the event loop polls
// `poll_fd()`); nothing is shared with other threads but the segment itself.
//
// Wake channels:
//  - Ring (io_uring backend, Linux 6.7+): a small private io_uring per environment,
//    polled by the event loop. (1) A single op that will complete asynchronously
//    (O_DIRECT, a sync, a file whose ops went asynchronous lately) is followed by a
//    hard-linked IORING_OP_MSG_RING to it (its own CQE on the shared ring is skipped by
//    reapers; not CQE_SKIP_SUCCESS, which would disable IOSQE_IO_DRAIN on the ring): the
//    op's CQE is posted first, then the message, so the loop wakes once, with the CQE
//    already in the shared CQ, and the JS thread reaps it itself. A chain whose links
//    are all hard gets one behind its last op, which is issued however each op ended,
//    and so does a chain that asks for it (LF_SELF_WAKE: the WAL's commit, which then
//    learns of a broken link at its sweep); any other chain with a soft link does not
//    (a broken soft link cancels the message too, submission.cc): its CQEs go to the
//    reapers. (2) An IORING_OP_FUTEX_WAIT stays armed on the slot's
//    doorbell word: any process that completes this environment's IO or changes a
//    word it waits on rings the doorbell (fetch_add + FUTEX_WAKE, unchanged), the
//    kernel completes the wait in this thread's context and the loop wakes. (3) While
//    the environment waits on a word that a CQE sets (a completion word: a direct wait),
//    an IORING_OP_POLL_ADD on every shared ring's eventfd: the kernel's CQ signal wakes
//    this thread itself, beside the one watcher it wakes, and the thread reaps and
//    settles the wait without waiting for a watcher to be scheduled and ring it.
//  - Eventfd (the threads backend, or io_uring without futex waits): an eventfd polled
//    by the loop. Completers in this process write it directly (Segment::local_wake):
//    a pool thread's completion is one wakeup. Doorbells rung by other processes reach
//    it through a small thread blocked on the doorbell futex.
//
// Collection is exact where it can be: the handles this thread reaped itself, and the
// handles named by self-wake messages. A doorbell (someone else reaped, or a word
// changed), the eventfd channel and the periodic sweep scan everything in flight.
#pragma once
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "uring.h"

namespace rm {

struct Segment;

// The issuer's trusted copy of one in-flight op (its handle in shared memory is not).
struct InflightOp {
  uint32_t index;
  uint32_t gen;
  uint16_t ring;
  uint16_t kind;
  uint64_t kind_arg;
  uint8_t foreign;    // someone else must reap it (counted in reap demand, reaper.h)
  uint8_t self_wake;  // a self-wake message follows it
};

enum class WakeChannel : uint8_t { None, Ring, Eventfd };

// One completion handed to JS: (handle index, generation, result, reaper slot), or a
// resolved shared wait: (-1, wait id, new value, 0).
constexpr uint32_t kQuad = 4;

class Delivery {
 public:
  Delivery() = default;
  ~Delivery();
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  // Open this environment's wake channel (io_uring backend: try the private ring first).
  // `reaps`: this environment may reap its own rings (its process runs reapers).
  // Returns 0 or -errno.
  int open(Segment* seg, uint32_t slot, bool io_uring_backend, bool reaps);
  // Stop the eventfd channel's thread and close the private ring. Call after the drain.
  void close();
  int poll_fd() const { return poll_fd_; }
  WakeChannel channel() const { return channel_; }
  // The fd an IORING_OP_MSG_RING self-wake targets, or -1 (no self-wake here).
  int self_wake_fd() const { return self_wake_fd_; }
  bool reaps() const { return reaps_; }

  // ---- the registry of in-flight ops (before submission; taken back on failure) ----
  void track(const InflightOp& op);
  void untrack(uint32_t index, uint32_t gen);
  size_t inflight() const { return ops_.size(); }
  // A pending op of ours that was submitted without a self-wake turned out not to have
  // completed inline: make it foreign (reapers wake for it) and learn for its file.
  void make_foreign(uint32_t index, uint32_t gen);
  // Whether ops on `file_slot` recently completed asynchronously (a self-wake pays off).
  bool file_goes_async(uint32_t file_slot) const;
  void note_file(uint32_t file_slot, bool went_async);

  // ---- waking ------------------------------------------------------------------
  // The loop reported poll_fd() readable: drain the channel, re-arm the doorbell wait.
  // `defer_arm`: a doorbell that fired is re-armed by arm_deferred() instead, which the
  // caller runs after delivering what this wake brought (the arm is an io_uring_enter
  // that then stays off the path from the wake to JS); it must scan again after it.
  void on_ready(bool defer_arm = false);
  // The doorbell wait on_ready(true) left unarmed, armed now. True: it was, and the
  // caller must collect again (with a full scan) to see a ring that came before the arm.
  bool arm_deferred();
  // Reap this environment's rings now (never waits for a completion lock); what it
  // completes for this environment is collected exactly.
  // ring_mask: the rings to look at (bit r: ring r; rings above 63 are always looked at).
  void reap_own(uint64_t ring_mask = ~0ull);
  // The sweep's backstop for an environment that does not reap (`reaper: false`): a ring
  // it needs (reap_mask()) whose CQEs sat unreaped from one sweep to the next is reaped
  // here. Others reap for such an environment; when none that reaps is attached (a
  // postmaster started with `reaper: false` before its workers, or after they exit) or
  // all are stuck, its IO would otherwise never complete. Costs nothing while a reaper
  // keeps up: CQEs that a watcher takes within a sweep never sit through two.
  void reap_stalled();
  // The rings this environment has ops in flight on (bit r: ring r).
  uint64_t rings_in_use() const;
  // What a wake or a sweep reaps: rings_in_use(), or every ring while a word wait is
  // registered (a busy or dead issuer's CQE anywhere may change the word).
  uint64_t reap_mask() const;
  // Next collect() scans every in-flight op and every wait (doorbell, sweep).
  void want_full_scan() { full_scan_ = true; }
  // Writes up to `cap` quads to `out`; returns how many. `*more`: call again.
  uint32_t collect(int32_t* out, uint32_t cap, bool* more);
  // Collect one specific op now (just submitted); false if not completed yet.
  bool collect_one(uint32_t index, uint32_t gen, int32_t* res, uint32_t* reaper);

  // This thread's registered index of ring `ring` (ring_fd_register, on first use), or
  // -1 where the kernel refused: enters then name the ring by its fd.
  int registered_ring(uint32_t ring);

  // ---- shared word waits (shared_wait.h) ----------------------------------------
  // Returns the wait id (> 0), or 0 if the word already differs from `value`.
  // `direct`: a CQE's completion action sets the word (a completion word): while such a
  // wait is registered, the shared rings' CQ signals wake this thread too, which reaps
  // (Ring channel, a reaping environment; elsewhere the flag changes nothing).
  uint32_t wait_add(uint64_t offset, uint32_t value, bool direct = false);
  void wait_cancel(uint32_t id);
  size_t waits() const { return waits_.size(); }
  void waits_clear();
  // Arm or remove the CQ polls as the direct waits now ask (one io_uring_enter, none if
  // nothing changed). Run after a delivery: a resolved wait's polls are removed here.
  // Deferred while on_ready(true) left the doorbell wait to arm_deferred(), which does both.
  void sync_cq_polls() {
    if (cq_sync_pending_) sync_cq_polls_now();
  }

  // Everything this environment still has in flight, for cancellation at detach.
  const std::vector<InflightOp>& ops() const { return ops_; }

  // How this environment was woken (diagnostics, tests): self-wake messages, doorbells
  // (someone else reaped or a word changed), sweeps; CQEs its own thread reaped.
  uint64_t self_wakes = 0;
  uint64_t doorbells = 0;
  uint64_t sweeps = 0;
  uint64_t swept = 0;  // ops the sweep collected (each one a wake that never came)
  uint64_t reaped_here = 0;
  uint64_t cq_wakes = 0;  // woken by a shared ring's CQ signal (a direct wait's poll)
  uint64_t stalled_reaps = 0;  // rings a non-reaping environment's sweep reaped (reap_stalled)

 private:
  struct WordWait { uint32_t id; uint64_t offset; uint32_t value; bool direct; };
  // What an SQE staged on the private ring is for, to take back on a failed enter.
  struct PrivateSqe { uint8_t what; uint32_t ring; };
  enum : uint8_t { kSqeDoorbell, kSqeCqPoll, kSqeCqPollRemove };
  enum : uint8_t { kCqPollIdle, kCqPollArmed, kCqPollRemoving };
  bool open_ring();
  bool arm_doorbell_wait();
  void queue_doorbell_wait();
  void queue_cq_polls();
  void sync_cq_polls_now();
  io_uring_sqe* private_sqe(uint8_t what, uint32_t ring);
  bool submit_private();
  bool direct_capable() const { return channel_ == WakeChannel::Ring && reaps_; }
  void wait_erase_at(size_t i);
  void foreign_changed(int delta);
  bool scribbled(const InflightOp& op) const;
  // Remove ops_[pos] (swap with the last).
  void erase_at(size_t pos);
  void doorbell_thread_main();

  Segment* seg_ = nullptr;
  uint32_t slot_ = 0;
  bool reaps_ = false;
  bool uring_ = false;
  WakeChannel channel_ = WakeChannel::None;
  int poll_fd_ = -1;
  int self_wake_fd_ = -1;
  RingMap wake_ring_{};
  bool futex_armed_ = false;
  bool arm_pending_ = false;  // on_ready(true) left the doorbell wait for arm_deferred()
  int eventfd_ = -1;  // Eventfd channel: Segment::local_wake_fds owns it
  std::thread doorbell_thread_;
  std::atomic<bool> closing_{false};

  std::vector<InflightOp> ops_;
  std::vector<uint32_t> ring_ops_;  // per ring: how many of ops_ were submitted to it
  std::vector<uint32_t> pos_;  // handle index -> position in ops_, or ~0u
  std::vector<uint32_t> check_;  // handle indices to look at in the next collect()
  std::vector<int8_t> file_async_;  // per file slot: > 0 while its ops tend to go async
  uint32_t foreign_ = 0;
  bool full_scan_ = false;
  size_t scan_pos_ = 0;
  std::vector<WordWait> waits_;
  std::vector<int> registered_rings_;  // per ring: index, -1 refused, -2 not tried yet
  uint32_t next_wait_id_ = 0;
  bool waits_dirty_ = false;
  uint32_t direct_waits_ = 0;
  std::vector<uint8_t> cq_poll_;  // per shared ring: kCqPoll*
  std::vector<uint32_t> stalled_head_;  // per ring: CQ head at the last sweep that found CQEs there, or ~0u
  bool cq_sync_pending_ = false;  // cq_poll_ may not match direct_waits_: sync_cq_polls()
  bool cq_polls_spent_ = false;   // a CQ poll fired during this stretch of direct waits
  std::vector<PrivateSqe> staged_;  // SQEs written to the private ring, not yet entered
};

}  // namespace rm
