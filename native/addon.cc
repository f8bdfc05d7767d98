// N-API surface. A Session is one attached JS environment (the postmaster's main
// thread, a forked worker, or a worker thread): it owns a process slot, a doorbell
// thread that turns completed handles into promise resolutions on its JS thread,
// and the list of its in-flight handles. The Segment (mapping, rings, watcher
// threads that reap) is per process and shared by every Session in the process.
#include <napi.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <linux/openat2.h>
#include <map>
#include <sys/stat.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <memory>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "atomics.h"
#include "buffer_pool.h"
#include "modules.h"
#include "segment.h"
#include "shared_wait.h"
#include "thread_backend.h"

using namespace rm;

namespace {

constexpr int64_t kLockTimeoutNs = 2000000000;  // a SIGSTOPped holder: error, not a hang
constexpr uint32_t kOpFields = 8;
constexpr int32_t kPending = INT32_MIN;  // in submit()'s result: not completed yet

std::mutex g_mu;
std::map<uint64_t, Segment*> g_segments;  // every segment this process has mapped

// RINGMASTER_TRACE=1: lifecycle events on stderr (debugging aid, off by default).
bool trace_enabled() {
  static const bool on = [] { const char* v = getenv("RINGMASTER_TRACE"); return v && *v == '1'; }();
  return on;
}
#define RM_TRACE(...) do { if (trace_enabled()) { fprintf(stderr, "[ringmaster %d] ", (int)getpid()); fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

bool test_hooks_enabled() {
  const char* v = getenv("RINGMASTER_TEST_HOOKS");
  return v && strcmp(v, "1") == 0;
}

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& msg, int err = 0) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  if (err) e.Set("errno", Napi::Number::New(env, -std::abs(err)));
  return e;
}

Napi::Error range_error(Napi::Env env, const std::string& msg) {
  Napi::Error e = Napi::RangeError::New(env, msg);
  e.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  return e;
}

std::string errno_code(int e) {
  e = std::abs(e);
  switch (e) {
    case EAGAIN: return "EAGAIN";
    case EBADF: return "EBADF";
    case ECANCELED: return "ECANCELED";
    case EINVAL: return "EINVAL";
    case EIO: return "EIO";
    case ENOENT: return "ENOENT";
    case ENOMEM: return "ENOMEM";
    case ENOSPC: return "ENOSPC";
    case ENOSYS: return "ENOSYS";
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case EMFILE: return "EMFILE";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ESHUTDOWN: return "ESHUTDOWN";
    case EISDIR: return "EISDIR";
    case ENOTDIR: return "ENOTDIR";
    case ELOOP: return "ELOOP";
    case EFAULT: return "EFAULT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case EINTR: return "EINTR";
    case EPROTO: return "EPROTO";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return "E" + std::to_string(e);
  }
}

void start_watchers(Segment* seg, const std::vector<uint32_t>& rings);

// Wake this process's watcher threads (they then see `stopping`): the local stop
// eventfd for eventfd watchers, a NOP on the ring for GETEVENTS watchers.
void wake_local_watchers(Segment* seg) {
  if (seg->stop_efd >= 0) {
    uint64_t one = 1;
    ssize_t w = write(seg->stop_efd, &one, sizeof(one));
    (void)w;
  }
  if (load_acquire(&seg->hdr->backend) != BACKEND_IO_URING) return;
  for (uint32_t r = 0; r < seg->rings.size(); r++)
    if (seg->rings[r].efd < 0) ring_wake_watchers(*seg, r);
}

struct ProcessRole { bool reaps = true; };

class Session : public Napi::ObjectWrap<Session> {
 public:
  // Process-local copies of what each in-flight op is: trusted, unlike its handle.
  struct InflightOp { uint32_t index; uint32_t gen; uint16_t ring; uint16_t kind; uint64_t kind_arg; };
  static Napi::Function Init(Napi::Env env);
  static Napi::FunctionReference* ctor;
  Session(const Napi::CallbackInfo& info);
  ~Session() override;

  bool Bind(Segment* seg, int slot, Napi::Function on_complete, Napi::Env env);

 private:
  Napi::Value Submit(const Napi::CallbackInfo& info);
  Napi::Value OpenFile(const Napi::CallbackInfo& info);
  Napi::Value CloseFile(const Napi::CallbackInfo& info);
  Napi::Value FileInfo(const Napi::CallbackInfo& info);
  Napi::Value FileRef(const Napi::CallbackInfo& info);
  Napi::Value Arena(const Napi::CallbackInfo& info);
  Napi::Value ArenaAlloc(const Napi::CallbackInfo& info);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value ForkFds(const Napi::CallbackInfo& info);
  Napi::Value CleanupProcess(const Napi::CallbackInfo& info);
  Napi::Value SweepDeadSlots(const Napi::CallbackInfo& info);
  Napi::Value ReapNow(const Napi::CallbackInfo& info);
  Napi::Value SetRunState(const Napi::CallbackInfo& info);
  Napi::Value RunState(const Napi::CallbackInfo& info);
  Napi::Value Inflight(const Napi::CallbackInfo& info);
  Napi::Value HandlesInUse(const Napi::CallbackInfo& info);
  Napi::Value HandleSnapshot(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value WaitWord(const Napi::CallbackInfo& info);
  Napi::Value CancelWait(const Napi::CallbackInfo& info);
  Napi::Value RegionSet(const Napi::CallbackInfo& info);
  Napi::Value RegionGet(const Napi::CallbackInfo& info);
  Napi::Value DebugHoldLock(const Napi::CallbackInfo& info);
  Napi::Value DebugSubmitRawNop(const Napi::CallbackInfo& info);
  Napi::Value DebugScribble(const Napi::CallbackInfo& info);
  Napi::Value VerifyHandles(const Napi::CallbackInfo& info);
  Napi::Value DebugSetFault(const Napi::CallbackInfo& info);
  Napi::Value DebugFaultFired(const Napi::CallbackInfo& info);
  Napi::Value DebugKillPoint(const Napi::CallbackInfo& info);
  Napi::Value DebugKillPointFired(const Napi::CallbackInfo& info);
  Napi::Value KillPoint(const Napi::CallbackInfo& info);

  bool CheckOpen(Napi::Env env);
  bool HandleScribbled(const InflightOp& op);
  void DoorbellMain();
  void DeliverOnJs(Napi::Env env, std::vector<int32_t>* batch);
  // JS close() has already waited for its IO; the env cleanup hook has not.
  void DetachNative(int64_t drain_timeout_ns = 500000000ll);
  void CancelAndDrain(int64_t timeout_ns);
  static void CleanupHook(void* arg);

 public:
  Segment* seg_ = nullptr;
  int slot_ = -1;
  uint32_t home_ring_ = 0;
  bool detached_ = true;
  std::mutex mu_;
  std::vector<InflightOp> inflight_;
  uint32_t undelivered_ = 0;  // batches handed to the tsfn, not yet run on the JS thread
  struct WordWait { uint32_t id; uint64_t offset; uint32_t value; };
  std::vector<WordWait> waits_;  // shared waits of this environment (shared_wait.h)
  uint32_t next_wait_id_ = 0;
  std::thread doorbell_;
  std::atomic<bool> closing_{false};
  Napi::ThreadSafeFunction tsfn_;
  bool tsfn_ref_ = false;
  Napi::Reference<Napi::ArrayBuffer> arena_ab_;
  napi_env env_ = nullptr;
  bool hook_added_ = false;
  bool strong_ = false;  // holding a strong reference to our JS object (while attached)
  bool tearing_down_ = false;  // detaching from the env cleanup hook
};

Napi::FunctionReference* Session::ctor = nullptr;

Session::Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {}

Session::~Session() {
  RM_TRACE("session %p destroyed (detached=%d)", (void*)this, (int)detached_);
  DetachNative();
}

void Session::CleanupHook(void* arg) {
  auto* s = static_cast<Session*>(arg);
  RM_TRACE("session %p env cleanup hook", (void*)s);
  s->hook_added_ = false;
  s->tearing_down_ = true;  // no HandleScope and no JS ever again: touch no JS handles
  // The environment's heap is about to go: wait longer for IO into its buffers.
  s->DetachNative(10000000000ll);
}

bool Session::Bind(Segment* seg, int slot, Napi::Function on_complete, Napi::Env env) {
  tsfn_ = Napi::ThreadSafeFunction::New(env, on_complete, "ringmaster-completions", 0, 1);
  if ((napi_threadsafe_function)tsfn_ == nullptr) return false;  // the environment is terminating
  seg_ = seg;
  slot_ = slot;
  home_ring_ = seg->slots[slot].home_ring;
  detached_ = false;
  env_ = env;
  tsfn_.Unref(env);  // only in-flight IO keeps the event loop alive
  doorbell_ = std::thread([this] { DoorbellMain(); });
  // An attached session owns a process slot and delivers completions to its JS object:
  // hold that object strongly until detach. ObjectWrap alone is weak, and an awaiting
  // caller's frame -> promise -> resolver -> handle cycle has no other root, so GC
  // would otherwise collect a handle with IO in flight (seen: a hung await).
  Ref();
  strong_ = true;
  RM_TRACE("session %p bound: segment %llu slot %d", (void*)this, (unsigned long long)seg->id, slot);
  napi_add_env_cleanup_hook(env, CleanupHook, this);
  hook_added_ = true;
  return true;
}

// While we are attached, only we free our handles (collect) and only our slot's cleanup
// orphans them: any other generation, owner or state is another process's garbage.
bool Session::HandleScribbled(const InflightOp& op) {
  uint64_t w = load_acquire(&seg_->handles.handles[op.index].word);
  uint32_t st = hw_state(w);
  return hw_gen(w) != op.gen || hw_owner(w) != (uint32_t)slot_ || st == H_FREE || st > H_COMPLETED ||
         (hw_flags(w) & ~HF_KNOWN);
}

// Collect completed handles this session issued and hand them to its JS thread.
// Runs on its own thread so the JS thread never blocks and a busy JS thread in one
// process never delays another process: the reaping happened elsewhere already.
void Session::DoorbellMain() {
  ProcSlot* me = &seg_->slots[slot_];
  for (;;) {
    uint32_t seen = load_acquire(&me->doorbell);
    auto* batch = new std::vector<int32_t>();
    bool empty;
    {
      std::lock_guard<std::mutex> g(mu_);
      for (size_t i = 0; i < inflight_.size();) {
        int32_t res;
        uint32_t reaper;
        if (handle_collect(seg_->handles, inflight_[i].index, inflight_[i].gen, &res, &reaper)) {
          batch->push_back((int32_t)inflight_[i].index);
          batch->push_back((int32_t)inflight_[i].gen);
          batch->push_back(res);
          batch->push_back((int32_t)reaper);
          inflight_[i] = inflight_.back();
          inflight_.pop_back();
        } else if (HandleScribbled(inflight_[i])) {
          // Our in-flight handle no longer says it is ours: another process wrote over
          // it, and its CQE will be rejected as corrupt. Fail the op here, running its
          // completion action with our trusted copy of (kind, arg), so shared state
          // (a buffer's IO, the WAL) does not wait forever for it.
          stat_add(&seg_->hdr->stat_corrupt_handles, (uint64_t)1);
          stat_add(&seg_->hdr->stat_corrupt_reports, (uint64_t)1);
          run_completion_kind(*seg_, inflight_[i].kind, inflight_[i].kind_arg, kCorruptResult);
          batch->push_back((int32_t)inflight_[i].index);
          batch->push_back((int32_t)inflight_[i].gen);
          batch->push_back(kCorruptResult);
          batch->push_back(-1);
          inflight_[i] = inflight_.back();
          inflight_.pop_back();
        } else {
          i++;
        }
      }
      for (size_t i = 0; i < waits_.size();) {
        auto* word = reinterpret_cast<uint32_t*>(seg_->arena.base + waits_[i].offset);
        uint32_t v = __atomic_load_n(word, __ATOMIC_SEQ_CST);
        if (v != waits_[i].value) {
          batch->push_back(-1);  // a wait, not an IO
          batch->push_back((int32_t)waits_[i].id);
          batch->push_back((int32_t)v);
          batch->push_back(0);
          waits_[i] = waits_.back();
          waits_.pop_back();
          if (waits_.empty()) set_slot_waiting(*seg_, (uint32_t)slot_, false);
        } else {
          i++;
        }
      }
      empty = inflight_.empty();
      // Counted as undelivered in the same critical section that took the ops out of
      // inflight_: no one may see "nothing in flight, nothing undelivered" (and unref
      // the loop) while this batch is on its way to the JS thread.
      if (!batch->empty()) undelivered_++;
    }
    if (!batch->empty()) {
      uint64_t n = 0;
      for (size_t i = 0; i < batch->size(); i += 4) if ((*batch)[i] >= 0) n++;
      RM_TRACE("session %p doorbell delivers %llu", (void*)this, (unsigned long long)n);
      stat_add(&me->stat_completed, n);
      for (size_t i = 3; i < batch->size(); i += 4)
        if ((*batch)[i - 3] >= 0 && (*batch)[i] != -1 && (uint32_t)(*batch)[i] != (uint32_t)slot_ &&
            ((uint32_t)(*batch)[i] >= seg_->hdr->max_slots ||
             load_relaxed(&seg_->slots[(*batch)[i]].pid) != load_relaxed(&me->pid)))
          stat_add(&me->stat_completed_by_other, (uint64_t)1);
      napi_status st = tsfn_.NonBlockingCall(batch, [this](Napi::Env env, Napi::Function fn, std::vector<int32_t>* b) {
        DeliverOnJs(env, b);
        (void)fn;
      });
      if (st != napi_ok) {
        delete batch;
        std::lock_guard<std::mutex> g(mu_);
        undelivered_--;
      }
    } else {
      delete batch;
    }
    if (closing_.load()) return;
    futex_wait(&me->doorbell, seen, 250000000);
  }
}

void Session::DeliverOnJs(Napi::Env env, std::vector<int32_t>* b) {
  std::unique_ptr<std::vector<int32_t>> owned(b);
  {
    std::lock_guard<std::mutex> g(mu_);
    undelivered_--;
    if (detached_) {
      if (undelivered_ == 0 && strong_ && env != nullptr) {
        strong_ = false;
        Unref();
      }
      return;  // detached: nobody to resolve
    }
  }
  if (env == nullptr) return;  // environment tearing down
  Napi::HandleScope scope(env);
  auto arr = Napi::Int32Array::New(env, b->size());
  // Every napi call can fail while a worker thread is being terminated: check, never assume.
  if (arr.IsEmpty() || arr.Data() == nullptr) return;
  memcpy(arr.Data(), b->data(), b->size() * sizeof(int32_t));
  Napi::Object self = Value();
  if (self.IsEmpty()) return;
  Napi::Value cb = self.Get("_onCompletions");
  if (!cb.IsEmpty() && cb.IsFunction()) cb.As<Napi::Function>().Call(self, {arr});
  std::lock_guard<std::mutex> g(mu_);
  if (inflight_.empty() && waits_.empty() && undelivered_ == 0 && tsfn_ref_ && !detached_) {
    tsfn_.Unref(env);
    tsfn_ref_ = false;
  }
}

void cleanup_slot(Segment* seg, uint32_t slot, bool process_died);

// An environment of this process lets go of its slot. Returns true if it was the last.
bool forget_local_slot(Segment* seg, uint32_t slot) {
  std::lock_guard<std::mutex> g(seg->mu);
  bool last = --seg->env_refs == 0;
  auto& ls = seg->local_slots;
  for (size_t i = 0; i < ls.size(); i++) if (ls[i] == slot) { ls.erase(ls.begin() + i); break; }
  // Reaps by this process's threads are credited to a session that still exists,
  // moved before our slot is freed (and maybe claimed by someone else).
  if (!ls.empty() && load_relaxed(&seg->reaper_slot) == slot) store_relaxed(&seg->reaper_slot, ls[0]);
  return last;
}

// Cancel what this environment still has in flight and wait (bounded) until it is
// done: the kernel or the pool may otherwise write into buffers of a heap that is
// about to be freed (a terminated worker thread).
void Session::CancelAndDrain(int64_t timeout_ns) {
  std::map<uint32_t, std::vector<uint64_t>> by_ring;  // our own record of the ring, not the handle's
  {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& p : inflight_) by_ring[p.ring].push_back(user_data_of(p.index, p.gen));
  }
  if (by_ring.empty()) return;
  if (seg_->hdr->backend == BACKEND_IO_URING) {
    for (auto& [r, v] : by_ring)
      if (r < seg_->rings.size()) ring_cancel(*seg_, r, v.data(), (uint32_t)v.size(), kLockTimeoutNs);
  } else if (seg_->pool) {
    thread_backend_cancel_issuer(seg_->pool, (uint32_t)slot_);
  }
  uint64_t deadline = monotonic_ns() + (uint64_t)timeout_ns;
  for (;;) {
    {
      std::lock_guard<std::mutex> g(mu_);
      if (inflight_.empty()) return;
    }
    if (monotonic_ns() >= deadline) return;
    usleep(1000);
  }
}

void Session::DetachNative(int64_t drain_timeout_ns) {
  if (detached_) return;
  RM_TRACE("session %p detaching: segment %llu slot %d", (void*)this, (unsigned long long)seg_->id, slot_);
  detached_ = true;
  CancelAndDrain(drain_timeout_ns);
  closing_ = true;
  slot_ring_doorbell(&seg_->slots[slot_]);
  if (doorbell_.joinable()) doorbell_.join();
  tsfn_.Release();
  if (hook_added_) {
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
    hook_added_ = false;
  }
  {
    // Queued completion batches still reference this object: stay strongly held until
    // the last one has run (DeliverOnJs drops the reference then).
    std::lock_guard<std::mutex> g(mu_);
    if (strong_ && undelivered_ == 0) {
      strong_ = false;
      Unref();  // now collectable; the destructor finds it detached
    }
  }
  if (tearing_down_) {
    arena_ab_.SuppressDestruct();  // the environment frees its references itself
  } else if (!arena_ab_.IsEmpty()) {
    // Views over the arena become zero-length instead of dangling after unmap.
    Napi::HandleScope scope{Napi::Env(env_)};
    Napi::ArrayBuffer ab = arena_ab_.Value();
    if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
    arena_ab_.Reset();
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    waits_.clear();
  }
  set_slot_waiting(*seg_, (uint32_t)slot_, false);
  Segment* seg = seg_;
  bool last;
  last = forget_local_slot(seg, (uint32_t)slot_);
  // Anything still in flight is orphaned: the completer frees it.
  cleanup_slot(seg_, (uint32_t)slot_, false);
  if (last) {
    seg->stopping = true;
    wake_local_watchers(seg);
    for (auto& t : seg->watchers) if (t.joinable()) t.join();
    seg->watchers.clear();
    bool pool_gone = true;
    if (seg->pool) pool_gone = thread_backend_stop(seg->pool, 2000000000ll);
    seg->pool = nullptr;
    {
      std::lock_guard<std::mutex> g(g_mu);
      g_segments.erase(seg->id);
    }
    if (pool_gone) {
      segment_unmap(seg);
      delete seg;
    } else {
      // A pool thread is blocked in a syscall and may still complete into the segment:
      // leave the mapping (and this Segment) in place rather than hang or crash.
      RM_TRACE("segment %llu kept mapped: a pool thread is still blocked", (unsigned long long)seg->id);
    }
  }
  seg_ = nullptr;
}

bool Session::CheckOpen(Napi::Env env) {
  if (detached_ || !seg_) {
    make_error(env, "ERR_RINGMASTER_DETACHED", "this ringmaster handle is closed (detached from the segment)")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

void cleanup_slot(Segment* seg, uint32_t slot, bool process_died) {
  ProcSlot* s = &seg->slots[slot];
  uint32_t expected = SLOT_ACTIVE;
  if (!cas(&s->state, &expected, (uint32_t)SLOT_CLEANING)) return;
  bool threads = load_relaxed(&seg->hdr->backend) == BACKEND_THREADS;
  // Threads backend: a dead process's pool died with it, so its in-flight IO never
  // completes: fail it now (running completion actions so others' waiters wake).
  bool in_flight_dies = threads && process_died;
  struct Ctx { Segment* seg; } ctx{seg};
  std::vector<OrphanRef> orphans;
  handles_release_owner(
      seg->handles, slot, in_flight_dies,
      [](void* c, IoHandle* h, uint32_t) {
        auto* cx = static_cast<Ctx*>(c);
        run_completion_kind(*cx->seg, load_relaxed(&h->kind), load_relaxed(&h->kind_arg), -ECANCELED);
      },
      &ctx, &orphans);
  if (!threads && process_died && !orphans.empty()) {
    // The dead process's requests that are still armed (pipes, sockets) are not
    // cancelled by its death: cancel them so they complete (-ECANCELED) and free.
    for (uint32_t r = 0; r < seg->rings.size(); r++) {
      std::vector<uint64_t> uds;
      for (auto& o : orphans) if (o.ring == r) uds.push_back(user_data_of(o.index, o.gen));
      if (!uds.empty()) ring_cancel(*seg, r, uds.data(), (uint32_t)uds.size(), kLockTimeoutNs);
    }
  }
  // A dead process's pool died with it: forget its drain accounting. A live detach's
  // chains still finish (or were cancelled) through finish_chain, which accounts them.
  if (threads && process_died) thread_backend_forget_slot(seg, slot);
  run_slot_cleanup_hooks(*seg, slot, process_died);
  if (process_died) stat_add(&seg->hdr->stat_dead_slots_cleaned, (uint64_t)1);
  slot_release(s);
}

void watcher_main(Segment* seg, uint32_t ring) {
  RingMap& m = seg->rings[ring];
  uint32_t reaper = 0;
  if (m.efd >= 0) {
    // Wait for the ring's async-completion eventfd. EPOLLEXCLUSIVE: one event wakes one
    // watcher among all processes, not all of them; that one reaps for everybody and
    // rings the issuers' doorbells. The 250 ms timeout sweeps up after a waker that died
    // between consuming the event and reaping.
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u32 = 1;
    epoll_ctl(ep, EPOLL_CTL_ADD, m.efd, &ev);
    struct epoll_event stop = {};
    stop.events = EPOLLIN;
    stop.data.u32 = 2;
    if (seg->stop_efd >= 0) epoll_ctl(ep, EPOLL_CTL_ADD, seg->stop_efd, &stop);
    while (!seg->stopping.load()) {
      struct epoll_event got[2];
      int n = epoll_wait(ep, got, 2, 250);
      if (seg->stopping.load()) break;
      for (int i = 0; i < n; i++) {
        if (got[i].data.u32 == 1) {
          uint64_t v;
          ssize_t r = read(m.efd, &v, sizeof(v));  // may be EAGAIN: another process took it
          (void)r;
        }
      }
      reaper = load_relaxed(&seg->reaper_slot);
      if (n > 0 || ring_cq_pending(m) || (load_acquire(m.sq_flags) & IORING_SQ_CQ_OVERFLOW))
        ring_reap(*seg, ring, reaper, kLockTimeoutNs);
    }
    close(ep);
    return;
  }
  // No eventfd: wait in io_uring_enter. Every watcher wakes on every CQE (kernel fact 10).
  struct __kernel_timespec ts = {0, 250000000};
  struct io_uring_getevents_arg arg = {};
  arg.ts = (uint64_t)(uintptr_t)&ts;
  while (!seg->stopping.load()) {
    sys_io_uring_enter(m.fd, 0, 1, IORING_ENTER_GETEVENTS | (1U << 3) /* EXT_ARG */, &arg, sizeof(arg));
    if (seg->stopping.load()) break;
    ring_reap(*seg, ring, load_relaxed(&seg->reaper_slot), kLockTimeoutNs);
  }
}

void start_watchers(Segment* seg, const std::vector<uint32_t>& rings) {
  if (seg->stop_efd < 0) seg->stop_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  for (uint32_t r : rings) seg->watchers.emplace_back(watcher_main, seg, r);
}

Napi::Value make_session(Napi::Env env, Segment* seg, SlotKind kind, bool reaps, Napi::Function on_complete,
                         bool new_segment) {
  SegmentHeader* h = seg->hdr;
  uint32_t ring_count = h->ring_count ? h->ring_count : 1;
  int slot = slot_claim(seg->slots, h->max_slots, kind, 0, reaps);
  if (slot < 0) {
    make_error(env, "ERR_RINGMASTER_NO_SLOTS",
               "all " + std::to_string(h->max_slots) + " process slots are in use (raise maxProcesses)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  store_relaxed(&seg->slots[slot].home_ring, (uint32_t)slot % ring_count);
  {
    std::lock_guard<std::mutex> g(seg->mu);
    seg->env_refs++;
    seg->local_slots.push_back((uint32_t)slot);
    if (new_segment) {
      store_relaxed(&seg->reaper_slot, (uint32_t)slot);
      if (h->backend == BACKEND_IO_URING) {
        std::vector<uint32_t> rings;
        bool all = kind == SLOT_POSTMASTER || h->topology == TOPO_SHARED;
        for (uint32_t r = 0; r < h->ring_count; r++)
          if (all || r == (uint32_t)slot % ring_count) rings.push_back(r);
        if (reaps) start_watchers(seg, rings);
      } else {
        const char* n = getenv("RINGMASTER_THREADS");
        int threads = n ? atoi(n) : 4;
        seg->pool = thread_backend_start(seg, threads > 0 && threads <= 64 ? threads : 4);
      }
    }
  }
  // A worker thread terminated inside attach() gets here with an environment that can
  // no longer run JS: construction fails and yields an empty object. Unwrapping that
  // (node-addon-api: Error::New on a null env) aborts the whole process, so check
  // every step and give the slot back instead.
  Napi::FunctionReference* ctor = env.GetInstanceData<Napi::FunctionReference>();
  Napi::Object obj = ctor ? ctor->New({}) : Napi::Object();
  Session* s = obj.IsEmpty() ? nullptr : Session::Unwrap(obj);
  if (s == nullptr || !s->Bind(seg, slot, on_complete, env)) {
    forget_local_slot(seg, (uint32_t)slot);
    cleanup_slot(seg, (uint32_t)slot, false);
    return env.Undefined();  // callers that created the segment undo it (forget_segment)
  }
  return obj;
}

// Undo a segment registration whose first session could not be created.
void forget_segment(Segment* seg, bool close_fds) {
  {
    std::lock_guard<std::mutex> g(g_mu);
    g_segments.erase(seg->id);
  }
  seg->stopping = true;
  wake_local_watchers(seg);
  for (auto& t : seg->watchers) if (t.joinable()) t.join();
  bool pool_gone = seg->pool ? thread_backend_stop(seg->pool, 2000000000ll) : true;
  if (!pool_gone) return;  // keep the mapping for the stuck thread (never happens before first use)
  if (!close_fds) {  // inherited from the postmaster: a later attach() needs them again
    for (auto& r : seg->rings) { r.fd = -1; r.efd = -1; }
    seg->memfd = -1;
  }
  segment_unmap(seg);
  delete seg;
}

// createSegment(options, onCompletions)
Napi::Value CreateSegment(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[0].As<Napi::Object>();
  SegmentConfig cfg;
  cfg.ring_count = o.Get("rings").As<Napi::Number>().Uint32Value();
  cfg.ring_entries = o.Get("ringEntries").As<Napi::Number>().Uint32Value();
  cfg.max_slots = o.Get("maxProcesses").As<Napi::Number>().Uint32Value();
  cfg.max_files = o.Get("maxFiles").As<Napi::Number>().Uint32Value();
  cfg.arena_size = (uint64_t)o.Get("arenaSize").As<Napi::Number>().DoubleValue();
  cfg.sqpoll = o.Get("sqpoll").As<Napi::Boolean>().Value();
  cfg.fixed_buffers = o.Get("fixedBuffers").As<Napi::Boolean>().Value();
  cfg.topology = o.Get("topology").As<Napi::String>().Utf8Value() == "per-process" ? TOPO_PER_PROCESS : TOPO_SHARED;
  cfg.backend = o.Get("backend").As<Napi::String>().Utf8Value() == "threads" ? BACKEND_THREADS : BACKEND_IO_URING;
  cfg.data_dir = o.Get("dataDir").As<Napi::String>().Utf8Value();
  bool reaps = o.Get("reaper").As<Napi::Boolean>().Value();
  auto* seg = new Segment();
  std::string err;
  int rc = segment_create(cfg, seg, &err);
  if (rc < 0) {
    delete seg;
    make_error(env, errno_code(rc), err, rc).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  {
    std::lock_guard<std::mutex> g(g_mu);
    g_segments[seg->id] = seg;
  }
  Napi::Value sess = make_session(env, seg, SLOT_POSTMASTER, reaps, info[1].As<Napi::Function>(), true);
  if (sess.IsUndefined()) forget_segment(seg, true);
  return sess;
}

// attachForked(memfd, ringFds, options, onCompletions)
Napi::Value AttachForked(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int memfd = info[0].As<Napi::Number>().Int32Value();
  Napi::Array fds = info[1].As<Napi::Array>();
  std::vector<int> ring_fds;
  for (uint32_t i = 0; i < fds.Length(); i++) ring_fds.push_back(fds.Get(i).As<Napi::Number>().Int32Value());
  Napi::Object aopts = info[2].As<Napi::Object>();
  bool reaps = aopts.Get("reaper").As<Napi::Boolean>().Value();
  std::vector<int> event_fds;
  Napi::Value ev = aopts.Get("eventFds");
  if (ev.IsArray()) {
    Napi::Array a = ev.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); i++) event_fds.push_back(a.Get(i).As<Napi::Number>().Int32Value());
  }
  auto* seg = new Segment();
  std::string err;
  int rc = segment_attach(memfd, ring_fds, event_fds, seg, &err);
  if (rc < 0) {
    delete seg;
    make_error(env, "ERR_RINGMASTER_ATTACH", err, rc).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  {
    std::lock_guard<std::mutex> g(g_mu);
    if (g_segments.count(seg->id)) {
      segment_unmap(seg);
      delete seg;
      make_error(env, "ERR_RINGMASTER_ALREADY_ATTACHED", "this process is already attached to that segment")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    g_segments[seg->id] = seg;
  }
  if (!segment_running(*seg)) {
    {
      std::lock_guard<std::mutex> g(g_mu);
      g_segments.erase(seg->id);
    }
    segment_unmap(seg);
    delete seg;
    make_error(env, "ESHUTDOWN", "the postmaster has stopped; its rings accept no more IO", ESHUTDOWN)
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Value sess = make_session(env, seg, SLOT_FORKED, reaps, info[3].As<Napi::Function>(), true);
  // No slot: undo the mapping so a later attach() can succeed once a slot frees up.
  if (sess.IsUndefined()) forget_segment(seg, false);
  return sess;
}

// attachThread(segmentId, onCompletions): a worker thread of a process that has the segment mapped.
Napi::Value AttachThread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double id = info[0].As<Napi::Number>().DoubleValue();
  Segment* seg = nullptr;
  {
    std::lock_guard<std::mutex> g(g_mu);
    auto it = g_segments.find((uint64_t)id);
    if (it != g_segments.end()) seg = it->second;
  }
  if (!seg) {
    make_error(env, "ERR_RINGMASTER_NOT_ATTACHED",
               "this process has no mapping of segment " + std::to_string((uint64_t)id) +
                   ": attach the process (main thread) first; a thread token only works inside the process that made it")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!segment_running(*seg)) {
    make_error(env, "ESHUTDOWN", "the postmaster has stopped; its rings accept no more IO", ESHUTDOWN)
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return make_session(env, seg, SLOT_THREAD, false, info[1].As<Napi::Function>(), false);
}

// Parse one op; returns 0 or -errno with *why set.
int parse_op(Session* s, const double* f, Napi::Value buf, SqeRequest* r, IoHandle* h, std::string* why) {
  Segment* seg = s->seg_;
  SegmentHeader* hdr = seg->hdr;
  double op = f[0], link = f[1], file = f[2], off = f[3], len = f[4], arena = f[5], kind = f[6], karg = f[7];
  if (!(op >= 0 && op < OP_MAX) || op != std::floor(op)) { *why = "unknown op"; return -EINVAL; }
  r->op = (uint8_t)op;
  if (!(link >= 0 && link <= 7) || link != std::floor(link)) { *why = "bad link flags"; return -EINVAL; }
  r->link_flags = (uint8_t)link;
  r->file_slot = 0;
  r->file_gen = 0;
  if (r->op != OP_NOP) {
    int slot = file_lookup(seg->files, hdr->max_files, file, nullptr);
    if (slot < 0) { *why = "unknown or closed file id " + std::to_string((long long)file); return -EBADF; }
    r->file_slot = (uint32_t)slot;
    r->file_gen = (uint32_t)((uint64_t)file / 65536u);
  }
  r->offset = 0; r->len = 0; r->addr = 0; r->fixed_buffer = false; r->buf_index = 0;
  uint64_t arena_off = kNoArena;
  if (r->op == OP_READ || r->op == OP_WRITE) {
    if (!(off >= 0 && off <= 9007199254740991.0) || off != std::floor(off)) { *why = "offset out of range"; return -ERANGE; }
    if (!(len >= 0 && len <= 0x7fffffff) || len != std::floor(len)) { *why = "length out of range"; return -ERANGE; }
    r->offset = (uint64_t)off;
    r->len = (uint32_t)len;
    if (arena >= 0) {
      if (arena != std::floor(arena) || arena > (double)seg->arena.size || (uint64_t)arena + r->len > seg->arena.size) {
        *why = "arena range outside the shared segment";
        return -ERANGE;
      }
      arena_off = (uint64_t)arena;
      bool fixed = hdr->fixed_buffers && (arena_off >> 30) == ((arena_off + (r->len ? r->len - 1 : 0)) >> 30);
      bool sqpoll = hdr->sqpoll;
      // Fixed buffers are checked against the range as registered, in the registrant's
      // address space (kernel fact 4); so is every address an SQPOLL thread touches.
      uint64_t base = (fixed || sqpoll) ? seg->registrant_arena_base : (uint64_t)(uintptr_t)seg->arena.base;
      r->addr = base + arena_off;
      r->fixed_buffer = fixed;
      r->buf_index = (uint16_t)(arena_off >> 30);
    } else {
      if (!buf.IsTypedArray()) { *why = "a private buffer must be a Uint8Array"; return -EINVAL; }
      Napi::TypedArray ta = buf.As<Napi::TypedArray>();
      Napi::ArrayBuffer ab = ta.ArrayBuffer();
      if (ab.IsEmpty() || (ab.Data() == nullptr && ta.ByteLength() > 0)) { *why = "buffer is detached"; return -EINVAL; }
      if (ta.ByteLength() < r->len) { *why = "length exceeds the buffer"; return -ERANGE; }
      if (hdr->sqpoll) { *why = "SQPOLL rings need arena buffers (the poller runs in the postmaster)"; return -EOPNOTSUPP; }
      r->addr = (uint64_t)(uintptr_t)((uint8_t*)ab.Data() + ta.ByteOffset());
    }
  }
  if (!(kind >= 0 && kind < CK_MAX) || kind != std::floor(kind) || !(karg >= 0) || karg > 9007199254740991.0) {
    *why = "bad completion kind";
    return -EINVAL;
  }
  if (!kind_arg_valid(*seg, (uint16_t)kind, (uint64_t)karg)) { *why = "bad completion kind argument"; return -ERANGE; }
  store_relaxed(&h->op, r->op);
  store_relaxed(&h->link_flags, r->link_flags);
  store_relaxed(&h->file_slot, r->file_slot);
  store_relaxed(&h->offset, r->offset);
  store_relaxed(&h->len, r->len);
  store_relaxed(&h->arena_offset, arena_off);
  r->kind = (uint16_t)kind;
  r->kind_arg = (uint64_t)karg;
  store_relaxed(&h->kind, r->kind);
  store_relaxed(&h->kind_arg, r->kind_arg);
  store_relaxed(&h->submit_ns, monotonic_ns());
  return 0;
}

// submit(ring, ops: Float64Array(8n), buffers: Array) -> Int32Array(4n) of (index, gen,
// result or INT32_MIN if still pending, reaper slot), or a negative errno number for
// back-pressure (-EAGAIN) and shutdown (-ESHUTDOWN).
Napi::Value Session::Submit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  SegmentHeader* hdr = seg_->hdr;
  if (!segment_running(*seg_)) return Napi::Number::New(env, -ESHUTDOWN);
  uint32_t ring = info[0].IsNumber() ? info[0].As<Napi::Number>().Uint32Value() : home_ring_;
  if (ring >= (hdr->ring_count ? hdr->ring_count : hdr->configured_rings)) {
    range_error(env, "ring index out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      !info[2].IsArray()) {
    Napi::TypeError::New(env, "submit(ring, Float64Array ops, Array buffers)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Float64Array ops = info[1].As<Napi::Float64Array>();
  Napi::Array bufs = info[2].As<Napi::Array>();
  if (ops.Data() == nullptr || ops.ElementLength() % kOpFields != 0) return env.Undefined();  // terminating env
  uint32_t n = (uint32_t)(ops.ElementLength() / kOpFields);
  // Both backends accept the same batches: at most one ring's worth (ringEntries).
  uint32_t max_batch = hdr->backend == BACKEND_IO_URING ? hdr->rings[ring].sq_entries : hdr->ring_entries;
  if (n == 0 || n > max_batch) {
    range_error(env, "a batch holds 1.." + std::to_string(max_batch) + " ops (ringEntries)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // Per-thread scratch, reused: no allocation per submit (submit never re-enters).
  thread_local std::vector<SqeRequest> reqs;
  thread_local std::vector<uint32_t> got;
  thread_local std::vector<int32_t> mine;
  thread_local std::vector<int32_t> others;
  reqs.resize(n);
  got.clear();
  for (uint32_t i = 0; i < n; i++) {
    int64_t idx = handle_reserve(seg_->handles, (uint32_t)slot_);
    if (idx < 0) {
      for (uint32_t k : got) handle_unreserve(seg_->handles, k);
      return Napi::Number::New(env, -EAGAIN);  // every handle in flight: the caller waits
    }
    got.push_back((uint32_t)idx);
  }
  for (uint32_t i = 0; i < n; i++) {
    IoHandle* h = &seg_->handles.handles[got[i]];
    std::string why;
    Napi::Value bi = bufs.Get(i);
    if (bi.IsEmpty()) {  // terminating env
      for (uint32_t k : got) handle_unreserve(seg_->handles, k);
      return env.Undefined();
    }
    int rc = parse_op(this, ops.Data() + i * kOpFields, bi, &reqs[i], h, &why);
    if (rc < 0) {
      for (uint32_t k : got) handle_unreserve(seg_->handles, k);
      std::string code = rc == -EBADF ? "ERR_RINGMASTER_BAD_FILE" : rc == -ERANGE ? "ERR_OUT_OF_RANGE" : "ERR_INVALID_ARG";
      Napi::Error e = rc == -ERANGE ? range_error(env, "op " + std::to_string(i) + ": " + why)
                                    : (Napi::Error)Napi::TypeError::New(env, "op " + std::to_string(i) + ": " + why);
      if (rc == -EBADF || rc == -EOPNOTSUPP) e = make_error(env, rc == -EBADF ? code : "EOPNOTSUPP", "op " + std::to_string(i) + ": " + why, rc);
      e.Set("code", Napi::String::New(env, rc == -EOPNOTSUPP ? "EOPNOTSUPP" : code));
      e.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    reqs[i].handle_index = got[i];
    reqs[i].handle_gen = hw_gen(load_acquire(&h->word));
    store_relaxed(&h->ring, (uint16_t)ring);
    store_relaxed(&h->batch_pos, (uint16_t)i);
  }
  {
    // Registered before submission so a completion can never be missed by the doorbell thread.
    std::lock_guard<std::mutex> g(mu_);
    for (uint32_t i = 0; i < n; i++)
      inflight_.push_back({reqs[i].handle_index, reqs[i].handle_gen, (uint16_t)ring, reqs[i].kind, reqs[i].kind_arg});
    if (!tsfn_ref_) {
      tsfn_.Ref(env);
      tsfn_ref_ = true;
    }
  }
  kill_point(&hdr->faults, KP_HANDLES_RESERVED);
  bool will_reap_inline = hdr->backend == BACKEND_IO_URING && !seg_->watchers.empty();
  int rc = hdr->backend == BACKEND_IO_URING ? ring_submit(*seg_, ring, reqs.data(), n, kLockTimeoutNs, will_reap_inline)
                                            : thread_backend_submit(seg_->pool, reqs.data(), n, (uint32_t)slot_);
  RM_TRACE("session %p submit n=%u rc=%d first=(%u,%u)", (void*)this, n, rc, reqs[0].handle_index, reqs[0].handle_gen);
  if (rc < 0) {
    // Nothing was published: take the handles back.
    std::lock_guard<std::mutex> g(mu_);
    for (uint32_t i = 0; i < n; i++) {
      for (size_t k = 0; k < inflight_.size(); k++)
        if (inflight_[k].index == reqs[i].handle_index) { inflight_[k] = inflight_.back(); inflight_.pop_back(); break; }
      handle_unreserve(seg_->handles, reqs[i].handle_index);
    }
    return Napi::Number::New(env, rc);
  }
  stat_add(&seg_->slots[slot_].stat_submitted, (uint64_t)n);
  // Inline reaping: a page-cache hit (or a NOP) completes inside io_uring_enter, so
  // its CQE is usually there already. Take it now, on this thread, if the completion
  // lock is free (never wait for it), and hand this batch's finished ops straight back:
  // no watcher, doorbell or uv_async hop. The CAS in handle_collect guarantees each
  // completion is collected once, here or by the doorbell thread.
  // After the batch's n entries come this session's other ops that completed by now
  // (also reaped here): they are delivered too, instead of by the doorbell thread.
  // Only a process that reaps (runs watchers) reaps inline: `reaper: false` means
  // others complete this process's IO.
  bool inline_reap = hdr->backend == BACKEND_IO_URING && !seg_->watchers.empty() &&
                     ring_reap(*seg_, ring, (uint32_t)slot_, 0, (uint32_t)slot_) >= 0;
  // Inline completions do not signal the eventfd: a submitter that does not reap hands
  // what it left in the CQ to a watcher somewhere.
  if (hdr->backend == BACKEND_IO_URING && !inline_reap && ring_cq_pending(seg_->rings[ring]))
    ring_poke_reapers(seg_->rings[ring]);
  others.clear();
  mine.assign(4 * n, 0);
  {
    std::lock_guard<std::mutex> g(mu_);
    for (uint32_t i = 0; i < n; i++) {
      int32_t res = kPending;
      uint32_t reaper = 0;
      if (handle_collect(seg_->handles, reqs[i].handle_index, reqs[i].handle_gen, &res, &reaper)) {
        for (size_t k = 0; k < inflight_.size(); k++)
          if (inflight_[k].index == reqs[i].handle_index && inflight_[k].gen == reqs[i].handle_gen) {
            inflight_[k] = inflight_.back();
            inflight_.pop_back();
            break;
          }
        stat_add(&seg_->slots[slot_].stat_completed, (uint64_t)1);
      } else {
        res = kPending;
        reaper = 0;
      }
      mine[4 * i] = (int32_t)reqs[i].handle_index;
      mine[4 * i + 1] = (int32_t)reqs[i].handle_gen;
      mine[4 * i + 2] = res;
      mine[4 * i + 3] = (int32_t)reaper;
    }
    if (inline_reap) {
      // We did not ring our own doorbell for what we reaped: collect all of it now.
      for (size_t k = 0; k < inflight_.size();) {
        int32_t res;
        uint32_t reaper;
        if (handle_collect(seg_->handles, inflight_[k].index, inflight_[k].gen, &res, &reaper)) {
          others.push_back((int32_t)inflight_[k].index);
          others.push_back((int32_t)inflight_[k].gen);
          others.push_back(res);
          others.push_back((int32_t)reaper);
          inflight_[k] = inflight_.back();
          inflight_.pop_back();
          stat_add(&seg_->slots[slot_].stat_completed, (uint64_t)1);
        } else {
          k++;
        }
      }
    }
    if (inflight_.empty() && waits_.empty() && undelivered_ == 0 && tsfn_ref_) {
      tsfn_.Unref(env);
      tsfn_ref_ = false;
    }
  }
  auto out = Napi::Int32Array::New(env, mine.size() + others.size());
  if (out.IsEmpty() || out.Data() == nullptr) return env.Undefined();  // terminating env
  memcpy(out.Data(), mine.data(), mine.size() * sizeof(int32_t));
  if (!others.empty()) memcpy(out.Data() + mine.size(), others.data(), others.size() * sizeof(int32_t));
  return out;
}

// openFile(relPath, flags, mode) -> file id
Napi::Value Session::OpenFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int flags = info[1].As<Napi::Number>().Int32Value();
  int mode = info[2].As<Napi::Number>().Int32Value();
  if (path.empty() || path.size() >= kMaxRelPath || path.find('\0') != std::string::npos) {
    range_error(env, "file path must be 1.." + std::to_string(kMaxRelPath - 1) + " bytes without NUL").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct open_how how = {};
  how.flags = (uint64_t)(flags | O_CLOEXEC);
  how.mode = (flags & O_CREAT) ? (uint64_t)mode : 0;
  // RESOLVE_BENEATH: no "..", absolute path or symlink may leave the data directory.
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = (int)syscall(SYS_openat2, seg_->data_dir_fd, path.c_str(), &how, sizeof(how));
  if (fd < 0) {
    int e = errno;
    std::string msg = e == EXDEV ? "path '" + path + "' escapes the data directory"
                                 : "cannot open '" + path + "': " + strerror(e);
    make_error(env, e == EXDEV ? "ERR_RINGMASTER_PATH_ESCAPE" : errno_code(e), msg, e).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    make_error(env, errno_code(e), std::string("fstat: ") + strerror(e), e).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t access = (uint32_t)flags & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC);  // what the fd is, not how it was made
  LockResult lr = robust_lock_acquire(&seg_->hdr->files_lock, kLockTimeoutNs);
  if (lr == LockResult::TimedOut || lr == LockResult::Error) {
    close(fd);
    make_error(env, "ETIMEDOUT", "the shared file table is locked by a stopped process", ETIMEDOUT).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  for (uint32_t i = 0; i < seg_->hdr->max_files; i++) {
    FileEntry* f = &seg_->files[i];
    if (load_acquire(&f->state) != F_OPEN || f->dev != (uint64_t)st.st_dev || f->ino != (uint64_t)st.st_ino ||
        (load_relaxed(&f->open_flags) & ~(uint32_t)(O_CREAT | O_EXCL | O_TRUNC)) != access)
      continue;
    // Already open with the same access: one identity, one id. Our fd is not needed.
    f->open_count++;
    uint32_t gen = load_relaxed(&f->generation);
    robust_lock_release(&seg_->hdr->files_lock);
    close(fd);
    return Napi::Number::New(env, (double)file_id_of(i, gen));
  }
  int slot = file_claim(seg_->files, seg_->hdr->max_files);
  if (slot < 0) {
    robust_lock_release(&seg_->hdr->files_lock);
    close(fd);
    make_error(env, "EMFILE", "the shared file table is full (raise maxFiles)", EMFILE).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  FileEntry* e = &seg_->files[slot];
  memset(e->path, 0, sizeof(e->path));
  memcpy(e->path, path.c_str(), path.size());
  store_relaxed(&e->open_flags, (uint32_t)flags);
  store_relaxed(&e->opener_pid, (int32_t)getpid());
  e->dev = (uint64_t)st.st_dev;
  e->ino = (uint64_t)st.st_ino;
  e->open_count = 1;
  uint32_t gen = load_relaxed(&e->generation);
  if (seg_->hdr->backend == BACKEND_IO_URING) {
    for (uint32_t r = 0; r < seg_->rings.size(); r++) {
      struct io_uring_files_update up = {};
      up.offset = (uint32_t)slot;
      up.fds = (uint64_t)(uintptr_t)&fd;
      int rc = sys_io_uring_register(seg_->rings[r].fd, IORING_REGISTER_FILES_UPDATE, &up, 1);
      if (rc < 0) {
        int minus1 = -1;
        for (uint32_t k = 0; k < r; k++) {  // roll back what this open installed
          struct io_uring_files_update undo = {};
          undo.offset = (uint32_t)slot;
          undo.fds = (uint64_t)(uintptr_t)&minus1;
          sys_io_uring_register(seg_->rings[k].fd, IORING_REGISTER_FILES_UPDATE, &undo, 1);
        }
        close(fd);
        file_release(e);
        robust_lock_release(&seg_->hdr->files_lock);
        make_error(env, errno_code(rc), std::string("registering file: ") + strerror(-rc), rc).ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
    close(fd);  // every ring holds its own reference now
  } else {
    thread_backend_adopt_fd(seg_->pool, (uint32_t)slot, gen, fd);
  }
  file_publish(e);
  robust_lock_release(&seg_->hdr->files_lock);
  return Napi::Number::New(env, (double)file_id_of((uint32_t)slot, gen));
}

Napi::Value Session::CloseFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  double id = info[0].As<Napi::Number>().DoubleValue();
  RobustGuard guard(&seg_->hdr->files_lock, kLockTimeoutNs);
  if (!guard.held()) return Napi::Boolean::New(env, false);
  int slot = file_lookup(seg_->files, seg_->hdr->max_files, id, nullptr);
  if (slot < 0) return Napi::Boolean::New(env, false);
  FileEntry* e = &seg_->files[slot];
  if (e->open_count > 1) {  // other handles (any process) still use it
    e->open_count--;
    return Napi::Boolean::New(env, true);
  }
  uint32_t expected = F_OPEN;
  if (!cas(&e->state, &expected, (uint32_t)F_CLOSING)) return Napi::Boolean::New(env, false);
  e->open_count = 0;
  if (seg_->hdr->backend == BACKEND_IO_URING) {
    int minus1 = -1;
    for (uint32_t r = 0; r < seg_->rings.size(); r++) {
      struct io_uring_files_update up = {};
      up.offset = (uint32_t)slot;
      up.fds = (uint64_t)(uintptr_t)&minus1;
      sys_io_uring_register(seg_->rings[r].fd, IORING_REGISTER_FILES_UPDATE, &up, 1);  // in-flight IO keeps its ref
    }
  } else {
    thread_backend_forget_fd(seg_->pool, (uint32_t)slot);  // other processes drop theirs on next use (generation)
  }
  file_release(e);
  return Napi::Boolean::New(env, true);
}

// fileRef(id) -> true if the id names an open file; counts one more handle on it.
Napi::Value Session::FileRef(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  double id = info[0].As<Napi::Number>().DoubleValue();
  RobustGuard guard(&seg_->hdr->files_lock, kLockTimeoutNs);
  if (!guard.held()) return Napi::Boolean::New(env, false);
  int slot = file_lookup(seg_->files, seg_->hdr->max_files, id, nullptr);
  if (slot >= 0) seg_->files[slot].open_count++;
  return Napi::Boolean::New(env, slot >= 0);
}

Napi::Value Session::FileInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  double id = info[0].As<Napi::Number>().DoubleValue();
  uint32_t flags = 0;
  int slot = file_lookup(seg_->files, seg_->hdr->max_files, id, &flags);
  if (slot < 0) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  char path[kMaxRelPath];
  memcpy(path, seg_->files[slot].path, kMaxRelPath);
  path[kMaxRelPath - 1] = 0;
  o.Set("path", Napi::String::New(env, path));
  o.Set("flags", Napi::Number::New(env, flags));
  o.Set("slot", Napi::Number::New(env, slot));
  return o;
}

Napi::Value Session::Arena(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  if (!arena_ab_.IsEmpty()) return arena_ab_.Value();
  auto ab = Napi::ArrayBuffer::New(env, seg_->arena.base, seg_->arena.size);  // external, not owned
  arena_ab_ = Napi::Reference<Napi::ArrayBuffer>::New(ab, 1);
  return ab;
}

Napi::Value Session::ArenaAlloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  double size = info[0].As<Napi::Number>().DoubleValue();
  double align = info[1].As<Napi::Number>().DoubleValue();
  if (!(size > 0) || size != std::floor(size) || !(align >= 1) || ((uint64_t)align & ((uint64_t)align - 1))) {
    range_error(env, "size must be a positive integer and alignment a power of two").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint64_t* used = &seg_->hdr->arena_used;
  uint64_t a = (uint64_t)align, sz = (uint64_t)size;
  for (;;) {
    uint64_t cur = load_acquire(used);
    uint64_t start = (cur + a - 1) / a * a;
    if (start + sz > seg_->arena.size || start + sz < start) {
      make_error(env, "ERR_RINGMASTER_ARENA_FULL",
                 "the shared arena has no room for " + std::to_string(sz) + " bytes (raise arenaSize)")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (cas(used, &cur, start + sz)) return Napi::Number::New(env, (double)start);
  }
}

Napi::Value Session::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  SegmentHeader* h = seg_->hdr;
  Napi::Object o = Napi::Object::New(env);
  o.Set("segmentId", Napi::Number::New(env, (double)seg_->id));
  o.Set("slot", Napi::Number::New(env, slot_));
  o.Set("homeRing", Napi::Number::New(env, home_ring_));
  o.Set("backend", Napi::String::New(env, h->backend == BACKEND_IO_URING ? "io_uring" : "threads"));
  o.Set("topology", Napi::String::New(env, h->topology == TOPO_PER_PROCESS ? "per-process" : "shared"));
  o.Set("rings", Napi::Number::New(env, h->configured_rings));
  o.Set("ringEntries", Napi::Number::New(env, h->ring_count ? h->rings[0].sq_entries : h->ring_entries));
  o.Set("cqEntries", Napi::Number::New(env, h->ring_count ? h->rings[0].cq_entries : 0));
  o.Set("sqpoll", Napi::Boolean::New(env, h->sqpoll != 0));
  o.Set("fixedBuffers", Napi::Boolean::New(env, h->fixed_buffers != 0));
  o.Set("fixedBuffersErrno", Napi::Number::New(env, h->fixed_buffers_errno));
  o.Set("fixedBuffersCloned", Napi::Boolean::New(env, h->fixed_buffers_cloned != 0));
  o.Set("fixedFiles", Napi::Boolean::New(env, seg_->fixed_files));
  o.Set("sameAddress", Napi::Boolean::New(env, seg_->same_address));
  o.Set("maxHandles", Napi::Number::New(env, h->max_handles));
  o.Set("maxFiles", Napi::Number::New(env, h->max_files));
  o.Set("maxProcesses", Napi::Number::New(env, h->max_slots));
  o.Set("arenaSize", Napi::Number::New(env, (double)h->arena_size));
  o.Set("segmentSize", Napi::Number::New(env, (double)h->total_size));
  o.Set("postmasterPid", Napi::Number::New(env, h->postmaster_pid));
  o.Set("features", Napi::Number::New(env, h->ring_count ? h->rings[0].features : 0));
  h->data_dir[sizeof(h->data_dir) - 1] = 0;
  o.Set("dataDir", Napi::String::New(env, h->data_dir));
  return o;
}

Napi::Value Session::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  SegmentHeader* h = seg_->hdr;
  Napi::Object o = Napi::Object::New(env);
  auto num = [&](uint64_t v) { return Napi::Number::New(env, (double)v); };
  o.Set("corruptReports", num(load_relaxed(&h->stat_corrupt_reports)));
  o.Set("deadProcessesCleaned", num(load_relaxed(&h->stat_dead_slots_cleaned)));
  o.Set("corruptHandles", num(load_relaxed(&h->stat_corrupt_handles)));
  o.Set("integrityAnomalies", num(load_relaxed(&h->stat_integrity_anomalies)));
  o.Set("integrityRepairs", num(load_relaxed(&h->stat_integrity_repairs)));
  o.Set("handlesInUse", num(handles_in_use(seg_->handles)));
  Napi::Array rings = Napi::Array::New(env);
  for (uint32_t r = 0; r < h->ring_count; r++) {
    RingShared* rs = &h->rings[r];
    Napi::Object ro = Napi::Object::New(env);
    ro.Set("sqes", num(load_relaxed(&rs->stat_sqes)));
    ro.Set("enters", num(load_relaxed(&rs->stat_enters)));
    ro.Set("cqes", num(load_relaxed(&rs->stat_cqes)));
    ro.Set("corruptCqes", num(load_relaxed(&rs->stat_corrupt_cqes)));
    ro.Set("staleCqes", num(load_relaxed(&rs->stat_stale_cqes)));
    ro.Set("overflowFlushes", num(load_relaxed(&rs->stat_overflow_flushes)));
    ro.Set("submitLockRepairs", num(load_relaxed(&rs->stat_submit_repairs)));
    ro.Set("completionLockRepairs", num(load_relaxed(&rs->stat_reap_repairs)));
    ro.Set("orphansReaped", num(load_relaxed(&rs->stat_orphans_reaped)));
    ro.Set("submitLockOwnerDied", num(load_relaxed(&rs->submit_lock.owner_died_count)));
    ro.Set("completionLockOwnerDied", num(load_relaxed(&rs->complete_lock.owner_died_count)));
    rings.Set(r, ro);
  }
  o.Set("rings", rings);
  Napi::Array procs = Napi::Array::New(env);
  uint32_t k = 0;
  for (uint32_t i = 0; i < h->max_slots; i++) {
    ProcSlot* s = &seg_->slots[i];
    if (load_acquire(&s->state) != SLOT_ACTIVE) continue;
    Napi::Object p = Napi::Object::New(env);
    p.Set("slot", num(i));
    p.Set("pid", num(load_relaxed(&s->pid)));
    p.Set("kind", Napi::String::New(env, s->kind == SLOT_POSTMASTER ? "postmaster" : s->kind == SLOT_FORKED ? "forked" : "thread"));
    p.Set("submitted", num(load_relaxed(&s->stat_submitted)));
    p.Set("completed", num(load_relaxed(&s->stat_completed)));
    p.Set("completedByOther", num(load_relaxed(&s->stat_completed_by_other)));
    p.Set("reaped", num(load_relaxed(&s->stat_reaped)));
    procs.Set(k++, p);
  }
  o.Set("processes", procs);
  return o;
}

Napi::Value Session::ForkFds(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("memfd", Napi::Number::New(env, seg_->memfd));
  Napi::Array fds = Napi::Array::New(env);
  for (uint32_t r = 0; r < seg_->rings.size(); r++) fds.Set(r, Napi::Number::New(env, seg_->rings[r].fd));
  o.Set("ringFds", fds);
  Napi::Array efds = Napi::Array::New(env);
  for (uint32_t r = 0; r < seg_->rings.size(); r++) efds.Set(r, Napi::Number::New(env, seg_->rings[r].efd));
  o.Set("eventFds", efds);
  return o;
}

// cleanupProcess(pid): free every slot that pid held (it exited). Returns slots cleaned.
Napi::Value Session::CleanupProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  int32_t pid = info[0].As<Napi::Number>().Int32Value();
  uint32_t n = 0;
  for (uint32_t i = 0; i < seg_->hdr->max_slots; i++) {
    ProcSlot* s = &seg_->slots[i];
    if (load_acquire(&s->state) == SLOT_ACTIVE && load_relaxed(&s->pid) == pid && pid != getpid()) {
      cleanup_slot(seg_, i, true);
      n++;
    }
  }
  return Napi::Number::New(env, n);
}

Napi::Value Session::SweepDeadSlots(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  uint32_t n = 0;
  for (uint32_t i = 0; i < seg_->hdr->max_slots; i++) {
    if (slot_owner_dead(&seg_->slots[i])) {
      cleanup_slot(seg_, i, true);
      n++;
    }
  }
  return Napi::Number::New(env, n);
}

// reapNow(ring?) -> CQEs reaped by this call (any process may reap any ring).
Napi::Value Session::ReapNow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  int total = 0;
  for (uint32_t r = 0; r < seg_->rings.size(); r++) {
    if (info[0].IsNumber() && info[0].As<Napi::Number>().Uint32Value() != r) continue;
    int rc = ring_reap(*seg_, r, (uint32_t)slot_, 0);
    if (rc > 0) total += rc;
  }
  return Napi::Number::New(env, total);
}

Napi::Value Session::SetRunState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  store_release(&seg_->hdr->run_state, info[0].As<Napi::Number>().Uint32Value());
  return env.Undefined();
}

Napi::Value Session::RunState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  return Napi::Number::New(env, load_acquire(&seg_->hdr->run_state));
}

Napi::Value Session::Inflight(const Napi::CallbackInfo& info) {
  std::lock_guard<std::mutex> g(mu_);
  return Napi::Number::New(info.Env(), (double)inflight_.size());
}

Napi::Value Session::HandlesInUse(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  return Napi::Number::New(env, handles_in_use(seg_->handles));
}

// handleSnapshot() -> [[index, generation, state, ownerSlot, flags, kind], ...] for every
// handle not FREE (introspection for soaks and tests: who holds what, what is orphaned).
Napi::Value Session::HandleSnapshot(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  Napi::Array a = Napi::Array::New(env);
  uint32_t k = 0;
  const HandleTable& t = seg_->handles;
  for (uint32_t i = 0; i < t.count; i++) {
    uint64_t w = load_acquire(&t.handles[i].word);
    if (hw_state(w) == H_FREE) continue;
    Napi::Array e = Napi::Array::New(env, 6);
    e.Set(0u, Napi::Number::New(env, i));
    e.Set(1u, Napi::Number::New(env, hw_gen(w)));
    e.Set(2u, Napi::Number::New(env, hw_state(w)));
    e.Set(3u, Napi::Number::New(env, hw_owner(w)));
    e.Set(4u, Napi::Number::New(env, hw_flags(w)));
    e.Set(5u, Napi::Number::New(env, load_relaxed(&t.handles[i].kind)));
    a.Set(k++, e);
  }
  return a;
}

Napi::Value Session::Detach(const Napi::CallbackInfo& info) {
  DetachNative();
  return info.Env().Undefined();
}

// waitWord(arenaOffset, value) -> wait id (> 0), or 0 if the word already differs.
// The doorbell thread resolves the wait (delivered as [-1, id, newValue, 0]) once the
// word differs from `value`. JS bounds it with its own timer and cancelWait(id).
Napi::Value Session::WaitWord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  if (!info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "waitWord(offset, value)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double off = info[0].As<Napi::Number>().DoubleValue();
  uint32_t value = info[1].As<Napi::Number>().Uint32Value();
  if (!(off >= 0) || off != std::floor(off) || !word_offset_valid(*seg_, (uint64_t)off)) {
    range_error(env, "wait word offset outside the arena or misaligned").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto* word = reinterpret_cast<uint32_t*>(seg_->arena.base + (uint64_t)off);
  std::lock_guard<std::mutex> g(mu_);
  uint32_t id = ++next_wait_id_;
  if (id == 0) id = ++next_wait_id_;
  waits_.push_back({id, (uint64_t)off, value});
  set_slot_waiting(*seg_, (uint32_t)slot_, true);
  // Flag first, then look: a waker that changed the word before we flagged is seen here.
  if (__atomic_load_n(word, __ATOMIC_SEQ_CST) != value) {
    waits_.pop_back();
    if (waits_.empty()) set_slot_waiting(*seg_, (uint32_t)slot_, false);
    return Napi::Number::New(env, 0);
  }
  if (!tsfn_ref_) {
    tsfn_.Ref(env);
    tsfn_ref_ = true;
  }
  return Napi::Number::New(env, id);
}

Napi::Value Session::CancelWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (detached_) return env.Undefined();
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  std::lock_guard<std::mutex> g(mu_);
  for (size_t i = 0; i < waits_.size(); i++)
    if (waits_[i].id == id) { waits_[i] = waits_.back(); waits_.pop_back(); break; }
  if (waits_.empty()) set_slot_waiting(*seg_, (uint32_t)slot_, false);
  if (inflight_.empty() && waits_.empty() && undelivered_ == 0 && tsfn_ref_) {
    tsfn_.Unref(env);
    tsfn_ref_ = false;
  }
  return env.Undefined();
}

// regionSet(name, offset, size) / regionGet(name) -> {offset, size} | null
Napi::Value Session::RegionSet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int rc = region_set(*seg_, name.c_str(), (uint64_t)info[1].As<Napi::Number>().DoubleValue(),
                      (uint64_t)info[2].As<Napi::Number>().DoubleValue());
  if (rc < 0) make_error(env, errno_code(rc), "region '" + name + "': " + strerror(-rc), rc).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value Session::RegionGet(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  uint64_t off = 0, size = 0;
  int rc = region_get(*seg_, name.c_str(), &off, &size);
  if (rc == -ENOENT) return env.Null();
  if (rc < 0) {
    make_error(env, errno_code(rc), "region '" + name + "': " + strerror(-rc), rc).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("offset", Napi::Number::New(env, (double)off));
  o.Set("size", Napi::Number::New(env, (double)size));
  return o;
}

// Test hooks (RINGMASTER_TEST_HOOKS=1 only): take a ring lock and keep it, so a test
// can SIGKILL the holder; submit a NOP with arbitrary user_data; scribble on shared state.
Napi::Value Session::DebugHoldLock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  if (!test_hooks_enabled() || seg_->hdr->ring_count == 0) return Napi::Boolean::New(env, false);
  uint32_t r = info[0].As<Napi::Number>().Uint32Value() % seg_->hdr->ring_count;
  bool submit = info[1].As<Napi::String>().Utf8Value() == "submit";
  RingShared* rs = &seg_->hdr->rings[r];
  LockResult lr = robust_lock_acquire(submit ? &rs->submit_lock : &rs->complete_lock, kLockTimeoutNs);
  if (submit && lr == LockResult::Acquired && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value()) {
    // Simulate dying mid-submission: an intent record with a published, unsubmitted NOP.
    RingMap& m = seg_->rings[r];
    uint32_t tail = load_relaxed(m.sq_tail);
    int64_t idx = handle_reserve(seg_->handles, (uint32_t)slot_);
    if (idx >= 0) {
      IoHandle* h = &seg_->handles.handles[idx];
      uint32_t gen = hw_gen(load_acquire(&h->word));
      store_relaxed(&h->kind, (uint16_t)0);
      handle_mark_submitted(seg_->handles, (uint32_t)idx);
      io_uring_sqe* sqe = &m.sqes[tail & *m.sq_mask];
      memset(sqe, 0, sizeof(*sqe));
      sqe->opcode = IORING_OP_NOP;
      sqe->user_data = user_data_of((uint32_t)idx, gen);
      m.sq_array[tail & *m.sq_mask] = tail & *m.sq_mask;
      store_relaxed(&rs->intent_tail, tail);
      store_relaxed(&rs->intent_count, 1u);
      store_relaxed(&rs->intent_prepared, 1u);
      store_relaxed(&rs->intent_active, 1u);
      store_release(m.sq_tail, tail + 1);
    }
  }
  return Napi::Boolean::New(env, lr == LockResult::Acquired || lr == LockResult::AcquiredOwnerDied);
}

Napi::Value Session::DebugSubmitRawNop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  if (!test_hooks_enabled() || seg_->hdr->ring_count == 0) return Napi::Boolean::New(env, false);
  uint32_t r = info[0].As<Napi::Number>().Uint32Value() % seg_->hdr->ring_count;
  bool lossless = true;
  uint64_t ud = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  RingShared* rs = &seg_->hdr->rings[r];
  RingMap& m = seg_->rings[r];
  if (robust_lock_acquire(&rs->submit_lock, kLockTimeoutNs) == LockResult::TimedOut) return Napi::Boolean::New(env, false);
  uint32_t tail = load_relaxed(m.sq_tail);
  io_uring_sqe* sqe = &m.sqes[tail & *m.sq_mask];
  memset(sqe, 0, sizeof(*sqe));
  sqe->opcode = IORING_OP_NOP;
  sqe->user_data = ud;
  m.sq_array[tail & *m.sq_mask] = tail & *m.sq_mask;
  store_release(m.sq_tail, tail + 1);
  int rc = 0;
  for (int tries = 0; load_acquire(m.sq_head) != tail + 1 && tries < 1000; tries++)
    rc = sys_io_uring_enter(m.fd, tail + 1 - load_acquire(m.sq_head), 0, 0, nullptr, 0);
  bool ok = load_acquire(m.sq_head) == tail + 1;
  robust_lock_release(&rs->submit_lock);
  (void)rc;
  return Napi::Boolean::New(env, ok);
}

// debugSetFault(index, {opMask, fileSlot, kind, skip, repeat, error}) / debugSetFault(index, null)
// -> false unless RINGMASTER_TEST_HOOKS=1. debugFaultFired(index) -> how often it fired.
Napi::Value Session::DebugSetFault(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  if (!test_hooks_enabled()) return Napi::Boolean::New(env, false);
  uint32_t i = info[0].As<Napi::Number>().Uint32Value();
  if (i >= kMaxFaultRules) {
    range_error(env, "fault rule index out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  FaultTable* ft = &seg_->hdr->faults;
  FaultRule* r = &ft->rules[i];
  store_relaxed(&r->active, 0u);
  if (info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    auto num = [&](const char* k, double d) { Napi::Value v = o.Get(k); return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : d; };
    r->op_mask = (uint32_t)num("opMask", 0);
    r->file_slot = (int32_t)num("fileSlot", -1);
    r->kind = (int32_t)num("kind", -1);
    store_relaxed(&r->skip, (uint32_t)num("skip", 0));
    r->repeat = num("repeat", 0) != 0;
    r->error = (int32_t)num("error", -EIO);
    r->delay_us = (uint32_t)num("delayUs", 0);
    store_relaxed(&r->fired, 0u);
    store_release(&r->active, 1u);
  }
  uint32_t any = 0;
  for (auto& rule : ft->rules) any |= load_relaxed(&rule.active);
  store_release(&ft->enabled, any);
  return Napi::Boolean::New(env, true);
}

Napi::Value Session::DebugFaultFired(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  uint32_t i = info[0].As<Napi::Number>().Uint32Value();
  if (i >= kMaxFaultRules) return Napi::Number::New(env, 0);
  return Napi::Number::New(env, load_relaxed(&seg_->hdr->faults.rules[i].fired));
}

// debugKillPoint(name, {pid, skip} | null): arm (or disarm) a named kill point; the
// matching process SIGKILLs itself on arrival. -> false unless RINGMASTER_TEST_HOOKS=1.
// debugKillPointFired(name) -> arrivals that died there. killPoint(name): a JS-side
// point (WAL, checkpoint) -- never dies unless a test armed it.
static int kill_point_arg(Napi::Env env, const Napi::Value& v) {
  int kp = v.IsString() ? kill_point_by_name(v.As<Napi::String>().Utf8Value().c_str()) : -1;
  if (kp < 0) {
    std::string names;
    for (uint32_t i = 0; i < KP_COUNT; i++) names += std::string(i ? ", " : "") + kKillPointNames[i];
    make_error(env, "ERR_INVALID_ARG_VALUE", "unknown kill point (known: " + names + ")").ThrowAsJavaScriptException();
  }
  return kp;
}

Napi::Value Session::DebugKillPoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  int kp = kill_point_arg(env, info[0]);
  if (kp < 0) return env.Undefined();
  if (!test_hooks_enabled()) return Napi::Boolean::New(env, false);
  FaultTable* ft = &seg_->hdr->faults;
  KillRule& k = ft->kills[kp];
  store_relaxed(&k.armed, 0u);
  if (info[1].IsObject()) {
    Napi::Object o = info[1].As<Napi::Object>();
    auto num = [&](const char* key) { Napi::Value v = o.Get(key); return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0.0; };
    store_relaxed(&k.pid, (int32_t)num("pid"));
    store_relaxed(&k.skip, (uint32_t)num("skip"));
    store_relaxed(&k.fired, 0u);
    store_release(&k.armed, 1u);
  }
  uint32_t any = 0;
  for (auto& r : ft->kills) any |= load_relaxed(&r.armed);
  store_release(&ft->kill_enabled, any);
  return Napi::Boolean::New(env, true);
}

Napi::Value Session::DebugKillPointFired(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  int kp = kill_point_arg(env, info[0]);
  if (kp < 0) return env.Undefined();
  return Napi::Number::New(env, load_relaxed(&seg_->hdr->faults.kills[kp].fired));
}

Napi::Value Session::KillPoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  int kp = kill_point_arg(env, info[0]);
  if (kp < 0) return env.Undefined();
  FaultTable* ft = &seg_->hdr->faults;
  if (info[1].ToBoolean())  // killPoint(name, true): would this process die there? (no death)
    return Napi::Boolean::New(env, kill_point_armed(ft, (rm::KillPoint)kp));
  kill_point(ft, (rm::KillPoint)kp);
  return Napi::Boolean::New(env, false);
}

// debugScribble(region, seed, count?): overwrite a shared table with garbage (a hostile
// peer): the whole table, or `count` entries chosen at random. Returns entries written.
// Regions: 'handles', 'files', 'bufferDescriptors', 'mappingTable' (hash bucket heads).
Napi::Value Session::DebugScribble(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  if (!test_hooks_enabled()) return Napi::Boolean::New(env, false);
  std::string region = info[0].As<Napi::String>().Utf8Value();
  uint32_t seed = info[1].As<Napi::Number>().Uint32Value();
  uint32_t count = info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 0;
  uint8_t* p = nullptr;
  size_t entry = 0, entries = 0;
  if (region == "handles") { p = (uint8_t*)seg_->handles.handles; entry = sizeof(IoHandle); entries = seg_->handles.count; }
  if (region == "files") { p = (uint8_t*)seg_->files; entry = sizeof(FileEntry); entries = seg_->hdr->max_files; }
  if (region == "bufferDescriptors" || region == "mappingTable") {
    PoolView v;
    if (!pool_view(*seg_, &v)) return Napi::Boolean::New(env, false);
    if (region == "bufferDescriptors") { p = (uint8_t*)v.d; entry = sizeof(BufDesc); entries = v.n; }
    else { p = (uint8_t*)v.buckets; entry = sizeof(uint32_t); entries = v.nbuckets; }
  }
  if (!p) return Napi::Boolean::New(env, false);
  seed = seed * 2654435761u | 1;  // xorshift32: every output byte random (an LCG's low bits are not)
  auto next = [&seed] { seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5; return seed; };
  auto fill = [&](uint8_t* e) { for (size_t i = 0; i < entry; i++) e[i] = (uint8_t)next(); };
  if (count == 0 || count >= entries) {
    for (size_t k = 0; k < entries; k++) fill(p + k * entry);
    return Napi::Number::New(env, (double)entries);
  }
  for (uint32_t k = 0; k < count; k++) fill(p + (size_t)(next() % entries) * entry);
  return Napi::Number::New(env, count);
}

uint32_t slot_state_of(void* ctx, uint32_t slot) {
  auto* seg = static_cast<Segment*>(ctx);
  return slot < seg->hdr->max_slots ? load_acquire(&seg->slots[slot].state) : (uint32_t)SLOT_FREE;
}

// verifyHandles(repair) -> { found, repaired, anomalies: [{ index, problem, word, repaired }] }
// One lock-free pass over the handle table (handles_verify); at most 64 anomalies listed.
Napi::Value Session::VerifyHandles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env)) return env.Undefined();
  bool repair = info[0].ToBoolean();
  std::vector<HandleAnomaly> list;
  SegmentHeader* h = seg_->hdr;
  VerifyCounts c = handles_verify(seg_->handles, h->max_slots, h->ring_count ? h->ring_count : h->configured_rings,
                                  slot_state_of, seg_, repair, &list, 64);
  uint32_t found = c.found, repaired = c.repaired;
  Napi::Array arr = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("index", Napi::Number::New(env, list[i].index));
    o.Set("problem", Napi::String::New(env, handle_problem_name(list[i].problem)));
    char word[24];
    snprintf(word, sizeof(word), "0x%016llx", (unsigned long long)list[i].word);
    o.Set("word", Napi::String::New(env, word));
    o.Set("repaired", Napi::Boolean::New(env, list[i].repaired));
    arr.Set(i, o);
  }
  if (found) {
    stat_add(&h->stat_integrity_anomalies, (uint64_t)found);
    stat_add(&h->stat_corrupt_reports, (uint64_t)found);
  }
  if (repaired) stat_add(&h->stat_integrity_repairs, (uint64_t)repaired);
  Napi::Object o = Napi::Object::New(env);
  o.Set("found", Napi::Number::New(env, found));
  o.Set("repaired", Napi::Number::New(env, repaired));
  o.Set("anomalies", arr);
  return o;
}

Napi::Function Session::Init(Napi::Env env) {
  Napi::Function f = DefineClass(env, "NativeSession", {
    InstanceMethod("submit", &Session::Submit),
    InstanceMethod("openFile", &Session::OpenFile),
    InstanceMethod("closeFile", &Session::CloseFile),
    InstanceMethod("fileInfo", &Session::FileInfo),
    InstanceMethod("fileRef", &Session::FileRef),
    InstanceMethod("arena", &Session::Arena),
    InstanceMethod("arenaAlloc", &Session::ArenaAlloc),
    InstanceMethod("info", &Session::Info),
    InstanceMethod("stats", &Session::Stats),
    InstanceMethod("forkFds", &Session::ForkFds),
    InstanceMethod("cleanupProcess", &Session::CleanupProcess),
    InstanceMethod("sweepDeadSlots", &Session::SweepDeadSlots),
    InstanceMethod("reapNow", &Session::ReapNow),
    InstanceMethod("setRunState", &Session::SetRunState),
    InstanceMethod("runState", &Session::RunState),
    InstanceMethod("inflight", &Session::Inflight),
    InstanceMethod("handlesInUse", &Session::HandlesInUse),
    InstanceMethod("handleSnapshot", &Session::HandleSnapshot),
    InstanceMethod("detach", &Session::Detach),
    InstanceMethod("waitWord", &Session::WaitWord),
    InstanceMethod("cancelWait", &Session::CancelWait),
    InstanceMethod("regionSet", &Session::RegionSet),
    InstanceMethod("regionGet", &Session::RegionGet),
    InstanceMethod("debugHoldLock", &Session::DebugHoldLock),
    InstanceMethod("debugSubmitRawNop", &Session::DebugSubmitRawNop),
    InstanceMethod("debugScribble", &Session::DebugScribble),
    InstanceMethod("verifyHandles", &Session::VerifyHandles),
    InstanceMethod("debugSetFault", &Session::DebugSetFault),
    InstanceMethod("debugFaultFired", &Session::DebugFaultFired),
    InstanceMethod("debugKillPoint", &Session::DebugKillPoint),
    InstanceMethod("debugKillPointFired", &Session::DebugKillPointFired),
    InstanceMethod("killPoint", &Session::KillPoint),
  });
  return f;
}

}  // namespace

namespace rm {
Segment* session_segment(Napi::Env env, Napi::Value v, uint32_t* slot) {
  Napi::FunctionReference* ctor = env.GetInstanceData<Napi::FunctionReference>();
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(ctor->Value())) {
    Napi::TypeError::New(env, "expected a NativeSession").ThrowAsJavaScriptException();
    return nullptr;
  }
  Session* s = Session::Unwrap(v.As<Napi::Object>());
  if (!s || s->detached_ || !s->seg_) {
    make_error(env, "ERR_RINGMASTER_DETACHED", "this ringmaster handle is closed (detached from the segment)")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  if (slot) *slot = (uint32_t)s->slot_;
  return s->seg_;
}
Napi::Error module_error(Napi::Env env, const std::string& code, const std::string& msg, int err) {
  return make_error(env, code, msg, err);
}
}  // namespace rm

namespace {

// probe() -> { ok, errno, kernel, memlock }: can this process set up an io_uring?
Napi::Value Probe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  io_uring_params p;
  memset(&p, 0, sizeof(p));
  int fd = sys_io_uring_setup(4, &p);
  o.Set("ok", Napi::Boolean::New(env, fd >= 0));
  o.Set("errno", Napi::Number::New(env, fd >= 0 ? 0 : -fd));
  o.Set("code", Napi::String::New(env, fd >= 0 ? "" : errno_code(fd)));
  o.Set("features", Napi::Number::New(env, fd >= 0 ? p.features : 0));
  if (fd >= 0) close(fd);
  struct utsname u;
  uname(&u);
  o.Set("kernel", Napi::String::New(env, std::string(u.sysname) + " " + u.release));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function s = Session::Init(env);
  // One constructor reference per env (main thread and each worker thread).
  auto* ref = new Napi::FunctionReference(Napi::Persistent(s));
  Session::ctor = ref;
  env.SetInstanceData<Napi::FunctionReference>(ref);
  exports.Set("NativeSession", s);
  exports.Set("createSegment", Napi::Function::New(env, CreateSegment));
  exports.Set("attachForked", Napi::Function::New(env, AttachForked));
  exports.Set("attachThread", Napi::Function::New(env, AttachThread));
  exports.Set("probe", Napi::Function::New(env, Probe));
  register_bufferpool_exports(env, exports);
  register_wal_exports(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(ringmaster, Init)
