#include "slot_cleanup.h"

#include <map>
#include <mutex>
#include <unistd.h>
#include <vector>

#include "atomics.h"
#include "io_method.h"
#include "reaper.h"
#include "segment.h"

namespace rm {

namespace {
std::mutex g_registry_mu;
std::map<uint64_t, Segment*> g_registry;  // every segment this process has mapped
}  // namespace

void cleanup_slot(Segment* seg, uint32_t slot, bool process_died) {
  ProcSlot* s = &seg->slots[slot];
  uint32_t expected = SLOT_ACTIVE;
  if (!cas(&s->state, &expected, (uint32_t)SLOT_CLEANING)) return;
  const IoMethodOps& io = io_method(*seg);
  // Where the IO dies with the process (the threads backend: its pool died with it),
  // its in-flight IO never completes: fail it now, running completion actions so
  // others' waiters wake.
  bool in_flight_dies = io.in_flight_dies_with_process && process_died;
  std::vector<OrphanRef> orphans;
  handles_release_owner(
      seg->handles, slot, in_flight_dies,
      [](void* c, IoHandle* h, uint32_t) {
        auto* sg = static_cast<Segment*>(c);
        run_completion_kind(*sg, load_relaxed(&h->kind), load_relaxed(&h->kind_arg), -ECANCELED);
      },
      seg, &orphans);
  io.slot_cleaned(*seg, slot, process_died, orphans);
  reap_demand_forget_slot(*seg, slot);
  run_slot_cleanup_hooks(*seg, slot, process_died);
  if (process_died) stat_add(&seg->hdr->stat_dead_slots_cleaned, (uint64_t)1);
  slot_release(s);
}

uint32_t cleanup_process_slots(Segment* seg, int32_t pid) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < seg->hdr->max_slots; i++) {
    ProcSlot* s = &seg->slots[i];
    if (load_acquire(&s->state) == SLOT_ACTIVE && load_relaxed(&s->pid) == pid && pid != getpid()) {
      cleanup_slot(seg, i, true);
      n++;
    }
  }
  return n;
}

uint32_t sweep_dead_slots(Segment* seg) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < seg->hdr->max_slots; i++) {
    if (slot_owner_dead(&seg->slots[i])) {
      cleanup_slot(seg, i, true);
      n++;
    }
  }
  return n;
}

void segment_registry_add(Segment* seg) {
  std::lock_guard<std::mutex> g(g_registry_mu);
  g_registry[seg->id] = seg;
}

Segment* segment_registry_find(uint64_t id) {
  std::lock_guard<std::mutex> g(g_registry_mu);
  auto it = g_registry.find(id);
  return it == g_registry.end() ? nullptr : it->second;
}

bool segment_registry_has(uint64_t id) {
  std::lock_guard<std::mutex> g(g_registry_mu);
  return g_registry.count(id) != 0;
}

void segment_registry_remove(uint64_t id) {
  std::lock_guard<std::mutex> g(g_registry_mu);
  g_registry.erase(id);
}

void process_env_attached(Segment* seg, uint32_t slot, SlotKind kind, bool reaps, bool first) {
  std::lock_guard<std::mutex> g(seg->mu);
  seg->env_refs++;
  seg->local_slots.push_back(slot);
  if (first) {
    store_relaxed(&seg->reaper_slot, slot);
    io_method(*seg).process_start(seg, kind, slot, reaps);
  }
}

bool forget_local_slot(Segment* seg, uint32_t slot) {
  std::lock_guard<std::mutex> g(seg->mu);
  bool last = --seg->env_refs == 0;
  auto& ls = seg->local_slots;
  for (size_t i = 0; i < ls.size(); i++) if (ls[i] == slot) { ls.erase(ls.begin() + i); break; }
  // Reaps by this process's threads are credited to a session that still exists,
  // moved before our slot is freed (and maybe claimed by someone else).
  if (!ls.empty() && load_relaxed(&seg->reaper_slot) == slot) store_relaxed(&seg->reaper_slot, ls[0]);
  return last;
}

bool process_last_env_gone(Segment* seg) {
  seg->stopping = true;
  bool gone = io_method(*seg).process_stop(seg);
  segment_registry_remove(seg->id);
  if (!gone) return false;  // a pool thread is blocked in a syscall and may still complete into the segment
  segment_unmap(seg);
  delete seg;
  return true;
}

void forget_segment(Segment* seg, bool close_fds) {
  segment_registry_remove(seg->id);
  seg->stopping = true;
  bool gone = io_method(*seg).process_stop(seg);
  if (!gone) return;  // keep the mapping for the stuck thread (never happens before first use)
  if (!close_fds) {  // inherited from the postmaster: a later attach() needs them again
    for (auto& r : seg->rings) { r.fd = -1; r.efd = -1; }
    seg->memfd = -1;
  }
  segment_unmap(seg);
  delete seg;
}

}  // namespace rm
