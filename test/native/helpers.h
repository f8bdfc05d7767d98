// Shared helpers of the native unit tests (test/native/*.cc): checks that say where
// they failed, memory shared with forked children, and running a function in a child
// process (a peer that dies, or a call that must abort). No Node, no napi: each test is a
// plain program linked with the mechanism files, built with RM_DEBUG and the address and
// undefined-behaviour sanitizers by test/native/build.cjs.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>

namespace t {

inline int& failures() {
  static int n = 0;
  return n;
}

#define T_CHECK(cond)                                                                 \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
      ++t::failures();                                                                \
    }                                                                                 \
  } while (0)

#define T_EQ(a, b)                                                                    \
  do {                                                                                \
    auto t_a_ = (a);                                                                  \
    auto t_b_ = (b);                                                                  \
    if (!(t_a_ == t_b_)) {                                                            \
      fprintf(stderr, "FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b, \
              (long long)t_a_, (long long)t_b_);                                      \
      ++t::failures();                                                                \
    }                                                                                 \
  } while (0)

// Stops the test at once (a precondition the rest depends on).
#define T_REQUIRE(cond)                                                               \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf(stderr, "FAIL (fatal) %s:%d: %s\n", __FILE__, __LINE__, #cond);         \
      exit(1);                                                                        \
    }                                                                                 \
  } while (0)

// Zeroed memory shared with every child forked after it (MAP_SHARED | MAP_ANONYMOUS):
// what the segment is to ringmaster's processes.
template <typename T> T* shared_alloc(size_t count = 1) {
  void* p = mmap(nullptr, sizeof(T) * count, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  T_REQUIRE(p != MAP_FAILED);
  return static_cast<T*>(p);
}

struct ChildResult {
  int status = 0;       // waitpid status
  std::string stderr_text;
  bool exited(int code) const { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
  bool signaled(int sig) const { return WIFSIGNALED(status) && WTERMSIG(status) == sig; }
};

// Runs `body` in a forked child; the child exits 0 when `body` returns (with
// _exit: no atexit handlers, no sanitizer leak report for a deliberately abandoned
// state). Its stderr is captured.
inline ChildResult run_child(const std::function<void()>& body) {
  int pipefd[2];
  T_REQUIRE(pipe(pipefd) == 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  T_REQUIRE(pid >= 0);
  if (pid == 0) {
    close(pipefd[0]);
    dup2(pipefd[1], 2);
    body();
    fflush(stderr);
    _exit(0);
  }
  close(pipefd[1]);
  ChildResult r;
  char buf[4096];
  ssize_t n;
  while ((n = read(pipefd[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) r.stderr_text.append(buf, (size_t)n);
  close(pipefd[0]);
  while (waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
  }
  return r;
}

// One named case: prints its name (so a failure or a crash says which one ran).
inline void run_case(const char* name, const std::function<void()>& body) {
  int before = failures();
  fprintf(stderr, "-- %s\n", name);
  body();
  fprintf(stderr, "%s %s\n", failures() == before ? "ok  " : "FAIL", name);
}

inline int finish() {
  if (failures()) fprintf(stderr, "%d check(s) failed\n", failures());
  return failures() ? 1 : 0;
}

}  // namespace t
