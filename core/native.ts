// The one place the compiled addon is loaded (built from source by `npm install`, node-gyp),
// and the typed shape of everything it exports: the ring and session functions, the file
// sync and data-directory lock functions, the buffer pool's (native/bufferpool_napi.cc)
// and the WAL's (native/wal_napi.cc). Every TypeScript module reaches the addon through
// `native`, so a signature changes in one file.
import path from 'node:path';
import type { FileEntryInfo, FileSyncState, RingmasterStats } from './stats';
import type { KillPointName } from './constants';

export interface NativeInfo {
  segmentId: number;
  slot: number;
  homeRing: number;
  backend: 'io_uring' | 'threads';
  topology: 'shared' | 'per-process';
  rings: number;
  ringEntries: number;
  cqEntries: number;
  sqpoll: boolean;
  fixedBuffers: boolean;
  fixedBuffersErrno: number;
  fixedFiles: boolean;
  sameAddress: boolean;
  maxHandles: number;
  maxFiles: number;
  maxProcesses: number;
  arenaSize: number;
  segmentSize: number;
  postmasterPid: number;
  features: number;
  dataDir: string;
}

/** Named kill points (test hooks): the list is KILL_POINTS in core/constants.ts. */
export type { KillPointName };

export interface NativeSession {
  /** The staging area (10 float64 per op), the completion buffer (4 int32 per op), the control words and the staged ops' private buffers, shared with native/submission.h. */
  setStage(fields: Float64Array, out: Int32Array, ctl: Int32Array, buffers: (Uint8Array | undefined)[], onCompletions?: (count: number) => void): void;
  /** Submits staged ops [ctl[4], ctl[5]): how many went is in ctl[3] (their quads in `out`); undefined if the environment is terminating. */
  flush(): void;
  /** A function doing what `flush()` does, called without a receiver (cheaper per call); it throws ERR_RINGMASTER_DETACHED once the session is gone. */
  flushFunction(): () => void;
  /** Collects this environment's completions into `out`: returns how many quads. */
  collect(): number;
  /** This environment's wake channel and how often each kind of wakeup came (diagnostics, tests). */
  wakeInfo(): { channel: 'ring' | 'eventfd'; selfWake: boolean; reaps: boolean; selfWakes: number; doorbells: number; sweeps: number; swept: number; reapedHere: number; cqWakes: number; stalledReaps: number };
  openFile(path: string, flags: number, mode: number): number;
  /**
   * true: closed or released; false: not open; `{ fsync }`: the last handle of a file with unsynced writes (sync it, then close again; `force` closes anyway).
   * With `epoch` (from closeFileUnlessLast): `{ reopened }`, the last handle, but a handle was added since; nothing changed (prepare again, then close with the new epoch).
   */
  closeFile(id: number, force?: boolean, epoch?: number): boolean | { fsync: boolean } | { reopened: number };
  /** Under the file table's lock: true, one reference fewer (other handles remain); false: not open; `{ last }`: the only reference, nothing changed (its epoch for closeFile). */
  closeFileUnlessLast(id: number): boolean | { last: number };
  fileInfo(id: number): { path: string; flags: number; slot: number } | null;
  fileRef(id: number): boolean;
  arena(): ArrayBuffer;
  arenaAlloc(size: number, align: number): number;
  info(): NativeInfo;
  stats(): Omit<RingmasterStats, 'files'>;
  forkFds(): { memfd: number; ringFds: number[]; eventFds: number[] };
  cleanupProcess(pid: number): number;
  sweepDeadSlots(): number;
  reapNow(ring?: number): number;
  setRunState(state: number): void;
  /** The postmaster's shutdown checkpoint: this environment may submit while the segment is stopping. */
  setShutdownExempt(on: boolean): void;
  runState(): number;
  inflight(): number;
  handlesInUse(): number;
  handleSnapshot(): [number, number, number, number, number, number][];
  detach(): void;
  waitWord(offset: number, value: number, direct?: boolean): number;
  cancelWait(id: number): void;
  regionSet(name: string, offset: number, size: number): void;
  regionGet(name: string): { offset: number; size: number } | null;
  debugHoldLock(ring: number, which: 'submit' | 'complete', midSubmit?: boolean): boolean;
  debugSubmitRawNop(ring: number, userData: bigint): boolean;
  /** Test hooks only: garbage over a whole shared table, or over `count` random entries. Returns entries written (false: hooks off / no such region). */
  debugScribble(region: 'handles' | 'files' | 'bufferDescriptors' | 'mappingTable', seed: number, count?: number): number | false;
  verifyHandles(repair: boolean): { found: number; repaired: number; anomalies: { index: number; problem: string; word: string; repaired: boolean }[] };
  /** Test hooks only: install (or clear, with null) fault rule `index`. */
  debugSetFault(index: number, rule: { opMask?: number; fileSlot?: number; kind?: number; skip?: number; repeat?: boolean | number; error?: number; delayUs?: number } | null): boolean;
  debugFaultFired(index: number): number;
  debugKillPoint(name: KillPointName, rule: { pid?: number; skip?: number; stop?: boolean } | null): boolean;
  debugKillPointFired(name: KillPointName): number;
  killPoint(name: KillPointName, probe?: boolean): boolean;
  /** A function answering killPoint(name, true), the name checked once (a probe on a hot path). */
  killPointProbe(name: KillPointName): () => boolean;
  _onCompletions?: (count: number) => void;
}

export interface NativeAddon extends FileSyncAddon, DataDirLockAddon, BufferPoolAddon, WalAddon {
  /** The second argument is ignored (completions reach `NativeSession._onCompletions`). */
  createSegment(options: Record<string, unknown>, unused?: unknown): NativeSession;
  attachForked(memfd: number, ringFds: number[], options: { reaper: boolean; eventFds?: number[] }): NativeSession;
  attachThread(segmentId: number): NativeSession;
  probe(): { ok: boolean; errno: number; code: string; features: number; kernel: string };
  /** The calling thread asks for a `us` µs scheduler slice (0: the kernel's); with `libraryThreads`, so do this process's watcher and doorbell threads started later. 0 or -errno. */
  setWakeSlice(us: number, libraryThreads: boolean): number;
}

/** The shared file table's sync state (native/file_sync_napi.cc). */
export interface FileSyncAddon {
  fileSyncBegin(s: NativeSession): number;
  writeBarrier(s: NativeSession, fileId: number): Uint32Array;
  writeBarrierLeft(s: NativeSession, fileId: number, refs: Uint32Array): number;
  fileSyncPending(s: NativeSession): [number, boolean][];
  fileSynced(s: NativeSession, fileId: number, cycle: number, fsync: boolean): boolean;
  fileSyncState(s: NativeSession): FileSyncState;
  fileEntries(s: NativeSession): FileEntryInfo[];
  dirSync(s: NativeSession, dir: string, absolute: boolean): number;
}

/** One owner per data directory (native/datadir_lock.h). */
export interface DataDirLockAddon {
  dataDirLock(dataDir: string, content: string): { status: number; fd?: number; previous: string; path: string };
  dataDirUnlock(fd: number, clear: boolean): void;
  dataDirShare(dataDir: string): { fd: number; content: string };
}

/** Where the pool's shared state lies in the arena (`bpInfo`). */
export interface NativePoolInfo {
  offset: number;
  pages: number;
  pageSize: number;
  descOffset: number;
  descSize: number;
  ioSeqField: number;
  lockField: number;
  pagesOffset: number;
}

/** The pool's counters of one environment or of all (`bpStats`). */
export interface NativePoolCounters {
  hits: number; misses: number; reads: number; writes: number; evictions: number; ioWaits: number; completedByOther: number;
}

/**
 * The buffer pool's mechanism. Statuses come back as the first element of a tuple (the
 * pool status enums of native/buffer_pool.h, mirrored in core/constants.ts).
 */
export interface BufferPoolAddon {
  bpLayout(pages: number, pageSize: number, maxProcesses: number): number;
  bpInit(s: NativeSession, offset: number, size: number, pages: number, pageSize: number, releaseOnHolderDeath: number): void;
  bpInfo(s: NativeSession): NativePoolInfo | null;
  /**
   * [PIN_OK, buffer id] | [PIN_NEED_CLEAN, dirty buffer id] | [PIN_EXHAUSTED] | [PIN_TOO_MANY]
   * | [PIN_CORRUPT, 1 if the mapping table (0: the descriptors)]. Callers read the second
   * element only for the statuses that carry one.
   */
  bpPin(s: NativeSession, fileId: number, block: number): [number, number];
  /** mode 1/2: register a wait for an unpin (returns [wait word offset, seq]); mode 0: record the time waited (ns). */
  bpPinWait(s: NativeSession, mode: number, waitedNs?: number): [number, number];
  /** [IO_VALID] | [IO_CLAIMED, seq] | [IO_WAIT, seq of the IO to wait for] | [IO_FAILED, its error] | [IO_CORRUPT]. */
  bpStartIo(s: NativeSession, id: number, waited: number, zero: boolean, first: boolean, fileId: number, block: number): [number, number];
  bpAbortIo(s: NativeSession, id: number, seq: number, errno: number, write: boolean): void;
  bpSubmitted(s: NativeSession, id: number, seq: number): void;
  bpUnpin(s: NativeSession, id: number): boolean;
  /** [file id, block, whether the page is dirty] of a buffer this environment could pin, or null. */
  bpPinById(s: NativeSession, id: number): [number, number, boolean] | null;
  /** [WS_STARTED, seq, file id, block, page LSN high and low 32 bits] | [WS_CLEAN] | [WS_BUSY, seq to wait for] | [WS_CORRUPT]. */
  bpStartWrite(s: NativeSession, id: number): [number, number, number, number, number, number];
  /** Every dirty page, flat: [bufferId, fileId, block, dirtyGen] per page. */
  bpDirty(s: NativeSession): number[];
  bpWrittenSince(s: NativeSession, id: number, fileId: number, block: number, dirtyGen: number): boolean;
  /** [clock hand, ...ids]: dirty unpinned buffers among `scan` positions from `start` (or the clock hand); usage 0 only unless `recentlyUsed`. */
  bpDirtyAhead(s: NativeSession, start: number, fromHand: boolean, scan: number, maxPages: number, recentlyUsed: boolean): number[];
  bpStats(s: NativeSession): {
    process: NativePoolCounters; global: NativePoolCounters; pinned: number; dirty: number; valid: number; ioInProgress: number;
    corruptDescriptors: number; corruptMapping: number; integrityRepairs: number; lockQueueRepairs: number; recounts: number;
    torn: number; tornTotal: number; tornPages: { fileId: number; block: number; dirty: boolean }[];
  };
  /** [buffer id, slot, pid, IO seq, submitted, write] per IO in progress. */
  bpIoInProgress(s: NativeSession): [number, number, number, number, boolean, boolean][];
  /** [LOCK_ACQUIRED] | [LOCK_QUEUED, wait cell, arena offset of its state word] | [LOCK_NO_CELL] | [LOCK_BUSY] (core/constants.ts). */
  bpLock(s: NativeSession, id: number, exclusive: boolean, queueBehindOwn: boolean, internalShared: number): number[];
  /** LOCK_WAIT_GRANTED | LOCK_WAIT_CANCELLED | LOCK_WAIT_WAITING (core/constants.ts). */
  bpLockWaitEnd(s: NativeSession, id: number, cell: number, giveUp: boolean): number;
  bpUnlock(s: NativeSession, id: number, exclusive: boolean): boolean;
  bpMarkDirty(s: NativeSession, id: number, lsn: bigint | undefined): boolean;
  bpSetChecksum(page: Uint8Array): number;
  bpVerify(s: NativeSession, repair: boolean): {
    found: number; repaired: number; lockTimeout: boolean;
    anomalies: { structure: 'bufferDescriptor' | 'mappingTable'; index: number; problem: string; repaired: boolean }[];
  };
}

/** The WAL's shared state as the addon reports it (`walState`). */
export interface NativeWalState {
  reserved: bigint; flushed: bigint; flushSeq: number; flushSeqOffset: number; failed: number; flusher: number;
  bufOffset: number; bufSize: number; segmentSize: number; startLsn: bigint; checkpointLsn: bigint; redoLsn: bigint;
  flags: number; reservedOffset: number; flushedOffset: number; failedOffset: number; checkpointRunningOffset: number;
  checkpointRedoLsn: bigint; redoEpoch: number;
}

/** The WAL counters (`walStats`); `syncsPerCommit` is computed on the JavaScript side. */
export interface NativeWalStats {
  appends: number; commits: number; fdatasyncs: number; flushes: number; writes: number; paddings: number;
  spaceWaits: number; flusherTakeovers: number; pageImages: number; imageRetries: number; crc32cHardware: boolean;
  syncsPerCommit: number;
}


/** The WAL's mechanism (native/wal_napi.cc over native/wal_buffer.cc). */
export interface WalAddon {
  walSharedSizeFor(maxProcesses: number): number;
  walSharedSize(s: NativeSession): number;
  walInit(s: NativeSession, offset: number, bufferSize: number, segmentSize: number, endLsn: number, flags: number): void;
  /** The record's end LSN, [end LSN, imaged] with a page image, or null when the buffer is full. */
  walAppend(s: NativeSession, kind: number, payload: Uint8Array, page?: Uint8Array, imagePrefix?: Uint8Array): bigint | [bigint, boolean] | null;
  walDebugAbandon(s: NativeSession, kind: number, payload: Uint8Array): bigint | null;
  walState(s: NativeSession): NativeWalState;
  /** The WAL's failed errno (0: working), a failed data-file or directory sync latched into it first. */
  walFailed(s: NativeSession): number;
  walStats(s: NativeSession): NativeWalStats;
  /** LSN up to which every record is copied in (a number: LSNs stay below 2^53). */
  walInsertedUpto(s: NativeSession): number;
  /** Adds to the shared counters: commits, flushes, fdatasyncs (one call per commit or flush). */
  walCount(s: NativeSession, commits: number, flushes: number, fdatasyncs: number): void;
  walRole(s: NativeSession, role: 'flusher' | 'checkpoint', acquire: boolean): boolean;
  walFail(s: NativeSession, errno: number): void;
  /** Publishes `upto` as durable; returns the WAL's failed errno afterwards (0: working). */
  walPublish(s: NativeSession, upto: number): number;
  /** The file id of segment `segno` (-1: none); with `fileId`, sets it (-1 clears) and returns the previous one. */
  walSeg(s: NativeSession, segno: number, fileId?: number): number;
  walSetCheckpoint(s: NativeSession, checkpointLsn: number | bigint, redoLsn: number | bigint): void;
  walChooseRedo(s: NativeSession): bigint;
  walCrc32c(bytes: Uint8Array): number;
  /** The commit path's WAL functions bound to `s`: the walX functions without their session argument. */
  walBind(s: NativeSession): NativeWalBound;
}

/** walBind's functions: each is its walX counterpart with the session bound. */
export interface NativeWalBound {
  append(kind: number, payload: Uint8Array, page?: Uint8Array, imagePrefix?: Uint8Array): bigint | [bigint, boolean] | null;
  failed(): number;
  count(commits: number, flushes: number, fdatasyncs: number): void;
  insertedUpto(): number;
  role(role: 'flusher' | 'checkpoint', acquire: boolean): boolean;
  publish(upto: number): number;
  fail(errno: number): void;
  seg(segno: number, fileId?: number): number;
}

export const RUN_RUNNING = 1;
export const RUN_STOPPING = 2;
export const RUN_STOPPED = 3;

export const native: NativeAddon = require(path.join(__dirname, '..', '..', 'build', 'Release', 'ringmaster.node'));
