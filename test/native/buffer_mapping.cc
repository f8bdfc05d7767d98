// Description: the buffer pool's mapping table: insert, lookup and remove on hash chains (several tags per bucket), a link out of range or a cycle is reported as a broken chain (never followed), the rebuild relinks every tagged buffer and drops an idle duplicate, a dead partition-lock holder needs no repair, and the debug assertions on this thread's partition locks fire on misuse.
#include "../../native/buffer_mapping.h"

#include <vector>

#include "helpers.h"

using namespace rm;

namespace {

constexpr uint32_t kBuffers = 64;

PoolView make_view(uint32_t nbuckets) {
  PoolView v;
  v.n = kBuffers;
  v.nbuckets = nbuckets;
  v.d = t::shared_alloc<BufDesc>(kBuffers);
  v.buckets = t::shared_alloc<uint32_t>(nbuckets);
  v.locks = t::shared_alloc<LockCell>(kPoolPartitions);
  for (uint32_t i = 0; i < kPoolPartitions; i++) robust_lock_init(&v.locks[i].lock);
  return v;
}

// What the pool's pin path does to bring a block in (buffer_pool.cc): tag, then link at
// the head of the bucket's chain, under the bucket's partition lock.
void insert(PoolView& v, uint32_t id, uint64_t file, uint64_t block, uint64_t extra_state = 0) {
  uint32_t b = mapping_bucket(v, file, block);
  T_REQUIRE(mapping_lock(v, b));
  BufDesc* d = &v.d[id];
  d->file_id = file;
  d->block = block;
  d->hash_next = v.buckets[b];
  d->state = BS_TAG | (1ull << BS_USAGE_SHIFT) | extra_state;
  v.buckets[b] = id + 1;
  mapping_unlock(v, b);
}

int64_t lookup(PoolView& v, uint64_t file, uint64_t block) {
  uint32_t b = mapping_bucket(v, file, block);
  T_REQUIRE(mapping_lock(v, b));
  int64_t r = mapping_find(v, b, file, block);
  mapping_unlock(v, b);
  return r;
}

bool remove(PoolView& v, uint32_t id) {
  uint32_t b = mapping_bucket(v, v.d[id].file_id, v.d[id].block);
  T_REQUIRE(mapping_lock(v, b));
  uint32_t* link = mapping_link_to(v, b, id);
  if (link) mapping_unlink(v, link, id);
  mapping_unlock(v, b);
  if (link) v.d[id].state = 0;
  return link != nullptr;
}

// Tags (file, block) that all hash to bucket `want`.
std::vector<uint64_t> blocks_in_bucket(const PoolView& v, uint64_t file, uint32_t want, size_t count) {
  std::vector<uint64_t> out;
  for (uint64_t blk = 0; out.size() < count && blk < 100000; blk++)
    if (mapping_bucket(v, file, blk) == want) out.push_back(blk);
  T_REQUIRE(out.size() == count);
  return out;
}

}  // namespace

int main() {
  t::run_case("buckets: in range, and tags spread over them", [] {
    PoolView v = make_view(16);
    std::vector<int> hits(16, 0);
    for (uint64_t blk = 0; blk < 1600; blk++) {
      uint32_t b = mapping_bucket(v, 65537, blk);
      T_REQUIRE(b < 16);
      hits[b]++;
    }
    for (int h : hits) T_CHECK(h > 0);
  });

  t::run_case("insert, lookup, remove: head, middle and tail of one chain", [] {
    PoolView v = make_view(16);
    std::vector<uint64_t> blks = blocks_in_bucket(v, 7, 3, 4);
    for (uint32_t i = 0; i < 4; i++) insert(v, 10 + i, 7, blks[i]);
    // The chain is 13 -> 12 -> 11 -> 10 (each insert goes to the head).
    T_EQ(v.buckets[3], 14u);
    for (uint32_t i = 0; i < 4; i++) T_EQ(lookup(v, 7, blks[i]), (int64_t)(10 + i));
    T_EQ(lookup(v, 8, blks[0]), -1);  // other file, maybe other bucket: absent either way
    T_CHECK(remove(v, 12));            // middle
    T_EQ(lookup(v, 7, blks[2]), -1);
    T_EQ(lookup(v, 7, blks[1]), 11);
    T_CHECK(remove(v, 13));            // head
    T_EQ(v.buckets[3], 12u);
    T_CHECK(remove(v, 10));            // tail
    T_EQ(lookup(v, 7, blks[1]), 11);
    T_EQ(v.d[11].hash_next, 0u);
    T_CHECK(!remove(v, 10));           // not linked any more
    T_CHECK(remove(v, 11));
    T_EQ(v.buckets[3], 0u);
    // A tag without TAG_VALID is not found even while still linked.
    insert(v, 20, 7, blks[0]);
    v.d[20].state = 0;
    T_EQ(lookup(v, 7, blks[0]), -1);
  });

  t::run_case("a broken chain: a link out of range or a cycle is reported, never followed", [] {
    PoolView v = make_view(16);
    std::vector<uint64_t> blks = blocks_in_bucket(v, 1, 5, 3);
    insert(v, 1, 1, blks[0]);
    insert(v, 2, 1, blks[1]);
    uint64_t absent = blks[2];
    v.d[1].hash_next = kBuffers + 5;  // past the table
    T_EQ(lookup(v, 1, absent), kChainBroken);
    T_EQ(lookup(v, 1, blks[1]), 2);  // found before the bad link
    v.d[1].hash_next = 2 + 1;        // 2 -> 1 -> 2 -> ...
    T_EQ(lookup(v, 1, absent), kChainBroken);
    T_REQUIRE(mapping_lock(v, 5));
    T_CHECK(mapping_link_to(v, 5, 40) == nullptr);  // bounded walk: not found
    mapping_unlock(v, 5);
    v.buckets[5] = 0xFFFFFFFFu;
    T_EQ(lookup(v, 1, absent), kChainBroken);
  });

  t::run_case("rebuild: every tagged buffer relinked, an idle duplicate dropped, a pinned one kept", [] {
    PoolView v = make_view(8);
    insert(v, 0, 3, 100);
    insert(v, 1, 3, 101);
    insert(v, 2, 3, 100);                 // an idle duplicate of buffer 0's tag
    insert(v, 3, 3, 101, 1 /* one pin */);  // a pinned duplicate of buffer 1's tag
    insert(v, 4, 3, 102);
    v.d[4].state = ~0ull;                 // a state no transition makes: not relinked
    for (uint32_t b = 0; b < 8; b++) v.buckets[b] = 0xDEAD;  // scribbled heads
    v.d[0].hash_next = 999;
    T_EQ(mapping_lock_all(v), kPoolPartitions);
    std::vector<std::pair<uint32_t, bool>> dups;
    mapping_rebuild(v, [&](uint32_t id, bool dropped) { dups.push_back({id, dropped}); });
    mapping_unlock_all(v, kPoolPartitions);
    T_REQUIRE(dups.size() == 2);
    T_CHECK(dups[0] == std::make_pair(2u, true));
    T_CHECK(dups[1] == std::make_pair(3u, false));
    T_EQ(v.d[2].state, 0ull);
    T_EQ(lookup(v, 3, 100), 0);
    int64_t f = lookup(v, 3, 101);
    T_CHECK(f == 1 || f == 3);
    T_EQ(lookup(v, 3, 102), -1);
    for (uint32_t b = 0; b < 8; b++) T_CHECK(v.buckets[b] <= kBuffers);
  });

  t::run_case("a partition-lock holder dies: the next locker goes on without repair", [] {
    PoolView v = make_view(16);
    insert(v, 5, 9, 1);
    uint32_t b = mapping_bucket(v, 9, 1);
    t::ChildResult r = t::run_child([&] {
      if (!mapping_lock(v, b)) _exit(2);
      raise(SIGKILL);
    });
    T_REQUIRE(r.signaled(SIGKILL));
    T_EQ(lookup(v, 9, 1), 5);
    T_EQ(v.locks[b % kPoolPartitions].lock.owner_died_count, 1u);
  });

  // Positive controls: RM_ASSERT is compiled in (RM_DEBUG) and catches a thread's misuse
  // of its own partition locks. Each runs in a child, which must abort with the message.
  struct Misuse {
    const char* name;
    const char* message;
    void (*call)(PoolView&);
  };
  const Misuse misuses[] = {
      {"lookup without the bucket's lock", "holds(bucket)",
       [](PoolView& v) { mapping_find(v, 3, 1, 2); }},
      {"a second partition lock", "t_held == 0",
       [](PoolView& v) { mapping_lock(v, 1); mapping_lock(v, 2); }},
      {"unlocking a partition not held", "(t_held >> part) & 1u",
       [](PoolView& v) { mapping_unlock(v, 4); }},
      {"rebuild without every lock", "t_held == kAllPartitions",
       [](PoolView& v) { mapping_lock(v, 0); mapping_rebuild(v, [](uint32_t, bool) {}); }},
  };
  for (const Misuse& m : misuses) {
    std::string name = std::string("RM_ASSERT fires (positive control): ") + m.name;
    t::run_case(name.c_str(), [&] {
      PoolView v = make_view(16);
      t::ChildResult r = t::run_child([&] { m.call(v); });
      T_CHECK(r.signaled(SIGABRT));
      std::string want = std::string("ringmaster: assertion failed: ") + m.message + " (";
      T_CHECK(r.stderr_text.find(want) != std::string::npos);
      T_CHECK(r.stderr_text.find("buffer_mapping.cc:") != std::string::npos);
      if (!r.signaled(SIGABRT)) fprintf(stderr, "child said: %s\n", r.stderr_text.c_str());
    });
  }

  return t::finish();
}
