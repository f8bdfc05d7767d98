#include "sched_slice.h"

#include <atomic>
#include <cerrno>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace rm {

namespace {
// include/uapi/linux/sched/types.h, SCHED_ATTR_SIZE_VER0 (glibc has no wrapper).
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};
std::atomic<uint32_t> g_library_thread_slice_us{0};
}  // namespace

int request_thread_slice(uint32_t us) {
#ifdef SYS_sched_setattr
  SchedAttr a = {};
  a.size = sizeof(a);
  a.sched_policy = 0;  // SCHED_OTHER: a thread that runs another policy is left alone (below)
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));  // per thread on Linux
  if (errno) return -errno;
  a.sched_nice = nice;  // sched_setattr sets nice too: keep the thread's own
  a.sched_runtime = (uint64_t)us * 1000;
  int policy = (int)syscall(SYS_sched_getscheduler, 0);
  if (policy != 0) return -EPERM;  // SCHED_BATCH/IDLE/RT chosen by the user: not ours to change
  return syscall(SYS_sched_setattr, 0, &a, 0) == 0 ? 0 : -errno;
#else
  (void)us;
  return -ENOSYS;
#endif
}

void set_library_thread_slice(uint32_t us) { g_library_thread_slice_us.store(us, std::memory_order_relaxed); }

void apply_library_thread_slice() {
  uint32_t us = g_library_thread_slice_us.load(std::memory_order_relaxed);
  if (us) request_thread_slice(us);  // a hint: a kernel that refuses it leaves the default
}

}  // namespace rm
