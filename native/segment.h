// The shared segment: a memfd created by the postmaster and mapped by every process,
// preferably at the same address (MAP_FIXED_NOREPLACE) so SQE addresses into the
// arena are valid everywhere. Everything inside it refers to everything else by
// offset or index, never by pointer. This file owns the header and the layout.
//
//   [SegmentHeader][ProcSlot x max_slots][IoHandle x max_handles][FileEntry x max_files]
//   [arena: page-aligned, registered as fixed buffers when memlock allows]
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "completion_kinds.h"
#include "fault_injection.h"
#include "file_sync.h"
#include "file_table.h"
#include "io_handles.h"
#include "process_table.h"
#include "robust_lock.h"
#include "uring.h"

namespace rm {

constexpr uint64_t kSegmentMagic = 0x5254534d474e4952ull;  // "RINGMSTR"
constexpr uint32_t kLayoutVersion = 16;  // bump on any change to a shared structure
constexpr uint32_t kMaxRings = 64;

enum RunState : uint32_t { RUN_STARTING = 0, RUN_RUNNING = 1, RUN_STOPPING = 2, RUN_STOPPED = 3 };
enum Backend : uint32_t { BACKEND_IO_URING = 1, BACKEND_THREADS = 2 };
enum Topology : uint32_t { TOPO_SHARED = 1, TOPO_PER_PROCESS = 2 };

struct SegmentHeader {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t header_size;
  uint64_t segment_id;      // random; names this postmaster's segment
  uint64_t total_size;
  uint64_t base_address;    // the postmaster's mapping address (= registrant address)
  int32_t postmaster_pid;
  uint32_t run_state;       // RunState
  uint32_t backend;         // Backend
  uint32_t topology;        // Topology
  uint32_t ring_count;
  uint32_t ring_entries;
  uint32_t cq_entries;
  uint32_t sqpoll;
  uint32_t max_slots;
  uint32_t max_handles;
  uint32_t max_files;
  uint32_t fixed_buffers;       // arena registered as one fixed buffer in every ring
  int32_t fixed_buffers_errno;  // why not (ENOMEM: RLIMIT_MEMLOCK)
  uint32_t configured_rings;    // rings asked for (the threads backend maps none but accepts the indices)
  uint32_t fixed_buffers_cloned;  // rings after the first share its registration (CLONE_BUFFERS)
  uint32_t reserved0;
  uint64_t slots_off;
  uint64_t handles_off;
  uint64_t files_off;
  uint64_t arena_off;
  uint64_t arena_size;
  uint64_t arena_used;      // bump allocator for arena regions (atomic)
  uint32_t unused_handle_cursor;  // was a shared allocation hint (now process-local: HandleTable)
  uint32_t unused_handle_freed_seq;  // was a count of freed handles nothing read
  // threads backend: cross-process emulation of IOSQE_IO_DRAIN
  RobustLock tb_lock;
  uint64_t tb_next_seq;
  uint32_t tb_finished_seq; // futex: moves whenever a counted chain finishes or a dead slot's count is dropped
  uint32_t tb_drain_active; // futex: 1 while a drain is pending or running
  uint64_t tb_drain_seq;
  // Slots with at least one shared wait registered (shared_wait.h), seq_cst bits.
  uint64_t waiting_slots[64];
  // Reap demand (reaper.h): slots with in-flight ops someone else must reap, and the
  // orphans of dead issuers not yet reaped. Seq_cst.
  uint64_t foreign_slots[64];
  uint32_t orphans_outstanding;
  uint32_t reap_demand_pad;
  // Named arena regions (a module's shared state: buffer pool, WAL buffer), set by the
  // postmaster before it forks, looked up by name in every process.
  struct Region { char name[24]; uint64_t offset; uint64_t size; } regions[16];
  RobustLock regions_lock;
  RobustLock files_lock;  // file open/close: dedupe by identity, reference counts
  FaultTable faults;  // test-only fault injection rules (fault_injection.h)
  FileSyncShared file_sync;  // sync cycle, failed data/directory sync, sync statistics (file_sync.h)
  // statistics
  uint64_t stat_corrupt_reports;     // every detection below, plus corrupt CQEs
  uint64_t stat_dead_slots_cleaned;
  uint64_t stat_corrupt_handles;     // an issuer found its in-flight handle scribbled on
  uint64_t stat_integrity_anomalies; // found by integrity scans (verifyHandles, bpVerify)
  uint64_t stat_integrity_repairs;
  char data_dir[4096];
  RingShared rings[kMaxRings];
};

struct SegmentConfig {
  uint32_t ring_count = 1;
  uint32_t ring_entries = 256;
  uint32_t max_slots = 64;
  uint32_t max_files = 256;
  uint64_t arena_size = 16u << 20;
  bool sqpoll = false;
  uint32_t sqpoll_idle_ms = 50;
  Topology topology = TOPO_SHARED;
  Backend backend = BACKEND_IO_URING;
  bool fixed_buffers = true;
  std::string data_dir;
};

// This process's view of a segment. One per segment per process, shared by every
// JS environment (main thread and worker threads) attached in this process.
struct ThreadBackend;
struct Segment {
  uint64_t id = 0;
  int memfd = -1;
  uint8_t* base = nullptr;
  uint64_t size = 0;
  SegmentHeader* hdr = nullptr;
  bool same_address = false;
  bool is_postmaster = false;
  ProcSlot* slots = nullptr;
  HandleTable handles{};
  FileEntry* files = nullptr;
  ArenaView arena{};
  uint64_t registrant_arena_base = 0;  // arena address as registered (postmaster's)
  std::vector<RingMap> rings;
  int data_dir_fd = -1;
  // process-local
  uint32_t handle_cursor = 0;  // HandleTable::cursor (relaxed atomic)
  std::mutex mu;
  int env_refs = 0;
  std::vector<std::thread> watchers;
  std::atomic<bool> stopping{false};
  int stop_efd = -1;  // process-local: wakes this process's watchers at detach
  // Slot credited with reaps by this process's watchers and pool: one of this
  // process's live sessions (moves on when that session detaches). Atomic access.
  uint32_t reaper_slot = 0;
  std::vector<uint32_t> local_slots;  // live sessions of this process (under mu)
  // Sessions of this process woken through an eventfd (the threads backend, or a kernel
  // without io_uring futex waits): slot -> eventfd, -1 otherwise. A completer in this
  // process writes it instead of ringing the slot's futex: one wakeup, no thread between.
  // The eventfds stay open until the segment is unmapped (a later session on the same
  // slot reuses its eventfd), so a completer racing a detach never writes a closed or
  // recycled fd number.
  std::unique_ptr<std::atomic<int>[]> local_wake;
  std::vector<int> local_wake_fds;  // [slot] -> the eventfd made for it here, -1 (under mu)
  ThreadBackend* pool = nullptr;
  bool fixed_files = false;
};

uint64_t layout_size(const SegmentConfig& cfg, uint64_t* slots_off, uint64_t* handles_off, uint64_t* files_off,
                     uint64_t* arena_off, uint32_t* max_handles);
// Postmaster: create memfd + header + rings. On failure returns -errno and a message.
int segment_create(const SegmentConfig& cfg, Segment* seg, std::string* err);
// Child: map memfd (same address if possible), validate header, map rings.
int segment_attach(int memfd, const std::vector<int>& ring_fds, const std::vector<int>& event_fds, Segment* seg,
                   std::string* err);
void segment_unmap(Segment* seg);
bool segment_running(Segment& seg);
// Whether a submission may go ahead: the segment is running, or it is stopping and the
// submitter is the postmaster's own environment doing the shutdown checkpoint (after
// every worker has exited; see Postmaster.stop). Never once the segment is stopped.
bool segment_accepts_io(Segment& seg, bool shutdown_exempt);
// Carves `size` bytes aligned to `align` (a power of two) out of the arena's free end
// (lock-free: CAS on arena_used; arena memory is never given back). 0 and *offset, or
// -ENOSPC when the arena has no room.
int arena_alloc(Segment& seg, uint64_t size, uint64_t align, uint64_t* offset);
// One lock-free pass over the handle table (handles_verify), counted in the header's
// integrity statistics; then the orphan count is recounted from the table and the reap
// demand reconciled with it (they decide whether reapers are woken). At most `max_out`
// anomalies are listed.
VerifyCounts segment_verify_handles(Segment& seg, bool repair, std::vector<HandleAnomaly>* out, uint32_t max_out);
// Named regions: 0 or -errno (-EEXIST, -ENOSPC, -ENOENT, -ENAMETOOLONG).
int region_set(Segment& seg, const char* name, uint64_t offset, uint64_t size);
int region_get(Segment& seg, const char* name, uint64_t* offset, uint64_t* size);
// True if [offset, offset + len) of the arena overlaps a named region: a module's shared
// state (the buffer pool's descriptors, locks and pages; the WAL buffer), which only that
// module's own ops may target. A user's completion word or read there would overwrite
// locks or pages that other processes trust.
bool arena_overlaps_region(Segment& seg, uint64_t offset, uint64_t len);
// Move the handle named by `ud` to COMPLETED (running its completion action) and
// remember whose doorbell to ring; `rs` (may be null) receives the statistics.
CompleteInfo deliver_completion(Segment& seg, uint64_t ud, int32_t res, uint32_t reaper_slot, RingShared* rs,
                                WakeSet& wake);
void ring_doorbells(Segment& seg, const WakeSet& wake);
// Wake one slot's environment: its local eventfd if it is in this process and has one,
// else its doorbell futex (any process).
void ring_slot(Segment& seg, uint32_t slot);

}  // namespace rm
