// Durability of data files and directories: the sync requests a checkpoint must honour
// before it moves the redo point, and the failed state of a data-file or directory sync.
// This file owns FileSyncShared (in the segment header) and the sync fields of FileEntry.
//
// Sync requests (PostgreSQL's sync.c, without a queue: the request lives in the file's
// table entry, so it outlives the writer and is there for whichever process syncs):
//   - A submission that writes a file marks its entry with the current `cycle`
//     (dirty_cycle = max(dirty_cycle, cycle)) after its IO handles are RESERVED and
//     before the write can reach the kernel (in ring_submit under the submit lock; in
//     thread_backend_submit under tb_lock). Two loads in the common case; no
//     read-modify-write unless the mark changes.
//   - A sync pass (a checkpoint, or the last close of a file with unsynced writes) bumps
//     `cycle` (returning C), waits for every IO handle that was RESERVED, or SUBMITTED
//     for a write, when it looked (the write barrier: any process, either backend), then
//     syncs every entry with dirty_cycle > synced_cycle and sets synced_cycle =
//     max(synced_cycle, C) on each one that succeeded.
//   Why that is enough: a writer that read a cycle <= C reserved its handle before it
//   read (a seq_cst fence on both sides orders the writer's reserve-then-read against
//   the pass's bump-then-scan), so the pass saw that handle in flight and waited for it:
//   the write is in the page cache before the sync, and its mark is visible to the
//   pass's scan of the entries. A writer that read C+1 or later leaves dirty_cycle > C =
//   synced_cycle, so the next pass syncs its file even if the write lands after this
//   sync. A writer killed at any instruction leaves at most a mark without a write (an
//   extra sync); a dead issuer's handles are completed by whoever reaps or cleans up.
//   The cycle fields are never reset when an entry is reused: a late mark can only cause
//   an extra sync of the next file in that slot, never hide a write.
//   WAL writes (is_wal_write_kind) are not marked: the WAL syncs its own
//   segments before it reports anything durable. O_DSYNC files are not marked either.
//   fsync or fdatasync: fdatasync unless a write since the last sync may have extended
//   the file (it ended past size_hint) or the file was created or truncated (meta_cycle).
//
// Failed state (fsyncgate): after a failed fsync the kernel may have dropped the dirty
// pages and marked them clean, so a retry "succeeds" with the data gone. The first
// fsync/fdatasync of any file (any issuer: a checkpoint, a last close, a user's op) or
// directory that fails with an error that can mean lost data latches `failed_errno`,
// never cleared: no checkpoint succeeds again, and the WAL refuses to report anything
// durable (wal_buffer.cc), until a restart recovers from the last good redo point.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "file_table.h"
#include "uring.h"

namespace rm {

struct Segment;

constexpr uint32_t kDirFaultPath = 64;

// Test hook (armed only through debugDirSyncFault, RINGMASTER_TEST_HOOKS=1): the
// skip+1-th directory sync whose path equals `path` (empty: any) fails with `error`
// without reaching the file system, as a failed fsync would (error 0: it is only
// counted in `fired`, and the sync runs).
struct DirSyncFault {
  uint32_t armed;
  uint32_t skip;     // matches to let through first (atomic countdown)
  int32_t error;     // negative errno
  uint32_t repeat;   // keep firing
  uint32_t fired;
  uint32_t pad;
  char path[kDirFaultPath];
};

struct FileSyncShared {
  uint64_t cycle;           // sync cycle; starts at 1, bumped by every sync pass
  uint32_t failed_errno;    // 0, or the positive errno of the first failed data/directory sync
  uint32_t failed_slot;     // its file slot, or ~0u for a directory
  uint64_t stat_syncs;      // data-file syncs completed by sync passes (checkpoints, last closes)
  uint64_t stat_fsyncs;     // ... of which fsync (the rest fdatasync)
  uint64_t stat_failures;   // failed data-file syncs, any issuer
  uint64_t stat_dir_syncs;  // directory fsyncs
  uint64_t stat_dir_failures;
  DirSyncFault dir_fault;
  // The last kDirLog directories synced (introspection: tests check that each create,
  // rename and removal path synced the directory it changed). Entry i % kDirLog.
  uint64_t dir_log_n;
  char dir_log[8][kDirFaultPath];
};
constexpr uint32_t kDirLog = 8;

// Results of a sync that do not mean lost data: it never ran (ECANCELED, EINTR, EFAULT
// from an exiting submitter, EAGAIN from a refused submission), or there is no file to
// sync (EBADF: the slot was closed or reused; EINVAL/EROFS/EOPNOTSUPP/ENOSYS: a file that
// cannot be synced, such as a pipe).
bool sync_error_loses_data(int32_t res);

// Submit path, under the ring's submit lock (threads backend: tb_lock), before any of
// `reqs` can reach the kernel: marks the files they write.
void note_submitted_writes(Segment& seg, const SqeRequest* reqs, uint32_t n);
// A new entry (files_lock held, before it is published): `size` from fstat; `changed`:
// the open created or truncated the file, so its inode needs an fsync at the next pass.
void file_sync_entry_opened(Segment& seg, FileEntry* e, uint64_t size, bool changed);
// Starts a sync pass: returns C, the cycle whose marks this pass covers once the write
// barrier is passed and every pending entry is synced.
uint64_t file_sync_begin(Segment& seg);
// The write barrier, taken after file_sync_begin: the IO handles that are RESERVED, or
// SUBMITTED for a write (to `file_slot` only, if it is not ~0u; the WAL's own writes
// excluded), as (index, generation).
struct HandleRef { uint32_t index; uint32_t gen; };
void write_barrier_scan(Segment& seg, uint32_t file_slot, std::vector<HandleRef>* out);
// How many of them are still in flight with that generation: RESERVED, or SUBMITTED for
// a write (a handle RESERVED at the scan may turn out to be a read or a sync).
uint32_t write_barrier_left(Segment& seg, uint32_t file_slot, const std::vector<HandleRef>& refs);
bool file_sync_pending(const FileEntry* e);
bool file_sync_needs_fsync(const FileEntry* e);
// A sync of `e` that started after the pass's drain succeeded (files_lock held).
void file_sync_done(Segment& seg, FileEntry* e, uint64_t cycle, bool fsync);
// Latches the failed state (first error wins) and counts it.
void file_sync_failed(Segment& seg, uint32_t slot, int32_t res);
// 0, or the positive errno of the failed state.
uint32_t file_sync_failed_errno(Segment& seg);
// fsyncs a directory: `path` relative to the data directory (RESOLVE_BENEATH; "." is the
// data directory itself), or absolute when `absolute` (an ancestor of the data
// directory, which the caller checked). Returns 0 or -errno; a failure that can mean lost
// data latches the failed state.
int dir_sync(Segment& seg, const char* path, bool absolute);
// Syncs every directory from the parent of `rel_path` up to the data directory ("."): a
// created file's name, and the names of directories above it someone may have just
// made. 0, or the first -errno (its directory in *failed_dir).
int dir_sync_parents(Segment& seg, const char* rel_path, std::string* failed_dir);
// openat2 beneath `dir_fd` with RESOLVE_BENEATH; with O_CREAT, also says whether this
// open made the file (*created). Returns the fd or -errno.
int open_beneath(int dir_fd, const char* path, int flags, int mode, bool* created);

// ---- what the sync-pass glue asks for (file_sync_napi.cc) ----------------------------
// The calls that read the file table take files_lock (bounded by a 2 s timeout: a
// stopped holder gives -ETIMEDOUT, never a hang).

// Open files with writes no pass covered, and whether each needs an fsync (not only
// fdatasync). 0 or -ETIMEDOUT.
struct PendingSync { uint64_t file_id; bool fsync; };
int file_sync_pending_list(Segment& seg, std::vector<PendingSync>* out);
// A pass synced file `file_id` (a sync that started after the pass's write barrier and
// succeeded): 1, or 0 if the id no longer names an open file (closed meanwhile: its last
// close synced it), or -ETIMEDOUT.
int file_sync_mark_synced(Segment& seg, double file_id, uint64_t cycle, bool fsync);
// Every open entry (introspection). 0 or -ETIMEDOUT.
struct OpenFileRow { uint64_t file_id; std::string path; uint32_t refs; bool pending; };
int file_sync_open_files(Segment& seg, std::vector<OpenFileRow>* out);
// The failed state and the counters.
struct FileSyncReport {
  uint64_t cycle;
  uint32_t failed_errno;
  bool failed_path_known;      // a data file's path (else a directory, if failed_errno)
  std::string failed_path;
  uint64_t syncs, fsyncs, failures, dir_syncs, dir_failures;
  std::vector<std::string> recent_dir_syncs;  // the last kDirLog, oldest first
};
void file_sync_report(Segment& seg, FileSyncReport* out);
// dir_sync of a path a caller gave: -EINVAL for an empty path, a NUL inside, or an
// absolute path that is not the data directory or one of its ancestors.
int dir_sync_checked(Segment& seg, const std::string& path, bool absolute);
// Test hook: arms the directory-sync fault (see DirSyncFault); -ENAMETOOLONG if `path`
// does not fit. dir_sync_fault_disarm turns it off.
int dir_sync_fault_arm(Segment& seg, const std::string& path, int32_t error, uint32_t skip, bool repeat);
void dir_sync_fault_disarm(Segment& seg);
uint32_t dir_sync_fault_fired(Segment& seg);

}  // namespace rm
