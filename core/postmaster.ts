// The postmaster: creates the shared segment and the rings, forks workers that attach
// to them, notices when they die, and shuts everything down in order.
import { ChildProcess, ForkOptions, fork as cpFork } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import type { Cluster, Worker as ClusterWorker } from 'node:cluster';
import { Features, Ringmaster } from './ringmaster';
import { RingmasterError, errnoName, fromNative, typeError } from './errors';
import { StartOptions, resolveStartOptions } from './options';
import { RUN_STOPPED, RUN_STOPPING, native } from './native';
import { initModules } from './modules';
import '../bufferpool/index';  // registers the module's init hook
import '../wal/index';

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

export class Postmaster extends Ringmaster {
  #children = new Map<number, ChildProcess>();
  #stopping: Promise<void> | null = null;
  #dataDir: string;

  /** @internal */
  constructor(session: ReturnType<typeof native.createSegment>, features: Omit<Features, 'sameAddress'>, dataDir: string, submitTimeoutMs: number) {
    super(session, features, submitTimeoutMs);
    this.#dataDir = dataDir;
  }

  get dataDir(): string {
    return this.#dataDir;
  }

  /** Creates the segment, rings and registered tables; probes features once. */
  static async start(options: StartOptions): Promise<Postmaster> {
    const o = resolveStartOptions(options);
    if (existsSync(o.dataDir) && !statSync(o.dataDir).isDirectory()) throw typeError('ERR_INVALID_ARG_VALUE', `dataDir '${o.dataDir}' exists and is not a directory`);
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    const dataDir = realpathSync(o.dataDir);
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
    const pm = new Postmaster(session, features, dataDir, o.submitTimeoutMs);
    try {
      await initModules(pm, { bufferPool: o.bufferPool, wal: o.wal });
    } catch (e) {
      await pm.stop({ timeoutMs: 1000 });
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
    const env = JSON.stringify({ v: 1, memfd: FIRST_FD, ringFds: ringChildFds, eventFds: eventChildFds, segment: this.info.segmentId, postmasterPid: process.pid, features: this.features, reaper });
    return { stdio: [memfd, ...ringFds, ...(haveEvents ? eventFds : [])], env };
  }

  /**
   * Starts `modulePath` with child_process.fork, handing it the segment and ring fds.
   * The child calls `attach()`. `options.stdio` may set the first three entries.
   */
  fork(modulePath: string, args: readonly string[] = [], options: ForkOptions & { reaper?: boolean } = {}): ChildProcess {
    if (typeof modulePath !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'modulePath must be a string');
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
    this.#track(child);
    return child;
  }

  /** Forks a cluster worker (call in the primary) with the ringmaster fds; it calls `attach()`. */
  clusterFork(cluster: Cluster, env: Record<string, string> = {}, options: { reaper?: boolean } = {}): ClusterWorker {
    const a = this.#attachEnv(options.reaper ?? true);
    cluster.setupPrimary({ stdio: ['inherit', 'inherit', 'inherit', 'ipc', ...a.stdio] as never });
    const w = cluster.fork({ ...env, [ATTACH_ENV]: a.env });
    this.#track(w.process);
    return w;
  }

  #track(child: ChildProcess): void {
    child.once('spawn', () => {
      if (child.pid) this.#children.set(child.pid, child);
    });
    child.once('exit', (code, signal) => {
      const pid = child.pid ?? -1;
      this.#children.delete(pid);
      let slotsCleaned = 0;
      let tornPages: ProcessExit['tornPages'] = [];
      if (!this.closed) {
        try {
          const pool = this.buffers.configured ? this.buffers : null;
          const key = (t: { fileId: number; block: number }) => `${t.fileId}:${t.block}`;
          const before = pool ? pool.stats() : null;
          slotsCleaned = this._native().cleanupProcess(pid);
          if (pool && before) {
            const st = pool.stats();
            // The pages this cleanup fenced (the list holds at most 64).
            if (st.tornTotal > before.tornTotal) {
              const old = new Set(before.tornPages.map(key));
              tornPages = st.tornPages.filter((t) => !old.has(key(t)));
            }
          }
        } catch {
          /* stopped meanwhile */
        }
      }
      const ev: ProcessExit = { pid, code, signal, slotsCleaned, tornPages };
      this.emit('exit', ev);
      if (tornPages.length) this.emit('pages-torn', { pid, pages: tornPages });
    });
  }

  /** Frees the slots of any attached process that is gone (e.g. not started by us). */
  sweepDeadProcesses(): number {
    return this._native().sweepDeadSlots();
  }

  /**
   * Orderly shutdown: stop accepting IO, wait (bounded) for in-flight IO, tell workers
   * ('stop' event in them), wait for them to exit (then SIGKILL), close the rings, unmap.
   */
  stop(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.#stopping) return this.#stopping;
    const timeoutMs = options.timeoutMs ?? 5000;
    this.#stopping = (async () => {
      const n = this._native();
      this._flushStaged();  // IO started before stop() was called goes out first
      n.setRunState(RUN_STOPPING);
      const deadline = Date.now() + timeoutMs;
      while (n.handlesInUse() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
      const exits = [...this.#children.values()].map((c) => new Promise<void>((resolve) => {
        if (c.exitCode !== null || c.signalCode !== null) return resolve();
        c.once('exit', () => resolve());
        // A child that is already dying has no channel: that is not the postmaster's error.
        if (c.connected) c.send({ ringmaster: 'stop' }, () => {});
      }));
      const timer = new Promise<void>((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref());
      await Promise.race([Promise.all(exits), timer]);
      for (const c of this.#children.values()) c.kill('SIGKILL');
      await Promise.all(exits);
      n.setRunState(RUN_STOPPED);
      // Completions already collected may still be on their way to this thread.
      await super.close({ timeoutMs: Math.max(1000, deadline - Date.now()) });
    })();
    return this.#stopping;
  }

  /** For the postmaster, close() is stop(). */
  override close(options: { timeoutMs?: number } = {}): Promise<void> {
    return this.stop(options);
  }
}

/** Embedded mode: a postmaster in this process, no children. `db.close()` shuts it down. */
export function open(options: StartOptions): Promise<Postmaster> {
  return Postmaster.start(options);
}
