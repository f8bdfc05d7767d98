// The io_uring IO method (io_method.h): shared rings, one submit lock per ring, any
// process reaps (reaper.h), completions delivered to the issuer (delivery.h).
#include <cerrno>
#include <cstring>
#include <unistd.h>

#include "atomics.h"
#include "io_method.h"
#include "reaper.h"
#include "segment.h"

namespace rm {

namespace {

constexpr int64_t kLockTimeoutNs = 2000000000;  // a SIGSTOPped holder: error, not a hang

void uring_process_start(Segment* seg, SlotKind kind, uint32_t slot, bool reaps) {
  if (!reaps) return;
  SegmentHeader* h = seg->hdr;
  uint32_t ring_count = h->ring_count ? h->ring_count : 1;
  std::vector<uint32_t> rings;
  // per-process topology: a worker watches its first environment's home ring; the
  // postmaster watches every ring.
  bool all = kind == SLOT_POSTMASTER || h->topology == TOPO_SHARED;
  for (uint32_t r = 0; r < h->ring_count; r++)
    if (all || r == slot % ring_count) rings.push_back(r);
  reapers_start(seg, rings);
}

bool uring_process_stop(Segment* seg) {
  reapers_stop(seg);
  return true;
}

uint32_t uring_max_batch(Segment& seg, uint32_t ring) { return seg.hdr->rings[ring].sq_entries; }

int uring_submit(Segment& seg, uint32_t ring, const SqeRequest* reqs, uint32_t n, uint32_t issuer,
                 const SubmitWake* wake, bool shutdown_exempt) {
  return ring_submit(seg, ring, reqs, n, kLockTimeoutNs, wake && wake->reap_inline, wake, shutdown_exempt);
}

// Cancel by user_data, per ring (our own record of the ring, not the handle's).
void uring_cancel_issuer(Segment& seg, uint32_t issuer, const std::vector<OrphanRef>& in_flight) {
  std::vector<uint64_t> uds;
  for (uint32_t r = 0; r < seg.rings.size(); r++) {
    uds.clear();
    for (auto& o : in_flight) if (o.ring == r) uds.push_back(user_data_of(o.index, o.gen));
    if (!uds.empty()) ring_cancel(seg, r, uds.data(), (uint32_t)uds.size(), kLockTimeoutNs);
  }
}

void uring_slot_cleaned(Segment& seg, uint32_t slot, bool process_died, const std::vector<OrphanRef>& orphans) {
  // Orphans are counted (io_handles.cc): reapers must wake until they are reaped,
  // including any CQE the dead issuer left in the CQ before it died.
  if (!orphans.empty()) reap_demand_reconcile(seg);
  // The dead process's requests that are still armed (pipes, sockets) are not
  // cancelled by its death: cancel them so they complete (-ECANCELED) and free. A live
  // environment's detach cancelled its own IO earlier (CancelAndDrain).
  if (process_died && !orphans.empty()) uring_cancel_issuer(seg, slot, orphans);
}

// Install `fd` into the slot of every ring (rolling back on failure), then close it:
// the rings hold their own references. A registered-file table belongs to the ring, not
// to the process that filled a slot (io_uring/filetable.c, io_install_fixed_file), so
// every process that uses the ring sees the file.
int uring_install_file(Segment& seg, uint32_t file_slot, uint32_t gen, int fd) {
  for (uint32_t r = 0; r < seg.rings.size(); r++) {
    struct io_uring_files_update up = {};
    up.offset = file_slot;
    up.fds = (uint64_t)(uintptr_t)&fd;
    int rc = sys_io_uring_register(seg.rings[r].fd, IORING_REGISTER_FILES_UPDATE, &up, 1);
    if (rc < 0) {
      int minus1 = -1;
      for (uint32_t k = 0; k < r; k++) {  // roll back what this open installed
        struct io_uring_files_update undo = {};
        undo.offset = file_slot;
        undo.fds = (uint64_t)(uintptr_t)&minus1;
        sys_io_uring_register(seg.rings[k].fd, IORING_REGISTER_FILES_UPDATE, &undo, 1);
      }
      close(fd);
      return rc;
    }
  }
  close(fd);
  return 0;
}

void uring_remove_file(Segment& seg, uint32_t file_slot) {
  int minus1 = -1;
  for (uint32_t r = 0; r < seg.rings.size(); r++) {
    struct io_uring_files_update up = {};
    up.offset = file_slot;
    up.fds = (uint64_t)(uintptr_t)&minus1;
    sys_io_uring_register(seg.rings[r].fd, IORING_REGISTER_FILES_UPDATE, &up, 1);  // in-flight IO keeps its ref
  }
}

}  // namespace

const IoMethodOps kUringMethod = {
    "io_uring",
    /*foreign_reaping=*/true,
    uring_process_start,
    uring_process_stop,
    uring_max_batch,
    uring_submit,
    uring_cancel_issuer,
    /*in_flight_dies_with_process=*/false,
    uring_slot_cleaned,
    uring_install_file,
    uring_remove_file,
};

const IoMethodOps& io_method(const Segment& seg) {
  return load_relaxed(&seg.hdr->backend) == BACKEND_THREADS ? kThreadMethod : kUringMethod;
}

}  // namespace rm
