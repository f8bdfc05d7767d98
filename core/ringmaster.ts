// The per-process (per JS environment) handle: files, IO, batches, arena, stats.
// The postmaster, every forked worker and every worker thread each hold one.
import { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import { FileHandle, Files } from './files';
import { CORRUPT_RESULT, RingmasterError, corruptError, fromNative, ioError, rangeError, typeError } from './errors';
import {
  ArenaSlice, DRAIN, EncodedOp, HARDLINK, IoBuffer, IoResult, KIND_COMPLETION_WORD, KIND_NONE, LINK, OP_FDATASYNC,
  OP_FIELDS, OP_FSYNC, OP_NAMES, OP_NOP, OP_READ, OP_WRITE, OpOptions, checkOffset, linkFlags,
} from './io';
import { NativeInfo, NativeSession, native } from './native';

const EAGAIN = constants.errno.EAGAIN;
const ETIMEDOUT = constants.errno.ETIMEDOUT;
const ESHUTDOWN = 108;  // Linux ESHUTDOWN (not in os.constants.errno)

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

interface PendingBatch {
  results: IoResult[];
  remaining: number;
  resolve: (r: IoResult[]) => void;
  keep: unknown[];  // private buffers must stay alive until the kernel is done with them
}

// Pending ops are keyed by (handle index, generation): the doorbell thread frees a
// handle before its completion reaches this thread, so a new submission may already
// hold the same index with the next generation.
const GEN_SCALE = 2 ** 21;  // handle index < 2^21, generation < 2^32: key < 2^53
const PENDING = -(2 ** 31);  // submit() result slot of an op that has not completed yet
function pendingKey(index: number, gen: number): number {
  return gen * GEN_SCALE + index;
}

interface PendingOp {
  batch: PendingBatch;
  pos: number;
  name: (typeof OP_NAMES)[number];
  len: number;
}

/** What `checkIntegrity()` found in one shared table entry. */
export interface IntegrityAnomaly {
  structure: 'ioHandle' | 'bufferDescriptor' | 'mappingTable';
  index: number;
  problem: string;
  repaired: boolean;
}

export interface IntegrityReport {
  ok: boolean;
  /** Anomalies found (all of them); `anomalies` lists at most 64 per structure. */
  found: number;
  repaired: number;
  anomalies: IntegrityAnomaly[];
}

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

export class Ringmaster extends EventEmitter {
  readonly files: Files;
  readonly features: Features;
  #buffers: import('../bufferpool/index').BufferPool | null = null;
  #wal: import('../wal/index').Wal | null = null;
  #native: NativeSession | null;
  #info: NativeInfo;
  #pending = new Map<number, PendingOp>();
  #waits = new Map<number, (value: number | undefined) => void>();
  #waitGroups = new Map<number, { id: number; waiters: Set<(value: number | undefined) => void> }>();
  #arena: ArrayBuffer | null = null;
  #closing: Promise<void> | null = null;
  #submitTimeoutMs: number;

  /** @internal */
  constructor(session: NativeSession, features: Omit<Features, 'sameAddress'>, submitTimeoutMs = 30000) {
    super();
    this.#native = session;
    this.#info = session.info();
    this.features = Object.freeze({ ...features, sameAddress: this.#info.sameAddress });
    this.files = new Files(this);
    this.#submitTimeoutMs = submitTimeoutMs;
    session._onCompletions = (b) => this.#onCompletions(b);
  }

  /** @internal */
  _native(): NativeSession {
    if (!this.#native) throw new RingmasterError('ERR_RINGMASTER_CLOSED', 'this ringmaster handle is closed');
    return this.#native;
  }

  /** The shared buffer pool (configured with the `bufferPool` start option). */
  get buffers(): import('../bufferpool/index').BufferPool {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    if (!this.#buffers) this.#buffers = new (require('../bufferpool/index').BufferPool)(this);
    return this.#buffers!;
  }

  /** The shared write-ahead log (configured with the `wal` start option). */
  get wal(): import('../wal/index').Wal {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    if (!this.#wal) this.#wal = new (require('../wal/index').Wal)(this);
    return this.#wal!;
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

  // ---- arena ----------------------------------------------------------------

  /** Allocates `size` bytes of shared arena memory (never freed; carve your pools from it). */
  allocate(size: number, options: { align?: number } = {}): ArenaSlice {
    if (typeof size !== 'number' || !Number.isInteger(size) || size <= 0) throw rangeError('ERR_OUT_OF_RANGE', `size must be a positive integer, got ${size}`);
    const align = options.align ?? 4096;
    if (typeof align !== 'number' || !Number.isInteger(align) || align < 1 || (align & (align - 1)) !== 0 || align > 1 << 30) {
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
    if (!this.#arena) this.#arena = this._native().arena();
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
    const now = this.completionWordResult(offset);
    if (now !== undefined) return now;
    const done = await this._waitWord(offset, 0, options.timeoutMs ?? 30000);
    return done === undefined ? undefined : this.completionWordResult(offset);
  }

  /**
   * @internal Resolves with the word's new value once the 32-bit arena word at `offset`
   * differs from `value` (any process may change it and call the shared waker), or
   * `undefined` after `timeoutMs`.
   */
  _waitWord(offset: number, value: number, timeoutMs: number): Promise<number | undefined> {
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
      const id = n.waitWord(offset, value >>> 0);
      if (id === 0) {
        const s = this.arenaSlice(offset, 4);
        return Promise.resolve(new Uint32Array(s.bytes.buffer, s.bytes.byteOffset, 1)[0]);
      }
      const g = { id, waiters: new Set<(v: number | undefined) => void>() };
      group = g;
      this.#waitGroups.set(key, g);
      this.#waits.set(id, (v) => {
        this.#waitGroups.delete(key);
        for (const w of g.waiters) w(v);
      });
    }
    const g = group;
    return new Promise((resolve) => {
      const done = (v: number | undefined) => {
        clearTimeout(timer);
        resolve(v);
      };
      const timer = setTimeout(() => {
        g.waiters.delete(done);
        if (g.waiters.size === 0 && this.#waitGroups.get(key) === g) {
          this.#waitGroups.delete(key);
          this.#waits.delete(g.id);
          this.#native?.cancelWait(g.id);
        }
        resolve(undefined);
      }, timeoutMs);
      g.waiters.add(done);
    });
  }

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
    if (typeof offset !== 'number' || offset % 8 !== 0) throw rangeError('ERR_OUT_OF_RANGE', `a completion word offset is a multiple of 8, got ${offset}`);
    const s = this.arenaSlice(offset, 8);
    const v = new Int32Array(s.bytes.buffer, s.bytes.byteOffset, 2);
    return Atomics.load(v, 0) ? Atomics.load(v, 1) : undefined;
  }

  // ---- IO ---------------------------------------------------------------------

  /** Reads up to `target`'s length at `offset`. Resolves with the bytes read (short at EOF). */
  async read(file: FileHandle | number, offset: number | bigint, target: IoBuffer, options?: OpOptions): Promise<number> {
    const [r] = await this.batch().read(file, offset, target, options).submit();
    if (!r.ok) throw r.error;
    return r.result;
  }

  /** Writes `source` at `offset`. Resolves with the bytes written. */
  async write(file: FileHandle | number, offset: number | bigint, source: IoBuffer, options?: OpOptions): Promise<number> {
    const [r] = await this.batch().write(file, offset, source, options).submit();
    if (!r.ok) throw r.error;
    return r.result;
  }

  async fsync(file: FileHandle | number, options?: OpOptions): Promise<void> {
    const [r] = await this.batch().fsync(file, options).submit();
    if (!r.ok) throw r.error;
  }

  async fdatasync(file: FileHandle | number, options?: OpOptions): Promise<void> {
    const [r] = await this.batch().fdatasync(file, options).submit();
    if (!r.ok) throw r.error;
  }

  /** Starts a batch: ops submitted together in one io_uring_enter, optionally linked. */
  batch(options: { ring?: number } = {}): Batch {
    if (options === null || typeof options !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', 'batch options must be an object');
    if (options.ring !== undefined) {
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

  /** Statistics: per ring, per process, global. */
  stats(): any {
    return this._native().stats();
  }

  /**
   * Scans the shared IO handle table and (if configured) the buffer pool's descriptors
   * and mapping table for states no legal transition produces (another process wrote
   * garbage). O(table), bounded: the handle scan is lock-free, the pool scan holds its
   * partition locks for one pass. With `repair`, garbage entries are reset (see
   * docs/ARCHITECTURE.md, "Shared memory is untrusted"). Emits 'corruption' if any.
   */
  checkIntegrity(options: { repair?: boolean } = {}): IntegrityReport {
    if (options === null || typeof options !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', 'options must be an object');
    const repair = options.repair === true;
    const n = this._native();
    const h = n.verifyHandles(repair);
    const report: IntegrityReport = {
      ok: true, found: h.found, repaired: h.repaired,
      anomalies: h.anomalies.map((a) => ({ structure: 'ioHandle' as const, index: a.index, problem: `${a.problem} (word ${a.word})`, repaired: a.repaired })),
    };
    if (this.buffers.configured) {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      const p = (native as any).bpVerify(n, repair);
      report.found += p.found;
      report.repaired += p.repaired;
      report.anomalies.push(...p.anomalies);
      if (p.lockTimeout) report.anomalies.push({ structure: 'mappingTable', index: -1, problem: 'a partition lock stayed held: mapping table not checked', repaired: false });
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
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      const deadline = Date.now() + (options.timeoutMs ?? 5000);
      while (this.#pending.size > 0 && Date.now() < deadline) await sleep(2);
      const n = this.#native;
      this.#native = null;
      this.#arena = null;
      n?.detach();
      for (const [, p] of this.#pending) {
        if (p.batch.keep.length) retainedAfterClose.push(p.batch.keep);
        p.batch.results[p.pos] = { op: p.name, ok: false, result: -ESHUTDOWN, reapedBy: -1, error: new RingmasterError('ERR_RINGMASTER_CLOSED', 'handle closed before this IO completed') };
        if (--p.batch.remaining === 0) p.batch.resolve(p.batch.results);
      }
      this.#pending.clear();
      for (const [, w] of this.#waits) w(undefined);
      this.#waits.clear();
      this.#waitGroups.clear();
      this.emit('close');
    })();
    return this.#closing;
  }

  /** @internal */
  async _submit(ring: number | undefined, ops: EncodedOp[], keep: unknown[]): Promise<IoResult[]> {
    if (this.#closing) throw new RingmasterError('ERR_RINGMASTER_CLOSED', 'this ringmaster handle is closed');
    const n = this._native();
    const fields = new Float64Array(ops.length * OP_FIELDS);
    const buffers: (Uint8Array | undefined)[] = [];
    ops.forEach((op, i) => {
      fields.set(op.fields, i * OP_FIELDS);
      buffers.push(op.buffer);
    });
    const deadline = Date.now() + this.#submitTimeoutMs;
    let delay = 0;
    for (;;) {
      let r: Int32Array | number;
      try {
        r = n.submit(ring, fields, buffers);
      } catch (e) {
        throw fromNative(e);
      }
      if (r === undefined) throw new RingmasterError('ERR_RINGMASTER_CLOSED', 'this environment is shutting down');
      if (typeof r !== 'number') {
        const settled = this.#track(r, ops, keep);
        // Other ops of ours that completed by now (reaped inline) follow this batch's entries.
        if (r.length > 4 * ops.length) this.#onCompletions(r.subarray(4 * ops.length));
        return settled;
      }
      if (r === -ESHUTDOWN) throw new RingmasterError('ESHUTDOWN', 'the postmaster has stopped: its rings accept no more IO', { errno: r });
      if (r !== -EAGAIN && r !== -ETIMEDOUT) throw ioError(r, 'submit');
      // Back-pressure: every IO handle is in flight, or a ring lock is held by a stopped
      // process. Wait (bounded) rather than fail.
      if (Date.now() > deadline) {
        throw new RingmasterError('ETIMEDOUT', `no IO handle or ring lock became available within ${this.#submitTimeoutMs} ms`, { errno: -ETIMEDOUT });
      }
      await sleep(delay);
      delay = Math.min(delay ? delay * 2 : 1, 20);
      if (this.#closing || !this.#native) throw new RingmasterError('ERR_RINGMASTER_CLOSED', 'this ringmaster handle is closed');
    }
  }

  // `handles`: per op (index, generation, result or PENDING, reaper slot). Ops that
  // completed inline (reaped on this thread during submit) are settled at once.
  #track(handles: Int32Array, ops: EncodedOp[], keep: unknown[]): Promise<IoResult[]> {
    return new Promise((resolve) => {
      const batch: PendingBatch = { results: new Array(ops.length), remaining: ops.length, resolve, keep };
      for (let i = 0; i < ops.length; i++) {
        const res = handles[4 * i + 2];
        if (res === PENDING) {
          this.#pending.set(pendingKey(handles[4 * i], handles[4 * i + 1] >>> 0), { batch, pos: i, name: ops[i].name, len: ops[i].fields[4] });
        } else {
          this.#settle(batch, i, ops[i].name, res, handles[4 * i + 3], ops[i].fields[4]);
        }
      }
    });
  }

  #settle(batch: PendingBatch, pos: number, name: (typeof OP_NAMES)[number], res: number, reaper: number, len: number): void {
    // The result came through shared memory: one no op can produce is corruption.
    const rw = name === 'read' || name === 'write';
    if (res > (rw ? len : 0)) res = CORRUPT_RESULT;
    if (res === CORRUPT_RESULT && batch.keep.length) {
      // The kernel or a pool thread may still be doing this IO: never free its buffers.
      retainedAfterClose.push(batch.keep);
    }
    const r: IoResult = { op: name, ok: res >= 0, result: res, reapedBy: reaper };
    if (res === CORRUPT_RESULT) r.error = corruptError(`${name} (op ${pos})`, pos);
    else if (res < 0) r.error = ioError(res, `${name} (op ${pos})`, pos);
    batch.results[pos] = r;
    if (--batch.remaining === 0) batch.resolve(batch.results);
  }

  #onCompletions(b: Int32Array): void {
    for (let i = 0; i < b.length; i += 4) {
      if (b[i] === -1) {  // a shared wait resolved: [-1, id, value, 0]
        const w = this.#waits.get(b[i + 1] >>> 0);
        if (w) {
          this.#waits.delete(b[i + 1] >>> 0);
          w(b[i + 2] >>> 0);
        }
        continue;
      }
      const index = b[i];
      const gen = b[i + 1] >>> 0;
      const res = b[i + 2];
      const reaper = b[i + 3];
      const key = pendingKey(index, gen);
      const p = this.#pending.get(key);
      if (!p) continue;  // not ours: never act on it
      this.#pending.delete(key);
      this.#settle(p.batch, p.pos, p.name, res, reaper, p.len);
    }
  }
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
    return this.#rw(OP_READ, file, offset, target, options);
  }

  write(file: FileHandle | number, offset: number | bigint, source: IoBuffer, options?: OpOptions): this {
    return this.#rw(OP_WRITE, file, offset, source, options);
  }

  fsync(file: FileHandle | number, options?: OpOptions): this {
    return this.#push(OP_FSYNC, this.#fileId(file), 0, 0, -1, undefined, options);
  }

  fdatasync(file: FileHandle | number, options?: OpOptions): this {
    return this.#push(OP_FDATASYNC, this.#fileId(file), 0, 0, -1, undefined, options);
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

  /** Submits every op in one go. Resolves with one result per op (never rejects for IO errors). */
  submit(): Promise<IoResult[]> {
    if (this.#submitted) return Promise.reject(new RingmasterError('ERR_RINGMASTER_BATCH_SUBMITTED', 'this batch was already submitted'));
    if (this.#ops.length === 0) return Promise.reject(rangeError('ERR_OUT_OF_RANGE', 'cannot submit an empty batch'));
    const max = this.#db.features.ringEntries;
    if (this.#ops.length > max) return Promise.reject(rangeError('ERR_OUT_OF_RANGE', `a batch holds at most ringEntries (${max}) ops, got ${this.#ops.length}`));
    this.#submitted = true;
    return this.#db._submit(this.#ring, this.#ops, this.#keep);
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
    if (file instanceof FileHandle) {
      if (file.closed) throw new RingmasterError('ERR_RINGMASTER_FILE_CLOSED', `file '${file.path}' is closed`);
      return file.id;
    }
    if (typeof file !== 'number' || !Number.isInteger(file) || file < 0) throw typeError('ERR_INVALID_ARG_TYPE', 'file must be a FileHandle or a file id');
    return file;
  }

  #rw(op: number, file: FileHandle | number, offset: number | bigint, buf: IoBuffer, options?: OpOptions): this {
    const id = this.#fileId(file);
    const off = checkOffset('offset', offset);
    if (buf instanceof Uint8Array) {
      const arena = this.#arenaOffsetOf(buf);
      if (arena >= 0) return this.#push(op, id, off, buf.byteLength, arena, undefined, options);
      this.#keep.push(buf);
      return this.#push(op, id, off, buf.byteLength, -1, buf, options);
    }
    if (buf && typeof buf === 'object' && typeof (buf as ArenaSlice).offset === 'number' && typeof (buf as ArenaSlice).length === 'number') {
      const s = buf as ArenaSlice;
      checkOffset('arena offset', s.offset);
      checkOffset('arena length', s.length);
      return this.#push(op, id, off, s.length, s.offset, undefined, options);
    }
    throw typeError('ERR_INVALID_ARG_TYPE', `${OP_NAMES[op]} needs a Uint8Array or an arena slice`);
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
