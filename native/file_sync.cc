#include "file_sync.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomics.h"
#include "completion_kinds.h"
#include "robust_lock.h"
#include "segment.h"

namespace rm {

namespace {

// Monotonic max of a shared 64-bit word. Bounded: every failed CAS means the word grew.
void cas_max(uint64_t* p, uint64_t v) {
  uint64_t cur = load_acquire(p);
  while (cur < v && !cas(p, &cur, v)) {
  }
}

bool dir_fault_fires(DirSyncFault* f, const char* path, int32_t* err) {
  if (!load_relaxed(&f->armed)) return false;
  char want[kDirFaultPath];
  memcpy(want, f->path, sizeof(want));
  want[kDirFaultPath - 1] = 0;  // shared memory: copied once, then used
  if (want[0] && strcmp(want, path) != 0) return false;
  for (;;) {  // countdown: exactly the skip+1-th match fires
    uint32_t left = load_relaxed(&f->skip);
    if (left == 0) break;
    if (cas(&f->skip, &left, left - 1)) return false;
  }
  if (!load_relaxed(&f->repeat)) {
    uint32_t one = 1;
    if (!cas(&f->armed, &one, 0u)) return false;  // another match took it
  }
  fetch_add(&f->fired, 1u);
  int32_t e = load_relaxed(&f->error);
  if (e == 0) return false;  // observe only
  *err = e < 0 ? e : -EIO;
  return true;
}

void log_dir(FileSyncShared* fs, const char* path) {
  uint64_t i = fetch_add(&fs->dir_log_n, (uint64_t)1) % kDirLog;
  char* d = fs->dir_log[i];
  size_t n = strnlen(path, kDirFaultPath - 1);
  memcpy(d, path, n);
  d[n] = 0;
}

}  // namespace

bool sync_error_loses_data(int32_t res) {
  if (res >= 0) return false;
  switch (-res) {
    case ECANCELED: case EINTR: case EFAULT: case EAGAIN:      // never ran
    case EBADF: case EINVAL: case EROFS: case EOPNOTSUPP: case ENOSYS:  // nothing that can be synced
      return false;
    default:
      return true;
  }
}

void note_submitted_writes(Segment& seg, const SqeRequest* reqs, uint32_t n) {
  bool any = false;
  for (uint32_t i = 0; i < n && !any; i++) any = reqs[i].op == OP_WRITE && !is_wal_write_kind(reqs[i].kind);
  if (!any) return;
  FileSyncShared* fs = &seg.hdr->file_sync;
  // Pairs with the fence in file_sync_begin: our handles were RESERVED before this load,
  // so a pass that bumped the cycle after we read it sees them in flight.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  uint64_t c = load_relaxed(&fs->cycle);
  for (uint32_t i = 0; i < n; i++) {
    const SqeRequest& q = reqs[i];
    if (q.op != OP_WRITE || is_wal_write_kind(q.kind) || q.file_slot >= seg.hdr->max_files) continue;
    // No generation check: on io_uring the kernel resolves the fixed-file slot when it
    // issues the write, so the slot's current file is the one written. Marking a file
    // that is not written costs an extra sync, nothing more.
    FileEntry* e = &seg.files[q.file_slot];
    if (load_relaxed(&e->open_flags) & O_DSYNC) continue;  // durable when it completes
    uint64_t end = q.offset + q.len;
    if (end > load_relaxed(&e->size_hint)) {  // may extend the file: its size must be synced too
      cas_max(&e->meta_cycle, c);
      cas_max(&e->size_hint, end);
    }
    if (load_relaxed(&e->dirty_cycle) < c) cas_max(&e->dirty_cycle, c);
  }
}

void file_sync_entry_opened(Segment& seg, FileEntry* e, uint64_t size, bool changed) {
  store_relaxed(&e->size_hint, size);
  if (!changed) return;
  uint64_t c = load_acquire(&seg.hdr->file_sync.cycle);
  cas_max(&e->meta_cycle, c);
  cas_max(&e->dirty_cycle, c);
}

uint64_t file_sync_begin(Segment& seg) {
  uint64_t c = __atomic_fetch_add(&seg.hdr->file_sync.cycle, (uint64_t)1, __ATOMIC_SEQ_CST);
  __atomic_thread_fence(__ATOMIC_SEQ_CST);  // pairs with the fence in note_submitted_writes
  return c;
}

// A submitted op the barrier waits for: a write that may carry a sync request (the WAL's
// own writes are synced by the WAL, and are left out).
static bool barrier_op(IoHandle* h, uint32_t file_slot) {
  return load_relaxed(&h->op) == OP_WRITE && !is_wal_write_kind(load_relaxed(&h->kind)) &&
         (file_slot == ~0u || load_relaxed(&h->file_slot) == file_slot);
}

void write_barrier_scan(Segment& seg, uint32_t file_slot, std::vector<HandleRef>* out) {
  HandleTable& t = seg.handles;
  for (uint32_t i = 0; i < t.count; i++) {
    IoHandle* h = &t.handles[i];
    uint64_t w = load_acquire(&h->word);  // the op fields were written before the SUBMITTED CAS
    uint32_t st = hw_state(w);
    // A RESERVED handle's submitter may be between reserving and marking: its op is not
    // known yet, so it is waited for until it is submitted (then judged) or gone.
    if (st == H_RESERVED || (st == H_SUBMITTED && barrier_op(h, file_slot))) out->push_back({i, hw_gen(w)});
  }
}

uint32_t write_barrier_left(Segment& seg, uint32_t file_slot, const std::vector<HandleRef>& refs) {
  uint32_t left = 0;
  for (const HandleRef& r : refs) {
    if (r.index >= seg.handles.count) continue;
    IoHandle* h = &seg.handles.handles[r.index];
    uint64_t w = load_acquire(&h->word);  // pairs with the completer's release CAS
    if (hw_gen(w) != r.gen) continue;  // completed and collected
    uint32_t st = hw_state(w);
    if (st == H_SUBMITTED && barrier_op(h, file_slot)) left++;
    // A reserver that died can no longer submit: its handle waits for its slot's cleanup,
    // which is not this barrier's business (a dead submitter's published SQEs are SUBMITTED).
    if (st == H_RESERVED) {
      uint32_t owner = hw_owner(w);
      if (owner >= seg.hdr->max_slots || !slot_owner_dead(&seg.slots[owner])) left++;
    }
  }
  return left;
}

bool file_sync_pending(const FileEntry* e) {
  return load_acquire(&e->dirty_cycle) > load_acquire(&e->synced_cycle);
}

bool file_sync_needs_fsync(const FileEntry* e) {
  return load_acquire(&e->meta_cycle) > load_acquire(&e->synced_cycle);
}

void file_sync_done(Segment& seg, FileEntry* e, uint64_t cycle, bool fsync) {
  cas_max(&e->synced_cycle, cycle);
  stat_add(&seg.hdr->file_sync.stat_syncs, (uint64_t)1);
  if (fsync) stat_add(&seg.hdr->file_sync.stat_fsyncs, (uint64_t)1);
}

void file_sync_failed(Segment& seg, uint32_t slot, int32_t res) {
  FileSyncShared* fs = &seg.hdr->file_sync;
  uint32_t zero = 0;
  uint32_t e = (uint32_t)(res < 0 ? -res : res);
  if (e == 0) e = EIO;
  if (cas(&fs->failed_errno, &zero, e)) store_release(&fs->failed_slot, slot);
  if (slot == ~0u) stat_add(&fs->stat_dir_failures, (uint64_t)1);
  else stat_add(&fs->stat_failures, (uint64_t)1);
}

uint32_t file_sync_failed_errno(Segment& seg) { return load_acquire(&seg.hdr->file_sync.failed_errno); }

int dir_sync(Segment& seg, const char* path, bool absolute) {
  FileSyncShared* fs = &seg.hdr->file_sync;
  int32_t injected = 0;
  log_dir(fs, path);
  if (dir_fault_fires(&fs->dir_fault, path, &injected)) {
    stat_add(&fs->stat_dir_syncs, (uint64_t)1);
    if (sync_error_loses_data(injected)) file_sync_failed(seg, ~0u, injected);
    return injected;
  }
  int fd;
  if (absolute) {
    fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } else {
    struct open_how how = {};
    how.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    fd = (int)syscall(SYS_openat2, seg.data_dir_fd, path, &how, sizeof(how));
  }
  // A directory this process may not read cannot be opened to sync it (as PostgreSQL's
  // fsync_fname, that is not an error): its name is as durable as we can make it.
  if (fd < 0) return errno == EACCES ? 0 : -errno;
  int rc = fsync(fd) == 0 ? 0 : -errno;
  close(fd);
  // Some file systems cannot sync a directory at all (EINVAL) or a read-only one (EROFS).
  if (rc == -EINVAL || rc == -EROFS || rc == -EBADF) rc = 0;
  stat_add(&fs->stat_dir_syncs, (uint64_t)1);
  if (sync_error_loses_data(rc)) file_sync_failed(seg, ~0u, rc);
  return rc;
}

int dir_sync_parents(Segment& seg, const char* rel_path, std::string* failed_dir) {
  std::string dir = rel_path;
  for (;;) {
    size_t slash = dir.find_last_of('/');
    // Repeated slashes ("a//b") name the same directory: skip the empty components.
    while (slash != std::string::npos && slash > 0 && dir[slash - 1] == '/') slash--;
    dir = slash == std::string::npos || slash == 0 ? std::string(".") : dir.substr(0, slash);
    int rc = dir_sync(seg, dir.c_str(), false);
    if (rc < 0) {
      if (failed_dir) *failed_dir = dir;
      return rc;
    }
    if (dir == ".") return 0;
  }
}

int open_beneath(int dir_fd, const char* path, int flags, int mode, bool* created) {
  *created = false;
  struct open_how how = {};
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  auto attempt = [&](int f) {
    how.flags = (uint64_t)(f | O_CLOEXEC);
    how.mode = (f & O_CREAT) ? (uint64_t)mode : 0;
    int fd = (int)syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
    return fd < 0 ? -errno : fd;
  };
  if (!(flags & O_CREAT)) return attempt(flags);
  if (flags & O_EXCL) {
    int fd = attempt(flags);
    *created = fd >= 0;
    return fd;
  }
  // O_CREAT alone does not say whether it created: open without it first, then create
  // exclusively; a racing creator makes the second step fail with EEXIST, so try again.
  int fd = -ENOENT;
  for (int tries = 0; tries < 16; tries++) {
    fd = attempt(flags & ~O_CREAT);
    if (fd != -ENOENT) return fd;
    fd = attempt(flags | O_EXCL);
    if (fd >= 0) {
      *created = true;
      return fd;
    }
    if (fd != -EEXIST) return fd;
  }
  return fd;
}

// ---- what the sync-pass glue asks for ---------------------------------------------
namespace {

constexpr int64_t kFilesLockTimeoutNs = 2000000000;

std::string entry_path(const FileEntry* e) {
  char path[kMaxRelPath];
  memcpy(path, e->path, kMaxRelPath);  // shared memory: copied once, then terminated
  path[kMaxRelPath - 1] = 0;
  return path;
}

}  // namespace

int file_sync_pending_list(Segment& seg, std::vector<PendingSync>* out) {
  RobustGuard lock(&seg.hdr->files_lock, kFilesLockTimeoutNs);
  if (!lock.held()) return -ETIMEDOUT;
  for (uint32_t i = 0; i < seg.hdr->max_files; i++) {
    FileEntry* e = &seg.files[i];
    if (load_acquire(&e->state) != F_OPEN || !file_sync_pending(e)) continue;
    out->push_back({file_id_of(i, load_relaxed(&e->generation)), file_sync_needs_fsync(e)});
  }
  return 0;
}

int file_sync_mark_synced(Segment& seg, double file_id, uint64_t cycle, bool fsync) {
  RobustGuard lock(&seg.hdr->files_lock, kFilesLockTimeoutNs);
  if (!lock.held()) return -ETIMEDOUT;
  int slot = file_lookup(seg.files, seg.hdr->max_files, file_id, nullptr);
  if (slot < 0) return 0;
  file_sync_done(seg, &seg.files[slot], cycle, fsync);
  return 1;
}

int file_sync_open_files(Segment& seg, std::vector<OpenFileRow>* out) {
  RobustGuard lock(&seg.hdr->files_lock, kFilesLockTimeoutNs);
  if (!lock.held()) return -ETIMEDOUT;
  for (uint32_t i = 0; i < seg.hdr->max_files; i++) {
    FileEntry* e = &seg.files[i];
    if (load_acquire(&e->state) != F_OPEN) continue;
    out->push_back({file_id_of(i, load_relaxed(&e->generation)), entry_path(e), e->open_count, file_sync_pending(e)});
  }
  return 0;
}

void file_sync_report(Segment& seg, FileSyncReport* out) {
  FileSyncShared* fs = &seg.hdr->file_sync;
  out->failed_errno = load_acquire(&fs->failed_errno);
  out->cycle = load_acquire(&fs->cycle);
  uint32_t fslot = load_acquire(&fs->failed_slot);
  out->failed_path_known = out->failed_errno && fslot < seg.hdr->max_files;
  if (out->failed_path_known) out->failed_path = entry_path(&seg.files[fslot]);
  out->syncs = load_relaxed(&fs->stat_syncs);
  out->fsyncs = load_relaxed(&fs->stat_fsyncs);
  out->failures = load_relaxed(&fs->stat_failures);
  out->dir_syncs = load_relaxed(&fs->stat_dir_syncs);
  out->dir_failures = load_relaxed(&fs->stat_dir_failures);
  uint64_t logged = load_acquire(&fs->dir_log_n);
  for (uint64_t i = logged > kDirLog ? logged - kDirLog : 0; i < logged; i++) {
    char d[kDirFaultPath];
    memcpy(d, fs->dir_log[i % kDirLog], sizeof(d));
    d[kDirFaultPath - 1] = 0;
    out->recent_dir_syncs.push_back(d);
  }
}

int dir_sync_checked(Segment& seg, const std::string& path, bool absolute) {
  if (path.empty() || path.find('\0') != std::string::npos) return -EINVAL;
  if (absolute) {
    std::string data_dir(seg.hdr->data_dir, strnlen(seg.hdr->data_dir, sizeof(seg.hdr->data_dir)));
    bool ancestor = path == data_dir || path == "/" ||
                    (data_dir.size() > path.size() && data_dir.compare(0, path.size(), path) == 0 && data_dir[path.size()] == '/');
    if (path[0] != '/' || !ancestor) return -EINVAL;
  }
  return dir_sync(seg, path.c_str(), absolute);
}

int dir_sync_fault_arm(Segment& seg, const std::string& path, int32_t error, uint32_t skip, bool repeat) {
  DirSyncFault* f = &seg.hdr->file_sync.dir_fault;
  store_release(&f->armed, 0u);
  if (path.size() >= kDirFaultPath) return -ENAMETOOLONG;
  memset(f->path, 0, sizeof(f->path));
  memcpy(f->path, path.data(), path.size());
  store_relaxed(&f->error, error);
  store_relaxed(&f->skip, skip);
  store_relaxed(&f->repeat, repeat ? 1u : 0u);
  store_relaxed(&f->fired, 0u);
  store_release(&f->armed, 1u);
  return 0;
}

void dir_sync_fault_disarm(Segment& seg) { store_release(&seg.hdr->file_sync.dir_fault.armed, 0u); }

uint32_t dir_sync_fault_fired(Segment& seg) { return load_relaxed(&seg.hdr->file_sync.dir_fault.fired); }

}  // namespace rm
