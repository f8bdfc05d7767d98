#include "delivery.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "atomics.h"
#include "reaper.h"
#include "sched_slice.h"
#include "segment.h"
#include "shared_wait.h"

#ifndef IORING_OP_FUTEX_WAIT
#define IORING_OP_FUTEX_WAIT 51
#endif
#ifndef IORING_FEAT_CQE_SKIP
#define IORING_FEAT_CQE_SKIP (1U << 11)
#endif

namespace rm {

namespace {
constexpr uint64_t kDoorbellWaitUd = ~0ull - 16;  // the private ring's FUTEX_WAIT (never a handle's user_data)
constexpr uint64_t kCqPollRemoveUd = ~0ull - 17;  // removal of a CQ poll
// + ring: the POLL_ADD on that shared ring's eventfd (a direct wait). Its low 32 bits are
// no handle index either.
constexpr uint64_t kCqPollUd = ~0ull - (1ull << 24);
constexpr uint32_t kFutex2SizeU32 = 0x02;         // futex2 flags: 32-bit word, shared (not FUTEX2_PRIVATE)
constexpr uint32_t kFutexBitsetAny = 0xffffffffu;
constexpr uint32_t kWakeRingSq = 8;
constexpr int8_t kAsyncScoreMax = 16;

bool op_supported(const io_uring_probe* p, uint32_t op) {
  return op <= p->last_op && (p->ops[op].flags & IO_URING_OP_SUPPORTED);
}
}  // namespace

Delivery::~Delivery() { close(); }

int Delivery::open(Segment* seg, uint32_t slot, bool io_uring_backend, bool reaps) {
  seg_ = seg;
  slot_ = slot;
  uring_ = io_uring_backend;
  reaps_ = io_uring_backend && reaps;
  pos_.assign(seg->hdr->max_handles, ~0u);
  file_async_.assign(seg->hdr->max_files, 0);
  if (uring_ && open_ring()) {
    channel_ = WakeChannel::Ring;
    poll_fd_ = wake_ring_.fd;
    return 0;
  }
  int efd;
  {
    std::lock_guard<std::mutex> g(seg->mu);
    efd = seg->local_wake_fds[slot];
    if (efd < 0) {
      efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (efd < 0) return -errno;
      seg->local_wake_fds[slot] = efd;
    }
  }
  uint64_t v;
  while (read(efd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {}  // a previous session's leftovers
  eventfd_ = efd;
  poll_fd_ = efd;
  channel_ = WakeChannel::Eventfd;
  seg->local_wake[slot].store(efd, std::memory_order_release);
  closing_ = false;
  doorbell_thread_ = std::thread([this] { doorbell_thread_main(); });
  return 0;
}

// A private ring: 8 SQ entries (only this thread submits to it: the doorbell wait), a
// CQ for the self-wake messages of everything this environment can have in flight.
bool Delivery::open_ring() {
  const char* force = getenv("RINGMASTER_WAKE");  // 'eventfd': the fallback channel, for tests and comparison
  if (force && strcmp(force, "eventfd") == 0) return false;
  io_uring_params p;
  memset(&p, 0, sizeof(p));
  uint32_t cq = 64;
  // Self-wakes, the doorbell wait, and a CQ poll and its removal per shared ring.
  uint32_t need = seg_->hdr->max_handles + 16 + 2 * (uint32_t)seg_->rings.size();
  while (cq < need && cq < 4096) cq <<= 1;
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
  p.cq_entries = cq;
  int fd = sys_io_uring_setup(kWakeRingSq, &p);
  if (fd < 0) return false;
  // The futex wait needs Linux 6.7; the self-wake needs MSG_RING (5.18).
  alignas(io_uring_probe) uint8_t probe_mem[sizeof(io_uring_probe) + 256 * sizeof(io_uring_probe_op)];
  memset(probe_mem, 0, sizeof(probe_mem));
  auto* probe = reinterpret_cast<io_uring_probe*>(probe_mem);
  if (sys_io_uring_register(fd, IORING_REGISTER_PROBE, probe, 256) < 0 || !op_supported(probe, IORING_OP_FUTEX_WAIT)) {
    ::close(fd);
    return false;
  }
  RingShared rs;
  memset(&rs, 0, sizeof(rs));
  rs.sq_entries = p.sq_entries;
  rs.cq_entries = p.cq_entries;
  rs.features = p.features;
  rs.sq_off = p.sq_off;
  rs.cq_off = p.cq_off;
  if (ring_map(&rs, &wake_ring_, fd) < 0) {
    ::close(fd);
    return false;
  }
  // Self-wake: the issuer enters its own SQEs, so the linked MSG_RING resolves this fd
  // in its own fd table. Not under SQPOLL (the poller resolves fds in the postmaster's
  // table) and not for an environment that does not reap.
  bool msg_ring = op_supported(probe, IORING_OP_MSG_RING) && (p.features & IORING_FEAT_CQE_SKIP);
  self_wake_fd_ = msg_ring && reaps_ && !seg_->hdr->sqpoll ? fd : -1;
  if (!arm_doorbell_wait()) {
    ring_unmap(&wake_ring_);
    self_wake_fd_ = -1;
    return false;
  }
  return true;
}

// The private ring's SQ: only this thread submits to it. SQEs are written past the
// published tail and published together by submit_private, which takes back what the
// kernel did not consume on a failed enter (each one's state is undone).
io_uring_sqe* Delivery::private_sqe(uint8_t what, uint32_t ring) {
  RingMap& m = wake_ring_;
  uint32_t tail = load_relaxed(m.sq_tail) + (uint32_t)staged_.size();
  if (tail - load_acquire(m.sq_head) > *m.sq_mask) {
    if (!submit_private()) return nullptr;
    tail = load_relaxed(m.sq_tail);
  }
  uint32_t idx = tail & *m.sq_mask;
  io_uring_sqe* sqe = &m.sqes[idx];
  memset(sqe, 0, sizeof(*sqe));
  m.sq_array[idx] = idx;
  staged_.push_back({what, ring});
  return sqe;
}

bool Delivery::submit_private() {
  if (staged_.empty()) return true;
  RingMap& m = wake_ring_;
  uint32_t start = load_relaxed(m.sq_tail);
  uint32_t tail = start + (uint32_t)staged_.size();
  store_release(m.sq_tail, tail);
  for (int tries = 0; tries < 100 && load_acquire(m.sq_head) != tail; tries++) {
    int rc = sys_io_uring_enter(m.fd, tail - load_acquire(m.sq_head), 0, 0, nullptr, 0);
    if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) break;
  }
  uint32_t consumed = load_acquire(m.sq_head) - start;
  if (consumed > staged_.size()) consumed = (uint32_t)staged_.size();
  bool ok = consumed == staged_.size();
  if (!ok) {
    store_release(m.sq_tail, start + consumed);
    for (size_t i = consumed; i < staged_.size(); i++) {
      const PrivateSqe& q = staged_[i];
      if (q.what == kSqeDoorbell) {
        futex_armed_ = false;  // the sweep arms it again
      } else {
        cq_poll_[q.ring] = q.what == kSqeCqPoll ? kCqPollIdle : kCqPollArmed;
        cq_sync_pending_ = true;
      }
    }
  }
  staged_.clear();
  return ok;
}

void Delivery::queue_doorbell_wait() {
  uint32_t* bell = &seg_->slots[slot_].doorbell;
  uint32_t seen = load_acquire(bell);
  io_uring_sqe* sqe = private_sqe(kSqeDoorbell, 0);
  if (!sqe) return;
  sqe->opcode = IORING_OP_FUTEX_WAIT;
  sqe->fd = (int32_t)kFutex2SizeU32;
  sqe->addr = (uint64_t)(uintptr_t)bell;
  sqe->off = seen;  // a ring after we read `seen` completes the wait at once (-EAGAIN)
  sqe->addr3 = kFutexBitsetAny;
  sqe->user_data = kDoorbellWaitUd;
  futex_armed_ = true;  // taken back by submit_private if the kernel refuses it
}

bool Delivery::arm_doorbell_wait() {
  queue_doorbell_wait();
  if (cq_sync_pending_) queue_cq_polls();
  submit_private();
  return futex_armed_;
}

void Delivery::doorbell_thread_main() {
  apply_library_thread_slice();
  // Eventfd channel: a doorbell rung by another process reaches the loop through here.
  // Completers in this process write the eventfd themselves.
  uint32_t* bell = &seg_->slots[slot_].doorbell;
  uint32_t seen = load_acquire(bell);
  while (!closing_.load()) {
    futex_wait(bell, seen, 250000000);
    uint32_t now = load_acquire(bell);
    if (now != seen && !closing_.load()) {
      seen = now;
      uint64_t one = 1;
      ssize_t w = write(eventfd_, &one, sizeof(one));
      (void)w;
    }
  }
}

int Delivery::registered_ring(uint32_t ring) {
  if (ring >= registered_rings_.size()) {
    if (!uring_ || ring >= seg_->rings.size()) return -1;
    registered_rings_.resize(seg_->rings.size(), -2);
  }
  int& r = registered_rings_[ring];
  if (r == -2) {
    int idx = ring_fd_register(seg_->rings[ring].fd);
    r = idx >= 0 ? idx : -1;
  }
  return r;
}

void Delivery::close() {
  // Registered ring fds are this thread's (it is the JS thread that attached): each holds
  // a reference to its ring, which must not outlive the session.
  for (size_t i = 0; i < registered_rings_.size(); i++)
    if (registered_rings_[i] >= 0) ring_fd_unregister(i < seg_->rings.size() ? seg_->rings[i].fd : -1, registered_rings_[i]);
  registered_rings_.clear();
  if (channel_ == WakeChannel::Eventfd) {
    seg_->local_wake[slot_].store(-1, std::memory_order_release);
    closing_ = true;
    slot_ring_doorbell(&seg_->slots[slot_]);
    if (doorbell_thread_.joinable()) doorbell_thread_.join();
    eventfd_ = -1;  // stays open in Segment::local_wake_fds for the slot's next session
  } else if (channel_ == WakeChannel::Ring) {
    ring_unmap(&wake_ring_);  // the pending futex wait is cancelled with the ring
  }
  channel_ = WakeChannel::None;
  poll_fd_ = -1;
  self_wake_fd_ = -1;
  futex_armed_ = false;
  arm_pending_ = false;
  cq_poll_.clear();
  staged_.clear();
  direct_waits_ = 0;
  cq_sync_pending_ = false;
  cq_polls_spent_ = false;
}

void Delivery::foreign_changed(int delta) {
  uint32_t before = foreign_;
  foreign_ = (uint32_t)((int)foreign_ + delta);
  if (!uring_) return;
  if (before == 0 && foreign_ > 0) reap_demand_foreign(*seg_, slot_, true);
  else if (before > 0 && foreign_ == 0) reap_demand_foreign(*seg_, slot_, false);
}

void Delivery::track(const InflightOp& op) {
  if (op.index >= pos_.size()) return;
  pos_[op.index] = (uint32_t)ops_.size();
  ops_.push_back(op);
  if (op.ring >= ring_ops_.size()) ring_ops_.resize(op.ring + 1, 0);
  ring_ops_[op.ring]++;
  if (op.foreign) foreign_changed(1);
}

void Delivery::erase_at(size_t p) {
  InflightOp gone = ops_[p];
  pos_[gone.index] = ~0u;
  if (gone.ring < ring_ops_.size() && ring_ops_[gone.ring]) ring_ops_[gone.ring]--;
  if (p + 1 != ops_.size()) {
    ops_[p] = ops_.back();
    pos_[ops_[p].index] = (uint32_t)p;
  }
  ops_.pop_back();
  if (gone.foreign) foreign_changed(-1);
}

void Delivery::untrack(uint32_t index, uint32_t gen) {
  if (index >= pos_.size() || pos_[index] == ~0u || ops_[pos_[index]].gen != gen) return;
  erase_at(pos_[index]);
}

void Delivery::make_foreign(uint32_t index, uint32_t gen) {
  if (index >= pos_.size() || pos_[index] == ~0u) return;
  InflightOp& op = ops_[pos_[index]];
  if (op.gen != gen || op.foreign) return;
  op.foreign = 1;
  foreign_changed(1);
}

bool Delivery::file_goes_async(uint32_t file_slot) const {
  return file_slot < file_async_.size() && file_async_[file_slot] > 0;
}

void Delivery::note_file(uint32_t file_slot, bool went_async) {
  if (file_slot >= file_async_.size()) return;
  int8_t& s = file_async_[file_slot];
  if (went_async) s = kAsyncScoreMax;
  else if (s > 0) s--;
}

void Delivery::on_ready(bool defer_arm) {
  if (channel_ == WakeChannel::Eventfd) {
    uint64_t v;
    while (read(eventfd_, &v, sizeof(v)) == (ssize_t)sizeof(v)) doorbells++;
    full_scan_ = true;
    kill_point(&seg_->hdr->faults, KP_WAKE_BEFORE_REAP);  // test hook: woken, nothing collected
    return;
  }
  if (channel_ != WakeChannel::Ring) return;
  RingMap& m = wake_ring_;
  bool bell = false;
  uint64_t drained = 0;  // rings whose CQ signal this wake took (see below)
  for (;;) {
    uint32_t head = load_relaxed(m.cq_head);
    uint32_t tail = load_acquire(m.cq_tail);
    if (head == tail) {
      if (load_acquire(m.sq_flags) & IORING_SQ_CQ_OVERFLOW) {  // NODROP kept some in the kernel
        sys_io_uring_enter(m.fd, 0, 0, IORING_ENTER_GETEVENTS, nullptr, 0);
        continue;
      }
      break;
    }
    for (; head != tail; head++) {
      io_uring_cqe* cqe = &m.cqes[head & *m.cq_mask];
      uint64_t ud = load_relaxed(&cqe->user_data);
      if (ud == kDoorbellWaitUd) {
        bell = true;
      } else if (ud == kCqPollRemoveUd) {
        // A poll's removal: its poll reports itself (ECANCELED), or had fired already.
      } else if (ud >= kCqPollUd && ud - kCqPollUd < cq_poll_.size()) {
        uint32_t r = (uint32_t)(ud - kCqPollUd);
        cq_poll_[r] = kCqPollIdle;
        cq_sync_pending_ = true;  // the other rings' polls are removed after the delivery
        if (load_relaxed(&cqe->res) > 0) {
          // One such wake per stretch of direct waits: not re-armed until they are all
          // over (a CQE that was not theirs, or one a watcher took first, leaves them to
          // the watcher's doorbell, as for any wait), so a waiter is woken at most once
          // more than before however much IO the other processes complete meanwhile.
          if (direct_waits_) cq_polls_spent_ = true;
          // The kernel signalled ring r's CQ: take the count, so the re-arm does not fire
          // on this same signal, then reap ring r below, whatever the waits say now: a
          // watcher woken by the same signal finds the count taken and sleeps again.
          // Count first, reap second: a CQE posted after the read signals again; one
          // posted before it is reaped here, or, behind another reaper's lock, by that
          // reaper, which looks again after unlocking.
          cq_wakes++;
          if (r < 64) drained |= 1ull << r;
          else drained = ~0ull;
          uint64_t v;
          ssize_t got = read(seg_->rings[r].efd, &v, sizeof(v));
          (void)got;
        }
      } else {
        check_.push_back((uint32_t)(ud & 0xffffffffu));  // a self-wake: (gen << 32 | index) of the chain's last op
        self_wakes++;
      }
    }
    store_release(m.cq_head, head);
  }
  if (bell || !futex_armed_) {
    if (bell) doorbells++;
    futex_armed_ = false;
    // Arm, then scan: a ring after our read of the bell is not lost. Deferred, the scan
    // after arm_deferred() is the one that covers it (the scan before it delivers sooner).
    if (defer_arm) arm_pending_ = true;
    else arm_doorbell_wait();
    full_scan_ = true;
  }
  if (!defer_arm && cq_sync_pending_) sync_cq_polls();
  // Test hook: die with our CQEs posted but not reaped (the loop woke for them).
  kill_point(&seg_->hdr->faults, KP_WAKE_BEFORE_REAP);
  // Our own CQEs: the rings we have ops in flight on (every ring while we wait on a word,
  // which any CQE may change). Another process's home ring holds its own completions,
  // which it takes itself (a busy or dead one's: the watchers, on demand).
  reap_own(reap_mask() | drained);
}

bool Delivery::arm_deferred() {
  if (!arm_pending_) {
    sync_cq_polls();
    return false;
  }
  arm_pending_ = false;
  if (channel_ != WakeChannel::Ring || futex_armed_) {
    sync_cq_polls();
    return false;
  }
  arm_doorbell_wait();  // and the CQ polls, in the same enter
  full_scan_ = true;
  reap_own(reap_mask());
  return true;
}

// A poll per shared ring with an eventfd while a direct wait is registered and none has
// fired yet, none otherwise: a process that waits on nothing is never woken by other
// processes' CQEs, and one that waits is woken by them at most once per stretch of waits.
// Non-exclusive, unlike the watchers' EPOLLEXCLUSIVE waits on the same eventfd, so the
// kernel still wakes one watcher: a busy JS thread does not see its poll fire, and the
// watcher reaps as before (the watchers stay the backstop). An exclusive poll would
// take the wake whether or not this thread is in its loop.
void Delivery::queue_cq_polls() {
  cq_sync_pending_ = false;
  if (!direct_capable()) return;
  bool want = direct_waits_ > 0 && !cq_polls_spent_;
  uint32_t n = (uint32_t)seg_->rings.size();
  if (cq_poll_.size() < n) cq_poll_.resize(n, kCqPollIdle);
  for (uint32_t r = 0; r < n; r++) {
    int efd = seg_->rings[r].efd;
    if (efd < 0) continue;  // no eventfd (GETEVENTS watchers): the doorbell path only
    if (want && cq_poll_[r] == kCqPollIdle) {
      io_uring_sqe* sqe = private_sqe(kSqeCqPoll, r);
      if (!sqe) { cq_sync_pending_ = true; return; }
      sqe->opcode = IORING_OP_POLL_ADD;
      sqe->fd = efd;
      sqe->poll32_events = POLLIN;  // one-shot: re-armed after each delivery that needs it
      sqe->user_data = kCqPollUd + r;
      cq_poll_[r] = kCqPollArmed;
    } else if (!want && cq_poll_[r] == kCqPollArmed) {
      io_uring_sqe* sqe = private_sqe(kSqeCqPollRemove, r);
      if (!sqe) { cq_sync_pending_ = true; return; }
      sqe->opcode = IORING_OP_POLL_REMOVE;
      sqe->addr = kCqPollUd + r;
      sqe->user_data = kCqPollRemoveUd;
      cq_poll_[r] = kCqPollRemoving;
    }
  }
}

void Delivery::sync_cq_polls_now() {
  if (arm_pending_ || channel_ != WakeChannel::Ring) return;
  queue_cq_polls();
  submit_private();
}

uint64_t Delivery::rings_in_use() const {
  uint64_t mask = 0;
  for (size_t r = 0; r < ring_ops_.size(); r++)
    if (ring_ops_[r]) mask |= r < 64 ? 1ull << r : ~0ull;
  return mask;
}

uint64_t Delivery::reap_mask() const { return waits_.empty() ? rings_in_use() : ~0ull; }

void Delivery::reap_own(uint64_t ring_mask) {
  if (!reaps_) return;
  uint32_t n = (uint32_t)seg_->rings.size();
  for (uint32_t r = 0; r < n; r++) {
    if (r < 64 && !(ring_mask & (1ull << r))) continue;
    RingMap& m = seg_->rings[r];
    if (ring_has_completions(m)) {
      int got = ring_reap(*seg_, r, slot_, 0, slot_, &check_);
      if (got > 0) reaped_here += (uint64_t)got;
    }
  }
}

void Delivery::reap_stalled() {
  if (reaps_ || !seg_) return;
  uint64_t mask = reap_mask();
  uint32_t n = (uint32_t)seg_->rings.size();
  if (stalled_head_.size() < n) stalled_head_.resize(n, ~0u);
  for (uint32_t r = 0; r < n; r++) {
    RingMap& m = seg_->rings[r];
    bool needed = r >= 64 || (mask & (1ull << r));
    if (!needed || !ring_has_completions(m)) {
      stalled_head_[r] = ~0u;
      continue;
    }
    // The head moves whenever anyone reaps: the same head with CQEs behind it at two
    // sweeps means nobody took them for a whole sweep interval.
    uint32_t head = load_acquire(m.cq_head);
    if (head != stalled_head_[r]) {
      stalled_head_[r] = head;
      continue;
    }
    stalled_head_[r] = ~0u;
    int got = ring_reap(*seg_, r, slot_, 0, slot_, &check_);
    if (got > 0) {
      reaped_here += (uint64_t)got;
      stalled_reaps++;
    }
  }
}

// While we are attached, only we free our handles (collect) and only our slot's cleanup
// orphans them: any other generation, owner or state is another process's garbage.
bool Delivery::scribbled(const InflightOp& op) const {
  uint64_t w = load_acquire(&seg_->handles.handles[op.index].word);
  uint32_t st = hw_state(w);
  return hw_gen(w) != op.gen || hw_owner(w) != slot_ || st == H_FREE || st > H_COMPLETED || (hw_flags(w) & ~HF_KNOWN);
}

bool Delivery::collect_one(uint32_t index, uint32_t gen, int32_t* res, uint32_t* reaper) {
  if (index >= pos_.size() || pos_[index] == ~0u || ops_[pos_[index]].gen != gen) return false;
  if (!handle_collect(seg_->handles, index, gen, res, reaper)) return false;
  erase_at(pos_[index]);
  ProcSlot* me = &seg_->slots[slot_];
  stat_add_owned(&me->stat_completed, (uint64_t)1);
  if (*reaper != slot_ && (*reaper >= seg_->hdr->max_slots || load_relaxed(&seg_->slots[*reaper].pid) != load_relaxed(&me->pid)))
    stat_add_owned(&me->stat_completed_by_other, (uint64_t)1);
  return true;
}

uint32_t Delivery::collect(int32_t* out, uint32_t cap, bool* more) {
  uint32_t n = 0;
  auto emit = [&](int32_t a, int32_t b, int32_t c, int32_t d) {
    out[n * kQuad] = a;
    out[n * kQuad + 1] = b;
    out[n * kQuad + 2] = c;
    out[n * kQuad + 3] = d;
    n++;
  };
  while (!check_.empty() && n < cap) {
    uint32_t idx = check_.back();
    check_.pop_back();
    if (idx >= pos_.size() || pos_[idx] == ~0u) continue;
    InflightOp op = ops_[pos_[idx]];
    int32_t res;
    uint32_t reaper;
    if (collect_one(op.index, op.gen, &res, &reaper)) emit((int32_t)op.index, (int32_t)op.gen, res, (int32_t)reaper);
  }
  if (full_scan_) {
    bool done = true;
    for (size_t i = ops_.size(); i-- > 0;) {
      if (n >= cap) { done = false; break; }
      if (i >= ops_.size()) continue;
      InflightOp op = ops_[i];
      int32_t res;
      uint32_t reaper;
      if (collect_one(op.index, op.gen, &res, &reaper)) {
        emit((int32_t)op.index, (int32_t)op.gen, res, (int32_t)reaper);
      } else if (scribbled(op)) {
        // Our in-flight handle no longer says it is ours: another process wrote over
        // it, and its CQE will be rejected as corrupt. Fail the op here, running its
        // completion action with our trusted copy of (kind, arg), so shared state (a
        // buffer's IO, the WAL) does not wait forever for it.
        stat_add(&seg_->hdr->stat_corrupt_handles, (uint64_t)1);
        stat_add(&seg_->hdr->stat_corrupt_reports, (uint64_t)1);
        run_completion_kind(*seg_, op.kind, op.kind_arg, kCorruptResult);
        erase_at(i);
        emit((int32_t)op.index, (int32_t)op.gen, kCorruptResult, -1);
      }
    }
    if (done) full_scan_ = false;
  }
  for (size_t i = 0; i < waits_.size() && n < cap;) {
    auto* word = reinterpret_cast<uint32_t*>(seg_->arena.base + waits_[i].offset);
    uint32_t v = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    if (v != waits_[i].value) {
      emit(-1, (int32_t)waits_[i].id, (int32_t)v, 0);  // a wait, not an IO
      wait_erase_at(i);
    } else {
      i++;
    }
  }
  *more = n >= cap && (!check_.empty() || full_scan_ || !waits_.empty());
  return n;
}

void Delivery::wait_erase_at(size_t i) {
  if (waits_[i].direct && direct_waits_ && --direct_waits_ == 0) {
    cq_sync_pending_ = true;  // polls removed by sync_cq_polls
    cq_polls_spent_ = false;
  }
  waits_[i] = waits_.back();
  waits_.pop_back();
  if (waits_.empty()) set_slot_waiting(*seg_, slot_, false);
}

uint32_t Delivery::wait_add(uint64_t offset, uint32_t value, bool direct) {
  auto* word = reinterpret_cast<uint32_t*>(seg_->arena.base + offset);
  uint32_t id = ++next_wait_id_;
  if (id == 0) id = ++next_wait_id_;
  direct = direct && direct_capable();
  waits_.push_back({id, offset, value, false});
  set_slot_waiting(*seg_, slot_, true);
  // A CQE already in a ring may be what changes the word (a busy or dead issuer's):
  // take it now rather than wait for a reaper.
  reap_own();
  // Flag first, then look: a waker that changed the word before we flagged is seen here.
  if (__atomic_load_n(word, __ATOMIC_SEQ_CST) != value) {
    for (size_t i = 0; i < waits_.size(); i++)
      if (waits_[i].id == id) { waits_[i] = waits_.back(); waits_.pop_back(); break; }
    if (waits_.empty()) set_slot_waiting(*seg_, slot_, false);
    return 0;
  }
  // The CQ polls, after the look: a CQE posted since signals the eventfd (the flag set
  // above is reap demand), and a poll armed on a signalled eventfd fires at once; one
  // whose signal a watcher took first is reaped by it, which rings our doorbell.
  if (direct) {
    for (auto& w : waits_)
      if (w.id == id) w.direct = true;
    if (direct_waits_++ == 0) {
      cq_sync_pending_ = true;
      sync_cq_polls();
    }
  }
  return id;
}

void Delivery::wait_cancel(uint32_t id) {
  for (size_t i = 0; i < waits_.size(); i++)
    if (waits_[i].id == id) { wait_erase_at(i); break; }
  if (waits_.empty()) set_slot_waiting(*seg_, slot_, false);
  sync_cq_polls();
}

void Delivery::waits_clear() {
  waits_.clear();
  direct_waits_ = 0;
  cq_polls_spent_ = false;
  cq_sync_pending_ = true;  // the ring's close takes the polls with it, if it comes first
  if (seg_) set_slot_waiting(*seg_, slot_, false);
}

}  // namespace rm
