// What one durable commit costs (a 100-byte buffered write at the end of a preallocated
// log, then fdatasync), by how the committing thread learns that it is durable: p50, p99
// and mean latency, CPU of all threads and voluntary context switches per commit. The
// figures in docs/ARCHITECTURE.md (Delivery, "A commit's wake") come from here. Build, run:
//   cc -O2 -o /tmp/commits bench/wake/commits.c -lpthread
//   /tmp/commits <dir> <mode> [commits]
// Modes:
//   sync             pwrite + fdatasync on the thread (better-sqlite3's way; no ring)
//   getevents        write -> fdatasync linked, io_uring_enter(GETEVENTS) for both (fio's way)
//   watcher          write -> fdatasync linked; a watcher thread (ring eventfd, EPOLLEXCLUSIVE)
//                    reaps and rings a futex doorbell; a FUTEX_WAIT in a private ring in the
//                    thread's epoll wakes it (ringmaster's chain delivery)
//   chain-msgring    write -> fdatasync -> MSG_RING to a private ring in the thread's epoll
//   dsync-msgring    one WRITE with RWF_DSYNC -> MSG_RING (no separate sync op)
//   dsync-getevents  one WRITE with RWF_DSYNC, GETEVENTS
//   split-msgring    the write alone (completes inside the enter: page cache), then
//                    fdatasync -> MSG_RING in a second enter
#include "watcher.h"
#include <sys/resource.h>
#ifndef RWF_DSYNC
#define RWF_DSYNC 0x2
#endif

static int filefd;
static char payload[100];
enum { UD_WRITE = 1, UD_SYNC = 2, UD_MSG = 3 };

static int reap_shared(void) {
  int n = 0;
  while (cq_ready(&R)) {
    struct io_uring_cqe* c = &R.cqes[*R.cqh & *R.cqm];
    if (c->user_data == UD_WRITE && c->res != (int)sizeof payload) { fprintf(stderr, "write returned %d\n", c->res); exit(1); }
    if (c->user_data == UD_SYNC && c->res != 0 && c->res != (int)sizeof payload) { fprintf(stderr, "sync returned %d\n", c->res); exit(1); }
    if (c->user_data == UD_SYNC) { n++; __atomic_fetch_add(&completed, 1, __ATOMIC_RELEASE); }
    __atomic_store_n(R.cqh, *R.cqh + 1, __ATOMIC_RELEASE);
  }
  return n;
}
static uint64_t pos;
// A RWF_DSYNC write completes the commit by itself: it carries UD_SYNC.
static void prep_write(struct io_uring_sqe* s, int dsync) {
  s->opcode = IORING_OP_WRITE; s->fd = filefd; s->addr = (uint64_t)payload; s->len = sizeof payload;
  s->off = pos; s->user_data = dsync ? UD_SYNC : UD_WRITE;
  if (dsync) s->rw_flags = RWF_DSYNC;
}
static void prep_sync(struct io_uring_sqe* s) { s->opcode = IORING_OP_FSYNC; s->fd = filefd; s->fsync_flags = IORING_FSYNC_DATASYNC; s->user_data = UD_SYNC; }
static void prep_msg(struct io_uring_sqe* s) { s->opcode = IORING_OP_MSG_RING; s->fd = P.fd; s->off = 77; s->user_data = UD_MSG; }
static long vcs(void) { struct rusage u; getrusage(RUSAGE_SELF, &u); return u.ru_nvcsw; }
static long vcs_main(void) { struct rusage u; getrusage(RUSAGE_THREAD, &u); return u.ru_nvcsw; }

int main(int argc, char** argv) {
  if (argc < 3) { fprintf(stderr, "usage: commits <dir> <mode> [commits]\n"); return 2; }
  const char* mode = argv[2];
  int N = argc > 3 ? atoi(argv[3]) : 3000;
  char path[4096];
  snprintf(path, sizeof path, "%s/commits-%d.log", argv[1], getpid());
  filefd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (filefd < 0) { perror("open"); return 1; }
  const size_t size = 16 << 20;  // preallocated and written once, as a recycled WAL segment
  char* zero = calloc(1, 1 << 20);
  for (size_t o = 0; o < size; o += 1 << 20) if (pwrite(filefd, zero, 1 << 20, o) != 1 << 20) { perror("pwrite"); return 1; }
  fsync(filefd);
  memset(payload, 'a', sizeof payload);
  ring_init(&R, 64, 0);
  ring_init(&P, 8, 0);
  efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  sys_reg(R.fd, IORING_REGISTER_EVENTFD, &efd, 1);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN};
  epoll_ctl(ep, EPOLL_CTL_ADD, P.fd, &ev);
  int w = !strcmp(mode, "watcher"), sync_ = !strcmp(mode, "sync"), ge = !strcmp(mode, "getevents");
  int cm = !strcmp(mode, "chain-msgring"), dm = !strcmp(mode, "dsync-msgring"), dg = !strcmp(mode, "dsync-getevents");
  int sm = !strcmp(mode, "split-msgring");
  if (!(w || sync_ || ge || cm || dm || dg || sm)) { fprintf(stderr, "unknown mode %s\n", mode); return 2; }
  pthread_t wt;
  if (w) { pthread_create(&wt, 0, watcher, (void*)1); arm_futex(); }
  uint64_t* lat = malloc(8 * N);
  uint64_t c0 = cpu_ns();
  long v0 = vcs(), m0 = vcs_main();
  for (int i = -200; i < N; i++) {
    uint64_t t0 = now_ns(), target = __atomic_load_n(&completed, __ATOMIC_ACQUIRE) + 1;
    pos = (pos + sizeof payload) % (size - sizeof payload);
    if (sync_) {
      if (pwrite(filefd, payload, sizeof payload, pos) != sizeof payload || fdatasync(filefd)) { perror("sync"); return 1; }
    } else if (ge || dg) {
      unsigned n = 1;
      struct io_uring_sqe* s = get_sqe(&R, 0);
      prep_write(s, dg);
      if (ge) { s->flags |= IOSQE_IO_LINK; prep_sync(get_sqe(&R, 1)); n = 2; }
      publish(&R, n);
      sys_enter(R.fd, n, n, IORING_ENTER_GETEVENTS, 0, 0);
      while (__atomic_load_n(&completed, __ATOMIC_ACQUIRE) < target) { if (!cq_ready(&R)) sys_enter(R.fd, 0, 1, IORING_ENTER_GETEVENTS, 0, 0); reap_shared(); }
      reap_shared();
    } else {
      unsigned n = 0;
      if (sm) {
        prep_write(get_sqe(&R, 0), 0); publish(&R, 1);
        sys_enter(R.fd, 1, 0, 0, 0, 0);
        reap_shared();  // the buffered write completed inside the enter (checked in reap_shared)
        struct io_uring_sqe* s = get_sqe(&R, 0); prep_sync(s); s->flags = IOSQE_IO_HARDLINK;
        prep_msg(get_sqe(&R, 1)); n = 2;
      } else if (dm) {
        struct io_uring_sqe* s = get_sqe(&R, 0); prep_write(s, 1); s->flags = IOSQE_IO_HARDLINK;
        prep_msg(get_sqe(&R, 1)); n = 2;
      } else {
        struct io_uring_sqe* s = get_sqe(&R, 0); prep_write(s, 0); s->flags = IOSQE_IO_LINK;
        s = get_sqe(&R, 1); prep_sync(s);
        n = 2;
        if (cm) { s->flags = IOSQE_IO_HARDLINK; prep_msg(get_sqe(&R, 2)); n = 3; }
      }
      publish(&R, n);
      if (w) pthread_mutex_lock(&cqlock);
      sys_enter(R.fd, n, 0, 0, 0, 0);
      if (w) pthread_mutex_unlock(&cqlock);
      while (__atomic_load_n(&completed, __ATOMIC_ACQUIRE) < target) {
        struct epoll_event g;
        if (epoll_wait(ep, &g, 1, 1000) <= 0) continue;
        int refutex = 0;
        while (cq_ready(&P)) { if (P.cqes[*P.cqh & *P.cqm].user_data == 9) refutex = 1; __atomic_store_n(P.cqh, *P.cqh + 1, __ATOMIC_RELEASE); }
        if (refutex) arm_futex();
        if (pthread_mutex_trylock(&cqlock) == 0) { reap_shared(); pthread_mutex_unlock(&cqlock); }
      }
    }
    if (i >= 0) lat[i] = now_ns() - t0;
    else if (i == -1) { c0 = cpu_ns(); v0 = vcs(); m0 = vcs_main(); }
  }
  uint64_t cpu = cpu_ns() - c0;
  long v = vcs() - v0, vm = vcs_main() - m0;
  stop = 1;
  qsort(lat, N, 8, cmpu);
  double sum = 0;
  for (int i = 0; i < N; i++) sum += lat[i];
  printf("%-16s n=%d p10 %.1f p50 %.1f p90 %.1f p99 %.1f mean %.1f us; per commit: cpu %.1f us, voluntary switches %.2f (committing thread %.2f)\n", mode, N,
         lat[N / 10] / 1e3, lat[N / 2] / 1e3, lat[N * 9 / 10] / 1e3, lat[N * 99 / 100] / 1e3, sum / N / 1e3, cpu / (double)N / 1e3, v / (double)N, vm / (double)N);
  unlink(path);
  return 0;
}
