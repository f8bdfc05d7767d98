// Pure compute, no memory traffic: CPU ns per iteration of one process, with PROCS of
// them started together. If the two vCPUs shared a physical core (SMT siblings on the
// host), two at once would each take longer per iteration: hardly in `chain` (one
// dependent chain, latency-bound, leaves the core's ports idle for a sibling), clearly
// in `ilp` (six independent chains, port-bound).
// `pause`: a loop of PAUSE instructions, a sibling that leaves the core to the other thread.
//   spin PROCS ITERS [chain|ilp|pause]        gcc -O2 -o spin spin.c
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
static double cpu_ns(void) {
  struct rusage r; getrusage(RUSAGE_SELF, &r);
  return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e9 + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e3;
}
static double now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char** argv) {
  int procs = atoi(argv[1]); long iters = atol(argv[2]);
  for (int p = 0; p < procs; p++) {
    if (fork()) continue;
    uint64_t x = 88172645463325252ull + p, y[6] = {1, 2, 3, 4, 5, 6};
    int ilp = argc > 3 && argv[3][0] == 'i', pause = argc > 3 && argv[3][0] == 'p';
    double c0 = cpu_ns(), t0 = now_ns();
    if (pause) {
      for (long i = 0; i < iters; i++) __builtin_ia32_pause();
    } else if (ilp) {
      for (long i = 0; i < iters; i++)
        for (int k = 0; k < 6; k++) { y[k] ^= y[k] << 13; y[k] ^= y[k] >> 7; y[k] ^= y[k] << 17; __asm__ volatile("" : "+r"(y[k])); }
      for (int k = 0; k < 6; k++) x ^= y[k];
    } else {
      for (long i = 0; i < iters; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; __asm__ volatile("" : "+r"(x)); }
    }
    printf("spin %d/%d: CPU %.3f ns/iter, wall %.3f ns/iter (%llu)\n", p, procs, (cpu_ns() - c0) / iters, (now_ns() - t0) / iters, (unsigned long long)(x & 1));
    fflush(stdout);
    _exit(0);
  }
  while (wait(NULL) > 0) {}
}
