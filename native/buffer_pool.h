// The shared buffer pool: one arena region ("bufferpool") holding a pool header,
// buffer descriptors, the tag -> buffer mapping table (hash buckets chained through
// the descriptors, guarded by partitioned robust locks), per-slot pin/lock records
// (so a dead holder's pins and content locks can be given back), per-slot stats, and
// the pages themselves (4 KiB aligned, so O_DIRECT works).
//
// Descriptor state is ONE 64-bit word changed only by CAS:
//   bits  0-17 pin count | 18-20 usage count (0..5) | 21 TORN (a dead holder's
//   exclusive lock was taken back: fenced until restart) | 22 VALID | 23 DIRTY |
//   24 IO_IN_PROGRESS (read if !VALID, write if VALID) | 25 IO_ERROR | 26 TAG_VALID |
//   27-38 slot that claimed the IO in progress | 39 IO_WAITERS (somebody waits for that
//   IO to end) | 40 RECOUNT (slot cleanup is recounting the pin count from the live slots'
//   records: nobody starts a pin or unpin meanwhile)
// `io_seq` (32-bit, waitable) is odd while an IO is in progress and even otherwise;
// the IO's kind_arg carries (seq & 0xFFFFF) << 32 | buffer id so a stale completion
// (for an IO that cleanup already aborted) is detected and ignored.
// `content_lock` (32-bit): bit 31 exclusive (low bits: holder slot + 1), else the count of
// shared holders; bit 30 WAITERS (the buffer's wait queue, wait_queue.h, may not be empty:
// releases go through the queue), bit 29 HANDOFF (a woken waiter lost a race: nobody
// barges, the next release hands the lock to the head), bit 28 WAKING (a woken waiter has
// not retried yet: releases wake nobody else), bit 27 RECOUNT (the shared count is being
// recounted: nobody starts a shared lock or unlock outside the queue lock meanwhile).
// Rules: buffer_pool.cc, "content locks"; the recount: buffer_pool.cc, "recounts".
//
// Everything inside is an offset or index; every index read from shared memory is
// bounds-checked; this file owns the layout.
#pragma once
#include <cstdint>
#include <vector>

#include "robust_lock.h"
#include "wait_queue.h"

namespace rm {

struct Segment;

constexpr uint64_t kPoolMagic = 0x4c4f4f5046554242ull;  // "BBUFPOOL"
constexpr uint32_t kPoolPartitions = 32;
constexpr uint32_t kPinsPerSlot = 256;
constexpr uint32_t kPageHeaderSize = 16;  // 8-byte LSN, 4-byte CRC32C, 4 reserved

constexpr uint64_t BS_PIN_MASK = (1ull << 18) - 1;
constexpr uint64_t BS_USAGE_SHIFT = 18;
constexpr uint64_t BS_USAGE_MASK = 7ull << BS_USAGE_SHIFT;
constexpr uint64_t BS_USAGE_MAX = 5;
constexpr uint64_t BS_VALID = 1ull << 22;
constexpr uint64_t BS_DIRTY = 1ull << 23;
constexpr uint64_t BS_IO = 1ull << 24;
constexpr uint64_t BS_IO_ERROR = 1ull << 25;
constexpr uint64_t BS_TAG = 1ull << 26;
// The slot that claimed the current IO, set by the same CAS that sets IO_IN_PROGRESS, so
// a claimer killed right after its CAS is still known to its slot's cleanup.
constexpr uint64_t BS_OWNER_SHIFT = 27;
constexpr uint64_t BS_OWNER_MASK = 0xFFFull << BS_OWNER_SHIFT;  // slots < 4096
inline uint64_t bs_claim(uint64_t s, uint32_t slot) { return (s & ~BS_OWNER_MASK) | BS_IO | ((uint64_t)slot << BS_OWNER_SHIFT); }
inline uint32_t bs_owner(uint64_t s) { return (uint32_t)((s & BS_OWNER_MASK) >> BS_OWNER_SHIFT); }
// TORN: an exclusive lock on this page was taken back from a holder that died (or a
// thread that was terminated) without unlocking: the page may be half-changed. It is
// fenced until restart: never read, locked, written back or evicted.
constexpr uint64_t BS_TORN = 1ull << 21;
// IO_WAITERS: somebody waits for the current IO to end (set by an atomic OR before it
// waits on io_seq; cleared by the CAS that ends the IO). Only then does the end wake the
// processes waiting on shared words: every IO completion used to ring every one of them.
// A bit left over (set just after an IO ended) costs one needless wake at the next end.
constexpr uint64_t BS_IO_WAITERS = 1ull << 39;
// RECOUNT: a dead slot's intent word named this buffer's pin count, so nobody knows whether
// its last CAS happened; the cleaner recounts the pins from the live records (pin_records.h).
// Not a pin: the clock sweep skips the buffer meanwhile, pinners and unpinners wait.
constexpr uint64_t BS_RECOUNT = 1ull << 40;
constexpr uint64_t BS_KNOWN = BS_PIN_MASK | BS_USAGE_MASK | BS_VALID | BS_DIRTY | BS_IO | BS_IO_ERROR | BS_TAG | BS_TORN | BS_OWNER_MASK | BS_IO_WAITERS |
                               BS_RECOUNT;

// content_lock: exclusive = bit 31 | (holder slot + 1), so a dead holder's lock is found
// from the word itself (a record written after the CAS could be missing); shared = count.
constexpr uint32_t kLockExclusive = 0x80000000u;
constexpr uint32_t kLockWaiters = 0x40000000u;
constexpr uint32_t kLockHandoff = 0x20000000u;
constexpr uint32_t kLockWaking = 0x10000000u;
constexpr uint32_t kLockRecount = 0x08000000u;   // the shared count is being recounted (BS_RECOUNT's twin)
constexpr uint32_t kLockHoldMask = 0x07FFFFFFu;  // holder slot + 1, or the shared count
inline uint32_t exclusive_word(uint32_t slot) { return kLockExclusive | (slot + 1); }
// Wait-cell modes of content-lock waiters.
constexpr uint32_t kWaitShared = 1;
constexpr uint32_t kWaitExclusive = 2;

// A state word no legal transition produces: unknown bits, usage > 5, a flag on a
// tagless buffer (eviction clears them all), DIRTY without VALID, VALID with IO_ERROR.
inline bool desc_state_valid(uint64_t s) {
  if (s & ~BS_KNOWN) return false;
  if (((s & BS_USAGE_MASK) >> BS_USAGE_SHIFT) > BS_USAGE_MAX) return false;
  if (!(s & BS_TAG) && (s & (BS_VALID | BS_DIRTY | BS_IO | BS_IO_ERROR))) return false;
  if ((s & BS_DIRTY) && !(s & BS_VALID)) return false;
  if ((s & BS_VALID) && (s & BS_IO_ERROR)) return false;
  return true;
}

// Pool-specific error codes (negative, beyond errno range).
constexpr int32_t BP_ERR_CHECKSUM = -10001;
constexpr int32_t BP_ERR_SHORT_READ = -10002;
constexpr int32_t BP_ERR_TORN = -10003;
// The read returned 0 bytes: the block lies wholly past the end of the file (it does not
// exist yet). Kept apart from BP_ERR_SHORT_READ (the file ends *inside* the block: a torn
// extension or a truncated file) because only this one may become a new zeroed page.
constexpr int32_t BP_ERR_PAST_EOF = -10004;
// bufferPool.onHolderDeath: 'release': give a dead holder's exclusive lock back without
// fencing the page (for page formats whose every update is one atomic store).
constexpr uint32_t POOL_RELEASE_ON_HOLDER_DEATH = 1;

struct PoolHeader {
  uint64_t magic;        // stored last (release) by init
  uint32_t pages;
  uint32_t page_size;
  uint32_t nbuckets;     // power of two
  uint32_t max_slots;
  uint64_t desc_off;     // all offsets relative to the region start
  uint64_t buckets_off;
  uint64_t locks_off;
  uint64_t pins_off;
  uint64_t sstats_off;
  uint64_t pages_off;
  uint64_t region_size;
  uint64_t wparts_off;   // content-lock wait queues: partitions, queue heads, cells
  uint64_t wqueues_off;
  uint64_t wcells_off;
  uint64_t intents_off;  // SlotIntent per slot
  uint64_t wait_ticket;  // atomic: enqueue order of wait cells
  uint32_t unpin_seq;    // waitable: bumped when a buffer's last pin goes while pin_waiters > 0
  uint32_t pin_waiters;  // slots waiting for a buffer to become unpinned (pool exhausted)
  uint32_t clock_hand;   // atomic
  uint32_t flags;        // POOL_* below, set by init
  uint64_t gstats[32];   // global counters (relaxed)
};

struct BufDesc {
  uint64_t state;         // see above; CAS only
  uint64_t file_id;       // tag: JS file id (generation * 65536 + slot)
  uint64_t block;         // tag: block number
  uint64_t lsn;           // page LSN (max of markDirty)
  uint32_t io_seq;        // futex-style word: odd while IO in progress
  uint32_t content_lock;  // waitable: bit 31 exclusive, else shared count
  uint32_t dirty_gen;     // bumped by every markDirty
  uint32_t write_gen;     // dirty_gen when the current write started
  uint32_t hash_next;     // next buffer id + 1 in the bucket chain (0 = end); partition lock
  int32_t last_error;     // result of the last failed IO
  uint32_t io_slot;       // slot that claimed the current IO
  int32_t io_pid;         // its pid
  uint32_t io_submitted;  // io_seq value once submitted (cleanup aborts unsubmitted IO)
  uint32_t done_gen;      // write_gen of the last write that completed in full (only moves forward)
};
static_assert(sizeof(BufDesc) == 72, "BufDesc is part of the segment ABI");

struct PinEntry {
  uint32_t buf_plus1;     // 0 = free
  uint32_t pins;
  uint32_t shared_locks;
  uint32_t exclusive;
};

// One per slot, on its own cache line: the count (a buffer's pins, or its shared content
// locks) the slot is changing right now, from before its CAS on the word until its record
// says the same (pin_records.h). Written by the slot's own JS thread, and by its cleaner
// once the slot is no longer live (`agent_pid`: that cleaner, so a recount can tell a
// cleaner at work from a dead one).
struct SlotIntent {
  uint64_t word;         // 0, or pin_intent_tag(buffer, kind)
  int32_t agent_pid;     // the process cleaning this slot (0: none)
  uint32_t pad0;
  uint64_t agent_start;  // its start time (process_start_time): a recycled pid is not it
  uint64_t pad[5];
};
static_assert(sizeof(SlotIntent) == 64, "one cache line per slot");
constexpr uint64_t kIntentPins = 1;    // the buffer's pin count (state word)
constexpr uint64_t kIntentShared = 2;  // its shared content-lock count
inline uint64_t pin_intent_tag(uint32_t id, uint64_t kind) { return (uint64_t)(id + 1) | (kind << 32); }

enum SlotStat {
  ST_HITS, ST_MISSES, ST_READS, ST_WRITES, ST_EVICTIONS, ST_IO_WAITS, ST_COMPLETED_BY_OTHER, ST_COMPLETED_FOR_OTHER,
  ST_LOCK_WAITS,      // content-lock requests that queued
  ST_LOCK_WAIT_NS,    // their time in the queue (granted or given up)
  ST_LOCK_TIMEOUTS,   // queued requests given up (lockWaitMs)
  ST_LOCK_HANDOFFS,   // locks handed straight to a queued waiter (HANDOFF), counted for the releaser
  ST_LOCK_WAKEUPS,    // queued waiters woken to retry, counted for the releaser
  ST_PIN_WAITS,       // reads that found every buffer pinned and waited (pool exhausted)
  ST_PIN_WAIT_NS,     // their waiting time
  ST_PIN_WAITING,     // gauge: this slot's reads now waiting for an unpin (counted once in pin_waiters)
  ST_COUNT
};
// Global-only counters, in PoolHeader::gstats past the per-slot ones (SlotStats has 16).
enum GlobalStat { G_CORRUPT_DESCRIPTORS = 16, G_CORRUPT_MAPPING, G_INTEGRITY_REPAIRS, G_TORN_PAGES, G_LOCK_QUEUE_REPAIRS, G_RECOUNTS };
struct SlotStats { uint64_t v[16]; };
static_assert(ST_COUNT <= 16, "SlotStats holds 16 counters");

struct LockCell { RobustLock lock; char pad[64 - sizeof(RobustLock) % 64]; };

// Process-local view, built from a validated copy of the header.
struct PoolView {
  uint8_t* base = nullptr;      // region start in this process
  uint64_t region_off = 0;      // region offset in the arena
  PoolHeader* h = nullptr;
  BufDesc* d = nullptr;
  uint32_t* buckets = nullptr;
  LockCell* locks = nullptr;    // kPoolPartitions mapping partitions, then the recount lock
  PinEntry* pins = nullptr;
  SlotIntent* intents = nullptr;
  SlotStats* sstats = nullptr;
  uint8_t* pages = nullptr;
  WaitQueues wq;                // content-lock waiters: one queue per buffer
  uint32_t n = 0, page_size = 0, nbuckets = 0, max_slots = 0;
};

uint64_t pool_layout_size(uint32_t pages, uint32_t page_size, uint32_t max_slots, PoolHeader* out);
// 0 or -errno. Region must be zeroed arena memory.
int pool_init(Segment& seg, uint64_t off, uint64_t size, uint32_t pages, uint32_t page_size, uint32_t flags);
// Finds and validates the pool of this segment (false: none or corrupt).
bool pool_view(Segment& seg, PoolView* v);


uint32_t page_checksum(const uint8_t* page, uint32_t size);
bool page_all_zero(const uint8_t* page, uint32_t size);

// Counts a corrupt descriptor or mapping-table entry found on an operation's path
// (pool stats and the segment's corruptReports).
void pool_report_corrupt(Segment& seg, PoolView& v, GlobalStat which);

// After the CAS that set IO_IN_PROGRESS: moves io_seq to the new IO's (odd) value.
uint32_t pool_claim_seq(BufDesc* d);

// ---- content locks (the word above, and the buffer's wait queue) --------------------
enum LockAcquireResult : int32_t {
  LA_ACQUIRED = 0,  // held, and recorded in `rec`
  LA_QUEUED = 1,    // *cell waits in the queue: sleep on its state word, then content_lock_wait_end
  LA_NO_CELL = 2,   // every wait cell of this slot is in use: try again after one of them ends
  LA_BUSY = 3,      // the queue's lock was not granted in time (its holder is stopped)
  LA_CORRUPT = 4,   // the lock word is garbage
};
// The caller holds a pin and has refused a request that would wait for its own slot's
// hold (a self-deadlock), except `recursive_shared`: a shared request by a slot that
// already holds a shared lock is granted past the queue (waiting behind an exclusive
// waiter that waits for us would deadlock).
int32_t content_lock_acquire(Segment& seg, PoolView& v, uint32_t slot, uint32_t id, bool excl, bool recursive_shared,
                             PinEntry* rec, uint32_t* cell);
enum LockWaitEndResult : int32_t { LW_GRANTED = 0, LW_CANCELLED = 1, LW_WAITING = 2, LW_BAD_CELL = 3 };
// A queued request's wait ended (its word changed, or a timeout). Woken: it retries.
// GRANTED: the hold is recorded in `rec` and the cell is free; with `cancel`, a request
// still waiting leaves the queue (CANCELLED); otherwise it keeps waiting (WAITING), after a
// pass that also repairs a release whose wake was lost (a releaser that died).
int32_t content_lock_wait_end(Segment& seg, PoolView& v, uint32_t slot, uint32_t id, uint32_t cell, bool cancel,
                              PinEntry* rec);
// Gives up one hold (the exclusive one, or `shared` shared ones) and wakes (or, in HANDOFF,
// hands the lock to) the queued waiters the release lets run, ringing only their doorbells.
// The caller updates its record.
// A shared release is counted under `agent`'s intent word (set by the caller, pin_records.h).
void content_lock_release(Segment& seg, PoolView& v, uint32_t id, bool excl, uint32_t shared = 1, uint32_t agent = ~0u);

// ---- recounts (a dead slot's intent word named a count: buffer_pool.cc, "recounts") ----
// Recounts the pin count (kIntentPins) or shared-lock count (kIntentShared) of buffer id
// from the records of the slots other than `skip_slot` (the dead one) and of the slots
// whose agent is dead with an intent on that count.
void pool_recount(Segment& seg, PoolView& v, uint32_t id, uint64_t kind, uint32_t skip_slot);
// Found RECOUNT on the word (the caller's own intent cleared): waits until it is gone,
// finishing the recount itself if its recounter died.
void pool_recount_wait(Segment& seg, PoolView& v, uint32_t id, uint64_t kind);

// A buffer's last pin went: if reads wait for one (pool exhausted), bump unpin_seq and
// wake the waiting environments.
void pool_note_unpinned(Segment& seg, PoolView& v);

// Completion actions (also used to abort an IO that was never submitted).
void pool_read_done(Segment& seg, PoolView& v, uint32_t id, uint32_t seq20, int32_t res);
void pool_write_done(Segment& seg, PoolView& v, uint32_t id, uint32_t seq20, int32_t res);

// ---- one slot's operations --------------------------------------------------------
// The numbered statuses below are the contract with bufferpool/index.ts: keep the values.

// The calling session's hold on the pool: its segment, its process slot (< max_slots,
// checked by whoever builds it) and the validated view.
struct PoolSlot {
  Segment* seg = nullptr;
  uint32_t slot = 0;
  PoolView v;
};

// Byte offset of a word of the pool region in the arena (for JS waits on it).
uint64_t pool_arena_offset(const PoolView& v, const void* word);

enum PinStatus : int32_t {
  PIN_OK = 0,          // value: the buffer id, pinned and recorded
  PIN_NEED_CLEAN = 3,  // value: a dirty unpinned buffer: write it back, then retry
  PIN_EXHAUSTED = 4,   // every buffer pinned or in IO (or a partition lock timed out)
  PIN_TOO_MANY = 5,    // this slot's pin records are full
  PIN_CORRUPT = 6,     // value: 0 a descriptor, 1 the mapping table is corrupt (counted)
  PIN_ALIASED = 7,     // value 0: the file is cached under its other open entry's id (file_pool_tag);
                       // 1: the file table's lock was not granted for that check
};
struct PinResult {
  int32_t status;
  uint64_t value;
};
// Looks the tag up and pins its buffer (usage + 1), or takes a clock-sweep victim,
// evicts its old tag and gives it this one (the caller then reads the page: StartRead).
PinResult pool_pin(PoolSlot& p, uint64_t file, uint64_t block);

// A read that found every buffer pinned waits for unpin_seq to move (the last pin of a
// buffer went) instead of polling the clock sweep. Begin (`first`: registers the wait,
// per slot so a dead waiter's count goes with its slot, and counts it; otherwise only
// reads the seq again) returns the seq to wait on; end deregisters and adds the time.
uint32_t pool_pin_wait_begin(PoolSlot& p, bool first);
void pool_pin_wait_end(PoolSlot& p, double waited_ns);

enum IoStartStatus : int32_t {
  IO_VALID = 0,    // the page is valid (or was zero-filled here)
  IO_CLAIMED = 1,  // value: the IO's seq: the caller reads the page, then completes
  IO_WAIT = 2,     // value: seq of another IO in progress: wait for io_seq != value
  IO_FAILED = 3,   // value: the error of the IO this caller waited for (or BP_ERR_TORN)
  IO_CORRUPT = 4,  // the descriptor's state or tag is garbage (counted)
};
struct IoStartResult {
  int32_t status;
  int64_t value;
};
// The caller holds a pin. Claims the read if the page is neither valid nor being read;
// `waited_seq` is the seq of the IO the caller waited for (0: none), whose failure is
// then reported instead of retrying. `zero`: the page is zero-filled instead of read.
// With `check_tag`, the descriptor must still carry (file, block).
IoStartResult pool_start_read(PoolSlot& p, uint32_t id, uint32_t waited_seq, bool zero, bool first, bool check_tag,
                              uint64_t file, uint64_t block);
// The claimed IO reached the ring (slot cleanup no longer aborts it).
void pool_io_submitted(PoolSlot& p, uint32_t id, uint32_t seq);
// The claimed IO never reached the ring: completes it with `err`.
void pool_abort_io(PoolSlot& p, uint32_t id, uint32_t seq, int32_t err, bool write);

// False: this slot holds no pin on it.
bool pool_unpin(PoolSlot& p, uint32_t id);

// pool_lock / pool_lock_wait_end refusals, past the LockAcquireResult / LockWaitEndResult values.
enum LockRefusal : int32_t {
  LR_NOT_PINNED = 16,     // the buffer is not pinned by this slot
  LR_TORN = 17,           // the page is fenced (BS_TORN); a lock granted meanwhile was given back
  LR_SELF_DEADLOCK = 18,  // the request would wait for this slot's own hold (*own_exclusive says which)
};
// Content lock request of a pinned buffer: an LockAcquireResult or a LockRefusal.
// `internal_shared`: shared holds the caller says are its own writeback's (they always end),
// which do not count as a hold the request would wait for. `wait_for_own` lets a request
// wait for this slot's own hold (another async flow of the same environment gives it back).
int32_t pool_lock(PoolSlot& p, uint32_t id, bool excl, bool wait_for_own, double internal_shared, uint32_t* cell,
                  bool* own_exclusive);
// A LockWaitEndResult (LW_BAD_CELL counted as corrupt) or LR_NOT_PINNED / LR_TORN.
int32_t pool_lock_wait_end(PoolSlot& p, uint32_t id, uint32_t cell, bool cancel);
// False: this slot does not hold that lock.
bool pool_unlock(PoolSlot& p, uint32_t id, bool excl);

enum MarkDirtyResult : int32_t { MD_DIRTIED = 0, MD_NOT_LOCKED = 1, MD_CORRUPT = 2, MD_FILE_CLOSED = 3, MD_READ_ONLY = 4 };
// Needs the exclusive lock. Raises the page LSN (descriptor and page header) to `lsn`.
int32_t pool_mark_dirty(PoolSlot& p, uint32_t id, uint64_t lsn);

enum WriteStartStatus : int32_t { WS_STARTED = 0, WS_CLEAN = 1, WS_BUSY = 2, WS_CORRUPT = 3, WS_NOT_LOCKED = 4 };
struct WriteStart {
  int32_t status;
  uint32_t seq;  // WS_STARTED: the write's seq; WS_BUSY: the seq of the IO in progress
  uint64_t file = 0, block = 0, lsn = 0;
};
// Needs a pin and a content lock (the page cannot change under the write). The tag is
// trusted only if the mapping table, under its partition lock, maps it to this buffer.
// Started: the page's checksum is set and the write claimed.
WriteStart pool_start_write(PoolSlot& p, uint32_t id);

// Pins a valid page by id without a usage bump (writeback, checkpoints). False: not a
// valid page (or the pin records are full).
bool pool_pin_by_id(PoolSlot& p, uint32_t id, uint64_t* file, uint64_t* block, bool* dirty);

// A checkpoint's view of one page that was dirty when it began: the buffer, its tag, and
// its dirty_gen then. Its changes up to then are written once pool_written_since says so.
struct DirtyPage {
  uint32_t id;
  uint64_t file, block;
  uint32_t gen;
};
// Every dirty valid buffer, pinned or not, its write in progress or not (a write claimed
// but not submitted yet is not on any disk: the checkpoint must wait for it).
void pool_dirty_buffers(PoolView& v, std::vector<DirtyPage>* out);
// Has a write that covered `page` (its changes up to page.gen) completed in full since?
// True when the buffer is clean, holds another tag (only a clean page is evicted), or its
// done_gen lies between page.gen and its dirty_gen now. False while it is not known (a
// garbage state word too: the writeback attempt reports that).
bool pool_written_since(PoolView& v, const DirtyPage& page);

// The background writer's pick: up to `max` dirty buffers (valid, unpinned, not in IO,
// not torn) among `scan` positions from `start`, or from the clock hand when `from_hand`.
// `recently_used`: take buffers with a usage count too; without it only usage 0, the ones
// the sweep would take on this lap but cannot, because they are dirty. *hand: the hand's
// position (a counter that wraps at 2^32: its advance between two calls is how many
// buffers the sweep passed).
void pool_dirty_ahead(PoolView& v, uint32_t start, bool from_hand, uint32_t scan, uint32_t max, bool recently_used,
                      std::vector<uint32_t>* out, uint32_t* hand);

// Counters and a scan of the descriptors (each state word read once).
struct TornPage {
  uint64_t file, block;
  bool dirty;
};
struct PoolCensus {
  uint64_t process[ST_COUNT], global[ST_COUNT];
  uint64_t torn_total, corrupt_descriptors, corrupt_mapping, integrity_repairs, lock_queue_repairs, recounts;
  uint32_t pinned = 0, dirty = 0, valid = 0, io = 0, torn = 0, lock_waiters = 0;
  std::vector<TornPage> torn_pages;  // the first 64
};
void pool_census(PoolSlot& p, PoolCensus* out);

// One O(pages + buckets) integrity scan with every partition lock held (see buffer_pool.cc).
struct PoolAnomaly {
  const char* structure;
  uint32_t index;
  const char* problem;
  bool repaired;
};
struct PoolVerifyReport {
  uint32_t found = 0, repaired = 0;
  bool lock_timeout = false;
  std::vector<PoolAnomaly> anomalies;  // the first 64
};
void pool_verify(Segment& seg, PoolView& v, bool repair, PoolVerifyReport* out);

// Every descriptor with IO_IN_PROGRESS and who claimed it.
struct PoolIoClaim {
  uint32_t id, slot;
  int32_t pid;
  uint32_t seq;
  bool submitted, write;
};
void pool_ios_in_progress(PoolView& v, std::vector<PoolIoClaim>* out);

// The buffer's content-lock word (diagnostics: holder, shared count, flags).
uint32_t pool_lock_word(PoolView& v, uint32_t id);

// Sets the page's checksum (bytes 8..12) and returns it.
uint32_t page_set_checksum(uint8_t* page, uint32_t size);

}  // namespace rm
