// The shared file table: one entry per open data file, indexed exactly like the
// rings' registered-file tables, so a file id means the same file in every process.
// io_uring backend: the opener installs its fd into every ring's fixed-file slot
// (ring-wide, usable by any process) and closes its own fd. Threads backend: each
// process opens `path` itself, lazily, beneath the data directory.
//
// id exposed to JS = generation * 65536 + slot; a closed-and-reused slot has a new
// generation, so a stale id is rejected rather than aliasing another file.
#pragma once
#include <cstdint>
#include <string>

namespace rm {

struct Segment;

enum FileState : uint32_t { F_FREE = 0, F_OPENING = 1, F_OPEN = 2, F_CLOSING = 3 };
constexpr uint32_t kMaxRelPath = 216;

// One entry per open file *identity* (device, inode, access flags): opening a file that
// is already open returns its id and counts a reference, so every process and the
// buffer pool (which tags pages by file id) see one file, never two aliases of it.
// open_count and the dedupe scan are guarded by SegmentHeader::files_lock.
struct FileEntry {
  uint32_t state;        // FileState; CAS only
  uint32_t generation;   // bumped on claim
  uint32_t open_flags;   // O_* flags the file was opened with (O_DIRECT...)
  int32_t opener_pid;
  uint32_t open_count;   // FileHandles open on it, in every process (files_lock)
  uint32_t ref_epoch;    // bumped with every new reference (files_lock): a last closer's
                         // writeback is stale if a handle came (and perhaps went) meanwhile
  uint32_t pool_tagged;  // 1 once the buffer pool has tagged a page with this entry's id
                         // (set under files_lock, read lock-free): see file_pool_tag
  uint32_t pad;
  uint64_t dev;          // st_dev and st_ino of the file: its identity
  uint64_t ino;
  // Sync requests (file_sync.h owns their protocol). Values of FileSyncShared::cycle,
  // monotonic for the slot: never reset when the entry is reused.
  uint64_t dirty_cycle;   // a write was submitted in this cycle (CAS max)
  uint64_t meta_cycle;    // ... one that may have changed the size, or the open created/truncated it
  uint64_t synced_cycle;  // every write marked up to this cycle is durable (CAS max)
  uint64_t size_hint;     // largest size the file is known to have reached (CAS max)
  char path[kMaxRelPath];  // relative to the data directory, NUL-terminated
};
static_assert(sizeof(FileEntry) == 296, "FileEntry layout is part of the segment ABI");

inline uint64_t file_id_of(uint32_t slot, uint32_t gen) { return (uint64_t)gen * 65536u + slot; }

int file_claim(FileEntry* files, uint32_t count);
void file_publish(FileEntry* e);
void file_release(FileEntry* e);
// Validates a JS-supplied id against the table: returns the slot or -1.
int file_lookup(FileEntry* files, uint32_t count, double id, uint32_t* flags_out);
// Whether the entry's path, resolved beneath `dir_fd` now, still names the file
// (dev, ino). An entry whose file was renamed, or deleted and its inode number given to
// a new file, must not be matched by identity: the path is how processes that have no
// fd yet (threads backend) reach the file.
bool file_path_names(int dir_fd, const FileEntry* e, uint64_t dev, uint64_t ino);

// Reads through `fd` stop updating the file's access time (O_NOATIME, set on the open
// file description, so every process and ring using that fd gets it). A read otherwise
// runs touch_atime on every call, found needless or not (relatime): about 5 % of a
// cached 4 KiB read's CPU. Best effort: the kernel refuses it (EPERM) unless this user
// owns the file or has CAP_FOWNER, and then reads update atime as before.
void fd_skip_atime(int fd);

// ---- the table's operations (each takes SegmentHeader::files_lock where it needs it) ----

// Which step of file_open failed.
enum class FileOpenStep { None, Open, Stat, DirSync, Lock, TableFull, Install };
struct FileOpenResult {
  uint64_t id = 0;                        // the file id, when it succeeded
  FileOpenStep failed = FileOpenStep::None;
  std::string failed_dir;                 // DirSync: the directory whose fsync failed
};
// Opens `rel_path` (1..kMaxRelPath-1 bytes, checked by the caller) beneath the data
// directory: RESOLVE_BENEATH, so -EXDEV if it would leave it. A file it creates has its
// directory entry synced before the id exists (nothing written to it can outlive its name
// in a power cut). A file already open with the same access (same device, inode and
// O_* flags other than O_CREAT/O_EXCL/O_TRUNC, and its entry's path still naming it) gets
// the same id and one more reference; otherwise a new entry, its fd handed to the IO
// method (io_uring: installed in every ring's file table). 0 and r->id, or -errno and
// r->failed: -ETIMEDOUT (Lock: the table's lock is held by a stopped process), -EMFILE
// (TableFull), or the failed system call's errno.
int file_open(Segment& seg, const char* rel_path, int flags, int mode, FileOpenResult* r);

enum class FileClose {
  Released,   // another handle (any process) still uses the file: one reference fewer
  Closed,     // the last handle: the entry is free and the IO method dropped the file
  NotOpen,    // the id names no open file (or the table's lock was not granted in time)
  SyncFirst,  // the last handle, with writes no sync pass has covered: nothing changed
  Last,       // file_close_unless_last: the last handle; nothing changed
  Reopened,   // the last handle, but a handle was added since `epoch`: nothing changed
};
// Gives back one handle on file `id`. SyncFirst (unless `force`): the caller syncs the file
// (file_sync.h) and closes again; *needs_fsync says whether its metadata must be synced too.
// With `epoch` (from file_close_unless_last), the last handle is not closed if a handle was
// added since (Reopened, *epoch updated): what the caller did before the last close (the
// buffer pool's writeback of the file's pages) may not cover that handle's changes.
FileClose file_close(Segment& seg, double id, bool force, bool* needs_fsync, uint32_t* epoch = nullptr);
// The "am I the last handle?" decision, atomic under files_lock: Released (one reference
// fewer: other handles, in any process, remain), Last (this is the only reference: nothing
// changed, *epoch set; the caller prepares the file for its last close, then calls
// file_close with that epoch), or NotOpen. Two processes closing the last two handles at
// once can never both see "not last": each decision and its decrement are one step.
FileClose file_close_unless_last(Segment& seg, double id, uint32_t* epoch);
// The buffer pool tags pages by file id, and one file opened with two access modes
// (readOnly and read-write, direct and not) has two entries, two ids: pages cached under
// both would be two copies of one block, and a read through one id would not see a change
// made through the other. So the pool caches each file under one id at a time: the first
// entry of an identity whose id tags a page is marked, and another entry of the same file
// is refused (Aliased) while the marked one is open. Ok: this id may tag pages (also when
// it names no open file: the pool's own checks answer that). Once marked, an entry stays
// so until it is freed, so the check after the first is one lookup and one load.
// LockTimeout: the first check could not take the table's lock (a stopped holder).
enum class FilePoolTag { Ok, Aliased, LockTimeout };
FilePoolTag file_pool_tag(Segment& seg, double id);
// One more handle on file `id`; false if the id names no open file.
bool file_ref(Segment& seg, double id);

struct FileDescription {
  char path[kMaxRelPath];  // NUL-terminated copy of the entry's path
  uint32_t flags;          // the O_* flags it was opened with
  uint32_t slot;           // its slot in the table (and the rings' file tables)
};
// What the entry behind `id` says; false if the id names no open file.
bool file_describe(Segment& seg, double id, FileDescription* out);

}  // namespace rm
