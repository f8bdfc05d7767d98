// Description: the robust process-shared lock: plain hold and release, a zero-timeout try on a lock another process holds times out, a holder killed inside hands the next locker AcquiredOwnerDied (and the lock is usable again after), RobustGuard releases on scope exit.
#include "../../native/robust_lock.h"

#include "helpers.h"

using namespace rm;

namespace {

constexpr int64_t kLong = 10ll * 1000000000;  // a bound, never a threshold: only a hang reaches it

// Waits (bounded) until *word == want; false if it never did.
bool await_word(volatile uint32_t* word, uint32_t want) {
  for (int i = 0; i < 20000; i++) {
    if (__atomic_load_n(word, __ATOMIC_ACQUIRE) == want) return true;
    usleep(1000);
  }
  return false;
}

struct Shared {
  RobustLock lock;
  uint32_t step;
};

}  // namespace

int main() {
  Shared* s = t::shared_alloc<Shared>();
  robust_lock_init(&s->lock);

  t::run_case("acquire and release, uncontended", [&] {
    T_CHECK(robust_lock_acquire(&s->lock, 0) == LockResult::Acquired);
    robust_lock_release(&s->lock);
    T_CHECK(robust_lock_acquire(&s->lock, kLong) == LockResult::Acquired);
    robust_lock_release(&s->lock);
    T_EQ(s->lock.owner_died_count, 0u);
  });

  t::run_case("a lock held by a live process: a zero timeout says TimedOut, then it is granted", [&] {
    __atomic_store_n(&s->step, 0u, __ATOMIC_RELEASE);
    pid_t parent = getpid();
    (void)parent;
    int pipefd[2];
    T_REQUIRE(pipe(pipefd) == 0);
    pid_t pid = fork();
    T_REQUIRE(pid >= 0);
    if (pid == 0) {
      if (robust_lock_acquire(&s->lock, kLong) != LockResult::Acquired) _exit(2);
      __atomic_store_n(&s->step, 1u, __ATOMIC_RELEASE);
      char c;
      if (read(pipefd[0], &c, 1) != 1) _exit(3);  // the parent's "let go"
      robust_lock_release(&s->lock);
      _exit(0);
    }
    T_REQUIRE(await_word(&s->step, 1u));
    T_CHECK(robust_lock_acquire(&s->lock, 0) == LockResult::TimedOut);
    T_CHECK(write(pipefd[1], "x", 1) == 1);
    T_CHECK(robust_lock_acquire(&s->lock, kLong) == LockResult::Acquired);
    robust_lock_release(&s->lock);
    int st = 0;
    waitpid(pid, &st, 0);
    T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(pipefd[0]);
    close(pipefd[1]);
  });

  t::run_case("the holder dies (SIGKILL) inside: the next locker gets AcquiredOwnerDied once", [&] {
    __atomic_store_n(&s->step, 0u, __ATOMIC_RELEASE);
    pid_t pid = fork();
    T_REQUIRE(pid >= 0);
    if (pid == 0) {
      if (robust_lock_acquire(&s->lock, kLong) != LockResult::Acquired) _exit(2);
      __atomic_store_n(&s->step, 1u, __ATOMIC_RELEASE);
      raise(SIGKILL);  // dies holding it
      _exit(4);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    T_REQUIRE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    T_EQ(__atomic_load_n(&s->step, __ATOMIC_ACQUIRE), 1u);
    T_CHECK(robust_lock_acquire(&s->lock, kLong) == LockResult::AcquiredOwnerDied);
    T_EQ(s->lock.owner_died_count, 1u);
    robust_lock_release(&s->lock);
    // Made consistent: the next holder is told nothing happened.
    T_CHECK(robust_lock_acquire(&s->lock, 0) == LockResult::Acquired);
    robust_lock_release(&s->lock);
    T_EQ(s->lock.owner_died_count, 1u);
  });

  t::run_case("a holder that exits without unlocking counts as dead too", [&] {
    t::ChildResult r = t::run_child([&] {
      if (robust_lock_acquire(&s->lock, kLong) != LockResult::Acquired) _exit(2);
    });
    T_CHECK(r.exited(0));
    T_CHECK(robust_lock_acquire(&s->lock, kLong) == LockResult::AcquiredOwnerDied);
    robust_lock_release(&s->lock);
    T_EQ(s->lock.owner_died_count, 2u);
  });

  t::run_case("RobustGuard: held inside the scope, released on leaving it", [&] {
    {
      RobustGuard g(&s->lock, kLong);
      T_CHECK(g.held());
      t::ChildResult r = t::run_child([&] {
        if (robust_lock_acquire(&s->lock, 0) != LockResult::TimedOut) _exit(5);
      });
      T_CHECK(r.exited(0));
    }
    T_CHECK(robust_lock_acquire(&s->lock, 0) == LockResult::Acquired);
    robust_lock_release(&s->lock);
  });

  return t::finish();
}
