#include "thread_backend.h"

#include <cerrno>
#include <condition_variable>
#include <deque>
#include <fcntl.h>
#include <linux/openat2.h>
#include <mutex>
#include <set>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <vector>
#include <cstring>

#include "atomics.h"
#include "segment.h"

namespace rm {

struct Chain {
  std::vector<SqeRequest> reqs;
  uint64_t seq = 0;
  bool counted = false;   // included in tb_inflight
  bool drain = false;     // first op carries IOSQE_IO_DRAIN semantics
  bool drain_owner = false;  // this chain is the pending drain (tb_drain_seq)
  uint32_t issuer = 0;
};

struct ThreadBackend {
  Segment* seg;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Chain> queue;
  std::vector<std::thread> threads;
  bool stopping = false;
};

static uint64_t* slot_counted(Segment* seg, uint32_t slot) { return &seg->slots[slot].tb_counted; }
static uint64_t* slot_owns_drain(Segment* seg, uint32_t slot) { return &seg->slots[slot].tb_owns_drain; }

// Called with tb_lock held.
static void become_drain_owner(Segment* seg, Chain& c) {
  store_relaxed(&seg->hdr->tb_drain_active, 1u);
  seg->hdr->tb_drain_seq = c.seq;
  store_relaxed(slot_owns_drain(seg, c.issuer), (uint64_t)1);
  c.drain_owner = true;
}

static int local_fd(Segment* seg, uint32_t file_slot) {
  if (file_slot >= seg->hdr->max_files) return -EBADF;
  FileEntry* e = &seg->files[file_slot];
  if (load_acquire(&e->state) != F_OPEN) return -EBADF;
  uint32_t gen = load_relaxed(&e->generation);
  std::lock_guard<std::mutex> g(seg->fd_mu);
  if (seg->local_fds[file_slot] >= 0 && seg->local_fd_gen[file_slot] == gen) return seg->local_fds[file_slot];
  if (seg->local_fds[file_slot] >= 0) close(seg->local_fds[file_slot]);
  seg->local_fds[file_slot] = -1;
  char path[kMaxRelPath];
  memcpy(path, e->path, kMaxRelPath);
  path[kMaxRelPath - 1] = 0;  // copied once, then validated: another process wrote it
  struct open_how how = {};
  how.flags = (load_relaxed(&e->open_flags) & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = (int)syscall(SYS_openat2, seg->data_dir_fd, path, &how, sizeof(how));
  if (fd < 0) return -errno;
  seg->local_fds[file_slot] = fd;
  seg->local_fd_gen[file_slot] = gen;
  return fd;
}

static int32_t run_one(Segment* seg, const SqeRequest& r) {
  if (r.op == OP_NOP) return 0;
  int fd = local_fd(seg, r.file_slot);
  if (fd < 0) return fd;
  ssize_t rc;
  switch (r.op) {
    case OP_READ:
      rc = pread(fd, (void*)(uintptr_t)r.addr, r.len, (off_t)r.offset);
      if (rc < 0 && errno == ESPIPE) rc = read(fd, (void*)(uintptr_t)r.addr, r.len);  // pipes, like io_uring
      break;
    case OP_WRITE:
      rc = pwrite(fd, (const void*)(uintptr_t)r.addr, r.len, (off_t)r.offset);
      if (rc < 0 && errno == ESPIPE) rc = write(fd, (const void*)(uintptr_t)r.addr, r.len);
      break;
    case OP_FSYNC: rc = fsync(fd); break;
    case OP_FDATASYNC: rc = fdatasync(fd); break;
    default: return -EINVAL;
  }
  return rc < 0 ? -errno : (int32_t)rc;
}

// Gate: a chain submitted while a drain is pending waits for it (IOSQE_IO_DRAIN:
// later requests do not start before the drained one completes).
static bool pass_gate(ThreadBackend* tb, Chain& c) {
  SegmentHeader* h = tb->seg->hdr;
  for (;;) {
    LockResult lr = robust_lock_acquire(&h->tb_lock, 1000000000);
    if (lr == LockResult::TimedOut || lr == LockResult::Error) { if (tb->stopping) return false; continue; }
    bool active = load_relaxed(&h->tb_drain_active);
    if (!active || c.seq <= h->tb_drain_seq) {
      if (c.drain && !c.drain_owner && !active) become_drain_owner(tb->seg, c);
      if (!c.counted) {
        fetch_add(&h->tb_inflight, 1u);
        fetch_add(slot_counted(tb->seg, c.issuer), (uint64_t)1);
        c.counted = true;
      }
      robust_lock_release(&h->tb_lock);
      return true;
    }
    robust_lock_release(&h->tb_lock);
    futex_wait(&h->tb_drain_active, 1u, 50000000);
    if (tb->stopping) return false;
  }
}

static void finish_chain(ThreadBackend* tb, Chain& c) {
  SegmentHeader* h = tb->seg->hdr;
  robust_lock_acquire(&h->tb_lock, 1000000000);
  if (c.counted) {
    fetch_sub(&h->tb_inflight, 1u);
    fetch_sub(slot_counted(tb->seg, c.issuer), (uint64_t)1);
  }
  if (c.drain_owner) {
    store_relaxed(&h->tb_drain_active, 0u);
    store_relaxed(slot_owns_drain(tb->seg, c.issuer), (uint64_t)0);
  }
  robust_lock_release(&h->tb_lock);
  futex_wake_all(&h->tb_inflight);
  futex_wake_all(&h->tb_drain_active);
}

static void run_chain(ThreadBackend* tb, Chain& c) {
  Segment* seg = tb->seg;
  SegmentHeader* h = seg->hdr;
  std::set<uint32_t> wake;
  if (!pass_gate(tb, c)) {
    for (auto& r : c.reqs) deliver_completion(*seg, user_data_of(r.handle_index, r.handle_gen), -ECANCELED, seg->reaper_slot, nullptr, wake);
    ring_doorbells(*seg, wake);
    return;
  }
  if (c.drain_owner) {
    // Wait until every chain counted before us has finished (we count ourselves).
    for (;;) {
      uint32_t n = load_acquire(&h->tb_inflight);
      if (n <= 1 || tb->stopping) break;
      futex_wait(&h->tb_inflight, n, 50000000);
    }
  }
  bool cancelled = false;
  for (size_t i = 0; i < c.reqs.size(); i++) {
    const SqeRequest& r = c.reqs[i];
    int32_t res;
    if (cancelled) {
      res = -ECANCELED;
    } else {
      res = run_one(seg, r);
      bool expected_len = r.op == OP_READ || r.op == OP_WRITE ? res == (int32_t)r.len : res >= 0;
      // A soft link breaks on any result other than the full request; a hard link does not.
      if (!expected_len && (r.link_flags & LF_LINK) && !(r.link_flags & LF_HARDLINK)) cancelled = true;
    }
    deliver_completion(*seg, user_data_of(r.handle_index, r.handle_gen), res, seg->reaper_slot, nullptr, wake);
  }
  finish_chain(tb, c);
  ring_doorbells(*seg, wake);
}

static void worker_main(ThreadBackend* tb) {
  for (;;) {
    Chain c;
    {
      std::unique_lock<std::mutex> lk(tb->mu);
      tb->cv.wait(lk, [&] { return tb->stopping || !tb->queue.empty(); });
      if (tb->queue.empty()) return;
      c = std::move(tb->queue.front());
      tb->queue.pop_front();
    }
    run_chain(tb, c);
  }
}

ThreadBackend* thread_backend_start(Segment* seg, int threads) {
  auto* tb = new ThreadBackend();
  tb->seg = seg;
  for (int i = 0; i < threads; i++) tb->threads.emplace_back(worker_main, tb);
  return tb;
}

void thread_backend_stop(ThreadBackend* tb) {
  {
    std::lock_guard<std::mutex> g(tb->mu);
    tb->stopping = true;  // queued chains still run: workers exit only when the queue is empty
  }
  tb->cv.notify_all();
  for (auto& t : tb->threads) t.join();
  delete tb;
}

int thread_backend_submit(ThreadBackend* tb, const SqeRequest* reqs, uint32_t n, uint32_t issuer) {
  SegmentHeader* h = tb->seg->hdr;
  for (uint32_t i = 0; i < n; i++) handle_mark_submitted(tb->seg->handles, reqs[i].handle_index);
  std::vector<Chain> chains;
  Chain cur;
  for (uint32_t i = 0; i < n; i++) {
    if (cur.reqs.empty()) cur.drain = reqs[i].link_flags & LF_DRAIN;
    cur.reqs.push_back(reqs[i]);
    if (!(reqs[i].link_flags & (LF_LINK | LF_HARDLINK)) || i == n - 1) {
      cur.issuer = issuer;
      chains.push_back(std::move(cur));
      cur = Chain{};
    }
  }
  LockResult lr = robust_lock_acquire(&h->tb_lock, 2000000000);
  if (lr == LockResult::TimedOut || lr == LockResult::Error) return -ETIMEDOUT;
  bool active = load_relaxed(&h->tb_drain_active);
  for (auto& c : chains) {
    c.seq = ++h->tb_next_seq;
    // Chains submitted while a drain is pending are counted only when they start.
    if (!active) {
      c.counted = true;
      fetch_add(&h->tb_inflight, 1u);
      fetch_add(slot_counted(tb->seg, issuer), (uint64_t)1);
    }
    if (c.drain && !active) {
      become_drain_owner(tb->seg, c);  // later chains, of this batch or any other, wait for it
      active = true;
    }
  }
  robust_lock_release(&h->tb_lock);
  {
    std::lock_guard<std::mutex> g(tb->mu);
    for (auto& c : chains) tb->queue.push_back(std::move(c));
  }
  tb->cv.notify_all();
  return (int)n;
}

uint32_t thread_backend_cancel_issuer(ThreadBackend* tb, uint32_t issuer) {
  std::vector<Chain> mine;
  {
    std::lock_guard<std::mutex> g(tb->mu);
    for (auto it = tb->queue.begin(); it != tb->queue.end();) {
      if (it->issuer == issuer) { mine.push_back(std::move(*it)); it = tb->queue.erase(it); }
      else ++it;
    }
  }
  std::set<uint32_t> wake;
  uint32_t n = 0;
  for (auto& c : mine) {
    for (auto& r : c.reqs) {
      deliver_completion(*tb->seg, user_data_of(r.handle_index, r.handle_gen), -ECANCELED, tb->seg->reaper_slot, nullptr, wake);
      n++;
    }
    finish_chain(tb, c);
  }
  ring_doorbells(*tb->seg, wake);
  return n;
}

void thread_backend_forget_slot(Segment* seg, uint32_t slot) {
  SegmentHeader* h = seg->hdr;
  LockResult lr = robust_lock_acquire(&h->tb_lock, 2000000000);
  if (lr == LockResult::TimedOut || lr == LockResult::Error) return;
  uint64_t n = load_relaxed(slot_counted(seg, slot));
  if (n) fetch_sub(&h->tb_inflight, (uint32_t)n);
  store_relaxed(slot_counted(seg, slot), (uint64_t)0);
  if (load_relaxed(slot_owns_drain(seg, slot))) {
    store_relaxed(&h->tb_drain_active, 0u);
    store_relaxed(slot_owns_drain(seg, slot), (uint64_t)0);
  }
  robust_lock_release(&h->tb_lock);
  futex_wake_all(&h->tb_inflight);
  futex_wake_all(&h->tb_drain_active);
}

}  // namespace rm
