#include "uring.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <set>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#include "atomics.h"
#include "reaper.h"
#include "segment.h"

#ifndef IORING_SETUP_SUBMIT_ALL
#define IORING_SETUP_SUBMIT_ALL (1U << 7)
#endif
#ifndef IORING_ENTER_EXT_ARG
#define IORING_ENTER_EXT_ARG (1U << 3)
#endif

namespace rm {

int sys_io_uring_setup(unsigned entries, io_uring_params* p) {
  long rc = syscall(__NR_io_uring_setup, entries, p);
  return rc < 0 ? -errno : (int)rc;
}
#if !defined(__x86_64__)
int sys_io_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags, void* arg, size_t argsz) {
  long rc = syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, arg, argsz);
  return rc < 0 ? -errno : (int)rc;
}
#endif
int sys_io_uring_register(int fd, unsigned opcode, const void* arg, unsigned nr_args) {
  long rc = syscall(__NR_io_uring_register, fd, opcode, arg, nr_args);
  return rc < 0 ? -errno : (int)rc;
}

int ring_create(RingShared* shared, RingMap* map, uint32_t entries, uint32_t cq_entries, bool sqpoll,
                uint32_t sqpoll_idle_ms) {
  io_uring_params p;
  memset(&p, 0, sizeof(p));
  // Never SINGLE_ISSUER / DEFER_TASKRUN / COOP_TASKRUN: many tasks submit to and reap
  // from this ring, and completions must post without the submitter's cooperation.
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
  p.cq_entries = cq_entries;
  if (sqpoll) {
    p.flags |= IORING_SETUP_SQPOLL;
    p.sq_thread_idle = sqpoll_idle_ms;
  }
  int fd = sys_io_uring_setup(entries, &p);
  if (fd == -EINVAL) {
    // Kernels before 5.18 reject SUBMIT_ALL. We do not depend on it: ring_submit enters
    // until the SQ head reaches its tail, whatever each enter consumed.
    p.flags &= ~IORING_SETUP_SUBMIT_ALL;
    fd = sys_io_uring_setup(entries, &p);
  }
  if (fd < 0) return fd;
  shared->sq_entries = p.sq_entries;
  shared->cq_entries = p.cq_entries;
  shared->setup_flags = p.flags;
  shared->features = p.features;
  shared->sq_off = p.sq_off;
  shared->cq_off = p.cq_off;
  int rc = ring_map(shared, map, fd);
  if (rc < 0) close(fd);
  return rc;
}

int ring_map(RingShared* shared, RingMap* m, int fd) {
  // Offsets come from shared memory: bound them before building pointers.
  uint32_t sq_entries = shared->sq_entries, cq_entries = shared->cq_entries;
  if (sq_entries == 0 || sq_entries > 32768 || cq_entries == 0 || cq_entries > 65536 * 16) return -EINVAL;
  size_t sq_len = shared->sq_off.array + sq_entries * sizeof(uint32_t);
  size_t cq_len = shared->cq_off.cqes + cq_entries * sizeof(io_uring_cqe);
  if (shared->sq_off.array > (1u << 24) || shared->cq_off.cqes > (1u << 24)) return -EINVAL;
  bool single = shared->features & IORING_FEAT_SINGLE_MMAP;
  if (single) sq_len = cq_len = sq_len > cq_len ? sq_len : cq_len;
  void* sq = mmap(nullptr, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
  if (sq == MAP_FAILED) return -errno;
  void* cq = sq;
  if (!single) {
    cq = mmap(nullptr, cq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (cq == MAP_FAILED) { int e = errno; munmap(sq, sq_len); return -e; }
  }
  size_t sqes_len = sq_entries * sizeof(io_uring_sqe);
  void* sqes = mmap(nullptr, sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
  if (sqes == MAP_FAILED) {
    int e = errno;
    munmap(sq, sq_len);
    if (!single) munmap(cq, cq_len);
    return -e;
  }
  uint8_t* s = static_cast<uint8_t*>(sq);
  uint8_t* c = static_cast<uint8_t*>(cq);
  m->fd = fd;
  m->sq_ptr = sq; m->sq_len = sq_len;
  m->cq_ptr = cq; m->cq_len = single ? 0 : cq_len;
  m->sqes = static_cast<io_uring_sqe*>(sqes); m->sqes_len = sqes_len;
  m->sq_head = reinterpret_cast<uint32_t*>(s + shared->sq_off.head);
  m->sq_tail = reinterpret_cast<uint32_t*>(s + shared->sq_off.tail);
  m->sq_mask = reinterpret_cast<uint32_t*>(s + shared->sq_off.ring_mask);
  m->sq_flags = reinterpret_cast<uint32_t*>(s + shared->sq_off.flags);
  m->sq_array = reinterpret_cast<uint32_t*>(s + shared->sq_off.array);
  m->cq_head = reinterpret_cast<uint32_t*>(c + shared->cq_off.head);
  m->cq_tail = reinterpret_cast<uint32_t*>(c + shared->cq_off.tail);
  m->cq_mask = reinterpret_cast<uint32_t*>(c + shared->cq_off.ring_mask);
  m->cq_flags = shared->cq_off.flags ? reinterpret_cast<uint32_t*>(c + shared->cq_off.flags) : nullptr;
  m->cqes = reinterpret_cast<io_uring_cqe*>(c + shared->cq_off.cqes);
  return 0;
}

bool ring_cq_pending(RingMap& m) {
  return load_acquire(m.cq_tail) != load_acquire(m.cq_head);
}

bool ring_has_completions(RingMap& m) {
  return ring_cq_pending(m) || (load_acquire(m.sq_flags) & IORING_SQ_CQ_OVERFLOW) != 0;
}

void ring_poke_reapers(RingMap& m) {
  if (m.efd < 0) return;
  uint64_t one = 1;
  ssize_t w = write(m.efd, &one, sizeof(one));
  (void)w;
}

void ring_unmap(RingMap* m) {
  if (m->efd >= 0) close(m->efd);
  m->efd = -1;
  if (m->sqes) munmap(m->sqes, m->sqes_len);
  if (m->sq_ptr) munmap(m->sq_ptr, m->sq_len);
  if (m->cq_len && m->cq_ptr) munmap(m->cq_ptr, m->cq_len);
  if (m->fd >= 0) close(m->fd);
  *m = RingMap{};
}

static void prep_sqe(io_uring_sqe* sqe, const SqeRequest& r) {
  memset(sqe, 0, sizeof(*sqe));
  switch (r.op) {
    case OP_READ: sqe->opcode = r.fixed_buffer ? IORING_OP_READ_FIXED : IORING_OP_READ; break;
    case OP_WRITE: sqe->opcode = r.fixed_buffer ? IORING_OP_WRITE_FIXED : IORING_OP_WRITE; break;
    case OP_FSYNC: sqe->opcode = IORING_OP_FSYNC; break;
    case OP_FDATASYNC: sqe->opcode = IORING_OP_FSYNC; sqe->fsync_flags = IORING_FSYNC_DATASYNC; break;
    default: sqe->opcode = IORING_OP_NOP; break;
  }
  if (r.op != OP_NOP) {
    sqe->fd = (int32_t)r.file_slot;
    sqe->flags |= IOSQE_FIXED_FILE;
  }
  if (r.op == OP_READ || r.op == OP_WRITE) {
    sqe->addr = r.addr;
    sqe->len = r.len;
    sqe->off = r.offset;
    // One registered iovec per GiB of arena: the index follows from the address.
    sqe->buf_index = r.fixed_buffer ? r.buf_index : 0;
  }
  if (r.link_flags & LF_LINK) sqe->flags |= IOSQE_IO_LINK;
  if (r.link_flags & LF_HARDLINK) sqe->flags |= IOSQE_IO_HARDLINK;
  if (r.link_flags & LF_DRAIN) sqe->flags |= IOSQE_IO_DRAIN;
  sqe->user_data = user_data_of(r.handle_index, r.handle_gen);
}

// Is the handle behind `ud` (an SQE the dead holder counted in its intent) still the
// SUBMITTED handle that SQE was written for? Not if the holder died before marking it
// (RESERVED: slot cleanup frees it), nor if it already completed it itself (the hard
// failure path), nor if slot cleanup freed it and someone reused it (generation moved):
// those are no CQE of ours to fake, and not corruption either.
static bool repair_owns_handle(Segment& seg, uint64_t ud) {
  uint32_t idx = (uint32_t)ud, gen = (uint32_t)(ud >> 32);
  if (idx >= seg.handles.count) return true;  // garbage: deliver_completion reports it
  uint64_t w = load_acquire(&seg.handles.handles[idx].word);
  return hw_gen(w) == gen && hw_state(w) == H_SUBMITTED;
}

// The previous submit_lock holder died inside ring_submit. Its intent record says
// which SQ positions it touched. Nothing it prepared may be submitted under another
// process's identity, so: unpublished SQEs are completed as cancelled; published but
// unsubmitted ones are rewritten as NOPs that complete as cancelled.
static void repair_submission(Segment& seg, uint32_t ring_index, WakeSet& wake) {
  RingShared* rs = &seg.hdr->rings[ring_index];
  RingMap& m = seg.rings[ring_index];
  stat_add(&rs->stat_submit_repairs, (uint64_t)1);
  // A holder killed between disabling the eventfd and re-enabling it would leave every
  // watcher deaf (but for the 250 ms sweep): re-enable it.
  if (m.cq_flags) __atomic_fetch_and(m.cq_flags, ~(uint32_t)IORING_CQ_EVENTFD_DISABLED, __ATOMIC_SEQ_CST);
  if (!load_relaxed(&rs->intent_active)) return;
  uint32_t mask = *m.sq_mask;
  uint32_t start = load_relaxed(&rs->intent_tail);
  uint32_t prepared = load_relaxed(&rs->intent_prepared);
  if (prepared > rs->sq_entries) prepared = rs->sq_entries;  // untrusted
  uint32_t tail = load_relaxed(m.sq_tail);
  if (tail == start) {
    // Never published (or taken back after a hard enter failure): the kernel cannot see
    // these SQEs. Complete the SUBMITTED handles of the ones counted as cancelled; slots
    // past `prepared` hold stale SQEs of older batches (their user_data may name a
    // handle still legitimately in flight) and are not looked at.
    for (uint32_t i = 0; i < prepared; i++) {
      uint64_t ud = load_relaxed(&m.sqes[(start + i) & mask].user_data);
      if (!is_internal_user_data(ud) && repair_owns_handle(seg, ud)) deliver_completion(seg, ud, -ECANCELED, ~0u, rs, wake);
    }
  } else if (!(rs->setup_flags & IORING_SETUP_SQPOLL)) {
    // Published, maybe partly consumed. What the kernel has not consumed must not be
    // submitted under the next enterer's identity (its fd table and mm: io_submit_sqes
    // runs in the entering task), not ours: rewrite it as NOPs completing as cancelled.
    uint32_t head = load_acquire(m.sq_head);
    if (tail - head <= rs->sq_entries) {
      for (uint32_t pos = head; pos != tail; pos++) {
        io_uring_sqe* sqe = &m.sqes[pos & mask];
        uint64_t ud = load_relaxed(&sqe->user_data);
        uint32_t idx = (uint32_t)ud, gen = (uint32_t)(ud >> 32);
        if (idx < seg.handles.count) {
          IoHandle* h = &seg.handles.handles[idx];
          uint64_t w = load_acquire(&h->word);
          if (hw_gen(w) == gen && hw_state(w) == H_SUBMITTED) {
            uint64_t expected = w;
            cas(&h->word, &expected, hw_make(H_SUBMITTED, hw_owner(w), hw_flags(w) | HF_CANCELLED_REPAIR, gen));
          }
        }
        memset(sqe, 0, sizeof(*sqe));
        sqe->opcode = IORING_OP_NOP;
        sqe->user_data = ud;
        m.sq_array[pos & mask] = pos & mask;
      }
      for (int tries = 0; load_acquire(m.sq_head) != tail && tries < 100; tries++)
        sys_io_uring_enter(m.fd, tail - load_acquire(m.sq_head), 0, 0, nullptr, 0);
    }
  }
  store_relaxed(&rs->intent_active, 0u);
}

static void prep_self_wake(io_uring_sqe* sqe, int fd, uint64_t ud) {
  memset(sqe, 0, sizeof(*sqe));
  sqe->opcode = IORING_OP_MSG_RING;
  sqe->fd = fd;
  sqe->addr = 0;    // IORING_MSG_DATA: post a CQE
  sqe->len = 0;     // its res
  sqe->off = ud;    // its user_data: the chain's last op
  // No IOSQE_CQE_SKIP_SUCCESS: one SQE with it sets the ring's drain_disabled for good,
  // and every later IOSQE_IO_DRAIN on that ring (any process's drain or barrier) fails
  // with -EOPNOTSUPP (io_init_req in io_uring/io_uring.c). The message's own CQE lands
  // in the shared CQ with kSelfWakeUserData; reapers skip it (is_internal_user_data).
  sqe->flags = 0;
  sqe->user_data = kSelfWakeUserData;
}

int ring_submit(Segment& seg, uint32_t ring_index, const SqeRequest* reqs, uint32_t n, int64_t lock_timeout_ns,
                bool inline_reap, const SubmitWake* sw, bool shutdown_exempt) {
  RingShared* rs = &seg.hdr->rings[ring_index];
  RingMap& m = seg.rings[ring_index];
  WakeSet wake;
  LockResult lr = robust_lock_acquire(&rs->submit_lock, lock_timeout_ns);
  if (lr == LockResult::TimedOut) return -ETIMEDOUT;
  if (lr == LockResult::Error) return -ENOTRECOVERABLE;
  if (lr == LockResult::AcquiredOwnerDied) repair_submission(seg, ring_index, wake);
  if (!segment_accepts_io(seg, shutdown_exempt)) {
    robust_lock_release(&rs->submit_lock);
    ring_doorbells(seg, wake);
    return -ESHUTDOWN;
  }
  // Sync requests: the files this batch writes, marked before the kernel can see it.
  note_submitted_writes(seg, reqs, n);
  bool sqpoll = rs->setup_flags & IORING_SETUP_SQPOLL;
  uint32_t entries = rs->sq_entries;
  uint32_t mask = *m.sq_mask;
  uint32_t head = load_acquire(m.sq_head);  // pairs with the kernel's release of sq head
  uint32_t tail = load_relaxed(m.sq_tail);  // only submit_lock holders write it
  if (tail - head > entries || entries - (tail - head) < n) {
    robust_lock_release(&rs->submit_lock);
    ring_doorbells(seg, wake);
    return -EAGAIN;  // SQPOLL has not consumed yet: the caller retries later
  }
  bool faults = load_relaxed(&seg.hdr->faults.enabled);
  // Self-wakes follow the chains that asked for one, room permitting (never with
  // injected faults, which re-link chains, nor under SQPOLL).
  if (sw && sw->linked) for (uint32_t i = 0; i < n; i++) sw->linked[i] = 0;
  uint32_t n_wakes = 0;
  if (sw && sw->fd >= 0 && sw->after && !faults && !sqpoll)
    for (uint32_t i = 0; i < n; i++) n_wakes += sw->after[i] ? 1 : 0;
  if (entries - (tail - head) < n + n_wakes) n_wakes = 0;
  // Injected faults complete their ops here; the rest is submitted (test hooks only).
  const uint32_t n_all = n;
  std::vector<SqeRequest> kept;
  std::vector<uint32_t> delays;  // per kept op: injected delay (a linked TIMEOUT in front)
  uint32_t n_delays = 0;
  if (faults) {
    std::vector<uint8_t> skip_store(n);
    bool* skip = reinterpret_cast<bool*>(skip_store.data());
    std::vector<uint32_t> delay_in(n);
    apply_faults(seg, reqs, n, skip, delay_in.data(), wake);
    for (uint32_t i = 0; i < n; i++) {
      if (skip[i]) continue;
      SqeRequest q = reqs[i];
      // Its chain successor completed already: do not link into an unrelated SQE.
      if (i + 1 < n && skip[i + 1]) q.link_flags &= ~(LF_LINK | LF_HARDLINK);
      kept.push_back(q);
      // SQPOLL reads the timespec later, from the ring creator's memory: no delays there.
      uint32_t d = sqpoll ? 0 : delay_in[i];
      delays.push_back(d);
      if (d) n_delays++;
    }
    if (kept.empty()) {
      robust_lock_release(&rs->submit_lock);
      ring_doorbells(seg, wake);
      return (int)n_all;
    }
    reqs = kept.data();
    n = (uint32_t)kept.size();
    if (entries - (tail - head) < n + n_delays) {
      // Faults already fired for this batch; its ops complete as if the ring refused them.
      robust_lock_release(&rs->submit_lock);
      for (uint32_t i = 0; i < n; i++) {
        handle_mark_submitted(seg.handles, reqs[i].handle_index);
        deliver_completion(seg, user_data_of(reqs[i].handle_index, reqs[i].handle_gen), -EAGAIN, ~0u, rs, wake);
      }
      ring_doorbells(seg, wake);
      return (int)n_all;
    }
  }
  // SQE position -> request (or -1: an injected delay's TIMEOUT, a self-wake). The
  // timespecs are read by the kernel at submission, inside our own io_uring_enter below.
  std::vector<int32_t> sqe_req;  // allocated only with self-wakes or delays, below
  std::vector<__kernel_timespec> delay_ts(n_delays);
  const bool mapped = n_delays || n_wakes;
  const uint32_t n_sqes = n + n_delays + n_wakes;
  // The map is only read on a hard enter failure: a small stack array covers the usual batch.
  int32_t sqe_req_small[64];
  int32_t* sqe_map = sqe_req_small;
  uint32_t sqe_mapped = 0;
  if (mapped && n_sqes > 64) {
    sqe_req.resize(n_sqes);
    sqe_map = sqe_req.data();
  }
  store_relaxed(&rs->intent_tail, tail);
  store_relaxed(&rs->intent_count, n_sqes);
  store_relaxed(&rs->intent_prepared, 0u);
  store_release(&rs->intent_active, 1u);
  for (uint32_t i = 0, pos = 0, d = 0; i < n; i++) {
    if (n_delays && delays[i]) {
      uint32_t idx = (tail + pos) & mask;
      io_uring_sqe* t = &m.sqes[idx];
      memset(t, 0, sizeof(*t));
      delay_ts[d].tv_sec = delays[i] / 1000000;
      delay_ts[d].tv_nsec = (long long)(delays[i] % 1000000) * 1000;
      t->opcode = IORING_OP_TIMEOUT;
      t->fd = -1;
      t->addr = (uint64_t)(uintptr_t)&delay_ts[d++];
      t->len = 1;
      // Hard link: the op runs when the timer fires (-ETIME) and not before.
      t->flags = IOSQE_IO_HARDLINK | ((reqs[i].link_flags & LF_DRAIN) ? IOSQE_IO_DRAIN : 0);
      t->user_data = kDelayUserData;
      m.sq_array[idx] = idx;
      sqe_map[sqe_mapped++] = -1;
      store_release(&rs->intent_prepared, ++pos);
      SqeRequest q = reqs[i];
      q.link_flags &= ~LF_DRAIN;  // moved to the head of the pair
      kept[i] = q;
    }
    uint32_t idx = (tail + pos) & mask;
    bool self_wake = n_wakes && sw->after[i];
    prep_sqe(&m.sqes[idx], reqs[i]);
    if (self_wake) m.sqes[idx].flags |= IOSQE_IO_HARDLINK;  // the wake follows whatever the result
    m.sq_array[idx] = idx;
    if (mapped) sqe_map[sqe_mapped++] = (int32_t)i;
    // Counted in the intent before its handle becomes SUBMITTED: a holder killed between
    // the two leaves a RESERVED handle behind a counted SQE (repair_submission skips it,
    // slot cleanup frees it and ends any pool claim it carried). The other order left a
    // SUBMITTED handle behind an SQE the repair could not know of: no CQE would ever come
    // for it, and its pool read stayed in progress for good.
    store_release(&rs->intent_prepared, ++pos);
    kill_point(&seg.hdr->faults, KP_SQE_PREPARED);
    handle_mark_submitted(seg.handles, reqs[i].handle_index);
    if (i == 0) kill_point(&seg.hdr->faults, KP_SQES_RESERVED);
    if (self_wake) {
      uint32_t widx = (tail + pos) & mask;
      prep_self_wake(&m.sqes[widx], sw->fd, user_data_of(reqs[i].handle_index, reqs[i].handle_gen));
      m.sq_array[widx] = widx;
      sqe_map[sqe_mapped++] = -1;
      store_release(&rs->intent_prepared, ++pos);
      if (sw->linked) sw->linked[i] = 1;
    }
  }
  // Publish: SQE stores happen-before the kernel's acquire load of the tail.
  store_release(m.sq_tail, tail + n_sqes);
  stat_add_owned(&rs->stat_sqes, (uint64_t)n_sqes);
  kill_point(&seg.hdr->faults, KP_SQES_PUBLISHED);
  int result = (int)n_all;
  if (sqpoll) {
    if (load_acquire(m.sq_flags) & IORING_SQ_NEED_WAKEUP)
      sys_io_uring_enter(m.fd, 0, 0, IORING_ENTER_SQ_WAKEUP, nullptr, 0);
  } else {
    // Enter until the kernel's head reaches our tail: progress is measured on the ring,
    // not by adding up return values.
    uint32_t target = tail + n_sqes;
    // Already set (nobody demands reaping): nothing to toggle.
    bool quiet = inline_reap && m.efd >= 0 && m.cq_flags && !(load_acquire(m.cq_flags) & IORING_CQ_EVENTFD_DISABLED);
    if (quiet) __atomic_fetch_or(m.cq_flags, (uint32_t)IORING_CQ_EVENTFD_DISABLED, __ATOMIC_SEQ_CST);
    int tries = 0;
    const bool registered = sw && sw->registered_ring >= 0;
    const int enter_fd = registered ? sw->registered_ring : m.fd;
    const unsigned enter_flags = registered ? IORING_ENTER_REGISTERED_RING : 0;
    for (;;) {
      uint32_t head_now = load_acquire(m.sq_head);
      if (head_now == target) break;
      int rc = sys_io_uring_enter(enter_fd, target - head_now, 0, enter_flags, nullptr, 0);
      stat_add_owned(&rs->stat_enters, (uint64_t)1);
      if (rc > 0) continue;
      if ((rc == -EINTR || rc == -EAGAIN || rc == -EBUSY || rc == 0) && ++tries < 1000) {
        if (rc == -EBUSY || rc == -EAGAIN) sys_io_uring_enter(m.fd, 0, 0, IORING_ENTER_GETEVENTS, nullptr, 0);
        continue;
      }
      // Hard failure: take back what the kernel did not consume so no other process
      // submits it, and complete those handles with the error (per-op results).
      uint32_t consumed = load_acquire(m.sq_head) - tail;
      if (consumed > n_sqes) consumed = n_sqes;
      // The intent follows the take-back, so a holder killed from here on leaves the
      // repair the unconsumed SQEs (tail == start) and never the consumed ones, whose
      // CQEs the kernel posts: shrink the count first (the published SQ tail still routes
      // a repair to the NOP rewrite meanwhile), then move the start, then the tail.
      store_release(&rs->intent_prepared, n_sqes - consumed);
      store_release(&rs->intent_tail, tail + consumed);
      store_release(m.sq_tail, tail + consumed);
      for (uint32_t p = consumed; p < n_sqes; p++) {
        int32_t i = mapped ? sqe_map[p] : (int32_t)p;
        if (i < 0) continue;  // an injected delay's TIMEOUT or a self-wake: no handle
        deliver_completion(seg, user_data_of(reqs[i].handle_index, reqs[i].handle_gen), rc < 0 ? rc : -EIO, ~0u,
                           rs, wake);
      }
      break;
    }
    // Give the flag back only if someone demands reaping now (reaper.h); otherwise it
    // stays set and watchers keep sleeping.
    if (quiet && reap_demand_present(seg))
      __atomic_fetch_and(m.cq_flags, ~(uint32_t)IORING_CQ_EVENTFD_DISABLED, __ATOMIC_SEQ_CST);
  }
  store_release(&rs->intent_active, 0u);
  robust_lock_release(&rs->submit_lock);
  ring_doorbells(seg, wake);
  return result;
}

int ring_fd_register(int ring_fd) {
  io_uring_rsrc_update u;
  memset(&u, 0, sizeof(u));
  u.offset = ~0u;  // any free index
  u.data = (uint64_t)ring_fd;
  int rc = sys_io_uring_register(ring_fd, IORING_REGISTER_RING_FDS, &u, 1);
  if (rc < 0) return rc;
  return rc == 1 ? (int)u.offset : -EINVAL;
}

void ring_fd_unregister(int ring_fd, int index) {
  if (index < 0) return;
  io_uring_rsrc_update u;
  memset(&u, 0, sizeof(u));
  u.offset = (uint32_t)index;
  // Any io_uring fd addresses the call (the registration is the thread's, not the
  // ring's); once that one is closed, the registered ring itself (Linux 6.3).
  if (ring_fd < 0 || sys_io_uring_register(ring_fd, IORING_UNREGISTER_RING_FDS, &u, 1) < 0)
    sys_io_uring_register((unsigned)index, IORING_UNREGISTER_RING_FDS | (1u << 31), &u, 1);
}

int ring_reap(Segment& seg, uint32_t ring_index, uint32_t reaper_slot, int64_t lock_timeout_ns, uint32_t quiet_slot,
              std::vector<uint32_t>* own) {
  RingShared* rs = &seg.hdr->rings[ring_index];
  RingMap& m = seg.rings[ring_index];
  LockResult lr = robust_lock_acquire(&rs->complete_lock, lock_timeout_ns);
  if (lr == LockResult::TimedOut) return -ETIMEDOUT;
  if (lr == LockResult::Error) return -ENOTRECOVERABLE;
  // A reaper that died mid-batch left the CQ head at the first CQE it had not
  // finished; CQEs it did finish are re-read and detected as stale by generation.
  if (lr == LockResult::AcquiredOwnerDied) stat_add(&rs->stat_reap_repairs, (uint64_t)1);
  WakeSet wake;
  uint32_t mask = *m.cq_mask;
  int processed = 0;
  for (;;) {
    uint32_t head = load_relaxed(m.cq_head);  // only complete_lock holders write it
    uint32_t tail = load_acquire(m.cq_tail);  // pairs with the kernel's release of cq tail
    while (head != tail) {
      io_uring_cqe* cqe = &m.cqes[head & mask];
      uint64_t ud = load_relaxed(&cqe->user_data);  // each field read exactly once
      int32_t res = load_relaxed(&cqe->res);
      if (!is_internal_user_data(ud)) {
        CompleteInfo ci = deliver_completion(seg, ud, res, reaper_slot, rs, wake);
        if (own && ci.outcome == CompleteOutcome::Delivered && ci.owner == quiet_slot) own->push_back((uint32_t)ud);
        processed++;
        kill_point(&seg.hdr->faults, KP_CQE_DELIVERED);
      }
      head++;
      store_release(m.cq_head, head);  // release: the CQE slot may be reused by the kernel
    }
    if (load_acquire(m.sq_flags) & IORING_SQ_CQ_OVERFLOW) {
      // NODROP kept completions in the kernel's overflow list: flush them into the CQ.
      stat_add(&rs->stat_overflow_flushes, (uint64_t)1);
      sys_io_uring_enter(m.fd, 0, 0, IORING_ENTER_GETEVENTS, nullptr, 0);
      continue;
    }
    break;
  }
  stat_add_owned(&rs->stat_cqes, (uint64_t)processed);
  robust_lock_release(&rs->complete_lock);
  // A CQE posted after our last look, whose poster found the lock taken (an inline
  // reaper's trylock), would wait for the next event: look again after unlocking.
  if (ring_cq_pending(m)) {
    LockResult again = robust_lock_acquire(&rs->complete_lock, 0);
    if (again == LockResult::Acquired || again == LockResult::AcquiredOwnerDied) {
      for (;;) {
        uint32_t head = load_relaxed(m.cq_head);
        uint32_t tail = load_acquire(m.cq_tail);
        if (head == tail) break;
        while (head != tail) {
          io_uring_cqe* cqe = &m.cqes[head & mask];
          uint64_t ud = load_relaxed(&cqe->user_data);
          int32_t res = load_relaxed(&cqe->res);
          if (!is_internal_user_data(ud)) {
            CompleteInfo ci = deliver_completion(seg, ud, res, reaper_slot, rs, wake);
            if (own && ci.outcome == CompleteOutcome::Delivered && ci.owner == quiet_slot) own->push_back((uint32_t)ud);
            processed++;
          }
          head++;
          store_release(m.cq_head, head);
        }
      }
      robust_lock_release(&rs->complete_lock);
    }
  }
  if (reaper_slot < seg.hdr->max_slots && processed) {
    ProcSlot* me = &seg.slots[reaper_slot];
    stat_add(&me->stat_reaped, (uint64_t)processed);
  }
  if (processed && quiet_slot == ~0u) stat_add(&rs->stat_watcher_reaps, (uint64_t)processed);
  wake.erase(quiet_slot);
  ring_doorbells(seg, wake);
  return processed;
}

int ring_cancel(Segment& seg, uint32_t ring_index, const uint64_t* user_data, uint32_t n, int64_t lock_timeout_ns) {
  RingShared* rs = &seg.hdr->rings[ring_index];
  RingMap& m = seg.rings[ring_index];
  WakeSet wake;
  uint32_t done = 0;
  while (done < n) {
    LockResult lr = robust_lock_acquire(&rs->submit_lock, lock_timeout_ns);
    if (lr == LockResult::TimedOut || lr == LockResult::Error) return -ETIMEDOUT;
    if (lr == LockResult::AcquiredOwnerDied) repair_submission(seg, ring_index, wake);
    uint32_t head = load_acquire(m.sq_head), tail = load_relaxed(m.sq_tail);
    uint32_t room = tail - head <= rs->sq_entries ? rs->sq_entries - (tail - head) : 0;
    uint32_t k = n - done < room ? n - done : room;
    for (uint32_t i = 0; i < k; i++) {
      uint32_t idx = (tail + i) & *m.sq_mask;
      io_uring_sqe* sqe = &m.sqes[idx];
      memset(sqe, 0, sizeof(*sqe));
      sqe->opcode = IORING_OP_ASYNC_CANCEL;
      sqe->addr = user_data[done + i];  // the request to cancel, matched ring-wide
      sqe->user_data = kCancelUserData;
      m.sq_array[idx] = idx;
    }
    store_release(m.sq_tail, tail + k);
    if (k && !(rs->setup_flags & IORING_SETUP_SQPOLL)) sys_io_uring_enter(m.fd, k, 0, 0, nullptr, 0);
    else if (k) sys_io_uring_enter(m.fd, 0, 0, IORING_ENTER_SQ_WAKEUP, nullptr, 0);
    robust_lock_release(&rs->submit_lock);
    done += k;
    if (!k) usleep(1000);
  }
  ring_doorbells(seg, wake);
  return (int)n;
}

int ring_wake_watchers(Segment& seg, uint32_t ring_index) {
  RingShared* rs = &seg.hdr->rings[ring_index];
  RingMap& m = seg.rings[ring_index];
  LockResult lr = robust_lock_acquire(&rs->submit_lock, 500000000);
  if (lr == LockResult::TimedOut || lr == LockResult::Error) return -ETIMEDOUT;
  WakeSet wake;
  if (lr == LockResult::AcquiredOwnerDied) repair_submission(seg, ring_index, wake);
  uint32_t head = load_acquire(m.sq_head), tail = load_relaxed(m.sq_tail);
  int rc = -EAGAIN;
  if (tail - head < rs->sq_entries) {
    uint32_t idx = tail & *m.sq_mask;
    memset(&m.sqes[idx], 0, sizeof(io_uring_sqe));
    m.sqes[idx].opcode = IORING_OP_NOP;
    m.sqes[idx].user_data = kWakeUserData;
    m.sq_array[idx] = idx;
    store_release(m.sq_tail, tail + 1);
    if (rs->setup_flags & IORING_SETUP_SQPOLL)
      rc = sys_io_uring_enter(m.fd, 0, 0, IORING_ENTER_SQ_WAKEUP, nullptr, 0);
    else
      rc = sys_io_uring_enter(m.fd, 1, 0, 0, nullptr, 0);
  }
  robust_lock_release(&rs->submit_lock);
  ring_doorbells(seg, wake);
  return rc;
}

}  // namespace rm
