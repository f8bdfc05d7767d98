// The IO method: one table of operations per backend, chosen once from the segment
// header, instead of a branch on the backend at each call site. Modelled on
// PostgreSQL 18's IoMethodOps (src/include/storage/aio_internal.h): the callers
// (submission, slot cleanup, files, lifecycle) are written once against this table.
//
//   io_uring (uring_method.cc): shared rings, cross-process submit lock, any process reaps;
//   threads  (thread_backend.cc): a per-process pool, completions by the issuer's pool.
#pragma once
#include <cstdint>
#include <vector>

#include "io_handles.h"
#include "process_table.h"
#include "uring.h"

namespace rm {

struct Segment;

struct IoMethodOps {
  const char* name;
  // Completions are reaped from rings any process may drain (false: the issuing
  // process's own threads complete everything, nobody else can).
  bool foreign_reaping;
  // The first environment of this process attached (`reaps`: it may run reapers).
  void (*process_start)(Segment* seg, SlotKind kind, uint32_t slot, bool reaps);
  // The last environment of this process detached. False: a thread may still touch
  // the mapping, which must then stay mapped.
  bool (*process_stop)(Segment* seg);
  // Largest batch one submit call accepts.
  uint32_t (*max_batch)(Segment& seg, uint32_t ring);
  // Submit n validated requests whose handles are RESERVED by `issuer` (one or more
  // whole chains). Returns n once every request is in flight or completed with a
  // per-op error; -errno (nothing published, handles still RESERVED) otherwise.
  // Every write is noted for the next sync pass (file_sync.h) before it can run.
  // `shutdown_exempt`: the issuer may submit while the segment is stopping.
  int (*submit)(Segment& seg, uint32_t ring, const SqeRequest* reqs, uint32_t n, uint32_t issuer,
                const SubmitWake* wake, bool shutdown_exempt);
  // An environment is going away: make its in-flight requests finish soon.
  void (*cancel_issuer)(Segment& seg, uint32_t issuer, const std::vector<OrphanRef>& in_flight);
  // A slot was cleaned: its in-flight handles were orphaned (`orphans`), or, where the
  // IO dies with the process, are completed here. Then its backend accounting goes.
  bool in_flight_dies_with_process;
  void (*slot_cleaned)(Segment& seg, uint32_t slot, bool process_died, const std::vector<OrphanRef>& orphans);
  // Files: make `fd` (owned by the callee from now on) usable as file-table slot
  // `file_slot` generation `gen` by this backend; undo that at the last close.
  int (*install_file)(Segment& seg, uint32_t file_slot, uint32_t gen, int fd);
  void (*remove_file)(Segment& seg, uint32_t file_slot);
};

extern const IoMethodOps kUringMethod;
extern const IoMethodOps kThreadMethod;
const IoMethodOps& io_method(const Segment& seg);

}  // namespace rm
