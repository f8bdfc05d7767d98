// The shared WAL buffer (owner of its layout). One WalShared lives in the arena,
// published as region "wal" by the postmaster; a circular byte buffer follows it.
// LSNs are byte positions; LSN x lives at buffer position x % buf_size.
//
// Insertion: a slot announces {start = reserved it saw, len} in its WalInsert entry
// (state TRYING, seq_cst), then CASes `reserved` from start to start+len (retrying with
// a fresh start), marks COPYING, copies the record (no lock held) and goes IDLE. A
// reservation never exceeds align_down(flushed, 4096) + buf_size, so unflushed bytes
// (and the flushed bytes of a block an aligned write may rewrite) are never overwritten,
// and a dead inserter's range can always be padded at once by its slot cleanup.
// The flusher reads `reserved` first, then every slot's entry (seq_cst both sides): the
// smallest start of a non-IDLE entry bounds what is fully inserted.
//
// Full-page images (PostgreSQL's full_page_writes): a checkpoint chooses its redo point
// R as a value of `reserved` (a record boundary) inside a seqlock: `redo_epoch` goes odd,
// R is read and published in `redo_lsn`, the epoch goes even. wal_append_page reads the
// epoch and R before it reserves and the epoch again after its CAS: an odd or changed
// epoch means a redo point may have been chosen that its decision did not see. The
// decision ("log an image of the page first?") is: page LSN <= R, or the epoch was odd
// (a choice in progress: image, never wait for it). A reservation made without an image
// on a stale decision is turned into padding and made again with the image, so the
// first change of a page at or after any chosen redo point follows its image, in the
// same reservation (never split by R). A dead checkpointer's odd epoch is closed by its
// slot cleanup; until then appenders log images, they never wait.
//
// Flushing: one flusher at a time, elected by CAS on `flusher` (slot + 1); a dead one's
// role is released by its slot cleanup. Completion of a sync publishes `flushed`
// (monotonic max) and bumps `flush_seq`, the 32-bit word waiters wait on. A failed
// write or sync sets `failed` (never cleared: fsyncgate) and bumps `flush_seq` too.
#pragma once
#include <cstdint>

namespace rm {

struct Segment;

constexpr uint64_t kWalMagic = 0x314c41574d52ull;  // "RMWAL1"
constexpr uint32_t kWalRecMagic = 0x52574c31u;     // per-record magic
constexpr uint32_t kWalHeaderSize = 24;
constexpr uint32_t kWalSegTable = 16;
constexpr uint32_t kWalBlock = 4096;
// WalShared::flags: how every process opens segment files and syncs them (the
// postmaster's wal.direct / wal.walSync; workers have no options of their own).
constexpr uint32_t kWalFlagDirect = 1;
constexpr uint32_t kWalFlagDsync = 2;
// WalRecordHeader::flags: a full-page image written by wal_append_page with the change
// record that follows it in the same reservation; recovery applies it only if that
// record is there too (an image without its change would put an unlogged change on disk).
constexpr uint16_t kWalRecPairedImage = 1;
constexpr uint16_t kWalKindPageImage = 0xfff1;  // wal/format.ts KIND_PAGE_IMAGE
constexpr uint32_t kWalVersion = 3;             // 3: redo_epoch, ckpt_redo_lsn, image counters

// On-disk and in-buffer record header (little-endian), records padded to 8 bytes.
struct WalRecordHeader {
  uint32_t crc;        // CRC32C of bytes [4, total_len)
  uint32_t total_len;  // header + payload (unpadded)
  uint64_t lsn;        // this record's own start LSN (detects stale/recycled bytes)
  uint16_t kind;       // 0 = padding / no-op
  uint16_t flags;
  uint32_t magic;      // kWalRecMagic
};
static_assert(sizeof(WalRecordHeader) == kWalHeaderSize, "record header is an on-disk format");

enum WalInsertState : uint32_t { WI_IDLE = 0, WI_TRYING = 1, WI_COPYING = 2 };
struct WalInsert {
  uint32_t state;
  uint32_t len;    // reserved bytes (padded)
  uint64_t start;  // the LSN it reserves (or is trying to)
};

struct WalSegFile {
  uint64_t segno_plus1;  // 0 = empty
  uint64_t file_id;      // shared file-table id (generation x 65536 + slot)
};

struct WalShared {
  uint64_t magic;
  uint32_t version;
  uint32_t max_slots;
  uint64_t buf_off;      // arena offset of the circular buffer (4 KiB aligned)
  uint64_t buf_size;     // multiple of 4 KiB
  uint64_t seg_size;
  uint64_t inserts_off;  // arena offset of WalInsert[max_slots]
  uint32_t flags;        // kWalFlag*: set at init, read-only afterwards
  // hot words
  alignas(64) uint64_t reserved;  // next LSN to reserve
  alignas(64) uint64_t flushed;   // durable up to here
  uint32_t flush_seq;    // futex-style word for _waitWord: bumped on publish and failure
  uint32_t failed;       // 0, or the positive errno that failed the WAL
  uint32_t flusher;      // 0 = none, else slot + 1
  uint32_t ckpt_running; // checkpoint in progress (slot + 1)
  uint32_t redo_epoch;   // seqlock around a checkpoint's choice of redo point: odd while choosing
  uint32_t pad0;
  uint64_t start_lsn;    // where this run began
  uint64_t last_ckpt_lsn;
  uint64_t redo_lsn;     // the last redo point chosen (published when the checkpoint starts)
  uint64_t ckpt_redo_lsn;// the redo point of the last checkpoint that completed
  // statistics (relaxed)
  uint64_t stat_appends;
  uint64_t stat_commits;
  uint64_t stat_syncs;
  uint64_t stat_flushes;
  uint64_t stat_writes;
  uint64_t stat_pads;
  uint64_t stat_space_waits;
  uint64_t stat_flusher_takeovers;
  uint64_t stat_page_images;   // full-page images logged by wal_append_page
  uint64_t stat_image_retries; // reservations made again with an image (a redo point moved)
  WalSegFile segs[kWalSegTable];
};

// Bytes needed for the shared part (WalShared + insert table), 4 KiB aligned.
uint64_t wal_shared_size(uint32_t max_slots);

// Looks up (and validates) the WAL of this segment; nullptr if absent or corrupt.
WalShared* wal_get(Segment& seg);
int wal_init(Segment& seg, uint64_t off, uint64_t buf_size, uint64_t seg_size, uint64_t start_lsn, uint32_t flags);
// Appends one record; returns its end LSN in *end. -EAGAIN: no room yet (flush first);
// -EIO: the WAL has failed; -EINVAL / -E2BIG: bad arguments.
int wal_append(Segment& seg, uint32_t slot, uint16_t kind, const uint8_t* payload, uint32_t n, uint64_t* end,
               bool debug_abandon);
// Appends the change record of a page (kind, payload) and, first and in the same
// reservation, a full-page image of `page` if the page LSN (bytes 0..7) is at or below the
// redo point chosen last, decided atomically against that choice (see above). The image
// record (kind 0xfff1, flag kWalRecPairedImage) is `prefix` (wal/format.ts's image header:
// block, path length, data length, path) + the page with its LSN set to the change
// record's end LSN and its checksum recomputed. The caller holds the page's exclusive
// lock. *imaged says whether an image was logged. Errors as wal_append.
int wal_append_page(Segment& seg, uint32_t slot, uint16_t kind, const uint8_t* payload, uint32_t n, const uint8_t* page,
                    uint32_t page_size, const uint8_t* prefix, uint32_t prefix_len, uint64_t* end, bool* imaged);
// Checkpoint start: chooses the redo point (the current end of reservations) and
// publishes it in redo_lsn, inside the seqlock. -EBUSY unless `slot` holds ckpt_running.
int wal_choose_redo(Segment& seg, WalShared* w, uint32_t slot, uint64_t* redo);
// Test hook (RINGMASTER_TEST_HOOKS): the next wal_append_page of this process chooses a
// redo point itself between its decision and its reservation (a checkpoint starting at
// the worst instant), so the stale-decision path runs.
void wal_debug_choose_redo_in_next_append();
uint64_t wal_inserted_upto(Segment& seg, WalShared* w);
bool wal_try_flusher(Segment& seg, WalShared* w, uint32_t slot);
void wal_release_flusher(Segment& seg, WalShared* w, uint32_t slot);
void wal_publish(Segment& seg, WalShared* w, uint64_t lsn);
void wal_fail(Segment& seg, WalShared* w, int32_t err);

}  // namespace rm
