#include "fault_injection.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <unistd.h>

#include "atomics.h"
#include "buffer_pool.h"
#include "segment.h"

namespace rm {

static bool matches(const FaultRule& r, const SqeRequest& q, uint16_t kind) {
  if (!load_relaxed(&r.active)) return false;
  if (r.op_mask && !(r.op_mask & (1u << q.op))) return false;
  if (r.file_slot >= 0 && (uint32_t)r.file_slot != q.file_slot) return false;
  if (r.kind >= 0 && (uint16_t)r.kind != kind) return false;
  return true;
}

uint32_t apply_faults(Segment& seg, const SqeRequest* reqs, uint32_t n, bool* skip, uint32_t* delay_us, WakeSet& wake) {
  FaultTable* ft = &seg.hdr->faults;
  for (uint32_t i = 0; i < n; i++) skip[i] = false;
  if (delay_us) for (uint32_t i = 0; i < n; i++) delay_us[i] = 0;
  if (!load_relaxed(&ft->enabled)) return 0;
  uint32_t done = 0;
  bool cancel_rest = false;  // inside a soft-linked chain whose earlier op "failed"
  for (uint32_t i = 0; i < n; i++) {
    const SqeRequest& q = reqs[i];
    uint16_t kind = q.kind;  // the issuer's copy, not the shared handle
    int32_t res = 0;
    bool fire = false;
    if (cancel_rest) {
      fire = true;
      res = -ECANCELED;
    } else {
      for (auto& r : ft->rules) {
        if (!matches(r, q, kind)) continue;
        uint32_t left = load_relaxed(&r.skip);
        if (left > 0) {
          fetch_sub(&r.skip, 1u);
          continue;
        }
        fetch_add(&r.fired, 1u);
        if (!r.repeat) store_relaxed(&r.active, 0u);
        if (r.delay_us) {  // not a failure: the op runs late
          if (delay_us) delay_us[i] = r.delay_us;
          break;
        }
        fire = true;
        res = r.error ? r.error : (int32_t)(q.len / 2);
        break;
      }
    }
    bool linked = q.link_flags & (LF_LINK | LF_HARDLINK);
    if (fire) {
      skip[i] = true;
      done++;
      handle_mark_submitted(seg.handles, q.handle_index);
      deliver_completion(seg, user_data_of(q.handle_index, q.handle_gen), res, ~0u, nullptr, wake);
      bool full = (q.op == OP_READ || q.op == OP_WRITE) ? res == (int32_t)q.len : res >= 0;
      if (linked && (q.link_flags & LF_LINK) && !full) cancel_rest = true;
    }
    if (!linked) cancel_rest = false;  // chain ends here
  }
  return done;
}

// constexpr so that a kill point added to the enum without a name here does not compile
// (the static_assert below); core/constants.ts KILL_POINTS is checked against both.
constexpr const char* kKillPointNames[KP_COUNT] = {
    "handles-reserved",         "sqes-reserved",             "sqes-published",
    "cqe-delivered",            "wal-written",               "checkpoint-pages-flushed",
    "checkpoint-record-durable", "checkpoint-control-written", "wake-before-reap",
    "lock-wake",                "lock-handoff",                "wal-page-image-copied",
    "checkpoint-redo-choosing", "checkpoint-redo-chosen",  "sqe-prepared",
    "tb-chain-counted",         "pool-victim-untagged",      "pool-victim-half-inserted",
    "pool-pin-counted",         "pool-unpin-counted",        "pool-shared-lock-counted",
    "pool-shared-unlock-counted", "pool-write-claimed",
};

static_assert(kKillPointNames[KP_COUNT - 1] != nullptr, "every KillPoint needs its name in kKillPointNames");

int kill_point_by_name(const char* name) {
  for (uint32_t i = 0; i < KP_COUNT; i++)
    if (strcmp(name, kKillPointNames[i]) == 0) return (int)i;
  return -1;
}

bool kill_point_armed(FaultTable* ft, KillPoint kp) {
  KillRule& k = ft->kills[kp];
  int32_t pid = load_relaxed(&k.pid);
  return load_relaxed(&ft->kill_enabled) && load_relaxed(&k.armed) && (pid == 0 || pid == (int32_t)getpid());
}

void kill_point_slow(FaultTable* ft, KillPoint kp) {
  KillRule& k = ft->kills[kp];
  if (!kill_point_armed(ft, kp)) return;
  for (;;) {  // countdown: exactly one arrival dies
    uint32_t left = load_relaxed(&k.skip);
    if (left == 0) break;
    if (cas(&k.skip, &left, left - 1)) return;
  }
  uint32_t one = 1;
  if (!cas(&k.armed, &one, 0u)) return;  // another arrival took it
  fetch_add(&k.fired, 1u);
  raise(load_relaxed(&k.stop) ? SIGSTOP : SIGKILL);
}

void fault_rule_set(FaultTable* ft, uint32_t index, const FaultRule* rule) {
  FaultRule* r = &ft->rules[index];
  store_relaxed(&r->active, 0u);
  if (rule) {
    r->op_mask = rule->op_mask;
    r->file_slot = rule->file_slot;
    r->kind = rule->kind;
    store_relaxed(&r->skip, rule->skip);
    r->repeat = rule->repeat;
    r->error = rule->error;
    r->delay_us = rule->delay_us;
    store_relaxed(&r->fired, 0u);
    store_release(&r->active, 1u);
  }
  uint32_t any = 0;
  for (auto& each : ft->rules) any |= load_relaxed(&each.active);
  store_release(&ft->enabled, any);
}

void kill_point_arm(FaultTable* ft, KillPoint kp, bool arm, int32_t pid, uint32_t skip, bool stop) {
  KillRule& k = ft->kills[kp];
  store_relaxed(&k.armed, 0u);
  if (arm) {
    store_relaxed(&k.pid, pid);
    store_relaxed(&k.stop, stop ? 1u : 0u);
    store_relaxed(&k.skip, skip);
    store_relaxed(&k.fired, 0u);
    store_release(&k.armed, 1u);
  }
  uint32_t any = 0;
  for (auto& r : ft->kills) any |= load_relaxed(&r.armed);
  store_release(&ft->kill_enabled, any);
}

int64_t debug_scribble(Segment& seg, const char* table, uint32_t seed, uint32_t count) {
  uint8_t* p = nullptr;
  size_t entry = 0, entries = 0;
  if (strcmp(table, "handles") == 0) { p = (uint8_t*)seg.handles.handles; entry = sizeof(IoHandle); entries = seg.handles.count; }
  if (strcmp(table, "files") == 0) { p = (uint8_t*)seg.files; entry = sizeof(FileEntry); entries = seg.hdr->max_files; }
  if (strcmp(table, "bufferDescriptors") == 0 || strcmp(table, "mappingTable") == 0) {
    PoolView v;
    if (!pool_view(seg, &v)) return -1;
    if (strcmp(table, "bufferDescriptors") == 0) { p = (uint8_t*)v.d; entry = sizeof(BufDesc); entries = v.n; }
    else { p = (uint8_t*)v.buckets; entry = sizeof(uint32_t); entries = v.nbuckets; }
  }
  if (!p) return -1;
  seed = seed * 2654435761u | 1;  // xorshift32: every output byte random (an LCG's low bits are not)
  auto next = [&seed] { seed ^= seed << 13; seed ^= seed >> 17; seed ^= seed << 5; return seed; };
  auto fill = [&](uint8_t* e) { for (size_t i = 0; i < entry; i++) e[i] = (uint8_t)next(); };
  if (count == 0 || count >= entries) {
    for (size_t k = 0; k < entries; k++) fill(p + k * entry);
    return (int64_t)entries;
  }
  for (uint32_t k = 0; k < count; k++) fill(p + (size_t)(next() % entries) * entry);
  return count;
}

}  // namespace rm
