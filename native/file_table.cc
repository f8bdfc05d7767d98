#include "file_table.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomics.h"
#include "file_sync.h"
#include "io_method.h"
#include "segment.h"

namespace rm {

int file_claim(FileEntry* files, uint32_t count) {
  for (uint32_t i = 0; i < count; i++) {
    uint32_t expected = F_FREE;
    if (cas(&files[i].state, &expected, (uint32_t)F_OPENING)) {
      fetch_add(&files[i].generation, 1u);
      return (int)i;
    }
  }
  return -1;
}

void file_publish(FileEntry* e) { store_release(&e->state, (uint32_t)F_OPEN); }

void file_release(FileEntry* e) { store_release(&e->state, (uint32_t)F_FREE); }

int file_lookup(FileEntry* files, uint32_t count, double id, uint32_t* flags_out) {
  if (!(id >= 0) || id != std::floor(id) || id > 9007199254740991.0) return -1;
  uint64_t v = (uint64_t)id;
  uint32_t slot = (uint32_t)(v % 65536u);
  uint64_t gen = v / 65536u;
  if (slot >= count || gen > 0xffffffffull) return -1;
  FileEntry* e = &files[slot];
  if (load_acquire(&e->state) != F_OPEN) return -1;
  if (load_relaxed(&e->generation) != (uint32_t)gen) return -1;
  if (flags_out) *flags_out = load_relaxed(&e->open_flags);
  return (int)slot;
}

bool file_path_names(int dir_fd, const FileEntry* e, uint64_t dev, uint64_t ino) {
  char path[kMaxRelPath];
  memcpy(path, e->path, kMaxRelPath);
  path[kMaxRelPath - 1] = 0;  // shared memory: copied once, then used
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = (int)syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
  if (fd < 0) return false;
  struct stat st;
  bool same = fstat(fd, &st) == 0 && (uint64_t)st.st_dev == dev && (uint64_t)st.st_ino == ino;
  close(fd);
  return same;
}

void fd_skip_atime(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0 && !(fl & O_NOATIME)) (void)fcntl(fd, F_SETFL, fl | O_NOATIME);
}

namespace {
// A stopped (SIGSTOPped) holder of the table's lock: an error, never a hang.
constexpr int64_t kFilesLockTimeoutNs = 2000000000;
constexpr uint32_t kCreationFlags = O_CREAT | O_EXCL | O_TRUNC;  // how an fd was made, not what it is
}  // namespace

int file_open(Segment& seg, const char* rel_path, int flags, int mode, FileOpenResult* r) {
  bool created = false;
  int fd = open_beneath(seg.data_dir_fd, rel_path, flags, mode, &created);
  if (fd < 0) {
    r->failed = FileOpenStep::Open;
    return fd;
  }
  fd_skip_atime(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    r->failed = FileOpenStep::Stat;
    return -e;
  }
  if (created) {
    int rc = dir_sync_parents(seg, rel_path, &r->failed_dir);
    if (rc < 0) {
      close(fd);
      r->failed = FileOpenStep::DirSync;
      return rc;
    }
  }
  uint32_t access = (uint32_t)flags & ~kCreationFlags;
  LockResult lr = robust_lock_acquire(&seg.hdr->files_lock, kFilesLockTimeoutNs);
  if (lr == LockResult::TimedOut || lr == LockResult::Error) {
    close(fd);
    r->failed = FileOpenStep::Lock;
    return -ETIMEDOUT;
  }
  for (uint32_t i = 0; i < seg.hdr->max_files; i++) {
    FileEntry* f = &seg.files[i];
    if (load_acquire(&f->state) != F_OPEN || f->dev != (uint64_t)st.st_dev || f->ino != (uint64_t)st.st_ino ||
        (load_relaxed(&f->open_flags) & ~kCreationFlags) != access)
      continue;
    // Same device and inode number, but is it the same file? Not if the entry's path no
    // longer names it: renamed away, or deleted and its inode number reused.
    if (!file_path_names(seg.data_dir_fd, f, (uint64_t)st.st_dev, (uint64_t)st.st_ino)) continue;
    // Already open with the same access: one identity, one id. Our fd is not needed.
    f->open_count++;
    f->ref_epoch++;
    if (flags & O_TRUNC) file_sync_entry_opened(seg, f, (uint64_t)st.st_size, true);  // its size must be synced
    uint32_t gen = load_relaxed(&f->generation);
    robust_lock_release(&seg.hdr->files_lock);
    close(fd);
    r->id = file_id_of(i, gen);
    return 0;
  }
  int slot = file_claim(seg.files, seg.hdr->max_files);
  if (slot < 0) {
    robust_lock_release(&seg.hdr->files_lock);
    close(fd);
    r->failed = FileOpenStep::TableFull;
    return -EMFILE;
  }
  FileEntry* e = &seg.files[slot];
  size_t len = strnlen(rel_path, kMaxRelPath - 1);
  memset(e->path, 0, sizeof(e->path));
  memcpy(e->path, rel_path, len);
  store_relaxed(&e->open_flags, (uint32_t)flags);
  store_relaxed(&e->opener_pid, (int32_t)getpid());
  e->dev = (uint64_t)st.st_dev;
  e->ino = (uint64_t)st.st_ino;
  e->open_count = 1;
  store_relaxed(&e->pool_tagged, 0u);
  file_sync_entry_opened(seg, e, (uint64_t)st.st_size, created || (flags & O_TRUNC));
  uint32_t gen = load_relaxed(&e->generation);
  int rc = io_method(seg).install_file(seg, (uint32_t)slot, gen, fd);  // takes the fd
  if (rc < 0) {
    file_release(e);
    robust_lock_release(&seg.hdr->files_lock);
    r->failed = FileOpenStep::Install;
    return rc;
  }
  file_publish(e);
  robust_lock_release(&seg.hdr->files_lock);
  r->id = file_id_of((uint32_t)slot, gen);
  return 0;
}

// Under files_lock, each step below is one store to the entry (a decrement, or nothing
// until the final close's CAS), so a closer killed at any instruction leaves the entry
// consistent for the next holder (the robust lock hands it over): at worst its reference
// stays counted, like a dead process's handles.
FileClose file_close(Segment& seg, double id, bool force, bool* needs_fsync, uint32_t* epoch) {
  RobustGuard guard(&seg.hdr->files_lock, kFilesLockTimeoutNs);
  if (!guard.held()) return FileClose::NotOpen;
  int slot = file_lookup(seg.files, seg.hdr->max_files, id, nullptr);
  if (slot < 0) return FileClose::NotOpen;
  FileEntry* e = &seg.files[slot];
  if (e->open_count > 1) {  // other handles (any process) still use it
    e->open_count--;
    return FileClose::Released;
  }
  // The last handle, but one was added (and closed again: it was not the last) since the
  // caller prepared the last close: prepare again.
  if (epoch && e->ref_epoch != *epoch) {
    *epoch = e->ref_epoch;
    return FileClose::Reopened;
  }
  // The last handle: the entry's sync request would go with it, so the file is synced first.
  if (!force && file_sync_pending(e)) {
    *needs_fsync = file_sync_needs_fsync(e);
    return FileClose::SyncFirst;
  }
  uint32_t expected = F_OPEN;
  if (!cas(&e->state, &expected, (uint32_t)F_CLOSING)) return FileClose::NotOpen;
  e->open_count = 0;
  io_method(seg).remove_file(seg, (uint32_t)slot);  // in-flight IO keeps its own reference
  file_release(e);
  return FileClose::Closed;
}

FileClose file_close_unless_last(Segment& seg, double id, uint32_t* epoch) {
  RobustGuard guard(&seg.hdr->files_lock, kFilesLockTimeoutNs);
  if (!guard.held()) return FileClose::NotOpen;
  int slot = file_lookup(seg.files, seg.hdr->max_files, id, nullptr);
  if (slot < 0) return FileClose::NotOpen;
  FileEntry* e = &seg.files[slot];
  if (e->open_count > 1) {
    e->open_count--;
    return FileClose::Released;
  }
  *epoch = e->ref_epoch;
  return FileClose::Last;
}

FilePoolTag file_pool_tag(Segment& seg, double id) {
  int slot = file_lookup(seg.files, seg.hdr->max_files, id, nullptr);
  if (slot < 0) return FilePoolTag::Ok;
  FileEntry* e = &seg.files[slot];
  if (load_acquire(&e->pool_tagged)) return FilePoolTag::Ok;
  // First page of this id: decide under the lock, so two entries of one file cannot both
  // be marked by processes deciding at the same instant.
  RobustGuard guard(&seg.hdr->files_lock, kFilesLockTimeoutNs);
  if (!guard.held()) return FilePoolTag::LockTimeout;  // refused, never guessed
  if (file_lookup(seg.files, seg.hdr->max_files, id, nullptr) != slot) return FilePoolTag::Ok;
  for (uint32_t i = 0; i < seg.hdr->max_files; i++) {
    FileEntry* f = &seg.files[i];
    if ((int)i == slot || load_acquire(&f->state) != F_OPEN || !load_relaxed(&f->pool_tagged) || f->dev != e->dev || f->ino != e->ino)
      continue;
    // The same device and inode only name the same file while the entry's path still does
    // (an inode number is reused after a delete).
    if (file_path_names(seg.data_dir_fd, f, f->dev, f->ino)) return FilePoolTag::Aliased;
  }
  store_release(&e->pool_tagged, 1u);
  return FilePoolTag::Ok;
}

bool file_ref(Segment& seg, double id) {
  RobustGuard guard(&seg.hdr->files_lock, kFilesLockTimeoutNs);
  if (!guard.held()) return false;
  int slot = file_lookup(seg.files, seg.hdr->max_files, id, nullptr);
  if (slot >= 0) {
    seg.files[slot].open_count++;
    seg.files[slot].ref_epoch++;
  }
  return slot >= 0;
}

bool file_describe(Segment& seg, double id, FileDescription* out) {
  uint32_t flags = 0;
  int slot = file_lookup(seg.files, seg.hdr->max_files, id, &flags);
  if (slot < 0) return false;
  memcpy(out->path, seg.files[slot].path, kMaxRelPath);  // shared memory: copied once, then used
  out->path[kMaxRelPath - 1] = 0;
  out->flags = flags;
  out->slot = (uint32_t)slot;
  return true;
}

}  // namespace rm
