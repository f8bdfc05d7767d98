// One owner per data directory. The postmaster holds an exclusive open-file-description
// (OFD) lock on byte 0 of <dataDir>/postmaster.pid for its whole life; each forked worker
// holds a shared OFD lock on byte 1 for as long as it is attached. A second postmaster
// is refused while either is held: another live postmaster owns the directory, or
// workers of a postmaster that died are still attached to its (old) rings and may still
// write into the data files.
//
// OFD locks (not POSIX record locks): they belong to the open file description, so
// closing some other fd of the same file (a user reading postmaster.pid with fs) never
// drops them, two opens in one process conflict like two processes do, and the kernel
// releases them when the last fd of the description is closed, i.e. when the holder
// dies. The fds are O_CLOEXEC and never handed to children, so a forked worker never
// keeps the postmaster's lock alive.
#pragma once
#include <string>

namespace rm {

constexpr const char* kDataDirLockFile = "postmaster.pid";

enum DataDirLockStatus {
  kDataDirLocked = 0,           // acquired: *fd_out is the lock fd
  kDataDirHeldByPostmaster = 1, // byte 0 is held: another postmaster owns the directory
  kDataDirHeldByWorkers = 2,    // byte 1 is held: workers of an earlier postmaster are attached
};

// Postmaster: opens (creating, mode 0600) `lock_path`, takes byte 0 exclusively, writes
// `content`, then checks that no worker of an earlier postmaster holds byte 1. On
// kDataDirHeldByWorkers the previous content is written back and nothing is held.
// `previous` receives the file's content as found (the holder's identity). Returns a
// DataDirLockStatus, or -errno if the file cannot be opened, locked or written.
int datadir_lock(const char* lock_path, const std::string& content, int* fd_out, std::string* previous);

// Releases the postmaster's lock; with `clear`, empties the file first (a clean stop).
void datadir_unlock(int fd, bool clear);

// Forked worker: opens the existing `lock_path` and takes byte 1 shared (never blocks:
// nobody takes byte 1 exclusively). `content` receives the file's content read *after*
// the lock is held, so the caller can check it still names its own postmaster. Returns
// the fd, or -errno.
int datadir_share(const char* lock_path, std::string* content);

}  // namespace rm
