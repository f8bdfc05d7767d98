// The package entry (package.json main/types/exports name its compiled path, dist/index.js).
// It sits above the three layers: the one module that imports core, the buffer pool and the
// WAL together.
// Loading the two modules registers them with core (core/modules.ts), so every process
// that requires the package -- the postmaster, forked workers, worker threads -- has
// `db.buffers` and `db.wal`, and the postmaster can init the modules it is configured with.
// Nothing in core/, bufferpool/ or wal/ imports this file (test/unit/import-graph.test.ts).
export { Postmaster, open, ATTACH_ENV } from './core/postmaster';
export type { ProcessExit, PostmasterEvents, ShutdownCheckpoint, StopOptions, WorkerAttached, WorkerFailure } from './core/postmaster';
export { attach } from './core/attach';
export type { AttachOptions } from './core/attach';
export { Ringmaster, Batch } from './core/ringmaster';
export type { Features, ThreadToken, IntegrityAnomaly, IntegrityReport, RingmasterEvents, RingmasterListener, RingmasterStats, RingStats, ProcessStats } from './core/ringmaster';
export { lsnToString, lsnFromString } from './core/lsn';
export { FileHandle, Files } from './core/files';
export type { FileOpenOptions } from './core/files';
export { RingmasterError, IoCancelledError, errnoName } from './core/errors';
export { ERROR_CODES } from './core/error-codes';
export type { RingmasterErrorCode } from './core/error-codes';
export type { StartOptions } from './core/options';
export type { ArenaSlice, IoBuffer, IoResult, OpOptions, OpName } from './core/io';
export { BufferPool } from './bufferpool/index';
export type { BufferPoolOptions, BufferPoolConfig, BufferPoolStats } from './bufferpool/index';
export { PinnedBuffer, setPageChecksum, PAGE_HEADER_SIZE } from './bufferpool/index';
export { Wal, formatLsn, segmentName, walFailedError, KIND_CHECKPOINT, KIND_PAGE_IMAGE, USER_KIND_MAX } from './wal/index';
export type { WalOptions, WalRecord, RedoHandler, RecoveryInfo } from './wal/index';
export type { WalHook, WalPage } from './core/modules';
