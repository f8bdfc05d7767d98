// The shared write-ahead log. Native state part: native/wal_buffer.{h,cc}
// (layout, insertion, flusher election, completion kinds, slot cleanup) and
// native/wal_napi.cc. This file is the policy: group commit, segment files, the
// control file, recovery, checkpoints, and the WalHook for the buffer pool. It attaches
// itself to core when loaded (registerModule below): the `wal` start option and `db.wal`.
import fs from 'node:fs';
import path from 'node:path';
import { coreOf, pagesForWal, registerModule, type ModuleCore, type PagesForWal, type WalPage } from '../core/modules';
import { KIND_WAL_DSYNC_WRITE_DONE, KIND_WAL_SYNC_DONE, KIND_WAL_WRITE_DONE, LINK, OP_FDATASYNC, OP_WRITE, SELF_WAKE, WAL_FLAG_DIRECT, WAL_FLAG_DSYNC } from '../core/constants';
import type { EncodedOp, OpName } from '../core/io';
import { native, type NativeSession, type NativeWalBound, type NativeWalState } from '../core/native';
import type { WalHook } from '../core/modules';
import type { Batch, Ringmaster } from '../core/ringmaster';
import type { IoResult } from '../core/io';
import { optionsObject } from '../core/io';
import { RingmasterError, errnoName, fromNative, rangeError, typeError } from '../core/errors';
import { viewBytes } from '../core/bytes';
import { SyncedFile, checkSyncFailed, fileEntries, skipDataSyncs, skipWalDsync, syncDir, syncParentDirs, syncPass } from '../core/durability';
import type { FileHandle } from '../core/files';
import {
  CONTROL_FILE, ControlData, FLAG_PAIRED_IMAGE, HEADER_SIZE, KIND_CHECKPOINT, KIND_PAGE_IMAGE, ScanResult, USER_KIND_MAX, WAL_DIR,
  WalRecord, align8, decodePageImage, encodePageImage, formatLsn, parseSegmentName, readControl, scanWal,
  segmentName, writeControl,
} from './format';

export { formatLsn, segmentName, KIND_CHECKPOINT, KIND_PAGE_IMAGE, FLAG_PAIRED_IMAGE, USER_KIND_MAX } from './format';
export type { WalRecord } from './format';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const addon = native;

/**
 * A redo handler gets the record and the postmaster being started (recovery runs inside
 * `Postmaster.start`, before it resolves): apply the change through `db.buffers` / `db.files`.
 */
export type RedoHandler = (record: WalRecord, db: Ringmaster) => void | Promise<void>;

export interface WalOptions {
  /** Circular WAL buffer in the arena, bytes: a multiple of 4096, at least 64 KiB (default 1 MiB). */
  bufferSize?: number;
  /** WAL segment file size in bytes: a multiple of 4096, at least 64 KiB (default 16 MiB). */
  segmentSize?: number;
  /** The flusher waits this long before collecting a group, µs (default 0: off). */
  commitDelayUs?: number;
  /**
   * `'dsync'`: segments opened O_DSYNC, no sync op; `'fdatasync'`: writes linked to an
   * fdatasync. Default: `'dsync'` when the segments are O_DIRECT (`direct`), else `'fdatasync'`.
   */
  walSync?: 'fdatasync' | 'dsync';
  /**
   * O_DIRECT segment files: writes of whole aligned 4 KiB blocks from the arena. Default:
   * on when pg_wal's file system accepts O_DIRECT (probed at start), else off; `true` on a
   * file system without it fails the start with `EINVAL`.
   */
  direct?: boolean;
  /** Redo handlers by record kind, called in LSN order during recovery, before any worker attaches. */
  redo?: Record<number, RedoHandler>;
  /** Checkpoint every this many ms (postmaster; default 0: off). */
  checkpointIntervalMs?: number;
  /** Checkpoint when this many WAL bytes were written since the last one's redo point (default 0: off). */
  checkpointWalBytes?: number;
  /** Spare segment files kept (renamed) when a checkpoint recycles old ones (default 2). */
  keepSegments?: number;
  /** How long append/flush may wait (full buffer, busy flusher) before ETIMEDOUT, ms (default 30000). */
  timeoutMs?: number;
  /**
   * What recovery does with a record whose kind has no redo handler (and is not one of
   * the WAL's own kinds). `'error'` (default): the start fails with
   * `ERR_RINGMASTER_WAL_UNKNOWN_KIND`, naming the kind and the LSN, before any record is
   * replayed. `'skip'`: such records are skipped (counted in `recovery.skipped`).
   */
  onUnknownKind?: 'error' | 'skip';
}

interface Resolved {
  bufferSize: number;
  segmentSize: number;
  commitDelayUs: number;
  walSync: 'fdatasync' | 'dsync' | undefined;  // undefined: chosen from `direct` at start
  direct: boolean | undefined;                  // undefined: probed at start
  redo: Map<number, RedoHandler>;
  checkpointIntervalMs: number;
  checkpointWalBytes: number;
  keepSegments: number;
  timeoutMs: number;
  onUnknownKind: 'error' | 'skip';
}

const KNOWN = ['bufferSize', 'segmentSize', 'commitDelayUs', 'walSync', 'direct', 'redo', 'checkpointIntervalMs', 'checkpointWalBytes', 'keepSegments', 'timeoutMs', 'onUnknownKind'];

function int(name: string, v: unknown, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError('ERR_INVALID_ARG_TYPE', `wal.${name} must be an integer`);
  if (v < min || v > max) throw rangeError('ERR_OUT_OF_RANGE', `wal.${name} must be in ${min}..${max}, got ${v}`);
  return v;
}

export function resolveWalOptions(o: unknown): Resolved {
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw typeError('ERR_INVALID_ARG_TYPE', 'options.wal must be an object');
  const w = o as WalOptions;
  for (const k of Object.keys(w)) if (!KNOWN.includes(k)) throw typeError('ERR_INVALID_ARG_VALUE', `unknown wal option '${k}'`);
  const bufferSize = int('bufferSize', w.bufferSize, 1 << 20, 64 << 10, 2 ** 40);
  const segmentSize = int('segmentSize', w.segmentSize, 16 << 20, 64 << 10, 2 ** 40);
  if (bufferSize % 4096) throw rangeError('ERR_OUT_OF_RANGE', 'wal.bufferSize must be a multiple of 4096');
  if (segmentSize % 4096) throw rangeError('ERR_OUT_OF_RANGE', 'wal.segmentSize must be a multiple of 4096');
  if (w.walSync !== undefined && w.walSync !== 'fdatasync' && w.walSync !== 'dsync') throw typeError('ERR_INVALID_ARG_VALUE', "wal.walSync must be 'fdatasync' or 'dsync'");
  if (w.direct !== undefined && typeof w.direct !== 'boolean') throw typeError('ERR_INVALID_ARG_TYPE', 'wal.direct must be a boolean');
  if (w.onUnknownKind !== undefined && w.onUnknownKind !== 'error' && w.onUnknownKind !== 'skip') throw typeError('ERR_INVALID_ARG_VALUE', "wal.onUnknownKind must be 'error' or 'skip'");
  const redo = new Map<number, RedoHandler>();
  if (w.redo !== undefined) {
    if (w.redo === null || typeof w.redo !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', 'wal.redo must be an object { [kind]: handler }');
    for (const [k, fn] of Object.entries(w.redo)) {
      const kind = Number(k);
      if (!Number.isInteger(kind) || kind < 1 || kind > USER_KIND_MAX) throw rangeError('ERR_OUT_OF_RANGE', `wal.redo: kind must be an integer in 1..${USER_KIND_MAX}, got '${k}'`);
      if (typeof fn !== 'function') throw typeError('ERR_INVALID_ARG_TYPE', `wal.redo[${k}] must be a function`);
      redo.set(kind, fn);
    }
  }
  const commitDelayUs = int('commitDelayUs', w.commitDelayUs, 0, 0, 10_000_000);
  const timeoutMs = int('timeoutMs', w.timeoutMs, 30000, 1, 2 ** 31 - 1);
  // Every flush would wait out the delay and so time out before it could be durable.
  if (commitDelayUs >= timeoutMs * 1000) throw rangeError('ERR_OUT_OF_RANGE', `wal.commitDelayUs (${commitDelayUs} µs) must be shorter than wal.timeoutMs (${timeoutMs} ms)`);
  return {
    bufferSize,
    segmentSize,
    commitDelayUs,
    walSync: w.walSync,
    direct: w.direct,
    redo,
    checkpointIntervalMs: int('checkpointIntervalMs', w.checkpointIntervalMs, 0, 0, 2 ** 31 - 1),
    checkpointWalBytes: int('checkpointWalBytes', w.checkpointWalBytes, 0, 0, 2 ** 52),
    keepSegments: int('keepSegments', w.keepSegments, 2, 0, 1024),
    timeoutMs,
    onUnknownKind: w.onUnknownKind ?? 'error',
  };
}

// Sets op `k` of a reused list of ops (Wal#flushOnce) to the object `pool[k]` (made if
// new) holding these fields. The caller then sets the list's length: assigning in place,
// and trimming rather than emptying, keeps the list's backing store from flush to flush.
function setOp(ops: EncodedOp[], pool: EncodedOp[], k: number, name: OpName, op: number, flags: number, file: number, offset: number, length: number, arena: number, kind: number, kindArg: number): void {
  let o = pool[k];
  if (o === undefined) {
    o = { fields: [0, 0, 0, 0, 0, 0, 0, 0], buffer: undefined, name };
    pool[k] = o;
  } else {
    o.name = name;
  }
  ops[k] = o;
  const f = o.fields;
  f[0] = op; f[1] = flags; f[2] = file; f[3] = offset; f[4] = length; f[5] = arena; f[6] = kind; f[7] = kindArg;
}

// Resolves once the microtasks queued so far, and those they queue, have run: a nextTick
// runs when the microtask queue is empty.
function afterMicrotasks(): Promise<void> {
  return new Promise((resolve) => process.nextTick(resolve));
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function toLsn(v: unknown, name = 'lsn'): number {
  if (typeof v === 'bigint') {
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw rangeError('ERR_OUT_OF_RANGE', `${name} must be in 0..2^53-1, got ${v}`);
    return Number(v);
  }
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw rangeError('ERR_OUT_OF_RANGE', `${name} must be a non-negative safe integer, got ${v}`);
    return v;
  }
  throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be a bigint (or a non-negative integer)`);
}

export function walFailedError(errno: number): RingmasterError {
  return new RingmasterError('ERR_RINGMASTER_WAL_FAILED',
    `the WAL has failed (${errnoName(errno)} from a WAL write or fdatasync, or from a data-file or directory sync): nothing after the last durable LSN can be reported durable; restart and recover`,
    { errno: -Math.abs(errno) });
}

// Options of the postmaster's WAL, per process (workers learn sizes from shared memory).
const localOptions = new WeakMap<Ringmaster, Resolved>();
const staticRedo = new Map<number, RedoHandler>();

type NativeState = NativeWalState;

/** Options of `db.wal.append`. */
export interface AppendOptions {
  /**
   * The page this record changes, pinned and locked exclusively by this handle, already
   * changed and marked dirty (the safe order: lockExclusive → change → markDirty() →
   * append → markDirty(lsn)). If the page's LSN is at or below the redo point chosen last
   * (`redoLsn`), a full-page image of it is appended first, in the same reservation
   * (PostgreSQL's full_page_writes): decided atomically against a checkpoint choosing its
   * redo point, so recovery, whichever checkpoint it starts from, never replays the change
   * onto a torn page.
   */
  page?: WalPage;
}

/** Records recovery wrote back from full-page images. */
export interface RecoveryImages {
  /** Images written to their data files (and put in the buffer pool, if there is one). */
  applied: number;
  /** Images skipped because the change record appended with them is missing (cut tail). */
  skipped: number;
}

// Views of the WAL's hot shared words (reserved, flushed, flush_seq, failed, and
// checkpoint_running, which a flusher reads after each flush), read with Atomics: a
// commit checks them on every wake, and walState builds a whole object.
interface HotWords { reserved: BigUint64Array; flushed: BigUint64Array; flushSeq: Uint32Array; failed: Uint32Array; checkpointRunning: Uint32Array }

// A flush waiting in its environment's list (Wal#flush).
interface FlushWaiter { target: number; deadline: number; resolve: () => void; reject: (e: unknown) => void }

// WalShared::flags (native/wal_buffer.h): the postmaster's segment settings, for every process.

interface Piece { segno: number; fileOff: number; arenaOff: number; len: number }
interface PlannedPiece extends Piece { fileId: number }
// One chain's writes and the segment files they touch (Wal#plan).
interface Plan { pieces: PlannedPiece[]; files: number[]; upto: number; dsync: boolean }

/** What the last checkpoint this environment ran did (`db.wal.lastCheckpoint`). */
export interface CheckpointInfo {
  lsn: bigint;
  redoLsn: bigint;
  /** Dirty buffer-pool pages written. */
  pagesWritten: number;
  /** Data files synced before the checkpoint record (fsync or fdatasync each). */
  syncedFiles: SyncedFile[];
  /** The data-file syncs were skipped (test hook RINGMASTER_DEBUG_SKIP_DATA_SYNC). */
  syncsSkipped: boolean;
  /** Phases, ms: writing pages, waiting for writes in flight, syncing files, the whole checkpoint. */
  flushMs: number;
  barrierMs: number;
  syncMs: number;
  totalMs: number;
}

export interface RecoveryInfo {
  /** Where replay started (the last checkpoint's redo LSN). */
  fromLsn: bigint;
  /** Where new records go. */
  endLsn: bigint;
  records: number;
  /** Records skipped because their kind had no redo handler (`wal.onUnknownKind: 'skip'`). */
  skipped: number;
  /** Why the scan stopped ('end-of-wal' when the tail was clean). */
  stop: ScanResult['stop'];
  /** A torn or invalid record was found at the end and cut. */
  tornTail: boolean;
  /** Full-page images written back. */
  images: RecoveryImages;
}

/** Per-environment handle on the shared WAL (`db.wal`). Implements the buffer pool's WalHook. */
export class Wal implements WalHook {
  readonly db: Ringmaster;
  /** The part of core this module works through (regions, waits, submission, the session). */
  readonly #core: ModuleCore;
  #holding = false;  // this environment holds the flusher role
  /** Flushes of this environment waiting for durability (see #flush). */
  #waiters: FlushWaiter[] = [];
  #driving = false;  // #drive is running for #waiters
  #sizes: { bufOffset: number; bufSize: number; segmentSize: number; flushSeqOffset: number; direct: boolean; dsync: boolean } | null = null;
  #failedEmitted = false;
  #hotWords: HotWords | null = null;
  /** The ops of the chain #flushOnce submits, reused (see there), and their objects. */
  #chainOps: EncodedOp[] = [];
  #chainOpPool: EncodedOp[] = [];
  #bound: { session: NativeSession; fns: NativeWalBound; walWritten: () => boolean } | null = null;
  /** Set in the postmaster after recovery. */
  recovery: RecoveryInfo | null = null;
  /** The last checkpoint this environment completed. */
  lastCheckpoint: CheckpointInfo | null = null;

  constructor(db: Ringmaster) {
    this.db = db;
    this.#core = coreOf(db);
    // Workers: the buffer pool uses this WAL as soon as this environment touches db.wal
    // (deferred: the pool's constructor may itself read db.wal).
    queueMicrotask(() => {
      if (!db.closed && this.enabled) hookBufferPool(db);
    });
  }

  /** Registers a redo handler used by recoveries started later in this process (the start option is simpler). */
  static onRedo(kind: number, fn: RedoHandler): void {
    if (!Number.isInteger(kind) || kind < 1 || kind > USER_KIND_MAX) throw rangeError('ERR_OUT_OF_RANGE', `kind must be an integer in 1..${USER_KIND_MAX}`);
    if (typeof fn !== 'function') throw typeError('ERR_INVALID_ARG_TYPE', 'redo handler must be a function');
    staticRedo.set(kind, fn);
  }

  #s(): NativeSession {
    return this.#core.native();
  }
  // The commit path's native functions, bound to this environment's session (walBind):
  // bound once, they skip the per-call check of the session argument.
  #w(): NativeWalBound {
    return this.#bind().fns;
  }
  #bind(): { session: NativeSession; fns: NativeWalBound; walWritten: () => boolean } {
    const s = this.#s();  // throws if closed
    const b = this.#bound;
    if (b !== null && b.session === s) return b;
    let fns: NativeWalBound;
    try {
      fns = addon.walBind(s);
    } catch (e) {
      throw fromNative(e);  // ERR_RINGMASTER_NO_WAL as a RingmasterError
    }
    // The test hook every flush asks about (would this process die with the WAL written?).
    const nb = { session: s, fns, walWritten: s.killPointProbe('wal-written') };
    this.#bound = nb;
    return nb;
  }
  #state(): NativeState {
    try {
      return addon.walState(this.#s());
    } catch (e) {
      throw fromNative(e);  // ERR_RINGMASTER_NO_WAL as a RingmasterError
    }
  }
  #hot(): HotWords {
    let h = this.#hotWords;
    if (!h || h.flushed.length === 0) {  // first use, or the arena view went away with close()
      const st = this.#state();
      const view = (off: number, n: number) => this.db.arenaSlice(off, n).bytes;
      const b = (off: number) => { const u = view(off, 8); return new BigUint64Array(u.buffer, u.byteOffset, 1); };
      const w = (off: number) => { const u = view(off, 4); return new Uint32Array(u.buffer, u.byteOffset, 1); };
      h = { reserved: b(st.reservedOffset), flushed: b(st.flushedOffset), flushSeq: w(st.flushSeqOffset), failed: w(st.failedOffset), checkpointRunning: w(st.checkpointRunningOffset) };
      this.#hotWords = h;
    }
    return h;
  }
  #size() {
    if (!this.#sizes) {
      const st = this.#state();
      this.#sizes = {
        bufOffset: st.bufOffset, bufSize: st.bufSize, segmentSize: st.segmentSize, flushSeqOffset: st.flushSeqOffset,
        direct: (st.flags & WAL_FLAG_DIRECT) !== 0, dsync: (st.flags & WAL_FLAG_DSYNC) !== 0,
      };
    }
    return this.#sizes;
  }
  #opts(): Resolved | undefined {
    return localOptions.get(this.db);
  }
  #timeoutMs(): number {
    return this.#opts()?.timeoutMs ?? 30000;
  }
  // The failed state (a failed data-file or directory sync latched into it), without the
  // full native state: an object of a dozen fields and BigInts, a third of a commit's JS
  // time when it was read per flush.
  #failedNow(): RingmasterError | null {
    let failed: number;
    try {
      failed = this.#w().failed();
    } catch (e) {
      throw fromNative(e);
    }
    return this.#failed({ failed });
  }
  #failed(st: { failed: number }): RingmasterError | null {
    if (!st.failed) return null;
    if (!this.#failedEmitted) {
      this.#failedEmitted = true;
      const e = walFailedError(st.failed);
      queueMicrotask(() => this.db.emit('wal-failed', e));
    }
    return walFailedError(st.failed);
  }

  /** True if this segment has a WAL (the `wal` start option was given). */
  get enabled(): boolean {
    try {
      return this.#core.regionGet('wal') !== null;
    } catch {
      return false;
    }
  }

  /** LSN up to which the WAL is durable (any process). */
  flushedLsn(): bigint {
    this.#s();  // throws if closed
    return Atomics.load(this.#hot().flushed, 0);
  }
  /** Next LSN to be reserved (end of everything appended so far). */
  insertLsn(): bigint {
    return this.#state().reserved;
  }
  /**
   * The redo point chosen last: a checkpoint chooses it when it starts (the end of the
   * WAL at that instant, before it writes any page) and publishes it here at once. A
   * recovery starts at this point, or at an earlier one if this checkpoint does not
   * complete. A page whose LSN is at or below it needs a full-page image before its next
   * change: `append(kind, payload, { page })` decides that atomically; reading this value
   * and then appending is racy (a checkpoint may start in between). Read-only; before any
   * checkpoint of this run it is the recovered checkpoint's redo point.
   */
  get redoLsn(): bigint {
    return this.#state().redoLsn;
  }
  /** Whether the WAL is in the failed state (fsyncgate: permanent until restart). */
  get failed(): boolean {
    return this.#state().failed !== 0;
  }

  stats(): { appends: number; commits: number; fdatasyncs: number; flushes: number; writes: number; paddings: number; spaceWaits: number; flusherTakeovers: number; pageImages: number; imageRetries: number; crc32cHardware: boolean; syncsPerCommit: number; walSync: 'fdatasync' | 'dsync'; direct: boolean } {
    const s = addon.walStats(this.#s());
    s.syncsPerCommit = s.commits ? s.fdatasyncs / s.commits : 0;
    // The settings in force (the postmaster's, from the shared flags: a worker has no options).
    const { dsync, direct } = this.#size();
    return { ...s, walSync: dsync ? 'dsync' : 'fdatasync', direct };
  }

  /**
   * Appends a record of `kind` (1..0xFEFF) and resolves with its end LSN (pass it to
   * `flush`). Many processes append at once; no lock is held while the record is copied.
   *
   * With `{ page }` (a buffer-pool page this handle holds exclusively, already changed and
   * marked dirty) the record is the change of that page, and a full-page image of the page
   * is appended before it, in the same reservation, when the page's LSN is at or below the
   * redo point chosen last (`redoLsn`). The image is the page as the change left it, with
   * its LSN set to the returned LSN and a valid checksum, so a redo handler that skips a
   * page whose LSN is at or past `record.endLsn` skips the change after the image. Then
   * call `page.markDirty(lsn)` as always.
   */
  append(kind: number, payload: ArrayBufferView, options?: AppendOptions): Promise<bigint> {
    if (typeof kind !== 'number' || !Number.isInteger(kind)) return Promise.reject(typeError('ERR_INVALID_ARG_TYPE', 'kind must be an integer'));
    if (kind < 1 || kind > USER_KIND_MAX) return Promise.reject(rangeError('ERR_OUT_OF_RANGE', `kind must be in 1..${USER_KIND_MAX} (0 and 0xFF00.. are reserved), got ${kind}`));
    let bytes: Uint8Array;
    let image: { page: Uint8Array; prefix: Buffer } | undefined;
    try {
      // Copied into the WAL buffer before append() returns: no pinning needed.
      bytes = viewBytes(payload, 'payload', { allowEmpty: true });
      if (options !== undefined) {
        optionsObject('append', options, ['page']);
        if (options.page !== undefined) image = this.#imageOf(options.page);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    if (image === undefined) {
      // The usual case, room in the buffer: the record is in before this returns, with no
      // async function behind the promise. A full buffer takes #append's waiting loop.
      let r: bigint | [bigint, boolean] | null;
      try {
        r = this.#w().append(kind, bytes);
      } catch (e) {
        return Promise.reject(this.#appendError(e));
      }
      if (r !== null) return Promise.resolve(r as bigint);
    }
    return this.#append(kind, bytes, image);
  }

  // A native append's error, as append() reports it (a failed WAL also emits 'wal-failed').
  #appendError(e: unknown): Error {
    if ((e as { code?: string }).code === 'ERR_RINGMASTER_WAL_FAILED') this.#failed(this.#state());
    return fromNative(e);
  }

  // The page to image and the image header (wal/format.ts encodePageImage without the data).
  #imageOf(value: unknown): { page: Uint8Array; prefix: Buffer } {
    const pages = pagesForWal(this.db);
    const b = pages?.pageOf(value) ?? null;
    if (!pages || !b) throw typeError('ERR_INVALID_ARG_TYPE', 'options.page must be a PinnedBuffer (from db.buffers.read)');
    if (b.released) throw new RingmasterError('ERR_RINGMASTER_BUFFER_RELEASED', `options.page: buffer ${b.bufferId} was already released`);
    // The image decision reads the page LSN and copies the page: nobody may change it meanwhile.
    if (!pages.lockedExclusive(b)) throw new RingmasterError('ERR_RINGMASTER_NOT_LOCKED_EXCLUSIVE', `options.page: append with a page needs the exclusive lock on buffer ${b.bufferId}`);
    const info = this.#core.native().fileInfo(b.file);
    if (!info) throw new RingmasterError('ERR_RINGMASTER_BAD_FILE', `options.page: the file of buffer ${b.bufferId} (id ${b.file}) is not open`);
    const page = b.page;
    // Recovery writes the image to this path, relative to the data directory (it refuses
    // '..' and absolute paths); the file table holds it as it was opened.
    const rel = path.posix.normalize(info.path);
    if (rel.startsWith('../') || rel === '..' || path.isAbsolute(rel)) throw new RingmasterError('ERR_RINGMASTER_BAD_FILE', `options.page: the file of buffer ${b.bufferId} ('${info.path}') is not inside the data directory`);
    const p = Buffer.from(rel);
    const prefix = Buffer.alloc(16 + p.length);
    prefix.writeBigUInt64LE(BigInt(b.block), 0);
    prefix.writeUInt32LE(p.length, 8);
    prefix.writeUInt32LE(page.length, 12);
    p.copy(prefix, 16);
    return { page, prefix };
  }

  async #append(kind: number, payload: Uint8Array, image?: { page: Uint8Array; prefix: Buffer }): Promise<bigint> {
    let deadline = 0;  // set when the buffer is first found full (a clock read per append otherwise)
    const length = payload.byteLength;
    for (;;) {
      let r: bigint | [bigint, boolean] | null;
      // A full buffer makes this wait and copy again later: by then a resizable payload
      // may have shrunk (or been detached), and the record would silently be shorter.
      if (payload.byteLength !== length) {
        throw new RingmasterError('ERR_RINGMASTER_BUFFER_CHANGED', `payload: its ArrayBuffer was detached or resized (from ${length} to ${payload.byteLength} bytes) while append() waited for room in the WAL buffer`);
      }
      try {
        r = image ? this.#w().append(kind, payload, image.page, image.prefix) : this.#w().append(kind, payload);
      } catch (e) {
        throw this.#appendError(e);
      }
      if (r !== null) return Array.isArray(r) ? r[0] : r;
      // The buffer is full of unflushed bytes: flush what is inserted, then retry.
      const st = this.#state();
      const err = this.#failed(st);
      if (err) throw err;
      const now = Date.now();
      if (deadline === 0) deadline = now + this.#timeoutMs();
      else if (now > deadline) throw new RingmasterError('ETIMEDOUT', 'the WAL buffer stayed full (is a flusher stuck?)');
      const upto = this.#w().insertedUpto();
      if (upto > st.flushed) await this.#flush(upto, false);
      else await sleep(1);
    }
  }

  /** Resolves once the WAL is durable up to `lsn` (group commit across every process). */
  flush(lsn?: bigint | number): Promise<void> {
    let target: number;
    try {
      target = lsn === undefined ? this.#w().insertedUpto() : toLsn(lsn);
      if (target > Number(Atomics.load(this.#hot().reserved, 0))) throw rangeError('ERR_OUT_OF_RANGE', `lsn ${formatLsn(target)} is beyond the end of the WAL`);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#flush(target, true);
  }

  // Every flush of this environment that is not durable yet waits in #waiters, served by
  // one loop (#drive) for the whole environment: it alone tries the flusher role and waits
  // on `flush_seq`, so a publication wakes this thread once and costs one role try, not
  // one per waiting session. Holding the role, it keeps it and flushes again while any of
  // its waiters needs more, instead of releasing it (a second `flush_seq` bump, which
  // rings every waiting process) for another process to take; that other process's
  // records go out in the same flushes (each takes everything inserted so far), and it
  // is woken by the publications. It lets go after each flush while a checkpoint runs,
  // which needs the role to recycle segments. When its last waiter is served it still
  // holds the role until the microtasks that the settling started have run (a nextTick
  // runs after them): a session that commits again as soon as its commit resolves does
  // so there, and is flushed without the role being released and taken again (two more
  // native calls and a `flush_seq` bump per commit). Not when another environment has a
  // record past the flushed LSN: it would wait for this thread's microtasks (user code).
  #flush(target: number, commit: boolean): Promise<void> {
    try {
      const s = this.#s();
      if (commit) this.#w().count(1, 0, 0);
      const hot = this.#hot();
      if (Atomics.load(hot.failed, 0)) {
        const err = this.#failed(this.#state());
        if (err) throw err;
      }
      if (Number(Atomics.load(hot.flushed, 0)) >= target) return Promise.resolve();
    } catch (e) {
      return Promise.reject(e);
    }
    const done = new Promise<void>((resolve, reject) => {
      this.#waiters.push({ target, deadline: Date.now() + this.#timeoutMs(), resolve, reject });
    });
    if (!this.#driving) {
      this.#driving = true;
      void this.#drive();
    }
    return done;
  }

  async #drive(): Promise<void> {
    try {
      const { flushSeqOffset } = this.#size();
      for (;;) {
        this.#s();  // throws if closed
        // flush_seq first: a publication after this load changes it, so the wait below
        // cannot miss one that the settling did not see.
        const seq = Atomics.load(this.#hot().flushSeq, 0);
        if (!this.#settleWaiters()) return;
        if (!this.#holding && this.#w().role('flusher', true)) {
          this.#holding = true;
          let checkpoint = false;
          try {
            for (;;) {
              await this.#flushOnce();
              checkpoint = Atomics.load(this.#hot().checkpointRunning, 0) !== 0;
              if (checkpoint) break;
              if (this.#settleWaiters()) continue;
              // Records appended past what is flushed are another environment's, which
              // waits for this role: release it now rather than after this thread's
              // microtasks, which may be user code that runs for a while.
              if (this.#unflushedElsewhere()) break;
              await afterMicrotasks();  // a commit that follows at once (see above)
              if (!this.#settleWaiters()) break;
            }
          } finally {
            this.#holding = false;
            this.#w().role('flusher', false);
          }
          // A checkpoint waits for the role (its recycling): leave it a moment to take it.
          if (checkpoint) await sleep(1);
          continue;
        }
        // Someone else is flushing: wait for the next publication (bounded, then re-check:
        // a flusher that died is replaced by whoever comes next).
        await this.#core.waitWord(flushSeqOffset, seq, 50);
      }
    } catch (e) {
      for (const w of this.#waiters.splice(0)) w.reject(e);
    } finally {
      this.#driving = false;
    }
  }

  // Whether anything is reserved past the flushed LSN: with no waiter of this environment
  // left, that is another environment's record (or one it is still copying in).
  #unflushedElsewhere(): boolean {
    const hot = this.#hot();
    return Atomics.load(hot.reserved, 0) > Atomics.load(hot.flushed, 0);
  }

  // Resolves the waiters that are durable now, rejects them all if the WAL failed, and
  // those past their deadline. True if any is left waiting.
  #settleWaiters(): boolean {
    const hot = this.#hot();
    if (Atomics.load(hot.failed, 0)) {
      const err = this.#failed(this.#state());
      if (err) {
        for (const w of this.#waiters.splice(0)) w.reject(err);
        return false;
      }
    }
    const flushed = Number(Atomics.load(hot.flushed, 0));
    let now = 0;  // read once, and only if a waiter is still waiting
    let kept = 0;
    for (const w of this.#waiters) {
      if (flushed >= w.target) w.resolve();
      else if ((now ||= Date.now()) > w.deadline) w.reject(new RingmasterError('ETIMEDOUT', `the WAL did not become durable up to ${formatLsn(w.target)} within ${this.#timeoutMs()} ms`));
      else this.#waiters[kept++] = w;
    }
    if (kept !== this.#waiters.length) this.#waiters.length = kept;
    return kept > 0;
  }

  // With the flusher role held: write everything inserted so far as one linked chain.
  //
  // Soft links: a write that fails or never ran (ECANCELED, EINTR, EFAULT: dead issuer,
  // cancellation) cancels the sync behind it, whose completion action would otherwise
  // publish an LSN whose bytes were not written. The chain asks for the issuer's self-wake
  // (SELF_WAKE): the commit resolves on one wake of this thread, with no watcher thread in
  // between. If a link breaks, the message is cancelled with the sync and this thread
  // learns of it at its next sweep (at most 250 ms; a watcher at once if anyone waits on
  // the WAL): a broken WAL chain is a failed WAL or a cancelled flush, never the hot path
  // (docs/ARCHITECTURE.md, Delivery).
  async #flushOnce(): Promise<void> {
    const delay = this.#opts()?.commitDelayUs ?? 0;
    if (delay > 0) await sleep(delay / 1000);
    const s = this.#s();
    const from = Number(Atomics.load(this.#hot().flushed, 0));
    const upto = this.#w().insertedUpto();
    if (upto <= from) {
      await sleep(1);  // an earlier inserter is still copying (or died and awaits cleanup)
      return;
    }
    // Segments already open (every flush but the first of a segment): no await.
    const plan = this.#plan(from, upto) ?? (await this.#openSegments(from, upto), this.#plan(from, upto));
    if (!plan) return;  // not open after all (closed meanwhile): the drive loop tries again
    const { pieces } = plan;
    // The chain's ops, in objects reused from flush to flush: submit copies them into its
    // staging area before it returns (only this loop flushes, one chain at a time).
    const ops = this.#chainOps;
    const pool = this.#chainOpPool;
    let k = 0;
    for (let i = 0; i < pieces.length; i++) {
      const p = pieces[i];
      setOp(ops, pool, k++, 'write', OP_WRITE, LINK | SELF_WAKE, p.fileId, p.fileOff, p.len, p.arenaOff, KIND_WAL_WRITE_DONE, p.len);
    }
    if (!plan.dsync) {
      for (let i = 0; i < plan.files.length; i++) {
        const last = i === plan.files.length - 1;
        // Only the last sync publishes (kind SYNC_DONE, arg = LSN); earlier ones only report errors.
        setOp(ops, pool, k++, 'fdatasync', OP_FDATASYNC, last ? 0 : LINK, plan.files[i], 0, 0, -1, last ? KIND_WAL_SYNC_DONE : KIND_WAL_WRITE_DONE, last ? plan.upto : 0);
      }
    }
    ops.length = k;
    if (plan.dsync) {
      // The last write ends the chain and publishes (kind DSYNC_WRITE_DONE, arg = LSN) in
      // whichever process reaps it, as the last sync does in the fdatasync chain.
      const f = ops[ops.length - 1].fields;
      f[1] = 0;
      f[6] = KIND_WAL_DSYNC_WRITE_DONE;
      f[7] = plan.upto;
    }
    if (this.#bind().walWritten()) {
      // Test hook: this process dies with the WAL written. With fdatasync the chain is
      // split (written, not synced, not published); with dsync the writes are the whole
      // chain (written and synced; published by the last write's completion action in
      // whichever process reaps it).
      const writes = ops.slice(0, pieces.length).map((o) => ({ ...o, fields: [...o.fields] }));
      if (!plan.dsync) writes[writes.length - 1].fields[1] = 0;
      await this.#core.submit(undefined, writes, []);
      s.killPoint('wal-written');
    }
    this.#w().count(0, 1, plan.dsync ? 1 : plan.files.length);
    const n = ops.length;
    const res = await this.#core.submit(undefined, ops, []);
    this.#settle(res, 0, n, pieces, plan.upto);
  }

  // Publishes, or enters the failed state. A cancelled op alone (dead issuer, repair)
  // proves nothing either way: the next flusher writes the range again. Ops [first,
  // first + pieces.length) are the chain's writes, then its syncs (to first + n).
  #settle(res: IoResult[], first: number, n: number, pieces: readonly Piece[], upto: number): boolean {
    const s = this.#s();
    const writes = pieces.length;
    let ok = true;
    for (let i = 0; i < n; i++) {
      const r = res[first + i];
      if (!r) { ok = false; continue; }
      const isWrite = i < writes;
      if (r.result === -125 /* ECANCELED */ || r.result === -4 /* EINTR */ || r.result === -14 /* EFAULT: exiting submitter */) { ok = false; continue; }
      if (r.result < 0 || (isWrite && r.result !== pieces[i].len)) {
        this.#w().fail(r.result < 0 ? r.result : -5);
        ok = false;
      }
    }
    // walPublish reports the failed state too (one call); without a publish, ask for it.
    let failed: number;
    try {
      failed = ok ? this.#w().publish(upto) : this.#w().failed();
    } catch (e) {
      throw fromNative(e);
    }
    const err = this.#failed({ failed });
    if (err) throw err;
    return ok;
  }

  // The chain that makes the WAL durable from `from` towards `upto`: [from, upto) split at
  // buffer wraps and segment ends into at most 2 writes (and so at most 2 syncs), the
  // rest left for the next chain (`upto` is cut there). Both the WAL's own flushes and
  // appendFlushChain build their chain from this. Null if a segment's file is not open
  // yet (#openSegments opens it: asynchronous, so this stays synchronous).
  #plan(from: number, upto: number): Plan | null {
    // From shared memory, not this process's options: a worker has none.
    const { bufOffset, bufSize, segmentSize, direct, dsync } = this.#size();
    const maxPieces = Math.min(2, Math.max(4, this.db.features.ringEntries) - 2);  // room for the syncs
    const s = this.#s();
    const pieces: PlannedPiece[] = [];
    const files: number[] = [];
    let a = direct ? from - (from % 4096) : from;
    const b = direct ? Math.ceil(upto / 4096) * 4096 : upto;
    let end = upto;
    while (a < b) {
      const segno = Math.floor(a / segmentSize);
      const segEnd = (segno + 1) * segmentSize;
      const pos = a % bufSize;
      const q = Math.min(b, segEnd, a - pos + bufSize);
      if (pieces.length >= maxPieces) {
        end = Math.min(end, a);
        break;
      }
      const fileId: number = this.#w().seg(segno);
      if (fileId < 0) return null;
      pieces.push({ segno, fileOff: a - segno * segmentSize, arenaOff: bufOffset + pos, len: q - a, fileId });
      if (!files.includes(fileId)) files.push(fileId);
      a = q;
    }
    return { pieces, files, upto: Math.min(end, upto), dsync };
  }

  // Opens the segments a chain from `from` to `upto` writes (flusher role held).
  async #openSegments(from: number, upto: number): Promise<void> {
    const { segmentSize, direct } = this.#size();
    const a = direct ? from - (from % 4096) : from;
    const b = direct ? Math.ceil(upto / 4096) * 4096 : upto;
    const last = Math.floor((b - 1) / segmentSize);
    // #plan writes at most 2 pieces: at most 2 segments.
    for (let segno = Math.floor(a / segmentSize); segno <= last && segno <= Math.floor(a / segmentSize) + 1; segno++) await this.#segFile(segno);
  }

  // The file id of segment `segno` (flusher role held: only flushers and checkpoints open or close segments).
  async #segFile(segno: number): Promise<number> {
    const s = this.#s();
    const id: number = this.#w().seg(segno);
    if (id >= 0) return id;
    const { segmentSize, direct, dsync } = this.#size();
    // Moving into a new segment: the ones wholly below the durable point are done.
    this.#closeSegmentsBelow(Math.min(segno, Math.floor(Number(this.#state().flushed) / segmentSize)));
    preallocate(this.db, segno, segmentSize);
    preallocate(this.db, segno + 1, segmentSize);  // the next one is ready before it is needed
    // skipWalDsync(): the test hook of a positive control (segments opened without O_DSYNC
    // while the WAL still sends no sync op: acknowledged commits are not durable).
    const f = await this.db.files.open(path.posix.join(WAL_DIR, segmentName(segno)), { direct, dsync: dsync && !skipWalDsync() });
    const prev: number = this.#w().seg(segno, f.id);
    if (prev >= 0) this.#closeSegment(prev);
    return f.id;
  }

  // Drops every reference to a segment's file-table entry: only the WAL holds them
  // (opened by whichever process was the flusher), so `FileHandle.close()` in this
  // process, which owns none of them, is not the way.
  #closeSegment(id: number): void {
    const n = this.#s();
    for (let i = 0; i < 1024 && n.closeFile(id, true) === true; i++) { /* one reference per call */ }
  }

  // Flusher role held: closes the entries of every segment below `segno`, found by path,
  // so those a flusher killed between opening and recording a segment left are found too.
  #closeSegmentsBelow(segno: number): void {
    const s = this.#s();
    for (const e of fileEntries(this.db)) {
      if (!e.path.startsWith(WAL_DIR + '/')) continue;
      const n = parseSegmentName(e.path.slice(WAL_DIR.length + 1));
      if (n === null || n >= segno) continue;
      this.#closeSegment(e.id);
      if (this.#w().seg(n) === e.id) this.#w().seg(n, -1);
    }
  }

  /**
   * WalHook: adds the WAL write(s) and the fdatasync that make the WAL durable up to
   * `lsn` to `batch`, soft-linked, so an op the caller adds next runs only after the WAL
   * is durable. Returns the callback to call with the batch's results, or null if the
   * WAL cannot be added now (another flusher is busy, records before `lsn` are still
   * being copied, or its segment is not open yet): then use `flush(lsn)`.
   */
  appendFlushChain(batch: Batch, lsn: bigint): ((results: IoResult[], firstIndex: number) => void) | null {
    const target = toLsn(lsn);
    const s = this.#s();
    const hot = this.#hot();
    const err = this.#failedNow();
    if (err) throw err;
    if (target > Number(Atomics.load(hot.reserved, 0))) throw rangeError('ERR_OUT_OF_RANGE', `lsn ${formatLsn(target)} is beyond the end of the WAL`);
    this.#w().count(1, 0, 0);
    if (Number(Atomics.load(hot.flushed, 0)) >= target) return () => {};
    if (this.#holding || !this.#w().role('flusher', true)) return null;
    this.#holding = true;
    const release = () => {
      if (!this.#holding) return;
      this.#holding = false;
      try {
        this.#w().role('flusher', false);
      } catch {
        /* closed */
      }
    };
    try {
      const from = Number(Atomics.load(hot.flushed, 0));
      const upto = this.#w().insertedUpto();
      // The same chain as the WAL's own flushes; null (let flush() do it) if records before
      // `lsn` are still being copied, a segment must be opened first (asynchronous), or the
      // chain would stop short of `lsn` (more pieces than one chain writes).
      const plan = upto < target ? null : this.#plan(from, upto);
      if (!plan || plan.upto < target || plan.pieces.length + (plan.dsync ? 0 : plan.files.length) + 1 > this.db.features.ringEntries) {
        release();
        return null;
      }
      const { pieces, files, dsync } = plan;
      const first = batch.length;
      // The WAL's own kind on its writes, as in #flushOnce: the reaper fails the WAL on an
      // error, and the file-sync requests leave them out (the WAL syncs its segments itself).
      // With dsync the last write is the WAL's end of the chain and publishes its end where
      // it is reaped (its full completion means all of it is synced), as in #flushOnce.
      pieces.forEach((p, i) => {
        const op = batch.write(p.fileId, p.fileOff, this.db.arenaSlice(p.arenaOff, p.len), { link: true });
        if (dsync && i === pieces.length - 1) this.#core.setKind(op, KIND_WAL_DSYNC_WRITE_DONE, plan.upto);
        else this.#core.setKind(op, KIND_WAL_WRITE_DONE, p.len);
      });
      if (!dsync) for (const f of files) batch.fdatasync(f, { link: true });
      const n = batch.length - first;
      this.#w().count(0, 1, dsync ? 1 : files.length);
      // Never wedge the WAL if the caller never submits or never calls back.
      const guard = setTimeout(release, this.#timeoutMs());
      guard.unref?.();
      return (results: IoResult[], firstIndex: number) => {
        clearTimeout(guard);
        try {
          this.#settle(results, firstIndex ?? first, n, pieces, plan.upto);
        } catch {
          /* the failed state is recorded in shared memory; flush() reports it */
        } finally {
          release();
        }
      };
    } catch (e) {
      release();
      throw e;
    }
  }

  /** Appends a full-page image of `block` of a data file; recovery writes it back (torn-page repair). */
  appendPageImage(file: string | { path: string } | number, block: number, bytes: ArrayBufferView): Promise<bigint> {
    let rel: string;
    let image: Uint8Array;
    try {
      if (typeof file === 'string') rel = file;
      else if (typeof file === 'number') rel = this.db.files.get(file).path;
      else if (file && typeof file === 'object' && typeof (file as { path: unknown }).path === 'string') rel = (file as { path: string }).path;
      else throw typeError('ERR_INVALID_ARG_TYPE', 'file must be a relative path, a FileHandle or a file id');
      if (rel.length === 0 || path.isAbsolute(rel) || rel.split(/[\\/]/).includes('..')) throw typeError('ERR_INVALID_ARG_VALUE', 'file must be a relative path inside the data directory');
      if (!Number.isSafeInteger(block) || block < 0) throw rangeError('ERR_OUT_OF_RANGE', 'block must be a non-negative integer');
      image = viewBytes(bytes, 'bytes');
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#append(KIND_PAGE_IMAGE, encodePageImage(rel, block, image));
  }

  /**
   * Checkpoint: flush dirty pages (`db.buffers.flushAll()` if the buffer pool has it),
   * a drain barrier, a checkpoint record made durable, the control file updated
   * atomically, then old segments recycled. Resolves with the checkpoint's LSN.
   */
  async checkpoint(): Promise<bigint> {
    const s = this.#s();
    checkSyncFailed(this.db);  // the failed state says why better than the WAL's failure it caused
    const err = this.#failed(this.#state());
    if (err) throw err;
    const deadline = Date.now() + this.#timeoutMs();
    while (!this.#w().role('checkpoint', true)) {
      if (Date.now() > deadline) throw new RingmasterError('ETIMEDOUT', 'another checkpoint did not finish in time');
      await sleep(5);
    }
    try {
      const t0 = Date.now();
      // The redo point: chosen and published now, before any page is written (and in the
      // same synchronous step as taking the role), inside the WAL's seqlock, so a page
      // append decides its image against it atomically (native/wal_buffer.h).
      const redo = Number(addon.walChooseRedo(s));
      s.killPoint('checkpoint-redo-chosen');
      // Checkpoint = every page dirtied before the redo point is on disk (if there is a pool).
      // A page whose write another process claimed and has not finished (stalled, stopped)
      // is waited for up to timeoutMs, then the checkpoint rejects
      // (ERR_RINGMASTER_WRITEBACK_TIMEOUT) with the control file as it was: the barrier
      // below covers only IO already submitted. (Not a deadline for the whole flush: the
      // pages this checkpoint writes itself take what the disk takes.)
      const pages = pagesForWal(this.db);
      const pagesWritten = pages?.configured ? await pages.flushAll({ timeoutMs: this.#timeoutMs() }) : 0;
      // Barrier: every IO submitted before this point (any process, any ring) has completed.
      await this.db.barrier();
      const t1 = Date.now();
      // ... and durable: every data file written before this point (these pages, evictions,
      // the background writer, users' writes; any process) is synced before the redo point
      // moves (core/durability.ts, native/file_sync.h). A failed sync rejects here, and for
      // good (ERR_RINGMASTER_SYNC_FAILED): the control file keeps the old checkpoint.
      const pass = await syncPass(this.db, { timeoutMs: this.#timeoutMs(), skipSyncs: skipDataSyncs() });
      s.killPoint('checkpoint-pages-flushed');
      const payload = Buffer.alloc(8);
      payload.writeBigUInt64LE(BigInt(redo), 0);
      const end = await this.#append(KIND_CHECKPOINT, payload);
      await this.#flush(Number(end), false);
      const ckptLsn = Number(end) - align8(HEADER_SIZE + 8);
      const { segmentSize } = this.#size();
      s.killPoint('checkpoint-record-durable');
      writeControl(this.db.info.dataDir, { segmentSize, checkpointLsn: ckptLsn, redoLsn: redo, time: Date.now() }, {
        beforeRename: () => s.killPoint('checkpoint-control-written'),
        syncDir: (rel) => syncDir(this.db, rel),
      });
      addon.walSetCheckpoint(s, ckptLsn, redo);
      await this.#recycle(Math.floor(redo / segmentSize));
      this.lastCheckpoint = {
        lsn: BigInt(ckptLsn), redoLsn: BigInt(redo), pagesWritten, syncedFiles: pass.files, syncsSkipped: pass.skipped,
        flushMs: t1 - t0, barrierMs: pass.barrierMs, syncMs: pass.syncMs, totalMs: Date.now() - t0,
      };
      return BigInt(ckptLsn);
    } finally {
      this.#w().role('checkpoint', false);
    }
  }

  // Segments wholly before the redo point are renamed to future names (spares) or removed.
  async #recycle(redoSeg: number): Promise<void> {
    const s = this.#s();
    const deadline = Date.now() + this.#timeoutMs();
    while (this.#holding || !this.#w().role('flusher', true)) {
      if (Date.now() > deadline) return;  // recycling is an optimisation: try next time
      await sleep(1);
    }
    this.#holding = true;
    try {
      const dataDir = this.db.info.dataDir;
      const walDir = path.join(dataDir, WAL_DIR);
      // Out of the shared file table first: a renamed file must not keep an entry under
      // its old name, and a removed one must not keep its disk space.
      this.#closeSegmentsBelow(redoSeg);
      const segs = fs.readdirSync(walDir).map(parseSegmentName).filter((n): n is number => n !== null).sort((x, y) => x - y);
      let top = Math.max(redoSeg, ...segs);
      const currentSeg = Math.floor(Number(this.#state().reserved) / this.#size().segmentSize);
      const keep = this.#opts()?.keepSegments ?? 2;
      let changed = false;
      for (const segno of segs) {
        if (segno >= redoSeg) break;
        const from = path.join(walDir, segmentName(segno));
        if (top - currentSeg < keep) {
          top++;
          fs.renameSync(from, path.join(walDir, segmentName(top)));
        } else {
          fs.unlinkSync(from);
        }
        changed = true;
      }
      // The renames and removals are durable before anything relies on them.
      if (changed) syncDir(this.db, WAL_DIR);
    } finally {
      this.#holding = false;
      this.#w().role('flusher', false);
    }
  }

  /** @internal the file id of the segment holding `lsn` (opened if needed; postmaster init and tests). */
  async _segmentFileId(lsn: bigint | number): Promise<number> {
    return this.#segFile(Math.floor(toLsn(lsn) / this.#size().segmentSize));
  }

  /** @internal the WAL's failed-state error, or null while it works. */
  _failedError(): RingmasterError | null {
    const st = this.#state();
    return st.failed ? walFailedError(st.failed) : null;
  }

  /** @internal emits 'wal-failed' (once per environment) if the WAL has failed. */
  _pollFailed(): boolean {
    return this.#failedNow() !== null;
  }

  /** @internal test hook: reserve and half-copy a record, then abandon it (as if the process died mid-copy). */
  _debugAbandon(kind: number, payload: Uint8Array): bigint | null {
    return addon.walDebugAbandon(this.#s(), kind, payload);
  }
}

// Zero-filled segment file (written, not sparse), fsynced with its directory. An
// existing file is never replaced (it may hold records): a short one is extended in place.
function preallocate(db: Ringmaster, segno: number, segmentSize: number): void {
  const walDir = path.join(db.info.dataDir, WAL_DIR);
  const p = path.join(walDir, segmentName(segno));
  let size = -1;
  try {
    size = fs.statSync(p).size;
  } catch {
    /* missing */
  }
  if (size >= segmentSize) return;
  if (size >= 0) {
    const fd = fs.openSync(p, 'r+');
    try {
      const zeros = Buffer.alloc(Math.min(segmentSize - size, 1 << 20));
      for (let off = size; off < segmentSize; off += zeros.length) fs.writeSync(fd, zeros, 0, Math.min(zeros.length, segmentSize - off), off);
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    return;
  }
  const tmp = p + '.tmp';
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    const zeros = Buffer.alloc(Math.min(segmentSize, 1 << 20));
    for (let off = 0; off < segmentSize; off += zeros.length) fs.writeSync(fd, zeros, 0, Math.min(zeros.length, segmentSize - off), off);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, p);
  syncDir(db, WAL_DIR);  // the new name is durable before a record is written into it
}

// ---- postmaster: recovery, then the shared WAL ----------------------------------------

async function recover(db: Ringmaster, o: Resolved): Promise<{ info: RecoveryInfo; control: ControlData }> {
  const dataDir = db.info.dataDir;
  const walDir = path.join(dataDir, WAL_DIR);
  if (fs.mkdirSync(walDir, { recursive: true, mode: 0o700 }) !== undefined) syncDir(db, '.');  // pg_wal's name
  let control: ControlData | null;
  try {
    control = readControl(dataDir);
  } catch (e) {
    throw new RingmasterError('ERR_RINGMASTER_WAL_CONTROL', (e as Error).message);
  }
  if (!control) {
    // Fresh WAL: LSNs start at segment 1 (LSN 0 means "none").
    control = { segmentSize: o.segmentSize, checkpointLsn: 0, redoLsn: o.segmentSize, time: Date.now() };
    for (const f of fs.readdirSync(walDir)) if (parseSegmentName(f) !== null) fs.unlinkSync(path.join(walDir, f));
    preallocate(db, 1, o.segmentSize);
    writeControl(dataDir, control, { syncDir: (rel) => syncDir(db, rel) });
  }
  if (control.segmentSize !== o.segmentSize) {
    throw new RingmasterError('ERR_RINGMASTER_WAL_CONTROL', `the WAL in ${dataDir} uses ${control.segmentSize}-byte segments, but wal.segmentSize is ${o.segmentSize}`);
  }
  const seg = control.segmentSize;
  const handlers = new Map([...staticRedo, ...o.redo]);
  const records: WalRecord[] = [];
  const scan = scanWal(dataDir, seg, control.redoLsn, (r) => records.push(r), false);
  // The control file promises a checkpoint record (durable before the control file was
  // written) and the segment holding the redo point: without them, refuse to start.
  if (scan.endLsn <= control.checkpointLsn || (scan.stop === 'missing-segment' && scan.endLsn === control.redoLsn && control.checkpointLsn > 0)) {
    throw new RingmasterError('ERR_RINGMASTER_WAL_CORRUPT',
      `the WAL in ${walDir} ends at ${formatLsn(scan.endLsn)} (${scan.stop}), before the checkpoint record at ${formatLsn(control.checkpointLsn)} that ${CONTROL_FILE} names`);
  }
  // A page image appended with its change record is one reservation with it: an image at
  // the very end, without its change, is the torn part of that reservation. It is cut
  // with the tail (new records then overwrite it), so it can never be paired later with a
  // record that is not its change.
  let end = scan.endLsn;
  let imageCut = false;
  const tail = records[records.length - 1];
  if (tail && tail.kind === KIND_PAGE_IMAGE && (tail.flags & FLAG_PAIRED_IMAGE) !== 0) {
    records.pop();
    end = Number(tail.lsn);
    imageCut = true;
  }
  // Every record must have a handler (or be one of the WAL's own kinds) before anything
  // is replayed: a missing handler is a configuration error, and a start that fails on it
  // must not have applied half the WAL (PostgreSQL refuses an unknown resource manager).
  const known = (kind: number) => kind === KIND_CHECKPOINT || kind === KIND_PAGE_IMAGE || handlers.has(kind);
  let skipped = 0;
  if (o.onUnknownKind === 'error') {
    const bad = records.find((r) => !known(r.kind));
    if (bad) {
      const have = [...handlers.keys()].sort((a, b) => a - b);
      const what = bad.kind > USER_KIND_MAX ? `reserved kind 0x${bad.kind.toString(16)} (not one this version of ringmaster writes)` : `kind ${bad.kind}`;
      throw Object.assign(new RingmasterError('ERR_RINGMASTER_WAL_UNKNOWN_KIND',
        `recovery of ${walDir}: the record at LSN ${formatLsn(bad.lsn)} has ${what}, which has no redo handler ` +
        `(wal.redo has ${have.length ? `kinds ${have.join(', ')}` : 'none'}); nothing was replayed. ` +
        "Register a handler for it, or start with wal.onUnknownKind: 'skip' to skip such records"), { kind: bad.kind, lsn: bad.lsn });
    }
  }
  const touched = new Set<string>();
  const images: RecoveryImages = { applied: 0, skipped: imageCut ? 1 : 0 };
  // Data files of images, opened once through the file table while recovery runs: a redo
  // handler that opens the same file gets the same entry, so the pool pages it loads and
  // the images put in the pool here are the same buffers.
  const imageFiles = new Map<string, FileHandle | null>();
  const found = pagesForWal(db);
  const pool = found?.configured ? found : null;
  // Redo in LSN order, before any worker exists (init runs before the first fork).
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (!known(r.kind)) {
      skipped++;
      continue;
    }
    if (r.kind === KIND_PAGE_IMAGE) {
      const img = decodePageImage(r.payload);
      // An image appended with its change record is applied only if that record is there:
      // the image holds the change, and a cut tail may have lost the record.
      // (Inside the WAL it is always followed by its change, reserved with it: checked anyway,
      // the change must end at the LSN the image carries.)
      const paired = (r.flags & FLAG_PAIRED_IMAGE) !== 0;
      const next = records[i + 1];
      if (paired && !(img && img.data.length >= 8 && next && next.lsn === r.endLsn && next.endLsn === img.data.readBigUInt64LE(0))) {
        images.skipped++;
      } else if (img && !path.isAbsolute(img.path) && !img.path.split(/[\\/]/).includes('..')) {
        const p = path.join(dataDir, img.path);
        const existed = fs.existsSync(p);
        const fd = fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
        try {
          fs.writeSync(fd, img.data, 0, img.data.length, img.block * img.data.length);
        } finally {
          fs.closeSync(fd);
        }
        if (!existed) syncParentDirs(db, img.path);  // recovery made the file: its name must last
        touched.add(p);
        images.applied++;
        // A redo handler may have loaded this page into the pool earlier in this recovery
        // (a handler that reads other pages, an earlier image of the same page): the next
        // handler must see the image, not that copy, and a later writeback must not put the
        // copy back over the file. So the image goes into the pool too.
        if (pool && img.data.length === pool.pageSize) await imageIntoPool(db, pool, imageFiles, img);
      }
    }
    const h = handlers.get(r.kind);
    if (h) await h(r, db);
  }
  for (const p of touched) {
    const fd = fs.openSync(p, 'r+');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  for (const f of imageFiles.values()) await f?.close();
  // Cut the torn tail: zero the rest of the last segment, drop later segments, so an
  // old record can never reappear after the new ones.
  const endSeg = Math.floor(end / seg);
  preallocate(db, endSeg, seg);
  const fd = fs.openSync(path.join(walDir, segmentName(endSeg)), 'r+');
  try {
    const off = end - endSeg * seg;
    const zeros = Buffer.alloc(Math.min(seg - off, 1 << 20));
    for (let p = off; p < seg; p += zeros.length) fs.writeSync(fd, zeros, 0, Math.min(zeros.length, seg - p), p);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  for (const f of fs.readdirSync(walDir)) {
    const n = parseSegmentName(f);
    if (n !== null && n > endSeg) fs.unlinkSync(path.join(walDir, f));
    if (f.endsWith('.tmp')) fs.unlinkSync(path.join(walDir, f));
  }
  syncDir(db, WAL_DIR);  // the cut is durable before new records can follow it
  const tornTail = imageCut || (scan.stop !== 'end-of-wal' && scan.stop !== 'missing-segment');
  return {
    control,
    info: { fromLsn: BigInt(control.redoLsn), endLsn: BigInt(end), records: records.length, skipped, stop: scan.stop, tornTail, images },
  };
}

// Puts a full-page image into the buffer pool (recovery): the pool's copy of the page if
// it has one (valid or not), else a zeroed buffer claimed without IO, overwritten whole.
// The page keeps its dirty state: clean, it now equals the file (the image was written
// there first); dirty, its writeback writes the image's bytes.
async function imageIntoPool(db: Ringmaster, pool: PagesForWal, files: Map<string, FileHandle | null>, img: { path: string; block: number; data: Buffer }): Promise<void> {
  let f = files.get(img.path);
  if (f === undefined) {
    try {
      f = await db.files.open(img.path);
    } catch {
      // Not openable through the file table (full, say). Then no entry for this file is
      // open either (an open one would be shared, not a new one), so no handler can reach
      // a pool page of it: the file, which has the image, is all there is.
      f = null;
    }
    files.set(img.path, f);
  }
  if (!f) return;
  await pool.putImage(f, img.block, img.data);
}

// statfs f_type of a FUSE file system (include/uapi/linux/magic.h).
const FUSE_SUPER_MAGIC = 0x65735546;

/**
 * Whether a WAL write opened `O_DSYNC` is durable when it completes, for these options.
 * Not for `direct` writes through io_uring on a FUSE file system: the kernel's FUSE client
 * completes io_uring's asynchronous `O_DIRECT | O_DSYNC` write without sending the fsync
 * `O_DSYNC` asks for (seen on LazyFS: RELIABILITY.md). There the WAL keeps its write ->
 * fdatasync chain, which is as durable, and `wal.stats().walSync` says `'fdatasync'`.
 */
function dsyncWritesAreSynced(db: Ringmaster, direct: boolean): boolean {
  if (!direct || db.features.backend !== 'io_uring') return true;
  try {
    // The segments' own directory: a file system may be mounted there, inside the data
    // directory (a link out of it is refused: nothing outside the data directory is opened).
    return fs.statfsSync(path.join(db.info.dataDir, WAL_DIR)).type !== FUSE_SUPER_MAGIC;
  } catch {
    return false;  // unknown file system: the fdatasync chain is durable everywhere
  }
}

// A regular file in pg_wal, created and removed by the O_DIRECT probe below. Not a segment
// name, so recovery and recycling never look at one a crash left behind.
const DIRECT_PROBE = 'direct-probe.tmp';

/**
 * Whether pg_wal's file system accepts `O_DIRECT` opens. Linux refuses the open itself
 * with EINVAL where the file system has no direct IO (`do_dentry_open`: no
 * FMODE_CAN_ODIRECT), so an open of a regular file there is the test. pg_wal exists (its
 * name made durable) before this is called.
 */
function directIoSupported(db: Ringmaster): boolean {
  const probe = path.join(db.info.dataDir, WAL_DIR, DIRECT_PROBE);
  let fd = -1;
  try {
    fd = fs.openSync(probe, fs.constants.O_CREAT | fs.constants.O_RDWR | fs.constants.O_DIRECT, 0o600);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EINVAL') return false;
    throw e;
  } finally {
    if (fd >= 0) fs.closeSync(fd);
    fs.rmSync(probe, { force: true });
  }
}

/**
 * The WAL's write mode for this start. By default segments are `O_DIRECT | O_DSYNC` where
 * pg_wal's file system has direct IO: on ext4 and XFS io_uring then issues the write
 * inline and the sync happens in the write's own completion (a FUA write, or a flush
 * before it completes: `iomap_dio_rw` with IOCB_DSYNC), so a commit wakes no io-wq worker
 * and the JS thread sleeps once (README, Performance). Without direct IO, the buffered
 * write -> fdatasync chain. An explicit `direct: true` where the open is refused fails the
 * start, before recovery changes anything.
 */
function walMode(db: Ringmaster, o: Resolved): { direct: boolean; dsync: boolean } {
  const walDir = path.join(db.info.dataDir, WAL_DIR);
  if (fs.mkdirSync(walDir, { recursive: true, mode: 0o700 }) !== undefined) syncDir(db, '.');  // pg_wal's name
  // Nothing is written outside the data directory: a pg_wal that leads out of it (a
  // symbolic link) is refused before the probe or recovery writes anything there, as the
  // first sync of pg_wal would refuse it (RESOLVE_BENEATH). The data directory's own path
  // has its links resolved already.
  const rel = path.relative(db.info.dataDir, fs.realpathSync(walDir));
  if (rel.startsWith('..') || path.isAbsolute(rel)) {
    throw new RingmasterError('ERR_RINGMASTER_PATH_ESCAPE', `directory '${WAL_DIR}' leads out of the data directory (a symbolic link to elsewhere?): ringmaster opens nothing outside it`);
  }
  const supported = o.direct === false ? false : directIoSupported(db);
  if (o.direct === true && !supported) {
    throw new RingmasterError('EINVAL', `wal.direct: the file system of ${walDir} does not support O_DIRECT (the open was refused with EINVAL); start without wal.direct (the WAL then writes through the page cache and fdatasyncs)`);
  }
  const direct = o.direct ?? supported;
  const walSync = o.walSync ?? (direct ? 'dsync' : 'fdatasync');
  return { direct, dsync: walSync === 'dsync' && dsyncWritesAreSynced(db, direct) };
}

registerModule('wal', {
  validate(options, context) {
    const o = resolveWalOptions(options);
    return { arenaBytes: Math.ceil((addon.walSharedSizeFor(context.maxProcesses) + o.bufferSize) / 4096) * 4096 };
  },
  async init(db: Ringmaster, options: unknown): Promise<void> {
    const o = resolveWalOptions(options);
    localOptions.set(db, o);
    const mode = walMode(db, o);
    const { info, control } = await recover(db, o);
    const n = coreOf(db).native();
    const shared: number = addon.walSharedSize(n);
    const slice = db.allocate(shared + o.bufferSize, { align: 4096 });
    const end = Number(info.endLsn);
    addon.walInit(n, slice.offset, o.bufferSize, o.segmentSize, end, (mode.direct ? WAL_FLAG_DIRECT : 0) | (mode.dsync ? WAL_FLAG_DSYNC : 0));
    coreOf(db).regionSet('wal', slice.offset, shared + o.bufferSize);
    addon.walSetCheckpoint(n, control.checkpointLsn, control.redoLsn);
    // The durable bytes of the last (partial) block go back into the buffer: an aligned
    // (O_DIRECT) write of that block must not overwrite them with zeros.
    const blockStart = end - (end % 4096);
    if (blockStart < end) {
      const f = fs.openSync(path.join(db.info.dataDir, WAL_DIR, segmentName(Math.floor(end / o.segmentSize))), 'r');
      try {
        const tail = Buffer.alloc(end - blockStart);
        fs.readSync(f, tail, 0, tail.length, blockStart % o.segmentSize);
        const pos = blockStart % o.bufferSize;
        db.arenaSlice(slice.offset + shared + pos, tail.length).bytes.set(tail);
      } finally {
        fs.closeSync(f);
      }
    }
    const wal = db.wal;
    wal.recovery = info;
    // Open the current segment now (nobody else runs yet), so appendFlushChain can be
    // used before the first flush.
    await wal._segmentFileId(end);
    hookBufferPool(db);
    startBackground(db, o);
  },
  property: { name: 'wal', create: (db) => new Wal(db) },
});

declare module '../core/ringmaster' {
  interface Ringmaster {
    /** The shared write-ahead log (configured with the `wal` start option). */
    readonly wal: Wal;
  }
}
declare module '../core/options' {
  interface StartOptions {
    /** The write-ahead log (wal/): its options; omitted = no WAL. */
    wal?: WalOptions;
  }
}

function hookBufferPool(db: Ringmaster): void {
  try {
    // WAL-before-data: the buffer pool's writeback uses this WAL.
    const pages = pagesForWal(db);
    if (pages?.configured) pages.setWalHook(db.wal);
  } catch {
    /* no buffer pool configured */
  }
}

// Postmaster: report a failed WAL ('wal-failed') and run the checkpointer.
function startBackground(db: Ringmaster, o: Resolved): void {
  let lastCkpt = Date.now();
  let running = false;
  const timer = setInterval(() => {
    if (db.closed) {
      clearInterval(timer);
      return;
    }
    let st: NativeState;
    try {
      st = addon.walState(coreOf(db).native());
    } catch {
      clearInterval(timer);
      return;
    }
    if (st.failed) {
      db.wal._pollFailed();
      return;
    }
    if (running) return;
    const due = (o.checkpointIntervalMs > 0 && Date.now() - lastCkpt >= o.checkpointIntervalMs) ||
      (o.checkpointWalBytes > 0 && Number(st.reserved) - Number(st.redoLsn) >= o.checkpointWalBytes);
    if (!due) return;
    running = true;
    db.wal.checkpoint().catch(() => {}).finally(() => {
      running = false;
      lastCkpt = Date.now();
    });
  }, 100);
  timer.unref();
  db.once('close', () => clearInterval(timer));
}

// Workers: hook the buffer pool as soon as the WAL is reachable in this environment.
export function attachWal(db: Ringmaster): void {
  hookBufferPool(db);
}
