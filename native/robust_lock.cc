#include "robust_lock.h"

#include <cerrno>
#include <ctime>
#include <unistd.h>

#include "atomics.h"

namespace rm {

// holder_pid is diagnostic; getpid() is a system call, once per lock would be on every IO.
// A process-wide cache (not thread_local: in a shared library every access to that is a
// __tls_get_addr call). Node's child processes exec a new image, so it never goes stale.
static uint32_t g_pid = 0;
static uint32_t cached_pid() {
  uint32_t pid = __atomic_load_n(&g_pid, __ATOMIC_RELAXED);
  if (pid == 0) {
    pid = (uint32_t)getpid();
    __atomic_store_n(&g_pid, pid, __ATOMIC_RELAXED);
  }
  return pid;
}

void robust_lock_init(RobustLock* lock) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&lock->mutex, &attr);
  pthread_mutexattr_destroy(&attr);
  lock->holder_pid = 0;
  lock->owner_died_count = 0;
}

LockResult robust_lock_acquire(RobustLock* lock, int64_t timeout_ns) {
  // Uncontended (the common case, and a zero timeout): no clock read, no futex.
  int rc = pthread_mutex_trylock(&lock->mutex);
  if (rc == EBUSY) {
    if (timeout_ns <= 0) return LockResult::TimedOut;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ns / 1000000000;
    deadline.tv_nsec += timeout_ns % 1000000000;
    if (deadline.tv_nsec >= 1000000000) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000; }
    rc = pthread_mutex_timedlock(&lock->mutex, &deadline);
  }
  if (rc == 0) {
    store_relaxed(&lock->holder_pid, cached_pid());
    return LockResult::Acquired;
  }
  if (rc == EOWNERDEAD) {
    // The previous holder died inside its critical section. We own the mutex now;
    // mark it usable again, and let the caller repair the protected state.
    pthread_mutex_consistent(&lock->mutex);
    stat_add(&lock->owner_died_count, 1u);
    store_relaxed(&lock->holder_pid, cached_pid());
    return LockResult::AcquiredOwnerDied;
  }
  if (rc == ETIMEDOUT) return LockResult::TimedOut;
  return LockResult::Error;  // ENOTRECOVERABLE: only if someone unlocked without consistent()
}

void robust_lock_release(RobustLock* lock) {
  store_relaxed(&lock->holder_pid, 0u);
  pthread_mutex_unlock(&lock->mutex);
}

}  // namespace rm
