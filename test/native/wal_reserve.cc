// Description: WAL space reservation (reserve_once): a reservation at the current end moves it by exactly its length and leaves the slot's claim published, a stale end is answered Moved with the new end, a reservation past align_down(flushed) + buffer size is refused (Full, slot idle, counted) while one ending exactly there is taken, and processes reserving at once get disjoint ranges that tile the log with no gap.
//
// reserve_once is private to wal_buffer.cc, so that file is compiled into this test.
#include "../../native/wal_buffer.cc"

#include <algorithm>
#include <vector>

#include "helpers.h"

using namespace rm;

namespace {

struct Wal {
  WalShared* w;
  WalInsert* ins;
  WalView v;
};

Wal make_wal(uint64_t buf_size) {
  Wal x;
  x.w = t::shared_alloc<WalShared>();
  x.ins = t::shared_alloc<WalInsert>(4);
  x.w->buf_size = buf_size;
  x.w->max_slots = 4;
  x.v.w = x.w;
  x.v.buf = nullptr;  // reservation never touches the bytes
  x.v.buf_size = buf_size;
  x.v.ins = x.ins;
  x.v.max_slots = 4;
  return x;
}

}  // namespace

int main() {
  t::run_case("a reservation at the end: Done, the end moves by its length, the claim is published", [] {
    Wal x = make_wal(16384);
    uint64_t r = x.w->reserved;
    T_CHECK(reserve_once(x.v, x.w, &x.ins[1], &r, 64) == Reserve::Done);
    T_EQ(x.w->reserved, 64ull);
    T_EQ(r, 0ull);  // where ours starts
    T_EQ(x.ins[1].start, 0ull);
    T_EQ(x.ins[1].len, 64u);
    T_EQ(x.ins[1].state, (uint32_t)WI_TRYING);  // the caller moves it on (COPYING)
    T_EQ(x.ins[0].state, (uint32_t)WI_IDLE);
  });

  t::run_case("a stale end: Moved, with the new end to try again at", [] {
    Wal x = make_wal(16384);
    x.w->reserved = 4000;
    uint64_t r = 128;  // what we read before someone reserved
    T_CHECK(reserve_once(x.v, x.w, &x.ins[0], &r, 40) == Reserve::Moved);
    T_EQ(r, 4000ull);
    T_EQ(x.w->reserved, 4000ull);
    T_CHECK(reserve_once(x.v, x.w, &x.ins[0], &r, 40) == Reserve::Done);
    T_EQ(x.ins[0].start, 4000ull);
    T_EQ(x.w->reserved, 4040ull);
  });

  t::run_case("space: up to align_down(flushed, 4096) + buffer size, never past it", [] {
    Wal x = make_wal(16384);
    x.w->flushed = 4096 + 100;  // the partly flushed block may still be rewritten
    uint64_t limit = 4096 + 16384;
    x.w->reserved = limit - 64;
    uint64_t r = x.w->reserved;
    T_CHECK(reserve_once(x.v, x.w, &x.ins[2], &r, 72) == Reserve::Full);
    T_EQ(x.ins[2].state, (uint32_t)WI_IDLE);
    T_EQ(x.w->stat_space_waits, 1ull);
    T_EQ(x.w->reserved, limit - 64);
    T_CHECK(reserve_once(x.v, x.w, &x.ins[2], &r, 64) == Reserve::Done);  // exactly to the limit
    T_EQ(x.w->reserved, limit);
    r = x.w->reserved;
    T_CHECK(reserve_once(x.v, x.w, &x.ins[2], &r, 8) == Reserve::Full);
    x.w->flushed = 8192;  // one more block durable: one more block of room
    T_CHECK(reserve_once(x.v, x.w, &x.ins[2], &r, 4096) == Reserve::Done);
    T_EQ(x.w->reserved, limit + 4096);
  });

  t::run_case("processes reserving at once: disjoint ranges that tile the log", [] {
    constexpr uint32_t kProcs = 3, kEach = 3000;
    Wal x = make_wal(1ull << 40);
    struct Got { uint64_t start, len; };
    Got* got = t::shared_alloc<Got>(kProcs * kEach);
    std::vector<pid_t> pids;
    for (uint32_t p = 0; p < kProcs; p++) {
      pid_t pid = fork();
      T_REQUIRE(pid >= 0);
      if (pid == 0) {
        uint32_t seed = 77 + p;
        for (uint32_t i = 0; i < kEach; i++) {
          uint64_t len = 8 * (1 + ((seed = seed * 1103515245u + 12345u) >> 16) % 64);
          uint64_t r = __atomic_load_n(&x.w->reserved, __ATOMIC_SEQ_CST);
          Reserve res;
          int spins = 0;
          while ((res = reserve_once(x.v, x.w, &x.ins[p], &r, len)) == Reserve::Moved && spins < 1000000) spins++;
          if (res != Reserve::Done) _exit(2);
          if (x.ins[p].start != r || x.ins[p].len != len) _exit(3);
          got[p * kEach + i] = {r, len};
          __atomic_store_n(&x.ins[p].state, (uint32_t)WI_IDLE, __ATOMIC_SEQ_CST);
        }
        _exit(0);
      }
      pids.push_back(pid);
    }
    for (pid_t pid : pids) {
      int st = 0;
      waitpid(pid, &st, 0);
      T_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    std::vector<Got> all(got, got + kProcs * kEach);
    std::sort(all.begin(), all.end(), [](const Got& a, const Got& b) { return a.start < b.start; });
    uint64_t at = 0;
    uint32_t gaps = 0;
    for (const Got& g : all) {
      if (g.start != at) gaps++;
      at = g.start + g.len;
    }
    T_EQ(gaps, 0u);
    T_EQ(x.w->reserved, at);
  });

  return t::finish();
}
