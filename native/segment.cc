#include "segment.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cstdlib>

#include "atomics.h"
#include "reaper.h"
#include <set>

namespace rm {

static uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
static constexpr uint64_t kPage = 4096;
static constexpr uint64_t kMaxIovec = 1ull << 30;  // kernel limit per registered buffer

uint64_t layout_size(const SegmentConfig& cfg, uint64_t* slots_off, uint64_t* handles_off, uint64_t* files_off,
                     uint64_t* arena_off, uint32_t* max_handles) {
  // Enough handles for every SQ slot of every ring; the CQ is sized to hold all their
  // completions and self-wake messages (see ring_create and the CQ sizing below).
  uint32_t nh = cfg.ring_count * cfg.ring_entries;
  if (cfg.topology == TOPO_PER_PROCESS) nh = cfg.ring_entries * cfg.ring_count;
  *max_handles = nh;
  uint64_t off = round_up(sizeof(SegmentHeader), kPage);
  *slots_off = off;
  off += round_up((uint64_t)cfg.max_slots * sizeof(ProcSlot), 64);
  *handles_off = off;
  off += (uint64_t)nh * sizeof(IoHandle);
  *files_off = off;
  off += (uint64_t)cfg.max_files * sizeof(FileEntry);
  off = round_up(off, kPage);
  *arena_off = off;
  return off + round_up(cfg.arena_size, kPage);
}

static void bind_views(Segment* seg) {
  SegmentHeader* h = seg->hdr;
  uint32_t slots = h->max_slots;
  seg->local_wake.reset(new std::atomic<int>[slots]);
  for (uint32_t i = 0; i < slots; i++) seg->local_wake[i].store(-1, std::memory_order_relaxed);
  seg->local_wake_fds.assign(slots, -1);
  seg->slots = reinterpret_cast<ProcSlot*>(seg->base + h->slots_off);
  seg->handles.handles = reinterpret_cast<IoHandle*>(seg->base + h->handles_off);
  seg->handles.count = h->max_handles;
  // Processes start their scans far apart, so that they rarely reserve (and write) the
  // same handles' lines.
  seg->handle_cursor = h->max_handles ? (uint32_t)(((uint64_t)(uint32_t)getpid() * 2654435761u) % h->max_handles) : 0;
  seg->handles.cursor = &seg->handle_cursor;
  seg->handles.orphans = &h->orphans_outstanding;
  seg->files = reinterpret_cast<FileEntry*>(seg->base + h->files_off);
  seg->arena.base = seg->base + h->arena_off;
  seg->arena.size = h->arena_size;
  seg->registrant_arena_base = h->base_address + h->arena_off;
}

// IORING_REGISTER_CLONE_BUFFERS (Linux 6.12): ring r shares ring 0's registered buffers.
// The clone shares the pinned pages instead of pinning (and charging RLIMIT_MEMLOCK for)
// them again, so N rings cost one arena's worth of locked memory instead of N. Older
// kernels reject the opcode (EINVAL): then every ring registers (and is charged) on its own.
constexpr unsigned kRegisterCloneBuffers = 30;
struct CloneBuffersArg {  // struct io_uring_clone_buffers
  uint32_t src_fd, flags, src_off, dst_off, nr, pad[3];
};

static int register_arena(Segment* seg, uint32_t upto_ring, bool undo) {
  // One iovec per GiB of arena (the kernel's per-buffer limit).
  std::vector<iovec> iov;
  for (uint64_t off = 0; off < seg->arena.size; off += kMaxIovec) {
    uint64_t len = seg->arena.size - off < kMaxIovec ? seg->arena.size - off : kMaxIovec;
    iov.push_back({seg->arena.base + off, (size_t)len});
  }
  for (uint32_t r = 0; r < upto_ring; r++) {
    if (undo) {
      sys_io_uring_register(seg->rings[r].fd, IORING_UNREGISTER_BUFFERS, nullptr, 0);
      continue;
    }
    int rc = -EINVAL;
    if (r > 0) {
      CloneBuffersArg arg{};
      arg.src_fd = (uint32_t)seg->rings[0].fd;
      rc = sys_io_uring_register(seg->rings[r].fd, kRegisterCloneBuffers, &arg, 1);
      if (rc == 0) seg->hdr->fixed_buffers_cloned = 1;
    }
    if (rc < 0) rc = sys_io_uring_register(seg->rings[r].fd, IORING_REGISTER_BUFFERS, iov.data(), (unsigned)iov.size());
    if (rc < 0) {
      // Undo what this attempt did on earlier rings: accounting must stay symmetric.
      register_arena(seg, r, true);
      return rc;
    }
  }
  return 0;
}

int segment_create(const SegmentConfig& cfg, Segment* seg, std::string* err) {
  if (cfg.ring_count == 0 || cfg.ring_count > kMaxRings) { *err = "ring count out of range"; return -EINVAL; }
  if (cfg.data_dir.size() >= sizeof(SegmentHeader::data_dir)) { *err = "data directory path too long"; return -ENAMETOOLONG; }
  uint64_t slots_off, handles_off, files_off, arena_off;
  uint32_t max_handles;
  uint64_t total = layout_size(cfg, &slots_off, &handles_off, &files_off, &arena_off, &max_handles);

  int dfd = open(cfg.data_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) { int e = errno; *err = "cannot open data directory " + cfg.data_dir + ": " + strerror(e); return -e; }

  int fd = (int)syscall(SYS_memfd_create, "ringmaster-segment", MFD_CLOEXEC);
  if (fd < 0) { int e = errno; close(dfd); *err = std::string("memfd_create: ") + strerror(e); return -e; }
  if (ftruncate(fd, (off_t)total) != 0) {
    int e = errno; close(fd); close(dfd); *err = std::string("ftruncate segment: ") + strerror(e); return -e;
  }
  void* p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) { int e = errno; close(fd); close(dfd); *err = std::string("mmap segment: ") + strerror(e); return -e; }

  seg->memfd = fd;
  seg->base = static_cast<uint8_t*>(p);
  seg->size = total;
  seg->hdr = reinterpret_cast<SegmentHeader*>(p);
  seg->same_address = true;
  seg->is_postmaster = true;
  seg->data_dir_fd = dfd;

  SegmentHeader* h = seg->hdr;
  std::random_device rd;
  h->segment_id = ((uint64_t)rd() << 32 | rd()) & 0x1fffffffffffffull;  // fits a JS number
  if (h->segment_id == 0) h->segment_id = 1;
  seg->id = h->segment_id;
  h->layout_version = kLayoutVersion;
  h->header_size = sizeof(SegmentHeader);
  h->total_size = total;
  h->base_address = (uint64_t)(uintptr_t)p;
  h->postmaster_pid = getpid();
  h->backend = cfg.backend;
  h->topology = cfg.topology;
  h->ring_count = cfg.backend == BACKEND_IO_URING ? cfg.ring_count : 0;
  h->configured_rings = cfg.ring_count;
  h->ring_entries = cfg.ring_entries;
  h->sqpoll = cfg.sqpoll ? 1 : 0;
  h->max_slots = cfg.max_slots;
  h->max_handles = max_handles;
  h->max_files = cfg.max_files;
  h->slots_off = slots_off;
  h->handles_off = handles_off;
  h->files_off = files_off;
  h->arena_off = arena_off;
  h->arena_size = total - arena_off;
  robust_lock_init(&h->tb_lock);
  robust_lock_init(&h->regions_lock);
  robust_lock_init(&h->files_lock);
  h->file_sync.cycle = 1;  // dirty_cycle 0 (a fresh entry) is older than any mark
  memcpy(h->data_dir, cfg.data_dir.c_str(), cfg.data_dir.size() + 1);
  bind_views(seg);

  if (cfg.backend == BACKEND_IO_URING) {
    // CQ holds two entries per handle (an op's CQE and its self-wake message's, which
    // posts one too: see prep_self_wake), so completions cannot outnumber it, up to the
    // kernel's 65536 (IORING_MAX_CQ_ENTRIES). Past that, with more than 32768 handles
    // self-waking at once, the kernel keeps the excess in its overflow list (NODROP) and
    // the reaper flushes it (ring_reap).
    uint64_t want = 2ull * (max_handles < cfg.ring_entries ? cfg.ring_entries : max_handles);
    uint32_t cq = want > 65536 ? 65536 : (uint32_t)want;
    h->cq_entries = cq;
    seg->rings.resize(cfg.ring_count);
    for (uint32_t r = 0; r < cfg.ring_count; r++) {
      RingShared* rs = &h->rings[r];
      robust_lock_init(&rs->submit_lock);
      robust_lock_init(&rs->complete_lock);
      rs->owner_slot = ~0u;
      int rc = ring_create(rs, &seg->rings[r], cfg.ring_entries, cq, cfg.sqpoll, cfg.sqpoll_idle_ms);
      if (rc < 0) {
        *err = std::string("io_uring_setup: ") + strerror(-rc);
        segment_unmap(seg);
        return rc;
      }
      // Watchers wait on an eventfd the kernel signals for every CQE it posts. Not
      // IORING_REGISTER_EVENTFD_ASYNC: that one signals only completions posted from io-wq,
      // so an O_DIRECT read completed from IRQ (or anything SQPOLL completes) woke nobody
      // and waited for the 250 ms sweep (measured: 4 IOPS at QD1). Optional: without it
      // watchers fall back to GETEVENTS.
      const char* watch = getenv("RINGMASTER_WATCH");  // 'getevents': the old mode, for comparison
      bool want_efd = !(watch && strcmp(watch, "getevents") == 0);
      int efd = want_efd ? eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) : -1;
      if (efd >= 0 && sys_io_uring_register(seg->rings[r].fd, IORING_REGISTER_EVENTFD, &efd, 1) == 0) {
        seg->rings[r].efd = efd;
        // Nobody demands reaping yet (reaper.h): the kernel signals no watcher until then.
        if (seg->rings[r].cq_flags)
          __atomic_fetch_or(seg->rings[r].cq_flags, (uint32_t)IORING_CQ_EVENTFD_DISABLED, __ATOMIC_SEQ_CST);
      } else if (efd >= 0) {
        close(efd);
      }
      if (!(rs->features & IORING_FEAT_EXT_ARG)) {
        // Watchers wait with a timeout (EXT_ARG, Linux 5.11): without it, no ring.
        *err = "io_uring lacks IORING_FEAT_EXT_ARG (Linux < 5.11)";
        segment_unmap(seg);
        return -ENOSYS;
      }
      // Sparse registered-file table: every slot starts empty (-1), any process may
      // install its own fd into a slot later: the table belongs to the ring, not to the
      // process that registered it (io_uring/filetable.c, io_install_fixed_file).
      std::vector<int> sparse(cfg.max_files, -1);
      rc = sys_io_uring_register(seg->rings[r].fd, IORING_REGISTER_FILES, sparse.data(), cfg.max_files);
      if (rc < 0) {
        *err = std::string("IORING_REGISTER_FILES: ") + strerror(-rc);
        segment_unmap(seg);
        return rc;
      }
    }
    seg->fixed_files = true;
    if (cfg.fixed_buffers) {
      int rc = register_arena(seg, cfg.ring_count, false);
      h->fixed_buffers = rc == 0 ? 1 : 0;
      h->fixed_buffers_errno = rc == 0 ? 0 : -rc;
    } else {
      h->fixed_buffers = 0;
      h->fixed_buffers_errno = 0;
    }
  }
  h->magic = kSegmentMagic;
  store_release(&h->run_state, (uint32_t)RUN_RUNNING);
  return 0;
}

int segment_attach(int memfd, const std::vector<int>& ring_fds, const std::vector<int>& event_fds, Segment* seg,
                   std::string* err) {
  struct stat st;
  if (fstat(memfd, &st) != 0) { int e = errno; *err = std::string("segment fd: ") + strerror(e); return -e; }
  if ((uint64_t)st.st_size < sizeof(SegmentHeader)) { *err = "segment fd is not a ringmaster segment (too small)"; return -EINVAL; }
  // Read the header through a temporary private copy first: it is untrusted until checked.
  SegmentHeader probe;
  if (pread(memfd, &probe, sizeof(probe), 0) != (ssize_t)sizeof(probe)) { *err = "cannot read segment header"; return -EIO; }
  if (probe.magic != kSegmentMagic) { *err = "segment fd is not a ringmaster segment (bad magic)"; return -EINVAL; }
  if (probe.layout_version != kLayoutVersion || probe.header_size != sizeof(SegmentHeader)) {
    *err = "segment layout version " + std::to_string(probe.layout_version) + " does not match this library's " +
           std::to_string(kLayoutVersion) + " (mixed ringmaster versions?)";
    return -EPROTO;
  }
  if (probe.total_size != (uint64_t)st.st_size || probe.ring_count > kMaxRings || probe.ring_count != ring_fds.size()) {
    *err = "segment header inconsistent with the handed-over fds";
    return -EINVAL;
  }
  uint64_t total = probe.total_size;
  void* want = (void*)(uintptr_t)probe.base_address;
  // Test hook: map elsewhere, as a process whose address space is taken there would,
  // so the translation path (fixed buffers addressed in the registrant's space) runs.
  const char* hooks = getenv("RINGMASTER_TEST_HOOKS");
  const char* force = getenv("RINGMASTER_FORCE_TRANSLATION");
  bool force_translation = hooks && strcmp(hooks, "1") == 0 && force && strcmp(force, "1") == 0;
  void* p = force_translation ? MAP_FAILED
                              : mmap(want, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED_NOREPLACE, memfd, 0);
  bool same = p != MAP_FAILED && p == want;
  if (p != MAP_FAILED && p != want) munmap(p, total);  // old kernels treat the flag as a hint
  if (!same) {
    p = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (p == MAP_FAILED) { int e = errno; *err = std::string("mmap segment: ") + strerror(e); return -e; }
  }
  seg->memfd = memfd;
  seg->base = static_cast<uint8_t*>(p);
  seg->size = total;
  seg->hdr = reinterpret_cast<SegmentHeader*>(p);
  seg->same_address = same;
  seg->id = probe.segment_id;
  SegmentHeader* h = seg->hdr;
  // Every offset is validated against the size we mapped before any view is built.
  uint64_t slots_end = h->slots_off + (uint64_t)h->max_slots * sizeof(ProcSlot);
  uint64_t handles_end = h->handles_off + (uint64_t)h->max_handles * sizeof(IoHandle);
  uint64_t files_end = h->files_off + (uint64_t)h->max_files * sizeof(FileEntry);
  if (h->slots_off < sizeof(SegmentHeader) || slots_end > h->handles_off || handles_end > h->files_off ||
      files_end > h->arena_off || h->arena_off + h->arena_size != total || h->max_files > 65535 ||
      h->max_slots > 65535 || h->max_handles == 0) {
    *err = "segment layout offsets are corrupt";
    munmap(p, total);
    return -EINVAL;
  }
  bind_views(seg);
  h->data_dir[sizeof(h->data_dir) - 1] = 0;
  seg->data_dir_fd = open(h->data_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  seg->rings.resize(h->ring_count);
  for (uint32_t r = 0; r < h->ring_count; r++) {
    int rc = ring_map(&h->rings[r], &seg->rings[r], ring_fds[r]);
    if (rc == 0 && r < event_fds.size()) seg->rings[r].efd = event_fds[r];
    if (rc < 0) {
      *err = std::string("mapping ring ") + std::to_string(r) + ": " + strerror(-rc);
      for (uint32_t k = 0; k < r; k++) ring_unmap(&seg->rings[k]);
      seg->rings.clear();
      munmap(p, total);
      return rc;
    }
  }
  seg->fixed_files = h->backend == BACKEND_IO_URING;
  return 0;
}

void segment_unmap(Segment* seg) {
  for (int& fd : seg->local_wake_fds) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  if (seg->stop_efd >= 0) close(seg->stop_efd);
  seg->stop_efd = -1;
  for (auto& r : seg->rings) ring_unmap(&r);
  seg->rings.clear();
  if (seg->data_dir_fd >= 0) close(seg->data_dir_fd);
  seg->data_dir_fd = -1;
  if (seg->base) munmap(seg->base, seg->size);
  seg->base = nullptr;
  seg->hdr = nullptr;
  if (seg->memfd >= 0) close(seg->memfd);
  seg->memfd = -1;
}

static bool kind_action(void* ctx, uint16_t kind, uint64_t arg, int32_t res, uint8_t op, uint32_t file_slot, uint32_t len) {
  Segment& seg = *static_cast<Segment*>(ctx);
  // fsyncgate: a failed sync of any file, by any issuer, may have dropped dirty pages the
  // next sync would then report clean. Latched before the completion is published.
  if ((op == OP_FSYNC || op == OP_FDATASYNC) && sync_error_loses_data(res)) file_sync_failed(seg, file_slot, res);
  return run_completion_kind(seg, kind, arg, res, len);
}

int region_set(Segment& seg, const char* name, uint64_t offset, uint64_t size) {
  size_t n = strlen(name);
  if (n == 0 || n >= sizeof(SegmentHeader::Region::name)) return -ENAMETOOLONG;
  if (offset > seg.arena.size || seg.arena.size - offset < size) return -ERANGE;
  SegmentHeader* h = seg.hdr;
  LockResult lr = robust_lock_acquire(&h->regions_lock, 2000000000);
  if (lr == LockResult::TimedOut || lr == LockResult::Error) return -ETIMEDOUT;
  int rc = -ENOSPC;
  for (auto& r : h->regions) {
    if (r.name[0] && strncmp(r.name, name, sizeof(r.name)) == 0) { rc = -EEXIST; break; }
  }
  if (rc != -EEXIST) {
    for (auto& r : h->regions) {
      if (r.name[0]) continue;
      // The name's first byte last, released: arena_overlaps_region reads the table
      // without the lock, and must see offset and size once it sees the entry.
      store_relaxed(&r.offset, offset);
      store_relaxed(&r.size, size);
      memcpy(r.name + 1, name + 1, n);
      store_release(&r.name[0], name[0]);
      rc = 0;
      break;
    }
  }
  robust_lock_release(&h->regions_lock);
  return rc;
}

bool arena_overlaps_region(Segment& seg, uint64_t offset, uint64_t len) {
  // Regions are only ever added (a module's state lives as long as the segment), each in
  // the first free entry: the set ones are a prefix of the table, and a lock-free pass up
  // to the first free entry sees every region set before the caller's op was staged. It
  // runs for every read into the arena, so it stops there rather than scan all 16.
  for (auto& r : seg.hdr->regions) {
    if (!load_acquire(&r.name[0])) break;
    uint64_t o = load_relaxed(&r.offset), s = load_relaxed(&r.size);
    if (offset < o + s && o < offset + len) return true;
  }
  return false;
}

int region_get(Segment& seg, const char* name, uint64_t* offset, uint64_t* size) {
  SegmentHeader* h = seg.hdr;
  LockResult lr = robust_lock_acquire(&h->regions_lock, 2000000000);
  if (lr == LockResult::TimedOut || lr == LockResult::Error) return -ETIMEDOUT;
  int rc = -ENOENT;
  for (auto& r : h->regions) {
    if (r.name[0] && strncmp(r.name, name, sizeof(r.name)) == 0) {
      uint64_t o = r.offset, s = r.size;  // read once, then validated
      rc = (o <= seg.arena.size && seg.arena.size - o >= s) ? 0 : -EINVAL;
      *offset = o;
      *size = s;
      break;
    }
  }
  robust_lock_release(&h->regions_lock);
  return rc;
}

CompleteInfo deliver_completion(Segment& seg, uint64_t ud, int32_t res, uint32_t reaper_slot, RingShared* rs,
                                WakeSet& wake) {
  CompleteInfo info = handle_complete(seg.handles, ud, res, reaper_slot, kind_action, &seg);
  switch (info.outcome) {
    case CompleteOutcome::Delivered:
      if (info.owner < seg.hdr->max_slots) wake.insert(info.owner);
      break;
    case CompleteOutcome::OrphanFreed:
      if (rs) stat_add(&rs->stat_orphans_reaped, (uint64_t)1);
      wake.orphans_freed++;
      break;
    case CompleteOutcome::Stale: if (rs) stat_add(&rs->stat_stale_cqes, (uint64_t)1); break;
    case CompleteOutcome::Corrupt:
      if (rs) stat_add(&rs->stat_corrupt_cqes, (uint64_t)1);
      stat_add(&seg.hdr->stat_corrupt_reports, (uint64_t)1);
      break;
  }
  if (info.kind == 0xffff) stat_add(&seg.hdr->stat_corrupt_reports, (uint64_t)1);
  return info;
}

void ring_slot(Segment& seg, uint32_t slot) {
  int fd = slot < seg.hdr->max_slots && seg.local_wake ? seg.local_wake[slot].load(std::memory_order_acquire) : -1;
  if (fd >= 0) {
    uint64_t one = 1;  // the write is a full barrier: the COMPLETED state is visible first
    ssize_t w = write(fd, &one, sizeof(one));
    (void)w;
    return;
  }
  slot_ring_doorbell(&seg.slots[slot]);
}

void ring_doorbells(Segment& seg, const WakeSet& wake) {
  if (wake.orphans_freed) reap_demand_reconcile(seg);  // the last orphan may be gone: watchers can sleep
  if (wake.all) {  // more distinct issuers than the set holds: ring every active slot
    for (uint32_t s = 0; s < seg.hdr->max_slots; s++)
      if (load_acquire(&seg.slots[s].state) == SLOT_ACTIVE) ring_slot(seg, s);
    return;
  }
  for (uint32_t i = 0; i < wake.n; i++) ring_slot(seg, wake.slots[i]);
}

bool segment_running(Segment& seg) { return load_acquire(&seg.hdr->run_state) == RUN_RUNNING; }
bool segment_accepts_io(Segment& seg, bool shutdown_exempt) {
  uint32_t st = load_acquire(&seg.hdr->run_state);
  return st == RUN_RUNNING || (shutdown_exempt && st == RUN_STOPPING);
}

int arena_alloc(Segment& seg, uint64_t size, uint64_t align, uint64_t* offset) {
  uint64_t* used = &seg.hdr->arena_used;
  for (;;) {
    uint64_t cur = load_acquire(used);
    uint64_t start = (cur + align - 1) / align * align;
    if (start < cur || start + size > seg.arena.size || start + size < start) return -ENOSPC;
    if (cas(used, &cur, start + size)) {
      *offset = start;
      return 0;
    }
  }
}

namespace {
uint32_t slot_state_of(void* ctx, uint32_t slot) {
  auto* seg = static_cast<Segment*>(ctx);
  return slot < seg->hdr->max_slots ? load_acquire(&seg->slots[slot].state) : (uint32_t)SLOT_FREE;
}
}  // namespace

VerifyCounts segment_verify_handles(Segment& seg, bool repair, std::vector<HandleAnomaly>* out, uint32_t max_out) {
  SegmentHeader* h = seg.hdr;
  VerifyCounts c = handles_verify(seg.handles, h->max_slots, h->ring_count ? h->ring_count : h->configured_rings,
                                  slot_state_of, &seg, repair, out, max_out);
  if (c.found) {
    stat_add(&h->stat_integrity_anomalies, (uint64_t)c.found);
    stat_add(&h->stat_corrupt_reports, (uint64_t)c.found);
  }
  if (c.repaired) stat_add(&h->stat_integrity_repairs, (uint64_t)c.repaired);
  handles_recount_orphans(seg.handles);
  reap_demand_reconcile(seg);
  return c;
}

}  // namespace rm
