// N-API surface of the sync requests (file_sync.h): what core/files.ts needs to run a
// sync pass (a checkpoint's, or a last close's), directory syncs, and their statistics.
// Every function takes the NativeSession first.
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "atomics.h"
#include "file_sync.h"
#include "modules.h"
#include "napi_args.h"
#include "robust_lock.h"
#include "segment.h"

namespace rm {
namespace {

constexpr int64_t kFilesLockTimeoutNs = 2000000000;

bool test_hooks() {
  const char* v = getenv("RINGMASTER_TEST_HOOKS");
  return v && strcmp(v, "1") == 0;
}

// files_lock held for the scope (a holder that died is recovered by the robust lock).
struct FilesLock {
  Segment* seg;
  bool held;
  explicit FilesLock(Segment* s) : seg(s) {
    LockResult lr = robust_lock_acquire(&s->hdr->files_lock, kFilesLockTimeoutNs);
    held = lr == LockResult::Acquired || lr == LockResult::AcquiredOwnerDied;
  }
  ~FilesLock() { if (held) robust_lock_release(&seg->hdr->files_lock); }
};

Napi::Value locked_out(Napi::Env env) {
  module_error(env, "ETIMEDOUT", "the shared file table is locked by a stopped process", ETIMEDOUT).ThrowAsJavaScriptException();
  return env.Undefined();
}

// fileSyncBegin(session) -> C: the cycle this pass covers (see file_sync.h).
Napi::Value Begin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  return Napi::Number::New(env, (double)file_sync_begin(*seg));
}

uint32_t barrier_slot(Segment* seg, const Napi::Value& v) {
  double id = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(id >= 0)) return ~0u;
  int slot = file_lookup(seg->files, seg->hdr->max_files, id, nullptr);
  return slot >= 0 ? (uint32_t)slot : ~0u;
}

// writeBarrier(session, fileId | -1) -> Uint32Array of (handle index, generation) pairs.
Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  uint32_t file_slot = barrier_slot(seg, info[1]);
  std::vector<HandleRef> refs;
  write_barrier_scan(*seg, file_slot, &refs);
  auto out = Napi::Uint32Array::New(env, refs.size() * 2);
  for (size_t i = 0; i < refs.size(); i++) {
    out[2 * i] = refs[i].index;
    out[2 * i + 1] = refs[i].gen;
  }
  return out;
}

// writeBarrierLeft(session, fileId | -1, Uint32Array) -> handles of the barrier still in flight.
Napi::Value BarrierLeft(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    Napi::TypeError::New(env, "writeBarrierLeft(session, fileId, Uint32Array)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t file_slot = barrier_slot(seg, info[1]);
  Napi::Uint32Array a = info[2].As<Napi::Uint32Array>();
  std::vector<HandleRef> refs(a.ElementLength() / 2);
  for (size_t i = 0; i < refs.size(); i++) refs[i] = {a[2 * i], a[2 * i + 1]};
  return Napi::Number::New(env, write_barrier_left(*seg, file_slot, refs));
}

// fileSyncPending(session) -> [[fileId, fsync], ...]: open files with writes no pass covered.
Napi::Value Pending(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  FilesLock lock(seg);
  if (!lock.held) return locked_out(env);
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (uint32_t i = 0; i < seg->hdr->max_files; i++) {
    FileEntry* e = &seg->files[i];
    if (load_acquire(&e->state) != F_OPEN || !file_sync_pending(e)) continue;
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::Number::New(env, (double)file_id_of(i, load_relaxed(&e->generation))));
    pair.Set(1u, Napi::Boolean::New(env, file_sync_needs_fsync(e)));
    out.Set(n++, pair);
  }
  return out;
}

// fileSynced(session, fileId, cycle, fsync) -> false if the id no longer names an open
// file (closed meanwhile: its last close synced it). Call only for a sync that started
// after the pass's write barrier was passed, and succeeded.
Napi::Value Synced(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  double id = info[1].As<Napi::Number>().DoubleValue();
  double cycle = info[2].As<Napi::Number>().DoubleValue();
  if (!(cycle >= 0) || cycle > 9007199254740991.0) {
    Napi::RangeError::New(env, "cycle out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  FilesLock lock(seg);
  if (!lock.held) return locked_out(env);
  int slot = file_lookup(seg->files, seg->hdr->max_files, id, nullptr);
  if (slot < 0) return Napi::Boolean::New(env, false);
  file_sync_done(*seg, &seg->files[slot], (uint64_t)cycle, info[3].ToBoolean().Value());
  return Napi::Boolean::New(env, true);
}

// fileSyncState(session) -> { cycle, failedErrno, failedPath, syncs, fsyncs, failures, dirSyncs, dirFailures }
Napi::Value State(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  FileSyncShared* fs = &seg->hdr->file_sync;
  Napi::Object o = Napi::Object::New(env);
  uint32_t failed = load_acquire(&fs->failed_errno);
  o.Set("cycle", Napi::Number::New(env, (double)load_acquire(&fs->cycle)));
  o.Set("failedErrno", Napi::Number::New(env, failed));
  uint32_t fslot = load_acquire(&fs->failed_slot);
  if (failed && fslot < seg->hdr->max_files) {
    char path[kMaxRelPath];
    memcpy(path, seg->files[fslot].path, kMaxRelPath);
    path[kMaxRelPath - 1] = 0;
    o.Set("failedPath", Napi::String::New(env, path));
  } else {
    o.Set("failedPath", failed ? Napi::Value(Napi::String::New(env, "(a directory)")) : env.Null());
  }
  o.Set("syncs", Napi::Number::New(env, (double)load_relaxed(&fs->stat_syncs)));
  o.Set("fsyncs", Napi::Number::New(env, (double)load_relaxed(&fs->stat_fsyncs)));
  o.Set("failures", Napi::Number::New(env, (double)load_relaxed(&fs->stat_failures)));
  o.Set("dirSyncs", Napi::Number::New(env, (double)load_relaxed(&fs->stat_dir_syncs)));
  o.Set("dirFailures", Napi::Number::New(env, (double)load_relaxed(&fs->stat_dir_failures)));
  uint64_t logged = load_acquire(&fs->dir_log_n);
  Napi::Array recent = Napi::Array::New(env);
  uint32_t k = 0;
  for (uint64_t i = logged > kDirLog ? logged - kDirLog : 0; i < logged; i++) {
    char d[kDirFaultPath];
    memcpy(d, fs->dir_log[i % kDirLog], sizeof(d));
    d[kDirFaultPath - 1] = 0;
    recent.Set(k++, Napi::String::New(env, d));
  }
  o.Set("recentDirSyncs", recent);
  return o;
}

// fileEntries(session) -> [{ id, path, refs, pending }] for every open entry (introspection).
Napi::Value Entries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  FilesLock lock(seg);
  if (!lock.held) return locked_out(env);
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (uint32_t i = 0; i < seg->hdr->max_files; i++) {
    FileEntry* e = &seg->files[i];
    if (load_acquire(&e->state) != F_OPEN) continue;
    char path[kMaxRelPath];
    memcpy(path, e->path, kMaxRelPath);
    path[kMaxRelPath - 1] = 0;
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", Napi::Number::New(env, (double)file_id_of(i, load_relaxed(&e->generation))));
    o.Set("path", Napi::String::New(env, path));
    o.Set("refs", Napi::Number::New(env, e->open_count));
    o.Set("pending", Napi::Boolean::New(env, file_sync_pending(e)));
    out.Set(n++, o);
  }
  return out;
}

// dirSync(session, path, absolute) -> 0 or -errno (see dir_sync). An absolute path must
// be the data directory or one of its ancestors.
Napi::Value DirSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  if (!info[1].IsString()) {
    Napi::TypeError::New(env, "dirSync(session, path, absolute)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[1].As<Napi::String>().Utf8Value();
  bool absolute = info.Length() > 2 && info[2].ToBoolean().Value();
  if (path.empty() || path.find('\0') != std::string::npos) return Napi::Number::New(env, -EINVAL);
  if (absolute) {
    std::string data_dir(seg->hdr->data_dir, strnlen(seg->hdr->data_dir, sizeof(seg->hdr->data_dir)));
    bool ancestor = path == data_dir || path == "/" ||
                    (data_dir.size() > path.size() && data_dir.compare(0, path.size(), path) == 0 && data_dir[path.size()] == '/');
    if (path[0] != '/' || !ancestor) return Napi::Number::New(env, -EINVAL);
  }
  return Napi::Number::New(env, dir_sync(*seg, path.c_str(), absolute));
}

// debugDirSyncFault(session, { error, skip, repeat, path } | null) -> false unless
// RINGMASTER_TEST_HOOKS=1. debugDirSyncFired(session) -> how often it fired.
Napi::Value DebugFault(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  if (!test_hooks()) return Napi::Boolean::New(env, false);
  DirSyncFault* f = &seg->hdr->file_sync.dir_fault;
  store_release(&f->armed, 0u);
  if (!info[1].IsObject()) return Napi::Boolean::New(env, true);
  Napi::Object r = info[1].As<Napi::Object>();
  auto num = [&](const char* k, double d) { Napi::Value v = r.Get(k); return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : d; };
  std::string path = r.Get("path").IsString() ? r.Get("path").As<Napi::String>().Utf8Value() : "";
  if (path.size() >= kDirFaultPath) {
    Napi::RangeError::New(env, "path too long").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  memset(f->path, 0, sizeof(f->path));
  memcpy(f->path, path.data(), path.size());
  store_relaxed(&f->error, (int32_t)num("error", -EIO));
  store_relaxed(&f->skip, (uint32_t)num("skip", 0));
  store_relaxed(&f->repeat, r.Get("repeat").ToBoolean().Value() ? 1u : 0u);
  store_relaxed(&f->fired, 0u);
  store_release(&f->armed, 1u);
  return Napi::Boolean::New(env, true);
}

Napi::Value DebugFired(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  return Napi::Number::New(env, load_relaxed(&seg->hdr->file_sync.dir_fault.fired));
}

}  // namespace

void register_file_sync_exports(Napi::Env env, Napi::Object exports) {
  exports.Set("fileSyncBegin", Napi::Function::New(env, Begin));
  exports.Set("writeBarrier", Napi::Function::New(env, Barrier));
  exports.Set("writeBarrierLeft", Napi::Function::New(env, BarrierLeft));
  exports.Set("fileSyncPending", Napi::Function::New(env, Pending));
  exports.Set("fileSynced", Napi::Function::New(env, Synced));
  exports.Set("fileSyncState", Napi::Function::New(env, State));
  exports.Set("fileEntries", Napi::Function::New(env, Entries));
  exports.Set("dirSync", Napi::Function::New(env, DirSync));
  exports.Set("debugDirSyncFault", Napi::Function::New(env, DebugFault));
  exports.Set("debugDirSyncFired", Napi::Function::New(env, DebugFired));
}

}  // namespace rm
