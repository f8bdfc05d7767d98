import { rangeError, typeError } from './errors';
import { defaultRings } from './ring-defaults';

/** Options for `Postmaster.start()` and `open()`. Every field is optional except `dataDir`. */
export interface StartOptions {
  /** Directory holding the data files; created 0700 if missing. Files can never escape it. */
  dataDir: string;
  /** `'auto'` (default): io_uring if this process can set up a ring, else the threads backend.
   *  `RINGMASTER_BACKEND=threads|io_uring` in the environment overrides this option. */
  backend?: 'auto' | 'io_uring' | 'threads';
  /** Number of io_uring rings (default: the CPU count, at most maxProcesses and 16, fewer
   *  when RLIMIT_MEMLOCK is small; see core/ring-defaults.ts). A process slot submits to ring
   *  `slot % rings`; a `drain` orders only the ops of its own ring (`db.barrier()` waits for
   *  every ring). */
  rings?: number;
  /** SQ entries per ring, a power of two 4..4096 (default 256). Also the largest batch. */
  ringEntries?: number;
  /** `'shared'` (default): every process submits to every ring under the ring's lock.
   *  `'per-process'`: process slot k submits to ring k % rings and watches only that ring
   *  (PostgreSQL 18's layout); the postmaster watches all of them. */
  topology?: 'shared' | 'per-process';
  /** Kernel-side submission polling thread, owned by the postmaster (default false).
   *  Requires arena buffers for all IO (private buffers are rejected with EOPNOTSUPP). */
  sqpoll?: boolean;
  /** SQPOLL idle time before the poller sleeps, ms (default 50). */
  sqpollIdleMs?: number;
  /** Register the arena as fixed buffers when RLIMIT_MEMLOCK allows (default true). */
  fixedBuffers?: boolean;
  /** Process slots: postmaster + forked workers + worker threads attached at once (default 64). */
  maxProcesses?: number;
  /** Shared file-table size (default 256, at most 65535). */
  maxFiles?: number;
  /** Bytes of shared, page-aligned memory for IO buffers (default 16 MiB). */
  arenaSize?: number;
  /** Whether this process runs watcher threads that reap completions (default true). */
  reaper?: boolean;
  /** How long a submission may wait for a free IO handle or a ring lock, ms (default 30000). */
  submitTimeoutMs?: number;
  /**
   * The scheduler slice, µs, that the threads woken by other processes ask for: each
   * attaching thread's own (its event loop's) and this process's watcher threads
   * (Linux 6.12+ EEVDF; the kernel clamps it to 100..100000). 0 (default): the kernel's.
   * A short slice lets a woken thread preempt a busy one on the CPU it is placed on.
   * Forked workers inherit it; `attach({ wakeSliceUs })` overrides it.
   */
  wakeSliceUs?: number;
  // The modules built on core add their own options here (bufferPool, wal): each
  // declares its field where it registers itself.
}

/** The options of the modules (`bufferPool`, `wal`), checked by each module's `validate`. */
export type ModuleOptionName = 'bufferPool' | 'wal';

export interface ResolvedStartOptions extends Required<Omit<StartOptions, ModuleOptionName>> {
  bufferPool?: unknown;
  wal?: unknown;
}

function positiveInt(name: string, v: unknown, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be an integer, got ${typeof v === 'number' ? v : typeof v}`);
  if (v < min || v > max) throw rangeError('ERR_OUT_OF_RANGE', `${name} must be in ${min}..${max}, got ${v}`);
  return v;
}

/** The range sched_setattr accepts for a SCHED_OTHER slice (sched_runtime), µs. */
export const WAKE_SLICE_MIN_US = 100;
export const WAKE_SLICE_MAX_US = 100000;

/** `wakeSliceUs`: 0 (the kernel's slice) or WAKE_SLICE_MIN_US..WAKE_SLICE_MAX_US µs. */
export function wakeSliceOption(name: string, v: unknown): number {
  if (v === 0) return 0;
  return positiveInt(name, v, 0, WAKE_SLICE_MIN_US, WAKE_SLICE_MAX_US);
}

/** A slice inherited from the postmaster's environment: a valid value, else 0 (never throws). */
export function inheritedWakeSlice(v: unknown): number {
  return Number.isInteger(v) && (v as number) >= WAKE_SLICE_MIN_US && (v as number) <= WAKE_SLICE_MAX_US ? (v as number) : 0;
}

function bool(name: string, v: unknown, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== 'boolean') throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be a boolean`);
  return v;
}

function oneOf<T extends string>(name: string, v: unknown, def: T, allowed: readonly T[]): T {
  if (v === undefined) return def;
  if (typeof v !== 'string' || !allowed.includes(v as T)) {
    throw typeError('ERR_INVALID_ARG_VALUE', `${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
  }
  return v as T;
}

export function resolveStartOptions(o: StartOptions): ResolvedStartOptions {
  if (o === null || typeof o !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', 'options must be an object with at least { dataDir }');
  if (typeof o.dataDir !== 'string' || o.dataDir.length === 0) throw typeError('ERR_INVALID_ARG_TYPE', 'options.dataDir must be a non-empty string');
  const known = new Set(['dataDir', 'backend', 'rings', 'ringEntries', 'topology', 'sqpoll', 'sqpollIdleMs', 'fixedBuffers', 'maxProcesses', 'maxFiles', 'arenaSize', 'reaper', 'submitTimeoutMs', 'wakeSliceUs', 'bufferPool', 'wal']);
  const moduleOptions = o as { [K in ModuleOptionName]?: unknown };
  for (const k of ['bufferPool', 'wal'] as const) {
    if (moduleOptions[k] !== undefined && (moduleOptions[k] === null || typeof moduleOptions[k] !== 'object')) throw typeError('ERR_INVALID_ARG_TYPE', `options.${k} must be an object`);
  }
  for (const k of Object.keys(o)) if (!known.has(k)) throw typeError('ERR_INVALID_ARG_VALUE', `unknown option '${k}'`);
  const ringEntries = positiveInt('ringEntries', o.ringEntries, 256, 4, 4096);
  if ((ringEntries & (ringEntries - 1)) !== 0) throw rangeError('ERR_OUT_OF_RANGE', `ringEntries must be a power of two, got ${ringEntries}`);
  let backend = oneOf('backend', o.backend, 'auto', ['auto', 'io_uring', 'threads'] as const);
  const env = process.env.RINGMASTER_BACKEND;
  if (env === 'threads' || env === 'io_uring') backend = env;
  const arenaSize = positiveInt('arenaSize', o.arenaSize, 16 << 20, 4096, 2 ** 40);
  const maxProcesses = positiveInt('maxProcesses', o.maxProcesses, 64, 1, 4096);
  const rings = o.rings === undefined ? defaultRings(maxProcesses, ringEntries) : positiveInt('rings', o.rings, 1, 1, 64);
  // Options that contradict each other: refused, never silently ignored.
  if (o.sqpoll === true && o.backend === 'threads') {
    throw typeError('ERR_INVALID_ARG_VALUE', "sqpoll: true asks for an io_uring kernel polling thread, backend: 'threads' for no io_uring: choose one");
  }
  if (o.sqpollIdleMs !== undefined && o.sqpoll !== true) {
    throw typeError('ERR_INVALID_ARG_VALUE', 'sqpollIdleMs applies only with sqpoll: true');
  }
  // Every ring's CQ holds one entry per IO handle (rings x ringEntries): the kernel's limit is 65536.
  if (rings * ringEntries > 65536) throw rangeError('ERR_OUT_OF_RANGE', `rings x ringEntries must be at most 65536, got ${rings} x ${ringEntries}`);
  return {
    dataDir: o.dataDir,
    backend,
    rings,
    ringEntries,
    topology: oneOf('topology', o.topology, 'shared', ['shared', 'per-process'] as const),
    sqpoll: bool('sqpoll', o.sqpoll, false),
    sqpollIdleMs: positiveInt('sqpollIdleMs', o.sqpollIdleMs, 50, 1, 60000),
    fixedBuffers: bool('fixedBuffers', o.fixedBuffers, true),
    maxProcesses,
    maxFiles: positiveInt('maxFiles', o.maxFiles, 256, 1, 65535),
    arenaSize,
    reaper: bool('reaper', o.reaper, true),
    submitTimeoutMs: positiveInt('submitTimeoutMs', o.submitTimeoutMs, 30000, 1, 2 ** 31 - 1),
    wakeSliceUs: wakeSliceOption('wakeSliceUs', o.wakeSliceUs),
    bufferPool: moduleOptions.bufferPool,
    wal: moduleOptions.wal,
  };
}
