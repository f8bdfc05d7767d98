// The postmaster: creates the shared segment and the rings, forks workers that attach
// to them, notices when they die, and shuts everything down in order.
import { ChildProcess, ForkOptions, fork as cpFork } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Cluster, Worker as ClusterWorker } from 'node:cluster';
import { RingmasterListener, Features, Ringmaster, RingmasterEvents } from './ringmaster';
import { RingmasterError, errnoName, fromNative, rangeError, typeError } from './errors';
import { StartOptions, resolveStartOptions } from './options';
import { optionsObject, timeoutOption } from './io';
import { RUN_STOPPED, RUN_STOPPING, native } from './native';
import { initModules, moduleInstance, validateModules, type PagesAtStop, type WalAtStop } from './modules';
import { DataDirLock } from './datadir-lock';
import { syncCreatedDataDirs, syncPass } from './durability';

export const ATTACH_ENV = 'RINGMASTER_ATTACH';
/** First fd number in a forked child that carries ringmaster fds (0-2 stdio, 3 ipc). */
const FIRST_FD = 4;

export interface ProcessExit {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Process slots of that pid that were freed (0 if it never attached or detached cleanly). */
  slotsCleaned: number;
  /**
   * Buffer-pool pages this process held exclusively when it died: maybe half-changed, now
   * fenced (`ERR_RINGMASTER_PAGE_TORN`) until a restart recovers them from the WAL. Also
   * emitted as `'pages-torn'`. Empty without a buffer pool.
   */
  tornPages: { fileId: number; block: number; dirty: boolean }[];
  /** Whether it had attached (a child that never did is also reported as `'worker-failed'`). */
  attached: boolean;
}

/** A worker that `pm.fork()` / `pm.clusterFork()` started attached (`'worker-attached'`). */
export interface WorkerAttached {
  pid: number;
  /** Its process slot (`db.slot` in the worker). */
  slot: number;
}

/**
 * A worker started by `pm.fork()` / `pm.clusterFork()` that ended before it attached
 * (`'worker-failed'`): its module did not resolve, it threw at top level, it exited
 * early, or it could not be spawned at all.
 */
export interface WorkerFailure {
  /** Undefined when the process could not be spawned. */
  pid: number | undefined;
  /** What was forked: the module path (`pm.fork`), or `'cluster worker'`. */
  modulePath: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** `ERR_RINGMASTER_WORKER_FAILED`; `cause` is the spawn error, if that was it. */
  error: RingmasterError;
}

/** Events of the postmaster: those of every handle, plus its children's. */
export interface PostmasterEvents extends RingmasterEvents {
  /** A child exited (after its slots were cleaned). */
  exit: [exit: ProcessExit];
  /** A child died holding pages exclusively: they are fenced until a restart. */
  'pages-torn': [info: { pid: number; pages: ProcessExit['tornPages'] }];
  /** A child called `attach()` successfully. */
  'worker-attached': [worker: WorkerAttached];
  /**
   * A child ended (or could not be spawned) before attaching. Without a listener, a
   * `RingmasterWarning` (`RINGMASTER_WORKER_FAILED`) is printed instead. Not emitted for
   * children the stop itself ends.
   */
  'worker-failed': [failure: WorkerFailure];
  /** What `stop()`'s shutdown checkpoint did. */
  'shutdown-checkpoint': [report: ShutdownCheckpoint];
}

interface ChildState {
  modulePath: string;
  /** Its exit was handled: slots cleaned, events emitted (stop() waits for this). */
  exited: boolean;
  onExited: (() => void)[];
  attached: WorkerAttached | null;
  failure: WorkerFailure | null;
  waiters: { resolve: (w: WorkerAttached) => void; reject: (e: Error) => void }[];
}

/** `pm.stop()` / the postmaster's `close()` options. */
export interface StopOptions {
  /**
   * How long to wait for IO in flight and for the workers to exit before they are
   * SIGKILLed, ms (default 5000). The shutdown checkpoint then gets what is left of it,
   * and at least 1000 ms.
   */
  timeoutMs?: number;
  /**
   * The shutdown checkpoint, taken once every worker has exited (as PostgreSQL's
   * checkpointer does after the backends are gone). Unset (default): with a buffer pool
   * and a WAL, `wal.checkpoint()` (the WAL flushed, dirty pages written back, a checkpoint
   * record, the control file): the next start replays nothing. A buffer pool without a
   * WAL: every dirty page written back and its file fsynced. A WAL without a buffer pool:
   * the WAL is flushed, and no checkpoint record is written, because the data those
   * records describe is not in ringmaster's hands: recovery replays them as before.
   * `true`: a checkpoint record with a WAL even without a buffer pool (you assert that
   * your own data is durable). `false`: none of it; the next start recovers from the WAL.
   */
  checkpoint?: boolean;
}

/** What the shutdown checkpoint did (`'shutdown-checkpoint'` event). */
export interface ShutdownCheckpoint {
  /**
   * `'checkpoint'`: a WAL checkpoint; `'pages'`: no WAL, dirty pages written back and
   * synced; `'wal-flush'`: a WAL without a buffer pool, flushed.
   */
  kind: 'checkpoint' | 'pages' | 'wal-flush';
  ok: boolean;
  /** The checkpoint record's LSN (kind `'checkpoint'`, when ok). */
  lsn: bigint | null;
  /** How long it took, ms. */
  ms: number;
  /**
   * Why it was not done (`ok: false`): the WAL had failed (`ERR_RINGMASTER_WAL_FAILED`),
   * the stop's time ran out (`ETIMEDOUT`), or the error it failed with (a torn page, EIO).
   * Nothing is lost then: the next start recovers from the WAL, as after a crash.
   */
  error?: Error;
}

let warned = new Set<string>();
function warnOnce(key: string, message: string): void {
  if (warned.has(key)) return;
  warned.add(key);
  process.emitWarning(message, { code: key, type: 'RingmasterWarning' } as never);
}

function memlockLimit(): string {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max locked memory'));
    const soft = line?.split(/\s{2,}/)[1];
    if (!soft) return 'unknown';
    return soft === 'unlimited' ? 'unlimited' : `${Math.round(Number(soft) / 1024)} KiB`;
  } catch {
    return 'unknown';
  }
}

// Typed events: these declarations merge into the class below.
export interface Postmaster {
  on<K extends keyof PostmasterEvents>(event: K, listener: RingmasterListener<PostmasterEvents, K>): this;
  once<K extends keyof PostmasterEvents>(event: K, listener: RingmasterListener<PostmasterEvents, K>): this;
  off<K extends keyof PostmasterEvents>(event: K, listener: RingmasterListener<PostmasterEvents, K>): this;
  addListener<K extends keyof PostmasterEvents>(event: K, listener: RingmasterListener<PostmasterEvents, K>): this;
  removeListener<K extends keyof PostmasterEvents>(event: K, listener: RingmasterListener<PostmasterEvents, K>): this;
  prependListener<K extends keyof PostmasterEvents>(event: K, listener: RingmasterListener<PostmasterEvents, K>): this;
  prependOnceListener<K extends keyof PostmasterEvents>(event: K, listener: RingmasterListener<PostmasterEvents, K>): this;
  emit<K extends keyof PostmasterEvents>(event: K, ...args: PostmasterEvents[K]): boolean;
}
export class Postmaster extends Ringmaster {
  #children = new Map<number, ChildProcess>();
  #childState = new WeakMap<ChildProcess, ChildState>();
  #stopping: Promise<void> | null = null;
  #lock: DataDirLock;
  #wakeSliceUs: number;  // handed to forked workers (their default)

  /** @internal */
  constructor(session: ReturnType<typeof native.createSegment>, features: Omit<Features, 'sameAddress'>, submitTimeoutMs: number, lock: DataDirLock, wakeSliceUs = 0) {
    super(session, features, submitTimeoutMs);
    this.#lock = lock;
    this.#wakeSliceUs = wakeSliceUs;
  }

  /** Creates the segment, rings and registered tables; probes features once. */
  static async start(options: StartOptions): Promise<Postmaster> {
    const o = resolveStartOptions(options);
    // Module options too, and whether everything fits in the arena: all before anything is created.
    validateModules({ bufferPool: o.bufferPool, wal: o.wal }, { arenaSize: Math.ceil(o.arenaSize / 4096) * 4096, maxProcesses: o.maxProcesses });
    if (existsSync(o.dataDir) && !statSync(o.dataDir).isDirectory()) throw typeError('ERR_INVALID_ARG_VALUE', `dataDir '${o.dataDir}' exists and is not a directory`);
    const firstMade = mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    const dataDir = realpathSync(o.dataDir);
    // Directories mkdir -p made (the data directory and any above it): their names are synced once started.
    const dirsMade = firstMade === undefined ? 0 : 1 + path.relative(path.resolve(firstMade), path.resolve(o.dataDir)).split(path.sep).filter(Boolean).length;
    // Before anything in the directory changes (recovery renames and rewrites WAL files):
    // a second postmaster on it would lose acknowledged commits.
    const lock = await DataDirLock.acquire(dataDir);
    try {
      return await Postmaster.#create(o, dataDir, dirsMade, lock);
    } catch (e) {
      lock.release(false);
      throw e;
    }
  }

  static async #create(o: ReturnType<typeof resolveStartOptions>, dataDir: string, dirsMade: number, lock: DataDirLock): Promise<Postmaster> {
    const probe = native.probe();
    let backend: 'io_uring' | 'threads' = o.backend === 'threads' ? 'threads' : 'io_uring';
    let backendReason = o.backend === 'threads' ? (process.env.RINGMASTER_BACKEND === 'threads' ? 'forced by RINGMASTER_BACKEND=threads' : "forced by option backend: 'threads'") : 'io_uring available';
    const unavailable = ['ENOSYS', 'EPERM', 'ENOMEM'].includes(probe.code);
    if (backend === 'io_uring' && !probe.ok && !unavailable) {
      throw new RingmasterError(probe.code, `io_uring_setup failed with ${probe.code}`, { errno: -probe.errno });
    }
    if (backend === 'io_uring' && !probe.ok) {
      const why = `io_uring_setup failed with ${probe.code} (${probe.code === 'EPERM' ? 'kernel.io_uring_disabled or a seccomp filter' : probe.code === 'ENOSYS' ? 'no io_uring in this kernel or sandbox' : probe.code === 'ENOMEM' ? 'RLIMIT_MEMLOCK too low for the ring' : 'unavailable'})`;
      if (o.backend === 'io_uring') throw new RingmasterError(probe.code || 'ENOSYS', `backend 'io_uring' requested but ${why}`, { errno: -probe.errno });
      backend = 'threads';
      backendReason = why;
    }
    const base = {
      rings: o.rings, ringEntries: o.ringEntries, maxProcesses: o.maxProcesses, maxFiles: o.maxFiles,
      arenaSize: o.arenaSize, sqpoll: o.sqpoll, sqpollIdleMs: o.sqpollIdleMs, fixedBuffers: o.fixedBuffers,
      topology: o.topology, dataDir, reaper: o.reaper,
    };
    // Before the segment's watcher threads start: they read the process's setting as they do.
    if (o.wakeSliceUs) native.setWakeSlice(o.wakeSliceUs, true);
    let session;
    try {
      session = native.createSegment({ ...base, backend }, () => {});
    } catch (e) {
      const err = fromNative(e) as RingmasterError;
      // Only "io_uring is not available to us" falls back; anything else is a real error.
      const soft = ['ENOMEM', 'EPERM', 'ENOSYS'].includes(err.code);
      if (backend !== 'io_uring' || o.backend === 'io_uring' || !soft) throw err;
      backend = 'threads';
      backendReason = `${err.message}; fell back`;
      session = native.createSegment({ ...base, backend }, () => {});
    }
    const info = session.info();
    let fixedBuffersReason = '';
    if (backend === 'threads') fixedBuffersReason = 'threads backend';
    else if (!o.fixedBuffers) fixedBuffersReason = 'disabled by option fixedBuffers: false';
    else if (!info.fixedBuffers) {
      const code = errnoName(info.fixedBuffersErrno);
      fixedBuffersReason = code === 'ENOMEM'
        ? `registering the ${Math.round(info.arenaSize / 1024)} KiB arena exceeds RLIMIT_MEMLOCK (${memlockLimit()}); IO uses non-fixed buffers`
        : `IORING_REGISTER_BUFFERS failed with ${code}; IO uses non-fixed buffers`;
    }
    const features = {
      backend, backendReason, fixedBuffers: info.fixedBuffers, fixedBuffersReason, fixedFiles: info.fixedFiles,
      sqpoll: info.sqpoll, topology: info.topology, rings: info.rings, ringEntries: info.ringEntries, kernel: probe.kernel,
    };
    if (backend === 'threads' && o.backend !== 'threads' && process.env.RINGMASTER_BACKEND !== 'threads') {
      warnOnce('RINGMASTER_FALLBACK', `ringmaster: ${backendReason}; using the threads backend (pread/pwrite on a thread pool)`);
    }
    if (backend === 'io_uring' && o.fixedBuffers && !info.fixedBuffers) warnOnce('RINGMASTER_NO_FIXED_BUFFERS', `ringmaster: fixed buffers off: ${fixedBuffersReason}`);
    const pm = new Postmaster(session, features, o.submitTimeoutMs, lock, o.wakeSliceUs);
    try {
      syncCreatedDataDirs(pm, dataDir, dirsMade);
      await initModules(pm, { bufferPool: o.bufferPool, wal: o.wal });
    } catch (e) {
      // Never a checkpoint here: recovery may not have replayed everything.
      await pm.stop({ timeoutMs: 1000, checkpoint: false });
      throw e;
    }
    return pm;
  }

  /** Live children started with `fork()` / `clusterFork()`, by pid. */
  get children(): ReadonlyMap<number, ChildProcess> {
    return this.#children;
  }

  #attachEnv(reaper: boolean): { stdio: (number | 'ipc' | 'inherit' | 'pipe' | 'ignore')[]; env: string } {
    const { memfd, ringFds, eventFds } = this._native().forkFds();
    // Child fds: 4 = segment memfd, then the ring fds, then their eventfds (if any).
    const ringChildFds = ringFds.map((_, i) => FIRST_FD + 1 + i);
    const haveEvents = eventFds.length > 0 && eventFds.every((fd) => fd >= 0);
    const eventChildFds = haveEvents ? eventFds.map((_, i) => FIRST_FD + 1 + ringFds.length + i) : [];
    const env = JSON.stringify({ v: 1, lockStamp: this.#lock.stamp, memfd: FIRST_FD, ringFds: ringChildFds, eventFds: eventChildFds, segment: this.info.segmentId, postmasterPid: process.pid, features: this.features, reaper, wakeSliceUs: this.#wakeSliceUs });
    return { stdio: [memfd, ...ringFds, ...(haveEvents ? eventFds : [])], env };
  }

  /**
   * Starts `modulePath` with child_process.fork, handing it the segment and ring fds.
   * The child calls `attach()`. `options.stdio` may set the first three entries.
   */
  fork(modulePath: string, args: readonly string[] = [], options: ForkOptions & { reaper?: boolean } = {}): ChildProcess {
    if (typeof modulePath !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'modulePath must be a string');
    if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw typeError('ERR_INVALID_ARG_TYPE', 'args must be an array of strings');
    if (options === null || typeof options !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', 'fork options must be an object');
    if (options.reaper !== undefined && typeof options.reaper !== 'boolean') throw typeError('ERR_INVALID_ARG_TYPE', 'options.reaper must be a boolean');
    if (this.closed) throw new RingmasterError('ERR_RINGMASTER_CLOSED', 'the postmaster is stopped');
    const { reaper = true, ...forkOptions } = options;
    const a = this.#attachEnv(reaper);
    const base = Array.isArray(options.stdio) ? options.stdio.slice(0, 3) : ['inherit', 'inherit', 'inherit'];
    while (base.length < 3) base.push('inherit');
    const child = cpFork(modulePath, args as string[], {
      ...forkOptions,
      env: { ...(forkOptions.env ?? process.env), [ATTACH_ENV]: a.env },
      stdio: [...base, 'ipc', ...a.stdio] as never,
    });
    this.#track(child, modulePath);
    return child;
  }

  /** Forks a cluster worker (call in the primary) with the ringmaster fds; it calls `attach()`. */
  clusterFork(cluster: Cluster, env: Record<string, string> = {}, options: { reaper?: boolean } = {}): ClusterWorker {
    if (!cluster || typeof (cluster as { fork?: unknown }).fork !== 'function') throw typeError('ERR_INVALID_ARG_TYPE', "cluster must be node:cluster (the primary's module object)");
    if (env === null || typeof env !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', 'env must be an object of strings');
    optionsObject('clusterFork', options, ['reaper']);
    if (options.reaper !== undefined && typeof options.reaper !== 'boolean') throw typeError('ERR_INVALID_ARG_TYPE', 'options.reaper must be a boolean');
    if (this.closed) throw new RingmasterError('ERR_RINGMASTER_CLOSED', 'the postmaster is stopped');
    const a = this.#attachEnv(options.reaper ?? true);
    cluster.setupPrimary({ stdio: ['inherit', 'inherit', 'inherit', 'ipc', ...a.stdio] as never });
    const w = cluster.fork({ ...env, [ATTACH_ENV]: a.env });
    this.#track(w.process, 'cluster worker');
    return w;
  }

  /**
   * Resolves once `child` (from `fork()`, or a cluster worker from `clusterFork()`) has
   * attached, with its pid and slot; rejects with `ERR_RINGMASTER_WORKER_FAILED` if it
   * ends (or could not be spawned) first, or with `ETIMEDOUT` after `timeoutMs` (default:
   * no limit; the child's exit settles it).
   */
  whenAttached(child: ChildProcess | ClusterWorker, options: { timeoutMs?: number } = {}): Promise<WorkerAttached> {
    const proc = child && typeof child === 'object' && 'process' in child && !('stdin' in child) ? (child as ClusterWorker).process : child as ChildProcess;
    const st = proc ? this.#childState.get(proc) : undefined;
    if (!st) return Promise.reject(typeError('ERR_INVALID_ARG_VALUE', 'whenAttached: not a child this postmaster forked'));
    if (options === null || typeof options !== 'object') return Promise.reject(typeError('ERR_INVALID_ARG_TYPE', 'options must be an object'));
    const { timeoutMs } = options;
    if (timeoutMs !== undefined && typeof timeoutMs !== 'number') return Promise.reject(typeError('ERR_INVALID_ARG_TYPE', 'timeoutMs must be a number'));
    if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 0)) {
      return Promise.reject(rangeError('ERR_OUT_OF_RANGE', `timeoutMs must be a non-negative integer, got ${timeoutMs}`));
    }
    if (st.attached) return Promise.resolve(st.attached);
    if (st.failure) return Promise.reject(st.failure.error);
    return new Promise<WorkerAttached>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const w = {
        resolve: (a: WorkerAttached) => { clearTimeout(timer); resolve(a); },
        reject: (e: Error) => { clearTimeout(timer); reject(e); },
      };
      st.waiters.push(w);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          st.waiters.splice(st.waiters.indexOf(w), 1);
          reject(new RingmasterError('ETIMEDOUT', `worker ${proc.pid ?? '(not spawned)'} (${st.modulePath}) did not attach within ${timeoutMs} ms`));
        }, timeoutMs);
      }
    });
  }

  #track(child: ChildProcess, modulePath: string): void {
    const st: ChildState = { modulePath, exited: false, onExited: [], attached: null, failure: null, waiters: [] };
    this.#childState.set(child, st);
    const fail = (code: number | null, signal: NodeJS.Signals | null, cause?: Error) => {
      const how = cause ? `could not be started (${(cause as { code?: string }).code ?? cause.message})`
        : `exited (${signal ? `signal ${signal}` : `code ${code}`}) before it attached`;
      const error = new RingmasterError('ERR_RINGMASTER_WORKER_FAILED',
        `worker ${child.pid ?? ''}${child.pid ? ' ' : ''}(${modulePath}) ${how}: does the module resolve, and does it call attach()?`,
        cause ? { cause } : {});
      st.failure = { pid: child.pid, modulePath, code, signal, error };
      for (const w of st.waiters.splice(0)) w.reject(error);
      if (this.#stopping) return;  // ended by the stop itself: not a failure to report
      if (this.listenerCount('worker-failed') > 0) this.emit('worker-failed', st.failure);
      else process.emitWarning(`ringmaster: ${error.message}`, { code: 'RINGMASTER_WORKER_FAILED', type: 'RingmasterWarning' } as never);
    };
    // A spawn failure ('error' before 'spawn', and no 'exit' follows) is this child's failure
    // to attach; later 'error's (a failed send or kill) stay the caller's to handle.
    const onSpawnError = (e: Error) => fail(null, null, e);
    child.once('error', onSpawnError);
    child.once('spawn', () => {
      child.off('error', onSpawnError);
      if (child.pid) this.#children.set(child.pid, child);
    });
    // attach() in the child reports itself (core/attach.ts).
    const onMessage = (m: unknown) => {
      if (!m || typeof m !== 'object' || (m as { ringmaster?: unknown }).ringmaster !== 'attached') return;
      const slot = (m as { slot?: unknown }).slot;
      if (st.attached || typeof slot !== 'number' || !child.pid) return;
      st.attached = { pid: child.pid, slot };
      child.off('message', onMessage);
      for (const w of st.waiters.splice(0)) w.resolve(st.attached);
      this.emit('worker-attached', st.attached);
    };
    child.on('message', onMessage);
    child.once('exit', (code, signal) => {
      // An 'attached' message sent just before the exit may still be in the channel:
      // decide once the channel has drained (its 'disconnect'), bounded in case a
      // grandchild inherited the channel's fd and holds it open.
      if (!child.connected) return this.#exited(child, st, onMessage, fail, code, signal);
      let done = false;
      const drained = () => {
        if (done) return;
        done = true;
        clearTimeout(bound);
        child.off('disconnect', drained);
        this.#exited(child, st, onMessage, fail, code, signal);
      };
      const bound = setTimeout(drained, 200);
      child.once('disconnect', drained);
    });
  }

  // A child's exit, once its channel drained: report a failure to attach, clean its slots
  // (fencing pages it held exclusively), emit 'exit', and release stop()'s wait for it.
  #exited(child: ChildProcess, st: ChildState, onMessage: (m: unknown) => void, fail: (code: number | null, signal: NodeJS.Signals | null) => void,
    code: number | null, signal: NodeJS.Signals | null): void {
    child.off('message', onMessage);
    if (!st.attached) fail(code, signal);
    const pid = child.pid ?? -1;
    this.#children.delete(pid);
    let slotsCleaned = 0;
    let tornPages: ProcessExit['tornPages'] = [];
    if (!this.closed) {
      try {
        const buffers = moduleInstance<PagesAtStop>(this, 'buffers');
        const pool = buffers?.configured ? buffers : null;
        const key = (t: { fileId: number; block: number }) => `${t.fileId}:${t.block}`;
        const before = pool ? pool.stats() : null;
        slotsCleaned = this._native().cleanupProcess(pid);
        if (pool && before) {
          const after = pool.stats();
          // The pages this cleanup fenced (the list holds at most 64).
          if (after.tornTotal > before.tornTotal) {
            const old = new Set(before.tornPages.map(key));
            tornPages = after.tornPages.filter((t) => !old.has(key(t)));
          }
        }
      } catch {
        /* stopped meanwhile */
      }
    }
    const ev: ProcessExit = { pid, code, signal, slotsCleaned, tornPages, attached: st.attached !== null };
    st.exited = true;
    this.emit('exit', ev);
    if (tornPages.length) this.emit('pages-torn', { pid, pages: tornPages });
    for (const r of st.onExited.splice(0)) r();
  }

  /** Frees the slots of any attached process that is gone (e.g. not started by us). */
  sweepDeadProcesses(): number {
    return this._native().sweepDeadSlots();
  }

  /**
   * Orderly shutdown: stop accepting IO, wait (bounded) for in-flight IO, tell workers
   * ('stop' event in them), wait for them to exit (then SIGKILL), take the shutdown
   * checkpoint (see `StopOptions.checkpoint`), close the rings, unmap.
   */
  stop(options: StopOptions = {}): Promise<void> {
    if (this.#stopping) return this.#stopping;
    let timeoutMs: number;
    let checkpoint: boolean | undefined;
    try {
      optionsObject('stop', options, ['timeoutMs', 'checkpoint']);
      timeoutMs = timeoutOption('timeoutMs', options.timeoutMs, 5000);
      checkpoint = options.checkpoint;
      if (checkpoint !== undefined && typeof checkpoint !== 'boolean') throw typeError('ERR_INVALID_ARG_TYPE', 'checkpoint must be a boolean');
    } catch (e) {
      return Promise.reject(e);
    }
    this.#stopping = (async () => {
      const n = this._native();
      this._flushStaged();  // IO started before stop() was called goes out first
      n.setRunState(RUN_STOPPING);
      const deadline = Date.now() + timeoutMs;
      while (n.handlesInUse() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      // Each child counts as gone once its exit was handled (slots cleaned, 'exit' emitted).
      const exits = [...this.#children.values()].map((c) => new Promise<void>((resolve) => {
        const st = this.#childState.get(c);
        if (!st || st.exited) return resolve();
        st.onExited.push(resolve);
        // A child that is already dying has no channel: that is not the postmaster's error.
        if (c.connected && c.exitCode === null && c.signalCode === null) c.send({ ringmaster: 'stop' }, () => {});
      }));
      const timer = new Promise<void>((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref());
      await Promise.race([Promise.all(exits), timer]);
      for (const c of this.#children.values()) c.kill('SIGKILL');
      await Promise.all(exits);
      // Every worker is gone (their exits cleaned their slots): nothing but this
      // environment can change pages or append now, so the checkpoint sees a quiet system.
      await this.#shutdownCheckpoint(checkpoint, deadline);
      n.setRunState(RUN_STOPPED);
      // Completions already collected may still be on their way to this thread.
      await super.close({ timeoutMs: Math.max(1000, deadline - Date.now()) });
    })().finally(() => {
      // The children are gone (a forked worker that somehow survived holds the directory
      // itself until it exits, so a new postmaster still waits for it).
      this.#lock.release(true);
    });
    return this.#stopping;
  }

  async #shutdownCheckpoint(mode: boolean | undefined, deadline: number): Promise<void> {
    if (mode === false) return;
    const buffers = moduleInstance<PagesAtStop>(this, 'buffers');
    const walModule = moduleInstance<WalAtStop>(this, 'wal');
    const pool = buffers?.configured === true;
    const wal = walModule?.enabled === true;
    let kind: ShutdownCheckpoint['kind'];
    if (wal && (pool || mode === true)) kind = 'checkpoint';
    else if (wal) kind = 'wal-flush';
    else if (pool) kind = 'pages';
    else return;
    const started = Date.now();
    const report: ShutdownCheckpoint = { kind, ok: false, lsn: null, ms: 0 };
    if (wal && walModule!.failed) {
      // fsyncgate: nothing may be reported durable, and no page may be written past the
      // durable WAL. The next start recovers from what the WAL holds.
      report.error = walModule!._failedError() ?? new RingmasterError('ERR_RINGMASTER_WAL_FAILED', 'the WAL has failed');
    } else {
      const n = this._native();
      n.setShutdownExempt(true);
      let timer: NodeJS.Timeout | undefined;
      try {
        const work = (async () => {
          if (kind === 'checkpoint') {
            report.lsn = await walModule!.checkpoint();
          } else if (kind === 'wal-flush') {
            await walModule!.flush();
          } else {
            await buffers!.flushAll();
            // No WAL to recover from: every file written since the last sync (by any
            // process, pages and users' writes alike) must be on disk before the stop ends.
            await syncPass(this, { timeoutMs: Math.max(1000, deadline - Date.now()) });
          }
        })();
        work.catch(() => {});  // if abandoned at the deadline, it fails once the handle closes
        const budget = Math.max(1000, deadline - Date.now());
        const done = await Promise.race([
          work.then(() => true),
          new Promise<false>((r) => { timer = setTimeout(() => r(false), budget); }),
        ]);
        if (done) report.ok = true;
        else report.error = new RingmasterError('ETIMEDOUT', `the shutdown checkpoint did not finish within ${budget} ms (the rest of stop's timeoutMs, at least 1000)`);
      } catch (e) {
        report.error = e as Error;
      } finally {
        clearTimeout(timer);
        n.setShutdownExempt(false);
      }
    }
    report.ms = Date.now() - started;
    this.emit('shutdown-checkpoint', report);
    if (!report.ok) {
      const then = kind === 'pages'
        ? 'dirty pages not written back are lost (there is no WAL to recover them from)'
        : 'nothing acknowledged is lost: the next start recovers from the WAL';
      process.emitWarning(`ringmaster: stop() took no shutdown checkpoint (${report.error?.message}); ${then}`,
        { code: 'RINGMASTER_NO_SHUTDOWN_CHECKPOINT', type: 'RingmasterWarning' } as never);
    }
  }

  /** For the postmaster, close() is stop(). */
  override close(options: StopOptions = {}): Promise<void> {
    return this.stop(options);
  }
}

/** Embedded mode: a postmaster in this process, no children. `db.close()` shuts it down. */
export function open(options: StartOptions): Promise<Postmaster> {
  return Postmaster.start(options);
}
