// The package entry (package.json main/types/exports name its compiled path). It sits
// above core: the one module that imports core, the buffer pool and the WAL together.
// Loading the two modules registers them with core (core/modules.ts), so every process
// that requires the package -- the postmaster, forked workers, worker threads -- has
// `db.buffers` and `db.wal`, and the postmaster can init the modules it is configured with.
// Nothing in core/, bufferpool/ or wal/ imports this file (test/unit/import-graph.test.ts).
export { Postmaster, open, ATTACH_ENV } from './postmaster';
export type { ProcessExit, PostmasterEvents, ShutdownCheckpoint, StopOptions, WorkerAttached, WorkerFailure } from './postmaster';
export { attach } from './attach';
export type { AttachOptions } from './attach';
export { Ringmaster, Batch } from './ringmaster';
export type { Features, ThreadToken, IntegrityAnomaly, IntegrityReport, RingmasterEvents, RingmasterListener, RingmasterStats, RingStats, ProcessStats } from './ringmaster';
export { lsnToString, lsnFromString } from './lsn';
export { FileHandle, Files } from './files';
export type { FileOpenOptions } from './files';
export { RingmasterError, IoCancelledError, errnoName } from './errors';
export { ERROR_CODES } from './error-codes';
export type { RingmasterErrorCode } from './error-codes';
export type { StartOptions } from './options';
export type { ArenaSlice, IoBuffer, IoResult, OpOptions, OpName } from './io';
export { BufferPool } from '../bufferpool/index';
export type { BufferPoolOptions, BufferPoolConfig, BufferPoolStats } from '../bufferpool/index';
export { PinnedBuffer, setPageChecksum, PAGE_HEADER_SIZE } from '../bufferpool/index';
export { Wal, formatLsn, segmentName, walFailedError, KIND_CHECKPOINT, KIND_PAGE_IMAGE, USER_KIND_MAX } from '../wal/index';
export type { WalOptions, WalRecord, RedoHandler, RecoveryInfo } from '../wal/index';
export type { WalHook, WalPage } from './modules';
