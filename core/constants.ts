// Numbers that cross between JavaScript and the addon: op codes and link flags in the
// staged op fields, completion kinds, the result that marks garbage in shared memory, and
// the buffer pool's and the WAL's status codes. The native headers own them (they are part
// of the segment ABI); this module mirrors them once for every TypeScript module, and
// test/unit/native-constants.test.ts reads the headers and fails if a value here differs.

// ---- native/io_handles.h ---------------------------------------------------------

/** IoOp: what a staged op does (field 0 of an encoded op). */
export const OP_NOP = 0;
export const OP_READ = 1;
export const OP_WRITE = 2;
export const OP_FSYNC = 3;
export const OP_FDATASYNC = 4;

/** IoLinkFlag: how an op is ordered against the next one (field 1 of an encoded op). */
export const LINK = 1;
export const HARDLINK = 2;
export const DRAIN = 4;
/** The issuer's self-wake goes behind this chain even though a soft link may break (internal: the WAL's commit). */
export const SELF_WAKE = 8;

/**
 * kCorruptResult (-EUCLEAN): the result a completion carries when what it refers to in
 * shared memory was garbage (another process scribbled on it).
 */
export const CORRUPT_RESULT = -117;  // -EUCLEAN

// ---- native/submission.h ---------------------------------------------------------

/** kOpFields: float64 fields per op in the staging area JavaScript fills and the addon reads. */
export const OP_STAGE_FIELDS = 10;

// ---- native/completion_kinds.h ---------------------------------------------------

/** CompletionKind: the action whichever process reaps an op runs for it (field 6 of an encoded op). */
export const KIND_NONE = 0;
export const KIND_COMPLETION_WORD = 1;
export const KIND_BUFFER_READ_DONE = 2;
export const KIND_BUFFER_WRITE_DONE = 3;
export const KIND_WAL_WRITE_DONE = 4;
export const KIND_WAL_SYNC_DONE = 5;
export const KIND_WAL_DSYNC_WRITE_DONE = 6;

// ---- native/buffer_pool.h --------------------------------------------------------

/** Read results the pool's completion stores in place of the kernel's (negative, beyond any errno). */
export const BP_ERR_CHECKSUM = -10001;
export const BP_ERR_SHORT_READ = -10002;
/** The page is fenced: an exclusive holder died mid-update (a restart rebuilds it from the WAL). */
export const BP_ERR_TORN = -10003;
/** The read returned 0 bytes: the block lies wholly past the end of the file. */
export const BP_ERR_PAST_EOF = -10004;

/** kPageHeaderSize: bytes at the start of every page the pool owns (8-byte LSN, 4-byte CRC32C, 4 reserved). */
export const PAGE_HEADER_SIZE = 16;

/** bpInit's flags. */
export const POOL_RELEASE_ON_HOLDER_DEATH = 1;

/** PinStatus: bpPin's first element. */
export const PIN_OK = 0;
export const PIN_NEED_CLEAN = 3;
export const PIN_EXHAUSTED = 4;
export const PIN_TOO_MANY = 5;
export const PIN_CORRUPT = 6;
export const PIN_ALIASED = 7;

/** IoStartStatus: bpStartIo's first element. */
export const IO_VALID = 0;
export const IO_CLAIMED = 1;
export const IO_WAIT = 2;
export const IO_FAILED = 3;
export const IO_CORRUPT = 4;

/** WriteStartStatus: bpStartWrite's first element. */
export const WS_STARTED = 0;
export const WS_CLEAN = 1;
export const WS_BUSY = 2;
export const WS_CORRUPT = 3;

// ---- Linux errno values that Node's os.constants.errno lacks (<asm-generic/errno.h>) ----

/** The postmaster has stopped or died: its rings accept no more IO. */
export const ESHUTDOWN = 108;
/** Structure needs cleaning: the magnitude of CORRUPT_RESULT. */
export const EUCLEAN = 117;

// ---- native/wal_buffer.h ---------------------------------------------------------

/** kWalFlag*: walInit's flags. */
export const WAL_FLAG_DIRECT = 1;
export const WAL_FLAG_DSYNC = 2;

// ---- answers of the Node-API glue (native/bufferpool_napi.cc), not header enums ---------
// bpLock and bpLockWaitEnd translate the mechanism's results (LockAcquireResult,
// LockWaitEndResult) into these, and throw for the refusals.

/** bpLock's first element. */
export const LOCK_QUEUED = 0;
export const LOCK_ACQUIRED = 1;
export const LOCK_NO_CELL = 2;
export const LOCK_BUSY = 3;

/** bpLockWaitEnd's answer. */
export const LOCK_WAIT_CANCELLED = 0;
export const LOCK_WAIT_GRANTED = 1;
export const LOCK_WAIT_WAITING = 2;

// ---- native/fault_injection.h ----------------------------------------------------

/**
 * The named kill points (test hooks), in the order of the KillPoint enum: a process
 * arriving at an armed one SIGKILLs itself there (SIGSTOPs, if armed with `stop`). This list is the one source for
 * TypeScript; test/unit/native-constants.test.ts checks it against the enum, the
 * addon's name table (fault_injection.cc), the places that reach each point, and the
 * kill-point table in RELIABILITY.md.
 */
export const KILL_POINTS = [
  'handles-reserved',
  'sqes-reserved',
  'sqes-published',
  'cqe-delivered',
  'wal-written',
  'checkpoint-pages-flushed',
  'checkpoint-record-durable',
  'checkpoint-control-written',
  'wake-before-reap',
  'lock-wake',
  'lock-handoff',
  'wal-page-image-copied',
  'checkpoint-redo-choosing',
  'checkpoint-redo-chosen',
  'sqe-prepared',
  'tb-chain-counted',
  'pool-victim-untagged',
  'pool-victim-half-inserted',
  'pool-pin-counted',
  'pool-unpin-counted',
  'pool-shared-lock-counted',
  'pool-shared-unlock-counted',
  'pool-write-claimed',
] as const;

/** A named kill point (KILL_POINTS). */
export type KillPointName = (typeof KILL_POINTS)[number];
