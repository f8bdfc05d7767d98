// Node-API glue of the buffer pool: argument checks, one call into the mechanism
// (buffer_pool.h, pin_records.h), and the JS result. Every function takes the
// NativeSession as its first argument; statuses are numbered as in buffer_pool.h.
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "buffer_pool.h"
#include "js_bytes.h"
#include "modules.h"
#include "napi_args.h"
#include "pin_records.h"
#include "segment.h"

namespace rm {

namespace {

// info[0]'s pool and slot; false with a JS exception pending.
bool pool_slot_arg(const Napi::CallbackInfo& info, PoolSlot* p) {
  Napi::Env env = info.Env();
  p->seg = session_segment(env, info[0], &p->slot);
  if (!p->seg) return false;
  if (!pool_view(*p->seg, &p->v)) {
    module_error(env, "ERR_RINGMASTER_NO_BUFFER_POOL", "no buffer pool in this segment (start the postmaster with the bufferPool option)").ThrowAsJavaScriptException();
    return false;
  }
  if (p->slot >= p->v.max_slots) {
    module_error(env, "ERR_RINGMASTER_CORRUPT", "slot outside the buffer pool's slot table").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

#define RM_ARG_POOL(p) \
  PoolSlot p;          \
  if (!pool_slot_arg(info, &p)) return info.Env().Undefined()
// A buffer id of this pool.
#define RM_ARG_BUFFER(id, i, p) RM_ARG_UINT32(id, i, 0, (double)(p).v.n - 1)

constexpr double kMaxU32 = 4294967295.0;

Napi::Value arr(Napi::Env env, std::initializer_list<double> xs) {
  Napi::Array a = Napi::Array::New(env, xs.size());
  uint32_t i = 0;
  for (double x : xs) a.Set(i++, Napi::Number::New(env, x));
  return a;
}

Napi::Value throw_error(Napi::Env env, const char* code, const std::string& msg) {
  module_error(env, code, msg).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value throw_torn(Napi::Env env, uint32_t id) {
  return throw_error(env, "ERR_RINGMASTER_PAGE_TORN",
                     "buffer " + std::to_string(id) + ": the page was left half-changed by a holder that died; restart to recover it");
}

// bpPin(session, fileId, block) -> [0, id] | [3, dirtyId] | [4] | [5] | [6, what]
Napi::Value Pin(const Napi::CallbackInfo& info) {
  RM_ARG_POOL(p);
  RM_ARG_UINT64(file, 1, 0, kMaxSafeInteger);
  RM_ARG_UINT64(block, 2, 0, kMaxSafeInteger);
  PinResult r = pool_pin(p, file, block);
  if (r.status == PIN_EXHAUSTED || r.status == PIN_TOO_MANY) return arr(info.Env(), {(double)r.status});
  return arr(info.Env(), {(double)r.status, (double)r.value});
}

// bpPinWait(session, mode, waitedNs?) -> [unpinSeqOffset, unpinSeq] (modes 1, 2)
// Mode 1 registers a wait for an unpin and counts it, 2 reads the seq again, 0 ends the
// wait and adds the time waited (buffer_pool.h, pool_pin_wait_begin).
Napi::Value PinWait(const Napi::CallbackInfo& info) {
  RM_ARG_POOL(p);
  int mode = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  if (mode == 1 || mode == 2) {
    uint32_t seq = pool_pin_wait_begin(p, mode == 1);
    return arr(info.Env(), {(double)pool_arena_offset(p.v, &p.v.h->unpin_seq), (double)seq});
  }
  pool_pin_wait_end(p, arg_number_or(info, 2, 0));
  return info.Env().Undefined();
}

// bpStartIo(session, id, waitedSeq, zero, first, fileId?, block?) -> [0] | [1, seq] | [2, seq] | [3, err] | [4]
Napi::Value StartIo(const Napi::CallbackInfo& info) {
  RM_ARG_POOL(p);
  RM_ARG_BUFFER(id, 1, p);
  RM_ARG_UINT32(waited, 2, 0, kMaxU32);
  bool check_tag = info[5].IsNumber() && info[6].IsNumber();
  uint64_t file = check_tag ? (uint64_t)info[5].As<Napi::Number>().DoubleValue() : 0;
  uint64_t block = check_tag ? (uint64_t)info[6].As<Napi::Number>().DoubleValue() : 0;
  IoStartResult r = pool_start_read(p, id, waited, arg_flag(info, 3), arg_flag(info, 4), check_tag, file, block);
  if (r.status == IO_VALID || r.status == IO_CORRUPT) return arr(info.Env(), {(double)r.status});
  return arr(info.Env(), {(double)r.status, (double)r.value});
}

// bpSubmitted(session, id, seq): the claimed IO reached the ring.
Napi::Value Submitted(const Napi::CallbackInfo& info) {
  RM_ARG_POOL(p);
  RM_ARG_BUFFER(id, 1, p);
  RM_ARG_UINT32(seq, 2, 0, kMaxU32);
  pool_io_submitted(p, id, seq);
  return info.Env().Undefined();
}

// bpAbortIo(session, id, seq, err, write): the claimed IO never reached the ring.
Napi::Value AbortIo(const Napi::CallbackInfo& info) {
  RM_ARG_POOL(p);
  RM_ARG_BUFFER(id, 1, p);
  RM_ARG_UINT32(seq, 2, 0, kMaxU32);
  RM_ARG_INT32(err, 3, -100000, -1);
  pool_abort_io(p, id, seq, err, arg_flag(info, 4));
  return info.Env().Undefined();
}

// bpUnpin(session, id) -> true, or false if this slot holds no pin on it.
Napi::Value Unpin(const Napi::CallbackInfo& info) {
  RM_ARG_POOL(p);
  RM_ARG_BUFFER(id, 1, p);
  return Napi::Boolean::New(info.Env(), pool_unpin(p, id));
}

// bpLock(session, id, exclusive, waitForOwn, internalSharedHolds) -> [1] acquired
//   | [0, cell, offset]: queued; wait until the 32-bit arena word at `offset` changes from 1
//     (WAITING), then call bpLockWaitEnd
//   | [2] no free wait cell in this environment (try again later) | [3] the queue lock is busy
// A request that would wait for this environment's own hold fails at once
// (ERR_RINGMASTER_SELF_DEADLOCK) unless `waitForOwn`: the hold is this environment's to
// give back, so the wait ends only if another async flow of the same environment holds it
// (writeback's shared lock, and environments configured with waitForOwnLocks).
Napi::Value Lock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_POOL(p);
  RM_ARG_BUFFER(id, 1, p);
  bool excl = info[2].ToBoolean();
  uint32_t cell = 0;
  bool own_excl = false;
  int32_t r = pool_lock(p, id, excl, arg_flag(info, 3), arg_number_or(info, 4, 0), &cell, &own_excl);
  switch (r) {
    case LA_ACQUIRED: return arr(env, {1});
    case LA_QUEUED: return arr(env, {0, (double)cell, (double)pool_arena_offset(p.v, &p.v.wq.cells[cell].state)});
    case LA_NO_CELL: return arr(env, {2});
    case LA_BUSY: return arr(env, {3});
    case LR_NOT_PINNED: return throw_error(env, "ERR_RINGMASTER_NOT_PINNED", "lock needs a pinned buffer");
    case LR_TORN: return throw_torn(env, id);
    case LR_SELF_DEADLOCK:
      return throw_error(env, "ERR_RINGMASTER_SELF_DEADLOCK",
                         "buffer " + std::to_string(id) + ": this environment already holds its " + (own_excl ? "exclusive" : "shared") +
                             " lock (through another PinnedBuffer of the same page), so " + (excl ? "an exclusive" : "a shared") +
                             " request would wait for itself: release that hold first, or, if concurrent async flows of this environment lock the same pages, configure({ waitForOwnLocks: true })");
    default: return throw_error(env, "ERR_RINGMASTER_CORRUPT", "buffer " + std::to_string(id) + ": content lock word is corrupt");
  }
}

// bpLockWaitEnd(session, id, cell, cancel) -> 1 acquired | 0 cancelled (not acquired) | 2 still waiting
// After a queued request's word changed (or its wait timed out). A lock granted to a page
// that was fenced meanwhile is given back and fails with ERR_RINGMASTER_PAGE_TORN.
Napi::Value LockWaitEnd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_POOL(p);
  RM_ARG_BUFFER(id, 1, p);
  RM_ARG_UINT32(cell, 2, 0, kMaxU32);
  int32_t r = pool_lock_wait_end(p, id, cell, info[3].ToBoolean());
  switch (r) {
    case LW_GRANTED: return Napi::Number::New(env, 1);
    case LW_CANCELLED: return Napi::Number::New(env, 0);
    case LW_WAITING: return Napi::Number::New(env, 2);
    case LR_NOT_PINNED: return throw_error(env, "ERR_RINGMASTER_NOT_PINNED", "lock needs a pinned buffer");
    case LR_TORN: return throw_torn(env, id);
    default:
      return throw_error(env, "ERR_RINGMASTER_CORRUPT", "buffer " + std::to_string(id) + ": this environment's lock wait was overwritten in shared memory");
  }
}

// bpUnlock(session, id, exclusive) -> true | false (not held)
Napi::Value Unlock(const Napi::CallbackInfo& info) {
  RM_ARG_POOL(p);
  RM_ARG_BUFFER(id, 1, p);
  return Napi::Boolean::New(info.Env(), pool_unlock(p, id, info[2].ToBoolean()));
}

// bpMarkDirty(session, id, lsn: bigint) -> true | false (exclusive lock not held)
Napi::Value MarkDirty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_POOL(p);
  RM_ARG_BUFFER(id, 1, p);
  if (!info[2].IsBigInt()) {
    module_type_error(env, "lsn must be a bigint").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bool lossless;
  uint64_t lsn = info[2].As<Napi::BigInt>().Uint64Value(&lossless);
  int32_t r = pool_mark_dirty(p, id, lsn);
  if (r == MD_CORRUPT)
    return throw_error(env, "ERR_RINGMASTER_CORRUPT", "buffer " + std::to_string(id) + ": state word is corrupt; the page was not marked dirty");
  if (r == MD_FILE_CLOSED)
    return throw_error(env, "ERR_RINGMASTER_FILE_CLOSED", "buffer " + std::to_string(id) + ": its file was closed (the last handle): the page can no longer be written, so it was not marked dirty");
  if (r == MD_READ_ONLY)
    return throw_error(env, "EBADF", "buffer " + std::to_string(id) + ": its file was opened read-only (that file id): the page could never be written back, so it was not marked dirty");
  return Napi::Boolean::New(env, r == MD_DIRTIED);
}

// bpStartWrite(session, id) -> [0, seq, fileId, block, lsnHi, lsnLo] | [1] clean | [2, seq] IO busy | [3] corrupt
Napi::Value StartWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_POOL(p);
  RM_ARG_BUFFER(id, 1, p);
  WriteStart w = pool_start_write(p, id);
  switch (w.status) {
    case WS_STARTED:
      return arr(env, {0, (double)w.seq, (double)w.file, (double)w.block, (double)(w.lsn >> 32), (double)(w.lsn & 0xFFFFFFFFu)});
    case WS_BUSY: return arr(env, {2, (double)w.seq});
    case WS_NOT_LOCKED: return throw_error(env, "ERR_RINGMASTER_NOT_LOCKED", "writing a page back needs its content lock");
    default: return arr(env, {(double)w.status});
  }
}

// bpPinById(session, id) -> [fileId, block, dirty] (pinned, no usage bump) | null if not a valid page
Napi::Value PinById(const Napi::CallbackInfo& info) {
  RM_ARG_POOL(p);
  RM_ARG_BUFFER(id, 1, p);
  uint64_t file, block;
  bool dirty;
  if (!pool_pin_by_id(p, id, &file, &block, &dirty)) return info.Env().Null();
  return arr(info.Env(), {(double)file, (double)block, dirty ? 1.0 : 0.0});
}

// bpDirty(session) -> [bufferId, fileId, block, dirtyGen, ...]: every dirty page, its
// write in progress or not (the checkpoint's flushAll; pool_dirty_buffers)
Napi::Value Dirty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_POOL(p);
  std::vector<DirtyPage> pages;
  pool_dirty_buffers(p.v, &pages);
  Napi::Array a = Napi::Array::New(env, pages.size() * 4);
  uint32_t k = 0;
  for (const DirtyPage& d : pages) {
    a.Set(k++, Napi::Number::New(env, d.id));
    a.Set(k++, Napi::Number::New(env, (double)d.file));
    a.Set(k++, Napi::Number::New(env, (double)d.block));
    a.Set(k++, Napi::Number::New(env, d.gen));
  }
  return a;
}

// bpWrittenSince(session, id, fileId, block, dirtyGen) -> bool: pool_written_since
Napi::Value WrittenSince(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_POOL(p);
  RM_ARG_BUFFER(id, 1, p);
  if (!info[2].IsNumber() || !info[3].IsNumber() || !info[4].IsNumber())
    return throw_error(env, "ERR_INVALID_ARG_TYPE", "bpWrittenSince(session, id, fileId, block, dirtyGen): numbers expected");
  DirtyPage d{id, (uint64_t)info[2].As<Napi::Number>().DoubleValue(), (uint64_t)info[3].As<Napi::Number>().DoubleValue(),
              info[4].As<Napi::Number>().Uint32Value()};
  return Napi::Boolean::New(env, pool_written_since(p.v, d));
}

// bpDirtyAhead(session, start, fromHand, scan, max, recentlyUsed) -> [clock hand, ...ids]: pool_dirty_ahead
Napi::Value DirtyAhead(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_POOL(p);
  RM_ARG_UINT32(start, 1, 0, kMaxU32);
  RM_ARG_UINT32(scan, 3, 1, 1 << 24);
  RM_ARG_UINT32(max, 4, 1, 1 << 24);
  std::vector<uint32_t> ids;
  uint32_t hand = 0;
  pool_dirty_ahead(p.v, start, info[2].ToBoolean(), scan, max, info[5].ToBoolean(), &ids, &hand);
  Napi::Array a = Napi::Array::New(env, ids.size() + 1);
  a.Set(0u, Napi::Number::New(env, hand));
  for (size_t i = 0; i < ids.size(); i++) a.Set((uint32_t)i + 1, Napi::Number::New(env, ids[i]));
  return a;
}

Napi::Object stats_obj(Napi::Env env, const uint64_t* v) {
  static const char* names[ST_COUNT] = {"hits", "misses", "reads", "writes", "evictions", "ioWaits", "completedByOther",
                                         "completedForOther", "lockWaits", "lockWaitMs", "lockTimeouts", "lockHandoffs", "lockWakeups",
                                         "pinWaits", "pinWaitMs", "pinWaiting"};
  Napi::Object o = Napi::Object::New(env);
  for (uint32_t i = 0; i < ST_COUNT; i++) {
    if (i == ST_COMPLETED_FOR_OTHER || i == ST_PIN_WAITING) continue;
    double x = (double)v[i];
    if (i == ST_LOCK_WAIT_NS || i == ST_PIN_WAIT_NS) x = std::round(x / 1e3) / 1e3;  // ns -> ms, 3 decimals
    o.Set(names[i], Napi::Number::New(env, x));
  }
  return o;
}

// bpStats(session) -> { process, global, pinned, dirty, valid, ... }
Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_POOL(p);
  PoolCensus c;
  pool_census(p, &c);
  Napi::Object o = Napi::Object::New(env);
  o.Set("process", stats_obj(env, c.process));
  o.Set("global", stats_obj(env, c.global));
  Napi::Array torn_pages = Napi::Array::New(env, c.torn_pages.size());
  for (size_t i = 0; i < c.torn_pages.size(); i++) {
    Napi::Object t = Napi::Object::New(env);
    t.Set("fileId", Napi::Number::New(env, (double)c.torn_pages[i].file));
    t.Set("block", Napi::Number::New(env, (double)c.torn_pages[i].block));
    t.Set("dirty", Napi::Boolean::New(env, c.torn_pages[i].dirty));
    torn_pages.Set((uint32_t)i, t);
  }
  o.Set("torn", Napi::Number::New(env, c.torn));
  o.Set("tornPages", torn_pages);
  o.Set("tornTotal", Napi::Number::New(env, (double)c.torn_total));
  o.Set("pinned", Napi::Number::New(env, c.pinned));
  o.Set("dirty", Napi::Number::New(env, c.dirty));
  o.Set("valid", Napi::Number::New(env, c.valid));
  o.Set("ioInProgress", Napi::Number::New(env, c.io));
  o.Set("corruptDescriptors", Napi::Number::New(env, (double)c.corrupt_descriptors));
  o.Set("corruptMapping", Napi::Number::New(env, (double)c.corrupt_mapping));
  o.Set("integrityRepairs", Napi::Number::New(env, (double)c.integrity_repairs));
  o.Set("lockQueueRepairs", Napi::Number::New(env, (double)c.lock_queue_repairs));
  o.Set("recounts", Napi::Number::New(env, (double)c.recounts));
  o.Set("lockWaiters", Napi::Number::New(env, c.lock_waiters));
  return o;
}

// bpVerify(session, repair) -> { found, repaired, lockTimeout, anomalies: [{ structure, index, problem, repaired }] }
// (what is checked and repaired: buffer_pool.cc, pool_verify)
Napi::Value Verify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_POOL(p);
  PoolVerifyReport r;
  pool_verify(*p.seg, p.v, info[1].ToBoolean(), &r);
  Napi::Object o = Napi::Object::New(env);
  o.Set("found", Napi::Number::New(env, r.found));
  o.Set("repaired", Napi::Number::New(env, r.repaired));
  o.Set("lockTimeout", Napi::Boolean::New(env, r.lock_timeout));
  Napi::Array a = Napi::Array::New(env, r.anomalies.size());
  for (size_t i = 0; i < r.anomalies.size(); i++) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("structure", Napi::String::New(env, r.anomalies[i].structure));
    e.Set("index", Napi::Number::New(env, r.anomalies[i].index));
    e.Set("problem", Napi::String::New(env, r.anomalies[i].problem));
    e.Set("repaired", Napi::Boolean::New(env, r.anomalies[i].repaired));
    a.Set((uint32_t)i, e);
  }
  o.Set("anomalies", a);
  return o;
}

// bpIoInProgress(session) -> [[id, slot, pid, ioSeq, submitted, write], ...]: every
// descriptor with IO_IN_PROGRESS and who claimed it (introspection: a dead claimer's
// IO must not stay in progress once its slot is cleaned and its CQEs are in).
Napi::Value IoInProgress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_POOL(p);
  std::vector<PoolIoClaim> claims;
  pool_ios_in_progress(p.v, &claims);
  Napi::Array a = Napi::Array::New(env, claims.size());
  for (size_t k = 0; k < claims.size(); k++) {
    const PoolIoClaim& c = claims[k];
    Napi::Array e = Napi::Array::New(env, 6);
    e.Set(0u, Napi::Number::New(env, c.id));
    e.Set(1u, Napi::Number::New(env, c.slot));
    e.Set(2u, Napi::Number::New(env, c.pid));
    e.Set(3u, Napi::Number::New(env, c.seq));
    e.Set(4u, Napi::Boolean::New(env, c.submitted));
    e.Set(5u, Napi::Boolean::New(env, c.write));
    a.Set((uint32_t)k, e);
  }
  return a;
}

// bpPinRecords(session) -> [[slot, bufferId, pins, sharedLocks, exclusive], ...]: every
// slot's pin/lock records (diagnostics: which process a pin count belongs to).
Napi::Value PinRecords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_POOL(p);
  std::vector<PinRecordRow> rows;
  pin_records_list(p.v, &rows);
  Napi::Array a = Napi::Array::New(env, rows.size());
  for (size_t k = 0; k < rows.size(); k++) {
    const PinRecordRow& r = rows[k];
    a.Set((uint32_t)k, arr(env, {(double)r.slot, (double)r.buffer, (double)r.pins, (double)r.shared_locks, (double)r.exclusive}));
  }
  return a;
}

// bpLockWord(session, id) -> the buffer's content-lock word (diagnostics and tests: holder,
// shared count, WAITERS / HANDOFF / WAKING)
Napi::Value LockWord(const Napi::CallbackInfo& info) {
  RM_ARG_POOL(p);
  RM_ARG_BUFFER(id, 1, p);
  return Napi::Number::New(info.Env(), pool_lock_word(p.v, id));
}

// bpInfo(session) -> { offset, pages, pageSize, descOffset, pagesOffset, ... } (arena offsets) | null
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  PoolView v;
  if (!pool_view(*seg, &v)) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("offset", Napi::Number::New(env, (double)v.region_off));
  o.Set("pages", Napi::Number::New(env, v.n));
  o.Set("pageSize", Napi::Number::New(env, v.page_size));
  o.Set("descOffset", Napi::Number::New(env, (double)pool_arena_offset(v, v.d)));
  o.Set("descSize", Napi::Number::New(env, (double)sizeof(BufDesc)));
  o.Set("ioSeqField", Napi::Number::New(env, (double)offsetof(BufDesc, io_seq)));
  o.Set("lockField", Napi::Number::New(env, (double)offsetof(BufDesc, content_lock)));
  o.Set("pagesOffset", Napi::Number::New(env, (double)pool_arena_offset(v, v.pages)));
  return o;
}

// bpLayout(pages, pageSize, maxSlots) -> bytes
Napi::Value Layout(const Napi::CallbackInfo& info) {
  RM_ARG_UINT32(pages, 0, 1, 1 << 24);
  RM_ARG_UINT32(page_size, 1, 4096, 32768);
  RM_ARG_UINT32(max_slots, 2, 1, 4096);
  return Napi::Number::New(info.Env(), (double)pool_layout_size(pages, page_size, max_slots, nullptr));
}

// bpInit(session, offset, size, pages, pageSize, flags?)
Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  RM_ARG_SEGMENT(seg);
  RM_ARG_UINT64(off, 1, 0, kMaxSafeInteger);
  RM_ARG_UINT64(size, 2, 1, kMaxSafeInteger);
  RM_ARG_UINT32(pages, 3, 1, 1 << 24);
  RM_ARG_UINT32(page_size, 4, 4096, 32768);
  uint32_t flags = 0;
  if (info.Length() > 5) {
    RM_ARG_UINT32(f, 5, 0, 1);
    flags = f;
  }
  int rc = pool_init(*seg, off, size, pages, page_size, flags);
  if (rc) module_error(env, "ERR_RINGMASTER_BUFFER_POOL_INIT", "buffer pool init failed", rc).ThrowAsJavaScriptException();
  return env.Undefined();
}

// bpSetChecksum(page: Uint8Array) -> checksum (stored at bytes 8..12); for tools and tests.
Napi::Value SetChecksum(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  JsBytes a;
  const char* why = nullptr;
  if (!js_bytes(env, info[0], &a, &why)) {
    module_type_error(env, std::string("page: ") + why).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t n = a.length;
  if (n < 4096 || n > 32768 || (n & (n - 1))) {
    module_range_error(env, a.detached ? "page is detached (its ArrayBuffer was transferred)" : "page size must be a power of two in 4096..32768").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, page_set_checksum(a.data, (uint32_t)n));
}

}  // namespace

void register_bufferpool_exports(Napi::Env env, Napi::Object exports) {
  exports.Set("bpPin", Napi::Function::New(env, Pin));
  exports.Set("bpStartIo", Napi::Function::New(env, StartIo));
  exports.Set("bpSubmitted", Napi::Function::New(env, Submitted));
  exports.Set("bpAbortIo", Napi::Function::New(env, AbortIo));
  exports.Set("bpUnpin", Napi::Function::New(env, Unpin));
  exports.Set("bpLock", Napi::Function::New(env, Lock));
  exports.Set("bpUnlock", Napi::Function::New(env, Unlock));
  exports.Set("bpLockWaitEnd", Napi::Function::New(env, LockWaitEnd));
  exports.Set("bpPinWait", Napi::Function::New(env, PinWait));
  exports.Set("bpLockWord", Napi::Function::New(env, LockWord));
  exports.Set("bpMarkDirty", Napi::Function::New(env, MarkDirty));
  exports.Set("bpStartWrite", Napi::Function::New(env, StartWrite));
  exports.Set("bpPinById", Napi::Function::New(env, PinById));
  exports.Set("bpDirty", Napi::Function::New(env, Dirty));
  exports.Set("bpWrittenSince", Napi::Function::New(env, WrittenSince));
  exports.Set("bpDirtyAhead", Napi::Function::New(env, DirtyAhead));
  exports.Set("bpStats", Napi::Function::New(env, Stats));
  exports.Set("bpVerify", Napi::Function::New(env, Verify));
  exports.Set("bpIoInProgress", Napi::Function::New(env, IoInProgress));
  exports.Set("bpPinRecords", Napi::Function::New(env, PinRecords));
  exports.Set("bpInfo", Napi::Function::New(env, Info));
  exports.Set("bpLayout", Napi::Function::New(env, Layout));
  exports.Set("bpInit", Napi::Function::New(env, Init));
  exports.Set("bpSetChecksum", Napi::Function::New(env, SetChecksum));
}

}  // namespace rm
