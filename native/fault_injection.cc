#include "fault_injection.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <unistd.h>

#include "atomics.h"
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

const char* const kKillPointNames[KP_COUNT] = {
    "handles-reserved",         "sqes-reserved",             "sqes-published",
    "cqe-delivered",            "wal-written",               "checkpoint-pages-flushed",
    "checkpoint-record-durable", "checkpoint-control-written", "wake-before-reap",
    "lock-wake",                "lock-handoff",                "wal-page-image-copied",
    "checkpoint-redo-choosing", "checkpoint-redo-chosen",  "sqe-prepared",
    "tb-chain-counted",         "pool-victim-untagged",      "pool-victim-half-inserted",
};

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
  raise(SIGKILL);
}

}  // namespace rm
