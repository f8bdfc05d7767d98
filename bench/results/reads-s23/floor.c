// C floor for cached 4 KiB reads at QD 1, one io_uring per process (no library, no JS):
// does a second process reading at the same time cost each process CPU per read, and
// does it matter whether the processes read through ONE open file description (what
// ringmaster does: the postmaster's fd is installed in every ring's fixed-file table)
// or through one each (what fio's jobs do: each job opens the file)?
//
//   floor FILE PROCS MODE READS [PATTERN] [EXTRA]
//     MODE    shared: the file is opened once, before fork, and that fd is registered
//                     in every process's ring (one struct file, like ringmaster)
//             own:    each process opens the file itself (one struct file each, like fio)
//     PATTERN seq256: offsets (k % 256) * 4096 (bench/cpu-ab.cjs's pattern)
//             random: random 4 KiB pages of the whole file (the cached-reads bench)
//     EXTRA   none | line: every read also does a locked add on one cache line that
//             every process writes (a shared statistic), to price a bouncing line
//
// Prints, per process, CPU ns per read (user + system, getrusage) and wall ns per read.
// Build: gcc -O2 -o floor floor.c
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int setup(unsigned entries, struct io_uring_params* p) { return (int)syscall(__NR_io_uring_setup, entries, p); }
static int enter(int fd, unsigned sub, unsigned minc, unsigned flags) {
  return (int)syscall(__NR_io_uring_enter, fd, sub, minc, flags, NULL, 0);
}
static int reg(int fd, unsigned op, const void* arg, unsigned n) { return (int)syscall(__NR_io_uring_register, fd, op, arg, n); }

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}
static double cpu_ns(void) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  return (r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e9 + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e3;
}

int main(int argc, char** argv) {
  if (argc < 5) { fprintf(stderr, "usage: floor FILE PROCS shared|own READS [seq256|random] [none|line]\n"); return 2; }
  const char* path = argv[1];
  int procs = atoi(argv[2]);
  int shared = strcmp(argv[3], "shared") == 0;
  long reads = atol(argv[4]);
  int random_pattern = argc > 5 && strcmp(argv[5], "random") == 0;
  int line = argc > 6 && strcmp(argv[6], "line") == 0;
  int shared_fd = shared ? open(path, O_RDONLY) : -1;
  struct stat st;
  if (stat(path, &st) < 0) { perror("stat"); return 1; }
  long pages = st.st_size / 4096;
  volatile uint64_t* bounce = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int go[2];
  if (pipe(go) < 0) return 1;
  for (int p = 0; p < procs; p++) {
    if (fork() != 0) continue;
    close(go[1]);
    if (getenv("PIN")) {  // PIN=1: process p runs on CPU p (run under chrt -f to keep others off)
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(p % 2, &set);
      sched_setaffinity(0, sizeof(set), &set);
    }
    int fd = shared ? shared_fd : open(path, O_RDONLY);
    struct io_uring_params par;
    memset(&par, 0, sizeof(par));
    int rf = setup(64, &par);
    if (rf < 0 || fd < 0) { perror("setup/open"); _exit(1); }
    if (reg(rf, IORING_REGISTER_FILES, &fd, 1) < 0) { perror("register files"); _exit(1); }
    void* buf = aligned_alloc(4096, 4096);
    struct iovec iov = {buf, 4096};
    if (reg(rf, IORING_REGISTER_BUFFERS, &iov, 1) < 0) { perror("register buffers"); _exit(1); }
    size_t sq_len = par.sq_off.array + par.sq_entries * 4, cq_len = par.cq_off.cqes + par.cq_entries * sizeof(struct io_uring_cqe);
    if (cq_len > sq_len) sq_len = cq_len;
    uint8_t* sq = mmap(NULL, sq_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, rf, IORING_OFF_SQ_RING);
    struct io_uring_sqe* sqes = mmap(NULL, par.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                                     MAP_SHARED | MAP_POPULATE, rf, IORING_OFF_SQES);
    uint32_t* sq_tail = (uint32_t*)(sq + par.sq_off.tail);
    uint32_t* sq_mask = (uint32_t*)(sq + par.sq_off.ring_mask);
    uint32_t* sq_array = (uint32_t*)(sq + par.sq_off.array);
    uint32_t* cq_head = (uint32_t*)(sq + par.cq_off.head);
    uint32_t* cq_tail = (uint32_t*)(sq + par.cq_off.tail);
    uint32_t* cq_mask = (uint32_t*)(sq + par.cq_off.ring_mask);
    struct io_uring_cqe* cqes = (struct io_uring_cqe*)(sq + par.cq_off.cqes);
    uint64_t x = 0x9e3779b97f4a7c15ull * (p + 1);
    char c;
    if (read(go[0], &c, 1) < 0) _exit(1);  // everyone starts together
    double c0 = 0, t0 = 0;
    long warm = reads / 10;
    for (long k = 0; k < reads + warm; k++) {
      if (k == warm) { c0 = cpu_ns(); t0 = now_ns(); }
      long page;
      if (random_pattern) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; page = (long)(x % (uint64_t)pages); }
      else page = k % 256;
      uint32_t tail = *sq_tail, idx = tail & *sq_mask;
      struct io_uring_sqe* s = &sqes[idx];
      memset(s, 0, sizeof(*s));
      s->opcode = IORING_OP_READ_FIXED;
      s->fd = 0;
      s->flags = IOSQE_FIXED_FILE;
      s->addr = (uint64_t)(uintptr_t)buf;
      s->len = 4096;
      s->off = (uint64_t)page * 4096;
      s->user_data = k;
      sq_array[idx] = idx;
      __atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
      if (line) __atomic_fetch_add(&bounce[0], 1, __ATOMIC_RELAXED);
      enter(rf, 1, 0, 0);
      for (;;) {
        uint32_t h = *cq_head;
        if (h != __atomic_load_n(cq_tail, __ATOMIC_ACQUIRE)) {
          if (cqes[h & *cq_mask].res != 4096) { fprintf(stderr, "res %d\n", cqes[h & *cq_mask].res); _exit(1); }
          __atomic_store_n(cq_head, h + 1, __ATOMIC_RELEASE);
          break;
        }
        enter(rf, 0, 1, IORING_ENTER_GETEVENTS);  // not completed inline (a cache miss)
      }
    }
    double cpu = cpu_ns() - c0, wall = now_ns() - t0;
    printf("proc %d/%d %s %s%s: CPU %.0f ns/read, wall %.0f ns/read\n", p, procs, shared ? "shared-file" : "own-file",
           random_pattern ? "random" : "seq256", line ? " +shared-line" : "", cpu / reads, wall / reads);
    fflush(stdout);
    _exit(0);
  }
  close(go[0]);
  usleep(100000);
  close(go[1]);  // read() returns 0 in every child: go
  while (wait(NULL) > 0) {}
  return 0;
}
