// How modules built on core (the buffer pool, the WAL) attach to it without core importing
// them. A module registers, once when it is loaded, its option checks, its `init` (the
// postmaster calls it after creating the segment and before any fork, so every region a
// module needs exists before a worker can attach) and the property it appears as on every
// handle (`db.buffers`, `db.wal`), created on first use in each environment. In every
// process the module finds its shared state again by region name (`ModuleCore.regionGet`).
// The package entry loads the modules, so a user's `require('ringmaster')` has them all.
import { Ringmaster } from './ringmaster';
import type { Batch, SubmitOptions } from './ringmaster';
import type { NativeSession } from './native';
import type { EncodedOp } from './io';
import type { IoResult } from './io';
import type { FileHandle } from './files';
import { RingmasterError } from './errors';

/**
 * What the buffer pool needs from the WAL to honour WAL-before-data. The WAL module
 * installs itself with `db.buffers.setWalHook(hook)` when both are configured.
 */
export interface WalHook {
  /** LSN up to which the WAL is durable now (readable in any process). */
  flushedLsn(): bigint;
  /** Resolves once the WAL is durable up to `lsn` (group commit). */
  flush(lsn: bigint): Promise<void>;
  /**
   * Adds to `batch` the ops that make the WAL durable up to `lsn` (write(s) then
   * fdatasync), the last one soft-linked so an op the caller adds next runs only after
   * the WAL is durable. Returns a callback the caller must invoke with that batch's
   * results (in order) so the WAL can publish the new flushed LSN (or enter its failed
   * state), or `null` if it cannot add them now (then the caller uses `flush`).
   */
  appendFlushChain(batch: Batch, lsn: bigint): ((results: IoResult[], firstIndex: number) => void) | null;
}

/**
 * A pinned page as the WAL sees it when it appends a full-page image of it
 * (`db.wal.append(kind, payload, { page })`): the buffer pool's pinned buffer.
 */
export interface WalPage {
  readonly bufferId: number;
  /** The file table id of the page's file. */
  readonly file: number;
  readonly block: number;
  readonly released: boolean;
  /** The page's bytes (shared memory). */
  readonly page: Uint8Array;
}

/**
 * What the WAL needs of the buffer pool, so that neither module imports the other: the
 * pool provides it (`ModuleHooks.pagesForWal`), the WAL finds it with `pagesForWal(db)`.
 */
export interface PagesForWal {
  /** Whether the postmaster was started with a buffer pool. */
  readonly configured: boolean;
  readonly pageSize: number;
  /** Installs the WAL's hook: writeback then honours WAL-before-data. */
  setWalHook(hook: WalHook): void;
  /**
   * Writes every page dirty now back (the checkpoint); resolves with how many it wrote once
   * each was written (by anyone), or rejects (ERR_RINGMASTER_WRITEBACK_TIMEOUT) when one was
   * not by `timeoutMs`.
   */
  flushAll(options?: { timeoutMs?: number }): Promise<number>;
  /** `value` as a page of this pool (null if it is not a pinned buffer of the pool). */
  pageOf(value: unknown): WalPage | null;
  /** Whether this handle holds the exclusive content lock on `page` (the image decision reads and copies it). */
  lockedExclusive(page: WalPage): boolean;
  /**
   * Recovery: puts a full-page image into the pool, over the pool's copy of the page if it
   * has one (valid or not), else into a zeroed buffer claimed without IO. The page keeps its
   * dirty state.
   */
  putImage(file: FileHandle, block: number, data: Uint8Array): Promise<void>;
}

/** What a module's options are checked against before anything exists. */
export interface ModuleContext {
  /** The arena as it will be created (arenaSize rounded up to 4 KiB). */
  arenaSize: number;
  maxProcesses: number;
}

export interface ModuleHooks {
  /**
   * Postmaster only, before the data directory or the segment is touched: throws for
   * bad or contradictory options; returns the arena bytes `init` will allocate (each
   * allocation rounded up to 4 KiB), so that a start that cannot fit fails first.
   */
  validate(options: unknown, context: ModuleContext): { arenaBytes: number };
  /** Postmaster only, once, before any fork: create and publish shared state. */
  init(db: Ringmaster, options: unknown): void | Promise<void>;
  /**
   * The property the module appears as on every handle, and how it builds its
   * per-environment object there (on first use of the property).
   */
  property?: { name: string; create(db: Ringmaster): object };
  /** The buffer pool's side of the WAL's page interface, for handle `db`. */
  pagesForWal?(db: Ringmaster): PagesForWal;
}

const registry = new Map<string, ModuleHooks>();
const instances = new WeakMap<Ringmaster, Map<string, object>>();
const factories = new Map<string, (db: Ringmaster) => object>();

/** Called by a module when it is loaded: `name` is its start option (`bufferPool`, `wal`). */
export function registerModule(name: string, hooks: ModuleHooks): void {
  registry.set(name, hooks);
  const prop = hooks.property;
  if (!prop || factories.has(prop.name)) return;
  factories.set(prop.name, prop.create);
  Object.defineProperty(Ringmaster.prototype, prop.name, {
    configurable: true,
    enumerable: false,
    get(this: Ringmaster) {
      return moduleInstance(this, prop.name);
    },
  });
}

/**
 * The module object registered as property `name` of `db` (built on first use), or null
 * when no loaded module registered that property. Core's own code (the postmaster's stop)
 * reaches the modules this way, typed by what it needs of them.
 */
export function moduleInstance<T extends object>(db: Ringmaster, name: string): T | null {
  const create = factories.get(name);
  if (!create) return null;
  let mine = instances.get(db);
  if (!mine) instances.set(db, (mine = new Map()));
  let m = mine.get(name);
  if (!m) {
    m = create(db);
    mine.set(name, m);
  }
  return m as T;
}

const pagesCache = new WeakMap<Ringmaster, PagesForWal>();

/** The loaded buffer pool's page interface for the WAL (null when no module provides one). */
export function pagesForWal(db: Ringmaster): PagesForWal | null {
  let p = pagesCache.get(db);
  if (p) return p;
  for (const hooks of registry.values()) {
    if (!hooks.pagesForWal) continue;
    p = hooks.pagesForWal(db);
    pagesCache.set(db, p);
    return p;
  }
  return null;
}

/**
 * What the postmaster's stop needs of the buffer pool for its shutdown checkpoint: write
 * every dirty page back.
 */
export interface PagesAtStop {
  readonly configured: boolean;
  flushAll(): Promise<unknown>;
  /** Pages fenced as torn when a process died mid-write (the exit report names the new ones). */
  stats(): { tornTotal: number; tornPages: { fileId: number; block: number; dirty: boolean }[] };
}

/** What the postmaster's stop needs of the WAL for its shutdown checkpoint. */
export interface WalAtStop {
  readonly enabled: boolean;
  readonly failed: boolean;
  _failedError(): RingmasterError | null;
  checkpoint(): Promise<bigint>;
  flush(): Promise<unknown>;
}

/**
 * The part of core a module works through: its shared state by region name, the segment's
 * wait words, IO submission and the native session. One per handle; the handle's public
 * API stays what users see.
 */
export interface ModuleCore {
  readonly db: Ringmaster;
  /** The native session (throws ERR_RINGMASTER_CLOSED once the handle is closed). */
  native(): NativeSession;
  /** A named arena region published by the postmaster, or null. */
  regionGet(name: string): { offset: number; size: number } | null;
  /** Publishes a named arena region (postmaster, during `init`). */
  regionSet(name: string, offset: number, size: number): void;
  /** Resolves with the word's new value once the 32-bit arena word at `offset` differs from `value`, or undefined after `timeoutMs`. */
  waitWord(offset: number, value: number, timeoutMs: number): Promise<number | undefined>;
  /** Submits encoded ops as one batch (see `Ringmaster._submit`). */
  submit: Ringmaster['_submit'];
  /** Sets the completion kind (a module's id from native/completion_kinds.h) of the op added to `batch` last. */
  setKind(batch: Batch, kind: number, kindArg: number): Batch;
  /** `batch.submit()`, with a module's SubmitOptions (submit now, learn when an op went). */
  submitBatch(batch: Batch, opts: SubmitOptions): Promise<IoResult[]>;
}

const cores = new WeakMap<Ringmaster, ModuleCore>();

/** The module-facing interface of `db`. */
export function coreOf(db: Ringmaster): ModuleCore {
  let c = cores.get(db);
  if (!c) {
    c = {
      db,
      native: () => db._native(),
      regionGet: (name) => db._regionGet(name),
      regionSet: (name, offset, size) => db._regionSet(name, offset, size),
      waitWord: (offset, value, timeoutMs) => db._waitWord(offset, value, timeoutMs),
      submit: (...args) => db._submit(...args),
      setKind: (batch, kind, kindArg) => batch._setKind(kind, kindArg),
      submitBatch: (batch, opts) => batch._submitWith(opts),
    };
    cores.set(db, c);
  }
  return c;
}

export async function initModules(db: Ringmaster, options: Record<string, unknown>): Promise<void> {
  for (const [name, hooks] of registry) {
    if (options[name] !== undefined) await hooks.init(db, options[name]);
  }
}

/**
 * Checks every configured module's options, then that their arena needs fit together
 * (a pool and a WAL buffer that each fit but not both used to fail half-way through
 * start, after recovery had already run). Throws ERR_RINGMASTER_ARENA_TOO_SMALL.
 */
export function validateModules(options: Record<string, unknown>, context: ModuleContext): void {
  const needs: string[] = [];
  let total = 0;
  for (const [name, hooks] of registry) {
    if (options[name] === undefined) continue;
    const { arenaBytes } = hooks.validate(options[name], context);
    total += arenaBytes;
    needs.push(`${name} ${arenaBytes}`);
  }
  if (total > context.arenaSize) {
    throw new RingmasterError('ERR_RINGMASTER_ARENA_TOO_SMALL',
      `the configured modules need ${total} bytes of arena (${needs.join(' + ')}), more than arenaSize (${context.arenaSize}): raise arenaSize or shrink bufferPool.pages / wal.bufferSize`);
  }
}
