// Description: RM_ASSERT in this (RM_DEBUG) build: a false condition aborts the process with "ringmaster: assertion failed: <expression> (<file>:<line>)" on stderr, a true one does nothing, and the expression is evaluated exactly once.
#include "../../native/debug_assert.h"

#include "helpers.h"

#ifndef RM_DEBUG
#error "the native unit tests are built with RM_DEBUG: without it RM_ASSERT checks nothing"
#endif

int main() {
  t::run_case("a false condition aborts with the expression, file and line (positive control)", [] {
    t::ChildResult r = t::run_child([&] {
      int answer = 41;
      RM_ASSERT(answer == 42);
    });
    T_CHECK(r.signaled(SIGABRT));
    T_CHECK(r.stderr_text.find("ringmaster: assertion failed: answer == 42 (") != std::string::npos);
    T_CHECK(r.stderr_text.find("debug_assert.cc:") != std::string::npos);
  });

  t::run_case("a true condition: nothing happens, evaluated once", [] {
    int calls = 0;
    auto counted = [&] { return ++calls > 0; };
    RM_ASSERT(counted());
    T_EQ(calls, 1);
    t::ChildResult r = t::run_child([] { RM_ASSERT(1 + 1 == 2); });
    T_CHECK(r.exited(0));
    T_EQ(r.stderr_text.size(), 0u);
  });

  return t::finish();
}
