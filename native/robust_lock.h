// A process-shared robust mutex living in the segment. If its holder is killed
// (even with SIGKILL), the kernel's robust-futex list hands the next locker
// EOWNERDEAD; we then make the mutex consistent and tell the caller so it can repair
// whatever the dead holder was in the middle of. Waits are bounded: a stopped
// (SIGSTOP) holder yields a timeout error, never a hang.
#pragma once
#include <pthread.h>
#include <cstdint>

namespace rm {

struct RobustLock {
  pthread_mutex_t mutex;
  uint32_t holder_pid;        // diagnostic only, written by the holder
  uint32_t owner_died_count;  // how often a holder died holding it
};

enum class LockResult { Acquired, AcquiredOwnerDied, TimedOut, Error };

void robust_lock_init(RobustLock* lock);
LockResult robust_lock_acquire(RobustLock* lock, int64_t timeout_ns);
void robust_lock_release(RobustLock* lock);

// Scoped hold of a RobustLock: released on every path out of the scope.
class RobustGuard {
 public:
  RobustGuard(RobustLock* lock, int64_t timeout_ns) : lock_(lock) {
    LockResult r = robust_lock_acquire(lock, timeout_ns);
    held_ = r == LockResult::Acquired || r == LockResult::AcquiredOwnerDied;
  }
  ~RobustGuard() { if (held_) robust_lock_release(lock_); }
  RobustGuard(const RobustGuard&) = delete;
  RobustGuard& operator=(const RobustGuard&) = delete;
  bool held() const { return held_; }

 private:
  RobustLock* lock_;
  bool held_;
};

}  // namespace rm
