// The buffer pool's mapping table: tag (file id, block) -> buffer id. `nbuckets` bucket
// heads (buffer id + 1, 0 = empty) start chains linked through BufDesc::hash_next;
// kPoolPartitions robust locks guard them (bucket % kPoolPartitions). Every link read
// from shared memory is bounds-checked and every walk is bounded by the buffer count, so
// a scribbled link or a cycle is reported as a broken chain, never followed off the end
// or forever.
//
// A partition lock whose holder died needs no repair: chain edits are single stores of a
// bucket head or a hash_next, made while the editor pins the buffer it moves, and a move
// of a buffer between tags orders its two edits (tag, link) so that a holder killed
// between them leaves at worst a tagless buffer, either on no chain or on the chain of
// its last tag (file_id, block): lookups skip it, and the clock sweep that takes it next
// unlinks it from that chain before linking it anywhere (pool_pin).
#pragma once
#include <cstdint>
#include <functional>

#include "buffer_pool.h"

namespace rm {

uint32_t mapping_bucket(const PoolView& v, uint64_t file, uint64_t block);
// The partition lock of `bucket`. False: not granted within the lock timeout (its holder
// is stopped). A thread holds at most one partition lock at a time, except
// mapping_lock_all's holder (so no two threads can deadlock on them).
bool mapping_lock(PoolView& v, uint32_t bucket);
void mapping_unlock(PoolView& v, uint32_t bucket);
// Every partition lock, in ascending order; returns how many were taken (all of them:
// kPoolPartitions). mapping_unlock_all gives back that many.
uint32_t mapping_lock_all(PoolView& v);
void mapping_unlock_all(PoolView& v, uint32_t held);

// The calls below need the partition lock of the bucket they walk (this thread's).

// Lookup: the buffer id, -1 (not there) or kChainBroken (a
// link out of range, or a cycle: the answer cannot be trusted either way).
constexpr int64_t kChainBroken = -2;
int64_t mapping_find(PoolView& v, uint32_t bucket, uint64_t file, uint64_t block);
// The link (bucket head or a hash_next) that points at `id`, or nullptr if the chain
// does not reach it or is broken.
uint32_t* mapping_link_to(PoolView& v, uint32_t bucket, uint32_t id);
void mapping_unlink(PoolView& v, uint32_t* link, uint32_t id);

// With every partition lock held (mapping_lock_all): empties every chain and links each tagged descriptor
// with a sane state word into the chain of its tag. A second buffer with the same tag is
// dropped if it is unpinned, clean and not in IO (`on_duplicate(id, dropped)` is told
// either way); one that cannot be dropped stays linked behind the first.
void mapping_rebuild(PoolView& v, const std::function<void(uint32_t id, bool dropped)>& on_duplicate);

}  // namespace rm
