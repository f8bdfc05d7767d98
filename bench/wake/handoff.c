// The machine's floor for a cross-process handoff: process A wakes process B, which is
// asleep, and B's thread runs again. No library: this is what any engine pays on this
// machine for "a sleeping process resumes". Like `npm run bench -- handoff`, B arms its
// wait, 1 ms of idle time passes (every thread involved is asleep), then A takes t0 and
// wakes B; B takes t1 when its thread runs; handoff = t1 - t0 (CLOCK_MONOTONIC).
// Build and run:
//   cc -O2 -o /tmp/handoff bench/wake/handoff.c
//   /tmp/handoff futex|ring|spin [handoffs] [busy_ms] [slice_us]
// Modes:
//   futex  B blocks in FUTEX_WAIT on a shared word; A stores it and calls FUTEX_WAKE
//   ring   B blocks in epoll_wait on a private io_uring whose IORING_OP_FUTEX_WAIT is armed
//          on the shared word (how a ringmaster process waits on another's completion:
//          its loop polls the private ring's fd); A stores the word and calls FUTEX_WAKE
//   spin   B spins on the shared word (never sleeps): the cost of the wake itself, without
//          the scheduler bringing an idle CPU and thread back
// busy_ms (default 0): A spins that long after its wake instead of sleeping (a busy JS
//   thread that has just completed another process's IO; the scheduler may put B on A's
//   CPU and leave it there until A's slice ends).
// slice_us (default 0: the kernel's): B asks for that EEVDF slice (sched_setattr,
//   SCHED_OTHER with sched_runtime, Linux 6.12+; no privilege needed), as ringmaster's
//   `wakeSliceUs` does for the threads that wait for other processes.
// Prints one line: mode, n, p50, p99, max in µs (and "slice <us>" when one was granted).
#include "common.h"
#include <sys/wait.h>
#include <sys/resource.h>

struct shared {
  uint32_t word;      // the futex word A stores and wakes
  uint32_t armed;     // B: "my wait is armed" (A waits for it before the idle gap)
  uint32_t done;      // B: "I have recorded t1" (A reads it after)
  uint64_t t0, t1;
};

static void arm_ring_wait(struct ring* r, uint32_t* word, uint32_t expect) {
  struct io_uring_sqe* f = get_sqe(r, 0);
  f->opcode = IORING_OP_FUTEX_WAIT; f->fd = FUTEX2_SIZE_U32; f->addr = (uint64_t)word;
  f->off = expect; f->addr3 = 0xffffffff; f->user_data = 9;
  publish(r, 1);
  if (sys_enter(r->fd, 1, 0, 0, 0, 0) != 1) { fprintf(stderr, "ring: FUTEX_WAIT not accepted\n"); exit(1); }
}

struct sched_attr_v1 {
  uint32_t size, sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime, sched_deadline, sched_period;
};

// 0 when granted, else -errno (EINVAL on kernels whose SCHED_OTHER ignores the field:
// they accept it, so "granted" there means nothing; the bench prints the kernel).
static int request_slice(uint32_t us) {
  struct sched_attr_v1 a = {.size = sizeof a, .sched_policy = 0 /* SCHED_OTHER */};
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, 0);
  a.sched_nice = errno ? 0 : nice;
  a.sched_runtime = (uint64_t)us * 1000;
  return syscall(SYS_sched_setattr, 0, &a, 0) == 0 ? 0 : -errno;
}

static void waiter(struct shared* s, const char* mode, int n, uint32_t slice_us) {
  struct ring r; int ep = -1;
  if (slice_us && request_slice(slice_us) != 0) { perror("sched_setattr"); exit(1); }
  int ring = !strcmp(mode, "ring"), spin = !strcmp(mode, "spin");
  if (ring) {
    ring_init(&r, 8, 0);
    ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, r.fd, &ev);
  }
  for (uint32_t i = 1; i <= (uint32_t)n; i++) {
    uint32_t expect = i - 1;
    if (ring) arm_ring_wait(&r, &s->word, expect);
    __atomic_store_n(&s->armed, i, __ATOMIC_RELEASE);
    if (spin) {
      while (__atomic_load_n(&s->word, __ATOMIC_ACQUIRE) == expect) {}
    } else if (ring) {
      for (;;) {
        struct epoll_event g;
        if (epoll_wait(ep, &g, 1, 1000) == 1 && cq_ready(&r)) break;
      }
      __atomic_store_n(r.cqh, *r.cqh + 1, __ATOMIC_RELEASE);
    } else {
      while (__atomic_load_n(&s->word, __ATOMIC_ACQUIRE) == expect) futex(&s->word, FUTEX_WAIT, expect, 0);
    }
    s->t1 = now_ns();
    __atomic_store_n(&s->done, i, __ATOMIC_RELEASE);
  }
  exit(0);
}

int main(int argc, char** argv) {
  if (argc < 2) { fprintf(stderr, "usage: handoff futex|ring|spin [handoffs] [busy_ms] [slice_us]\n"); return 2; }
  const char* mode = argv[1];
  int n = argc > 2 ? atoi(argv[2]) : 400;
  int busy_ms = argc > 3 ? atoi(argv[3]) : 0;
  uint32_t slice_us = argc > 4 ? (uint32_t)atoi(argv[4]) : 0;
  if (strcmp(mode, "futex") && strcmp(mode, "ring") && strcmp(mode, "spin")) { fprintf(stderr, "unknown mode %s\n", mode); return 2; }
  struct shared* s = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  memset(s, 0, sizeof *s);
  pid_t b = fork();
  if (b == 0) waiter(s, mode, n, slice_us);
  uint64_t* lat = calloc(n, sizeof *lat);
  for (uint32_t i = 1; i <= (uint32_t)n; i++) {
    while (__atomic_load_n(&s->armed, __ATOMIC_ACQUIRE) != i) usleep(50);
    struct timespec idle = {0, 1000000};
    nanosleep(&idle, 0);
    s->t0 = now_ns();
    __atomic_store_n(&s->word, i, __ATOMIC_RELEASE);
    if (strcmp(mode, "spin")) futex(&s->word, FUTEX_WAKE, 1, 0);
    if (busy_ms) {
      uint64_t end = now_ns() + (uint64_t)busy_ms * 1000000;
      while (now_ns() < end) {}
    }
    while (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE) != i) usleep(20);
    lat[i - 1] = s->t1 - s->t0;
  }
  waitpid(b, 0, 0);
  qsort(lat, n, 8, cmpu);
  printf("%s n=%d p50 %.1f p99 %.1f max %.1f us", mode, n, lat[n / 2] / 1000.0, lat[(n * 99) / 100] / 1000.0, lat[n - 1] / 1000.0);
  if (busy_ms) printf(" busy %d ms", busy_ms);
  if (slice_us) printf(" slice %u us", slice_us);
  printf("\n");
  return 0;
}
