// Shared plumbing for the programs of bench/wake/: raw io_uring syscalls, a ring mapping,
// timers, a latency report.
#define _GNU_SOURCE
#include <linux/io_uring.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>
#include <time.h>
#include <pthread.h>
#include <linux/futex.h>
#ifndef IORING_OP_FUTEX_WAIT
#define IORING_OP_FUTEX_WAIT 51
#define IORING_OP_FUTEX_WAKE 52
#endif
#define FUTEX2_SIZE_U32 0x02
static int sys_setup(unsigned e, struct io_uring_params* p) { return syscall(__NR_io_uring_setup, e, p); }
static int sys_enter(int fd, unsigned ts, unsigned mc, unsigned fl, void* a, size_t s) { int r = syscall(__NR_io_uring_enter, fd, ts, mc, fl, a, s); return r < 0 ? -errno : r; }
__attribute__((unused)) static int sys_reg(int fd, unsigned op, const void* a, unsigned n) { int r = syscall(__NR_io_uring_register, fd, op, a, n); return r < 0 ? -errno : r; }
struct ring { int fd; unsigned *sqh,*sqt,*sqm,*sqa,*sqf,*cqh,*cqt,*cqm,*cqf; struct io_uring_sqe* sqes; struct io_uring_cqe* cqes; };
// Minimal io_uring plumbing for the wake measurements (no liburing).
static int ring_init(struct ring* r, unsigned entries, unsigned flags) {
  struct io_uring_params p; memset(&p, 0, sizeof p); p.flags = flags;
  r->fd = sys_setup(entries, &p); if (r->fd < 0) { perror("setup"); exit(1); }
  size_t sl = p.sq_off.array + p.sq_entries*4, cl = p.cq_off.cqes + p.cq_entries*sizeof(struct io_uring_cqe);
  if (cl > sl) sl = cl;
  char* q = mmap(0, sl, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
  r->sqes = mmap(0, p.sq_entries*sizeof(struct io_uring_sqe), PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, r->fd, IORING_OFF_SQES);
  r->sqh=(unsigned*)(q+p.sq_off.head); r->sqt=(unsigned*)(q+p.sq_off.tail); r->sqm=(unsigned*)(q+p.sq_off.ring_mask); r->sqa=(unsigned*)(q+p.sq_off.array); r->sqf=(unsigned*)(q+p.sq_off.flags);
  r->cqh=(unsigned*)(q+p.cq_off.head); r->cqt=(unsigned*)(q+p.cq_off.tail); r->cqm=(unsigned*)(q+p.cq_off.ring_mask); r->cqes=(struct io_uring_cqe*)(q+p.cq_off.cqes); r->cqf=(unsigned*)(q+p.cq_off.flags);
  return 0;
}
static struct io_uring_sqe* get_sqe(struct ring* r, unsigned i) { unsigned t = *r->sqt + i; unsigned idx = t & *r->sqm; r->sqa[idx] = idx; memset(&r->sqes[idx], 0, sizeof(struct io_uring_sqe)); return &r->sqes[idx]; }
static void publish(struct ring* r, unsigned n) { __atomic_store_n(r->sqt, *r->sqt + n, __ATOMIC_RELEASE); }
static int cq_ready(struct ring* r) { return __atomic_load_n(r->cqt, __ATOMIC_ACQUIRE) != *r->cqh; }
static uint64_t now_ns(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec*1000000000ull + t.tv_nsec; }
__attribute__((unused)) static uint64_t cpu_ns(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec*1000000000ull + t.tv_nsec; }
static uint64_t xs = 88172645463325252ull; __attribute__((unused)) static uint64_t rnd(void) { xs ^= xs << 13; xs ^= xs >> 7; xs ^= xs << 17; return xs; }
static int cmpu(const void* a, const void* b) { uint64_t x=*(uint64_t*)a, y=*(uint64_t*)b; return x<y?-1:x>y; }
__attribute__((unused)) static void report(const char* name, uint64_t* lat, int n, uint64_t cpu) {
  qsort(lat, n, 8, cmpu); double sum=0; for (int i=0;i<n;i++) sum+=lat[i];
  printf("%-22s n=%d mean %.1f us p50 %.1f p99 %.1f  cpu/op %.2f us\n", name, n, sum/n/1000, lat[n/2]/1000.0, lat[n*99/100]/1000.0, cpu/(double)n/1000);
}
static long futex(uint32_t* a, int op, uint32_t v, const struct timespec* ts) { return syscall(SYS_futex, a, op, v, ts, 0, 0); }

