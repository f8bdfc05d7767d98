// The per-process (per JS environment) handle: files, IO, batches, arena, stats.
// The postmaster, every forked worker and every worker thread each hold one.
import { EventEmitter } from 'node:events';
import { markAsUntransferable } from 'node:worker_threads';
import { constants } from 'node:os';
import { FileHandle, Files } from './files';
import { RingmasterError, corruptError, fromNative, ioError, rangeError, typeError } from './errors';
import { ArenaSlice, EncodedOp, IoBuffer, IoResult, OP_FIELDS, OP_NAMES, OpOptions, checkOffset, linkFlags, optionsObject, timeoutOption } from './io';
import { NativeInfo, NativeSession, native } from './native';
import {
  CORRUPT_RESULT, DRAIN, ESHUTDOWN, HARDLINK, KIND_COMPLETION_WORD, KIND_NONE, LINK, OP_FDATASYNC, OP_FSYNC, OP_NOP, OP_READ, OP_STAGE_FIELDS, OP_WRITE,
} from './constants';
import { changedDuringIo, pinForIo, viewBytes } from './bytes';
import { fileEntries, fileSyncState } from './durability';
import type { RingmasterStats } from './stats';
import { integrityChecks, type IntegrityReport } from './integrity';
export type { IntegrityAnomaly, IntegrityReport } from './integrity';
export type { ProcessStats, RingStats, RingmasterStats } from './stats';

const EAGAIN = constants.errno.EAGAIN;
const ETIMEDOUT = constants.errno.ETIMEDOUT;
const EFAULT = constants.errno.EFAULT;
const ECANCELED = constants.errno.ECANCELED;

/** What the postmaster got when it set things up. Same object in every process. */
export interface Features {
  backend: 'io_uring' | 'threads';
  /** Why the backend is what it is (e.g. "io_uring_setup: EPERM" for the fallback). */
  backendReason: string;
  fixedBuffers: boolean;
  /** Why fixed buffers are off, if they are. */
  fixedBuffersReason: string;
  fixedFiles: boolean;
  sqpoll: boolean;
  topology: 'shared' | 'per-process';
  rings: number;
  ringEntries: number;
  /** This process mapped the segment at the postmaster's address (SQE addresses valid everywhere). */
  sameAddress: boolean;
  kernel: string;
}

// One batch's results (Batch.submit(), the WAL and buffer pool's chains). Single-op
// helpers have no such object: their promise settles straight from the completion.
interface BatchRec {
  results: IoResult[];
  remaining: number;
  resolve: (r: IoResult[]) => void;
  reject: (e: unknown) => void;  // the batch was refused or never submitted (once)
  rejected: boolean;
  keep: unknown[];  // private buffers must stay alive until the kernel is done with them
  onSubmitted: ((pos: number) => void) | undefined;  // called as each op is handed to the kernel (or the pool)
}

/** @internal How a module's batch is submitted (`_submit`). */
export interface SubmitOptions {
  /** Hand the ops (and whatever else is staged) to the kernel now, not at the end of this turn. */
  now?: boolean;
  /** Called synchronously as op `pos` of the batch is submitted (before any completion reaches JS). */
  onSubmitted?: (pos: number) => void;
}

// The staging area shared with native/submission.h: OP_STAGE_FIELDS float64 per op
// (op, linkFlags, fileId, offset, length, arenaOffset, kind, kindArg, ring, flags).
const STAGE_BATCH_END = 1;
const PENDING = -(2 ** 31);  // result of an op that has not completed yet
const QUAD = 4;  // (handle index, generation, result, reaper slot); (-1, wait id, value, 0) for a wait
const STAGE_INITIAL = 256;
const OUT_SLACK = 256;  // quads of other completions a flush may report besides its own ops

// How a staged or in-flight op settles.
const AS_VALUE = 0;  // single op: resolves with the result (bytes)
const AS_VOID = 1;   // single op: resolves with undefined (fsync, fdatasync)
const AS_BATCH = 2;  // op `pos` of a BatchRec

// A promise's resolving functions without a closure per op: the executor is shared and
// leaves them here for the caller to pick up right after `new Promise(capture)`. (`never`:
// any promise's resolve fits; the caller knows which promise it made and casts.)
let capturedResolve: ((v: never) => void) | undefined;
let capturedReject: ((e: unknown) => void) | undefined;
function capture(res: (v: never) => void, rej: (e: unknown) => void): void {
  capturedResolve = res;
  capturedReject = rej;
}

// What a turn's flush is queued behind (#scheduleFlush).
const SETTLED = Promise.resolve();



/**
 * Events of every handle (`db.on(...)`). Forked workers get `'stop'` (the postmaster is
 * stopping: close and exit) and `'postmaster-exit'` (it died: no more IO).
 */
export interface RingmasterEvents {
  /** The handle closed (its slot is released). */
  close: [];
  /** Forked workers: the postmaster is stopping. `close()` and exit. */
  stop: [];
  /** Forked workers: the postmaster died; every process now gets ESHUTDOWN. */
  'postmaster-exit': [];
  /** The WAL entered its failed state (`ERR_RINGMASTER_WAL_FAILED`): restart and recover. */
  'wal-failed': [error: RingmasterError];
  /** `checkIntegrity()` found garbage in shared memory. */
  corruption: [report: IntegrityReport];
}

/** A listener for event `K` of the event map `E`. */
export type RingmasterListener<E, K extends keyof E> = (...args: E[K] extends unknown[] ? E[K] : never) => void;

export interface ThreadToken {
  ringmasterSegment: number;
  features: Features;
}

// Private buffers of IO that had not completed when its handle closed: the kernel (or
// the threads backend) may still write into them, so they are never released.
const retainedAfterClose: unknown[] = [];

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// Typed events: these declarations merge into the class below.
export interface Ringmaster {
  on<K extends keyof RingmasterEvents>(event: K, listener: RingmasterListener<RingmasterEvents, K>): this;
  once<K extends keyof RingmasterEvents>(event: K, listener: RingmasterListener<RingmasterEvents, K>): this;
  off<K extends keyof RingmasterEvents>(event: K, listener: RingmasterListener<RingmasterEvents, K>): this;
  addListener<K extends keyof RingmasterEvents>(event: K, listener: RingmasterListener<RingmasterEvents, K>): this;
  removeListener<K extends keyof RingmasterEvents>(event: K, listener: RingmasterListener<RingmasterEvents, K>): this;
  prependListener<K extends keyof RingmasterEvents>(event: K, listener: RingmasterListener<RingmasterEvents, K>): this;
  prependOnceListener<K extends keyof RingmasterEvents>(event: K, listener: RingmasterListener<RingmasterEvents, K>): this;
  emit<K extends keyof RingmasterEvents>(event: K, ...args: RingmasterEvents[K]): boolean;
}
// One caller's wait on a shared word, and the native wait its environment shares.
interface TimedWait {
  deadline: number;  // Date.now() ms
  group: WaitGroup;
  resolve: (value: number | undefined) => void;
}
interface WaitGroup {
  id: number;
  key: number;
  waiters: Set<TimedWait>;
}
export class Ringmaster extends EventEmitter {
  readonly files: Files;
  readonly features: Features;
  #native: NativeSession | null;
  #info: NativeInfo;
  #waits = new Map<number, (value: number | undefined) => void>();
  #waitGroups = new Map<number, WaitGroup>();
  // Every caller's wait that has not settled, with its deadline. One unreferenced timer,
  // armed for the earliest deadline, expires them (a pending native wait keeps the loop
  // alive): a wait that is woken in time costs no timer of its own. A per-wait setTimeout
  // and its clearTimeout were a fifth of a woken process's JS time between its event loop
  // waking and the waiter resuming (bench/results/handoff-s22).
  #timedWaits = new Set<TimedWait>();
  #waitTimer: ReturnType<typeof setTimeout> | null = null;
  #waitTimerAt = 0;  // the deadline #waitTimer fires for (Date.now() ms)
  #arena: ArrayBuffer | null = null;
  #arenaWords: Int32Array | null = null;  // the arena as 32-bit words (completion words)
  #closing: Promise<void> | null = null;
  #submitTimeoutMs: number;

  // Ops started during this turn of the event loop, not yet handed to native: [head, tail).
  #stage: Float64Array;
  #out: Int32Array;
  #ctl = new Int32Array(8);  // [stop, extras, more, consumed, start, end] (native/addon.cc Flush)
  #head = 0;
  #tail = 0;
  #sBuf: (Uint8Array | undefined)[] = [];
  #sPath: (string | undefined)[] = [];  // the file's path where known (error messages name it)
  #sRes: unknown[] = [];
  #sRej: unknown[] = [];
  #sPos: number[] = [];
  #sAs: number[] = [];
  #flushScheduled = false;
  #flushFn = (): void => this.#flush();
  #flushNative: () => void;  // the session's flush(), without a receiver to unwrap per call
  #onCompletions: (n: number) => void;  // what the session's deliveries call
  #retryTimer: ReturnType<typeof setTimeout> | null = null;
  #retryDelay = 0;
  #stalledSince = 0;
  // Ops in flight, by IO handle index (a handle is reused only after its completion
  // reached us; the generation tells a reuse apart).
  #hGen: Uint32Array;
  #hRes: unknown[];
  #hRej: unknown[];
  #hBuf: (Uint8Array | undefined)[];
  #hPos: Int32Array;
  #hAs: Uint8Array;
  #hOp: Uint8Array;
  #hLen: Float64Array;
  #hFile: Float64Array;  // file id and offset: what an error message names
  #hOff: Float64Array;
  #hPath: (string | undefined)[];
  #inflight = 0;

  /** @internal */
  constructor(session: NativeSession, features: Omit<Features, 'sameAddress'>, submitTimeoutMs = 30000) {
    super();
    this.#native = session;
    this.#info = session.info();
    this.features = Object.freeze({ ...features, sameAddress: this.#info.sameAddress });
    this.files = new Files(this);
    this.#submitTimeoutMs = submitTimeoutMs;
    const handles = this.#info.maxHandles;
    this.#hGen = new Uint32Array(handles);
    this.#hRes = new Array(handles);
    this.#hRej = new Array(handles);
    this.#hBuf = new Array(handles);
    this.#hPos = new Int32Array(handles);
    this.#hAs = new Uint8Array(handles);
    this.#hOp = new Uint8Array(handles);
    this.#hLen = new Float64Array(handles);
    this.#hFile = new Float64Array(handles);
    this.#hOff = new Float64Array(handles);
    this.#hPath = new Array(handles);
    this.#stage = new Float64Array(STAGE_INITIAL * OP_STAGE_FIELDS);
    this.#out = new Int32Array((STAGE_INITIAL + OUT_SLACK) * QUAD);
    const onCompletions = (n: number): void => this.#onDelivered(n);
    this.#onCompletions = onCompletions;
    session.setStage(this.#stage, this.#out, this.#ctl, this.#sBuf, onCompletions);
    this.#flushNative = session.flushFunction();
    session._onCompletions = onCompletions;
  }


  /** @internal */
  _native(): NativeSession {
    if (!this.#native) throw new RingmasterError('ERR_RINGMASTER_CLOSED', 'this ringmaster handle is closed');
    return this.#native;
  }

  /** @internal the arena's ArrayBuffer in this environment, if a view was made */
  _arenaBuffer(): ArrayBuffer | null {
    return this.#arena;
  }

  get closed(): boolean {
    return this.#native === null || this.#closing !== null;
  }
  /** This environment's process slot (appears as `reapedBy` in other processes' results). */
  get slot(): number {
    return this.#info.slot;
  }
  get info(): NativeInfo {
    return this.#info;
  }
  /**
   * The data directory (absolute, symlinks resolved), the same in every attached process
   * and thread: file paths passed to `files.open()` are relative to it.
   */
  get dataDir(): string {
    return this.#info.dataDir;
  }

  // ---- arena ----------------------------------------------------------------

  /** Allocates `size` bytes of shared arena memory (never freed; carve your pools from it). */
  allocate(size: number, options: { align?: number } = {}): ArenaSlice {
    if (typeof size !== 'number' || Number.isNaN(size)) throw typeError('ERR_INVALID_ARG_TYPE', `size must be a number, got ${typeof size}`);
    if (!Number.isInteger(size) || size <= 0) throw rangeError('ERR_OUT_OF_RANGE', `size must be a positive integer, got ${size}`);
    const align = optionsObject('allocate', options, ['align']).align ?? 4096;
    if (typeof align !== 'number' || Number.isNaN(align)) throw typeError('ERR_INVALID_ARG_TYPE', `align must be a number, got ${typeof align}`);
    if (!Number.isInteger(align) || align < 1 || (align & (align - 1)) !== 0 || align > 1 << 30) {
      throw rangeError('ERR_OUT_OF_RANGE', `align must be a power of two, got ${align}`);
    }
    let offset: number;
    try {
      offset = this._native().arenaAlloc(size, align);
    } catch (e) {
      throw fromNative(e);
    }
    return this.arenaSlice(offset, size);
  }

  /** A slice of the arena at a known offset (e.g. one another process allocated). */
  arenaSlice(offset: number, length: number): ArenaSlice {
    checkOffset('offset', offset);
    checkOffset('length', length);
    if (offset + length > this.#info.arenaSize) throw rangeError('ERR_OUT_OF_RANGE', `arena slice ${offset}+${length} exceeds the arena (${this.#info.arenaSize} bytes)`);
    if (!this.#arena) {
      this.#arena = this._native().arena();
      // Shared memory: a transfer to another thread would detach it under every view here.
      markAsUntransferable(this.#arena);
    }
    return Object.freeze({ offset, length, bytes: new Uint8Array(this.#arena, offset, length) });
  }

  /** Allocates an 8-byte completion word: pass its offset as `completionWord` on an op. */
  completionWord(): number {
    const s = this.allocate(8, { align: 8 });
    return s.offset;
  }

  /**
   * Resolves with the op's result once the completion word is set, by whichever
   * process completes the IO; `undefined` if `timeoutMs` passes first. Never blocks.
   */
  async waitCompletionWord(offset: number, options: { timeoutMs?: number } = {}): Promise<number | undefined> {
    const timeoutMs = timeoutOption('timeoutMs', optionsObject('waitCompletionWord', options, ['timeoutMs']).timeoutMs, 30000);
    const now = this.completionWordResult(offset);
    if (now !== undefined) return now;
    // Direct: a CQE's completion action sets the word, so this thread is woken by the
    // shared rings' CQ signals and reaps it itself (ARCHITECTURE.md, Delivery).
    const done = await this._waitWord(offset, 0, timeoutMs, true);
    return done === undefined ? undefined : this.completionWordResult(offset);
  }

  /**
   * @internal Resolves with the word's new value once the 32-bit arena word at `offset`
   * differs from `value` (any process may change it and call the shared waker), or
   * `undefined` after `timeoutMs`. `direct`: a CQE's completion action changes the word
   * (a completion word): while the wait is registered, this thread is also woken by the
   * shared rings' CQ signals, and reaps, instead of waiting for a watcher to ring it.
   */
  _waitWord(offset: number, value: number, timeoutMs: number, direct = false): Promise<number | undefined> {
    // Callers of this environment waiting on the same word for the same value share one
    // native wait (many sessions waiting for one WAL flush cost one doorbell delivery).
    const key = offset * 2 ** 32 + (value >>> 0);
    let group = this.#waitGroups.get(key);
    if (group) {
      // Joining a wait already registered: the word may have moved since, with its wake on
      // the way; look first, as a fresh registration would.
      const s = this.arenaSlice(offset, 4);
      const now = new Uint32Array(s.bytes.buffer, s.bytes.byteOffset, 1)[0];
      if (now !== value >>> 0) return Promise.resolve(now);
    } else {
      const n = this._native();
      const id = n.waitWord(offset, value >>> 0, direct);
      if (id === 0) {
        const s = this.arenaSlice(offset, 4);
        return Promise.resolve(new Uint32Array(s.bytes.buffer, s.bytes.byteOffset, 1)[0]);
      }
      const g: WaitGroup = { id, key, waiters: new Set<TimedWait>() };
      group = g;
      this.#waitGroups.set(key, g);
      this.#waits.set(id, (v) => {
        this.#waitGroups.delete(key);
        for (const w of g.waiters) {
          this.#timedWaits.delete(w);
          w.resolve(v);
        }
      });
    }
    const g = group;
    return new Promise((resolve) => {
      const w: TimedWait = { deadline: Date.now() + timeoutMs, group: g, resolve };
      g.waiters.add(w);
      this.#timedWaits.add(w);
      if (this.#waitTimer === null || w.deadline < this.#waitTimerAt) this.#armWaitTimer(w.deadline);
    });
  }

  #armWaitTimer(deadline: number): void {
    if (this.#waitTimer !== null) clearTimeout(this.#waitTimer);
    this.#waitTimerAt = deadline;
    // Timers run on the loop's cached clock, which may be behind Date.now(): one that
    // fires early finds nothing due and is armed again for what is left.
    this.#waitTimer = setTimeout(this.#onWaitTimer, Math.min(Math.max(1, deadline - Date.now()), 2 ** 31 - 1));
    this.#waitTimer.unref();
  }

  #onWaitTimer = (): void => {
    this.#waitTimer = null;
    const now = Date.now();
    let next = Infinity;
    for (const w of this.#timedWaits) {
      if (w.deadline > now) {
        if (w.deadline < next) next = w.deadline;
        continue;
      }
      this.#timedWaits.delete(w);
      const g = w.group;
      g.waiters.delete(w);
      if (g.waiters.size === 0 && this.#waitGroups.get(g.key) === g) {
        this.#waitGroups.delete(g.key);
        this.#waits.delete(g.id);
        this.#native?.cancelWait(g.id);
      }
      w.resolve(undefined);
    }
    if (next !== Infinity && this.#native !== null) this.#armWaitTimer(next);
  };

  /** @internal a named arena region published by the postmaster (module state). */
  _regionGet(name: string): { offset: number; size: number } | null {
    return this._native().regionGet(name);
  }
  /** @internal */
  _regionSet(name: string, offset: number, size: number): void {
    try {
      this._native().regionSet(name, offset, size);
    } catch (e) {
      throw fromNative(e);
    }
  }

  /** State of a completion word: `undefined` while pending, else the op's result. */
  completionWordResult(offset: number): number | undefined {
    if (typeof offset !== 'number' || Number.isNaN(offset)) throw typeError('ERR_INVALID_ARG_TYPE', `a completion word offset is a number, got ${typeof offset}`);
    if (offset % 8 !== 0) throw rangeError('ERR_OUT_OF_RANGE', `a completion word offset is a multiple of 8, got ${offset}`);
    checkOffset('offset', offset);
    if (offset + 8 > this.#info.arenaSize) throw rangeError('ERR_OUT_OF_RANGE', `arena slice ${offset}+8 exceeds the arena (${this.#info.arenaSize} bytes)`);
    let words = this.#arenaWords;
    if (words === null) {
      const arena = this.#arena ?? this.arenaSlice(0, 0).bytes.buffer as ArrayBuffer;
      words = this.#arenaWords = new Int32Array(arena, 0, Math.floor(this.#info.arenaSize / 4));
    }
    const i = offset / 4;
    return Atomics.load(words, i) ? Atomics.load(words, i + 1) : undefined;
  }

  // ---- IO ---------------------------------------------------------------------

  /** Reads up to `target`'s length at `offset`. Resolves with the bytes read (short at EOF). */
  read(file: FileHandle | number, offset: number | bigint, target: IoBuffer, options?: OpOptions): Promise<number> {
    return this.#single(OP_READ, file, offset, target, options);
  }

  /** Writes `source` at `offset`. Resolves with the bytes written. */
  write(file: FileHandle | number, offset: number | bigint, source: IoBuffer, options?: OpOptions): Promise<number> {
    return this.#single(OP_WRITE, file, offset, source, options);
  }

  fsync(file: FileHandle | number, options?: OpOptions): Promise<void> {
    return this.#single(OP_FSYNC, file, 0, undefined, options) as unknown as Promise<void>;
  }

  fdatasync(file: FileHandle | number, options?: OpOptions): Promise<void> {
    return this.#single(OP_FDATASYNC, file, 0, undefined, options) as unknown as Promise<void>;
  }

  // A single op is staged directly (no Batch, no per-op array); its promise settles
  // from the completion itself. Validation errors reject, as an async function's would.
  #single(op: number, file: FileHandle | number, offset: number | bigint, buf: IoBuffer | undefined, options: OpOptions | undefined): Promise<number> {
    let id: number, off: number, flags: number;
    let kind = KIND_NONE;
    let kindArg = 0;
    let length = 0;
    let arena = -1;
    let priv: Uint8Array | undefined;
    try {
      if (this.#closing) throw new RingmasterError('ERR_RINGMASTER_CLOSED', 'this ringmaster handle is closed');
      id = fileIdOf(file);
      off = op === OP_READ || op === OP_WRITE ? checkOffset('offset', offset) : 0;
      if (options !== undefined) {
        flags = linkFlags(options);
        if (options.completionWord !== undefined) {
          kind = KIND_COMPLETION_WORD;
          kindArg = checkOffset('completionWord', options.completionWord);
        }
      } else {
        flags = 0;
      }
      if (op === OP_READ || op === OP_WRITE) {
        const what = op === OP_READ ? 'read buffer' : 'write buffer';
        if (ArrayBuffer.isView(buf)) {
          const u = viewBytes(buf, what);
          length = u.byteLength;
          arena = this.#arena !== null && u.buffer === this.#arena ? u.byteOffset : -1;
          if (arena < 0) {
            pinForIo(u);
            priv = u;
          }
        } else if (buf && typeof buf === 'object' && typeof (buf as ArenaSlice).offset === 'number' && typeof (buf as ArenaSlice).length === 'number') {
          arena = checkOffset('arena offset', (buf as ArenaSlice).offset);
          length = checkOffset('arena length', (buf as ArenaSlice).length);
          if (length === 0) throw rangeError('ERR_OUT_OF_RANGE', `${what} is an empty arena slice: an IO needs at least one byte`);
        } else {
          throw typeError('ERR_INVALID_ARG_TYPE', `${what} must be a Uint8Array (or Buffer, another TypedArray, a DataView) or an arena slice`);
        }
      }
    } catch (e) {
      return Promise.reject(e);
    }
    const i = this.#reserveStage(1);
    const f = this.#stage;
    const b = i * OP_STAGE_FIELDS;
    f[b] = op; f[b + 1] = flags; f[b + 2] = id; f[b + 3] = off; f[b + 4] = length; f[b + 5] = arena;
    f[b + 6] = kind; f[b + 7] = kindArg; f[b + 8] = -1; f[b + 9] = STAGE_BATCH_END;
    this.#sBuf[i] = priv;
    this.#sPath[i] = typeof file === 'number' ? undefined : file.path;
    const p = new Promise<number>(capture);
    this.#sRes[i] = capturedResolve;
    this.#sRej[i] = capturedReject;
    this.#sAs[i] = op === OP_FSYNC || op === OP_FDATASYNC ? AS_VOID : AS_VALUE;
    this.#tail = i + 1;
    this.#scheduleFlush();
    return p;
  }

  /** Starts a batch: ops submitted together in one io_uring_enter, optionally linked. */
  batch(options: { ring?: number } = {}): Batch {
    optionsObject('batch', options, ['ring']);
    if (options.ring !== undefined) {
      if (typeof options.ring !== 'number') throw typeError('ERR_INVALID_ARG_TYPE', `ring must be a number, got ${typeof options.ring}`);
      if (!Number.isInteger(options.ring) || options.ring < 0 || options.ring >= Math.max(1, this.#info.rings)) {
        throw rangeError('ERR_OUT_OF_RANGE', `ring must be in 0..${Math.max(1, this.#info.rings) - 1}`);
      }
    }
    return new Batch(this, options.ring);
  }

  /**
   * Resolves once every IO submitted before this call -- by any process or thread, on any
   * ring -- has completed. `drain` is ring-wide (IOSQE_IO_DRAIN): with several rings it
   * orders an op only against the ops of its own ring, so this submits a drained NOP to
   * every ring and waits for all of them. Unlike a drain it does not hold back IO submitted
   * after it. (The threads backend's drain is segment-wide: one NOP.)
   */
  async barrier(): Promise<void> {
    const rings = this.features.backend === 'threads' ? 1 : Math.max(1, this.#info.rings);
    const all: Promise<IoResult[]>[] = [];
    for (let r = 0; r < rings; r++) all.push(this.batch({ ring: r }).nop({ drain: true }).submit());
    for (const [res] of await Promise.all(all)) if (!res.ok) throw res.error;
  }

  /** Reaps completions of every ring now, from this thread (watchers normally do it). */
  reapCompletions(ring?: number): number {
    return this._native().reapNow(ring);
  }

  /**
   * Statistics: per ring, per process, global; `files`: the shared file table's open
   * entries and the data-file / directory sync counters and failed state.
   */
  stats(): RingmasterStats {
    return { ...this._native().stats(), files: { ...fileSyncState(this), entries: fileEntries(this) } };
  }

  /**
   * Scans the shared IO handle table and (if configured) the buffer pool's descriptors
   * and mapping table for states no legal transition produces (another process wrote
   * garbage). O(table), bounded: the handle scan is lock-free, the pool scan holds its
   * partition locks for one pass. With `repair`, garbage entries are reset (see
   * docs/ARCHITECTURE.md, "Shared memory is untrusted"). Emits 'corruption' if any.
   */
  checkIntegrity(options: { repair?: boolean } = {}): IntegrityReport {
    optionsObject('checkIntegrity', options, ['repair']);
    if (options.repair !== undefined && typeof options.repair !== 'boolean') throw typeError('ERR_INVALID_ARG_TYPE', 'repair must be a boolean');
    const repair = options.repair === true;
    const n = this._native();
    const h = n.verifyHandles(repair);
    const report: IntegrityReport = {
      ok: true, found: h.found, repaired: h.repaired,
      anomalies: h.anomalies.map((a) => ({ structure: 'ioHandle' as const, index: a.index, problem: `${a.problem} (word ${a.word})`, repaired: a.repaired })),
    };
    for (const check of integrityChecks()) {
      const p = check(n, repair);
      if (!p) continue;
      report.found += p.found;
      report.repaired += p.repaired;
      report.anomalies.push(...p.anomalies);
    }
    report.ok = report.found === 0;
    if (!report.ok) this.emit('corruption', report);
    return report;
  }

  /** IO handles in use across all processes (0 when the system is idle). */
  handlesInUse(): number {
    return this._native().handlesInUse();
  }

  /**
   * Every IO handle not free, across all processes (introspection for soaks/tests):
   * owner is a process slot; `orphan` means its issuer died and whoever completes it frees it.
   */
  handleSnapshot(): { index: number; generation: number; state: 'reserved' | 'submitted' | 'completed'; owner: number; orphan: boolean; kind: number }[] {
    const names = ['free', 'reserved', 'submitted', 'completed'] as const;
    return this._native().handleSnapshot().map(([index, generation, state, owner, flags, kind]) => ({
      index, generation, state: names[state] as 'reserved' | 'submitted' | 'completed', owner, orphan: (flags & 1) !== 0, kind,
    }));
  }

  /** A token a worker thread of *this process* passes to `attach(token)`. */
  threadToken(): ThreadToken {
    return { ringmasterSegment: this.#info.segmentId, features: this.features };
  }

  /**
   * Detaches this environment: waits (bounded) for its in-flight IO, then releases its
   * process slot. Further calls throw ERR_RINGMASTER_CLOSED.
   */
  close(options: { timeoutMs?: number } = {}): Promise<void> {
    let timeoutMs: number;
    try {
      timeoutMs = timeoutOption('timeoutMs', optionsObject('close', options, ['timeoutMs']).timeoutMs, 5000);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      const deadline = Date.now() + timeoutMs;
      while (this.#inflight + (this.#tail - this.#head) > 0 && Date.now() < deadline) await sleep(2);
      const n = this.#native;
      this.#native = null;
      this.#arena = null;
      this.#arenaWords = null;
      if (this.#retryTimer) clearTimeout(this.#retryTimer);
      this.#retryTimer = null;
      n?.detach();
      const closed = (): RingmasterError => new RingmasterError('ERR_RINGMASTER_CLOSED', 'handle closed before this IO completed');
      for (let i = this.#head; i < this.#tail; i++) this.#finish(this.#sAs[i], this.#sRes[i], this.#sRej[i], this.#sPos[i], this.#stage[i * OP_STAGE_FIELDS], 0, -ESHUTDOWN, -1, undefined, closed(), false);
      this.#clearStage(this.#head, this.#tail);
      this.#head = this.#tail = 0;
      for (let h = 0; h < this.#hRes.length; h++) {
        if (this.#hRes[h] === undefined) continue;
        const as = this.#hAs[h];
        const target = this.#hRes[h];
        const buf = this.#hBuf[h];
        // The kernel or a pool thread may still write into it: never release it.
        if (buf) retainedAfterClose.push(buf);
        else if (as === AS_BATCH && (target as BatchRec).keep.length) retainedAfterClose.push((target as BatchRec).keep);
        this.#finish(as, target, this.#hRej[h], this.#hPos[h], this.#hOp[h], 0, -ESHUTDOWN, -1, undefined, closed(), false);
        this.#hRes[h] = this.#hRej[h] = this.#hBuf[h] = this.#hPath[h] = undefined;
      }
      this.#inflight = 0;
      for (const [, w] of this.#waits) w(undefined);
      this.#waits.clear();
      this.#waitGroups.clear();
      this.#timedWaits.clear();
      if (this.#waitTimer !== null) clearTimeout(this.#waitTimer);
      this.#waitTimer = null;
      this.emit('close');
    })();
    return this.#closing;
  }

  /** @internal Stages a batch (one promise for all its results). */
  _submit(ring: number | undefined, ops: EncodedOp[], keep: unknown[], opts?: SubmitOptions): Promise<IoResult[]> {
    if (this.#closing || !this.#native) return Promise.reject(new RingmasterError('ERR_RINGMASTER_CLOSED', 'this ringmaster handle is closed'));
    const n = ops.length;
    const first = this.#reserveStage(n);
    const f = this.#stage;
    const p = new Promise<IoResult[]>(capture);
    const rec: BatchRec = {
      results: new Array(n), remaining: n, resolve: capturedResolve as (r: IoResult[]) => void, reject: capturedReject as (e: unknown) => void,
      rejected: false, keep, onSubmitted: opts?.onSubmitted,
    };
    for (let k = 0; k < n; k++) {
      const i = first + k;
      const b = i * OP_STAGE_FIELDS;
      const src = ops[k].fields;
      for (let j = 0; j < 8; j++) f[b + j] = src[j];
      f[b + 8] = ring ?? -1;
      f[b + 9] = k === n - 1 ? STAGE_BATCH_END : 0;
      this.#sBuf[i] = ops[k].buffer;
      this.#sPath[i] = ops[k].path;
      this.#sRes[i] = rec;
      this.#sRej[i] = undefined;
      this.#sPos[i] = k;
      this.#sAs[i] = AS_BATCH;
    }
    this.#tail = first + n;
    if (opts?.now) this._flushStaged();
    else this.#scheduleFlush();
    return p;
  }

  /** @internal Submits the ops started so far now, rather than at the end of this turn. */
  _flushStaged(): void {
    if (this.#head < this.#tail && !this.#retryTimer) this.#flush();
  }

  // Room for `n` more staged ops: compact, or grow (telling native about the new arrays).
  #reserveStage(n: number): number {
    const cap = this.#stage.length / OP_STAGE_FIELDS;
    if (this.#tail + n <= cap) return this.#tail;
    if (this.#head > 0) {
      const h = this.#head;
      const t = this.#tail;
      this.#stage.copyWithin(0, h * OP_STAGE_FIELDS, t * OP_STAGE_FIELDS);
      for (let i = h; i < t; i++) {
        this.#sBuf[i - h] = this.#sBuf[i];
        this.#sPath[i - h] = this.#sPath[i];
        this.#sRes[i - h] = this.#sRes[i];
        this.#sRej[i - h] = this.#sRej[i];
        this.#sPos[i - h] = this.#sPos[i];
        this.#sAs[i - h] = this.#sAs[i];
      }
      this.#clearStage(t - h, t);
      this.#head = 0;
      this.#tail = t - h;
      if (this.#tail + n <= cap) return this.#tail;
    }
    let next = cap * 2;
    while (this.#tail + n > next) next *= 2;
    const stage = new Float64Array(next * OP_STAGE_FIELDS);
    stage.set(this.#stage.subarray(0, this.#tail * OP_STAGE_FIELDS));
    const out = new Int32Array((next + OUT_SLACK) * QUAD);
    this._native().setStage(stage, out, this.#ctl, this.#sBuf, this.#onCompletions);
    this.#stage = stage;
    this.#out = out;
    return this.#tail;
  }

  #clearStage(from: number, to: number): void {
    for (let i = from; i < to; i++) this.#sBuf[i] = this.#sPath[i] = this.#sRes[i] = this.#sRej[i] = undefined;
  }

  // Everything started in this turn goes to the kernel together, once the turn's
  // synchronous code and the promise reactions queued before it have run.
  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#retryTimer) return;
    this.#flushScheduled = true;
    // A reaction on a settled promise, not queueMicrotask: the same microtask queue (the
    // flush runs at the same point of the turn), without queueMicrotask's per-call
    // AsyncResource and bound function (about 0.25 µs per turn).
    SETTLED.then(this.#flushFn);
  }

  #flush(): void {
    this.#flushScheduled = false;
    const n = this.#native;
    if (!n || this.#head === this.#tail) return;
    while (this.#head < this.#tail) {
      const start = this.#head;
      const ctl = this.#ctl;
      ctl[4] = start;
      ctl[5] = this.#tail;
      ctl[3] = -1;
      let consumed: number;
      try {
        this.#flushNative();
        consumed = ctl[3];
      } catch (e) {
        const err = e as { consumed?: number; batchStart?: number; batchEnd?: number };
        if (typeof err.batchEnd !== 'number' || typeof err.batchStart !== 'number') {
          this.#failStaged(fromNative(e));
          return;
        }
        // That batch was refused and submitted nothing; the ones before it went out.
        const taken = err.consumed ?? 0;
        this.#take(start, taken);
        // The flush had already collected this environment's other completions (an op of
        // an earlier flush that completed meanwhile) behind the consumed ops' quads: they
        // are out of the delivery queue, so settle them now or they never settle.
        this.#settleCollected(taken);
        if (this.#changedSinceStaged(err.batchStart, err.batchEnd)) {
          this.#failChanged(err.batchStart, err.batchEnd);
        } else {
          const bad = fromNative(e);
          for (let i = err.batchStart; i < err.batchEnd; i++) this.#finish(this.#sAs[i], this.#sRes[i], this.#sRej[i], this.#sPos[i], OP_NOP, 0, 0, -1, undefined, bad, true);
        }
        this.#clearStage(err.batchStart, err.batchEnd);
        this.#head = err.batchEnd;
        continue;
      }
      if (consumed < 0) {  // the environment is terminating
        this.#failStaged(new RingmasterError('ERR_RINGMASTER_CLOSED', 'this environment is shutting down'));
        return;
      }
      this.#take(start, consumed);
      this.#settleCollected(consumed);
      if (this.#head < this.#tail) {
        const stop = this.#ctl[0];
        if (stop === -ESHUTDOWN) {
          this.#failStaged(new RingmasterError('ESHUTDOWN', 'the postmaster has stopped: its rings accept no more IO', { errno: -ESHUTDOWN }));
          return;
        }
        if (stop !== -EAGAIN && stop !== -ETIMEDOUT) {
          this.#failStaged(ioError(stop || -5, 'submit'));
          return;
        }
        this.#backPressure();
        return;
      }
    }
    this.#head = this.#tail = 0;
    this.#stalledSince = 0;
    this.#retryDelay = 0;
  }

  // The completions a flush collected after its `consumed` ops' quads (ctl[1] of them),
  // and any more the delivery holds (ctl[2]).
  #settleCollected(consumed: number): void {
    if (this.#ctl[1] > 0) this.#settleQuads(consumed, this.#ctl[1]);
    while (this.#ctl[2] === 1 && this.#native) {
      const more = this.#native.collect();
      if (!more) break;
      this.#settleQuads(0, more);
    }
  }

  // Every IO handle is in flight, or a ring lock is held by a stopped process: the
  // staged ops wait (bounded by submitTimeoutMs) for completions or a retry timer.
  #backPressure(): void {
    const now = Date.now();
    if (this.#stalledSince === 0) this.#stalledSince = now;
    if (now - this.#stalledSince > this.#submitTimeoutMs) {
      this.#stalledSince = 0;
      this.#failStaged(new RingmasterError('ETIMEDOUT', `no IO handle or ring lock became available within ${this.#submitTimeoutMs} ms`, { errno: -ETIMEDOUT }));
      return;
    }
    if (this.#retryTimer) return;
    this.#retryDelay = Math.min(this.#retryDelay ? this.#retryDelay * 2 : 1, 20);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.#flush();
    }, this.#retryDelay);
  }

  // A private buffer was checked when its op was started (viewBytes): if it is now
  // shorter than the op (detached, or its resizable ArrayBuffer shrunk) the caller changed
  // it while the op waited for this turn's flush, which native refused. To the caller that
  // op was already in flight: it fails as one whose buffer changed in the kernel's hands.
  #changedSinceStaged(from: number, to: number): boolean {
    for (let i = from; i < to; i++) {
      const buf = this.#sBuf[i];
      if (buf && changedDuringIo(buf, this.#stage[i * OP_STAGE_FIELDS + 4])) return true;
    }
    return false;
  }

  // Settles staged batch [from, to), which was not submitted because a buffer changed:
  // that op fails with ERR_RINGMASTER_BUFFER_CHANGED, the others of its batch with
  // ECANCELED (nothing of the batch reached the kernel). A batch resolves with these
  // results, as it would had the change been seen at completion.
  #failChanged(from: number, to: number): void {
    const f = this.#stage;
    for (let i = from; i < to; i++) {
      const b = i * OP_STAGE_FIELDS;
      const op = f[b];
      const name = OP_NAMES[op] ?? 'nop';
      const pos = this.#sAs[i] === AS_BATCH ? this.#sPos[i] : 0;
      const what = this.#describe(name, f[b + 2], f[b + 3], this.#sPath[i], pos);
      const buf = this.#sBuf[i];
      let err: RingmasterError;
      let res: number;
      if (buf && changedDuringIo(buf, f[b + 4])) {
        res = -EFAULT;
        err = new RingmasterError('ERR_RINGMASTER_BUFFER_CHANGED',
          `${what}: its buffer was detached or resized smaller after the ${name} was started, before it was submitted; nothing was ${name === 'read' ? 'read' : 'written'}`,
          { errno: -EFAULT, opIndex: pos });
      } else {
        res = -ECANCELED;
        err = new RingmasterError('ECANCELED', `${what}: not submitted: the buffer of another op of its batch was detached or resized smaller before the batch was submitted`,
          { errno: -ECANCELED, opIndex: pos });
      }
      this.#finish(this.#sAs[i], this.#sRes[i], this.#sRej[i], this.#sPos[i], op, 0, res, -1, undefined, err, false);
    }
  }

  #failStaged(err: Error): void {
    for (let i = this.#head; i < this.#tail; i++) this.#finish(this.#sAs[i], this.#sRes[i], this.#sRej[i], this.#sPos[i], OP_NOP, 0, 0, -1, undefined, err, true);
    this.#clearStage(this.#head, this.#tail);
    this.#head = this.#tail = 0;
  }

  // The flush's per-op quads for staged ops [start, start + count): settle what already
  // completed, file the rest by handle index.
  #take(start: number, count: number): void {
    const out = this.#out;
    const f = this.#stage;
    for (let k = 0; k < count; k++) {
      const i = start + k;
      const q = k * QUAD;
      const index = out[q];
      const res = out[q + 2];
      const op = f[i * OP_STAGE_FIELDS];
      const len = f[i * OP_STAGE_FIELDS + 4];
      if (this.#sAs[i] === AS_BATCH) {
        const rec = this.#sRes[i] as BatchRec;
        if (rec.onSubmitted) {
          try {
            rec.onSubmitted(this.#sPos[i]);
          } catch {
            /* the module's handle closed meanwhile */
          }
        }
      }
      if (res === PENDING) {
        this.#hGen[index] = out[q + 1] >>> 0;
        this.#hRes[index] = this.#sRes[i];
        this.#hRej[index] = this.#sRej[i];
        this.#hBuf[index] = this.#sBuf[i];
        this.#hPos[index] = this.#sPos[i];
        this.#hAs[index] = this.#sAs[i];
        this.#hOp[index] = op;
        this.#hLen[index] = len;
        this.#hFile[index] = f[i * OP_STAGE_FIELDS + 2];
        this.#hOff[index] = f[i * OP_STAGE_FIELDS + 3];
        this.#hPath[index] = this.#sPath[i];
        this.#inflight++;
      } else if (this.#sAs[i] === AS_VALUE && res >= 0 && res <= len && this.#sBuf[i] === undefined) {
        // A single read or write into the arena that completed inside the flush (a cached
        // read): what #finish would do, without its checks for cases this is not.
        (this.#sRes[i] as (v: number) => void)(res);
      } else {
        this.#finish(this.#sAs[i], this.#sRes[i], this.#sRej[i], this.#sPos[i], op, len, res, out[q + 3], this.#sBuf[i], undefined, false,
          f[i * OP_STAGE_FIELDS + 2], f[i * OP_STAGE_FIELDS + 3], this.#sPath[i]);
      }
      this.#sBuf[i] = this.#sPath[i] = this.#sRes[i] = this.#sRej[i] = undefined;
    }
    this.#head = start + count;
  }

  // Native's delivery (an event-loop wakeup): `count` quads in the completion buffer.
  #onDelivered(count: number): void {
    this.#settleQuads(0, count);
    // Completions free handles: ops waiting for one can go now.
    if (this.#head < this.#tail && !this.#flushScheduled) {
      if (this.#retryTimer) {
        clearTimeout(this.#retryTimer);
        this.#retryTimer = null;
      }
      this.#scheduleFlush();
    }
  }

  #settleQuads(from: number, count: number): void {
    const out = this.#out;
    for (let k = 0; k < count; k++) {
      const q = (from + k) * QUAD;
      const index = out[q];
      if (index === -1) {  // a shared wait resolved: [-1, id, value, 0]
        const id = out[q + 1] >>> 0;
        const w = this.#waits.get(id);
        if (w) {
          this.#waits.delete(id);
          w(out[q + 2] >>> 0);
        }
        continue;
      }
      if (index < 0 || index >= this.#hRes.length) continue;
      const target = this.#hRes[index];
      if (target === undefined || this.#hGen[index] !== out[q + 1] >>> 0) continue;  // not ours: never act on it
      const rej = this.#hRej[index];
      const buf = this.#hBuf[index];
      const path = this.#hPath[index];
      this.#hRes[index] = this.#hRej[index] = this.#hBuf[index] = this.#hPath[index] = undefined;
      this.#inflight--;
      this.#finish(this.#hAs[index], target, rej, this.#hPos[index], this.#hOp[index], this.#hLen[index], out[q + 2], out[q + 3], buf, undefined, false,
        this.#hFile[index], this.#hOff[index], path);
    }
  }

  // "read of 'table.0' at offset 8192 (op 0)": what an error message names. The path is
  // the handle's, or looked up by id (a file another process opened), if still open.
  #describe(name: string, file: number, offset: number, path: string | undefined, pos: number): string {
    let where = '';
    if (name !== 'nop') {
      let p = path;
      if (p === undefined) {
        try {
          p = this.#native?.fileInfo(file)?.path;
        } catch {
          /* closed */
        }
      }
      where = p !== undefined ? ` of '${p}'` : ` of file id ${file}`;
      if (name === 'read' || name === 'write') where += ` at offset ${offset}`;
    }
    return `${name}${where} (op ${pos})`;
  }

  // Settles one op. `error` overrides the result: a closed handle (a batch's result
  // says so), or, with `rejectBatch`, a batch refused or never submitted (its promise
  // rejects, as the submit call would have thrown). `file`, `offset` and `path` name the
  // op in an error message.
  #finish(as: number, target: unknown, rej: unknown, pos: number, op: number, len: number, res: number, reaper: number, buf: Uint8Array | undefined, error: Error | undefined, rejectBatch: boolean,
    file = -1, offset = 0, path: string | undefined = undefined): void {
    const name = OP_NAMES[op] ?? 'nop';
    let changed = false;
    if (error === undefined) {
      // The result came through shared memory: one no op can produce is corruption.
      const rw = op === OP_READ || op === OP_WRITE;
      if (res > (rw ? len : 0)) res = CORRUPT_RESULT;
      if (res === CORRUPT_RESULT) {
        // The kernel or a pool thread may still be doing this IO: never free its buffers.
        if (buf) retainedAfterClose.push(buf);
        else if (as === AS_BATCH && (target as BatchRec).keep.length) retainedAfterClose.push((target as BatchRec).keep);
      } else if ((res >= 0 || res === -EFAULT) && buf && changedDuringIo(buf, len)) {
        // Detached or resized smaller while the kernel used it: the bytes read did not land
        // in it (or what was written may not be what it held). Never report that as done.
        // (A shrunk buffer's pages are decommitted, so the kernel may have got EFAULT.)
        res = -EFAULT;
        changed = true;
        error = new RingmasterError('ERR_RINGMASTER_BUFFER_CHANGED',
          `${this.#describe(name, file, offset, path, pos)}: its buffer was detached or resized smaller while the IO was in flight; the ${name === 'read' ? 'bytes read did not land in it' : 'bytes written may not be the ones it held'}`,
          { errno: -EFAULT, opIndex: pos });
      }
    }
    if (as === AS_BATCH) {
      const rec = target as BatchRec;
      if (error !== undefined && rejectBatch) {
        if (!rec.rejected) {
          rec.rejected = true;
          rec.reject(error);
        }
        return;
      }
      let r: IoResult;
      if (error !== undefined) {
        // A changed buffer's IO did complete (its reaper is known); a closed handle's did not reach us.
        r = { op: name, ok: false, result: res || -ESHUTDOWN, reapedBy: changed ? reaper : -1, error };
      } else {
        r = { op: name, ok: res >= 0, result: res, reapedBy: reaper };
        if (res === CORRUPT_RESULT) r.error = corruptError(this.#describe(name, file, offset, path, pos), pos);
        else if (res < 0) r.error = ioError(res, this.#describe(name, file, offset, path, pos), pos);
      }
      rec.results[pos] = r;
      if (--rec.remaining === 0 && !rec.rejected) rec.resolve(rec.results);
      return;
    }
    if (error !== undefined) (rej as (e: unknown) => void)(error);
    else if (res >= 0) (target as (v: unknown) => void)(as === AS_VALUE ? res : undefined);
    else {
      const what = this.#describe(name, file, offset, path, 0);
      (rej as (e: unknown) => void)(res === CORRUPT_RESULT ? corruptError(what, 0) : ioError(res, what, 0));
    }
  }
}

function fileIdOf(file: FileHandle | number): number {
  if (file instanceof FileHandle) {
    if (file.closed) throw new RingmasterError('ERR_RINGMASTER_FILE_CLOSED', `file '${file.path}' is closed`);
    return file.id;
  }
  if (typeof file !== 'number' || !Number.isInteger(file) || file < 0) throw typeError('ERR_INVALID_ARG_TYPE', 'file must be a FileHandle or a file id');
  return file;
}

/**
 * Ops submitted together. `link()` / `hardlink()` / `drain()` apply to the op added last.
 * A soft-linked chain stops at the first op whose result is not the full request: the
 * rest complete with `IoCancelledError` (ECANCELED). Links never span batches.
 */
export class Batch {
  #db: Ringmaster;
  #ring: number | undefined;
  #ops: EncodedOp[] = [];
  #keep: unknown[] = [];
  #submitted = false;

  /** @internal */
  constructor(db: Ringmaster, ring: number | undefined) {
    this.#db = db;
    this.#ring = ring;
  }

  get length(): number {
    return this.#ops.length;
  }

  read(file: FileHandle | number, offset: number | bigint, target: IoBuffer, options?: OpOptions): this {
    return this.#named(this.#rw(OP_READ, file, offset, target, options), file);
  }

  write(file: FileHandle | number, offset: number | bigint, source: IoBuffer, options?: OpOptions): this {
    return this.#named(this.#rw(OP_WRITE, file, offset, source, options), file);
  }

  fsync(file: FileHandle | number, options?: OpOptions): this {
    return this.#named(this.#push(OP_FSYNC, this.#fileId(file), 0, 0, -1, undefined, options), file);
  }

  fdatasync(file: FileHandle | number, options?: OpOptions): this {
    return this.#named(this.#push(OP_FDATASYNC, this.#fileId(file), 0, 0, -1, undefined, options), file);
  }

  // Error messages name the file: its path is at hand when a FileHandle is given.
  #named(self: this, file: FileHandle | number): this {
    if (file instanceof FileHandle) this.#ops[this.#ops.length - 1].path = file.path;
    return self;
  }

  nop(options?: OpOptions): this {
    return this.#push(OP_NOP, 0, 0, 0, -1, undefined, options);
  }

  link(): this {
    return this.#flag(LINK, HARDLINK);
  }
  hardlink(): this {
    return this.#flag(HARDLINK, LINK);
  }
  drain(): this {
    return this.#flag(DRAIN, 0);
  }

  /**
   * Submits every op together (at the end of this turn of the event loop, with the other
   * ops started in it). Resolves with one result per op (never rejects for IO errors).
   */
  submit(): Promise<IoResult[]> {
    return this._submitWith(undefined);
  }

  /** @internal submit(), with a module's SubmitOptions. */
  _submitWith(opts: SubmitOptions | undefined): Promise<IoResult[]> {
    if (this.#submitted) return Promise.reject(new RingmasterError('ERR_RINGMASTER_BATCH_SUBMITTED', 'this batch was already submitted'));
    if (this.#ops.length === 0) return Promise.reject(rangeError('ERR_OUT_OF_RANGE', 'cannot submit an empty batch'));
    const max = this.#db.features.ringEntries;
    if (this.#ops.length > max) return Promise.reject(rangeError('ERR_OUT_OF_RANGE', `a batch holds at most ringEntries (${max}) ops, got ${this.#ops.length}`));
    this.#submitted = true;
    return this.#db._submit(this.#ring, this.#ops, this.#keep, opts);
  }

  /** @internal Sets the completion kind (a module's id from native/completion_kinds.h) of the op added last. */
  _setKind(kind: number, kindArg: number): this {
    const last = this.#ops[this.#ops.length - 1];
    if (!last) throw new RingmasterError('ERR_RINGMASTER_EMPTY_BATCH', '_setKind applies to the last op: add an op first');
    last.fields[6] = kind;
    last.fields[7] = kindArg;
    return this;
  }

  #flag(set: number, clear: number): this {
    const last = this.#ops[this.#ops.length - 1];
    if (!last) throw new RingmasterError('ERR_RINGMASTER_EMPTY_BATCH', 'link()/hardlink()/drain() apply to the last op: add an op first');
    last.fields[1] = (last.fields[1] & ~clear) | set;
    return this;
  }

  #fileId(file: FileHandle | number): number {
    return fileIdOf(file);
  }

  #rw(op: number, file: FileHandle | number, offset: number | bigint, buf: IoBuffer, options?: OpOptions): this {
    const id = this.#fileId(file);
    const off = checkOffset('offset', offset);
    const what = `${OP_NAMES[op]} buffer`;
    if (ArrayBuffer.isView(buf)) {
      const u = viewBytes(buf, what);
      const arena = this.#arenaOffsetOf(u);
      if (arena >= 0) return this.#push(op, id, off, u.byteLength, arena, undefined, options);
      pinForIo(u);
      this.#keep.push(u);
      return this.#push(op, id, off, u.byteLength, -1, u, options);
    }
    if (buf && typeof buf === 'object' && typeof (buf as ArenaSlice).offset === 'number' && typeof (buf as ArenaSlice).length === 'number') {
      const s = buf as ArenaSlice;
      checkOffset('arena offset', s.offset);
      checkOffset('arena length', s.length);
      if (s.length === 0) throw rangeError('ERR_OUT_OF_RANGE', `${what} is an empty arena slice: an IO needs at least one byte`);
      return this.#push(op, id, off, s.length, s.offset, undefined, options);
    }
    throw typeError('ERR_INVALID_ARG_TYPE', `${what} must be a Uint8Array (or Buffer, another TypedArray, a DataView) or an arena slice`);
  }

  // A Uint8Array that views the arena goes through the shared (fixed-buffer) path.
  #arenaOffsetOf(u: Uint8Array): number {
    const arena = this.#db._arenaBuffer();
    return arena && u.buffer === arena ? u.byteOffset : -1;
  }

  #push(op: number, file: number, offset: number, length: number, arena: number, buffer: Uint8Array | undefined, options?: OpOptions): this {
    if (this.#submitted) throw new RingmasterError('ERR_RINGMASTER_BATCH_SUBMITTED', 'this batch was already submitted');
    const flags = linkFlags(options);
    let kind = KIND_NONE;
    let kindArg = 0;
    if (options?.completionWord !== undefined) {
      kind = KIND_COMPLETION_WORD;
      kindArg = checkOffset('completionWord', options.completionWord);
    }
    this.#ops.push({ fields: [op, flags, file, offset, length, arena, kind, kindArg], buffer, name: OP_NAMES[op] });
    return this;
  }
}
