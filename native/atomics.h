// Helpers for words that live in shared memory and are read or written by other
// processes (and by the kernel, for ring words). Every access to such a word goes
// through one of these so a reader can see at a glance which memory is shared and
// which ordering it relies on. Plain loads of shared words are a review error.
#pragma once
#include <cstdint>

namespace rm {

template <typename T> inline T load_acquire(const T* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
template <typename T> inline T load_relaxed(const T* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
template <typename T> inline void store_release(T* p, T v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
template <typename T> inline void store_relaxed(T* p, T v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
template <typename T> inline T fetch_add(T* p, T v) { return __atomic_fetch_add(p, v, __ATOMIC_ACQ_REL); }
template <typename T> inline T fetch_sub(T* p, T v) { return __atomic_fetch_sub(p, v, __ATOMIC_ACQ_REL); }
template <typename T> inline void stat_add(T* p, T v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
// A statistic only one thread writes at a time (its lock's holder, or the owner of a
// slot's counters): a relaxed load and store, not a locked read-modify-write, which
// costs 15-20 ns and drains the store buffer on x86, several times per IO.
template <typename T> inline void stat_add_owned(T* p, T v) { __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + v, __ATOMIC_RELAXED); }
// Strong CAS with acq_rel on success: every state transition in shared memory is a
// CAS so that a racing process (or a dead one's half-finished work) is detected.
template <typename T> inline bool cas(T* p, T* expected, T desired) {
  return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

uint64_t monotonic_ns();

// Cross-process futex on a 32-bit word in MAP_SHARED memory (never FUTEX_PRIVATE).
int futex_wait(uint32_t* addr, uint32_t expected, int64_t timeout_ns);  // 0, or -errno
void futex_wake_all(uint32_t* addr);

}  // namespace rm
