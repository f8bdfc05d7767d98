// The shared buffer pool (layout and rules: buffer_pool.h).
#include "buffer_pool.h"
#include "crc32c.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "atomics.h"
#include "completion_kinds.h"
#include "process_table.h"
#include "segment.h"
#include "shared_wait.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace rm {

namespace {

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

// ---- per-process cache of the region location (region_get takes a shared lock) --
std::mutex g_cache_mu;
std::unordered_map<Segment*, std::pair<uint64_t, std::pair<uint64_t, uint64_t>>> g_cache;  // seg -> (id, (off, size))

bool region_of(Segment& seg, uint64_t* off, uint64_t* size) {
  {
    std::lock_guard<std::mutex> g(g_cache_mu);
    auto it = g_cache.find(&seg);
    if (it != g_cache.end() && it->second.first == seg.id) {
      *off = it->second.second.first;
      *size = it->second.second.second;
      return true;
    }
  }
  if (region_get(seg, "bufferpool", off, size) != 0) return false;
  std::lock_guard<std::mutex> g(g_cache_mu);
  g_cache[&seg] = {seg.id, {*off, *size}};  // regions are never moved once set
  return true;
}

// Ends the IO `seq20` of buffer `id`: clears IO_IN_PROGRESS and sets/clears the bits
// in `set`/`clear` by CAS, then moves io_seq to even and wakes every waiter. False if
// the IO is not the current one (stale completion, or already aborted).
bool end_io(Segment& seg, PoolView& v, uint32_t id, uint32_t seq20, uint64_t set, uint64_t clear, int32_t err) {
  BufDesc* d = &v.d[id];
  uint32_t seq = load_acquire(&d->io_seq);  // pairs with the claimer's fetch_add
  if (!(seq & 1) || (seq & 0xFFFFF) != seq20) return false;
  if (err) store_relaxed(&d->last_error, err);  // published by the CAS below (release)
  uint64_t s = load_acquire(&d->state);
  for (;;) {
    if (!(s & BS_IO)) return false;
    uint64_t ns = (s & ~(BS_IO | clear)) | set;
    if (cas(&d->state, &s, ns)) break;
  }
  // The even value tells waiters the IO ended; their load_acquire of io_seq pairs with
  // this release, so they see the state CAS above.
  uint32_t expect = seq;
  cas(&d->io_seq, &expect, seq + 1);
  wake_word_waiters(seg);
  return true;
}

}  // namespace

// A claimer has just set IO_IN_PROGRESS by CAS. The previous IO's end_io clears that bit
// before it moves io_seq to even, so a claim can land in between (or after that completer
// died there): then io_seq is still odd, and a plain +1 would make it even while the new
// IO is in progress, so nobody could ever end it (a stuck buffer, found by the mixed kill
// soak). Step to the next odd value instead; the late completer's CAS then fails, harmlessly.
uint32_t pool_claim_seq(BufDesc* d) {
  uint32_t cur = load_acquire(&d->io_seq);
  for (;;) {
    uint32_t next = (cur & 1) ? cur + 2 : cur + 1;
    if (cas(&d->io_seq, &cur, next)) return next;  // acq_rel: pairs with waiters' acquire
  }
}

namespace {

bool kind_valid(Segment& seg, uint64_t arg) {
  PoolView v;
  if (!pool_view(seg, &v)) return false;
  return (arg & 0xFFFFFFFFu) < v.n && (arg >> 52) == 0;
}

void read_action(Segment& seg, uint64_t arg, int32_t res) {
  PoolView v;
  if (!pool_view(seg, &v)) return;
  uint32_t id = (uint32_t)(arg & 0xFFFFFFFFu);
  if (id >= v.n) return;  // validated again: another process wrote the handle
  pool_read_done(seg, v, id, (uint32_t)(arg >> 32) & 0xFFFFF, res);
}

void write_action(Segment& seg, uint64_t arg, int32_t res) {
  PoolView v;
  if (!pool_view(seg, &v)) return;
  uint32_t id = (uint32_t)(arg & 0xFFFFFFFFu);
  if (id >= v.n) return;
  pool_write_done(seg, v, id, (uint32_t)(arg >> 32) & 0xFFFFF, res);
}

// Is an IO with this completion (kind, arg) submitted and not yet completed? Its handle
// holds both from before the SQE is published until the completion action has run.
bool claim_in_flight(Segment& seg, uint16_t kind, uint64_t arg) {
  for (uint32_t i = 0; i < seg.handles.count; i++) {
    IoHandle* h = &seg.handles.handles[i];
    if (hw_state(load_acquire(&h->word)) != H_SUBMITTED) continue;
    if (load_relaxed(&h->kind) == kind && load_relaxed(&h->kind_arg) == arg) return true;
  }
  return false;
}

// A dead or detached slot's pins and content locks go back; IO it claimed but never
// submitted is aborted with ECANCELED (submitted IO always completes through a CQE or
// the handle cleanup, which runs the completion action).
void cleanup_hook(Segment& seg, uint32_t slot, bool process_died) {
  PoolView v;
  if (!pool_view(seg, &v) || slot >= v.max_slots) return;
  PinEntry* e = &v.pins[(uint64_t)slot * kPinsPerSlot];
  bool woke = false;
  for (uint32_t i = 0; i < kPinsPerSlot; i++) {
    uint32_t b1 = load_acquire(&e[i].buf_plus1);
    if (b1 == 0 || b1 > v.n) { store_relaxed(&e[i].buf_plus1, 0u); continue; }
    BufDesc* d = &v.d[b1 - 1];
    uint32_t sh = load_relaxed(&e[i].shared_locks), pins = load_relaxed(&e[i].pins);
    uint32_t w = load_acquire(&d->content_lock);
    while (sh && !(w & kLockExclusive)) {  // exclusive locks: by owner, below
      uint32_t nw = w - (sh < w ? sh : w);
      if (nw == w || cas(&d->content_lock, &w, nw)) break;
    }
    uint64_t s = load_acquire(&d->state);
    for (;;) {
      uint64_t cnt = s & BS_PIN_MASK;
      uint64_t ns = (s & ~BS_PIN_MASK) | (cnt - (pins < cnt ? pins : cnt));  // never underflow
      if (ns == s || cas(&d->state, &s, ns)) break;
    }
    store_relaxed(&e[i].pins, 0u);
    store_relaxed(&e[i].shared_locks, 0u);
    store_relaxed(&e[i].exclusive, 0u);
    store_release(&e[i].buf_plus1, 0u);
    woke = true;
  }
  for (uint32_t id = 0; id < v.n; id++) {
    BufDesc* d = &v.d[id];
    // An exclusive lock this slot still holds: the holder died (or its thread was
    // terminated) mid-update, maybe with the page half-changed. PostgreSQL restarts
    // every process here; we fence the page (TORN) and release the lock, so waiters
    // get ERR_RINGMASTER_PAGE_TORN instead of a torn page or a hang.
    uint32_t mine = exclusive_word(slot);
    if (load_acquire(&d->content_lock) == mine) {
      uint64_t st = load_acquire(&d->state);
      bool fence = !(load_relaxed(&v.h->flags) & POOL_RELEASE_ON_HOLDER_DEATH);
      for (int tries = 0; fence && tries < 1000 && !(st & BS_TORN); tries++)
        if (cas(&d->state, &st, st | BS_TORN)) {
          stat_add(&v.h->gstats[G_TORN_PAGES], (uint64_t)1);
          break;
        }
      uint32_t expected = mine;
      cas(&d->content_lock, &expected, 0u);
      woke = true;
    }
    uint64_t s = load_acquire(&d->state);
    if (!(s & BS_IO) || bs_owner(s) != slot) continue;
    uint32_t seq = load_acquire(&d->io_seq);
    // Even: the claimer died between its claim CAS and its seq step; give the IO its seq
    // (nobody else can claim while IO_IN_PROGRESS is set) and abort it like any unsubmitted one.
    if (!(seq & 1)) seq = pool_claim_seq(d);
    else if (load_relaxed(&d->io_submitted) == seq) continue;
    // JS marks the claim submitted only after its submit call returns: a claimer killed
    // in between has its IO in flight. Aborting the claim now would let the buffer be
    // reused while the kernel still reads into it; its completion ends the claim instead.
    else if (claim_in_flight(seg, (s & BS_VALID) ? CK_BUFFER_WRITE_DONE : CK_BUFFER_READ_DONE,
                             ((uint64_t)(seq & 0xFFFFF) << 32) | id)) continue;
    if (s & BS_VALID) pool_write_done(seg, v, id, seq & 0xFFFFF, -ECANCELED);
    else pool_read_done(seg, v, id, seq & 0xFFFFF, -ECANCELED);
    woke = true;
  }
  for (uint32_t k = 0; k < ST_COUNT; k++) store_relaxed(&v.sstats[slot].v[k], (uint64_t)0);
  if (woke) wake_word_waiters(seg);
}

const bool g_registered = register_completion_kind(CK_BUFFER_READ_DONE, kind_valid, read_action) &&
                          register_completion_kind(CK_BUFFER_WRITE_DONE, kind_valid, write_action) &&
                          register_slot_cleanup_hook(cleanup_hook);

}  // namespace


uint32_t page_checksum(const uint8_t* page, uint32_t size) {
  uint32_t c = crc32c(0xFFFFFFFFu, page, 8);  // the LSN is covered; the checksum field is not
  c = crc32c(c, page + 12, size - 12);
  return ~c;
}

bool page_all_zero(const uint8_t* page, uint32_t size) {
  for (uint32_t i = 0; i < size; i += 8) {
    uint64_t w;
    memcpy(&w, page + i, 8);
    if (w) return false;
  }
  return true;
}

uint64_t pool_layout_size(uint32_t pages, uint32_t page_size, uint32_t max_slots, PoolHeader* out) {
  PoolHeader h{};
  h.pages = pages;
  h.page_size = page_size;
  uint32_t nb = 1;
  while (nb < pages * 2u && nb < (1u << 30)) nb <<= 1;
  h.nbuckets = nb;
  h.max_slots = max_slots;
  uint64_t o = align_up(sizeof(PoolHeader), 64);
  h.desc_off = o;
  o += (uint64_t)pages * sizeof(BufDesc);
  h.buckets_off = o = align_up(o, 64);
  o += (uint64_t)nb * 4;
  h.locks_off = o = align_up(o, 64);
  o += (uint64_t)kPoolPartitions * sizeof(LockCell);
  h.pins_off = o = align_up(o, 64);
  o += (uint64_t)max_slots * kPinsPerSlot * sizeof(PinEntry);
  h.sstats_off = o = align_up(o, 64);
  o += (uint64_t)max_slots * sizeof(SlotStats);
  h.pages_off = o = align_up(o, 4096);
  o += (uint64_t)pages * page_size;
  h.region_size = o;
  if (out) *out = h;
  return o;
}

int pool_init(Segment& seg, uint64_t off, uint64_t size, uint32_t pages, uint32_t page_size, uint32_t flags) {
  PoolHeader h;
  uint64_t need = pool_layout_size(pages, page_size, seg.hdr->max_slots, &h);
  h.flags = flags;
  if (size < need || off > seg.arena.size || seg.arena.size - off < need || off % 4096) return -EINVAL;
  uint8_t* base = seg.arena.base + off;
  auto* ph = reinterpret_cast<PoolHeader*>(base);
  if (load_acquire(&ph->magic) != 0) return -EEXIST;
  h.magic = 0;
  memcpy(ph, &h, sizeof(h));  // nobody reads the header before the magic below is published
  auto* locks = reinterpret_cast<LockCell*>(base + h.locks_off);
  for (uint32_t i = 0; i < kPoolPartitions; i++) robust_lock_init(&locks[i].lock);
  store_release(&ph->magic, kPoolMagic);  // pairs with load_acquire in pool_view
  return 0;
}

bool pool_view(Segment& seg, PoolView* v) {
  uint64_t off, size;
  if (!region_of(seg, &off, &size)) return false;
  if (off > seg.arena.size || seg.arena.size - off < size || size < sizeof(PoolHeader)) return false;
  uint8_t* base = seg.arena.base + off;
  auto* ph = reinterpret_cast<PoolHeader*>(base);
  if (load_acquire(&ph->magic) != kPoolMagic) return false;  // pairs with pool_init's release
  // Read every layout field once, recompute the layout and compare: a scribbled
  // header cannot make us index outside the region.
  uint32_t pages = load_relaxed(&ph->pages), ps = load_relaxed(&ph->page_size), ms = load_relaxed(&ph->max_slots);
  if (pages == 0 || pages > (1u << 24) || ps < 4096 || ps > 32768 || (ps & (ps - 1)) || ms == 0 || ms > 4096) return false;
  PoolHeader h;
  uint64_t need = pool_layout_size(pages, ps, ms, &h);
  if (need > size || load_relaxed(&ph->desc_off) != h.desc_off || load_relaxed(&ph->pages_off) != h.pages_off ||
      load_relaxed(&ph->nbuckets) != h.nbuckets)
    return false;
  v->base = base;
  v->region_off = off;
  v->h = ph;
  v->d = reinterpret_cast<BufDesc*>(base + h.desc_off);
  v->buckets = reinterpret_cast<uint32_t*>(base + h.buckets_off);
  v->locks = reinterpret_cast<LockCell*>(base + h.locks_off);
  v->pins = reinterpret_cast<PinEntry*>(base + h.pins_off);
  v->sstats = reinterpret_cast<SlotStats*>(base + h.sstats_off);
  v->pages = base + h.pages_off;
  v->n = pages;
  v->page_size = ps;
  v->nbuckets = h.nbuckets;
  v->max_slots = ms;
  return true;
}

void pool_report_corrupt(Segment& seg, PoolView& v, GlobalStat which) {
  stat_add(&v.h->gstats[which], (uint64_t)1);
  stat_add(&seg.hdr->stat_corrupt_reports, (uint64_t)1);
}

void pool_read_done(Segment& seg, PoolView& v, uint32_t id, uint32_t seq20, int32_t res) {
  BufDesc* d = &v.d[id];
  int32_t err = 0;
  if (issuer_gone_result(res)) err = -ECANCELED;  // waiters retry with their own read
  else if (res < 0) err = res;
  else if (res == 0) err = BP_ERR_PAST_EOF;
  else if ((uint32_t)res != v.page_size) err = BP_ERR_SHORT_READ;
  else {
    const uint8_t* p = v.pages + (uint64_t)id * v.page_size;
    if (!page_all_zero(p, v.page_size)) {
      uint32_t stored;
      memcpy(&stored, p + 8, 4);
      if (stored != page_checksum(p, v.page_size)) err = BP_ERR_CHECKSUM;
    }
  }
  int32_t pid = load_relaxed(&d->io_pid);
  uint32_t issuer = load_relaxed(&d->io_slot);
  bool ok = err == 0 ? end_io(seg, v, id, seq20, BS_VALID, BS_IO_ERROR, 0) : end_io(seg, v, id, seq20, BS_IO_ERROR, BS_VALID, err);
  if (ok && pid != getpid()) {
    stat_add(&v.h->gstats[ST_COMPLETED_BY_OTHER], (uint64_t)1);
    if (issuer < v.max_slots) stat_add(&v.sstats[issuer].v[ST_COMPLETED_BY_OTHER], (uint64_t)1);
  }
}

void pool_write_done(Segment& seg, PoolView& v, uint32_t id, uint32_t seq20, int32_t res) {
  BufDesc* d = &v.d[id];
  if (res >= 0 && (uint32_t)res == v.page_size) {
    // Clean only if nobody re-dirtied it while the write was in flight.
    bool same = load_relaxed(&d->dirty_gen) == load_relaxed(&d->write_gen);
    end_io(seg, v, id, seq20, 0, same ? BS_DIRTY : 0, 0);
  } else {
    int32_t err = issuer_gone_result(res) ? -ECANCELED : res < 0 ? res : -EIO;
    end_io(seg, v, id, seq20, 0, 0, err);  // stays dirty: retried later
  }
}

}  // namespace rm
