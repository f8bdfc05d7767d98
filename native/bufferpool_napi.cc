// N-API surface of the buffer pool. Every function takes the NativeSession as its
// first argument; the pool's shared layout and rules live in buffer_pool.h/.cc.
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "atomics.h"
#include "buffer_pool.h"
#include "js_bytes.h"
#include "modules.h"
#include "segment.h"
#include "shared_wait.h"

namespace rm {

namespace {

// Status codes returned to JS.
enum : int32_t {
  PIN_OK = 0,          // [0, id]
  PIN_NEED_CLEAN = 3,  // [3, dirty victim id]: write it back, then retry
  PIN_EXHAUSTED = 4,   // every buffer pinned or in IO
  PIN_TOO_MANY = 5,    // this slot's pin table is full
  PIN_CORRUPT = 6,     // [6, what]: a descriptor (0) or the mapping table (1) is corrupt
  IO_VALID = 0,        // [0]
  IO_CLAIMED = 1,      // [1, seq]: caller must read (or zero-fill was done)
  IO_WAIT = 2,         // [2, seq]: another IO in progress; wait for io_seq != seq
  IO_FAILED = 3,       // [3, err]: the IO this caller waited for failed
  IO_CORRUPT = 4,      // [4]: the descriptor's state or tag is garbage
};

// A CAS that keeps failing means another process keeps rewriting the word.
constexpr int kMaxCasRetries = 1000;

struct Ctx {
  Segment* seg = nullptr;
  uint32_t slot = 0;
  PoolView v;
};

bool ctx(const Napi::CallbackInfo& info, Ctx* c) {
  Napi::Env env = info.Env();
  c->seg = session_segment(env, info[0], &c->slot);
  if (!c->seg) return false;
  if (!pool_view(*c->seg, &c->v)) {
    module_error(env, "ERR_RINGMASTER_NO_BUFFER_POOL", "no buffer pool in this segment (start the postmaster with the bufferPool option)").ThrowAsJavaScriptException();
    return false;
  }
  if (c->slot >= c->v.max_slots) {
    module_error(env, "ERR_RINGMASTER_CORRUPT", "slot outside the buffer pool's slot table").ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

bool num_arg(const Napi::CallbackInfo& info, size_t i, double lo, double hi, double* out) {
  if (!info[i].IsNumber()) {
    module_type_error(info.Env(), "expected a number").ThrowAsJavaScriptException();
    return false;
  }
  double d = info[i].As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || d != std::floor(d)) {
    module_range_error(info.Env(), "number out of range").ThrowAsJavaScriptException();
    return false;
  }
  *out = d;
  return true;
}

bool buf_arg(const Napi::CallbackInfo& info, size_t i, Ctx& c, uint32_t* id) {
  double d;
  if (!num_arg(info, i, 0, (double)c.v.n - 1, &d)) return false;
  *id = (uint32_t)d;
  return true;
}

// A per-slot counter and its global total.
void count_stat(PoolView& v, uint32_t slot, SlotStat which) {
  stat_add(&v.h->gstats[which], (uint64_t)1);
  stat_add(&v.sstats[slot].v[which], (uint64_t)1);
}

Napi::Value arr(Napi::Env env, std::initializer_list<double> xs) {
  Napi::Array a = Napi::Array::New(env, xs.size());
  uint32_t i = 0;
  for (double x : xs) a.Set(i++, Napi::Number::New(env, x));
  return a;
}

// Cached: a forked worker is a new exec'd process, so the value never goes stale.
int32_t my_pid() {
  static const int32_t pid = (int32_t)getpid();
  return pid;
}

PinEntry* slot_entries(Ctx& c) { return &c.v.pins[(uint64_t)c.slot * kPinsPerSlot]; }

// The slot's record for buffer `id` (create: a free one if none). Only this slot's
// own JS thread writes its entries (and the cleaner, once the slot is no longer live).
PinEntry* entry_for(Ctx& c, uint32_t id, bool create) {
  PinEntry* e = slot_entries(c);
  PinEntry* free_e = nullptr;
  for (uint32_t i = 0; i < kPinsPerSlot; i++) {
    uint32_t b1 = load_relaxed(&e[i].buf_plus1);
    if (b1 == id + 1) return &e[i];
    if (b1 == 0 && !free_e) free_e = &e[i];
  }
  if (!create || !free_e) return nullptr;
  store_relaxed(&free_e->pins, 0u);
  store_relaxed(&free_e->shared_locks, 0u);
  store_relaxed(&free_e->exclusive, 0u);
  store_release(&free_e->buf_plus1, id + 1);
  return free_e;
}

void entry_maybe_free(PinEntry* e) {
  if (load_relaxed(&e->pins) == 0 && load_relaxed(&e->shared_locks) == 0 && load_relaxed(&e->exclusive) == 0)
    store_release(&e->buf_plus1, 0u);
}

uint32_t bucket_of(PoolView& v, uint64_t file, uint64_t block) {
  uint64_t x = file * 0x9E3779B97F4A7C15ull ^ (block + 0x7F4A7C15ull) * 0xC2B2AE3D27D4EB4Full;
  x ^= x >> 29;
  return (uint32_t)(x & (v.nbuckets - 1));
}
RobustLock* part_lock(PoolView& v, uint32_t bucket) { return &v.locks[bucket % kPoolPartitions].lock; }

bool lock_part(RobustLock* l) {
  // No repair needed on EOWNERDEAD: chain edits are single stores of hash_next/bucket
  // heads done while the victim is pinned by the editor, so a half-done edit leaves at
  // worst an unreachable (tagless) buffer, which the clock sweep reuses.
  LockResult r = robust_lock_acquire(l, 2000000000);
  return r == LockResult::Acquired || r == LockResult::AcquiredOwnerDied;
}

constexpr int64_t kChainBroken = -2;

// Chain walk under the partition lock; every link is bounds-checked and the walk is
// bounded (a corrupt cycle cannot hang us). -1: not there; kChainBroken: a link out of
// range or more steps than buffers (a cycle): the lookup cannot be trusted either way.
int64_t chain_find(PoolView& v, uint32_t bucket, uint64_t file, uint64_t block) {
  uint32_t b1 = load_acquire(&v.buckets[bucket]);
  for (uint32_t steps = 0; b1; steps++) {
    if (b1 > v.n || steps >= v.n) return kChainBroken;
    BufDesc* d = &v.d[b1 - 1];
    if ((load_acquire(&d->state) & BS_TAG) && load_relaxed(&d->file_id) == file && load_relaxed(&d->block) == block) return b1 - 1;
    b1 = load_relaxed(&d->hash_next);
  }
  return -1;
}

// The link (bucket head or a hash_next) that points at `id`, or null if the chain does
// not reach it or is broken.
uint32_t* chain_link_to(PoolView& v, uint32_t bucket, uint32_t id) {
  uint32_t* link = &v.buckets[bucket];
  for (uint32_t steps = 0; steps < v.n; steps++) {
    uint32_t b1 = load_acquire(link);
    if (b1 == 0 || b1 > v.n) return nullptr;
    if (b1 == id + 1) return link;
    link = &v.d[b1 - 1].hash_next;
  }
  return nullptr;
}

void chain_unlink(PoolView& v, uint32_t* link, uint32_t id) {
  store_release(link, load_relaxed(&v.d[id].hash_next));
  store_relaxed(&v.d[id].hash_next, 0u);
}

// Pin: refcount+1, and usage+1 (up to 5) if `use`. CAS only. A full pin count
// (2^18 - 1) is never exceeded: the caller reports too many pins.
// Pins and records the pin in `rec` (our slot's entry for this buffer, made beforehand)
// with one store right after the CAS: a process SIGKILLed between the two leaks the pin
// (cleanup only sees recorded pins), so nothing else may sit in between.
bool pin_state(BufDesc* d, bool use, PinEntry* rec) {
  uint64_t s = load_acquire(&d->state);
  for (;;) {
    if ((s & BS_PIN_MASK) == BS_PIN_MASK) return false;
    uint64_t ns = s + 1;
    uint64_t u = (s & BS_USAGE_MASK) >> BS_USAGE_SHIFT;
    if (use && u < BS_USAGE_MAX) ns += 1ull << BS_USAGE_SHIFT;
    if (cas(&d->state, &s, ns)) {
      store_release(&rec->pins, load_relaxed(&rec->pins) + 1);
      return true;
    }
  }
}

// -1 if not pinned (garbage), else the pins left.
int64_t unpin_state(BufDesc* d) {
  uint64_t s = load_acquire(&d->state);
  for (;;) {
    if ((s & BS_PIN_MASK) == 0) return -1;
    if (cas(&d->state, &s, s - 1)) return (int64_t)((s - 1) & BS_PIN_MASK);
  }
}

// A free entry of our slot, set up to record one pin of a buffer not known yet: a clock
// victim's pin is recorded by one store (its buf_plus1) right after the pinning CAS.
PinEntry* spare_entry(Ctx& c) {
  PinEntry* all = slot_entries(c);
  for (uint32_t i = 0; i < kPinsPerSlot; i++) {
    if (load_relaxed(&all[i].buf_plus1) != 0) continue;
    store_relaxed(&all[i].pins, 1u);  // ignored by cleanup until buf_plus1 is set
    store_relaxed(&all[i].shared_locks, 0u);
    store_relaxed(&all[i].exclusive, 0u);
    return &all[i];
  }
  return nullptr;
}

// Undoes a recorded pin (state first, then the record, as in Unpin).
void unrecord_pin(Ctx& c, uint32_t id) {
  PinEntry* e = entry_for(c, id, false);
  if (!e || load_relaxed(&e->pins) == 0) return;
  store_release(&e->pins, load_relaxed(&e->pins) - 1);
  entry_maybe_free(e);
}

// Clock sweep: returns a victim id pinned by us (refcount 0 -> 1) and recorded in `spare`
// (see spare_entry), or -1 with *dirty = a dirty unpinned candidate (or -1). Buffers with
// a garbage state word are never taken (counted in *corrupt): nothing about them can be trusted.
int64_t clock_victim(PoolView& v, PinEntry* spare, int64_t* dirty, uint32_t* corrupt) {
  *dirty = -1;
  *corrupt = 0;
  uint64_t limit = (uint64_t)v.n * (BS_USAGE_MAX + 2);
  for (uint64_t i = 0; i < limit; i++) {
    uint32_t id = fetch_add(&v.h->clock_hand, 1u) % v.n;
    BufDesc* d = &v.d[id];
    uint64_t s = load_acquire(&d->state);
    for (int tries = 0; tries < kMaxCasRetries; tries++) {
      if (!desc_state_valid(s)) { ++*corrupt; break; }
      if ((s & BS_PIN_MASK) || (s & BS_IO) || (s & BS_TORN)) break;  // a torn page stays fenced
      if (s & BS_USAGE_MASK) {
        if (cas(&d->state, &s, (uint64_t)(s - (1ull << BS_USAGE_SHIFT)))) break;
        continue;
      }
      if (s & BS_DIRTY) {
        if (*dirty < 0) *dirty = id;
        break;
      }
      if (cas(&d->state, &s, s + 1)) {
        store_release(&spare->buf_plus1, id + 1);  // the record, at once (see pin_state)
        return id;
      }
    }
  }
  return -1;
}

// bpPin(session, fileId, block) -> [0, id] | [3, dirtyId] | [4] | [5]
Napi::Value Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  double fd, bd;
  if (!num_arg(info, 1, 0, 9007199254740991.0, &fd) || !num_arg(info, 2, 0, 9007199254740991.0, &bd)) return env.Undefined();
  uint64_t file = (uint64_t)fd, block = (uint64_t)bd;
  PoolView& v = c.v;
  uint32_t bucket = bucket_of(v, file, block);
  RobustLock* pl = part_lock(v, bucket);
  auto corrupt = [&](GlobalStat what) {
    pool_report_corrupt(*c.seg, v, what);
    return arr(env, {PIN_CORRUPT, what == G_CORRUPT_MAPPING ? 1.0 : 0.0});
  };
  for (int attempt = 0; attempt < 1000; attempt++) {
    if (!lock_part(pl)) return arr(env, {PIN_EXHAUSTED});
    int64_t found = chain_find(v, bucket, file, block);
    if (found == kChainBroken) {
      robust_lock_release(pl);
      return corrupt(G_CORRUPT_MAPPING);
    }
    if (found >= 0 && !desc_state_valid(load_acquire(&v.d[found].state))) {
      robust_lock_release(pl);
      return corrupt(G_CORRUPT_DESCRIPTORS);
    }
    if (found >= 0) {
      // Recorded before the lock release (a futex wake: a syscall, where kills land).
      PinEntry* e = entry_for(c, (uint32_t)found, true);
      bool pinned = e && pin_state(&v.d[found], true, e);
      if (e && !pinned) entry_maybe_free(e);
      robust_lock_release(pl);
      if (!pinned) return arr(env, {PIN_TOO_MANY});
      return arr(env, {PIN_OK, (double)found});
    }
    robust_lock_release(pl);
    // The victim's pin is recorded by clock_victim right after its CAS, not after the
    // partition locks: a worker killed while waiting for one (preempted at a syscall exit)
    // leaked the pin forever (mixed kill soak).
    PinEntry* spare = spare_entry(c);
    if (!spare) return arr(env, {PIN_TOO_MANY});
    int64_t dirty;
    uint32_t bad;
    int64_t vid = clock_victim(v, spare, &dirty, &bad);
    if (vid < 0) store_relaxed(&spare->pins, 0u);  // still free: no victim taken
    if (vid < 0 && dirty < 0 && bad) return corrupt(G_CORRUPT_DESCRIPTORS);  // only garbage left to evict
    if (vid < 0) return dirty >= 0 ? arr(env, {PIN_NEED_CLEAN, (double)dirty}) : arr(env, {PIN_EXHAUSTED});
    BufDesc* d = &v.d[vid];
    auto drop_victim = [&]() {
      if (unpin_state(d) == 0) pool_note_unpinned(*c.seg, v);
      unrecord_pin(c, (uint32_t)vid);
    };
    uint64_t s = load_acquire(&d->state);
    bool evicted = false;
    if (s & BS_TAG) {
      // Our pin keeps other evictors away, so the tag is stable; lookups may still pin
      // it, which the CAS below detects.
      uint64_t of = load_relaxed(&d->file_id), ob = load_relaxed(&d->block);
      uint32_t obucket = bucket_of(v, of, ob);
      RobustLock* ol = part_lock(v, obucket);
      if (!lock_part(ol)) { drop_victim(); return arr(env, {PIN_EXHAUSTED}); }
      // Find its link first: a tagged buffer its chain does not reach (a scribbled tag
      // or link) must not be retagged, or it would end up on two chains.
      uint32_t* link = chain_link_to(v, obucket, (uint32_t)vid);
      if (!link) {
        robust_lock_release(ol);
        drop_victim();
        return corrupt(G_CORRUPT_MAPPING);
      }
      s = load_acquire(&d->state);
      bool ok = false;
      for (int tries = 0; tries < kMaxCasRetries && (s & BS_PIN_MASK) == 1 && !(s & (BS_DIRTY | BS_IO)); tries++) {
        if (cas(&d->state, &s, (s & BS_PIN_MASK))) { ok = true; break; }  // tagless, invalid, pinned once
      }
      if (ok) chain_unlink(v, link, (uint32_t)vid);
      robust_lock_release(ol);
      if (!ok) { drop_victim(); continue; }
      evicted = true;
    }
    if (!lock_part(pl)) { drop_victim(); return arr(env, {PIN_EXHAUSTED}); }
    found = chain_find(v, bucket, file, block);
    if (found == kChainBroken || (found >= 0 && !desc_state_valid(load_acquire(&v.d[found].state)))) {
      robust_lock_release(pl);
      drop_victim();
      return corrupt(found == kChainBroken ? G_CORRUPT_MAPPING : G_CORRUPT_DESCRIPTORS);
    }
    if (found >= 0) {  // someone else brought it in meanwhile: use theirs
      drop_victim();
      PinEntry* e = entry_for(c, (uint32_t)found, true);
      bool pinned = e && pin_state(&v.d[found], true, e);
      if (e && !pinned) entry_maybe_free(e);
      robust_lock_release(pl);
      if (!pinned) return arr(env, {PIN_TOO_MANY});
      return arr(env, {PIN_OK, (double)found});
    }
    store_relaxed(&d->file_id, file);
    store_relaxed(&d->block, block);
    store_relaxed(&d->lsn, (uint64_t)0);
    store_relaxed(&d->hash_next, load_relaxed(&v.buckets[bucket]));
    s = load_acquire(&d->state);
    // Release: the tag stores above are visible to anyone who sees TAG_VALID.
    bool tagged = false;
    for (int tries = 0; tries < kMaxCasRetries && !tagged; tries++)
      tagged = cas(&d->state, &s, (uint64_t)((s & BS_PIN_MASK) | BS_TAG | (1ull << BS_USAGE_SHIFT)));
    if (!tagged) {  // only a scribbler rewrites an unlinked buffer we pinned
      robust_lock_release(pl);
      return corrupt(G_CORRUPT_DESCRIPTORS);
    }
    store_release(&v.buckets[bucket], (uint32_t)vid + 1);
    robust_lock_release(pl);
    if (evicted) count_stat(v, c.slot, ST_EVICTIONS);
    return arr(env, {PIN_OK, (double)vid});
  }
  return arr(env, {PIN_EXHAUSTED});
}

// bpPinWait(session, mode, waitedNs?) -> [unpinSeqOffset, unpinSeq] (modes 1, 2)
// A read that found every buffer pinned waits for unpin_seq to move (an unpin of a
// buffer's last pin) instead of polling the clock sweep. Mode 1 registers the wait (per
// slot, so a dead waiter's count goes with its slot) and counts it; 2 reads the seq again;
// 0 deregisters it and adds the time waited.
Napi::Value PinWait(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint64_t* gauge = &c.v.sstats[c.slot].v[ST_PIN_WAITING];
  int mode = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
  if (mode == 1 || mode == 2) {
    if (mode == 1) {
      if (fetch_add(gauge, (uint64_t)1) == 0) fetch_add(&c.v.h->pin_waiters, 1u);
      count_stat(c.v, c.slot, ST_PIN_WAITS);
    }
    // seq_cst: the registration above is visible before we read the seq (an unpinner
    // bumps the seq, then reads pin_waiters).
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    double off = (double)(c.v.region_off + ((uint8_t*)&c.v.h->unpin_seq - c.v.base));
    return arr(env, {off, (double)load_acquire(&c.v.h->unpin_seq)});
  }
  uint64_t g = load_relaxed(gauge);
  if (g > 0) {
    store_relaxed(gauge, g - 1);
    if (g == 1) {
      uint32_t cur = load_acquire(&c.v.h->pin_waiters);
      while (cur > 0 && !cas(&c.v.h->pin_waiters, &cur, cur - 1)) {}
    }
  }
  double ns = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 0;
  if (ns > 0 && ns < 1e15) {
    stat_add(&c.v.h->gstats[ST_PIN_WAIT_NS], (uint64_t)ns);
    stat_add(&c.v.sstats[c.slot].v[ST_PIN_WAIT_NS], (uint64_t)ns);
  }
  return env.Undefined();
}

// bpStartIo(session, id, waitedSeq, zero, first, fileId?, block?) -> [0] | [1, seq] | [2, seq] | [3, err] | [4]
// Caller holds a pin. Claims the read if the page is neither valid nor being read.
// With fileId and block, the descriptor's tag must still say that page.
Napi::Value StartIo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint32_t id;
  double waited;
  if (!buf_arg(info, 1, c, &id) || !num_arg(info, 2, 0, 4294967295.0, &waited)) return env.Undefined();
  bool zero = info[3].ToBoolean();
  bool first = info[4].ToBoolean();
  BufDesc* d = &c.v.d[id];
  bool check_tag = info[5].IsNumber() && info[6].IsNumber();
  for (int tries = 0; tries < kMaxCasRetries; tries++) {
    uint32_t seq = load_acquire(&d->io_seq);  // pairs with end_io's release
    uint64_t s = load_acquire(&d->state);
    // Our pin keeps the tag stable, so a different tag is another process's garbage.
    if (!desc_state_valid(s) || !(s & BS_TAG) ||
        (check_tag && (load_relaxed(&d->file_id) != (uint64_t)info[5].As<Napi::Number>().DoubleValue() ||
                       load_relaxed(&d->block) != (uint64_t)info[6].As<Napi::Number>().DoubleValue()))) {
      pool_report_corrupt(*c.seg, c.v, G_CORRUPT_DESCRIPTORS);
      return arr(env, {IO_CORRUPT});
    }
    if (s & BS_TORN) return arr(env, {IO_FAILED, (double)BP_ERR_TORN});
    if (s & BS_VALID) {
      if (first) count_stat(c.v, c.slot, ST_HITS);
      return arr(env, {IO_VALID});
    }
    if (s & BS_IO) {
      if (first) count_stat(c.v, c.slot, ST_IO_WAITS);
      return arr(env, {IO_WAIT, (double)seq});
    }
    // The read we waited for (claim seq `waited`, ended at waited + 1) failed, or one that
    // started after it did: both are this block's answer now. Only an exact match made two
    // async flows of one environment livelock on a block that always fails (past EOF): each
    // found the other's newer error, claimed a new read, and its inline completion gave the
    // other the same view, without the JS thread ever yielding.
    if ((s & BS_IO_ERROR) && waited != 0 && (uint32_t)(seq - (uint32_t)waited - 1) < 0x80000000u) {
      return arr(env, {IO_FAILED, (double)load_relaxed(&d->last_error)});
    }
    if (!cas(&d->state, &s, bs_claim(s, c.slot) & ~BS_IO_ERROR)) continue;
    // No syscall between the claim and the seq step: a worker preempted at a syscall exit
    // is where a SIGKILL finds it (the mixed kill soak hit getpid() here).
    uint32_t nseq = pool_claim_seq(d);  // odd: in progress (pairs with waiters' acquire)
    store_relaxed(&d->io_submitted, 0u);
    store_relaxed(&d->io_slot, c.slot);
    store_relaxed(&d->io_pid, my_pid());
    if (zero) {
      memset(c.v.pages + (uint64_t)id * c.v.page_size, 0, c.v.page_size);
      pool_read_done(*c.seg, c.v, id, nseq & 0xFFFFF, (int32_t)c.v.page_size);
      return arr(env, {IO_VALID});
    }
    count_stat(c.v, c.slot, ST_MISSES);
    count_stat(c.v, c.slot, ST_READS);
    return arr(env, {IO_CLAIMED, (double)nseq});
  }
  pool_report_corrupt(*c.seg, c.v, G_CORRUPT_DESCRIPTORS);
  return arr(env, {IO_CORRUPT});
}

// bpSubmitted(session, id, seq): the claimed IO reached the ring.
Napi::Value Submitted(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint32_t id;
  double seq;
  if (!buf_arg(info, 1, c, &id) || !num_arg(info, 2, 0, 4294967295.0, &seq)) return env.Undefined();
  store_release(&c.v.d[id].io_submitted, (uint32_t)seq);
  return env.Undefined();
}

// bpAbortIo(session, id, seq, err, write): the claimed IO never reached the ring.
Napi::Value AbortIo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint32_t id;
  double seq, err;
  if (!buf_arg(info, 1, c, &id) || !num_arg(info, 2, 0, 4294967295.0, &seq) || !num_arg(info, 3, -100000, -1, &err)) return env.Undefined();
  if (info[4].ToBoolean()) pool_write_done(*c.seg, c.v, id, (uint32_t)seq & 0xFFFFF, (int32_t)err);
  else pool_read_done(*c.seg, c.v, id, (uint32_t)seq & 0xFFFFF, (int32_t)err);
  return env.Undefined();
}

// bpUnpin(session, id) -> true, or false if this slot holds no pin on it.
Napi::Value Unpin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint32_t id;
  if (!buf_arg(info, 1, c, &id)) return env.Undefined();
  PinEntry* e = entry_for(c, id, false);
  if (!e || load_relaxed(&e->pins) == 0) return Napi::Boolean::New(env, false);
  // State first, then the record: a death in between leaves a record the cleaner
  // clamps (never below zero), not a leaked pin.
  int64_t left = unpin_state(&c.v.d[id]);
  bool ok = left >= 0;
  store_release(&e->pins, load_relaxed(&e->pins) - 1);
  entry_maybe_free(e);
  if (left == 0) pool_note_unpinned(*c.seg, c.v);
  // Our record says we held a pin, so a zero count in the descriptor is garbage (or a
  // repair reset it): report it; the caller's release still succeeded.
  if (!ok) pool_report_corrupt(*c.seg, c.v, G_CORRUPT_DESCRIPTORS);
  return Napi::Boolean::New(env, true);
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
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint32_t id;
  if (!buf_arg(info, 1, c, &id)) return env.Undefined();
  bool excl = info[2].ToBoolean();
  bool wait_for_own = info.Length() > 3 && info[3].ToBoolean();
  PinEntry* e = entry_for(c, id, false);
  if (!e || load_relaxed(&e->pins) == 0) {
    module_error(env, "ERR_RINGMASTER_NOT_PINNED", "lock needs a pinned buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (load_acquire(&c.v.d[id].state) & BS_TORN) {
    module_error(env, "ERR_RINGMASTER_PAGE_TORN", "buffer " + std::to_string(id) + ": the page was left half-changed by a holder that died; restart to recover it").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // Shared holds the caller says are its writeback's (they always end) do not count.
  double internal_shared = info.Length() > 4 && info[4].IsNumber() ? info[4].As<Napi::Number>().DoubleValue() : 0;
  bool own_excl = load_relaxed(&e->exclusive) != 0;
  bool own_shared = (double)load_relaxed(&e->shared_locks) > internal_shared;
  if ((own_excl || (excl && own_shared)) && !wait_for_own) {
    module_error(env, "ERR_RINGMASTER_SELF_DEADLOCK",
                 "buffer " + std::to_string(id) + ": this environment already holds its " + (own_excl ? "exclusive" : "shared") +
                 " lock (through another PinnedBuffer of the same page), so " + (excl ? "an exclusive" : "a shared") +
                 " request would wait for itself: release that hold first, or, if concurrent async flows of this environment lock the same pages, configure({ waitForOwnLocks: true })")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t cell = 0;
  int32_t r = content_lock_acquire(*c.seg, c.v, c.slot, id, excl, !excl && own_shared, e, &cell);
  if (r == LA_ACQUIRED) return arr(env, {1});
  if (r == LA_QUEUED) {
    double off = (double)(c.v.region_off + ((uint8_t*)&c.v.wq.cells[cell].state - c.v.base));
    return arr(env, {0, (double)cell, off});
  }
  if (r == LA_NO_CELL) return arr(env, {2});
  if (r == LA_BUSY) return arr(env, {3});
  pool_report_corrupt(*c.seg, c.v, G_CORRUPT_DESCRIPTORS);
  module_error(env, "ERR_RINGMASTER_CORRUPT", "buffer " + std::to_string(id) + ": content lock word is corrupt").ThrowAsJavaScriptException();
  return env.Undefined();
}

// bpLockWaitEnd(session, id, cell, cancel) -> 1 acquired | 0 cancelled (not acquired) | 2 still waiting
// After a queued request's word changed (or its wait timed out). A lock granted to a page
// that was fenced meanwhile is given back and fails with ERR_RINGMASTER_PAGE_TORN.
Napi::Value LockWaitEnd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint32_t id;
  double cell;
  if (!buf_arg(info, 1, c, &id) || !num_arg(info, 2, 0, 4294967295.0, &cell)) return env.Undefined();
  bool cancel = info[3].ToBoolean();
  PinEntry* e = entry_for(c, id, false);
  if (!e) {
    module_error(env, "ERR_RINGMASTER_NOT_PINNED", "lock needs a pinned buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int32_t r = content_lock_wait_end(*c.seg, c.v, c.slot, id, (uint32_t)cell, cancel, e);
  if (r == LW_BAD_CELL) {
    pool_report_corrupt(*c.seg, c.v, G_CORRUPT_DESCRIPTORS);
    module_error(env, "ERR_RINGMASTER_CORRUPT", "buffer " + std::to_string(id) + ": this environment's lock wait was overwritten in shared memory").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (r == LW_GRANTED && (load_acquire(&c.v.d[id].state) & BS_TORN)) {
    bool excl = load_relaxed(&e->exclusive) != 0;
    content_lock_release(*c.seg, c.v, id, excl);
    if (excl) store_release(&e->exclusive, 0u);
    else store_release(&e->shared_locks, load_relaxed(&e->shared_locks) - 1);
    module_error(env, "ERR_RINGMASTER_PAGE_TORN", "buffer " + std::to_string(id) + ": the page was left half-changed by a holder that died; restart to recover it").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, r == LW_GRANTED ? 1 : r == LW_CANCELLED ? 0 : 2);
}

// bpUnlock(session, id, exclusive) -> true | false (not held)
Napi::Value Unlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint32_t id;
  if (!buf_arg(info, 1, c, &id)) return env.Undefined();
  bool excl = info[2].ToBoolean();
  PinEntry* e = entry_for(c, id, false);
  if (!e || (excl ? load_relaxed(&e->exclusive) == 0 : load_relaxed(&e->shared_locks) == 0)) return Napi::Boolean::New(env, false);
  // The word first, then the record: a death in between leaves a record of a hold the
  // word no longer has, which cleanup clamps (never below zero) -- not a leaked lock.
  content_lock_release(*c.seg, c.v, id, excl);
  if (excl) store_release(&e->exclusive, 0u);
  else store_release(&e->shared_locks, load_relaxed(&e->shared_locks) - 1);
  entry_maybe_free(e);
  return Napi::Boolean::New(env, true);
}

// bpMarkDirty(session, id, lsn: bigint) -> true | false (exclusive lock not held)
Napi::Value MarkDirty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint32_t id;
  if (!buf_arg(info, 1, c, &id)) return env.Undefined();
  if (!info[2].IsBigInt()) {
    module_type_error(env, "lsn must be a bigint").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bool lossless;
  uint64_t lsn = info[2].As<Napi::BigInt>().Uint64Value(&lossless);
  PinEntry* e = entry_for(c, id, false);
  if (!e || load_relaxed(&e->exclusive) == 0) return Napi::Boolean::New(env, false);
  BufDesc* d = &c.v.d[id];
  uint8_t* p = c.v.pages + (uint64_t)id * c.v.page_size;
  uint64_t cur = load_relaxed(&d->lsn);
  if (lsn > cur) store_relaxed(&d->lsn, lsn), cur = lsn;
  // The page LSN lives in the page header and never goes backwards: d->lsn starts at 0
  // when the page is loaded, so the LSN the page came from disk with counts too (it was
  // durable when that image was written, so the WAL check keeps using d->lsn alone).
  uint64_t hdr;
  memcpy(&hdr, p, 8);
  if (hdr > cur) cur = hdr;
  memcpy(p, &cur, 8);
  store_relaxed(&d->dirty_gen, load_relaxed(&d->dirty_gen) + 1);
  uint64_t s = load_acquire(&d->state);
  bool dirtied = false;  // release: lsn/dirty_gen visible with DIRTY
  for (int tries = 0; tries < kMaxCasRetries && !dirtied && desc_state_valid(s); tries++) dirtied = cas(&d->state, &s, s | BS_DIRTY);
  if (!dirtied) {
    pool_report_corrupt(*c.seg, c.v, G_CORRUPT_DESCRIPTORS);
    module_error(env, "ERR_RINGMASTER_CORRUPT", "buffer " + std::to_string(id) + ": state word is corrupt; the page was not marked dirty").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, true);
}

// bpStartWrite(session, id) -> [0, seq, fileId, block, lsnHi, lsnLo] | [1] clean | [2, seq] IO busy | [3] corrupt
// Caller holds a pin and a content lock (so the page cannot change under the write).
// The tag names the file and offset the page goes to: it is only trusted if the
// mapping table, under its partition lock, maps that tag to this very buffer.
Napi::Value StartWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint32_t id;
  if (!buf_arg(info, 1, c, &id)) return env.Undefined();
  PinEntry* e = entry_for(c, id, false);
  if (!e || (load_relaxed(&e->exclusive) == 0 && load_relaxed(&e->shared_locks) == 0)) {
    module_error(env, "ERR_RINGMASTER_NOT_LOCKED", "writing a page back needs its content lock").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  BufDesc* d = &c.v.d[id];
  {
    uint64_t file = load_relaxed(&d->file_id), block = load_relaxed(&d->block);
    uint32_t bucket = bucket_of(c.v, file, block);
    RobustLock* pl = part_lock(c.v, bucket);
    if (!lock_part(pl)) return arr(env, {2, (double)load_acquire(&d->io_seq)});
    int64_t found = chain_find(c.v, bucket, file, block);
    robust_lock_release(pl);
    if (found != (int64_t)id || !desc_state_valid(load_acquire(&d->state))) {
      pool_report_corrupt(*c.seg, c.v, found == kChainBroken || found < 0 ? G_CORRUPT_MAPPING : G_CORRUPT_DESCRIPTORS);
      return arr(env, {3});
    }
  }
  for (int tries = 0; tries < kMaxCasRetries; tries++) {
    uint32_t seq = load_acquire(&d->io_seq);
    uint64_t s = load_acquire(&d->state);
    if (!desc_state_valid(s)) break;
    if (!(s & BS_VALID) || !(s & BS_DIRTY) || !(s & BS_TAG)) return arr(env, {1});
    if (s & BS_IO) return arr(env, {2, (double)seq});
    if (!cas(&d->state, &s, bs_claim(s, c.slot))) continue;
    uint32_t nseq = pool_claim_seq(d);
    store_relaxed(&d->io_submitted, 0u);
    store_relaxed(&d->write_gen, load_relaxed(&d->dirty_gen));
    store_relaxed(&d->io_slot, c.slot);
    store_relaxed(&d->io_pid, my_pid());
    uint8_t* p = c.v.pages + (uint64_t)id * c.v.page_size;
    uint32_t sum = page_checksum(p, c.v.page_size);
    memcpy(p + 8, &sum, 4);
    uint64_t lsn = load_relaxed(&d->lsn);
    count_stat(c.v, c.slot, ST_WRITES);
    return arr(env, {0, (double)nseq, (double)load_relaxed(&d->file_id), (double)load_relaxed(&d->block),
                     (double)(lsn >> 32), (double)(lsn & 0xFFFFFFFFu)});
  }
  pool_report_corrupt(*c.seg, c.v, G_CORRUPT_DESCRIPTORS);
  return arr(env, {3});
}

// bpPinById(session, id) -> [fileId, block, dirty] (pinned, no usage bump) | null if not a valid page
Napi::Value PinById(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint32_t id;
  if (!buf_arg(info, 1, c, &id)) return env.Undefined();
  BufDesc* d = &c.v.d[id];
  PinEntry* e = entry_for(c, id, true);
  if (!e) return env.Null();
  uint64_t s = load_acquire(&d->state);
  for (int tries = 0;; tries++) {
    bool garbage = tries >= kMaxCasRetries || !desc_state_valid(s);
    if (garbage || !(s & BS_TAG) || !(s & BS_VALID) || (s & BS_PIN_MASK) == BS_PIN_MASK) {
      entry_maybe_free(e);
      if (garbage) pool_report_corrupt(*c.seg, c.v, G_CORRUPT_DESCRIPTORS);
      return env.Null();
    }
    if (cas(&d->state, &s, s + 1)) {
      store_release(&e->pins, load_relaxed(&e->pins) + 1);  // the record, at once (see pin_state)
      break;
    }
  }
  return arr(env, {(double)load_relaxed(&d->file_id), (double)load_relaxed(&d->block), (s & BS_DIRTY) ? 1.0 : 0.0});
}

// bpDirty(session, max, unpinnedOnly) -> ids of dirty valid buffers
Napi::Value Dirty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  double max;
  if (!num_arg(info, 1, 1, 1 << 24, &max)) return env.Undefined();
  bool unpinned = info[2].ToBoolean();
  Napi::Array a = Napi::Array::New(env);
  uint32_t k = 0;
  for (uint32_t id = 0; id < c.v.n && k < (uint32_t)max; id++) {
    uint64_t s = load_acquire(&c.v.d[id].state);
    if (desc_state_valid(s) && (s & BS_DIRTY) && (s & BS_VALID) && !(s & BS_IO) && (!unpinned || (s & BS_PIN_MASK) == 0))
      a.Set(k++, Napi::Number::New(env, id));
  }
  return a;
}

Napi::Object stats_obj(Napi::Env env, const uint64_t* v) {
  static const char* names[ST_COUNT] = {"hits", "misses", "reads", "writes", "evictions", "ioWaits", "completedByOther",
                                         "completedForOther", "lockWaits", "lockWaitMs", "lockTimeouts", "lockHandoffs", "lockWakeups",
                                         "pinWaits", "pinWaitMs", "pinWaiting"};
  Napi::Object o = Napi::Object::New(env);
  for (uint32_t i = 0; i < ST_COUNT; i++) {
    if (i == ST_COMPLETED_FOR_OTHER || i == ST_PIN_WAITING) continue;
    double x = (double)load_relaxed(&v[i]);
    if (i == ST_LOCK_WAIT_NS || i == ST_PIN_WAIT_NS) x = std::round(x / 1e3) / 1e3;  // ns -> ms, 3 decimals
    o.Set(names[i], Napi::Number::New(env, x));
  }
  return o;
}

// bpStats(session) -> { process, global, pinned, dirty, valid }
Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("process", stats_obj(env, c.v.sstats[c.slot].v));
  o.Set("global", stats_obj(env, c.v.h->gstats));
  uint32_t pinned = 0, dirty = 0, valid = 0, io = 0, torn = 0;
  Napi::Array torn_pages = Napi::Array::New(env);
  for (uint32_t id = 0; id < c.v.n; id++) {
    uint64_t s = load_acquire(&c.v.d[id].state);
    pinned += (s & BS_PIN_MASK) != 0;
    dirty += (s & BS_DIRTY) != 0;
    valid += (s & BS_VALID) != 0;
    io += (s & BS_IO) != 0;
    if ((s & BS_TORN) && torn++ < 64) {
      Napi::Object t = Napi::Object::New(env);
      t.Set("fileId", Napi::Number::New(env, (double)load_relaxed(&c.v.d[id].file_id)));
      t.Set("block", Napi::Number::New(env, (double)load_relaxed(&c.v.d[id].block)));
      t.Set("dirty", Napi::Boolean::New(env, (s & BS_DIRTY) != 0));
      torn_pages.Set(torn_pages.Length(), t);
    }
  }
  o.Set("torn", Napi::Number::New(env, torn));
  o.Set("tornPages", torn_pages);
  o.Set("tornTotal", Napi::Number::New(env, (double)load_relaxed(&c.v.h->gstats[G_TORN_PAGES])));
  o.Set("pinned", Napi::Number::New(env, pinned));
  o.Set("dirty", Napi::Number::New(env, dirty));
  o.Set("valid", Napi::Number::New(env, valid));
  o.Set("ioInProgress", Napi::Number::New(env, io));
  o.Set("corruptDescriptors", Napi::Number::New(env, (double)load_relaxed(&c.v.h->gstats[G_CORRUPT_DESCRIPTORS])));
  o.Set("corruptMapping", Napi::Number::New(env, (double)load_relaxed(&c.v.h->gstats[G_CORRUPT_MAPPING])));
  o.Set("integrityRepairs", Napi::Number::New(env, (double)load_relaxed(&c.v.h->gstats[G_INTEGRITY_REPAIRS])));
  o.Set("lockQueueRepairs", Napi::Number::New(env, (double)load_relaxed(&c.v.h->gstats[G_LOCK_QUEUE_REPAIRS])));
  uint32_t queued = 0;
  for (uint32_t i = 0; i < c.v.wq.ncells; i++) {
    uint32_t st = load_relaxed(&c.v.wq.cells[i].state);
    queued += st == WC_WAITING || st == WC_WOKEN;
  }
  o.Set("lockWaiters", Napi::Number::New(env, queued));
  return o;
}

// bpVerify(session, repair) -> { found, repaired, lockTimeout, anomalies: [{ structure, index, problem, repaired }] }
// One O(pages + buckets) scan with every partition lock held (taken in ascending order;
// nobody else holds two, so no deadlock; each bounded by the lock timeout), so the
// mapping table is stable while it is checked. Descriptor state words still change
// under it (pins, IO): each is read once into a local and judged on that copy.
// Repair: a descriptor with a garbage state word is reset to free (tagless, unpinned,
// no IO, unlocked); if anything was wrong with the mapping or a descriptor was reset,
// the chains are rebuilt from the descriptors' tags (a duplicate tag that is unpinned
// and clean is dropped); a claimed, unsubmitted IO of a slot that is gone is aborted.
Napi::Value Verify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  bool repair = info[1].ToBoolean();
  PoolView& v = c.v;
  Segment& seg = *c.seg;
  struct Anomaly { const char* structure; uint32_t index; const char* problem; bool repaired; };
  std::vector<Anomaly> list;
  uint32_t found = 0, repaired = 0;
  auto add = [&](const char* st, uint32_t i, const char* p, bool r) {
    found++;
    repaired += r;
    if (list.size() < 64) list.push_back({st, i, p, r});
  };
  uint32_t held = 0;
  for (; held < kPoolPartitions; held++)
    if (!lock_part(&v.locks[held].lock)) break;
  bool locked = held == kPoolPartitions;
  bool rebuild = false;
  std::vector<uint8_t> reached(v.n, 0);
  if (locked) {
    for (uint32_t b = 0; b < v.nbuckets; b++) {
      uint32_t b1 = load_acquire(&v.buckets[b]);
      for (uint32_t steps = 0; b1; steps++) {
        if (b1 > v.n) { add("mappingTable", b, "chain link out of range", false); rebuild = true; break; }
        if (reached[b1 - 1]) { add("mappingTable", b, "chain cycle or buffer on two chains", false); rebuild = true; break; }
        reached[b1 - 1] = 1;
        BufDesc* d = &v.d[b1 - 1];
        uint64_t st = load_acquire(&d->state);
        if (!(st & BS_TAG)) { add("mappingTable", b, "untagged buffer on a chain", false); rebuild = true; }
        else if (bucket_of(v, load_relaxed(&d->file_id), load_relaxed(&d->block)) != b) {
          add("mappingTable", b, "buffer on the wrong chain for its tag", false);
          rebuild = true;
        }
        b1 = load_relaxed(&d->hash_next);
      }
    }
  }
  bool woke = false;
  for (uint32_t id = 0; id < v.n; id++) {
    BufDesc* d = &v.d[id];
    uint64_t st = load_acquire(&d->state);
    if (!desc_state_valid(st)) {
      bool r = false;
      if (repair && locked) {
        uint64_t expected = st;
        r = cas(&d->state, &expected, (uint64_t)0);
        if (r) {
          uint32_t seq = load_acquire(&d->io_seq);
          if (seq & 1) cas(&d->io_seq, &seq, seq + 1);  // an IO still in flight no longer matches
          store_release(&d->content_lock, 0u);
          store_relaxed(&d->hash_next, 0u);
          rebuild = woke = true;
        }
      }
      add("bufferDescriptor", id, "state word out of range", r);
      continue;
    }
    if (load_relaxed(&d->hash_next) > v.n) { add("bufferDescriptor", id, "chain link out of range", false); rebuild = true; }
    uint32_t lock = load_acquire(&d->content_lock);
    if ((lock & kLockExclusive) && ((lock & kLockHoldMask) == 0 || (lock & kLockHoldMask) > v.max_slots)) {
      uint32_t expected = lock;
      // The flags stay: the queued waiters' next look (at most a second away) moves them.
      bool r = repair && cas(&d->content_lock, &expected, lock & (kLockWaiters | kLockHandoff | kLockWaking));
      woke |= r;
      add("bufferDescriptor", id, "exclusive lock held by a slot out of range", r);
    }
    if (locked && (st & BS_TAG) && !reached[id]) { add("mappingTable", id, "tagged buffer no chain reaches", false); rebuild = true; }
    if (st & BS_IO) {
      uint32_t seq = load_acquire(&d->io_seq), islot = load_relaxed(&d->io_slot);
      if (islot >= v.max_slots) {
        add("bufferDescriptor", id, "IO claimed by a slot out of range", false);
      } else if ((seq & 1) && load_relaxed(&d->io_submitted) != seq &&
                 load_acquire(&seg.slots[islot].state) == SLOT_FREE) {
        // Cleanup aborts a dead slot's unsubmitted IO; this one was missed or forged.
        bool r = false;
        if (repair) {
          if (st & BS_VALID) pool_write_done(seg, v, id, seq & 0xFFFFF, kCorruptResult);
          else pool_read_done(seg, v, id, seq & 0xFFFFF, kCorruptResult);
          r = woke = !(load_acquire(&d->state) & BS_IO);
        }
        add("bufferDescriptor", id, "unsubmitted IO of a slot that is gone", r);
      }
    }
  }
  if (repair && locked && rebuild) {
    // Rebuild every chain from the tags. All partition locks are held, so no lookup,
    // insert or eviction runs meanwhile.
    for (uint32_t b = 0; b < v.nbuckets; b++) store_relaxed(&v.buckets[b], 0u);
    for (uint32_t id = 0; id < v.n; id++) {
      BufDesc* d = &v.d[id];
      store_relaxed(&d->hash_next, 0u);
      uint64_t st = load_acquire(&d->state);
      if (!(st & BS_TAG) || !desc_state_valid(st)) continue;
      uint64_t file = load_relaxed(&d->file_id), block = load_relaxed(&d->block);
      uint32_t b = bucket_of(v, file, block);
      if (chain_find(v, b, file, block) >= 0) {
        uint64_t expected = st;
        bool dropped = !(st & (BS_PIN_MASK | BS_DIRTY | BS_IO)) && cas(&d->state, &expected, (uint64_t)0);
        add("mappingTable", id, "duplicate tag", dropped);
        if (dropped) continue;
      }
      store_relaxed(&d->hash_next, load_relaxed(&v.buckets[b]));
      store_release(&v.buckets[b], id + 1);
    }
    repaired++;
    if (list.size() < 64) list.push_back({"mappingTable", 0, "chains rebuilt from the tags", true});
  }
  for (uint32_t i = 0; i < held; i++) robust_lock_release(&v.locks[i].lock);
  if (woke) wake_word_waiters(seg);
  if (found) {
    stat_add(&seg.hdr->stat_integrity_anomalies, (uint64_t)found);
    stat_add(&seg.hdr->stat_corrupt_reports, (uint64_t)found);
  }
  if (repaired) {
    stat_add(&seg.hdr->stat_integrity_repairs, (uint64_t)repaired);
    stat_add(&v.h->gstats[G_INTEGRITY_REPAIRS], (uint64_t)repaired);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("found", Napi::Number::New(env, found));
  o.Set("repaired", Napi::Number::New(env, repaired));
  o.Set("lockTimeout", Napi::Boolean::New(env, !locked));
  Napi::Array a = Napi::Array::New(env, list.size());
  for (size_t i = 0; i < list.size(); i++) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("structure", Napi::String::New(env, list[i].structure));
    e.Set("index", Napi::Number::New(env, list[i].index));
    e.Set("problem", Napi::String::New(env, list[i].problem));
    e.Set("repaired", Napi::Boolean::New(env, list[i].repaired));
    a.Set(i, e);
  }
  o.Set("anomalies", a);
  return o;
}

// bpIoInProgress(session) -> [[id, slot, pid, ioSeq, submitted, write], ...]: every
// descriptor with IO_IN_PROGRESS and who claimed it (introspection: a dead claimer's
// IO must not stay in progress once its slot is cleaned and its CQEs are in).
Napi::Value IoInProgress(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  Napi::Array a = Napi::Array::New(env);
  uint32_t k = 0;
  for (uint32_t id = 0; id < c.v.n; id++) {
    BufDesc* d = &c.v.d[id];
    uint64_t s = load_acquire(&d->state);
    if (!(s & BS_IO)) continue;
    uint32_t seq = load_acquire(&d->io_seq);
    Napi::Array e = Napi::Array::New(env, 6);
    e.Set(0u, Napi::Number::New(env, id));
    e.Set(1u, Napi::Number::New(env, bs_owner(s)));
    e.Set(2u, Napi::Number::New(env, load_relaxed(&d->io_pid)));
    e.Set(3u, Napi::Number::New(env, seq));
    e.Set(4u, Napi::Boolean::New(env, load_relaxed(&d->io_submitted) == seq));
    e.Set(5u, Napi::Boolean::New(env, (s & BS_VALID) != 0));
    a.Set(k++, e);
  }
  return a;
}

// bpPinRecords(session) -> [[slot, bufferId, pins, sharedLocks, exclusive], ...]: every
// slot's pin/lock records (diagnostics: which process a pin count belongs to).
Napi::Value PinRecords(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  Napi::Array a = Napi::Array::New(env);
  uint32_t k = 0;
  for (uint32_t slot = 0; slot < c.v.max_slots; slot++) {
    PinEntry* e = &c.v.pins[(uint64_t)slot * kPinsPerSlot];
    for (uint32_t i = 0; i < kPinsPerSlot; i++) {
      uint32_t b1 = load_acquire(&e[i].buf_plus1);
      if (b1 == 0) continue;
      a.Set(k++, arr(env, {(double)slot, (double)b1 - 1, (double)load_relaxed(&e[i].pins),
                           (double)load_relaxed(&e[i].shared_locks), (double)load_relaxed(&e[i].exclusive)}).As<Napi::Array>());
    }
  }
  return a;
}

// bpLockWord(session, id) -> the buffer's content-lock word (diagnostics and tests: holder,
// shared count, WAITERS / HANDOFF / WAKING)
Napi::Value LockWord(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Ctx c;
  if (!ctx(info, &c)) return env.Undefined();
  uint32_t id;
  if (!buf_arg(info, 1, c, &id)) return env.Undefined();
  return Napi::Number::New(env, load_acquire(&c.v.d[id].content_lock));
}

// bpInfo(session) -> { offset, pages, pageSize, descOffset, pagesOffset } (arena offsets)
Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Segment* seg = session_segment(env, info[0], nullptr);
  if (!seg) return env.Undefined();
  PoolView v;
  if (!pool_view(*seg, &v)) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  o.Set("offset", Napi::Number::New(env, (double)v.region_off));
  o.Set("pages", Napi::Number::New(env, v.n));
  o.Set("pageSize", Napi::Number::New(env, v.page_size));
  o.Set("descOffset", Napi::Number::New(env, (double)(v.region_off + ((uint8_t*)v.d - v.base))));
  o.Set("descSize", Napi::Number::New(env, (double)sizeof(BufDesc)));
  o.Set("ioSeqField", Napi::Number::New(env, (double)offsetof(BufDesc, io_seq)));
  o.Set("lockField", Napi::Number::New(env, (double)offsetof(BufDesc, content_lock)));
  o.Set("pagesOffset", Napi::Number::New(env, (double)(v.region_off + (v.pages - v.base))));
  return o;
}

// bpLayout(pages, pageSize, maxSlots) -> bytes
Napi::Value Layout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double p, ps, ms;
  if (!num_arg(info, 0, 1, 1 << 24, &p) || !num_arg(info, 1, 4096, 32768, &ps) || !num_arg(info, 2, 1, 4096, &ms)) return env.Undefined();
  return Napi::Number::New(env, (double)pool_layout_size((uint32_t)p, (uint32_t)ps, (uint32_t)ms, nullptr));
}

// bpInit(session, offset, size, pages, pageSize)
Napi::Value Init(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Segment* seg = session_segment(env, info[0], nullptr);
  if (!seg) return env.Undefined();
  double off, size, p, ps;
  if (!num_arg(info, 1, 0, 9007199254740991.0, &off) || !num_arg(info, 2, 1, 9007199254740991.0, &size) ||
      !num_arg(info, 3, 1, 1 << 24, &p) || !num_arg(info, 4, 4096, 32768, &ps))
    return env.Undefined();
  double flags = 0;
  if (info.Length() > 5 && !num_arg(info, 5, 0, 1, &flags)) return env.Undefined();
  int rc = pool_init(*seg, (uint64_t)off, (uint64_t)size, (uint32_t)p, (uint32_t)ps, (uint32_t)flags);
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
  uint32_t sum = page_checksum(a.data, (uint32_t)n);
  memcpy(a.data + 8, &sum, 4);
  return Napi::Number::New(env, sum);
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
