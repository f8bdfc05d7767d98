// The shared WAL buffer: see wal_buffer.h for the protocol.
#include "wal_buffer.h"

#include <nmmintrin.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "atomics.h"
#include "buffer_pool.h"
#include "completion_kinds.h"
#include "crc32c.h"
#include "fault_injection.h"
#include "process_table.h"
#include "segment.h"
#include "shared_wait.h"

namespace rm {



// ---- lookup --------------------------------------------------------------------

namespace {
// Immutable configuration, validated once per process and kept in a local copy so
// hot paths never re-read (and re-trust) shared fields.
struct WalView {
  WalShared* w = nullptr;
  uint8_t* buf = nullptr;
  uint64_t buf_size = 0;
  WalInsert* ins = nullptr;
  uint32_t max_slots = 0;
};
std::mutex g_mu;
std::unordered_map<uint64_t, WalView> g_views;  // by segment id

bool in_arena(Segment& seg, uint64_t off, uint64_t len) {
  return off <= seg.arena.size && seg.arena.size - off >= len;
}

// The last view this thread used, checked as the shared map's entry is: every WAL call
// and completion action looks its view up, and the map's mutex was most of that cost.
thread_local uint64_t t_view_seg = 0;
thread_local WalView t_view;

bool view_of(Segment& seg, WalView* out) {
  if (t_view_seg == seg.id && t_view.w && (uint8_t*)t_view.w >= seg.arena.base && (uint8_t*)t_view.w < seg.arena.base + seg.arena.size) {
    *out = t_view;
    return true;
  }
  {
    std::lock_guard<std::mutex> g(g_mu);
    auto it = g_views.find(seg.id);
    if (it != g_views.end() && it->second.w && (uint8_t*)it->second.w >= seg.arena.base &&
        (uint8_t*)it->second.w < seg.arena.base + seg.arena.size) {
      *out = it->second;
      t_view_seg = seg.id;
      t_view = it->second;
      return true;
    }
  }
  uint64_t off = 0, size = 0;
  if (region_get(seg, "wal", &off, &size) != 0) return false;
  if (off % 64 || size < sizeof(WalShared) || !in_arena(seg, off, sizeof(WalShared))) return false;
  auto* w = reinterpret_cast<WalShared*>(seg.arena.base + off);
  if (load_acquire(&w->magic) != kWalMagic || load_relaxed(&w->version) != kWalVersion) return false;
  uint64_t buf_off = load_relaxed(&w->buf_off), buf_size = load_relaxed(&w->buf_size);
  uint64_t ins_off = load_relaxed(&w->inserts_off);
  uint32_t max_slots = load_relaxed(&w->max_slots);
  if (max_slots == 0 || max_slots > seg.hdr->max_slots) return false;
  if (buf_size == 0 || buf_size % kWalBlock || buf_off % kWalBlock || !in_arena(seg, buf_off, buf_size)) return false;
  if (ins_off % 8 || !in_arena(seg, ins_off, (uint64_t)max_slots * sizeof(WalInsert))) return false;
  WalView v;
  v.w = w;
  v.buf = seg.arena.base + buf_off;
  v.buf_size = buf_size;
  v.ins = reinterpret_cast<WalInsert*>(seg.arena.base + ins_off);
  v.max_slots = max_slots;
  std::lock_guard<std::mutex> g(g_mu);
  g_views[seg.id] = v;
  t_view_seg = seg.id;
  t_view = v;
  *out = v;
  return true;
}

inline uint64_t load_sc(const uint64_t* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
inline uint32_t load_sc(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
template <typename T> inline void store_sc(T* p, T v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }

void buf_write(const WalView& v, uint64_t lsn, const uint8_t* src, uint64_t n) {
  uint64_t pos = lsn % v.buf_size;
  uint64_t first = n < v.buf_size - pos ? n : v.buf_size - pos;
  memcpy(v.buf + pos, src, first);
  if (n > first) memcpy(v.buf, src + first, n - first);
}
void buf_zero(const WalView& v, uint64_t lsn, uint64_t n) {
  uint64_t pos = lsn % v.buf_size;
  uint64_t first = n < v.buf_size - pos ? n : v.buf_size - pos;
  memset(v.buf + pos, 0, first);
  if (n > first) memset(v.buf, 0, n - first);
}
void buf_read(const WalView& v, uint64_t lsn, uint8_t* dst, uint64_t n) {
  uint64_t pos = lsn % v.buf_size;
  uint64_t first = n < v.buf_size - pos ? n : v.buf_size - pos;
  memcpy(dst, v.buf + pos, first);
  if (n > first) memcpy(dst + first, v.buf, n - first);
}

// Writes header + payload (the concatenation of `a` and `b`) at `lsn`, zero padding up to
// `len` (a multiple of 8), CRC over everything after the crc field.
void put_record(const WalView& v, uint64_t lsn, uint16_t kind, uint16_t flags, const uint8_t* a, uint32_t na,
                const uint8_t* b, uint32_t nb, uint64_t len) {
  uint32_t total = kWalHeaderSize + na + nb;
  if (len > total) buf_zero(v, lsn + total, len - total);
  WalRecordHeader h{};
  h.total_len = total;
  h.lsn = lsn;
  h.kind = kind;
  h.flags = flags;
  h.magic = kWalRecMagic;
  uint32_t c = crc32c(~0u, reinterpret_cast<const uint8_t*>(&h) + 4, kWalHeaderSize - 4);
  if (na) c = crc32c(c, a, na);
  if (nb) c = crc32c(c, b, nb);
  h.crc = ~c;
  if (na) buf_write(v, lsn + kWalHeaderSize, a, na);
  if (nb) buf_write(v, lsn + kWalHeaderSize + na, b, nb);
  buf_write(v, lsn, reinterpret_cast<const uint8_t*>(&h), kWalHeaderSize);
}

// A valid padding record over [lsn, lsn + len) (len >= header, multiple of 8).
void put_padding(const WalView& v, uint64_t lsn, uint32_t len) {
  buf_zero(v, lsn, len);
  WalRecordHeader h{};
  h.total_len = len;
  h.lsn = lsn;
  h.kind = 0;
  h.magic = kWalRecMagic;
  uint32_t c = crc32c(~0u, reinterpret_cast<const uint8_t*>(&h) + 4, kWalHeaderSize - 4);
  static const uint8_t zeros[4096] = {};
  uint64_t left = len - kWalHeaderSize;
  while (left) {
    uint64_t k = left < sizeof(zeros) ? left : sizeof(zeros);
    c = crc32c(c, zeros, k);
    left -= k;
  }
  h.crc = ~c;
  buf_write(v, lsn, reinterpret_cast<const uint8_t*>(&h), kWalHeaderSize);
}

// A complete record of someone's at `lsn` in the buffer (header fields and CRC agree).
bool record_complete_at(const WalView& v, uint64_t lsn, uint32_t len) {
  WalRecordHeader h;
  buf_read(v, lsn, reinterpret_cast<uint8_t*>(&h), kWalHeaderSize);
  if (h.magic != kWalRecMagic || h.lsn != lsn || h.total_len < kWalHeaderSize || h.total_len > v.buf_size / 2) return false;
  uint32_t c = crc32c(~0u, reinterpret_cast<const uint8_t*>(&h) + 4, kWalHeaderSize - 4);
  uint8_t tmp[4096];
  uint64_t done = kWalHeaderSize;
  while (done < h.total_len) {
    uint64_t k = h.total_len - done < sizeof(tmp) ? h.total_len - done : sizeof(tmp);
    buf_read(v, lsn + done, tmp, k);
    c = crc32c(c, tmp, k);
    done += k;
  }
  (void)len;
  return ~c == h.crc;
}

enum class Reserve { Done, Moved, Full };

// One attempt to reserve `len` bytes at *r (the end of the WAL as last read), for the
// insert slot `e`: the slot's claim is published (seq_cst: the flusher's scan pairs with
// it) before the CAS on `reserved`. Moved: someone reserved first, *r is the new end.
// Full: the bytes would overwrite unflushed ones (or the flushed part of the block an
// aligned write may still rewrite); the slot is idle again.
Reserve reserve_once(const WalView& v, WalShared* w, WalInsert* e, uint64_t* r, uint64_t len) {
  uint64_t limit = (load_acquire(&w->flushed) & ~(uint64_t)(kWalBlock - 1)) + v.buf_size;
  if (*r + len > limit) {
    store_sc(&e->state, (uint32_t)WI_IDLE);
    stat_add(&w->stat_space_waits, (uint64_t)1);
    return Reserve::Full;
  }
  store_relaxed(&e->len, (uint32_t)len);
  store_sc(&e->start, *r);
  store_sc(&e->state, (uint32_t)WI_TRYING);
  if (__atomic_compare_exchange_n(&w->reserved, r, *r + len, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return Reserve::Done;
  return Reserve::Moved;
}

void bump_and_wake(Segment& seg, WalShared* w) {
  fetch_add(&w->flush_seq, 1u);  // acq_rel: the flushed/failed store above is visible first
  wake_word_waiters(seg);
}

// ---- slot cleanup: a dead inserter or flusher must not wedge the WAL ---------------

void wal_cleanup_hook(Segment& seg, uint32_t slot, bool process_died) {
  WalView v;
  if (!view_of(seg, &v) || slot >= v.max_slots) return;
  WalShared* w = v.w;
  uint32_t me = slot + 1;
  if (cas(&w->flusher, &me, 0u)) {
    stat_add(&w->stat_flusher_takeovers, (uint64_t)1);
    bump_and_wake(seg, w);
  }
  me = slot + 1;
  if (load_acquire(&w->ckpt_running) == me) {
    // A checkpointer that died choosing its redo point left the epoch odd (every append
    // logs an image meanwhile): close it before the role can pass to anyone else, whose
    // own choice must not be closed by this.
    uint32_t ep = load_sc(&w->redo_epoch);
    if (ep & 1) cas(&w->redo_epoch, &ep, ep + 1);
    cas(&w->ckpt_running, &me, 0u);
  }
  WalInsert* e = &v.ins[slot];
  uint32_t st = load_sc(&e->state);
  if (st == WI_IDLE) return;
  uint64_t s = load_sc(&e->start);
  uint32_t len = load_relaxed(&e->len);
  if (len < kWalHeaderSize || len % 8 || len > v.buf_size / 2) {  // untrusted: not ours to pad
    store_sc(&e->state, (uint32_t)WI_IDLE);
    return;
  }
  bool ours = st == WI_COPYING;
  if (st == WI_TRYING) {
    // Died around its CAS: the range is ours only if `reserved` moved past `s` and no
    // other inserter claims `s` (one that is still TRYING gets a short grace period).
    ours = load_sc(&w->reserved) > s && load_acquire(&w->flushed) <= s;
    for (uint32_t j = 0; ours && j < v.max_slots; j++) {
      if (j == slot) continue;
      for (int tries = 0; tries < 200; tries++) {
        uint32_t sj = load_sc(&v.ins[j].state);
        if (sj == WI_IDLE || load_sc(&v.ins[j].start) != s) break;
        if (sj == WI_COPYING) { ours = false; break; }
        if (slot_owner_dead(&seg.slots[j])) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    if (ours && record_complete_at(v, s, len)) ours = false;
  }
  (void)process_died;
  if (ours) {
    put_padding(v, s, len);
    stat_add(&w->stat_pads, (uint64_t)1);
  }
  store_sc(&e->state, (uint32_t)WI_IDLE);  // release: the padding is visible first
}

// ---- completion kinds --------------------------------------------------------------

KindArg write_done_valid(Segment& seg, uint64_t arg) {
  WalView v;
  return view_of(seg, &v) && arg <= 0xffffffffull ? KindArg::Valid : KindArg::Invalid;
}
// Results that mean "never ran": a broken link, a dead issuer. EFAULT too: io_uring fails
// a request with it when it would be issued from the task_work of an exiting task (the
// fdatasync linked after a write, once the write completes; io_req_task_submit checks
// PF_EXITING), and our write sources are arena memory, mapped in every live process.
// Such a result says nothing about the device (no fsync error was consumed): the next
// flusher writes and syncs the range again. A live issuer that gets EFAULT still fails
// the WAL from its own results (wal/index.ts #settle).
// (issuer_gone_result, completion_kinds.h: ECANCELED, EINTR, EFAULT.)

// kind_arg = requested length. Errors other than a cancellation fail the WAL.
void write_done(Segment& seg, uint64_t arg, int32_t res, uint32_t) {
  WalView v;
  if (!view_of(seg, &v)) return;
  if (issuer_gone_result(res)) return;  // never ran (dead issuer, broken link): the next flusher rewrites it
  if (res < 0) wal_fail(seg, v.w, res);
  else if ((uint64_t)res != arg) wal_fail(seg, v.w, -EIO);  // short write: ENOSPC and friends
  else stat_add(&v.w->stat_writes, (uint64_t)1);
}
KindArg sync_done_valid(Segment& seg, uint64_t arg) {
  WalView v;
  return view_of(seg, &v) && arg < (1ull << 62) ? KindArg::Valid : KindArg::Invalid;
}
// Publishes `lsn`, the end of what a chain's last op makes durable, or fails the WAL on
// its error. `want_len`: the length a write must have completed in full (0 for a sync).
void publish_done(Segment& seg, uint64_t lsn, int32_t res, bool is_write, uint32_t want_len) {
  WalView v;
  if (!view_of(seg, &v)) return;
  if (issuer_gone_result(res)) return;
  if (res < 0) {
    wal_fail(seg, v.w, res);
    return;
  }
  if (is_write) {
    if (want_len == 0) return;  // length unknown (failed without a CQE): the flusher's settle decides
    if ((uint32_t)res != want_len) {  // short: ENOSPC and friends
      wal_fail(seg, v.w, -EIO);
      return;
    }
    stat_add(&v.w->stat_writes, (uint64_t)1);
  }
  wal_publish(seg, v.w, lsn);
}

// kind_arg = the LSN this sync makes durable (the writes before it in its chain).
void sync_done(Segment& seg, uint64_t arg, int32_t res, uint32_t) { publish_done(seg, arg, res, false, 0); }

// The last write of an O_DSYNC chain (no sync op): kind_arg = the LSN the chain makes
// durable. A write of a segment opened O_DSYNC (and O_DIRECT) is durable when it
// completes in full (the kernel syncs it before completing it: generic_write_sync from
// the iomap DIO completion, or a FUA write), and a soft link breaks on any result short of
// the full request, so this write's full completion means every write before it in the
// chain completed in full too. Publishing here, in whichever process reaps it, wakes the
// waiters of every process without waiting for the flusher's JS thread to settle, as
// CK_WAL_SYNC_DONE does for the fdatasync chain.
void dsync_write_done(Segment& seg, uint64_t arg, int32_t res, uint32_t len) { publish_done(seg, arg, res, true, len); }

// Reads with the WAL's kinds may land in its buffer (its arena region), which it owns.
const bool g_registered = register_completion_kind(CK_WAL_WRITE_DONE, write_done_valid, write_done, KF_READS_INTO_REGION) &&
                          register_completion_kind(CK_WAL_SYNC_DONE, sync_done_valid, sync_done, KF_READS_INTO_REGION) &&
                          register_completion_kind(CK_WAL_DSYNC_WRITE_DONE, sync_done_valid, dsync_write_done, KF_READS_INTO_REGION) &&
                          register_slot_cleanup_hook(wal_cleanup_hook);
}  // namespace

// ---- API -----------------------------------------------------------------------

uint64_t wal_shared_size(uint32_t max_slots) {
  uint64_t n = sizeof(WalShared) + (uint64_t)max_slots * sizeof(WalInsert);
  return (n + kWalBlock - 1) / kWalBlock * kWalBlock;
}

WalShared* wal_get(Segment& seg) {
  WalView v;
  return view_of(seg, &v) ? v.w : nullptr;
}

int wal_init(Segment& seg, uint64_t off, uint64_t buf_size, uint64_t seg_size, uint64_t start_lsn, uint32_t flags) {
  uint32_t max_slots = seg.hdr->max_slots;
  uint64_t shared = wal_shared_size(max_slots);
  if (off % kWalBlock || buf_size == 0 || buf_size % kWalBlock || seg_size == 0 || seg_size % kWalBlock) return -EINVAL;
  if (flags & ~(kWalFlagDirect | kWalFlagDsync)) return -EINVAL;
  if (!in_arena(seg, off, shared + buf_size)) return -ERANGE;
  auto* w = reinterpret_cast<WalShared*>(seg.arena.base + off);
  memset(w, 0, shared);
  w->version = kWalVersion;
  w->max_slots = max_slots;
  w->buf_off = off + shared;
  w->buf_size = buf_size;
  w->seg_size = seg_size;
  w->inserts_off = off + sizeof(WalShared);
  w->flags = flags;
  w->reserved = start_lsn;
  w->flushed = start_lsn;
  w->start_lsn = start_lsn;
  store_release(&w->magic, kWalMagic);  // published last: lookups check it first
  return 0;
}

int wal_append(Segment& seg, uint32_t slot, uint16_t kind, const uint8_t* payload, uint32_t n, uint64_t* end,
               bool debug_abandon) {
  WalView v;
  if (!view_of(seg, &v)) return -ENOENT;
  if (slot >= v.max_slots) return -EINVAL;
  WalShared* w = v.w;
  uint64_t total = (uint64_t)kWalHeaderSize + n;
  uint64_t len = (total + 7) & ~7ull;
  if (len > v.buf_size / 2) return -E2BIG;
  if (uint32_t e = file_sync_failed_errno(seg)) wal_fail(seg, w, -(int32_t)e);  // a data-file sync failed
  if (load_acquire(&w->failed)) return -EIO;
  WalInsert* e = &v.ins[slot];
  uint64_t r = load_sc(&w->reserved);
  for (Reserve got = Reserve::Moved; got != Reserve::Done;)
    if ((got = reserve_once(v, w, e, &r, len)) == Reserve::Full) return -EAGAIN;
  store_sc(&e->state, (uint32_t)WI_COPYING);
  if (debug_abandon) {  // test hook: die mid-copy (half a payload, no header)
    buf_write(v, r + kWalHeaderSize, payload, n / 2);
    *end = r + len;
    return 0;
  }
  put_record(v, r, kind, 0, payload, n, nullptr, 0, len);
  store_release(&e->state, (uint32_t)WI_IDLE);  // pairs with the flusher's load: the copy is visible
  stat_add(&w->stat_appends, (uint64_t)1);
  *end = r + len;
  return 0;
}

namespace {
// The choice itself (wal_choose_redo; the test hook calls it from inside an append).
uint64_t choose_redo(Segment& seg, WalShared* w) {
  uint32_t ep = load_sc(&w->redo_epoch);
  uint32_t odd = (ep & 1) ? ep + 2 : ep + 1;  // a new odd value: an epoch left odd is not "unchanged"
  store_sc(&w->redo_epoch, odd);              // seq_cst: before the read of `reserved`
  uint64_t redo = load_sc(&w->reserved);      // a record boundary: every reservation is one CAS
  kill_point(&seg.hdr->faults, KP_CHECKPOINT_REDO_CHOOSING);
  store_sc(&w->redo_lsn, redo);
  store_sc(&w->redo_epoch, odd + 1);
  return redo;
}
std::atomic<bool> g_debug_choose_in_append{false};
}  // namespace

int wal_choose_redo(Segment& seg, WalShared* w, uint32_t slot, uint64_t* redo) {
  if (load_acquire(&w->ckpt_running) != slot + 1) return -EBUSY;
  *redo = choose_redo(seg, w);
  return 0;
}

void wal_debug_choose_redo_in_next_append() { g_debug_choose_in_append.store(true); }

int wal_append_page(Segment& seg, uint32_t slot, uint16_t kind, const uint8_t* payload, uint32_t n, const uint8_t* page,
                    uint32_t page_size, const uint8_t* prefix, uint32_t prefix_len, uint64_t* end, bool* imaged) {
  WalView v;
  if (!view_of(seg, &v)) return -ENOENT;
  if (slot >= v.max_slots) return -EINVAL;
  if (page_size < 4096 || page_size > 32768 || (page_size & (page_size - 1))) return -EINVAL;
  if (prefix_len < 17 || prefix_len > 4096 + 16) return -EINVAL;
  uint32_t path_len, data_len;
  memcpy(&path_len, prefix + 8, 4);
  memcpy(&data_len, prefix + 12, 4);
  if ((uint64_t)path_len + 16 != prefix_len || data_len != page_size) return -EINVAL;
  WalShared* w = v.w;
  uint64_t rec_len = ((uint64_t)kWalHeaderSize + n + 7) & ~7ull;
  uint64_t img_len = ((uint64_t)kWalHeaderSize + prefix_len + page_size + 7) & ~7ull;
  if (img_len + rec_len > v.buf_size / 2) return -E2BIG;
  if (uint32_t e = file_sync_failed_errno(seg)) wal_fail(seg, w, -(int32_t)e);
  if (load_acquire(&w->failed)) return -EIO;
  WalInsert* e = &v.ins[slot];
  bool force = false;  // the last reservation was made on a stale decision: image, whatever R is
  for (;;) {
    // The decision's inputs, before the reservation: the epoch first (seq_cst), then R.
    uint32_t epoch = load_sc(&w->redo_epoch);
    uint64_t redo = load_sc(&w->redo_lsn);
    uint64_t page_lsn;
    memcpy(&page_lsn, page, 8);  // stable: the caller holds the exclusive lock
    if (g_debug_choose_in_append.exchange(false)) choose_redo(seg, w);
    uint64_t r = load_sc(&w->reserved);
    bool image;
    uint64_t len;
    for (;;) {
      // An odd epoch is a choice in progress (or a dead checkpointer's, until its
      // cleanup): R is unknown, so the image is logged. A page LSN or an R past the end
      // of the WAL is not trusted either (shared memory is untrusted).
      image = force || (epoch & 1) || page_lsn <= redo || page_lsn > r || redo > r;
      len = image ? img_len + rec_len : rec_len;
      Reserve got = reserve_once(v, w, e, &r, len);
      if (got == Reserve::Full) return -EAGAIN;
      if (got == Reserve::Done) break;
    }
    store_sc(&e->state, (uint32_t)WI_COPYING);
    if (!image && load_sc(&w->redo_epoch) != epoch) {
      // A checkpoint began choosing a redo point between our reading R and now: it may
      // lie at or before `r`, so this record could be the page's first change after it
      // with no image. The reservation is ours and must be filled: with padding (recovery
      // skips it), then the change is made again, with the image.
      put_padding(v, r, (uint32_t)len);
      store_release(&e->state, (uint32_t)WI_IDLE);
      stat_add(&w->stat_pads, (uint64_t)1);
      stat_add(&w->stat_image_retries, (uint64_t)1);
      force = true;
      continue;
    }
    uint64_t rec_at = r;
    if (image) {
      // The page as this change left it, with the LSN markDirty(end) gives it, and a valid
      // checksum: recovery writes it to the file as it is.
      thread_local uint8_t copy[32768];
      memcpy(copy, page, page_size);
      uint64_t page_end = r + len;
      memcpy(copy, &page_end, 8);
      uint32_t sum = page_checksum(copy, page_size);
      memcpy(copy + 8, &sum, 4);
      put_record(v, r, kWalKindPageImage, kWalRecPairedImage, prefix, prefix_len, copy, page_size, img_len);
      rec_at = r + img_len;
      kill_point(&seg.hdr->faults, KP_WAL_PAGE_IMAGE_COPIED);
    }
    put_record(v, rec_at, kind, 0, payload, n, nullptr, 0, rec_len);
    store_release(&e->state, (uint32_t)WI_IDLE);  // pairs with the flusher's load: the copy is visible
    stat_add(&w->stat_appends, (uint64_t)(image ? 2 : 1));
    if (image) stat_add(&w->stat_page_images, (uint64_t)1);
    *end = r + len;
    *imaged = image;
    return 0;
  }
}

uint64_t wal_inserted_upto(Segment& seg, WalShared* w) {
  WalView v;
  if (!view_of(seg, &v)) return 0;
  uint64_t m = load_sc(&w->reserved);  // first, then the entries (see the header)
  for (uint32_t i = 0; i < v.max_slots; i++) {
    if (load_sc(&v.ins[i].state) == WI_IDLE) continue;
    uint64_t s = load_sc(&v.ins[i].start);
    if (s < m) m = s;
  }
  uint64_t f = load_acquire(&w->flushed);
  return m < f ? f : m;
}

namespace {
// Whether this process should ask the kernel now if the flusher's process is alive. Every
// session waiting for a flush tries the role at each publication, and the question costs
// a kill(2) and a /proc/<pid>/stat read: with 16 processes of 16 sessions that was several
// reads per commit. A flusher that publishes is alive, and a dead one is also found by
// the postmaster's slot cleanup (which frees the role and wakes the waiters), so the
// question is asked only once the same holder has published nothing for 5 ms, and then
// at most once per 5 ms per process. (holder, flush_seq) as last seen, and since when.
std::atomic<uint64_t> g_flusher_seen{0};
std::atomic<int64_t> g_flusher_seen_since_ns{0};
constexpr int64_t kFlusherLivenessIntervalNs = 5000000;  // a tenth of a waiter's 50 ms re-look

bool flusher_liveness_due(uint32_t holder, uint32_t flush_seq) {
  int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
  uint64_t key = (uint64_t)holder << 32 | flush_seq;
  if (g_flusher_seen.exchange(key, std::memory_order_relaxed) != key) {  // moved since our last look
    g_flusher_seen_since_ns.store(now, std::memory_order_relaxed);
    return false;
  }
  int64_t since = g_flusher_seen_since_ns.load(std::memory_order_relaxed);
  if (now - since < kFlusherLivenessIntervalNs) return false;
  return g_flusher_seen_since_ns.compare_exchange_strong(since, now, std::memory_order_relaxed);
}
}  // namespace

bool wal_try_flusher(Segment& seg, WalShared* w, uint32_t slot) {
  uint32_t cur = load_acquire(&w->flusher);
  if (cur == 0) return cas(&w->flusher, &cur, slot + 1);
  if (cur == slot + 1) return false;
  uint32_t other = cur - 1;
  // A flusher whose slot is gone (cleanup not run yet) is replaced: a slot no longer
  // ACTIVE at once, a dead process once it has published nothing for a while.
  if (other >= seg.hdr->max_slots || load_acquire(&seg.slots[other].state) != SLOT_ACTIVE ||
      (flusher_liveness_due(cur, load_acquire(&w->flush_seq)) && slot_owner_dead(&seg.slots[other]))) {
    if (cas(&w->flusher, &cur, slot + 1)) {
      stat_add(&w->stat_flusher_takeovers, (uint64_t)1);
      return true;
    }
  }
  return false;
}

void wal_release_flusher(Segment& seg, WalShared* w, uint32_t slot) {
  uint32_t me = slot + 1;
  if (cas(&w->flusher, &me, 0u)) bump_and_wake(seg, w);  // waiters may now take the role
}

void wal_publish(Segment& seg, WalShared* w, uint64_t lsn) {
  // A failed data-file or directory sync fails the WAL too (file_sync.h): writes made
  // since the last checkpoint may be gone from the files, and only a recovery from its
  // redo point rebuilds them, so nothing more may be reported durable.
  if (uint32_t e = file_sync_failed_errno(seg)) wal_fail(seg, w, -(int32_t)e);
  if (load_acquire(&w->failed)) return;  // a failed WAL never reports durability again
  if (lsn > load_sc(&w->reserved)) return;
  uint64_t cur = load_acquire(&w->flushed);
  while (cur < lsn) {
    if (cas(&w->flushed, &cur, lsn)) {
      bump_and_wake(seg, w);
      return;
    }
  }
}

void wal_fail(Segment& seg, WalShared* w, int32_t err) {
  uint32_t zero = 0;
  uint32_t e = (uint32_t)(err < 0 ? -err : err);
  if (e == 0) e = EIO;
  if (cas(&w->failed, &zero, e)) bump_and_wake(seg, w);
}

}  // namespace rm
