// Data-file and directory durability: the sync pass a checkpoint runs before it moves the
// redo point (and the last close of a file runs before its sync request leaves the shared
// table), and directory syncs. The protocol and why it is enough are in
// native/file_sync.h; this file is the policy around it.
import path from 'node:path';
import { constants } from 'node:os';
import { RingmasterError, errnoName } from './errors';
import { native, type NativeSession } from './native';
import type { IoResult } from './io';
import type { FileEntryInfo, FileSyncState } from './stats';
export type { FileEntryInfo, FileSyncState } from './stats';

/**
 * What the sync code needs of a handle (a `Ringmaster`): its session, its staged IO pushed
 * out, and batches of syncs. Named here so that core's file code does not depend on the
 * handle class that owns it.
 */
export interface SyncingHandle {
  _native(): NativeSession;
  _flushStaged(): void;
  batch(): { fsync(file: number): { submit(): Promise<IoResult[]> }; fdatasync(file: number): { submit(): Promise<IoResult[]> } };
}

const addon = native;

const EBADF = constants.errno.EBADF;

export interface SyncedFile {
  id: number;
  path: string;
  /** fsync (the size may have changed, or the file was created/truncated); else fdatasync. */
  fsync: boolean;
}

export interface SyncPassResult {
  /** The cycle this pass covered: every write submitted before the pass began is durable. */
  cycle: number;
  files: SyncedFile[];
  /** The syncs were skipped (test hook RINGMASTER_DEBUG_SKIP_DATA_SYNC). */
  skipped: boolean;
  /** Time waiting for the writes in flight when the pass began, and time syncing, ms. */
  barrierMs: number;
  syncMs: number;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function fileSyncState(db: SyncingHandle): FileSyncState {
  return addon.fileSyncState(db._native());
}

export function fileEntries(db: SyncingHandle): FileEntryInfo[] {
  return addon.fileEntries(db._native());
}

export function syncFailedError(st: FileSyncState): RingmasterError {
  return new RingmasterError('ERR_RINGMASTER_SYNC_FAILED',
    `a data-file or directory sync failed (${errnoName(st.failedErrno)}${st.failedPath ? `, ${st.failedPath}` : ''}): ` +
    'the kernel may have dropped the writes it had not synced, so no checkpoint can succeed and nothing more is reported durable; restart and recover',
    { errno: -Math.abs(st.failedErrno) });
}

/** Throws ERR_RINGMASTER_SYNC_FAILED if any process's data-file or directory sync has failed. */
export function checkSyncFailed(db: SyncingHandle): void {
  const st = fileSyncState(db);
  if (st.failedErrno) throw syncFailedError(st);
}

/** The test hook of a positive control: this process's checkpoints skip the data-file syncs. */
export function skipDataSyncs(): boolean {
  return process.env.RINGMASTER_TEST_HOOKS === '1' && process.env.RINGMASTER_DEBUG_SKIP_DATA_SYNC === '1';
}

/** The test hook of a positive control: the WAL opens its segments without O_DSYNC even with walSync 'dsync'. */
export function skipWalDsync(): boolean {
  return process.env.RINGMASTER_TEST_HOOKS === '1' && process.env.RINGMASTER_DEBUG_SKIP_WAL_DSYNC === '1';
}

// Waits until every IO handle that was reserved, or submitted for a write (to `fileId`
// only, if given), when the pass began has completed: those writes are in the page
// cache (or on the device) before the syncs start.
async function writeBarrier(db: SyncingHandle, fileId: number, deadline: number): Promise<void> {
  const n = db._native();
  const refs = addon.writeBarrier(n, fileId);
  let delay = 0;
  while (refs.length > 0 && addon.writeBarrierLeft(db._native(), fileId, refs) > 0) {
    if (Date.now() > deadline) {
      throw new RingmasterError('ETIMEDOUT', 'writes that were in flight when the sync pass began did not complete in time', { errno: -constants.errno.ETIMEDOUT });
    }
    await sleep(delay);
    delay = Math.min(delay ? delay * 2 : 1, 10);
  }
}

/**
 * A sync pass: every data file written through ringmaster (any process) before the pass
 * began is made durable (fsync, or fdatasync where its size cannot have changed). With
 * `fileId`, only that file. Rejects with ERR_RINGMASTER_SYNC_FAILED if a sync failed
 * (the failed state, see native/file_sync.h), or with the error of a sync that did not
 * run (ECANCELED, ESHUTDOWN, ETIMEDOUT): the files stay pending for the next pass.
 */
export async function syncPass(db: SyncingHandle, options: { fileId?: number; timeoutMs: number; skipSyncs?: boolean }): Promise<SyncPassResult> {
  checkSyncFailed(db);
  const n = db._native();
  const deadline = Date.now() + options.timeoutMs;
  const t0 = Date.now();
  const cycle = addon.fileSyncBegin(n);
  await writeBarrier(db, options.fileId ?? -1, deadline);
  const t1 = Date.now();
  let pending = addon.fileSyncPending(n);
  if (options.fileId !== undefined) pending = pending.filter(([id]) => id === options.fileId);
  const files: SyncedFile[] = [];
  const skipped = options.skipSyncs === true;
  const failures: RingmasterError[] = [];
  await Promise.all(pending.map(async ([id, fsync]) => {
    const info = n.fileInfo(id);
    if (!info) return;  // closed meanwhile: its last close synced it
    if (skipped) return;  // the positive control's broken checkpoint: no sync, nothing recorded
    {
      let ok = false;
      try {
        const b = db.batch();
        const [r] = await (fsync ? b.fsync(id) : b.fdatasync(id)).submit();
        if (!r.ok && r.result === -EBADF) return;  // threads backend: closed meanwhile
        if (!r.ok) failures.push(r.error as RingmasterError);
        ok = r.ok;
      } catch (e) {
        if ((e as { code?: string }).code === 'ERR_RINGMASTER_BAD_FILE') return;  // closed before we submitted
        failures.push(e as RingmasterError);
      }
      if (!ok) return;
    }
    if (addon.fileSynced(n, id, cycle, fsync)) files.push({ id, path: info.path, fsync });
  }));
  checkSyncFailed(db);  // a failure that can mean lost data latched the failed state
  if (failures.length) throw failures[0];
  return { cycle, files, skipped, barrierMs: t1 - t0, syncMs: Date.now() - t1 };
}

function dirSyncError(db: SyncingHandle, rc: number, dir: string): RingmasterError {
  const st = fileSyncState(db);
  if (st.failedErrno) return syncFailedError(st);
  const name = errnoName(rc);
  // Directories are opened beneath the data directory only (RESOLVE_BENEATH): a symbolic
  // link that leads out of it is refused, as files' paths are.
  if (name === 'EXDEV') return new RingmasterError('ERR_RINGMASTER_PATH_ESCAPE', `directory '${dir}' leads out of the data directory (a symbolic link to elsewhere?): ringmaster opens nothing outside it`, { errno: -Math.abs(rc) });
  return new RingmasterError(name, `syncing directory '${dir}' failed: ${name}`, { errno: -Math.abs(rc) });
}

/** fsyncs a directory inside the data directory (relative path; '.' is the data directory). */
export function syncDir(db: SyncingHandle, relDir: string): void {
  const rc = addon.dirSync(db._native(), relDir, false);
  if (rc < 0) throw dirSyncError(db, rc, relDir);
}

/**
 * After `relPath` was created: fsyncs its directory and every directory above it up to
 * the data directory (someone may have just made them too).
 */
export function syncParentDirs(db: SyncingHandle, relPath: string): void {
  let dir = path.posix.dirname(relPath.split(path.sep).join('/'));
  for (;;) {
    syncDir(db, dir);
    if (dir === '.' || dir === '/' ) return;
    dir = path.posix.dirname(dir);
  }
}

/**
 * The postmaster made the data directory and `created` directories above it (mkdir -p):
 * their names are durable only once each parent is synced.
 */
export function syncCreatedDataDirs(db: SyncingHandle, dataDir: string, created: number): void {
  let dir = dataDir;
  for (let i = 0; i < created; i++) {
    dir = path.dirname(dir);
    const rc = addon.dirSync(db._native(), dir, true);
    if (rc < 0) throw dirSyncError(db, rc, dir);
  }
}
