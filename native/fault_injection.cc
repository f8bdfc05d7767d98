#include "fault_injection.h"

#include <cerrno>

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

uint32_t apply_faults(Segment& seg, const SqeRequest* reqs, uint32_t n, bool* skip, WakeSet& wake) {
  FaultTable* ft = &seg.hdr->faults;
  for (uint32_t i = 0; i < n; i++) skip[i] = false;
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
        fire = true;
        res = r.error ? r.error : (int32_t)(q.len / 2);
        fetch_add(&r.fired, 1u);
        if (!r.repeat) store_relaxed(&r.active, 0u);
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

}  // namespace rm
