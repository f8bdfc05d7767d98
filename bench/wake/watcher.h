// The watcher thread and futex doorbell that bench/wake/hops.c and commits.c both measure
// (ringmaster's reaping path before one-wakeup delivery, and its doorbell).
#pragma once
#include "common.h"

// The shared ring R, the issuer's private ring P, the shared ring's eventfd, and the
// futex doorbell a watcher rings; each program defines reap_shared() for its own CQEs
// (it returns how many of them complete an operation).
static struct ring R, P;
static int efd = -1;
static volatile int stop;
static uint32_t doorbell;
static uint64_t completed;
static pthread_mutex_t cqlock = PTHREAD_MUTEX_INITIALIZER;
static int reap_shared(void);
// A watcher thread: wakes on the shared ring's eventfd (EPOLLEXCLUSIVE, as ringmaster's
// watchers), reaps under cqlock and, with a non-null argument, rings the doorbell.
static void* watcher(void* ring_doorbell) {
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
  while (!stop) {
    struct epoll_event g;
    if (epoll_wait(ep, &g, 1, 100) <= 0) continue;
    uint64_t v;
    if (read(efd, &v, 8) < 0) {}
    pthread_mutex_lock(&cqlock);
    int k = reap_shared();
    pthread_mutex_unlock(&cqlock);
    if (k && ring_doorbell) { __atomic_fetch_add(&doorbell, 1, __ATOMIC_RELEASE); futex(&doorbell, FUTEX_WAKE, 1, 0); }
  }
  return 0;
}
// Arms a FUTEX_WAIT on the doorbell in the private ring (its CQE makes P's fd readable).
static void arm_futex(void) {
  struct io_uring_sqe* f = get_sqe(&P, 0);
  f->opcode = IORING_OP_FUTEX_WAIT; f->fd = FUTEX2_SIZE_U32; f->addr = (uint64_t)&doorbell;
  f->off = __atomic_load_n(&doorbell, __ATOMIC_ACQUIRE); f->addr3 = 0xffffffff; f->user_data = 9;
  publish(&P, 1);
  sys_enter(P.fd, 1, 0, 0, 0, 0);
}
