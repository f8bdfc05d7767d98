// What a short EEVDF slice costs a CPU-bound thread that shares its CPU: two processes
// pinned to CPU 0 each do the same fixed work; prints wall time for both to finish and
// each one's involuntary switches. usage: slice-cost <slice_us: 0 = the kernel's> [work_M]
// cc -O2 -o /tmp/slice-cost bench/results/handoff-s22/slice-cost.c && /tmp/slice-cost 0 && /tmp/slice-cost 100
#define _GNU_SOURCE
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
struct sched_attr_v1 { uint32_t size, sched_policy; uint64_t sched_flags; int32_t sched_nice; uint32_t sched_priority; uint64_t sched_runtime, sched_deadline, sched_period; };
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char** argv) {
  unsigned slice = argc > 1 ? atoi(argv[1]) : 0;
  long work = (argc > 2 ? atol(argv[2]) : 400) * 1000000L;
  cpu_set_t c; CPU_ZERO(&c); CPU_SET(0, &c); sched_setaffinity(0, sizeof c, &c);
  double t0 = now();
  for (int k = 0; k < 2; k++) {
    if (fork() == 0) {
      if (slice) { struct sched_attr_v1 a = {.size = sizeof a}; a.sched_runtime = slice * 1000ull; if (syscall(SYS_sched_setattr, 0, &a, 0)) perror("sched_setattr"); }
      volatile uint64_t x = 0; for (long i = 0; i < work; i++) x += i * 2654435761u;
      struct rusage ru; getrusage(RUSAGE_SELF, &ru);
      printf("  child %d: %.3f s after start, %ld involuntary switches, %.3f s CPU\n", k, now() - t0, ru.ru_nivcsw, ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6);
      fflush(stdout); _exit(0);
    }
  }
  while (wait(0) > 0) {}
  printf("slice %u us: both done in %.3f s\n", slice, now() - t0);
  return 0;
}
