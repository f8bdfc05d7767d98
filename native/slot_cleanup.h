// Releasing process slots, and the per-process life of a mapped segment.
//
// A slot is cleaned by its own environment when it detaches, and by whoever notices
// that its process is gone (the postmaster on a child's exit, any process sweeping):
// ACTIVE -> CLEANING by CAS (one cleaner wins), then its handles are freed or orphaned
// (io_handles.h), the IO method finishes what the process can no longer finish
// (io_method.h), its reap demand goes (reaper.h), the modules release what it held
// (buffer pool pins and locks, WAL roles), and the slot is FREE again.
//
// The first environment of a process that maps a segment starts the IO method's
// threads there (reapers or the pool); the last one to detach stops them and unmaps,
// unless a pool thread is stuck in a system call (the mapping then stays).
#pragma once
#include <cstdint>

#include "process_table.h"

namespace rm {

struct Segment;

void cleanup_slot(Segment* seg, uint32_t slot, bool process_died);
// Every slot of `pid` (not this process), cleaned as dead. Returns slots cleaned.
uint32_t cleanup_process_slots(Segment* seg, int32_t pid);
// Every ACTIVE slot whose process is gone, cleaned as dead. Returns slots cleaned.
uint32_t sweep_dead_slots(Segment* seg);

// Segments this process has mapped, by segment id.
void segment_registry_add(Segment* seg);
Segment* segment_registry_find(uint64_t id);
bool segment_registry_has(uint64_t id);
void segment_registry_remove(uint64_t id);

// An environment of this process took `slot`; `first`: it created or mapped the segment
// here, so the IO method's threads start (the environment's `kind`, whether it `reaps`).
void process_env_attached(Segment* seg, uint32_t slot, SlotKind kind, bool reaps, bool first);
// An environment of this process lets go of its slot (taken out of this process's list,
// its reaper credit moved on). Returns true if it was the process's last environment.
bool forget_local_slot(Segment* seg, uint32_t slot);
// After the last environment left: stop the IO method's threads, forget the segment
// and unmap it. Returns false if it stays mapped (a pool thread is stuck).
bool process_last_env_gone(Segment* seg);
// Undo a segment mapping whose first environment could not be created. `close_fds`:
// false if the fds were inherited (a later attach needs them again).
void forget_segment(Segment* seg, bool close_fds);

}  // namespace rm
