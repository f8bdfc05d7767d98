// N-API surface. A Session is one attached JS environment (the postmaster's main
// thread, a forked worker, or a worker thread): it owns a process slot and the
// environment's delivery (delivery.h), whose wake fd its own event loop polls. The
// mechanism lives in files without napi.h: submission.h (staged ops to the kernel),
// delivery.h (completions back to this JS thread), reaper.h (the process's watcher
// threads and reap demand), slot_cleanup.h (slots and the per-process segment life),
// io_method.h (the backend's table of operations). This file only converts values,
// and keeps each session's lifecycle (SessionState, changed only by Session::SetState).
#include <napi.h>
#include <uv.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "atomics.h"
#include "buffer_pool.h"
#include "debug_assert.h"
#include "delivery.h"
#include "io_method.h"
#include "js_bytes.h"
#include "loop_wake.h"
#include "modules.h"
#include "reaper.h"
#include "ring_test_hooks.h"
#include "sched_slice.h"
#include "segment.h"
#include "shared_wait.h"
#include "slot_cleanup.h"
#include "submission.h"

using namespace rm;

namespace {

// The safety sweep of an environment with IO or waits pending: a doorbell lost to a
// reaper that died between its CAS and its wake costs at most this.
constexpr uint32_t kSweepMs = 250;

// RINGMASTER_TRACE=1: lifecycle events on stderr (debugging aid, off by default).
// Read once at load: RM_TRACE runs on every flush and delivery, and a function-local
// static is a call and a guard check each time.
const bool g_trace_on = [] { const char* v = getenv("RINGMASTER_TRACE"); return v && *v == '1'; }();
inline bool trace_enabled() { return g_trace_on; }
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

// Where one JS environment's attachment is in its life. Only Session::SetState changes
// it, and only along these edges:
//   kUnbound --Bind--> kAttached --env cleanup hook--> kTearingDown
//   kAttached | kTearingDown --DetachNative--> kDetaching --> kDetached
// Only an attached session takes calls, delivers completions and runs its loop
// callbacks; every other state answers ERR_RINGMASTER_DETACHED.
enum class SessionState : uint8_t {
  kUnbound,      // constructed; Bind has not succeeded: owns nothing
  kAttached,     // owns a process slot, its delivery and its loop handles
  kTearingDown,  // the environment's cleanup hook runs: no HandleScope, no JS ever again
  kDetaching,    // DetachNative cancels and drains its IO, then lets everything go
  kDetached,     // owns nothing (the loop handles may still be closing)
};

const char* session_state_name(SessionState s) {
  switch (s) {
    case SessionState::kUnbound: return "unbound";
    case SessionState::kAttached: return "attached";
    case SessionState::kTearingDown: return "tearing down";
    case SessionState::kDetaching: return "detaching";
    case SessionState::kDetached: return "detached";
  }
  return "?";
}

class Session : public Napi::ObjectWrap<Session> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::FunctionReference* ctor;
  Session(const Napi::CallbackInfo& info);
  ~Session() override;

  bool Bind(Segment* seg, int slot, bool reaps, Napi::Env env);

 private:
  Napi::Value SetStage(const Napi::CallbackInfo& info);
  Napi::Value Flush(const Napi::CallbackInfo& info);
  Napi::Value FlushFunction(const Napi::CallbackInfo& info);
  static napi_value FlushBound(napi_env env, napi_callback_info info);
  // The work of flush(): throws (pending exception) on a refused batch or a detached session.
  void FlushStaged(Napi::Env env);
  Napi::Value Collect(const Napi::CallbackInfo& info);
  Napi::Value OpenFile(const Napi::CallbackInfo& info);
  Napi::Value CloseFile(const Napi::CallbackInfo& info);
  Napi::Value CloseFileUnlessLast(const Napi::CallbackInfo& info);
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
  Napi::Value SetShutdownExempt(const Napi::CallbackInfo& info);
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
  Napi::Value KillPointProbe(const Napi::CallbackInfo& info);
  Napi::Value WakeInfo(const Napi::CallbackInfo& info);

  bool CheckOpen(Napi::Env env);
  // The one place the lifecycle state changes (SessionState): asserts the transition is legal.
  void SetState(SessionState next);
  // The event loop's callbacks (loop_wake.h), on this environment's JS thread.
  static void OnReady(void* self);
  static void OnSweep(void* self);
  // Hand what delivery collected to JS (_onCompletions), until nothing is left.
  void Deliver();
  // Keep the loop alive while IO or waits are pending; sweep while anything is.
  void UpdateLoopState();
  // JS close() has already waited for its IO; the env cleanup hook has not.
  void DetachNative(int64_t drain_timeout_ns = 500000000ll);
  void CancelAndDrain(int64_t timeout_ns);
  static void AsyncCleanupHook(napi_async_cleanup_hook_handle handle, void* arg);

 public:
  bool attached() const { return state_ == SessionState::kAttached; }
  Segment* seg_ = nullptr;
  int slot_ = -1;
  uint32_t home_ring_ = 0;
  SessionState state_ = SessionState::kUnbound;
  // The postmaster's shutdown checkpoint: this environment may submit while stopping.
  bool shutdown_exempt_ = false;
  Delivery delivery_;
  LoopWake* wake_ = nullptr;
  bool sweeping_ = false;
  // The staging area shared with JS (submission.h) and the completion buffer.
  Napi::Reference<Napi::Float64Array> stage_ref_;
  Napi::Reference<Napi::Int32Array> out_ref_;
  Napi::Reference<Napi::Int32Array> ctl_ref_;
  Napi::Reference<Napi::Array> bufs_ref_;  // private buffers of staged ops, by stage index
  // JS's completion callback, from setStage (else looked up as _onCompletions per delivery).
  Napi::FunctionReference on_completions_;
  FlushScratch scratch_;
  // The link from functions bound to this session (flushFunction(), the modules' bound
  // functions: session_bound_function) to it: shared with them, freed by whichever goes
  // last (all are finalized on this environment's JS thread). `session` is cleared when
  // the session object is destroyed.
  struct SessionLink {
    Session* session;
    int refs;
  };
  SessionLink* link_ = nullptr;
  SessionLink* Link() {
    if (!link_) link_ = new SessionLink{this, 1};
    return link_;
  }
  static void DropLink(SessionLink* l);
  double* stage_ = nullptr;
  uint32_t stage_ops_ = 0;
  int32_t* out_ = nullptr;
  uint32_t out_quads_ = 0;
  int32_t* ctl_ = nullptr;
  Napi::Reference<Napi::ArrayBuffer> arena_ab_;
  napi_env env_ = nullptr;
  napi_async_context async_ctx_ = nullptr;
  // The environment's async cleanup hook: it detaches and then waits (the loop keeps
  // running) for the loop handles to close; whoever closes them last removes it.
  struct HookState {
    napi_async_cleanup_hook_handle handle = nullptr;
    bool handles_closed = false;
  };
  HookState* hook_ = nullptr;
  bool strong_ = false;  // holding a strong reference to our JS object (while attached)
  // Deliver() is on the stack: a JS callback it made must not start another (re-entrancy
  // guard of one activity, not a lifecycle state).
  bool delivering_ = false;
  bool deliver_chunked_ = false;  // Deliver's round hands JS one chunk: flushes leave other completions to it
};

Napi::FunctionReference* Session::ctor = nullptr;

// The preamble of every method that needs an attached session: declares `env`, or
// returns with ERR_RINGMASTER_DETACHED pending.
#define RM_REQUIRE_ATTACHED()   \
  Napi::Env env = info.Env();   \
  if (!CheckOpen(env)) return env.Undefined()

// Tags every NativeSession object, so a module function recognises its session argument
// with one private-field compare (napi_check_object_type_tag) instead of `instanceof`,
// which calls into JS for Symbol.hasInstance: the WAL's commit path makes about ten such
// calls, and instanceof was a tenth of a commit's CPU. The tag also refuses an object
// made with Object.create(NativeSession.prototype), which instanceof accepted.
const napi_type_tag kSessionTypeTag = {0x72696e676d617374ull, 0x657253657373696full};

Session::Session(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Session>(info) {
  napi_type_tag_object(info.Env(), info.This(), &kSessionTypeTag);
}

Session::~Session() {
  RM_TRACE("session %p destroyed (state %s)", (void*)this, session_state_name(state_));
  DetachNative();
  if (link_) {
    link_->session = nullptr;
    DropLink(link_);
    link_ = nullptr;
  }
}

void Session::DropLink(SessionLink* l) {
  if (--l->refs == 0) delete l;
}

void on_wake_closed(void* arg) {
  auto* h = static_cast<Session::HookState*>(arg);
  h->handles_closed = true;
  // Removing the hook also tells a running one (env teardown) that it is finished.
  if (h->handle) napi_remove_async_cleanup_hook(h->handle);
  delete h;
}

void Session::AsyncCleanupHook(napi_async_cleanup_hook_handle handle, void* arg) {
  auto* s = static_cast<Session*>(arg);
  RM_TRACE("session %p env cleanup hook", (void*)s);
  // No HandleScope and no JS ever again: touch no JS handles. A session JS detached
  // earlier (its loop handles still closing) has nothing left to do here.
  if (s->attached()) s->SetState(SessionState::kTearingDown);
  // The environment's heap is about to go: wait longer for IO into its buffers.
  s->DetachNative(10000000000ll);
}

bool Session::Bind(Segment* seg, int slot, bool reaps, Napi::Env env) {
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) return false;
  seg_ = seg;
  slot_ = slot;
  home_ring_ = seg->slots[slot].home_ring;
  env_ = env;
  int rc = delivery_.open(seg, (uint32_t)slot, load_relaxed(&seg->hdr->backend) == BACKEND_IO_URING, reaps);
  if (rc < 0) return false;
  hook_ = new HookState();
  LoopWakeCallbacks cb{OnReady, OnSweep, this, on_wake_closed, hook_};
  wake_ = loop_wake_start(loop, delivery_.poll_fd(), cb);
  if (!wake_) {
    delete hook_;
    hook_ = nullptr;
    delivery_.close();
    return false;
  }
  SetState(SessionState::kAttached);
  napi_value resource_name;
  napi_create_string_utf8(env, "ringmaster-completions", NAPI_AUTO_LENGTH, &resource_name);
  napi_value resource;
  napi_create_object(env, &resource);
  napi_async_init(env, resource, resource_name, &async_ctx_);
  // An attached session owns a process slot and delivers completions to its JS object:
  // hold that object strongly until detach. ObjectWrap alone is weak, and an awaiting
  // caller's frame -> promise -> resolver -> handle cycle has no other root, so GC
  // would otherwise collect a handle with IO in flight (seen: a hung await).
  Ref();
  strong_ = true;
  RM_TRACE("session %p bound: segment %llu slot %d wake %s", (void*)this, (unsigned long long)seg->id, slot,
           delivery_.channel() == WakeChannel::Ring ? (delivery_.self_wake_fd() >= 0 ? "ring+self" : "ring") : "eventfd");
  napi_add_async_cleanup_hook(env, AsyncCleanupHook, this, &hook_->handle);
  return true;
}

// After loop_wake_close the loop calls only `closed` (with the hook state, not the
// session, which may be gone by then).
void Session::OnReady(void* self) {
  auto* s = static_cast<Session*>(self);
  if (!s->attached()) return;
  // What the wake brought reaches JS first; the doorbell wait is re-armed after (an
  // io_uring_enter less between another process's ring and this thread's JS), then
  // everything is scanned again for a ring that came before the arm.
  s->delivery_.on_ready(true);
  s->Deliver();
  if (s->attached() && s->delivery_.arm_deferred()) s->Deliver();
}

void Session::OnSweep(void* self) {
  auto* s = static_cast<Session*>(self);
  if (!s->attached()) return;
  // Safety net: a doorbell lost to a reaper that died between its CAS and its wake, a
  // reap signal the kernel skipped (reaper.h).
  s->delivery_.sweeps++;
  size_t before = s->delivery_.inflight();
  s->delivery_.on_ready();
  s->delivery_.want_full_scan();
  // Our own CQEs; every ring's while we wait on a word that another process's CQE may
  // change (its issuer busy, a reap signal skipped). Other processes' own completions
  // are theirs to take.
  s->delivery_.reap_own(s->delivery_.reap_mask());
  s->delivery_.reap_stalled();
  s->Deliver();
  // Deliver ran JS, which may have detached the session.
  if (s->attached() && s->delivery_.inflight() < before) s->delivery_.swept += before - s->delivery_.inflight();
  if (s->attached() && s->delivery_.inflight() == 0 && s->delivery_.waits() == 0) {
    loop_wake_sweep_every(s->wake_, 0);
    s->sweeping_ = false;
  }
}

constexpr uint32_t kDeliverFirstChunk = 2;

void Session::Deliver() {
  if (!attached() || delivering_) return;
  delivering_ = true;
  Napi::Env env(env_);
  Napi::HandleScope scope(env);
  // Completions that arrived together (a device completes a whole queue at once) reach JS
  // in chunks of 2, 4, 8, ...: each chunk's callback returns to the loop's microtask
  // checkpoint, where the reads its continuations start are flushed to the kernel before
  // the next chunk is settled. Settled all at once, every new read waited for the last
  // completion's JS and went out in one enter, and the device sat idle meanwhile.
  uint32_t chunk = kDeliverFirstChunk;
  // The receiver and the callback, looked up at the first chunk and kept for the others.
  Napi::Object self;
  Napi::Value cb;
  for (int rounds = 0; rounds < 1000 && attached(); rounds++) {
    bool more = false;
    deliver_chunked_ = rounds < 64;
    uint32_t n = delivery_.collect(out_, chunk < out_quads_ ? chunk : out_quads_, &more);
    if (n == 0) break;
    if (chunk < out_quads_) chunk *= 2;
    RM_TRACE("session %p delivers %u", (void*)this, n);
    if (cb.IsEmpty()) {
      self = Value();
      if (self.IsEmpty()) break;
      // The callback given to setStage (a reference: no property lookup, which would
      // also build the name's string, per wakeup), checked to be a function there: a
      // typeof per wake cost several V8 calls (napi_typeof tries each type in turn).
      // Else the _onCompletions property, checked here.
      if (!on_completions_.IsEmpty()) {
        cb = on_completions_.Value();
      } else {
        cb = self.Get("_onCompletions");
        if (!cb.IsEmpty() && !cb.IsFunction()) cb = Napi::Value();
      }
      if (cb.IsEmpty()) break;
    }
    napi_value argv[1] = {Napi::Number::New(env, n)};
    napi_value result;
    napi_status st = napi_make_callback(env, async_ctx_, self, cb, 1, argv, &result);
    if (st == napi_pending_exception) {
      napi_value err;
      napi_get_and_clear_last_exception(env, &err);
      napi_fatal_exception(env, err);
      break;
    }
    if (st != napi_ok) break;
    // Not done at !more: the flushes run by this chunk's microtasks left the completions
    // they reaped to the next round (FlushStaged does not collect during a chunked
    // round). After 64 rounds the flushes collect again, as outside a delivery, and the
    // delivery ends at the first round that empties the queue, so that a stream of
    // completions does not keep the loop's other handles (timers, sockets) waiting.
    if (!more && !deliver_chunked_) break;
  }
  deliver_chunked_ = false;
  delivering_ = false;
  if (attached()) UpdateLoopState();
}

void Session::UpdateLoopState() {
  // A direct wait resolved or added: its CQ polls removed or armed now.
  delivery_.sync_cq_polls();
  bool pending = delivery_.inflight() > 0 || delivery_.waits() > 0;
  loop_wake_ref(wake_, pending);
  // The sweep runs while anything is pending; it stops itself once nothing is (OnSweep),
  // so an op that completes within a turn does not start and stop a timer.
  if (pending && !sweeping_) {
    loop_wake_sweep_every(wake_, kSweepMs);
    sweeping_ = true;
  }
}

// Cancel what this environment still has in flight and wait (bounded) until it is
// done: the kernel or the pool may otherwise write into buffers of a heap that is
// about to be freed (a terminated worker thread). Completions collected here are
// dropped: JS settles what is still pending as closed.
void Session::CancelAndDrain(int64_t timeout_ns) {
  if (delivery_.inflight() == 0) return;
  std::vector<OrphanRef> refs;
  for (auto& op : delivery_.ops()) refs.push_back({op.index, op.gen, op.ring});
  io_method(*seg_).cancel_issuer(*seg_, (uint32_t)slot_, refs);
  std::vector<int32_t> sink(4 * 256);
  uint64_t deadline = monotonic_ns() + (uint64_t)timeout_ns;
  for (;;) {
    delivery_.on_ready();
    delivery_.reap_own();
    delivery_.want_full_scan();
    bool more = true;
    while (more) delivery_.collect(sink.data(), 256, &more);
    if (delivery_.inflight() == 0) return;
    if (monotonic_ns() >= deadline) return;
    usleep(1000);
  }
}

void Session::DetachNative(int64_t drain_timeout_ns) {
  // Unbound: nothing to let go. Detached: env teardown after an earlier detach whose loop
  // handles are still closing; the close callback removes the hook (napi runs the loop
  // until it does).
  if (state_ != SessionState::kAttached && state_ != SessionState::kTearingDown) return;
  // The environment is going away: its references are freed by it, and no JS may run.
  const bool env_gone = state_ == SessionState::kTearingDown;
  RM_TRACE("session %p detaching: segment %llu slot %d", (void*)this, (unsigned long long)seg_->id, slot_);
  SetState(SessionState::kDetaching);
  CancelAndDrain(drain_timeout_ns);
  delivery_.waits_clear();
  // Close the loop handles before the fd they poll; from here on the loop calls only
  // the close callback, which owns the hook state (this session may be gone by then).
  if (wake_) {
    LoopWake* w = wake_;
    wake_ = nullptr;
    hook_ = nullptr;  // the close callback owns it now
    loop_wake_close(w);
  } else if (hook_) {
    if (hook_->handle) napi_remove_async_cleanup_hook(hook_->handle);
    delete hook_;
    hook_ = nullptr;
  }
  delivery_.close();
  if (async_ctx_ && !env_gone) napi_async_destroy(env_, async_ctx_);
  async_ctx_ = nullptr;
  if (strong_) {
    strong_ = false;
    Unref();  // now collectable; the destructor finds it detached
  }
  if (env_gone) {
    arena_ab_.SuppressDestruct();  // the environment frees its references itself
    stage_ref_.SuppressDestruct();
    out_ref_.SuppressDestruct();
    ctl_ref_.SuppressDestruct();
    bufs_ref_.SuppressDestruct();
    on_completions_.SuppressDestruct();
  } else {
    if (!arena_ab_.IsEmpty()) {
      // Views over the arena become zero-length instead of dangling after unmap.
      Napi::HandleScope scope{Napi::Env(env_)};
      Napi::ArrayBuffer ab = arena_ab_.Value();
      if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
      arena_ab_.Reset();
    }
    stage_ref_.Reset();
    out_ref_.Reset();
    ctl_ref_.Reset();
    bufs_ref_.Reset();
    on_completions_.Reset();  // it closes over the JS handle that holds this session
  }
  stage_ = nullptr;
  out_ = nullptr;
  ctl_ = nullptr;
  Segment* seg = seg_;
  bool last = forget_local_slot(seg, (uint32_t)slot_);
  // Anything still in flight is orphaned: the completer frees it.
  cleanup_slot(seg, (uint32_t)slot_, false);
  if (last && !process_last_env_gone(seg))
    RM_TRACE("segment %llu kept mapped: a pool thread is still blocked", (unsigned long long)seg->id);
  seg_ = nullptr;
  SetState(SessionState::kDetached);
}

void Session::SetState(SessionState next) {
  const SessionState from = state_;
  const bool legal = (from == SessionState::kUnbound && next == SessionState::kAttached) ||
                     (from == SessionState::kAttached && next == SessionState::kTearingDown) ||
                     (from == SessionState::kAttached && next == SessionState::kDetaching) ||
                     (from == SessionState::kTearingDown && next == SessionState::kDetaching) ||
                     (from == SessionState::kDetaching && next == SessionState::kDetached);
  RM_ASSERT(legal);
  (void)legal;
  RM_TRACE("session %p: %s -> %s", (void*)this, session_state_name(from), session_state_name(next));
  state_ = next;
}

bool Session::CheckOpen(Napi::Env env) {
  if (!attached() || !seg_) {
    make_error(env, "ERR_RINGMASTER_DETACHED", "this ringmaster handle is closed (detached from the segment)")
        .ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

Napi::Value make_session(Napi::Env env, Segment* seg, SlotKind kind, bool reaps, bool new_segment) {
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
  process_env_attached(seg, (uint32_t)slot, kind, reaps, new_segment);
  // A worker thread terminated inside attach() gets here with an environment that can
  // no longer run JS: construction fails and yields an empty object. Unwrapping that
  // (node-addon-api: Error::New on a null env) aborts the whole process, so check
  // every step and give the slot back instead.
  Napi::FunctionReference* ctor = env.GetInstanceData<Napi::FunctionReference>();
  Napi::Object obj = ctor ? ctor->New({}) : Napi::Object();
  Session* s = obj.IsEmpty() ? nullptr : Session::Unwrap(obj);
  // An environment reaps its own rings if its process runs reapers.
  bool env_reaps = !seg->watchers.empty();
  if (s == nullptr || !s->Bind(seg, slot, env_reaps, env)) {
    forget_local_slot(seg, (uint32_t)slot);
    cleanup_slot(seg, (uint32_t)slot, false);
    return env.Undefined();  // callers that created the segment undo it (forget_segment)
  }
  return obj;
}

// createSegment(options)
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
  segment_registry_add(seg);
  Napi::Value sess = make_session(env, seg, SLOT_POSTMASTER, reaps, true);
  if (sess.IsUndefined()) forget_segment(seg, true);
  return sess;
}

// attachForked(memfd, ringFds, options)
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
  if (segment_registry_has(seg->id)) {
    segment_unmap(seg);
    delete seg;
    make_error(env, "ERR_RINGMASTER_ALREADY_ATTACHED", "this process is already attached to that segment")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!segment_running(*seg)) {
    segment_unmap(seg);
    delete seg;
    make_error(env, "ESHUTDOWN", "the postmaster has stopped; its rings accept no more IO", ESHUTDOWN)
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  segment_registry_add(seg);
  Napi::Value sess = make_session(env, seg, SLOT_FORKED, reaps, true);
  // No slot: undo the mapping so a later attach() can succeed once a slot frees up.
  if (sess.IsUndefined()) forget_segment(seg, false);
  return sess;
}

// attachThread(segmentId): a worker thread of a process that has the segment mapped.
Napi::Value AttachThread(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double id = info[0].As<Napi::Number>().DoubleValue();
  Segment* seg = segment_registry_find((uint64_t)id);
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
  return make_session(env, seg, SLOT_THREAD, false, false);
}

// setStage(fields: Float64Array(kOpFields x capacity), out: Int32Array(4 x quads), ctl: Int32Array(8),
// buffers: Array, onCompletions?: (count) => void): the staging area, the completion
// buffer, the control words and the private buffers of staged ops (by stage index) this
// environment shares with JS, and the function deliveries call.
Napi::Value Session::SetStage(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      !info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      !info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
      !info[3].IsArray()) {
    module_type_error(env, "setStage(Float64Array, Int32Array, Int32Array, Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Float64Array f = info[0].As<Napi::Float64Array>();
  Napi::Int32Array o = info[1].As<Napi::Int32Array>();
  Napi::Int32Array c = info[2].As<Napi::Int32Array>();
  if (f.Data() == nullptr || o.Data() == nullptr || c.Data() == nullptr || c.ElementLength() < 8 ||
      o.ElementLength() / kQuad < f.ElementLength() / kOpFields + 1) {
    range_error(env, "the completion buffer must hold a quad per staged op, and more").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  stage_ref_ = Napi::Reference<Napi::Float64Array>::New(f, 1);
  out_ref_ = Napi::Reference<Napi::Int32Array>::New(o, 1);
  ctl_ref_ = Napi::Reference<Napi::Int32Array>::New(c, 1);
  bufs_ref_ = Napi::Reference<Napi::Array>::New(info[3].As<Napi::Array>(), 1);
  if (info.Length() > 4 && info[4].IsFunction()) on_completions_ = Napi::Persistent(info[4].As<Napi::Function>());
  stage_ = f.Data();
  stage_ops_ = (uint32_t)(f.ElementLength() / kOpFields);
  out_ = o.Data();
  out_quads_ = (uint32_t)(o.ElementLength() / kQuad);
  ctl_ = c.Data();
  return env.Undefined();
}

struct BufferLookup {
  Napi::Reference<Napi::Array>* ref;
  Napi::Array bufs;  // fetched on first use: most ops use the arena
};

// Any ArrayBufferView, read with plain Node-API calls (js_bytes.h: node-addon-api's
// ArrayBuffer wrapper aborts the process on a SharedArrayBuffer).
bool resolve_buffer(void* ctx, uint32_t i, PrivateBuffer* out) {
  auto* b = static_cast<BufferLookup*>(ctx);
  if (b->bufs.IsEmpty()) b->bufs = b->ref->Value();
  if (b->bufs.IsEmpty()) return false;  // terminating env
  Napi::Value v = b->bufs.Get(i);
  if (v.IsEmpty()) return false;  // terminating env
  JsBytes bytes;
  const char* why = nullptr;
  if (!js_bytes(v.Env(), v, &bytes, &why)) {
    out->not_a_view = why;
    return true;
  }
  out->typed_array = true;
  out->detached = bytes.detached;
  out->data = bytes.data;
  out->length = bytes.length;
  return true;
}

// flush(): submit staged ops [ctl[4], ctl[5]) (no arguments: one N-API call per turn).
// Returns the ops consumed, also in ctl[3]. Per consumed op, out[4k..4k+3] = (handle
// index, generation, result or INT32_MIN if pending, reaper slot); then ctl[1] more
// quads of this environment's other completions; ctl[0] = why it stopped early (0,
// -EAGAIN, -ETIMEDOUT, -ESHUTDOWN); ctl[2] = 1: call collect() for more. A batch that
// fails validation throws its error with .consumed, .batchStart and .batchEnd.
Napi::Value Session::Flush(const Napi::CallbackInfo& info) {
  FlushStaged(info.Env());
  return info.Env().Undefined();
}

// flushFunction() -> a function that does what flush() does, called without a receiver:
// the per-turn call then skips the receiver's unwrap (a private-symbol property lookup,
// about a tenth of a microsecond, which ObjectWrap pays on every method call).
Napi::Value Session::FlushFunction(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  SessionLink* link = Link();
  napi_value fn;
  if (napi_create_function(env, "flush", NAPI_AUTO_LENGTH, &Session::FlushBound, link, &fn) != napi_ok) {
    Napi::Error::New(env, "flushFunction: napi_create_function failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  link->refs++;
  if (napi_add_finalizer(env, fn, link, [](napi_env, void* data, void*) { DropLink(static_cast<SessionLink*>(data)); },
                         nullptr, nullptr) != napi_ok) {
    link->refs--;
    Napi::Error::New(env, "flushFunction: napi_add_finalizer failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Value(env, fn);
}

napi_value Session::FlushBound(napi_env env, napi_callback_info info) {
  void* data = nullptr;
  size_t argc = 0;
  if (napi_get_cb_info(env, info, &argc, nullptr, nullptr, &data) != napi_ok || !data) return nullptr;
  Session* s = static_cast<SessionLink*>(data)->session;
  if (!s) {
    make_error(env, "ERR_RINGMASTER_DETACHED", "this ringmaster handle is closed (its native session is released)")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  s->FlushStaged(Napi::Env(env));
  return nullptr;
}

void Session::FlushStaged(Napi::Env env) {
  if (!CheckOpen(env)) return;
  if (!stage_) {
    module_type_error(env, "flush() before setStage()").ThrowAsJavaScriptException();
    return;
  }
  uint32_t start = (uint32_t)ctl_[4];
  uint32_t end = (uint32_t)ctl_[5];
  if (start > end || end > stage_ops_ || end - start > out_quads_) {
    range_error(env, "flush range outside the staging area").ThrowAsJavaScriptException();
    return;
  }
  BufferLookup lookup{&bufs_ref_, Napi::Array()};
  FlushOutcome o = flush_staged(*seg_, (uint32_t)slot_, home_ring_, shutdown_exempt_, delivery_, scratch_, stage_, start,
                                end, resolve_buffer, &lookup, out_);
  RM_TRACE("session %p flush [%u,%u) consumed %u stop %d", (void*)this, start, end, o.consumed, o.stop);
  ctl_[0] = o.stop;
  ctl_[1] = 0;
  ctl_[2] = 0;
  // Inside a delivery (a chunk's microtasks), the other completions are Deliver's next
  // chunk: collected here, they would all be settled before this flush's reads go out.
  if (!o.terminating && o.consumed < out_quads_ && !(delivering_ && deliver_chunked_)) {
    bool more = false;
    ctl_[1] = (int32_t)delivery_.collect(out_ + (size_t)o.consumed * kQuad, out_quads_ - o.consumed, &more);
    ctl_[2] = more ? 1 : 0;
  }
  UpdateLoopState();
  if (o.terminating) return;
  if (o.invalid && o.error_batch == start + o.consumed) {
    int rc = o.error;
    std::string msg = o.why;
    Napi::Error e;
    if (rc == -EBADF) e = make_error(env, "ERR_RINGMASTER_BAD_FILE", msg, rc);
    else if (rc == -EOPNOTSUPP) e = make_error(env, "EOPNOTSUPP", msg, rc);
    else if (rc == -ERANGE) e = range_error(env, msg);
    else {
      e = Napi::TypeError::New(env, msg);
      e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_VALUE"));
    }
    e.Set("consumed", Napi::Number::New(env, o.consumed));
    e.Set("batchStart", Napi::Number::New(env, o.error_batch));
    e.Set("batchEnd", Napi::Number::New(env, o.error_batch_end));
    e.ThrowAsJavaScriptException();
    return;
  }
  ctl_[3] = (int32_t)o.consumed;
}

// collect() -> quads of this environment's completions now in out; ctl[2] = 1: more.
Napi::Value Session::Collect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckOpen(env) || !out_) return env.Undefined();
  bool more = false;
  uint32_t n = delivery_.collect(out_, out_quads_, &more);
  ctl_[2] = more ? 1 : 0;
  UpdateLoopState();
  return Napi::Number::New(env, n);
}

// wakeInfo() -> { channel: 'ring' | 'eventfd', selfWake } (diagnostics, tests)
Napi::Value Session::WakeInfo(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  Napi::Object o = Napi::Object::New(env);
  o.Set("channel", Napi::String::New(env, delivery_.channel() == WakeChannel::Ring ? "ring" : "eventfd"));
  o.Set("selfWake", Napi::Boolean::New(env, delivery_.self_wake_fd() >= 0));
  o.Set("reaps", Napi::Boolean::New(env, delivery_.reaps()));
  o.Set("selfWakes", Napi::Number::New(env, (double)delivery_.self_wakes));
  o.Set("doorbells", Napi::Number::New(env, (double)delivery_.doorbells));
  o.Set("sweeps", Napi::Number::New(env, (double)delivery_.sweeps));
  o.Set("swept", Napi::Number::New(env, (double)delivery_.swept));
  o.Set("reapedHere", Napi::Number::New(env, (double)delivery_.reaped_here));
  o.Set("cqWakes", Napi::Number::New(env, (double)delivery_.cq_wakes));
  o.Set("stalledReaps", Napi::Number::New(env, (double)delivery_.stalled_reaps));
  return o;
}

// openFile(relPath, flags, mode) -> file id (file_open: file_table.h)
Napi::Value Session::OpenFile(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int flags = info[1].As<Napi::Number>().Int32Value();
  int mode = info[2].As<Napi::Number>().Int32Value();
  if (path.empty() || path.size() >= kMaxRelPath || path.find('\0') != std::string::npos) {
    range_error(env, "file path must be 1.." + std::to_string(kMaxRelPath - 1) + " bytes without NUL").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  FileOpenResult r;
  int rc = file_open(*seg_, path.c_str(), flags, mode, &r);
  if (rc == 0) return Napi::Number::New(env, (double)r.id);
  int e = -rc;
  std::string code = errno_code(e), msg;
  switch (r.failed) {
    case FileOpenStep::Open:
      if (e == EXDEV) code = "ERR_RINGMASTER_PATH_ESCAPE";
      msg = e == EXDEV ? "path '" + path + "' escapes the data directory" : "cannot open '" + path + "': " + strerror(e);
      break;
    case FileOpenStep::Stat: msg = std::string("fstat: ") + strerror(e); break;
    case FileOpenStep::DirSync:
      msg = "created '" + path + "' but syncing its directory '" + r.failed_dir + "' failed: " + strerror(e);
      break;
    case FileOpenStep::Lock: msg = "the shared file table is locked by a stopped process"; break;
    case FileOpenStep::TableFull: msg = "the shared file table is full (raise maxFiles)"; break;
    default: msg = std::string("registering file: ") + strerror(e); break;
  }
  make_error(env, code, msg, e).ThrowAsJavaScriptException();
  return env.Undefined();
}

// closeFile(id, force, epoch?) -> true (closed or released), false (not open), or, for the
// last handle of a file with writes no sync pass has covered, { fsync } and nothing changed:
// the caller syncs it (file_sync.h) and closes again. `force` closes anyway. With `epoch`
// (from closeFileUnlessLast), a last handle that had company since then is not closed:
// { reopened: epoch } (the new epoch), nothing changed.
Napi::Value Session::CloseFile(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  double id = info[0].As<Napi::Number>().DoubleValue();
  bool force = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
  bool has_epoch = info.Length() > 2 && info[2].IsNumber();
  uint32_t epoch = has_epoch ? info[2].As<Napi::Number>().Uint32Value() : 0;
  bool needs_fsync = false;
  switch (file_close(*seg_, id, force, &needs_fsync, has_epoch ? &epoch : nullptr)) {
    case FileClose::Released:
    case FileClose::Closed: return Napi::Boolean::New(env, true);
    case FileClose::NotOpen:
    case FileClose::Last: return Napi::Boolean::New(env, false);
    case FileClose::SyncFirst: {
      Napi::Object need = Napi::Object::New(env);
      need.Set("fsync", Napi::Boolean::New(env, needs_fsync));
      return need;
    }
    case FileClose::Reopened: {
      Napi::Object again = Napi::Object::New(env);
      again.Set("reopened", Napi::Number::New(env, epoch));
      return again;
    }
  }
  return Napi::Boolean::New(env, false);
}

// closeFileUnlessLast(id) -> true (one reference fewer: other handles remain), false (not
// open), or { last: epoch } (the only reference; nothing changed: prepare the file, then
// closeFile(id, false, epoch)).
Napi::Value Session::CloseFileUnlessLast(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  uint32_t epoch = 0;
  switch (file_close_unless_last(*seg_, info[0].As<Napi::Number>().DoubleValue(), &epoch)) {
    case FileClose::Released: return Napi::Boolean::New(env, true);
    case FileClose::Last: {
      Napi::Object last = Napi::Object::New(env);
      last.Set("last", Napi::Number::New(env, epoch));
      return last;
    }
    default: return Napi::Boolean::New(env, false);
  }
}

// fileRef(id) -> true if the id names an open file; counts one more handle on it.
Napi::Value Session::FileRef(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  return Napi::Boolean::New(env, file_ref(*seg_, info[0].As<Napi::Number>().DoubleValue()));
}

Napi::Value Session::FileInfo(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  FileDescription d;
  if (!file_describe(*seg_, info[0].As<Napi::Number>().DoubleValue(), &d)) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("path", Napi::String::New(env, d.path));
  o.Set("flags", Napi::Number::New(env, d.flags));
  o.Set("slot", Napi::Number::New(env, d.slot));
  return o;
}

Napi::Value Session::Arena(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  if (!arena_ab_.IsEmpty()) return arena_ab_.Value();
  auto ab = Napi::ArrayBuffer::New(env, seg_->arena.base, seg_->arena.size);  // external, not owned
  arena_ab_ = Napi::Reference<Napi::ArrayBuffer>::New(ab, 1);
  return ab;
}

Napi::Value Session::ArenaAlloc(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  double size = info[0].As<Napi::Number>().DoubleValue();
  double align = info[1].As<Napi::Number>().DoubleValue();
  if (!(size > 0) || size != std::floor(size) || !(align >= 1) || ((uint64_t)align & ((uint64_t)align - 1))) {
    range_error(env, "size must be a positive integer and alignment a power of two").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint64_t offset = 0;
  if (arena_alloc(*seg_, (uint64_t)size, (uint64_t)align, &offset) < 0) {
    make_error(env, "ERR_RINGMASTER_ARENA_FULL",
               "the shared arena has no room for " + std::to_string((uint64_t)size) + " bytes (raise arenaSize)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, (double)offset);
}

Napi::Value Session::Info(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
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
  RM_REQUIRE_ATTACHED();
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
    ro.Set("reapedByWatchers", num(load_relaxed(&rs->stat_watcher_reaps)));
    if (r < seg_->rings.size()) ro.Set("cqPending", num(load_acquire(seg_->rings[r].cq_tail) - load_acquire(seg_->rings[r].cq_head)));
    ro.Set("eventfdArmed", Napi::Boolean::New(env, r < seg_->rings.size() && seg_->rings[r].cq_flags && seg_->rings[r].efd >= 0 &&
                                                   !(load_acquire(seg_->rings[r].cq_flags) & IORING_CQ_EVENTFD_DISABLED)));
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
  RM_REQUIRE_ATTACHED();
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
  RM_REQUIRE_ATTACHED();
  int32_t pid = info[0].As<Napi::Number>().Int32Value();
  return Napi::Number::New(env, cleanup_process_slots(seg_, pid));
}

Napi::Value Session::SweepDeadSlots(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  return Napi::Number::New(env, sweep_dead_slots(seg_));
}

// reapNow(ring?) -> CQEs reaped by this call (any process may reap any ring).
Napi::Value Session::ReapNow(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  int total = 0;
  for (uint32_t r = 0; r < seg_->rings.size(); r++) {
    if (info[0].IsNumber() && info[0].As<Napi::Number>().Uint32Value() != r) continue;
    int rc = ring_reap(*seg_, r, (uint32_t)slot_, 0);
    if (rc > 0) total += rc;
  }
  return Napi::Number::New(env, total);
}

Napi::Value Session::SetRunState(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  store_release(&seg_->hdr->run_state, info[0].As<Napi::Number>().Uint32Value());
  return env.Undefined();
}

// setShutdownExempt(on): only the postmaster's stop() sets it, after its workers exited.
Napi::Value Session::SetShutdownExempt(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  shutdown_exempt_ = info[0].ToBoolean();
  return env.Undefined();
}

Napi::Value Session::RunState(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  return Napi::Number::New(env, load_acquire(&seg_->hdr->run_state));
}

Napi::Value Session::Inflight(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), (double)delivery_.inflight());
}

Napi::Value Session::HandlesInUse(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  return Napi::Number::New(env, handles_in_use(seg_->handles));
}

// handleSnapshot() -> [[index, generation, state, ownerSlot, flags, kind], ...] for every
// handle not FREE (introspection for soaks and tests: who holds what, what is orphaned).
Napi::Value Session::HandleSnapshot(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
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

// waitWord(arenaOffset, value, direct?) -> wait id (> 0), or 0 if the word already differs.
// The doorbell thread resolves the wait (delivered as [-1, id, newValue, 0]) once the
// word differs from `value`. JS bounds it with its own timer and cancelWait(id).
Napi::Value Session::WaitWord(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  if (!info[0].IsNumber() || !info[1].IsNumber()) {
    module_type_error(env, "waitWord(offset, value)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double off = info[0].As<Napi::Number>().DoubleValue();
  uint32_t value = info[1].As<Napi::Number>().Uint32Value();
  if (!(off >= 0) || off != std::floor(off) || !word_offset_valid(*seg_, (uint64_t)off)) {
    range_error(env, "wait word offset outside the arena or misaligned").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // A third argument, true: a CQE's completion action sets the word (a completion word),
  // so the shared rings' CQ signals wake this thread directly while it waits.
  bool direct = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  uint32_t id = delivery_.wait_add((uint64_t)off, value, direct);
  UpdateLoopState();
  return Napi::Number::New(env, id);
}

Napi::Value Session::CancelWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!attached()) return env.Undefined();
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  delivery_.wait_cancel(id);
  UpdateLoopState();
  return env.Undefined();
}

// regionSet(name, offset, size) / regionGet(name) -> {offset, size} | null
Napi::Value Session::RegionSet(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  int rc = region_set(*seg_, name.c_str(), (uint64_t)info[1].As<Napi::Number>().DoubleValue(),
                      (uint64_t)info[2].As<Napi::Number>().DoubleValue());
  if (rc < 0) make_error(env, errno_code(rc), "region '" + name + "': " + strerror(-rc), rc).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value Session::RegionGet(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
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
  RM_REQUIRE_ATTACHED();
  if (!test_hooks_enabled() || seg_->hdr->ring_count == 0) return Napi::Boolean::New(env, false);
  uint32_t r = info[0].As<Napi::Number>().Uint32Value() % seg_->hdr->ring_count;
  bool submit = info[1].As<Napi::String>().Utf8Value() == "submit";
  bool mid_submission = info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
  return Napi::Boolean::New(env, ring_hook_hold_lock(*seg_, r, submit, mid_submission, (uint32_t)slot_));
}

Napi::Value Session::DebugSubmitRawNop(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  if (!test_hooks_enabled() || seg_->hdr->ring_count == 0) return Napi::Boolean::New(env, false);
  uint32_t r = info[0].As<Napi::Number>().Uint32Value() % seg_->hdr->ring_count;
  bool lossless = true;
  uint64_t ud = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
  return Napi::Boolean::New(env, ring_hook_submit_raw_nop(*seg_, r, ud));
}

// debugSetFault(index, {opMask, fileSlot, kind, skip, repeat, error}) / debugSetFault(index, null)
// -> false unless RINGMASTER_TEST_HOOKS=1. debugFaultFired(index) -> how often it fired.
Napi::Value Session::DebugSetFault(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  if (!test_hooks_enabled()) return Napi::Boolean::New(env, false);
  uint32_t i = info[0].As<Napi::Number>().Uint32Value();
  if (i >= kMaxFaultRules) {
    range_error(env, "fault rule index out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!info[1].IsObject()) {
    fault_rule_set(&seg_->hdr->faults, i, nullptr);
    return Napi::Boolean::New(env, true);
  }
  Napi::Object o = info[1].As<Napi::Object>();
  auto num = [&](const char* k, double d) { Napi::Value v = o.Get(k); return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : d; };
  FaultRule r{};
  r.op_mask = (uint32_t)num("opMask", 0);
  r.file_slot = (int32_t)num("fileSlot", -1);
  r.kind = (int32_t)num("kind", -1);
  r.skip = (uint32_t)num("skip", 0);
  r.repeat = num("repeat", 0) != 0;
  r.error = (int32_t)num("error", -EIO);
  r.delay_us = (uint32_t)num("delayUs", 0);
  fault_rule_set(&seg_->hdr->faults, i, &r);
  return Napi::Boolean::New(env, true);
}

Napi::Value Session::DebugFaultFired(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
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
  RM_REQUIRE_ATTACHED();
  int kp = kill_point_arg(env, info[0]);
  if (kp < 0) return env.Undefined();
  if (!test_hooks_enabled()) return Napi::Boolean::New(env, false);
  bool arm = info[1].IsObject();
  double pid = 0, skip = 0;
  bool stop = false;
  if (arm) {
    Napi::Object o = info[1].As<Napi::Object>();
    auto num = [&](const char* key) { Napi::Value v = o.Get(key); return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0.0; };
    pid = num("pid");
    skip = num("skip");
    stop = o.Get("stop").ToBoolean();
  }
  kill_point_arm(&seg_->hdr->faults, (rm::KillPoint)kp, arm, (int32_t)pid, (uint32_t)skip, stop);
  return Napi::Boolean::New(env, true);
}

Napi::Value Session::DebugKillPointFired(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  int kp = kill_point_arg(env, info[0]);
  if (kp < 0) return env.Undefined();
  return Napi::Number::New(env, load_relaxed(&seg_->hdr->faults.kills[kp].fired));
}

Napi::Value Session::KillPoint(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  int kp = kill_point_arg(env, info[0]);
  if (kp < 0) return env.Undefined();
  FaultTable* ft = &seg_->hdr->faults;
  if (info[1].ToBoolean())  // killPoint(name, true): would this process die there? (no death)
    return Napi::Boolean::New(env, kill_point_armed(ft, (rm::KillPoint)kp));
  kill_point(ft, (rm::KillPoint)kp);
  return Napi::Boolean::New(env, false);
}

// killPointProbe(name) -> a function () => boolean that answers killPoint(name, true),
// with the name checked once here: the WAL asks it on every flush, and the name's
// conversion and the receiver's unwrap were most of that call.
Napi::Value Session::KillPointProbe(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  int kp = kill_point_arg(env, info[0]);
  if (kp < 0) return env.Undefined();
  struct Probe {
    SessionLink* link;
    int kp;
  };
  SessionLink* link = Link();
  auto* probe = new Probe{link, kp};
  Napi::Function f = Napi::Function::New(
      env,
      [](const Napi::CallbackInfo& ci) -> Napi::Value {
        auto* p = static_cast<Probe*>(ci.Data());
        Session* s = p->link->session;
        if (!s || !s->attached() || !s->seg_) {
          make_error(ci.Env(), "ERR_RINGMASTER_DETACHED", "this ringmaster handle is closed (detached from the segment)").ThrowAsJavaScriptException();
          return ci.Env().Undefined();
        }
        return Napi::Boolean::New(ci.Env(), kill_point_armed(&s->seg_->hdr->faults, (rm::KillPoint)p->kp));
      },
      "killPointProbe", probe);
  if (f.IsEmpty()) {
    delete probe;
    return env.Undefined();
  }
  link->refs++;
  if (napi_add_finalizer(env, f, probe, [](napi_env, void* data, void*) {
        auto* p = static_cast<Probe*>(data);
        DropLink(p->link);
        delete p;
      }, nullptr, nullptr) != napi_ok) {
    link->refs--;
    Napi::Error::New(env, "killPointProbe: napi_add_finalizer failed").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return f;
}

// debugScribble(region, seed, count?): overwrite a shared table with garbage (a hostile
// peer): the whole table, or `count` entries chosen at random. Returns entries written.
// Regions: 'handles', 'files', 'bufferDescriptors', 'mappingTable' (hash bucket heads).
Napi::Value Session::DebugScribble(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  if (!test_hooks_enabled()) return Napi::Boolean::New(env, false);
  std::string region = info[0].As<Napi::String>().Utf8Value();
  uint32_t seed = info[1].As<Napi::Number>().Uint32Value();
  uint32_t count = info[2].IsNumber() ? info[2].As<Napi::Number>().Uint32Value() : 0;
  int64_t written = debug_scribble(*seg_, region.c_str(), seed, count);
  if (written < 0) return Napi::Boolean::New(env, false);
  return Napi::Number::New(env, (double)written);
}

// verifyHandles(repair) -> { found, repaired, anomalies: [{ index, problem, word, repaired }] }
// One lock-free pass over the handle table (handles_verify); at most 64 anomalies listed.
Napi::Value Session::VerifyHandles(const Napi::CallbackInfo& info) {
  RM_REQUIRE_ATTACHED();
  bool repair = info[0].ToBoolean();
  std::vector<HandleAnomaly> list;
  VerifyCounts c = segment_verify_handles(*seg_, repair, &list, 64);
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
  Napi::Object o = Napi::Object::New(env);
  o.Set("found", Napi::Number::New(env, found));
  o.Set("repaired", Napi::Number::New(env, repaired));
  o.Set("anomalies", arr);
  return o;
}

Napi::Function Session::Init(Napi::Env env) {
  Napi::Function f = DefineClass(env, "NativeSession", {
    InstanceMethod("setStage", &Session::SetStage),
    InstanceMethod("flush", &Session::Flush),
    InstanceMethod("flushFunction", &Session::FlushFunction),
    InstanceMethod("collect", &Session::Collect),
    InstanceMethod("wakeInfo", &Session::WakeInfo),
    InstanceMethod("openFile", &Session::OpenFile),
    InstanceMethod("closeFile", &Session::CloseFile),
    InstanceMethod("closeFileUnlessLast", &Session::CloseFileUnlessLast),
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
    InstanceMethod("setShutdownExempt", &Session::SetShutdownExempt),
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
    InstanceMethod("killPointProbe", &Session::KillPointProbe),
  });
  return f;
}

}  // namespace

namespace rm {
Segment* session_segment(Napi::Env env, Napi::Value v, uint32_t* slot) {
  bool tagged = false;
  if (!v.IsObject() || napi_check_object_type_tag(env, v, &kSessionTypeTag, &tagged) != napi_ok || !tagged) {
    module_type_error(env, "expected a NativeSession").ThrowAsJavaScriptException();
    return nullptr;
  }
  Session* s = Session::Unwrap(v.As<Napi::Object>());
  if (!s || !s->attached() || !s->seg_) {
    make_error(env, "ERR_RINGMASTER_DETACHED", "this ringmaster handle is closed (detached from the segment)")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  if (slot) *slot = (uint32_t)s->slot_;
  return s->seg_;
}

Napi::Value session_bound_function(Napi::Env env, Napi::Value session, const char* name, SessionBoundFn fn) {
  if (!session_segment(env, session, nullptr)) return Napi::Value();
  Session* s = Session::Unwrap(session.As<Napi::Object>());
  Session::SessionLink* link = s->Link();
  Napi::Function f = Napi::Function::New(env, fn, name, link);
  if (f.IsEmpty()) return Napi::Value();
  link->refs++;
  if (napi_add_finalizer(env, f, link, [](napi_env, void* data, void*) { Session::DropLink(static_cast<Session::SessionLink*>(data)); },
                         nullptr, nullptr) != napi_ok) {
    link->refs--;
    Napi::Error::New(env, "session_bound_function: napi_add_finalizer failed").ThrowAsJavaScriptException();
    return Napi::Value();
  }
  return f;
}

Segment* bound_session_segment(const Napi::CallbackInfo& info, uint32_t* slot) {
  auto* link = static_cast<Session::SessionLink*>(info.Data());
  Session* s = link ? link->session : nullptr;
  if (!s || !s->attached() || !s->seg_) {
    make_error(info.Env(), "ERR_RINGMASTER_DETACHED", "this ringmaster handle is closed (detached from the segment)")
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  if (slot) *slot = (uint32_t)s->slot_;
  return s->seg_;
}
Napi::Error module_error(Napi::Env env, const std::string& code, const std::string& msg, int err) {
  return make_error(env, code, msg, err);
}
Napi::Error module_type_error(Napi::Env env, const std::string& msg) {
  Napi::Error e = Napi::TypeError::New(env, msg);
  e.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  return e;
}
Napi::Error module_range_error(Napi::Env env, const std::string& msg) {
  return range_error(env, msg);
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

// setWakeSlice(us, libraryThreads) -> 0 or -errno: the calling thread asks for a `us`
// microsecond EEVDF slice (0: the kernel's); with libraryThreads, so will this process's
// watcher and doorbell threads started from now on (sched_slice.h).
Napi::Value SetWakeSlice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t us = info[0].As<Napi::Number>().Uint32Value();
  if (info.Length() > 1 && info[1].ToBoolean().Value()) set_library_thread_slice(us);
  return Napi::Number::New(env, request_thread_slice(us));
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
  exports.Set("setWakeSlice", Napi::Function::New(env, SetWakeSlice));
  register_bufferpool_exports(env, exports);
  register_wal_exports(env, exports);
  register_datadir_exports(env, exports);
  register_file_sync_exports(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(ringmaster, Init)
