// The shared buffer pool: policy and the public API. The shared structure (descriptors,
// mapping table, pin records, completion actions) is native/buffer_pool.h and its
// neighbours. The module attaches itself to core when loaded (registerModule below): its
// `bufferPool` start option, the region it publishes, and `db.buffers` on every handle.
import { constants as osConstants } from 'node:os';
import { coreOf, registerModule, type ModuleCore } from '../core/modules';
import { registerIntegrityCheck } from '../core/integrity';
import {
  BP_ERR_CHECKSUM, BP_ERR_PAST_EOF, BP_ERR_SHORT_READ, BP_ERR_TORN, CORRUPT_RESULT, IO_CLAIMED, IO_CORRUPT, IO_VALID, IO_WAIT,
  KIND_BUFFER_READ_DONE, KIND_BUFFER_WRITE_DONE, LOCK_ACQUIRED, LOCK_QUEUED, LOCK_WAIT_CANCELLED, LOCK_WAIT_GRANTED, OP_READ, PIN_ALIASED, PIN_CORRUPT, PIN_EXHAUSTED,
  PIN_NEED_CLEAN, PIN_OK, PIN_TOO_MANY, PAGE_HEADER_SIZE as NATIVE_PAGE_HEADER_SIZE, POOL_RELEASE_ON_HOLDER_DEATH, WS_BUSY, WS_CLEAN, WS_CORRUPT,
} from '../core/constants';
import type { PagesForWal, WalHook } from '../core/modules';
import type { Ringmaster } from '../core/ringmaster';
import { FileHandle, onBeforeLastClose } from '../core/files';
import { RingmasterError, errnoName, fromNative, rangeError, typeError } from '../core/errors';
import { native, type NativePoolInfo, type NativeSession } from '../core/native';
import { viewBytes } from '../core/bytes';
import type { EncodedOp, IoResult } from '../core/io';
import { optionsObject } from '../core/io';

const N = native;

const EIO = osConstants.errno.EIO;
const ERR_CHECKSUM = BP_ERR_CHECKSUM;
const ERR_SHORT_READ = BP_ERR_SHORT_READ;
const ERR_TORN = BP_ERR_TORN;
const ERR_PAST_EOF = BP_ERR_PAST_EOF;
const ERR_CORRUPT = CORRUPT_RESULT;
const MAX_LSN = (1n << 64n) - 1n;

/** Bytes at the start of every page the pool owns: 8-byte LSN (LE), 4-byte CRC32C, 4 reserved. */
export const PAGE_HEADER_SIZE = 16;

export interface BufferPoolOptions {
  /** Number of pages in the pool (default 256). */
  pages?: number;
  /** Page size in bytes: 4096..32768, a power of two (default 8192). */
  pageSize?: number;
  /**
   * What slot cleanup does with a page whose exclusive lock a dead process (or terminated
   * thread) still held. `'fence'` (default): mark it torn -- reads and locks fail with
   * ERR_RINGMASTER_PAGE_TORN until a restart rebuilds it from the WAL. `'release'`: just
   * give the lock back; only for page formats where every update is a single atomic store
   * (a half-done update is then impossible), or that validate pages themselves.
   */
  onHolderDeath?: 'fence' | 'release';
}

export interface BufferPoolConfig {
  /** How writeback honours WAL-before-data: one linked batch (default) or wait for `hook.flush`. */
  walBeforeData?: 'link' | 'wait';
  /** How long `read` waits for an unpinned buffer before ERR_RINGMASTER_POOL_EXHAUSTED (default 5000). */
  pinWaitMs?: number;
  /** How long a reader waits for another process's IO on the same page (default 30000). */
  ioWaitMs?: number;
  /** How long lockShared/lockExclusive wait (default 30000). */
  lockWaitMs?: number;
  /**
   * Content locks belong to the environment (process slot), not to an async flow. `false`
   * (default): a lock request that conflicts with a hold of this same environment fails at
   * once with ERR_RINGMASTER_SELF_DEADLOCK (the classic mistake: locking a page a second
   * time through another PinnedBuffer). `true`: it queues like any other request, for
   * environments whose concurrent async flows lock the same pages; a real self-deadlock
   * then ends at lockWaitMs with ERR_RINGMASTER_LOCK_TIMEOUT.
   */
  waitForOwnLocks?: boolean;
}

export interface BufferPoolStats {
  hits: number;
  misses: number;
  reads: number;
  writes: number;
  evictions: number;
  /** Reads that waited for another reader's IO instead of issuing their own. */
  ioWaits: number;
  /** Reads (issued by this process / by anyone) completed by a process other than the issuer. */
  completedByOther: number;
}

function corruptPool(what: string): RingmasterError {
  return new RingmasterError('ERR_RINGMASTER_CORRUPT', `${what} (another process wrote garbage into shared memory; see stats().corruptDescriptors, db.checkIntegrity())`, { errno: ERR_CORRUPT });
}

type PoolInfo = NativePoolInfo;
/** A page dirty when flushAll began, with its dirty generation then (bpDirty). */
type DirtyPage = { id: number; fileId: number; block: number; gen: number };

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function errorCode(err: number): string {
  if (err === ERR_CHECKSUM) return 'ERR_RINGMASTER_CHECKSUM';
  if (err === ERR_SHORT_READ) return 'ERR_RINGMASTER_SHORT_READ';
  if (err === ERR_TORN) return 'ERR_RINGMASTER_PAGE_TORN';
  if (err === ERR_PAST_EOF) return 'ERR_RINGMASTER_PAST_EOF';
  if (err === ERR_CORRUPT) return 'ERR_RINGMASTER_CORRUPT';
  return errnoName(err);
}

function intOpt(name: string, v: unknown, def: number, lo: number, hi: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be an integer`);
  if (v < lo || v > hi) throw rangeError('ERR_OUT_OF_RANGE', `${name} must be in ${lo}..${hi}, got ${v}`);
  return v;
}

/** Computes and stores the page checksum (bytes 8..12) of a page image, e.g. to build files offline. */
export function setPageChecksum(page: ArrayBufferView): number {
  return N.bpSetChecksum(viewBytes(page, 'page'));
}

/**
 * A pinned page of the pool. `page` views shared memory: hold `lockShared()` to read it
 * consistently and `lockExclusive()` to change it (then `markDirty(lsn)`). Bytes
 * 0..16 are the page header; the pool writes the LSN and checksum there.
 */
export class PinnedBuffer {
  readonly bufferId: number;
  readonly file: number;
  readonly block: number;
  #pool: BufferPool;
  #page: Uint8Array;
  #released = false;
  #lock: 0 | 1 | 2 = 0;  // none, shared, exclusive
  #internal = false;      // the lock is writeback's own (see BufferPool._lock)

  /** @internal */
  constructor(pool: BufferPool, id: number, file: number, block: number, page: Uint8Array) {
    this.#pool = pool;
    this.bufferId = id;
    this.file = file;
    this.block = block;
    this.#page = page;
  }

  get released(): boolean {
    return this.#released;
  }

  get page(): Uint8Array {
    this.#alive('page');
    return this.#page;
  }

  /** The page LSN (from the page header). */
  get lsn(): bigint {
    this.#alive('lsn');
    return new DataView(this.#page.buffer, this.#page.byteOffset, 8).getBigUint64(0, true);
  }

  /** @internal this handle holds the exclusive content lock (the WAL's page append checks it). */
  get _exclusive(): boolean {
    return !this.#released && this.#lock === 2;
  }

  #alive(what: string): void {
    if (this.#released) throw new RingmasterError('ERR_RINGMASTER_BUFFER_RELEASED', `${what}: buffer ${this.bufferId} was already released`);
  }

  /** Unpins the buffer (and drops its content lock, if held). */
  release(): void {
    this.#alive('release');
    if (this.#lock) this.unlock();
    this.#released = true;
    this.#pool._unpin(this.bufferId);
  }

  lockShared(): Promise<void> {
    return this.#lockAs(1);
  }

  lockExclusive(): Promise<void> {
    return this.#lockAs(2);
  }

  /** @internal writeback's shared lock: may wait for another async flow of this environment. */
  _lockInternal(until?: number): Promise<void> {
    return this.#lockAs(1, true, until);
  }

  async #lockAs(mode: 1 | 2, internal = false, until?: number): Promise<void> {
    this.#alive(mode === 1 ? 'lockShared' : 'lockExclusive');
    if (this.#lock) throw new RingmasterError('ERR_RINGMASTER_LOCK_HELD', `buffer ${this.bufferId} is already locked by this handle`);
    this.#lock = mode;  // claimed now so a second concurrent call fails cleanly
    try {
      await this.#pool._lock(this.bufferId, mode === 2, internal, until);
    } catch (e) {
      this.#lock = 0;
      throw e;
    }
    this.#internal = internal;
    if (this.#released) {  // released while waiting: give the lock back
      this.#pool._unlock(this.bufferId, mode === 2, internal);
      this.#lock = 0;
    }
  }

  unlock(): void {
    this.#alive('unlock');
    if (!this.#lock) throw new RingmasterError('ERR_RINGMASTER_NOT_LOCKED', `buffer ${this.bufferId} is not locked by this handle`);
    const excl = this.#lock === 2;
    this.#lock = 0;
    this.#pool._unlock(this.bufferId, excl, this.#internal);
    this.#internal = false;
  }

  /** Marks the page dirty with WAL position `lsn`; needs the exclusive lock. */
  /**
   * Marks the page dirty (exclusive lock required). With `lsn`, also raises the page LSN
   * to it (it never goes backwards); without, keeps it. Safe order across checkpoints
   * (PostgreSQL's rule): lockExclusive → change the page → markDirty() → append the WAL
   * record → markDirty(itsLsn) → release. Dirtying *before* the append guarantees that a
   * checkpoint whose redo point follows the record finds the page dirty, and its
   * writeback waits for the lock, so it writes the change with its LSN.
   */
  markDirty(lsn: bigint = 0n): void {
    this.#alive('markDirty');
    if (typeof lsn !== 'bigint') throw typeError('ERR_INVALID_ARG_TYPE', 'lsn must be a bigint');
    if (lsn < 0n || lsn > MAX_LSN) throw rangeError('ERR_OUT_OF_RANGE', 'lsn must be in 0..2^64-1');
    if (this.#lock !== 2) throw new RingmasterError('ERR_RINGMASTER_NOT_LOCKED_EXCLUSIVE', `markDirty needs the exclusive lock on buffer ${this.bufferId}`);
    this.#pool._markDirty(this.bufferId, lsn);
  }
}

/** Per-environment handle on the shared buffer pool (`db.buffers`). */
export class BufferPool {
  readonly db: Ringmaster;
  /** The part of core this module works through (regions, waits, submission, the session). */
  readonly #core: ModuleCore;
  #info: PoolInfo | null = null;
  #hook: WalHook | null = null;
  #strategy: 'link' | 'wait' = 'link';
  #pinWaitMs = 5000;
  #ioWaitMs = 30000;
  #lockWaitMs = 30000;
  #waitForOwnLocks = false;
  #bgTimer: NodeJS.Timeout | null = null;

  constructor(db: Ringmaster) {
    this.db = db;
    this.#core = coreOf(db);
    db.once('close', () => this.stopBackgroundWriter());
  }

  #n(): NativeSession {
    return this.#core.native();
  }

  #inf(): PoolInfo {
    if (!this.#info) {
      const i = N.bpInfo(this.#n());
      if (!i) throw new RingmasterError('ERR_RINGMASTER_NO_BUFFER_POOL', 'no buffer pool: start the postmaster with the bufferPool option');
      this.#info = i as PoolInfo;
    }
    return this.#info;
  }

  /** Whether the postmaster was started with the `bufferPool` option. */
  get configured(): boolean {
    if (this.#info) return true;
    try {
      this.#inf();
      return true;
    } catch {
      return false;
    }
  }

  get pageSize(): number {
    return this.#inf().pageSize;
  }
  get pages(): number {
    return this.#inf().pages;
  }

  configure(options: BufferPoolConfig): void {
    if (options === null || typeof options !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', 'options must be an object');
    for (const k of Object.keys(options)) {
      if (!['walBeforeData', 'pinWaitMs', 'ioWaitMs', 'lockWaitMs', 'waitForOwnLocks'].includes(k)) throw typeError('ERR_INVALID_ARG_VALUE', `unknown buffer pool option '${k}'`);
    }
    if (options.walBeforeData !== undefined) {
      if (options.walBeforeData !== 'link' && options.walBeforeData !== 'wait') throw typeError('ERR_INVALID_ARG_VALUE', "walBeforeData must be 'link' or 'wait'");
      this.#strategy = options.walBeforeData;
    }
    this.#pinWaitMs = intOpt('pinWaitMs', options.pinWaitMs, this.#pinWaitMs, 0, 2 ** 31 - 1);
    this.#ioWaitMs = intOpt('ioWaitMs', options.ioWaitMs, this.#ioWaitMs, 1, 2 ** 31 - 1);
    this.#lockWaitMs = intOpt('lockWaitMs', options.lockWaitMs, this.#lockWaitMs, 0, 2 ** 31 - 1);
    if (options.waitForOwnLocks !== undefined) {
      if (typeof options.waitForOwnLocks !== 'boolean') throw typeError('ERR_INVALID_ARG_TYPE', 'waitForOwnLocks must be a boolean');
      this.#waitForOwnLocks = options.waitForOwnLocks;
    }
  }

  /** Installs the WAL's hook (null: every LSN counts as durable). */
  setWalHook(hook: WalHook | null, options: { walBeforeData?: 'link' | 'wait' } = {}): void {
    optionsObject('setWalHook', options, ['walBeforeData']);
    if (hook !== null) {
      if (typeof hook !== 'object' || typeof hook.flushedLsn !== 'function' || typeof hook.flush !== 'function' || typeof hook.appendFlushChain !== 'function') {
        throw typeError('ERR_INVALID_ARG_TYPE', 'hook must implement WalHook (flushedLsn, flush, appendFlushChain)');
      }
    }
    if (options.walBeforeData !== undefined) this.configure({ walBeforeData: options.walBeforeData });
    this.#hook = hook;
  }

  #fileId(file: FileHandle | number): number {
    if (file instanceof FileHandle) {
      if (file.closed) throw new RingmasterError('ERR_RINGMASTER_FILE_CLOSED', `file '${file.path}' is closed`);
      return file.id;
    }
    if (typeof file !== 'number' || !Number.isSafeInteger(file) || file < 0) throw typeError('ERR_INVALID_ARG_TYPE', 'file must be a FileHandle or a file id');
    return file;
  }

  #block(block: number | bigint, name = 'block'): number {
    let b: number;
    if (typeof block === 'bigint') {
      if (block < 0n || block > BigInt(Number.MAX_SAFE_INTEGER)) throw rangeError('ERR_OUT_OF_RANGE', `${name} out of range`);
      b = Number(block);
    } else if (typeof block === 'number') {
      if (!Number.isInteger(block) || block < 0) throw rangeError('ERR_OUT_OF_RANGE', `${name} must be a non-negative integer, got ${block}`);
      b = block;
    } else {
      throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be a number or bigint`);
    }
    if (b * this.#inf().pageSize > Number.MAX_SAFE_INTEGER) throw rangeError('ERR_OUT_OF_RANGE', `${name} ${b} is past the largest addressable offset`);
    return b;
  }

  // "file 'table.0' (id 65537)": error messages name the file when this process can.
  #fileLabel(fileId: number): string {
    try {
      const p = this.#core.native().fileInfo(fileId)?.path;
      if (p !== undefined) return `file '${p}' (id ${fileId})`;
    } catch {
      /* closed */
    }
    return `file ${fileId}`;
  }

  #ioSeqOff(id: number): number {
    const i = this.#inf();
    return i.descOffset + id * i.descSize + i.ioSeqField;
  }
  #lockOff(id: number): number {
    const i = this.#inf();
    return i.descOffset + id * i.descSize + i.lockField;
  }
  #pageSlice(id: number): { offset: number; length: number } {
    const i = this.#inf();
    return { offset: i.pagesOffset + id * i.pageSize, length: i.pageSize };
  }

  /**
   * A pinned buffer holding `block` of `file`, valid when the promise resolves. Readers
   * of the same page, in any process, share one buffer and one IO.
   *
   * - `mode: 'normal'` (default): the block must exist. One wholly past the end of the
   *   file fails with `ERR_RINGMASTER_PAST_EOF`; one the file ends inside of (a torn
   *   extension or a truncated file) with `ERR_RINGMASTER_SHORT_READ`.
   * - `mode: 'extend'`: read the block, or, if it lies wholly past the end of the file, a
   *   new page: all zeros (LSN 0, no checksum: an all-zero page is valid), valid and clean.
   *   Once changed and marked dirty, its writeback extends the file. A file that ends
   *   inside the block is still `ERR_RINGMASTER_SHORT_READ`: those bytes exist.
   * - `mode: 'zero'`: a zeroed page without any IO, whatever the file holds (for a caller
   *   that overwrites the whole page). If the page is already in the pool, it is
   *   returned as it is.
   */
  async read(file: FileHandle | number, block: number | bigint, options: { mode?: 'normal' | 'extend' | 'zero' } = {}): Promise<PinnedBuffer> {
    optionsObject('read', options, ['mode']);
    const mode = options.mode ?? 'normal';
    if (mode !== 'normal' && mode !== 'extend' && mode !== 'zero') throw typeError('ERR_INVALID_ARG_VALUE', "mode must be 'normal', 'extend' or 'zero'");
    const fileId = this.#fileId(file);
    const blk = this.#block(block);
    // No await before the read is submitted: a caller that goes busy right after
    // calling read() has its IO in flight already.
    let id = this.#pinNow(fileId, blk);
    if (id < 0) id = await this.#pinSlow(fileId, blk);
    return this.#ready(id, fileId, blk, mode === 'zero', 0, true, mode === 'extend');
  }

  // -1: the slow path is needed (no clean victim, or pool exhausted).
  #pinNow(fileId: number, blk: number): number {
    const r = N.bpPin(this.#n(), fileId, blk);
    if (r[0] === PIN_OK) return r[1];
    this.#throwIfPinRefused(r, fileId, blk);
    return -1;
  }

  // The answers of bpPin that end a read with an error.
  #throwIfPinRefused(r: number[], fileId: number, blk: number): void {
    if (r[0] === PIN_CORRUPT) throw corruptPool(`block ${blk} of ${this.#fileLabel(fileId)}: the buffer pool's ${r[1] ? 'mapping table' : 'buffer descriptors'} are corrupt`);
    if (r[0] === PIN_TOO_MANY) throw new RingmasterError('ERR_RINGMASTER_TOO_MANY_PINS', 'this environment holds too many pinned buffers (256 distinct pages): release some');
    if (r[0] === PIN_ALIASED && r[1]) throw new RingmasterError('ETIMEDOUT', `block ${blk} of ${this.#fileLabel(fileId)}: the shared file table's lock was not granted in time (a stopped holder?)`);
    if (r[0] === PIN_ALIASED) {
      throw new RingmasterError('ERR_RINGMASTER_FILE_ALIASED',
        `block ${blk} of ${this.#fileLabel(fileId)}: the pool caches this file under the id of its other open entry (opened with other access flags); read it through that id, or close that id's handles first`);
    }
  }

  async #pinSlow(fileId: number, blk: number): Promise<number> {
    const deadline = Date.now() + this.#pinWaitMs;
    let lastFlushError: unknown;
    // Every buffer pinned: wait for an unpin (any process) instead of polling the clock
    // sweep. Registered once per read that waits (stats: pinWaits, pinWaitMs).
    let waitingSince = 0;
    try {
      for (;;) {
        const r = N.bpPin(this.#n(), fileId, blk);
        if (r[0] === PIN_OK) return r[1];
        this.#throwIfPinRefused(r, fileId, blk);
        if (r[0] === PIN_NEED_CLEAN) {
          // Only dirty buffers are evictable: write one back (WAL first), then retry.
          try {
            // A page another process is writing is not clean yet: then wait below.
            if ((await this.#flushId(r[1])) !== 'busy') continue;
          } catch (e) {
            lastFlushError = e;  // fall through to the bounded wait
          }
        }
        const left = deadline - Date.now();
        if (left <= 0) {
          const why = lastFlushError ? ' or dirty (writing one back failed: see cause)' : '';
          throw new RingmasterError('ERR_RINGMASTER_POOL_EXHAUSTED', `every buffer of the pool (${this.#inf().pages} pages) stayed pinned${why} for ${this.#pinWaitMs} ms`,
            lastFlushError ? { cause: lastFlushError } : {});
        }
        if (r[0] === PIN_NEED_CLEAN) {  // a failed writeback: retry it after a pause, not at once
          await sleep(Math.min(left, 20));
          continue;
        }
        const [offset, seq] = N.bpPinWait(this.#n(), waitingSince ? 2 : 1);
        if (!waitingSince) waitingSince = Date.now();
        // Registered first, then looked again: an unpin before the registration is found
        // by this look, one after it moves the seq.
        const again = N.bpPin(this.#n(), fileId, blk);
        if (again[0] === PIN_OK) return again[1];
        if (again[0] !== PIN_EXHAUSTED) continue;  // something else to do (a dirty victim, an error)
        // Bounded: a re-look every 100 ms also covers an unpin whose wake was lost.
        await this.#core.waitWord(offset, seq, Math.min(left, 100));
      }
    } finally {
      if (waitingSince && !this.db.closed) {
        try {
          N.bpPinWait(this.#n(), 0, (Date.now() - waitingSince) * 1e6);
        } catch {
          /* closed meanwhile */
        }
      }
    }
  }

  async #ready(id: number, fileId: number, blk: number, zero: boolean, waited: number, first: boolean, extend = false): Promise<PinnedBuffer> {
    const n = this.#n();
    const deadline = Date.now() + this.#ioWaitMs;
    let retries = 0;
    try {
      for (;;) {
        const r = N.bpStartIo(n, id, waited, zero, first, fileId, blk);
        first = false;
        if (r[0] === IO_CORRUPT) throw corruptPool(`block ${blk} of ${this.#fileLabel(fileId)}: descriptor of buffer ${id} is corrupt`);
        if (r[0] === IO_VALID) return new PinnedBuffer(this, id, fileId, blk, this.db.arenaSlice(this.#pageSlice(id).offset, this.#inf().pageSize).bytes);
        if (r[0] === IO_CLAIMED) {
          await this.#submitReads([[id, r[1], fileId, blk]]);
          waited = r[1];
          continue;
        }
        if (r[0] === IO_WAIT) {
          const left = deadline - Date.now();
          if (left <= 0) throw new RingmasterError('ERR_RINGMASTER_IO_TIMEOUT', `waited ${this.#ioWaitMs} ms for another process's read of block ${blk} of ${this.#fileLabel(fileId)}`);
          await this.#core.waitWord(this.#ioSeqOff(id), r[1], Math.min(left, 1000));
          waited = r[1];
          continue;
        }
        const code = errorCode(r[1]);
        // ECANCELED: the issuer died or detached; retry with our own read.
        if (code === 'ECANCELED' && retries++ < 5) {
          waited = 0;
          continue;
        }
        // 'extend': the read (ours, or another reader's that we waited for) found the block
        // wholly past EOF. Claim it again as a zeroed page: the claim is one CAS on the
        // buffer, so of several processes extending the same block exactly one zeroes it
        // and every other one finds it valid (with whatever the first already wrote in it).
        if (extend && r[1] === ERR_PAST_EOF && retries++ < 5) {
          zero = true;
          waited = 0;
          continue;
        }
        throw new RingmasterError(code, this.#readFailure(code, blk, fileId), { errno: r[1] > -10000 ? r[1] : undefined });
      }
    } catch (e) {
      try {
        N.bpUnpin(n, id);
      } catch {
        /* handle closed */
      }
      throw e;
    }
  }

  #readFailure(code: string, blk: number, fileId: number): string {
    const where = `block ${blk} of ${this.#fileLabel(fileId)}`;
    if (code === 'ERR_RINGMASTER_PAST_EOF') {
      return `reading ${where} into the buffer pool failed: the block is past the end of the file; read it with { mode: 'extend' } to create it as a zeroed page`;
    }
    if (code === 'ERR_RINGMASTER_SHORT_READ') {
      return `reading ${where} into the buffer pool failed: the file ends inside the block (a torn extension or a truncated file?)`;
    }
    return `reading ${where} into the buffer pool failed: ${code}`;
  }

  // One batch (one io_uring_enter) for the claimed reads [id, seq, fileId, block].
  #submitReads(list: [number, number, number, number][]): Promise<IoResult[]> {
    const n = this.#n();
    const ps = this.#inf().pageSize;
    const ops: EncodedOp[] = list.map(([id, seq, fileId, blk]) => ({
      fields: [OP_READ, 0, fileId, blk * ps, ps, this.#pageSlice(id).offset, KIND_BUFFER_READ_DONE, (seq & 0xfffff) * 2 ** 32 + id],
      buffer: undefined,
      name: 'read',
    }));
    // A claim is marked submitted once its read really is; only the others are ended on failure.
    const submitted = new Array<boolean>(list.length).fill(false);
    const abort = (errno: number) => {
      list.forEach(([id, seq], k) => {
        if (submitted[k]) return;
        try {
          N.bpAbortIo(n, id, seq, -Math.abs(errno), false);
        } catch {
          /* closed */
        }
      });
    };
    let p: Promise<IoResult[]>;
    try {
      // Now, not at the end of this turn: others wait on these claims, whatever this
      // thread does next.
      p = this.#core.submit(undefined, ops, [], {
        now: true,
        onSubmitted: (k) => {
          submitted[k] = true;
          N.bpSubmitted(n, list[k][0], list[k][1]);
        },
      });
    } catch (e) {
      abort(EIO);
      throw e;
    }
    // A rejected submit never reached the ring: end the claims (no-op if they completed).
    return p.catch((e) => {
      abort((e as { errno?: number }).errno ?? EIO);
      throw e;
    });
  }

  /** Starts reads of `blocks` (one batch per ring's worth) and resolves when they are in the pool. */
  async prefetch(file: FileHandle | number, blocks: Iterable<number | bigint>): Promise<void> {
    const fileId = this.#fileId(file);
    if (blocks === null || typeof blocks !== 'object' || typeof (blocks as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw typeError('ERR_INVALID_ARG_TYPE', 'blocks must be an iterable of block numbers');
    }
    const list = [...blocks].map((b) => this.#block(b));
    const results = await Promise.allSettled(this.#readMany(fileId, list));
    for (const r of results) if (r.status === 'fulfilled') r.value.release();
  }

  // Pins each block; the reads it must issue go out in one batch per ringEntries.
  #readMany(fileId: number, blocks: number[]): Promise<PinnedBuffer>[] {
    const n = this.#n();
    const out: Promise<PinnedBuffer>[] = [];
    const claimed: [number, number, number, number][] = [];
    const slots: number[] = [];
    for (const blk of blocks) {
      let id: number;
      try {
        id = this.#pinNow(fileId, blk);
      } catch (e) {
        out.push(Promise.reject(e));
        continue;
      }
      if (id < 0) {
        out.push(this.read(fileId, blk));
        continue;
      }
      const r = N.bpStartIo(n, id, 0, false, true, fileId, blk);
      if (r[0] === IO_CLAIMED) {
        claimed.push([id, r[1], fileId, blk]);
        slots.push(out.length);
        out.push(null as unknown as Promise<PinnedBuffer>);
      } else {
        out.push(this.#ready(id, fileId, blk, false, r[0] === IO_WAIT ? r[1] : 0, false));
      }
    }
    const max = this.db.features.ringEntries;
    for (let i = 0; i < claimed.length; i += max) {
      const chunk = claimed.slice(i, i + max);
      const p = this.#submitReads(chunk);
      chunk.forEach(([id, seq, , blk], k) => {
        out[slots[i + k]] = p.then(
          () => this.#ready(id, fileId, blk, false, seq, false),
          () => this.#ready(id, fileId, blk, false, seq, false),
        );
      });
    }
    for (const p of out) p.catch(() => {});  // the caller handles each in turn
    return out;
  }

  /**
   * Pinned buffers for blocks fromBlock..toBlock-1 in order, keeping `depth` reads in
   * flight (issued in batches). Release each buffer when done with it.
   */
  async *stream(file: FileHandle | number, fromBlock: number | bigint, toBlock: number | bigint, options: { depth?: number } = {}): AsyncGenerator<PinnedBuffer> {
    const fileId = this.#fileId(file);
    const from = this.#block(fromBlock, 'fromBlock');
    const to = this.#block(toBlock, 'toBlock');
    if (to < from) throw rangeError('ERR_OUT_OF_RANGE', 'toBlock must not be before fromBlock');
    optionsObject('stream', options, ['depth']);
    const depth = intOpt('depth', options.depth, 8, 1, this.db.features.ringEntries);
    const queue: Promise<PinnedBuffer>[] = [];
    let next = from;
    const refill = () => {
      const want = Math.min(depth - queue.length, to - next);
      if (want <= 0) return;
      const blocks = Array.from({ length: want }, (_, i) => next + i);
      next += want;
      queue.push(...this.#readMany(fileId, blocks));
    };
    try {
      refill();
      while (queue.length) {
        const b = await queue.shift()!;
        if (queue.length <= depth / 2) refill();  // top up in batches, not one by one
        yield b;
      }
    } finally {
      for (const p of queue) p.then((b) => b.release(), () => {});
    }
  }

  // ---- writeback ----------------------------------------------------------

  // Writes back buffer `id` if it is still dirty (pin + shared lock held meanwhile).
  // 'busy': not written, because another write of it stayed in progress (or its mapping
  // partition lock stayed held) -- never to be read as clean. Without `strict` it gives up
  // after about 5 s of that (eviction and the background writer skip such a page); with it
  // (a checkpoint's flushAll), it waits until `strict.ioUntil` (0: not at all) for a write
  // in progress, its lock wait ends at `strict.until`, and it stops as soon as `covered()`
  // says a write that covers what the checkpoint needs has completed.
  async #flushId(id: number, strict?: { until: number; ioUntil: number; covered: () => boolean }): Promise<'written' | 'clean' | 'busy'> {
    const t = N.bpPinById(this.#n(), id);
    if (!t) return 'clean';
    const buf = new PinnedBuffer(this, id, t[0], t[1], this.db.arenaSlice(this.#pageSlice(id).offset, this.#inf().pageSize).bytes);
    try {
      if (!t[2]) return 'clean';
      try {
        await buf._lockInternal(strict?.until);
      } catch (e) {
        // A content lock held past the checkpoint's deadline: the page is left, and named.
        if (strict && (e as RingmasterError).code === 'ERR_RINGMASTER_LOCK_TIMEOUT') return 'busy';
        throw e;
      }
      return await this.#writeBack(id, strict);
    } finally {
      buf.release();
    }
  }

  async #writeBack(id: number, strict?: { ioUntil: number; covered: () => boolean }): Promise<'written' | 'clean' | 'busy'> {
    const n = this.#n();
    for (let attempt = 0; ; attempt++) {
      if (strict?.covered()) return 'clean';
      const r = N.bpStartWrite(n, id);
      if (r[0] === WS_CLEAN) return 'clean';
      if (r[0] === WS_CORRUPT) throw corruptPool(`writing back buffer ${id}: its descriptor or mapping entry is corrupt, so where it belongs is unknown`);
      if (r[0] === WS_BUSY) {
        // Another write of this page is in progress (claimed, maybe not even submitted by
        // a stalled process), or the mapping partition lock stayed held: wait for its end.
        const left = strict ? strict.ioUntil - Date.now() : attempt < 5 ? 1000 : 0;
        if (left <= 0) return 'busy';
        await this.#core.waitWord(this.#ioSeqOff(id), r[1], Math.min(left, 1000));
        continue;
      }
      const seq: number = r[1];
      const lsn = (BigInt(r[4]) << 32n) | BigInt(r[5]);
      await this.#writeWithWal(id, seq, r[2], r[3], lsn);
      return 'written';
    }
  }

  // WAL-before-data: the page (LSN `lsn`) is written only once the WAL is durable to it.
  async #writeWithWal(id: number, seq: number, fileId: number, blk: number, lsn: bigint): Promise<void> {
    const n = this.#n();
    const ps = this.#inf().pageSize;
    const arg = (seq & 0xfffff) * 2 ** 32 + id;
    const page = this.#pageSlice(id);
    let pageSubmitted = false;
    const abort = (errno: number) => {
      if (pageSubmitted) return;  // the write is in flight: its completion ends the claim
      try {
        N.bpAbortIo(n, id, seq, -Math.abs(errno), true);
      } catch {
        /* closed */
      }
    };
    const hook = this.#hook;
    let batch;
    let onWal: ((results: IoResult[], firstIndex: number) => void) | null = null;
    try {
      batch = this.db.batch();
      if (hook && hook.flushedLsn() < lsn) {
        if (this.#strategy === 'link') onWal = hook.appendFlushChain(batch, lsn);
        if (!onWal) {
          if (batch.length) throw new RingmasterError('ERR_RINGMASTER_WAL_HOOK', 'appendFlushChain returned null but added ops');
          await hook.flush(lsn);
          if (hook.flushedLsn() < lsn) throw new RingmasterError('ERR_RINGMASTER_WAL_NOT_DURABLE', `the WAL is not durable up to ${lsn} after flush`);
        }
      }
    } catch (e) {
      abort(EIO);
      throw e;
    }
    const pos = batch.length;
    let p: Promise<IoResult[]>;
    try {
      this.#core.setKind(batch.write(fileId, blk * ps, page as import("../core/io").ArenaSlice), KIND_BUFFER_WRITE_DONE, arg);
      p = this.#core.submitBatch(batch, {
        now: true,
        onSubmitted: (k) => {
          if (k !== pos) return;
          pageSubmitted = true;
          N.bpSubmitted(n, id, seq);
        },
      });
    } catch (e) {
      abort(EIO);
      throw e;
    }
    let res: IoResult[];
    try {
      res = await p;
    } catch (e) {
      abort((e as { errno?: number }).errno ?? EIO);
      throw e;
    }
    if (onWal) onWal(res, 0);
    const w = res[pos];
    if (!w.ok) throw w.error ?? new RingmasterError('EIO', `page write of block ${blk} of ${this.#fileLabel(fileId)} failed`);
    // A short write left a torn page on disk: the page stays dirty (native side) and the
    // caller -- a checkpoint above all -- must not count it as written.
    if (w.result !== ps) throw new RingmasterError('EIO', `page write of block ${blk} of ${this.#fileLabel(fileId)} was short (${w.result} of ${ps} bytes)`, { errno: -5 });
  }

  /**
   * Writes back every page that is dirty when it is called (a checkpoint calls it after
   * choosing its redo point) and resolves, with the number of pages this call wrote, only
   * once each of them has been written since -- by this call or by any other process; a page
   * dirtied again meanwhile need not be written twice. A page another process holds -- its
   * write in progress (a claim not yet submitted is on no disk) or its content lock -- is
   * waited for, up to `timeoutMs` (default: `configure()`'s `ioWaitMs`) once this call has
   * written what it could itself (the pages it writes are never timed: a large pool on a
   * slow disk must not fail every checkpoint). A page still not written then rejects the
   * call with `ERR_RINGMASTER_WRITEBACK_TIMEOUT`, whose `pages` name each one left (buffer,
   * file, block, and the process whose write is in progress). A write that fails, or a torn
   * page, rejects it with that error.
   */
  async flushAll(options: { timeoutMs?: number } = {}): Promise<number> {
    optionsObject('flushAll', options, ['timeoutMs']);
    const timeoutMs = intOpt('timeoutMs', options.timeoutMs, this.#ioWaitMs, 0, 2 ** 31 - 1);
    return this.#writeBackDirty(timeoutMs);
  }

  /** Before the last handle of `fileId` closes: its dirty pages written back (the pool's default IO wait). */
  async _writeBackFile(fileId: number): Promise<number> {
    return this.configured ? this.#writeBackDirty(this.#ioWaitMs, fileId) : 0;
  }

  // Every page dirty now (of `fileId` only, if given) written back, by this environment or another.
  async #writeBackDirty(timeoutMs: number, fileId?: number): Promise<number> {
    const n = this.#n();
    // The pages dirty now, each with its dirty generation: what "written since" is measured
    // against (native/buffer_pool.h, pool_written_since). Not the page LSN: a page dirtied
    // before the redo point and again after it carries the later LSN; and a write claimed
    // by another process but not submitted yet is listed too (the old scan skipped pages
    // with IO in progress, and a checkpoint moved its redo point past such a page).
    const flat: number[] = N.bpDirty(n);
    let pending: DirtyPage[] = [];
    for (let i = 0; i < flat.length; i += 4) {
      if (fileId === undefined || flat[i + 1] === fileId) pending.push({ id: flat[i], fileId: flat[i + 1], block: flat[i + 2], gen: flat[i + 3] });
    }
    const writtenSince = (p: DirtyPage) => N.bpWrittenSince(this.#n(), p.id, p.fileId, p.block, p.gen);
    const max = Math.max(1, Math.min(64, this.db.features.ringEntries >> 1));
    let written = 0;
    let deadline = Infinity;  // set once the first round is done: only waiting for others is timed
    pending = pending.filter((p) => !writtenSince(p));
    for (let round = 0; ; round++) {
      if (pending.length === 0) return written;
      if (round === 1) deadline = Date.now() + timeoutMs;
      if (round > 0 && Date.now() >= deadline) throw this.#writebackTimeout(pending, timeoutMs);
      // The first round writes what it can and passes over a page whose write is in
      // progress (a content lock it waits for, up to timeoutMs from then); later rounds
      // wait for those until the deadline.
      for (let i = 0; i < pending.length; i += max) {
        const until = round === 0 ? Date.now() + timeoutMs : deadline;
        const ioUntil = round === 0 ? 0 : deadline;
        const rs = await Promise.all(pending.slice(i, i + max).map((p) => this.#flushId(p.id, { until, ioUntil, covered: () => writtenSince(p) })));
        for (const r of rs) if (r === 'written') written++;
      }
      // One look per page per round (it is a native call): what is left for the next.
      const before = pending.length;
      pending = pending.filter((p) => !writtenSince(p));
      // A round that settled nothing without waiting (a page this environment could not
      // pin, say): look again shortly rather than spin until the deadline.
      if (round > 0 && pending.length > 0 && pending.length === before) {
        await sleep(Math.max(0, Math.min(deadline - Date.now(), 20)));
        pending = pending.filter((p) => !writtenSince(p));
      }
    }
  }

  #writebackTimeout(pending: DirtyPage[], timeoutMs: number): RingmasterError {
    const io = new Map(this.ioInProgress().map((x) => [x.bufferId, x]));
    const pages = pending.map((p) => {
      const x = io.get(p.id);
      return { bufferId: p.id, fileId: p.fileId, file: this.#fileLabel(p.fileId), block: p.block, ioPid: x ? x.pid : null, ioSubmitted: x ? x.submitted : null };
    });
    const why = (q: (typeof pages)[number]) =>
      q.ioPid === null ? 'no write of it in progress: its content lock or its mapping partition lock stayed held, or this environment could not pin it'
        : `its write was claimed by pid ${q.ioPid} and ${q.ioSubmitted ? 'submitted, not completed' : 'never submitted'}`;
    const list = pages.slice(0, 8).map((q) => `block ${q.block} of ${q.file} (buffer ${q.bufferId}: ${why(q)})`).join('; ');
    const more = pages.length > 8 ? `; and ${pages.length - 8} more` : '';
    const e = new RingmasterError('ERR_RINGMASTER_WRITEBACK_TIMEOUT',
      `${pages.length} page(s) dirty when flushAll began were still not written after waiting ${timeoutMs} ms for other processes: ${list}${more}`);
    return Object.assign(e, { pages });
  }

  /**
   * Writes back, every `intervalMs` (at most `maxPages` a round), first the dirty pages the
   * clock sweep is about to reach: unpinned, usage count 0, within twice the distance the
   * hand travelled in a recent round (PostgreSQL's bgwriter LRU scan, multiplier 2), so a
   * miss finds a clean victim. Pages in use (usage > 0: the hot ones) are left to a slow
   * cursor of its own, which passes every page once every 2 minutes and writes whatever is
   * dirty there, so no dirty page waits for a checkpoint forever. Writing a hot page every
   * round would hold its shared content lock, and the WAL flush before it, against every
   * writer of the page, for nothing: it is dirty again at once.
   */
  startBackgroundWriter(options: { intervalMs?: number; maxPages?: number } = {}): { stop(): void } {
    optionsObject('startBackgroundWriter', options, ['intervalMs', 'maxPages']);
    const intervalMs = intOpt('intervalMs', options.intervalMs, 200, 1, 3600000);
    const maxPages = intOpt('maxPages', options.maxPages, 16, 1, 1 << 20);
    const pages = this.#inf().pages;
    this.stopBackgroundWriter();
    let busy = false;
    let lastHand = -1;
    let pace = 0;  // the hand's advance per round, smoothed; a rise is taken at once
    let cursor = 0;  // the slow pass over every page
    const slowScan = Math.max(1, Math.ceil((pages * intervalMs) / 120000));
    const timer = setInterval(async () => {
      if (busy || this.db.closed) return;
      busy = true;
      try {
        const n = this.#n();
        const scan = Math.min(pages, Math.max(1, Math.ceil(2 * pace)));
        const r: number[] = N.bpDirtyAhead(n, 0, true, scan, maxPages, false);
        const hand = r[0];
        if (lastHand >= 0) {
          const adv = (hand - lastHand) >>> 0;  // the hand is a u32 counter that wraps
          pace = adv >= pace ? adv : pace + (adv - pace) / 16;
        }
        lastHand = hand;
        const ids = new Set(r.slice(1));
        if (ids.size < maxPages) {
          for (const id of N.bpDirtyAhead(n, cursor, false, slowScan, maxPages - ids.size, true).slice(1)) ids.add(id);
          cursor = (cursor + slowScan) % pages;  // (a round whose budget the sweep's pages took leaves it where it is)
        }
        await Promise.all([...ids].map((id) => this.#flushId(id).catch(() => false)));
      } catch {
        /* closed meanwhile */
      } finally {
        busy = false;
      }
    }, intervalMs);
    timer.unref();
    this.#bgTimer = timer;
    return { stop: () => this.stopBackgroundWriter() };
  }

  stopBackgroundWriter(): void {
    if (this.#bgTimer) clearInterval(this.#bgTimer);
    this.#bgTimer = null;
  }

  /** Counters of this environment (`process`) and of all processes (`global`), plus current buffer states. */
  stats(): {
    process: BufferPoolStats; global: BufferPoolStats; pinned: number; dirty: number; valid: number; ioInProgress: number;
    /** Garbage found on operations' paths (state words, tags; chain links), and integrity repairs. */
    corruptDescriptors: number; corruptMapping: number; integrityRepairs: number;
    /** Wait queues rebuilt after a holder died mid-edit or a link was found scribbled. */
    lockQueueRepairs: number;
    /**
     * Pin or shared-lock counts recounted from the live holders' records because a process
     * died in the middle of changing one (bufferpool/README.md, "A pin in two places").
     */
    recounts: number;
    /**
     * Pages fenced because an exclusive holder died mid-update (`torn` now, the first 64 of
     * them in `tornPages`, `tornTotal` ever): reads and locks fail with
     * `ERR_RINGMASTER_PAGE_TORN`, a checkpoint fails while one is dirty; restart to recover.
     */
    torn: number; tornPages: { fileId: number; block: number; dirty: boolean }[]; tornTotal: number;
  } {
    return N.bpStats(this.#n());
  }

  /**
   * Buffers with an IO in progress and who claimed it (introspection). `submitted`: the
   * claimer handed it to the ring (else a dead claimer's cleanup aborts it); `write`: a
   * writeback (else a read).
   */
  ioInProgress(): { bufferId: number; slot: number; pid: number; ioSeq: number; submitted: boolean; write: boolean }[] {
    return (N.bpIoInProgress(this.#n()) as [number, number, number, number, boolean, boolean][]).map(([bufferId, slot, pid, ioSeq, submitted, write]) => ({ bufferId, slot, pid, ioSeq, submitted, write }));
  }

  // ---- used by PinnedBuffer -------------------------------------------------

  /** @internal */
  _unpin(id: number): void {
    if (!N.bpUnpin(this.#n(), id)) throw new RingmasterError('ERR_RINGMASTER_NOT_PINNED', `buffer ${id} is not pinned by this environment`);
  }

  /**
   * @internal Content lock: one CAS when nobody waits; otherwise the request joins the
   * buffer's FIFO wait queue in shared memory and sleeps until a release hands the lock
   * over (only the grantee's environment is woken). Bounded by lockWaitMs. A request that
   * conflicts with this environment's own hold fails at once (ERR_RINGMASTER_SELF_DEADLOCK)
   * unless waitForOwnLocks is set or it is `internal` writeback (which waits for the other
   * async flow of this environment that holds the page).
   */
  async _lock(id: number, exclusive: boolean, internal = false, until?: number): Promise<void> {
    const n = this.#n();
    // `until`: a checkpoint's deadline, when it comes before lockWaitMs runs out.
    const deadline = Math.min(Date.now() + this.#lockWaitMs, until ?? Infinity);
    let backoff = 1;
    let r: number[];
    for (;;) {
      try {
        // Writeback's shared holds are this environment's too, but they always end: they do
        // not make a user's request a self-deadlock.
        r = N.bpLock(n, id, exclusive, internal || this.#waitForOwnLocks, this.#internalShared.get(id) ?? 0);
      } catch (e) {
        throw fromNative(e);
      }
      if (r[0] === LOCK_ACQUIRED) return this.#held(id, internal);
      if (r[0] === LOCK_QUEUED) break;
      // No wait cell free (this environment has 32 lock waits already) or the queue's lock
      // is held by a stopped process: rare; poll until the deadline.
      if (Date.now() >= deadline) throw this.#lockTimeout(id);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 20);
    }
    const [, cell, offset] = r;
    for (;;) {
      const left = deadline - Date.now();
      // WAITING is 1; the grant changes it. Re-look every second even without a wake: the
      // look runs a grant pass, which also finishes a release whose releaser died.
      if (left > 0) await this.#core.waitWord(offset, 1, Math.min(left, 1000));
      let done: number;
      try {
        done = N.bpLockWaitEnd(this.#n(), id, cell, Date.now() >= deadline);
      } catch (e) {
        throw fromNative(e);
      }
      if (done === LOCK_WAIT_GRANTED) return this.#held(id, internal);
      if (done === LOCK_WAIT_CANCELLED) throw this.#lockTimeout(id);
    }
  }

  #internalShared = new Map<number, number>();  // buffer id -> writeback's shared holds in this environment
  #held(id: number, internal: boolean): void {
    if (internal) this.#internalShared.set(id, (this.#internalShared.get(id) ?? 0) + 1);
  }

  #lockTimeout(id: number): RingmasterError {
    return new RingmasterError('ERR_RINGMASTER_LOCK_TIMEOUT', `buffer ${id}: content lock not granted within ${this.#lockWaitMs} ms`);
  }

  /** @internal */
  _unlock(id: number, exclusive: boolean, internal = false): void {
    if (internal) {
      const k = (this.#internalShared.get(id) ?? 1) - 1;
      if (k > 0) this.#internalShared.set(id, k);
      else this.#internalShared.delete(id);
    }
    if (!N.bpUnlock(this.#n(), id, exclusive)) throw new RingmasterError('ERR_RINGMASTER_NOT_LOCKED', `buffer ${id} is not locked by this environment`);
  }

  /** @internal */
  _markDirty(id: number, lsn: bigint): void {
    let ok: boolean;
    try {
      ok = N.bpMarkDirty(this.#n(), id, lsn);
    } catch (e) {
      throw fromNative(e);
    }
    if (!ok) throw new RingmasterError('ERR_RINGMASTER_NOT_LOCKED_EXCLUSIVE', `markDirty needs the exclusive lock on buffer ${id}`);
  }
}

function resolvePoolOptions(options: unknown): { pages: number; pageSize: number; onHolderDeath: 'fence' | 'release' } {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw typeError('ERR_INVALID_ARG_TYPE', 'options.bufferPool must be an object');
  const o = options as BufferPoolOptions;
  for (const k of Object.keys(o)) {
    if (k !== 'pages' && k !== 'pageSize' && k !== 'onHolderDeath') throw typeError('ERR_INVALID_ARG_VALUE', `unknown bufferPool option '${k}'`);
  }
  if (o.onHolderDeath !== undefined && o.onHolderDeath !== 'fence' && o.onHolderDeath !== 'release')
    throw typeError('ERR_INVALID_ARG_VALUE', "bufferPool.onHolderDeath must be 'fence' or 'release'");
  const pages = intOpt('bufferPool.pages', o.pages, 256, 1, 1 << 24);
  const pageSize = intOpt('bufferPool.pageSize', o.pageSize, 8192, 4096, 32768);
  if ((pageSize & (pageSize - 1)) !== 0) throw rangeError('ERR_OUT_OF_RANGE', `bufferPool.pageSize must be a power of two, got ${pageSize}`);
  return { pages, pageSize, onHolderDeath: o.onHolderDeath ?? 'fence' };
}

// A file's last close writes its dirty pages back first: after it, the pages' file id
// names nothing, so no writeback or checkpoint could write them.
onBeforeLastClose(async (db, fileId) => {
  const pool = (db as unknown as { buffers?: BufferPool }).buffers;
  if (pool) await pool._writeBackFile(fileId);
});

registerModule('bufferPool', {
  validate(options, context) {
    const { pages, pageSize } = resolvePoolOptions(options);
    const size: number = N.bpLayout(pages, pageSize, context.maxProcesses);
    return { arenaBytes: Math.ceil(size / 4096) * 4096 };
  },
  init(db: Ringmaster, options: unknown): void {
    const o = resolvePoolOptions(options ?? {});
    const { pages, pageSize } = o;
    const size: number = N.bpLayout(pages, pageSize, db.info.maxProcesses);
    let slice;
    try {
      slice = db.allocate(size, { align: 4096 });
    } catch (e) {
      throw new RingmasterError('ERR_RINGMASTER_ARENA_TOO_SMALL',
        `the buffer pool needs ${size} bytes of arena (${pages} pages x ${pageSize} bytes + descriptors and pin tables), ` +
        `more than is free in arenaSize (${db.info.arenaSize}): raise arenaSize or lower bufferPool.pages`, { cause: e });
    }
    try {
      N.bpInit(coreOf(db).native(), slice.offset, size, pages, pageSize, o.onHolderDeath === 'release' ? POOL_RELEASE_ON_HOLDER_DEATH : 0);
    } catch (e) {
      throw fromNative(e);
    }
    coreOf(db).regionSet('bufferpool', slice.offset, size);
  },
  property: { name: 'buffers', create: (db) => new BufferPool(db) },
  // The WAL reaches the pool only through this (core/modules.ts): its hook, the checkpoint's
  // flushAll, the page it images on append, and recovery's full-page images.
  pagesForWal(db: Ringmaster): PagesForWal {
    const pool = db.buffers;
    return {
      get configured() {
        return pool.configured;
      },
      get pageSize() {
        return pool.pageSize;
      },
      setWalHook: (hook) => pool.setWalHook(hook),
      flushAll: (options) => pool.flushAll(options),
      pageOf: (value) => (value instanceof PinnedBuffer ? value : null),
      lockedExclusive: (page) => page instanceof PinnedBuffer && page._exclusive,
      async putImage(file, block, data) {
        const b = await pool.read(file, block, { mode: 'zero' });
        try {
          await b.lockExclusive();
          b.page.set(data);
        } finally {
          b.release();
        }
      },
    };
  },
});

// db.checkIntegrity() also scans the pool's descriptors and mapping table.
registerIntegrityCheck((session, repair) => {
  if (session.regionGet('bufferpool') === null) return null;
  const p = N.bpVerify(session, repair);
  const anomalies = [...p.anomalies];
  if (p.lockTimeout) anomalies.push({ structure: 'mappingTable', index: -1, problem: 'a partition lock stayed held: mapping table not checked', repaired: false });
  return { found: p.found, repaired: p.repaired, anomalies };
});

declare module '../core/ringmaster' {
  interface Ringmaster {
    /** The shared buffer pool (configured with the `bufferPool` start option). */
    readonly buffers: BufferPool;
  }
}
declare module '../core/options' {
  interface StartOptions {
    /** The shared buffer pool (bufferpool/): its options; omitted = no buffer pool. */
    bufferPool?: BufferPoolOptions;
  }
}
