// Every `ERR_RINGMASTER_*` code this package raises, with when it happens: the one
// table. README's errors table lists the same codes (test/unit/error-codes.test.ts fails if a
// code used anywhere in the TypeScript or C++ sources is missing here or from README).
// Errors named after an errno (EIO, ESHUTDOWN, ...) and Node's argument codes
// (ERR_INVALID_ARG_TYPE, ERR_INVALID_ARG_VALUE, ERR_OUT_OF_RANGE) are not listed.

export const ERROR_CODES = {
  ERR_RINGMASTER: 'A native error without a code. This should not happen; please report it.',

  // Lifecycle and attaching
  ERR_RINGMASTER_DATADIR_LOCKED: "Postmaster.start()/open() on a data directory another postmaster owns (the lock file `postmaster.pid` names it: the error's `holder` has its pid and start time), or that forked workers of a postmaster that died still hold (they may still write). Nothing in the directory was changed.",
  ERR_RINGMASTER_CLOSED: 'A handle was used after close()/stop(), pm.fork() was called on a stopped postmaster, or the environment is shutting down. When a handle closes with IO still pending, that IO\'s IoResult carries this error.',
  ERR_RINGMASTER_DETACHED: 'The native session behind the handle is already detached. Normally caught earlier as ERR_RINGMASTER_CLOSED.',
  ERR_RINGMASTER_NOT_FORKED: 'attach() without a token in a process that was not started by pm.fork()/pm.clusterFork().',
  ERR_RINGMASTER_ALREADY_ATTACHED: 'attach() was called twice in one forked process.',
  ERR_RINGMASTER_ATTACH: 'The handed-over attach data is malformed, or the segment fd failed validation (bad magic, a layout version from another ringmaster version, corrupt offsets, a failed mmap); `errno` says more.',
  ERR_RINGMASTER_NOT_ATTACHED: 'attach(token) in a process that has no mapping of that segment (a token sent to another process, or its postmaster stopped).',
  ERR_RINGMASTER_NO_SLOTS: 'All maxProcesses process slots are in use.',
  ERR_RINGMASTER_WORKER_FAILED: "A child of pm.fork()/pm.clusterFork() ended (or could not be spawned) before it attached: 'worker-failed', pm.whenAttached().",

  // Files and IO
  ERR_RINGMASTER_BAD_FILE: 'files.get(id), or an op, named a file id that is unknown or already closed (ids carry a generation: a reused table slot does not match an old id).',
  ERR_RINGMASTER_FILE_CLOSED: 'A FileHandle was used or closed after it was closed, or closed after another handle for the same id had already closed it; or markDirty was called on a page of a file whose last handle has closed (the page can no longer be written).',
  ERR_RINGMASTER_FILE_ALIASED: 'A buffer-pool read through a file id whose file is also open under another id (opened with other access flags: readOnly or not, direct or not) whose pages the pool already caches. One file is cached under one id at a time, so that no read sees a stale copy; read through that id, or close its handles first.',
  ERR_RINGMASTER_PATH_ESCAPE: 'files.open() was given a path that resolves outside dataDir (`..`, an absolute path, a symlink).',
  ERR_RINGMASTER_SYNC_FAILED: "A data-file or directory sync failed, now or earlier (any process): the shared failed state. `errno` is the sync's. A checkpoint (and the last close() of a written file) rejects with it until a restart; see README, 'The failed state'.",
  ERR_RINGMASTER_BUFFER_CHANGED: "An IO's private buffer was detached or resized smaller while the IO was in flight (the bytes read did not land in it; what was written may not be what it held), or a wal.append payload changed size while append() waited for room.",
  ERR_RINGMASTER_CORRUPT: "Shared state of this op (its IO handle, a buffer descriptor, the mapping table) was overwritten with garbage by another process; see stats().corruptReports and db.checkIntegrity().",

  // Arena
  ERR_RINGMASTER_ARENA_FULL: 'allocate() found no room left in the arena (raise arenaSize).',
  ERR_RINGMASTER_ARENA_TOO_SMALL: 'The buffer pool and the WAL buffer do not fit in arenaSize together; raised by Postmaster.start() before anything is created.',

  // Batches
  ERR_RINGMASTER_BATCH_SUBMITTED: 'A batch was modified or submitted a second time.',
  ERR_RINGMASTER_EMPTY_BATCH: 'link(), hardlink() or drain() was called on a batch with no ops.',

  // Buffer pool
  ERR_RINGMASTER_NO_BUFFER_POOL: 'db.buffers was used but the postmaster was started without the bufferPool option.',
  ERR_RINGMASTER_BUFFER_POOL_INIT: 'The buffer pool could not be laid out in the arena at start (errno says why).',
  ERR_RINGMASTER_CHECKSUM: "A page read into the pool failed its CRC32C check; the page stays invalid (retryable), every waiter gets the error.",
  ERR_RINGMASTER_PAST_EOF: "buffers.read(file, block) of a block wholly past the end of the file. Read it with { mode: 'extend' } to create it as a new zeroed page.",
  ERR_RINGMASTER_SHORT_READ: "buffers.read of a block the file ends inside of (a torn extension or a truncated file), in every mode but 'zero'.",
  ERR_RINGMASTER_PAGE_TORN: 'The page was fenced: a process died holding its exclusive lock, so it may be half-changed. Reads and locks fail until a restart rebuilds it from the WAL.',
  ERR_RINGMASTER_POOL_EXHAUSTED: 'buffers.read waited pinWaitMs for a buffer to become evictable (every buffer stayed pinned, or dirty and its writeback failed: see cause).',
  ERR_RINGMASTER_TOO_MANY_PINS: 'This environment holds 256 distinct pinned pages: release some.',
  ERR_RINGMASTER_IO_TIMEOUT: "A reader waited ioWaitMs for another process's read of the same page.",
  ERR_RINGMASTER_LOCK_TIMEOUT: 'lockShared()/lockExclusive() waited lockWaitMs.',
  ERR_RINGMASTER_WRITEBACK_TIMEOUT: "buffers.flushAll() (and so a checkpoint) waited timeoutMs (a checkpoint's: wal.timeoutMs) for other processes and a page dirty when it began was still not written: another process claimed its write and did not finish it (stopped, stalled), or held its content lock. The error's `pages` name each one (bufferId, fileId, file, block, ioPid, ioSubmitted). A checkpoint leaves the control file and redo point as they were; the next one retries.",
  ERR_RINGMASTER_SELF_DEADLOCK: "lockShared()/lockExclusive() on a page this environment already holds in a conflicting mode (through another PinnedBuffer): it could only wait for itself. Fails at once; see buffers.configure({ waitForOwnLocks }).",
  ERR_RINGMASTER_LOCK_HELD: 'lockShared()/lockExclusive() on a PinnedBuffer this handle already locked.',
  ERR_RINGMASTER_NOT_LOCKED: 'unlock() (or a writeback) on a buffer this environment has not locked.',
  ERR_RINGMASTER_NOT_LOCKED_EXCLUSIVE: 'markDirty() without the exclusive lock.',
  ERR_RINGMASTER_NOT_PINNED: 'release() (or a lock) on a buffer this environment has not pinned.',
  ERR_RINGMASTER_BUFFER_RELEASED: 'A PinnedBuffer was used after release().',
  ERR_RINGMASTER_WAL_HOOK: 'A custom WalHook broke its contract (appendFlushChain returned null but added ops).',
  ERR_RINGMASTER_WAL_NOT_DURABLE: "A custom WalHook's flush() resolved but the WAL is not durable up to the page's LSN: the page is not written.",

  // WAL
  ERR_RINGMASTER_NO_WAL: 'db.wal was used but the postmaster was started without the wal option.',
  ERR_RINGMASTER_WAL: 'The native WAL could not be set up or appended to (errno says why).',
  ERR_RINGMASTER_WAL_FAILED: 'A WAL write or fdatasync failed earlier: the WAL is in its failed state (no flush resolves as durable again) until a restart recovers it.',
  ERR_RINGMASTER_WAL_CONTROL: "The control file (pg_control) is unreadable or invalid, or wal.segmentSize differs from the data directory's.",
  ERR_RINGMASTER_WAL_UNKNOWN_KIND: "Recovery found a record whose kind has no redo handler (`kind` and `lsn` on the error); nothing was replayed. Add the handler, or start with wal.onUnknownKind: 'skip'.",
  ERR_RINGMASTER_WAL_CORRUPT: 'Recovery found the WAL ending before the checkpoint record the control file names: refusing to start.',
} as const;

export type RingmasterErrorCode = keyof typeof ERROR_CODES;
