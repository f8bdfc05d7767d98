#include "submission.h"

#include <cerrno>
#include <cmath>
#include <fcntl.h>
#include <vector>

#include "atomics.h"
#include "io_method.h"
#include "segment.h"

namespace rm {

int op_from_fields(Segment& seg, const double* f, const PrivateBuffer* buf, SqeRequest* r, IoHandle* h, std::string* why) {
  SegmentHeader* hdr = seg.hdr;
  double op = f[0], link = f[1], file = f[2], off = f[3], len = f[4], arena = f[5], kind = f[6], karg = f[7];
  if (!(op >= 0 && op < OP_MAX) || op != std::floor(op)) { *why = "unknown op"; return -EINVAL; }
  r->op = (uint8_t)op;
  if (!(link >= 0 && link <= 15) || link != std::floor(link)) { *why = "bad link flags"; return -EINVAL; }
  r->link_flags = (uint8_t)link;
  r->file_slot = 0;
  r->file_gen = 0;
  if (r->op != OP_NOP) {
    int slot = file_lookup(seg.files, hdr->max_files, file, nullptr);
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
      if (arena != std::floor(arena) || arena > (double)seg.arena.size || (uint64_t)arena + r->len > seg.arena.size) {
        *why = "arena range outside the shared segment";
        return -ERANGE;
      }
      arena_off = (uint64_t)arena;
      bool fixed = hdr->fixed_buffers && (arena_off >> 30) == ((arena_off + (r->len ? r->len - 1 : 0)) >> 30);
      bool sqpoll = hdr->sqpoll;
      // Fixed buffers are checked against the range as registered, in the registrant's
      // address space (io_uring/rsrc.c, io_import_fixed: a worker's own mapping address
      // gives -EFAULT); so is every address an SQPOLL thread touches (it runs in the
      // postmaster's mm).
      uint64_t base = (fixed || sqpoll) ? seg.registrant_arena_base : (uint64_t)(uintptr_t)seg.arena.base;
      r->addr = base + arena_off;
      r->fixed_buffer = fixed;
      r->buf_index = (uint16_t)(arena_off >> 30);
    } else {
      if (!buf || !buf->typed_array) {
        *why = buf && buf->not_a_view ? buf->not_a_view : "a private buffer must be an ArrayBufferView";
        return -EINVAL;
      }
      if (buf->detached) { *why = "buffer is detached"; return -EINVAL; }
      if (buf->length < r->len || (r->len > 0 && buf->data == nullptr)) { *why = "length exceeds the buffer"; return -ERANGE; }
      if (hdr->sqpoll) { *why = "SQPOLL rings need arena buffers (the poller runs in the postmaster)"; return -EOPNOTSUPP; }
      r->addr = (uint64_t)(uintptr_t)buf->data;
    }
  }
  if (!(kind >= 0 && kind < CK_MAX) || kind != std::floor(kind) || !(karg >= 0) || karg > 9007199254740991.0) {
    *why = "bad completion kind";
    return -EINVAL;
  }
  KindArg arg_check = kind_arg_check(seg, (uint16_t)kind, (uint64_t)karg);
  if (arg_check != KindArg::Valid) {
    *why = arg_check == KindArg::InRegion
               ? "completionWord lies inside the arena region of the buffer pool or the WAL (use db.completionWord())"
               : "bad completion kind argument";
    return -ERANGE;
  }
  // Only the module that owns a region reads into it (its reads carry its completion
  // kind, KF_READS_INTO_REGION): any other read there would overwrite pages or locks that
  // other processes trust. Writes from a region only copy it out.
  if (r->op == OP_READ && arena_off != kNoArena && !kind_reads_into_region((uint16_t)kind) &&
      arena_overlaps_region(seg, arena_off, r->len)) {
    *why = "read target lies inside the arena region of the buffer pool or the WAL";
    return -EINVAL;
  }
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
  return 0;
}

namespace {

// Does this chain's completion need the issuer's self-wake (it will probably not
// complete inside the enter)? Syncs always go to a kernel worker; O_DIRECT goes to the
// device; a buffered file whose recent ops went asynchronous (cache misses) likely does.
bool chain_goes_async(Segment& seg, Delivery& d, const SqeRequest* reqs, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) {
    const SqeRequest& q = reqs[i];
    if (q.op == OP_FSYNC || q.op == OP_FDATASYNC) return true;
    if (q.op == OP_READ || q.op == OP_WRITE) {
      if (q.file_slot < seg.hdr->max_files && (load_relaxed(&seg.files[q.file_slot].open_flags) & O_DIRECT)) return true;
      if (d.file_goes_async(q.file_slot)) return true;
    }
  }
  return false;
}

}  // namespace

FlushOutcome flush_staged(Segment& seg, uint32_t slot, uint32_t home_ring, bool shutdown_exempt, Delivery& delivery, FlushScratch& scratch,
                          const double* fields, uint32_t start, uint32_t end, BufferResolver resolve, void* ctx,
                          int32_t* out) {
  FlushOutcome o;
  SegmentHeader* hdr = seg.hdr;
  const IoMethodOps& io = io_method(seg);
  if (!segment_accepts_io(seg, shutdown_exempt)) {
    o.stop = -ESHUTDOWN;
    return o;
  }
  const uint32_t ring_limit = hdr->ring_count ? hdr->ring_count : hdr->configured_rings;
  auto& batch = scratch.batch;
  auto& call = scratch.call;
  auto& call_after = scratch.call_after;
  auto& call_linked = scratch.call_linked;
  auto& call_observed = scratch.call_observed;
  auto& call_stage = scratch.call_stage;
  auto& done = scratch.done;
  call.clear(); call_after.clear(); call_linked.clear(); call_observed.clear(); call_stage.clear(); done.clear();
  uint32_t call_ring = ~0u;
  uint64_t submitted_rings = 0;  // bit r: this flush published SQEs on ring r
  uint32_t call_sqes = 0;
  uint32_t consumed_upto = start;
  const int wake_fd = delivery.self_wake_fd();

  // Hand the gathered chains to the IO method. False: nothing of them was published
  // (back-pressure or shutdown, in o.stop) and their handles went back.
  auto submit_call = [&]() -> bool {
    uint32_t n = (uint32_t)call.size();
    if (n == 0) return true;
    for (uint32_t k = 0; k < n; k++)
      delivery.track({call[k].handle_index, call[k].handle_gen, (uint16_t)call_ring, call[k].kind, call[k].kind_arg, 0,
                      call_after[k]});
    kill_point(&hdr->faults, KP_HANDLES_RESERVED);
    call_linked.assign(n, 0);
    SubmitWake sw;
    sw.fd = wake_fd;
    sw.after = call_after.data();
    sw.linked = call_linked.data();
    sw.reap_inline = delivery.reaps();
    sw.registered_ring = delivery.registered_ring(call_ring);
    int rc = io.submit(seg, call_ring, call.data(), n, slot, &sw, shutdown_exempt);
    if (rc < 0) {
      // Nothing was published: take the handles back.
      for (uint32_t k = 0; k < n; k++) {
        delivery.untrack(call[k].handle_index, call[k].handle_gen);
        handle_unreserve(seg.handles, call[k].handle_index);
      }
      o.stop = rc;
      call.clear(); call_after.clear(); call_observed.clear(); call_stage.clear();
      call_sqes = 0;
      return false;
    }
    stat_add_owned(&seg.slots[slot].stat_submitted, (uint64_t)n);
    submitted_rings |= call_ring < 64 ? 1ull << call_ring : ~0ull;
    for (uint32_t k = 0; k < n; k++) {
      uint32_t e = k;
      while (e + 1 < n && (call[e].link_flags & (LF_LINK | LF_HARDLINK))) e++;
      bool woke = call_after[e] && call_linked[e];
      for (uint32_t j = k; j <= e; j++)
        done.push_back({call_stage[j], call[j].handle_index, call[j].handle_gen, call[j].file_slot, call[j].op,
                        (uint8_t)woke, call_observed[j]});
      k = e;
    }
    consumed_upto = call_stage[n - 1] + 1;
    call.clear(); call_after.clear(); call_observed.clear(); call_stage.clear();
    call_sqes = 0;
    return true;
  };

  bool stopped = false;
  for (uint32_t i = start; i < end && !stopped;) {
    uint32_t be = i;
    while (be + 1 < end && !((uint32_t)fields[be * kOpFields + 9] & kOpFlagBatchEnd)) be++;
    be++;  // [i, be) is one batch
    const uint32_t n = be - i;
    double rf = fields[i * kOpFields + 8];
    uint32_t ring = home_ring;
    auto invalid = [&](uint32_t op, int err, std::string why) {
      o.invalid = true;
      o.error_batch = i;
      o.error_batch_end = be;
      o.error_op = op;
      o.error = err;
      o.why = std::move(why);
    };
    if (rf >= 0) {
      if (rf != std::floor(rf) || rf >= ring_limit) {
        invalid(0, -ERANGE, "ring index out of range");
        break;
      }
      ring = (uint32_t)rf;
    }
    uint32_t max_batch = io.max_batch(seg, ring);
    if (n > max_batch) {
      invalid(0, -ERANGE, "a batch holds 1.." + std::to_string(max_batch) + " ops (ringEntries)");
      break;
    }
    if (ring != call_ring && !call.empty() && !submit_call()) break;
    // Reserve every handle of the batch, or none.
    batch.resize(n);
    uint32_t got = 0;
    for (; got < n; got++) {
      int64_t idx = handle_reserve(seg.handles, slot);
      if (idx < 0) break;
      batch[got].handle_index = (uint32_t)idx;
    }
    if (got < n) {
      for (uint32_t k = 0; k < got; k++) handle_unreserve(seg.handles, batch[k].handle_index);
      o.stop = -EAGAIN;  // every handle is in flight: the caller waits for completions
      break;
    }
    bool ok = true;
    for (uint32_t k = 0; k < n && ok; k++) {
      const double* f = fields + (size_t)(i + k) * kOpFields;
      IoHandle* h = &seg.handles.handles[batch[k].handle_index];
      PrivateBuffer pb;
      const PrivateBuffer* pbp = nullptr;
      if ((f[0] == OP_READ || f[0] == OP_WRITE) && !(f[5] >= 0)) {
        if (!resolve(ctx, i + k, &pb)) {
          o.terminating = true;
          ok = false;
          break;
        }
        pbp = &pb;
      }
      std::string why;
      uint32_t index = batch[k].handle_index;
      int rc = op_from_fields(seg, f, pbp, &batch[k], h, &why);
      batch[k].handle_index = index;
      if (rc < 0) {
        invalid(k, rc, "op " + std::to_string(k) + ": " + why);
        ok = false;
        break;
      }
      batch[k].handle_gen = hw_gen(load_acquire(&h->word));
      store_relaxed(&h->ring, (uint16_t)ring);
      store_relaxed(&h->batch_pos, (uint16_t)k);
    }
    if (!ok) {
      for (uint32_t k = 0; k < n; k++) handle_unreserve(seg.handles, batch[k].handle_index);
      break;
    }
    batch[n - 1].link_flags &= ~(LF_LINK | LF_HARDLINK);  // links never cross a batch
    // Append the batch chain by chain; a chain never spans two submit calls.
    uint32_t k = 0;
    while (k < n) {
      uint32_t e = k;
      while (e + 1 < n && (batch[e].link_flags & (LF_LINK | LF_HARDLINK))) e++;
      uint32_t len = e - k + 1;
      // Self-wake for single ops, for chains whose every link is hard (the message,
      // hard-linked behind the chain's last op, is issued however each op ended, after
      // every CQE of the chain is posted), and for chains that ask for it (LF_SELF_WAKE:
      // the WAL's commit). Any other chain with a soft link goes to the reapers: a broken
      // soft link cancels everything after it, the message included, and the issuer
      // would learn of it only at its sweep (docs/ARCHITECTURE.md, Delivery).
      bool all_hard = true, asked = false;
      for (uint32_t j = k; j <= e; j++) {
        if (j < e && !(batch[j].link_flags & LF_HARDLINK)) all_hard = false;
        if (batch[j].link_flags & LF_SELF_WAKE) asked = true;
      }
      bool wake = wake_fd >= 0 && (all_hard || asked) && chain_goes_async(seg, delivery, &batch[k], len);
      uint32_t sqes = len + (wake ? 1 : 0);
      if (!call.empty() && call_sqes + sqes > max_batch) {
        if (!submit_call()) {
          for (uint32_t j = k; j < n; j++) handle_unreserve(seg.handles, batch[j].handle_index);
          stopped = true;
          break;
        }
      }
      call_ring = ring;
      for (uint32_t j = k; j <= e; j++) {
        call.push_back(batch[j]);
        call_after.push_back(j == e && wake ? 1 : 0);
        call_observed.push_back(kind_observed_by_polling(batch[j].kind) ? 1 : 0);
        call_stage.push_back(i + j);
      }
      call_sqes += sqes;
      k = e + 1;
    }
    i = be;
  }
  if (!call.empty()) submit_call();
  o.consumed = consumed_upto - start;

  // Inline reap: page-cache hits and NOPs complete inside the enter; their CQEs are in
  // the CQ already (taken here without waiting for the lock; if another reaper holds
  // it, that one takes them and rings our doorbell). Only the rings this flush submitted
  // to: another process's home ring holds that process's inline completions, which it is
  // about to take itself; taking them here cost both of us (its CQ's cache lines and
  // lock, a doorbell to wake it, and the op it then found pending counted its file as
  // going asynchronous, adding a self-wake message to its next reads).
  if (!done.empty()) delivery.reap_own(submitted_rings);
  for (const SubmittedOp& s : done) {
    int32_t* q = out + (size_t)(s.stage - start) * kQuad;
    int32_t res;
    uint32_t reaper;
    q[0] = (int32_t)s.index;
    q[1] = (int32_t)s.gen;
    if (delivery.collect_one(s.index, s.gen, &res, &reaper)) {
      q[2] = res;
      q[3] = (int32_t)reaper;
      if (s.op == OP_READ || s.op == OP_WRITE) delivery.note_file(s.file_slot, false);
      continue;
    }
    q[2] = kPendingResult;
    q[3] = 0;
    if (!io.foreign_reaping) continue;  // the issuer's own pool completes it
    // Still in flight: without a self-wake, someone else must reap it (its CQE may be
    // in the CQ already, posted while reapers slept: reap demand pokes them). An op
    // others watch by polling must not wait for this thread either.
    if (!s.self_wake || s.observed) delivery.make_foreign(s.index, s.gen);
    if (!s.self_wake && (s.op == OP_READ || s.op == OP_WRITE)) delivery.note_file(s.file_slot, true);
  }
  return o;
}

}  // namespace rm
