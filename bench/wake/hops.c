// What one completion costs, by how the waiting thread learns of it: one O_DIRECT 4 KiB
// read at a time on a file of random data; p50, p99 and mean latency, and the CPU time
// of all threads per read. The numbers in docs/ARCHITECTURE.md (Reaping, Delivery) come
// from here. Build and run (the file must exist, e.g. 256 MiB of urandom):
//   cc -O2 -o /tmp/hops bench/wake/hops.c -lpthread
//   /tmp/hops <file> getevents|efd|msgring|futex|current|msgring-watched [reads]
// Modes:
//   getevents        io_uring_enter(GETEVENTS): fio's way, no event loop
//   efd              the ring's registered eventfd in the thread's own epoll
//   msgring          a hard-linked IORING_OP_MSG_RING to a private ring in its epoll (ringmaster)
//   futex            a hard-linked IORING_OP_FUTEX_WAKE, a FUTEX_WAIT in a private ring (re-armed per read)
//   current          watcher thread (eventfd, EPOLLEXCLUSIVE) -> futex doorbell -> doorbell
//                    thread -> eventfd -> epoll (ringmaster before one-wakeup delivery)
//   msgring-watched  msgring, with a watcher that also wakes on every CQE (ungated eventfd)
#include "watcher.h"

static int efd2 = -1, filefd;
static void* buf;
static uint64_t fsize;

static void prep_read(struct io_uring_sqe* s, uint64_t ud) {
  s->opcode = IORING_OP_READ; s->fd = filefd; s->addr = (uint64_t)buf; s->len = 4096;
  s->off = (rnd() % (fsize / 4096)) * 4096; s->user_data = ud;
}
static int reap_shared(void) {
  int n = 0;
  while (cq_ready(&R)) {
    struct io_uring_cqe* c = &R.cqes[*R.cqh & *R.cqm];
    if (c->user_data == 1) {
      if (c->res != 4096) { fprintf(stderr, "read returned %d\n", c->res); exit(1); }
      n++;
      __atomic_fetch_add(&completed, 1, __ATOMIC_RELEASE);
    }
    __atomic_store_n(R.cqh, *R.cqh + 1, __ATOMIC_RELEASE);
  }
  return n;
}
static void* doorbell_thread(void* a) {
  uint32_t seen = 0;
  while (!stop) {
    uint32_t d = __atomic_load_n(&doorbell, __ATOMIC_ACQUIRE);
    if (d != seen) { seen = d; uint64_t one = 1; if (write(efd2, &one, 8) < 0) {} }
    else { struct timespec ts = {0, 100000000}; futex(&doorbell, FUTEX_WAIT, d, &ts); }
  }
  return 0;
}
int main(int argc, char** argv) {
  if (argc < 3) { fprintf(stderr, "usage: hops <file> <mode> [reads]\n"); return 2; }
  const char* mode = argv[2];
  int N = argc > 3 ? atoi(argv[3]) : 3000;
  filefd = open(argv[1], O_RDONLY | O_DIRECT);
  if (filefd < 0) { perror("open"); return 1; }
  fsize = lseek(filefd, 0, SEEK_END);
  if (posix_memalign(&buf, 4096, 4096)) return 1;
  ring_init(&R, 64, 0);
  ring_init(&P, 8, 0);
  efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  sys_reg(R.fd, IORING_REGISTER_EVENTFD, &efd, 1);
  efd2 = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN};
  int cur = !strcmp(mode, "current"), watched = !strcmp(mode, "msgring-watched");
  int msg = !strcmp(mode, "msgring") || watched, fut = !strcmp(mode, "futex");
  pthread_t w, d;
  if (cur) { epoll_ctl(ep, EPOLL_CTL_ADD, efd2, &ev); pthread_create(&w, 0, watcher, (void*)1); pthread_create(&d, 0, doorbell_thread, 0); }
  if (watched) pthread_create(&w, 0, watcher, (void*)1);
  if (!strcmp(mode, "efd")) epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  if (msg || fut) epoll_ctl(ep, EPOLL_CTL_ADD, P.fd, &ev);
  if (watched) arm_futex();  // the watcher's doorbell reaches the reader through it
  uint64_t* lat = malloc(8 * N);
  uint64_t c0 = cpu_ns();
  for (int i = -100; i < N; i++) {
    uint64_t t0 = now_ns(), target = __atomic_load_n(&completed, __ATOMIC_ACQUIRE) + 1;
    if (!strcmp(mode, "getevents")) {
      prep_read(get_sqe(&R, 0), 1); publish(&R, 1);
      sys_enter(R.fd, 1, 1, IORING_ENTER_GETEVENTS, 0, 0);
      reap_shared();
    } else {
      unsigned n = 1;
      struct io_uring_sqe* s = get_sqe(&R, 0);
      prep_read(s, 1);
      if (fut) arm_futex();
      if (msg || fut) {
        s->flags |= IOSQE_IO_HARDLINK;
        s = get_sqe(&R, 1);
        if (msg) { s->opcode = IORING_OP_MSG_RING; s->fd = P.fd; s->off = 77; }
        else { s->opcode = IORING_OP_FUTEX_WAKE; s->fd = FUTEX2_SIZE_U32; s->addr = (uint64_t)&doorbell; s->off = 1; s->addr3 = 0xffffffff; }
        s->user_data = 2; s->flags = IOSQE_CQE_SKIP_SUCCESS;
        n = 2;
      }
      publish(&R, n);
      if (cur || watched) pthread_mutex_lock(&cqlock);
      sys_enter(R.fd, n, 0, 0, 0, 0);
      if (cur || watched) pthread_mutex_unlock(&cqlock);
      while (__atomic_load_n(&completed, __ATOMIC_ACQUIRE) < target) {
        struct epoll_event g;
        if (epoll_wait(ep, &g, 1, 1000) <= 0) continue;
        if (cur) { uint64_t v; if (read(efd2, &v, 8) < 0) {} continue; }
        if (!strcmp(mode, "efd")) { uint64_t v; if (read(efd, &v, 8) < 0) {} }
        int refutex = 0;
        while (cq_ready(&P)) { if (P.cqes[*P.cqh & *P.cqm].user_data == 9) refutex = 1; __atomic_store_n(P.cqh, *P.cqh + 1, __ATOMIC_RELEASE); }
        if (refutex && watched) arm_futex();
        if (pthread_mutex_trylock(&cqlock) == 0) { reap_shared(); pthread_mutex_unlock(&cqlock); }
      }
    }
    if (i >= 0) lat[i] = now_ns() - t0;
    else if (i == -1) c0 = cpu_ns();
  }
  uint64_t cpu = cpu_ns() - c0;
  stop = 1;
  report(mode, lat, N, cpu);
  return 0;
}
