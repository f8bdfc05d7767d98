// Reapers: the watcher threads a reaping process runs, one per watched ring, and the
// reap demand that decides whether the kernel wakes them at all.
//
// Issuers normally reap their own completions on their own JS thread (delivery.h): a
// page-cache hit inside their io_uring_enter, anything else through the self-wake
// linked after a single op, a hard-linked chain or a chain that asks for it (the WAL's
// commit). Watchers are the backstop for completions nobody else takes promptly: a
// soft-linked chain, an issuer that does not
// reap (`reaper: false`) or cannot wake itself (SQPOLL, an old kernel), an op other
// processes observe (a completion word), a
// waiter in any process (a shared word wait may depend on any CQE), and the IO of a
// dead process (orphans). Each ring's eventfd (registered with IORING_REGISTER_EVENTFD,
// shared by every process) is signalled by the kernel for every CQE unless the ring's
// IORING_CQ_EVENTFD_DISABLED flag is set; that flag is set while nobody demands reaping,
// so a watcher sleeps through every completion its issuer takes itself. A JS thread
// that waits on a completion word polls the same eventfds from its private ring, not
// exclusively (delivery.h): it is woken beside one watcher, never instead of one.
//
// Demand lives in the segment header: `foreign_slots` (slots with ops in flight that
// need someone else to reap them), `waiting_slots` (slots with shared word waits,
// shared_wait.h) and `orphans_outstanding` (counted where the ORPHAN flag is set and
// where an orphan is freed, io_handles.cc). Whoever changes one reconciles the flag:
// clear it and poke the eventfd if the CQ already holds entries (posted while it was
// set), or set it and look again (a concurrent demander clears it back). A signal the
// kernel skips anyway (its tail store and flag load can pass each other) is caught by
// the issuers' and watchers' sweeps.
#pragma once
#include <cstdint>
#include <vector>

namespace rm {

struct Segment;

// Start one watcher per ring in `rings` (this process reaps). Idempotent per process.
void reapers_start(Segment* seg, const std::vector<uint32_t>& rings);
// Stop and join this process's watchers (its last environment detached).
void reapers_stop(Segment* seg);

// Mark (or clear) `slot` as having in-flight ops that need another reaper, then reconcile.
void reap_demand_foreign(Segment& seg, uint32_t slot, bool on);
// Recompute whether anyone demands reaping and set every ring's eventfd flag to match.
void reap_demand_reconcile(Segment& seg);
bool reap_demand_present(Segment& seg);
// Forget a dead or detached slot's demand (its bits), then reconcile.
void reap_demand_forget_slot(Segment& seg, uint32_t slot);

}  // namespace rm
