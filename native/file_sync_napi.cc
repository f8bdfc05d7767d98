// Node-API glue of the sync requests (mechanism: file_sync.h): what core/files.ts needs
// to run a sync pass (a checkpoint's, or a last close's), directory syncs, and their
// statistics. Every function takes the NativeSession first.
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "file_sync.h"
#include "modules.h"
#include "napi_args.h"
#include "segment.h"

namespace rm {
namespace {

bool test_hooks() {
  const char* v = getenv("RINGMASTER_TEST_HOOKS");
  return v && strcmp(v, "1") == 0;
}

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

// A file id argument: its slot, or ~0u for -1 (every file) and for an id that names no open file.
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
  std::vector<PendingSync> list;
  if (file_sync_pending_list(*seg, &list) < 0) return locked_out(env);
  Napi::Array out = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) {
    Napi::Array pair = Napi::Array::New(env, 2);
    pair.Set(0u, Napi::Number::New(env, (double)list[i].file_id));
    pair.Set(1u, Napi::Boolean::New(env, list[i].fsync));
    out.Set((uint32_t)i, pair);
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
  if (!(cycle >= 0) || cycle > kMaxSafeInteger) {
    Napi::RangeError::New(env, "cycle out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int r = file_sync_mark_synced(*seg, id, (uint64_t)cycle, info[3].ToBoolean().Value());
  if (r < 0) return locked_out(env);
  return Napi::Boolean::New(env, r == 1);
}

// fileSyncState(session) -> { cycle, failedErrno, failedPath, syncs, fsyncs, failures, dirSyncs, dirFailures, recentDirSyncs }
Napi::Value State(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  FileSyncReport r;
  file_sync_report(*seg, &r);
  Napi::Object o = Napi::Object::New(env);
  o.Set("cycle", Napi::Number::New(env, (double)r.cycle));
  o.Set("failedErrno", Napi::Number::New(env, r.failed_errno));
  if (r.failed_path_known) o.Set("failedPath", Napi::String::New(env, r.failed_path));
  else o.Set("failedPath", r.failed_errno ? Napi::Value(Napi::String::New(env, "(a directory)")) : env.Null());
  o.Set("syncs", Napi::Number::New(env, (double)r.syncs));
  o.Set("fsyncs", Napi::Number::New(env, (double)r.fsyncs));
  o.Set("failures", Napi::Number::New(env, (double)r.failures));
  o.Set("dirSyncs", Napi::Number::New(env, (double)r.dir_syncs));
  o.Set("dirFailures", Napi::Number::New(env, (double)r.dir_failures));
  Napi::Array recent = Napi::Array::New(env, r.recent_dir_syncs.size());
  for (size_t i = 0; i < r.recent_dir_syncs.size(); i++) recent.Set((uint32_t)i, Napi::String::New(env, r.recent_dir_syncs[i]));
  o.Set("recentDirSyncs", recent);
  return o;
}

// fileEntries(session) -> [{ id, path, refs, pending }] for every open entry (introspection).
Napi::Value Entries(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  std::vector<OpenFileRow> rows;
  if (file_sync_open_files(*seg, &rows) < 0) return locked_out(env);
  Napi::Array out = Napi::Array::New(env, rows.size());
  for (size_t i = 0; i < rows.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", Napi::Number::New(env, (double)rows[i].file_id));
    o.Set("path", Napi::String::New(env, rows[i].path));
    o.Set("refs", Napi::Number::New(env, rows[i].refs));
    o.Set("pending", Napi::Boolean::New(env, rows[i].pending));
    out.Set((uint32_t)i, o);
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
  return Napi::Number::New(env, dir_sync_checked(*seg, path, arg_flag(info, 2)));
}

// debugDirSyncFault(session, { error, skip, repeat, path } | null) -> false unless
// RINGMASTER_TEST_HOOKS=1. debugDirSyncFired(session) -> how often it fired.
Napi::Value DebugFault(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  if (!test_hooks()) return Napi::Boolean::New(env, false);
  if (!info[1].IsObject()) {
    dir_sync_fault_disarm(*seg);
    return Napi::Boolean::New(env, true);
  }
  Napi::Object r = info[1].As<Napi::Object>();
  auto num = [&](const char* k, double d) { Napi::Value v = r.Get(k); return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : d; };
  std::string path = r.Get("path").IsString() ? r.Get("path").As<Napi::String>().Utf8Value() : "";
  if (dir_sync_fault_arm(*seg, path, (int32_t)num("error", -EIO), (uint32_t)num("skip", 0), r.Get("repeat").ToBoolean().Value()) < 0) {
    Napi::RangeError::New(env, "path too long").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

Napi::Value DebugFired(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  return Napi::Number::New(env, dir_sync_fault_fired(*seg));
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
