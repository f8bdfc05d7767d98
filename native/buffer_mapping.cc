// The buffer pool's mapping table (rules: buffer_mapping.h).
#include "buffer_mapping.h"

#include "atomics.h"
#include "debug_assert.h"

namespace rm {

uint32_t mapping_bucket(const PoolView& v, uint64_t file, uint64_t block) {
  uint64_t x = file * 0x9E3779B97F4A7C15ull ^ (block + 0x7F4A7C15ull) * 0xC2B2AE3D27D4EB4Full;
  x ^= x >> 29;
  return (uint32_t)(x & (v.nbuckets - 1));
}

namespace {

static_assert(kPoolPartitions <= 32, "one bit per partition in t_held");
// This thread's partition locks, one bit each: only for the debug-build assertions (a
// process-local record; the lock words themselves are shared memory).
thread_local uint32_t t_held = 0;
constexpr uint32_t kAllPartitions = (uint32_t)((1ull << kPoolPartitions) - 1);

uint32_t partition_of(uint32_t bucket) { return bucket % kPoolPartitions; }
bool holds(uint32_t bucket) { return (t_held >> partition_of(bucket)) & 1u; }

bool lock_partition(PoolView& v, uint32_t part) {
  RM_ASSERT(!((t_held >> part) & 1u));  // a robust mutex taken twice by one thread: a self-deadlock
  LockResult r = robust_lock_acquire(&v.locks[part].lock, 2000000000);
  bool ok = r == LockResult::Acquired || r == LockResult::AcquiredOwnerDied;  // no repair: see the header
  if (ok) t_held |= 1u << part;
  return ok;
}

void unlock_partition(PoolView& v, uint32_t part) {
  RM_ASSERT((t_held >> part) & 1u);
  t_held &= ~(1u << part);
  robust_lock_release(&v.locks[part].lock);
}

}  // namespace

bool mapping_lock(PoolView& v, uint32_t bucket) {
  RM_ASSERT(t_held == 0);
  return lock_partition(v, partition_of(bucket));
}

void mapping_unlock(PoolView& v, uint32_t bucket) { unlock_partition(v, partition_of(bucket)); }

uint32_t mapping_lock_all(PoolView& v) {
  RM_ASSERT(t_held == 0);
  uint32_t held = 0;
  while (held < kPoolPartitions && lock_partition(v, held)) held++;
  return held;
}

void mapping_unlock_all(PoolView& v, uint32_t held) {
  for (uint32_t i = 0; i < held; i++) unlock_partition(v, i);
}

int64_t mapping_find(PoolView& v, uint32_t bucket, uint64_t file, uint64_t block) {
  RM_ASSERT(holds(bucket));
  uint32_t b1 = load_acquire(&v.buckets[bucket]);
  for (uint32_t steps = 0; b1; steps++) {
    if (b1 > v.n || steps >= v.n) return kChainBroken;
    BufDesc* d = &v.d[b1 - 1];
    if ((load_acquire(&d->state) & BS_TAG) && load_relaxed(&d->file_id) == file && load_relaxed(&d->block) == block) return b1 - 1;
    b1 = load_relaxed(&d->hash_next);
  }
  return -1;
}

uint32_t* mapping_link_to(PoolView& v, uint32_t bucket, uint32_t id) {
  RM_ASSERT(holds(bucket));
  uint32_t* link = &v.buckets[bucket];
  for (uint32_t steps = 0; steps < v.n; steps++) {
    uint32_t b1 = load_acquire(link);
    if (b1 == 0 || b1 > v.n) return nullptr;
    if (b1 == id + 1) return link;
    link = &v.d[b1 - 1].hash_next;
  }
  return nullptr;
}

void mapping_unlink(PoolView& v, uint32_t* link, uint32_t id) {
  RM_ASSERT(t_held != 0);  // the caller found `link` under its bucket's lock (mapping_link_to)
  store_release(link, load_relaxed(&v.d[id].hash_next));
  store_relaxed(&v.d[id].hash_next, 0u);
}

void mapping_rebuild(PoolView& v, const std::function<void(uint32_t id, bool dropped)>& on_duplicate) {
  RM_ASSERT(t_held == kAllPartitions);
  for (uint32_t b = 0; b < v.nbuckets; b++) store_relaxed(&v.buckets[b], 0u);
  for (uint32_t id = 0; id < v.n; id++) {
    BufDesc* d = &v.d[id];
    store_relaxed(&d->hash_next, 0u);
    uint64_t st = load_acquire(&d->state);
    if (!(st & BS_TAG) || !desc_state_valid(st)) continue;
    uint64_t file = load_relaxed(&d->file_id), block = load_relaxed(&d->block);
    uint32_t b = mapping_bucket(v, file, block);
    if (mapping_find(v, b, file, block) >= 0) {
      uint64_t expected = st;
      bool dropped = !(st & (BS_PIN_MASK | BS_DIRTY | BS_IO)) && cas(&d->state, &expected, (uint64_t)0);
      on_duplicate(id, dropped);
      if (dropped) continue;
    }
    store_relaxed(&d->hash_next, load_relaxed(&v.buckets[b]));
    store_release(&v.buckets[b], id + 1);
  }
}

}  // namespace rm
