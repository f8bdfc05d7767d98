// N-API surface of the wal module. Every function takes the NativeSession first; the
// WAL is found by region name in that session's segment (never by a JS-given offset).
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "atomics.h"
#include "crc32c.h"
#include "js_bytes.h"
#include "modules.h"
#include "segment.h"
#include "wal_buffer.h"

namespace rm {
namespace {

bool get_u64(Napi::Env env, Napi::Value v, uint64_t* out, const char* what) {
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
    int64_t sx = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (sx < 0 || !lossless) {
      module_range_error(env, std::string(what) + " must be a non-negative 64-bit integer").ThrowAsJavaScriptException();
      return false;
    }
    *out = x;
    return true;
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0) || d > 9007199254740991.0 || d != (double)(uint64_t)d) {
      module_range_error(env, std::string(what) + " must be a non-negative integer").ThrowAsJavaScriptException();
      return false;
    }
    *out = (uint64_t)d;
    return true;
  }
  module_type_error(env, std::string(what) + " must be a bigint or a number").ThrowAsJavaScriptException();
  return false;
}

struct Ctx {
  Segment* seg = nullptr;
  uint32_t slot = 0;
  WalShared* w = nullptr;
  size_t first = 1;  // index of the first argument after the session (0 when bound: walBind)
  // Argument `i` after the session.
  Napi::Value arg(const Napi::CallbackInfo& info, size_t i) const { return info[first + i]; }
};

// The session comes first, or is the function's own (a walBind function).
bool ctx(const Napi::CallbackInfo& info, Ctx* c, bool need_wal = true) {
  Napi::Env env = info.Env();
  if (info.Data()) {
    c->first = 0;
    c->seg = bound_session_segment(info, &c->slot);
  } else {
    c->seg = session_segment(env, info[0], &c->slot);
  }
  if (!c->seg) return false;
  if (!need_wal) return true;
  c->w = wal_get(*c->seg);
  if (!c->w) {
    module_error(env, "ERR_RINGMASTER_NO_WAL", "the WAL is not configured (start option `wal`)").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

Napi::Value big(Napi::Env env, uint64_t v) { return Napi::BigInt::New(env, v); }

// walCrc32c(bytes) -> uint32
Napi::Value Crc32c(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  JsBytes u;
  const char* why = nullptr;
  if (!js_bytes(env, info[0], &u, &why)) {
    module_type_error(env, std::string("walCrc32c: ") + why).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, (double)(uint32_t)~crc32c(~0u, u.data, u.length));
}

// walSharedSize(session) -> bytes of the shared part for this segment's slot count
Napi::Value SharedSize(const Napi::CallbackInfo& info) {
  Ctx c;
  if (!ctx(info, &c, false)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), (double)wal_shared_size(c.seg->hdr->max_slots));
}

// walSharedSizeFor(maxProcesses) -> the same, before a segment exists (start-option checks)
Napi::Value SharedSizeFor(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    module_type_error(env, "maxProcesses must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double n = info[0].As<Napi::Number>().DoubleValue();
  if (!(n >= 1 && n <= 65535) || n != (double)(uint32_t)n) {
    module_range_error(env, "maxProcesses out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, (double)wal_shared_size((uint32_t)n));
}

// walInit(session, offset, bufSize, segSize, startLsn, flags)
Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c, false)) return env.Undefined();
  uint64_t off, bs, ss, start, flags;
  if (!get_u64(env, info[1], &off, "offset") || !get_u64(env, info[2], &bs, "bufferSize") ||
      !get_u64(env, info[3], &ss, "segmentSize") || !get_u64(env, info[4], &start, "startLsn") ||
      !get_u64(env, info[5], &flags, "flags"))
    return env.Undefined();
  if (flags > 0xffffffffull) {
    module_range_error(env, "flags out of range").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int rc = wal_init(*c.seg, off, bs, ss, start, (uint32_t)flags);
  if (rc < 0) module_error(env, "ERR_RINGMASTER_WAL", "wal_init failed", rc).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value AppendImpl(const Napi::CallbackInfo& info, bool abandon) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  if (!c.arg(info, 0).IsNumber()) {
    module_type_error(env, "kind must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double k = c.arg(info, 0).As<Napi::Number>().DoubleValue();
  if (!(k >= 0 && k <= 65535) || k != (double)(uint32_t)k) {
    module_range_error(env, "kind must be an integer in 0..65535").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  JsBytes u;
  const char* why = nullptr;
  if (!js_bytes(env, c.arg(info, 1), &u, &why)) {
    module_type_error(env, std::string("payload: ") + why).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (u.detached) {
    module_error(env, "ERR_INVALID_ARG_VALUE", "payload is detached (its ArrayBuffer was transferred)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (u.length > 0xffffffffull - 64) {
    module_range_error(env, "payload too large").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint64_t end = 0;
  int rc;
  bool imaged = false;
  bool with_page = !abandon && info.Length() > c.first + 2 && !c.arg(info, 2).IsUndefined();
  if (with_page) {
    // walAppend(session, kind, payload, page, imagePrefix) -> [end, imaged] | null
    JsBytes pg, pre;
    if (!js_bytes(env, c.arg(info, 2), &pg, &why) || pg.detached) {
      module_type_error(env, std::string("page: ") + (why ? why : "detached")).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!js_bytes(env, c.arg(info, 3), &pre, &why) || pre.detached) {
      module_type_error(env, std::string("image prefix: ") + (why ? why : "detached")).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (pg.length < 4096 || pg.length > 32768 || (pg.length & (pg.length - 1))) {
      module_range_error(env, "page size must be a power of two in 4096..32768").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    rc = wal_append_page(*c.seg, c.slot, (uint16_t)k, u.data, (uint32_t)u.length, pg.data, (uint32_t)pg.length, pre.data,
                         (uint32_t)pre.length, &end, &imaged);
    if (rc == -EINVAL) {
      module_range_error(env, "image prefix does not describe this page").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (rc == -E2BIG) {
      module_range_error(env, "the record with a full-page image is larger than half the WAL buffer (raise wal.bufferSize)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  } else {
    rc = wal_append(*c.seg, c.slot, (uint16_t)k, u.data, (uint32_t)u.length, &end, abandon);
  }
  if (rc == -EAGAIN) return env.Null();
  if (rc == -EIO) {
    module_error(env, "ERR_RINGMASTER_WAL_FAILED", "the WAL has failed (a WAL write or fdatasync failed): no further records are accepted", -EIO)
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (rc == -E2BIG) {
    module_range_error(env, "record larger than half the WAL buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (rc < 0) {
    module_error(env, "ERR_RINGMASTER_WAL", "wal append failed", rc).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (with_page) {
    Napi::Array a = Napi::Array::New(env, 2);
    a.Set(0u, big(env, end));
    a.Set(1u, Napi::Boolean::New(env, imaged));
    return a;
  }
  return big(env, end);
}
Napi::Value Append(const Napi::CallbackInfo& info) { return AppendImpl(info, false); }
Napi::Value DebugAbandon(const Napi::CallbackInfo& info) {
  if (!getenv("RINGMASTER_TEST_HOOKS")) return info.Env().Null();
  return AppendImpl(info, true);
}

// A failed data-file or directory sync fails the WAL (file_sync.h): latched into it here,
// by walState and walFailed, so the postmaster's poll and the commit path report it even
// when nobody appends or flushes. Returns the WAL's failed errno (0: working).
uint32_t latch_failed(Ctx& c) {
  if (uint32_t e = file_sync_failed_errno(*c.seg)) wal_fail(*c.seg, c.w, -(int32_t)e);
  return load_acquire(&c.w->failed);
}

// walFailed(session) -> the WAL's failed errno (0: working): the commit path's check,
// without building walState's object.
Napi::Value Failed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  return Napi::Number::New(env, latch_failed(c));
}

// walState(session) -> { reserved, flushed, insertedUpto, flushSeq, flushSeqOffset, failed, flusher, ... }
Napi::Value State(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  WalShared* w = c.w;
  const uint32_t failed = latch_failed(c);
  Napi::Object o = Napi::Object::New(env);
  o.Set("reserved", big(env, load_acquire(&w->reserved)));
  o.Set("flushed", big(env, load_acquire(&w->flushed)));
  o.Set("flushSeq", Napi::Number::New(env, load_acquire(&w->flush_seq)));
  o.Set("flushSeqOffset", Napi::Number::New(env, (double)((uint8_t*)&w->flush_seq - c.seg->arena.base)));
  // Arena offsets of the hot words, for JS to read them without building this object.
  o.Set("reservedOffset", Napi::Number::New(env, (double)((uint8_t*)&w->reserved - c.seg->arena.base)));
  o.Set("flushedOffset", Napi::Number::New(env, (double)((uint8_t*)&w->flushed - c.seg->arena.base)));
  o.Set("failedOffset", Napi::Number::New(env, (double)((uint8_t*)&w->failed - c.seg->arena.base)));
  o.Set("checkpointRunningOffset", Napi::Number::New(env, (double)((uint8_t*)&w->ckpt_running - c.seg->arena.base)));
  o.Set("failed", Napi::Number::New(env, failed));
  o.Set("flusher", Napi::Number::New(env, (double)load_acquire(&w->flusher) - 1));
  o.Set("bufOffset", Napi::Number::New(env, (double)load_relaxed(&w->buf_off)));
  o.Set("bufSize", Napi::Number::New(env, (double)load_relaxed(&w->buf_size)));
  o.Set("segmentSize", Napi::Number::New(env, (double)load_relaxed(&w->seg_size)));
  o.Set("flags", Napi::Number::New(env, load_relaxed(&w->flags)));
  o.Set("startLsn", big(env, load_relaxed(&w->start_lsn)));
  o.Set("checkpointLsn", big(env, load_acquire(&w->last_ckpt_lsn)));
  o.Set("redoLsn", big(env, load_acquire(&w->redo_lsn)));
  o.Set("checkpointRedoLsn", big(env, load_acquire(&w->ckpt_redo_lsn)));
  o.Set("redoEpoch", Napi::Number::New(env, load_acquire(&w->redo_epoch)));
  o.Set("redoEpochOffset", Napi::Number::New(env, (double)((uint8_t*)&w->redo_epoch - c.seg->arena.base)));
  return o;
}

Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  WalShared* w = c.w;
  Napi::Object o = Napi::Object::New(env);
  auto n = [&](const char* k, uint64_t* p) { o.Set(k, Napi::Number::New(env, (double)load_relaxed(p))); };
  n("appends", &w->stat_appends);
  n("commits", &w->stat_commits);
  n("fdatasyncs", &w->stat_syncs);
  n("flushes", &w->stat_flushes);
  n("writes", &w->stat_writes);
  n("paddings", &w->stat_pads);
  n("spaceWaits", &w->stat_space_waits);
  n("flusherTakeovers", &w->stat_flusher_takeovers);
  n("pageImages", &w->stat_page_images);
  n("imageRetries", &w->stat_image_retries);
  o.Set("crc32cHardware", Napi::Boolean::New(env, crc32c_hw()));
  return o;
}

// walCount(session, commits, flushes, fdatasyncs): adds to the three shared counters in one
// call (a flush counts its flush and its syncs together; a commit counts itself alone).
uint64_t count_arg(const Napi::Value& v) {
  if (!v.IsNumber()) return 0;
  double n = v.As<Napi::Number>().DoubleValue();
  return n >= 0 && n < 1e9 ? (uint64_t)n : 0;
}
Napi::Value Count(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  if (uint64_t v = count_arg(c.arg(info, 0))) stat_add(&c.w->stat_commits, v);
  if (uint64_t v = count_arg(c.arg(info, 1))) stat_add(&c.w->stat_flushes, v);
  if (uint64_t v = count_arg(c.arg(info, 2))) stat_add(&c.w->stat_syncs, v);
  return env.Undefined();
}

// walInsertedUpto(session) -> LSN (a number: JS keeps LSNs as numbers below 2^53)
Napi::Value InsertedUpto(const Napi::CallbackInfo& info) {
  Ctx c;
  if (!ctx(info, &c)) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), (double)wal_inserted_upto(*c.seg, c.w));
}

// Whether the string argument `v` is `want`, without building a std::string.
bool string_is(Napi::Env env, const Napi::Value& v, const char* want) {
  char buf[16];
  size_t n = 0;
  if (napi_get_value_string_utf8(env, v, buf, sizeof buf, &n) != napi_ok) return false;
  return n < sizeof buf - 1 && strcmp(buf, want) == 0;
}

// walRole(session, 'flusher' | 'checkpoint', acquire: boolean) -> boolean
Napi::Value Role(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  bool acquire = c.arg(info, 1).ToBoolean();
  if (string_is(env, c.arg(info, 0), "flusher")) {
    if (acquire) return Napi::Boolean::New(env, wal_try_flusher(*c.seg, c.w, c.slot));
    wal_release_flusher(*c.seg, c.w, c.slot);
    return Napi::Boolean::New(env, true);
  }
  if (string_is(env, c.arg(info, 0), "checkpoint")) {
    uint32_t expect = acquire ? 0 : c.slot + 1;
    return Napi::Boolean::New(env, cas(&c.w->ckpt_running, &expect, acquire ? c.slot + 1 : 0u));
  }
  module_type_error(env, "role must be 'flusher' or 'checkpoint'").ThrowAsJavaScriptException();
  return env.Undefined();
}

// walPublish(session, lsn) -> the WAL's failed errno afterwards (0: working), so the
// flusher's settle learns both in one call.
Napi::Value Publish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint64_t lsn;
  if (!get_u64(env, c.arg(info, 0), &lsn, "lsn")) return env.Undefined();
  wal_publish(*c.seg, c.w, lsn);
  return Napi::Number::New(env, latch_failed(c));
}

Napi::Value Fail(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  int32_t e = c.arg(info, 0).IsNumber() ? c.arg(info, 0).As<Napi::Number>().Int32Value() : -EIO;
  wal_fail(*c.seg, c.w, e);
  return env.Undefined();
}

// walSeg(session, segno) -> file id | -1 ; walSeg(session, segno, fileId | -1) sets/clears.
Napi::Value Seg(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint64_t segno;
  if (!get_u64(env, c.arg(info, 0), &segno, "segno")) return env.Undefined();
  WalSegFile* e = &c.w->segs[segno % kWalSegTable];
  if (info.Length() > c.first + 1) {
    double id = c.arg(info, 1).IsNumber() ? c.arg(info, 1).As<Napi::Number>().DoubleValue() : -1;
    // Returns the file id this entry held for another segment (the caller closes it), or -1.
    uint64_t prev = load_acquire(&e->segno_plus1);
    double prev_id = prev != 0 && prev != segno + 1 ? (double)load_relaxed(&e->file_id) : -1;
    if (id < 0) {
      uint64_t cur = segno + 1;
      cas(&e->segno_plus1, &cur, (uint64_t)0);
      prev_id = -1;
    } else {
      store_relaxed(&e->segno_plus1, (uint64_t)0);
      store_relaxed(&e->file_id, (uint64_t)id);
      store_release(&e->segno_plus1, segno + 1);  // pairs with the acquire below
    }
    return Napi::Number::New(env, prev_id);
  }
  if (load_acquire(&e->segno_plus1) != segno + 1) return Napi::Number::New(env, -1);
  return Napi::Number::New(env, (double)load_relaxed(&e->file_id));
}

// walSetCheckpoint(session, checkpointLsn, redoLsn)
Napi::Value SetCheckpoint(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint64_t a, b;
  if (!get_u64(env, info[1], &a, "checkpointLsn") || !get_u64(env, info[2], &b, "redoLsn")) return env.Undefined();
  store_release(&c.w->last_ckpt_lsn, a);
  store_release(&c.w->ckpt_redo_lsn, b);
  // The redo point chosen last is published by walChooseRedo when a checkpoint starts;
  // here it only moves forward (postmaster init: the recovered checkpoint's).
  uint64_t cur = load_acquire(&c.w->redo_lsn);
  while (cur < b && !cas(&c.w->redo_lsn, &cur, b)) {
  }
  return env.Undefined();
}

// walChooseRedo(session) -> redo LSN (bigint): the checkpoint role must be held.
Napi::Value ChooseRedo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint64_t redo = 0;
  if (wal_choose_redo(*c.seg, c.w, c.slot, &redo) < 0) {
    module_error(env, "ERR_RINGMASTER_WAL", "walChooseRedo: this environment does not hold the checkpoint role", -EBUSY).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return big(env, redo);
}

// walDebugChooseRedoInNextAppend(session) -> false unless RINGMASTER_TEST_HOOKS is set.
Napi::Value DebugChooseRedoInNextAppend(const Napi::CallbackInfo& info) {
  const char* hooks = getenv("RINGMASTER_TEST_HOOKS");
  if (!hooks || strcmp(hooks, "1") != 0) return Napi::Boolean::New(info.Env(), false);
  wal_debug_choose_redo_in_next_append();
  return Napi::Boolean::New(info.Env(), true);
}

// walBind(session) -> { append, failed, count, insertedUpto, role, publish, fail, seg }:
// the commit path's functions bound to `session`, taking the arguments that follow the
// session in their walX forms. A commit calls into native about nine times; bound, none of
// those calls checks and unwraps the session object again.
Napi::Value Bind(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  const struct {
    const char* name;
    SessionBoundFn fn;
  } fns[] = {{"append", Append}, {"failed", Failed}, {"count", Count}, {"insertedUpto", InsertedUpto},
             {"role", Role}, {"publish", Publish}, {"fail", Fail}, {"seg", Seg}};
  for (const auto& f : fns) {
    Napi::Value v = session_bound_function(env, info[0], f.name, f.fn);
    if (v.IsEmpty()) return env.Undefined();
    o.Set(f.name, v);
  }
  return o;
}

}  // namespace

void register_wal_exports(Napi::Env env, Napi::Object exports) {
  exports.Set("walBind", Napi::Function::New(env, Bind));
  exports.Set("walCrc32c", Napi::Function::New(env, Crc32c));
  exports.Set("walSharedSize", Napi::Function::New(env, SharedSize));
  exports.Set("walSharedSizeFor", Napi::Function::New(env, SharedSizeFor));
  exports.Set("walInit", Napi::Function::New(env, Init));
  exports.Set("walAppend", Napi::Function::New(env, Append));
  exports.Set("walDebugAbandon", Napi::Function::New(env, DebugAbandon));
  exports.Set("walState", Napi::Function::New(env, State));
  exports.Set("walFailed", Napi::Function::New(env, Failed));
  exports.Set("walStats", Napi::Function::New(env, Stats));
  exports.Set("walCount", Napi::Function::New(env, Count));
  exports.Set("walInsertedUpto", Napi::Function::New(env, InsertedUpto));
  exports.Set("walRole", Napi::Function::New(env, Role));
  exports.Set("walPublish", Napi::Function::New(env, Publish));
  exports.Set("walFail", Napi::Function::New(env, Fail));
  exports.Set("walSeg", Napi::Function::New(env, Seg));
  exports.Set("walSetCheckpoint", Napi::Function::New(env, SetCheckpoint));
  exports.Set("walChooseRedo", Napi::Function::New(env, ChooseRedo));
  exports.Set("walDebugChooseRedoInNextAppend", Napi::Function::New(env, DebugChooseRedoInNextAppend));
}

}  // namespace rm
