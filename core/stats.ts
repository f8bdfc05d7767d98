// The counters `db.stats()` returns: the addon fills in the rings and processes (shared
// memory, the same in every process), the handle adds the file table and sync state. Types
// only, so that the native interface and the handle can both name them.

/** Shared sync statistics and the failed state (`db.stats().files`). */
export interface FileSyncState {
  /** The current sync cycle (bumped by every sync pass). */
  cycle: number;
  /** 0, or the errno of the first data-file or directory sync that failed (any process). */
  failedErrno: number;
  failedPath: string | null;
  /** Data-file syncs done by sync passes (checkpoints, last closes), all processes. */
  syncs: number;
  /** ... of which fsync (the rest fdatasync). */
  fsyncs: number;
  /** Failed data-file syncs, any issuer. */
  failures: number;
  dirSyncs: number;
  dirFailures: number;
  /** The last 8 directories synced, oldest first ('.' is the data directory; absolute: above it). */
  recentDirSyncs: string[];
}

/** An open entry of the shared file table (introspection). */
export interface FileEntryInfo {
  id: number;
  path: string;
  /** Handles open on it, in every process. */
  refs: number;
  /** Written since the last sync pass that covered it. */
  pending: boolean;
}

/** Counters of one ring (`stats().rings[i]`): shared by every process. */
export interface RingStats {
  sqes: number;
  enters: number;
  cqes: number;
  /** CQEs whose user_data named no IO handle (garbage): counted, never acted on. */
  corruptCqes: number;
  /** CQEs for an IO handle that has moved on (an older generation): ignored. */
  staleCqes: number;
  overflowFlushes: number;
  /** Half-done submissions of a dead submitter repaired by the next lock holder. */
  submitLockRepairs: number;
  completionLockRepairs: number;
  /** Completions of dead issuers' IO reaped (and freed) by someone else. */
  orphansReaped: number;
  submitLockOwnerDied: number;
  completionLockOwnerDied: number;
}

/** Counters of one attached environment (`stats().processes[i]`). */
export interface ProcessStats {
  slot: number;
  pid: number;
  kind: 'postmaster' | 'forked' | 'thread';
  submitted: number;
  completed: number;
  /** Its IO that another process reaped. */
  completedByOther: number;
  /** CQEs it reaped (for anyone). */
  reaped: number;
}

/** `db.stats()`: the whole segment's counters, the same in every process. */
export interface RingmasterStats {
  /** Garbage found in shared memory (all kinds): see docs/ARCHITECTURE.md, "Shared memory is untrusted". */
  corruptReports: number;
  deadProcessesCleaned: number;
  corruptHandles: number;
  integrityAnomalies: number;
  integrityRepairs: number;
  /** IO handles in use now, across all processes (0 when idle). */
  handlesInUse: number;
  /** One entry per io_uring ring (empty with the threads backend). */
  rings: RingStats[];
  /** One entry per attached environment (the postmaster, forked workers, threads). */
  processes: ProcessStats[];
  /** The shared file table's open entries, and the data-file / directory sync counters and failed state. */
  files: FileSyncState & { entries: FileEntryInfo[] };
}
