#include "thread_backend.h"

#include <cerrno>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fcntl.h>
#include <linux/openat2.h>
#include <memory>
#include <mutex>
#include <set>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <cstdlib>

#include "atomics.h"
#include "file_table.h"
#include "io_method.h"
#include "segment.h"

namespace rm {

// The ops of one chain: up to kInline without an allocation (most chains are one op; a
// WAL commit is two to four).
struct ChainOps {
  static constexpr uint32_t kInline = 4;
  SqeRequest inline_ops[kInline];
  std::vector<SqeRequest> more;
  uint32_t n = 0;
  void push_back(const SqeRequest& r) {
    if (n < kInline) inline_ops[n] = r;
    else more.push_back(r);
    n++;
  }
  size_t size() const { return n; }
  bool empty() const { return n == 0; }
  const SqeRequest& operator[](size_t i) const { return i < kInline ? inline_ops[i] : more[i - kInline]; }
};

struct Chain {
  ChainOps reqs;
  std::vector<uint32_t> delay_us;  // injected delay per op (test hooks), usually all 0
  uint64_t seq = 0;
  bool counted = false;      // included in its issuer slot's tb_counted
  bool drain = false;        // first op carries IOSQE_IO_DRAIN semantics
  bool drain_owner = false;  // this chain is the pending drain (tb_drain_seq)
  uint32_t issuer = 0;
};

// A per-process fd for one file-table slot, shared by the pool threads using it:
// it is closed only when the last user is done, so a concurrent close or reopen
// can never make an IO land on a recycled fd number.
struct LocalFd {
  int fd;
  uint32_t gen;
  explicit LocalFd(int f, uint32_t g) : fd(f), gen(g) {}
  ~LocalFd() { if (fd >= 0) close(fd); }
};

struct ThreadBackend {
  Segment* seg;
  std::mutex mu;
  std::condition_variable cv;
  std::condition_variable exited_cv;
  std::deque<Chain> queue;
  std::vector<std::thread> threads;
  int running = 0;
  std::atomic<bool> stopping{false};
  std::mutex fd_mu;
  std::vector<std::shared_ptr<LocalFd>> fds;
  std::vector<Chain> submit_chains;  // scratch of thread_backend_submit (under tb_lock)
};

static uint64_t* slot_counted(Segment* seg, uint32_t slot) { return &seg->slots[slot].tb_counted; }
static uint64_t* slot_owns_drain(Segment* seg, uint32_t slot) { return &seg->slots[slot].tb_owns_drain; }

// Chains counted toward a drain, in all: the sum of every slot's own count. There is no
// second, global count to keep in step with it: a process SIGKILLed between updating
// the two (two separate atomics) would leave the global one off by one for good, and
// every later drain waiting (or not) on a count nobody can correct. One count per slot,
// written by its own process and zeroed by its cleanup, is exact whatever instruction
// the process dies at.
static uint64_t counted_chains(Segment* seg) {
  uint64_t n = 0;
  for (uint32_t i = 0; i < seg->hdr->max_slots; i++) n += __atomic_load_n(slot_counted(seg, i), __ATOMIC_SEQ_CST);
  return n;
}

// A counted chain finished (or a dead slot's count was dropped): wake a drain owner.
static void note_chain_finished(SegmentHeader* h) {
  __atomic_fetch_add(&h->tb_finished_seq, 1u, __ATOMIC_SEQ_CST);
}

// tb_lock guards tb_next_seq, tb_drain_seq, tb_drain_active and counting a chain.
// A holder that is SIGSTOPped stalls the pool (not the JS thread): keep retrying.
static void tb_lock(SegmentHeader* h) {
  for (;;) {
    LockResult lr = robust_lock_acquire(&h->tb_lock, 1000000000);
    if (lr == LockResult::Acquired || lr == LockResult::AcquiredOwnerDied) return;
    if (lr == LockResult::Error) usleep(1000);  // never a hot spin
  }
}

// Called with tb_lock held.
static void become_drain_owner(Segment* seg, Chain& c) {
  store_relaxed(&seg->hdr->tb_drain_active, 1u);
  store_relaxed(&seg->hdr->tb_drain_seq, c.seq);
  store_relaxed(slot_owns_drain(seg, c.issuer), (uint64_t)1);
  c.drain_owner = true;
}

static std::shared_ptr<LocalFd> local_fd(ThreadBackend* tb, uint32_t file_slot, uint32_t want_gen, int* err) {
  Segment* seg = tb->seg;
  if (file_slot >= seg->hdr->max_files) { *err = -EBADF; return nullptr; }
  FileEntry* e = &seg->files[file_slot];
  // The op names a generation: if the slot was closed and reused since, it is not our file.
  if (load_acquire(&e->state) != F_OPEN || load_relaxed(&e->generation) != want_gen) { *err = -EBADF; return nullptr; }
  std::lock_guard<std::mutex> g(tb->fd_mu);
  auto& cur = tb->fds[file_slot];
  if (cur && cur->gen == want_gen) return cur;
  // Opening a file is rare: drop the fds this process still holds for entries closed
  // elsewhere (a recycled WAL segment must not stay open here, and hold its disk space,
  // until this process happens to touch that slot again).
  for (uint32_t i = 0; i < tb->fds.size(); i++) {
    auto& f = tb->fds[i];
    if (f && i != file_slot &&
        (load_acquire(&seg->files[i].state) != F_OPEN || load_relaxed(&seg->files[i].generation) != f->gen))
      f.reset();
  }
  char path[kMaxRelPath];
  memcpy(path, e->path, kMaxRelPath);
  path[kMaxRelPath - 1] = 0;  // copied once, then used: another process wrote it
  struct open_how how = {};
  // Only the flags openFile can set survive: a scribbled entry must not reopen the path
  // with O_APPEND, O_TRUNC, O_PATH, O_TMPFILE or the like.
  uint32_t allowed = O_ACCMODE | O_DIRECT | O_DSYNC | O_SYNC;
  uint32_t flags = load_relaxed(&e->open_flags) & allowed;
  if ((flags & O_ACCMODE) == O_ACCMODE) { *err = -EBADF; return nullptr; }
  how.flags = flags | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = (int)syscall(SYS_openat2, seg->data_dir_fd, path, &how, sizeof(how));
  if (fd < 0) { *err = -errno; return nullptr; }
  // The slot may have been closed and reused while we opened its path: then this is
  // someone else's file.
  if (load_acquire(&e->state) != F_OPEN || load_relaxed(&e->generation) != want_gen) {
    close(fd);
    *err = -EBADF;
    return nullptr;
  }
  // The path must still name the entry's file: if it was renamed away, or deleted and
  // another file made under that name, an IO here would land in the wrong file.
  struct stat st;
  if (fstat(fd, &st) != 0 || (uint64_t)st.st_dev != load_relaxed(&e->dev) || (uint64_t)st.st_ino != load_relaxed(&e->ino)) {
    close(fd);
    *err = -ESTALE;
    return nullptr;
  }
  fd_skip_atime(fd);  // as the opener's fd (file_open)
  cur = std::make_shared<LocalFd>(fd, want_gen);  // the old one closes when its last user drops it
  return cur;
}

void thread_backend_adopt_fd(ThreadBackend* tb, uint32_t file_slot, uint32_t gen, int fd) {
  std::lock_guard<std::mutex> g(tb->fd_mu);
  if (file_slot < tb->fds.size()) tb->fds[file_slot] = std::make_shared<LocalFd>(fd, gen);
  else close(fd);
}

void thread_backend_forget_fd(ThreadBackend* tb, uint32_t file_slot) {
  std::lock_guard<std::mutex> g(tb->fd_mu);
  if (file_slot < tb->fds.size()) tb->fds[file_slot].reset();
}

static int32_t run_one(ThreadBackend* tb, const SqeRequest& r) {
  if (r.op == OP_NOP) return 0;
  int err = 0;
  std::shared_ptr<LocalFd> lf = local_fd(tb, r.file_slot, r.file_gen, &err);
  if (!lf) return err;
  int fd = lf->fd;
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
  // A chain counted at submit, with no drain pending: nothing to decide under the lock.
  // (A drain that becomes pending right after this look counts us among the chains it
  // waits for; the locked path below has the same window.)
  if (c.counted && !c.drain && !__atomic_load_n(&h->tb_drain_active, __ATOMIC_SEQ_CST)) return true;
  for (;;) {
    tb_lock(h);
    bool active = load_relaxed(&h->tb_drain_active);
    if (!active || c.seq <= load_relaxed(&h->tb_drain_seq)) {
      if (c.drain && !c.drain_owner && !active) become_drain_owner(tb->seg, c);
      if (!c.counted) {
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
  if (!c.drain_owner) {
    // Uncounting is one atomic decrement of our slot's count; only a pending drain
    // (whose owner waits for the counts to fall) needs the wake word moved and a wake, so
    // a chain with no drain pending touches no shared word but its slot's. The owner sets
    // tb_drain_active before it reads the wake word and then the counts, we decrement
    // before we read tb_drain_active (all seq_cst): if it read our count before the
    // decrement, we see the flag and move the word it waits on. A dead process's count
    // is dropped by forget_slot, never while its pool runs.
    if (c.counted) __atomic_fetch_sub(slot_counted(tb->seg, c.issuer), (uint64_t)1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&h->tb_drain_active, __ATOMIC_SEQ_CST)) {
      note_chain_finished(h);
      futex_wake_all(&h->tb_finished_seq);
      futex_wake_all(&h->tb_drain_active);
    }
    return;
  }
  tb_lock(h);
  if (c.counted) fetch_sub(slot_counted(tb->seg, c.issuer), (uint64_t)1);
  if (c.drain_owner) {
    store_relaxed(&h->tb_drain_active, 0u);
    store_relaxed(slot_owns_drain(tb->seg, c.issuer), (uint64_t)0);
  }
  robust_lock_release(&h->tb_lock);
  note_chain_finished(h);
  futex_wake_all(&h->tb_finished_seq);
  futex_wake_all(&h->tb_drain_active);
}

static void cancel_chain(ThreadBackend* tb, Chain& c) {
  WakeSet wake;
  for (size_t i = 0; i < c.reqs.size(); i++) {
    const SqeRequest& r = c.reqs[i];
    deliver_completion(*tb->seg, user_data_of(r.handle_index, r.handle_gen), -ECANCELED,
                       load_relaxed(&tb->seg->reaper_slot), nullptr, wake);
  }
  ring_doorbells(*tb->seg, wake);
}

static void run_chain(ThreadBackend* tb, Chain& c) {
  Segment* seg = tb->seg;
  SegmentHeader* h = seg->hdr;
  if (!pass_gate(tb, c)) {
    cancel_chain(tb, c);
    finish_chain(tb, c);
    return;
  }
  if (c.drain_owner) {
    // Wait until every chain counted before us has finished (we count ourselves).
    for (;;) {
      // The wake word before the counts: a finish after this load moves it, and the
      // futex wait below returns at once.
      uint32_t seen = __atomic_load_n(&h->tb_finished_seq, __ATOMIC_SEQ_CST);
      if (counted_chains(seg) <= 1) break;
      if (tb->stopping) {  // never run a drain we could not honour
        cancel_chain(tb, c);
        finish_chain(tb, c);
        return;
      }
      futex_wait(&h->tb_finished_seq, seen, 50000000);
    }
  }
  WakeSet wake;
  bool cancelled = false;
  for (size_t i = 0; i < c.reqs.size(); i++) {
    const SqeRequest& r = c.reqs[i];
    int32_t res;
    if (cancelled) {
      res = -ECANCELED;
    } else {
      // An injected delay: the op runs late (in 1 ms steps, so stop stays bounded).
      for (uint32_t left = i < c.delay_us.size() ? c.delay_us[i] : 0; left > 0 && !tb->stopping;) {
        uint32_t step = left < 1000 ? left : 1000;
        usleep(step);
        left -= step;
      }
      res = run_one(tb, r);
      bool full = r.op == OP_READ || r.op == OP_WRITE ? res == (int32_t)r.len : res >= 0;
      // A soft link breaks on any result other than the full request; a hard link does not.
      if (!full && (r.link_flags & LF_LINK) && !(r.link_flags & LF_HARDLINK)) cancelled = true;
    }
    deliver_completion(*seg, user_data_of(r.handle_index, r.handle_gen), res, load_relaxed(&seg->reaper_slot), nullptr, wake);
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
      if (tb->queue.empty()) {
        tb->running--;
        tb->exited_cv.notify_all();
        return;
      }
      c = std::move(tb->queue.front());
      tb->queue.pop_front();
    }
    run_chain(tb, c);
  }
}

ThreadBackend* thread_backend_start(Segment* seg, int threads) {
  auto* tb = new ThreadBackend();
  tb->seg = seg;
  tb->fds.resize(seg->hdr->max_files);
  tb->running = threads;
  for (int i = 0; i < threads; i++) tb->threads.emplace_back(worker_main, tb);
  return tb;
}

bool thread_backend_stop(ThreadBackend* tb, int64_t timeout_ns) {
  std::deque<Chain> left;
  {
    std::lock_guard<std::mutex> g(tb->mu);
    tb->stopping = true;
    left.swap(tb->queue);  // not started: cancelled, never run after the caller detaches
  }
  tb->cv.notify_all();
  for (auto& c : left) {
    cancel_chain(tb, c);
    finish_chain(tb, c);
  }
  bool all_exited;
  {
    std::unique_lock<std::mutex> lk(tb->mu);
    all_exited = tb->exited_cv.wait_for(lk, std::chrono::nanoseconds(timeout_ns), [&] { return tb->running == 0; });
  }
  if (!all_exited) {
    // A pool thread is stuck in a blocking syscall (a pipe read nobody feeds). Joining
    // would hang the caller: let it go, and keep everything it may still touch alive.
    for (auto& t : tb->threads) t.detach();
    return false;
  }
  for (auto& t : tb->threads) t.join();
  delete tb;
  return true;
}

int thread_backend_submit(ThreadBackend* tb, const SqeRequest* reqs_in, uint32_t n_in, uint32_t issuer) {
  SegmentHeader* h = tb->seg->hdr;
  LockResult lr = robust_lock_acquire(&h->tb_lock, 2000000000);
  if (lr == LockResult::TimedOut || lr == LockResult::Error) return -ETIMEDOUT;  // handles still RESERVED
  // Sync requests: the files this batch writes, marked before a pool thread can run it.
  note_submitted_writes(*tb->seg, reqs_in, n_in);
  // Injected faults complete their ops now (test hooks only); the rest is queued.
  std::vector<SqeRequest> kept;
  std::vector<uint32_t> delays;  // injected delay per kept op (test hooks), empty if none
  const SqeRequest* reqs = reqs_in;
  uint32_t n = n_in;
  if (load_relaxed(&h->faults.enabled)) {
    WakeSet wake;
    std::vector<uint8_t> skip_store(n_in);
    bool* skip = reinterpret_cast<bool*>(skip_store.data());
    std::vector<uint32_t> delay_in(n_in);
    apply_faults(*tb->seg, reqs_in, n_in, skip, delay_in.data(), wake);
    kept.clear();
    delays.clear();
    for (uint32_t i = 0; i < n_in; i++) {
      if (skip[i]) continue;
      SqeRequest q = reqs_in[i];
      if (i + 1 < n_in && skip[i + 1]) q.link_flags &= ~(LF_LINK | LF_HARDLINK);
      kept.push_back(q);
      delays.push_back(delay_in[i]);
    }
    ring_doorbells(*tb->seg, wake);
    reqs = kept.data();
    n = (uint32_t)kept.size();
  }
  std::vector<Chain>& chains = tb->submit_chains;  // reused; submits are serialized by tb_lock
  chains.clear();
  Chain cur;
  for (uint32_t i = 0; i < n; i++) {
    if (cur.reqs.empty()) cur.drain = reqs[i].link_flags & LF_DRAIN;
    cur.reqs.push_back(reqs[i]);
    if (!delays.empty()) cur.delay_us.push_back(delays[i]);  // no allocation unless faults are on
    if (!(reqs[i].link_flags & (LF_LINK | LF_HARDLINK)) || i == n - 1) {
      cur.issuer = issuer;
      chains.push_back(std::move(cur));
      cur = Chain{};
    }
  }
  for (uint32_t i = 0; i < n; i++) handle_mark_submitted(tb->seg->handles, reqs[i].handle_index);
  bool active = load_relaxed(&h->tb_drain_active);
  for (auto& c : chains) {
    c.seq = load_relaxed(&h->tb_next_seq) + 1;
    store_relaxed(&h->tb_next_seq, c.seq);
    // Chains submitted while a drain is pending are counted only when they start.
    if (!active) {
      c.counted = true;
      fetch_add(slot_counted(tb->seg, issuer), (uint64_t)1);
      kill_point(&h->faults, KP_TB_CHAIN_COUNTED);
    }
    if (c.drain && !active) {
      become_drain_owner(tb->seg, c);  // later chains, of this batch or any other, wait for it
      active = true;
    }
  }
  kill_point(&h->faults, KP_SQES_RESERVED);  // counted in tb_counted, not queued
  {
    // Queued while tb_lock is held, so this process's queue is in sequence order: a
    // gated (later) chain can never sit in front of an earlier one it would wait for.
    std::lock_guard<std::mutex> g(tb->mu);
    for (auto& c : chains) tb->queue.push_back(std::move(c));
  }
  kill_point(&h->faults, KP_SQES_PUBLISHED);
  robust_lock_release(&h->tb_lock);
  // One pool thread per chain, not all of them for each.
  if (chains.size() == 1) tb->cv.notify_one();
  else if (!chains.empty()) tb->cv.notify_all();
  return (int)n_in;
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
  uint32_t n = 0;
  for (auto& c : mine) {
    n += (uint32_t)c.reqs.size();
    cancel_chain(tb, c);
    finish_chain(tb, c);
  }
  return n;
}

void thread_backend_forget_slot(Segment* seg, uint32_t slot) {
  SegmentHeader* h = seg->hdr;
  LockResult lr = robust_lock_acquire(&h->tb_lock, 2000000000);
  if (lr == LockResult::TimedOut || lr == LockResult::Error) return;
  __atomic_store_n(slot_counted(seg, slot), (uint64_t)0, __ATOMIC_SEQ_CST);
  if (load_relaxed(slot_owns_drain(seg, slot))) {
    store_relaxed(&h->tb_drain_active, 0u);
    store_relaxed(slot_owns_drain(seg, slot), (uint64_t)0);
  }
  robust_lock_release(&h->tb_lock);
  note_chain_finished(h);
  futex_wake_all(&h->tb_finished_seq);
  futex_wake_all(&h->tb_drain_active);
}

}  // namespace rm

// ---- the threads IO method (io_method.h) ---------------------------------------------

namespace rm {
namespace {

void threads_process_start(Segment* seg, SlotKind, uint32_t, bool) {
  const char* n = getenv("RINGMASTER_THREADS");
  int threads = n ? atoi(n) : 4;
  seg->pool = thread_backend_start(seg, threads > 0 && threads <= 64 ? threads : 4);
}

bool threads_process_stop(Segment* seg) {
  bool gone = seg->pool ? thread_backend_stop(seg->pool, 2000000000ll) : true;
  seg->pool = nullptr;
  return gone;
}

uint32_t threads_max_batch(Segment& seg, uint32_t) { return seg.hdr->ring_entries; }

// The run state was checked by the caller (flush_staged): the pool has no lock-held
// re-check to make, its queue is this process's own.
int threads_submit(Segment& seg, uint32_t, const SqeRequest* reqs, uint32_t n, uint32_t issuer, const SubmitWake* wake,
                   bool /*shutdown_exempt*/) {
  if (wake && wake->linked) for (uint32_t i = 0; i < n; i++) wake->linked[i] = 0;
  return thread_backend_submit(seg.pool, reqs, n, issuer);
}

void threads_cancel_issuer(Segment& seg, uint32_t issuer, const std::vector<OrphanRef>&) {
  if (seg.pool) thread_backend_cancel_issuer(seg.pool, issuer);
}

void threads_slot_cleaned(Segment& seg, uint32_t slot, bool process_died, const std::vector<OrphanRef>&) {
  // A dead process's pool died with it: forget its drain accounting. A live detach's
  // chains still finish (or were cancelled) through finish_chain, which accounts them.
  if (process_died) thread_backend_forget_slot(&seg, slot);
}

int threads_install_file(Segment& seg, uint32_t file_slot, uint32_t gen, int fd) {
  thread_backend_adopt_fd(seg.pool, file_slot, gen, fd);
  return 0;
}

void threads_remove_file(Segment& seg, uint32_t file_slot) {
  thread_backend_forget_fd(seg.pool, file_slot);  // other processes drop theirs on next use (generation)
}

}  // namespace

const IoMethodOps kThreadMethod = {
    "threads",
    /*foreign_reaping=*/false,
    threads_process_start,
    threads_process_stop,
    threads_max_batch,
    threads_submit,
    threads_cancel_issuer,
    /*in_flight_dies_with_process=*/true,
    threads_slot_cleaned,
    threads_install_file,
    threads_remove_file,
};

}  // namespace rm
