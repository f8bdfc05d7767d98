import { ChildProcess, execFile, fork, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { NativeAddon, NativeSession } from '../core/native';
// The tests use the built package, exactly as users do (and as forked workers must).
// eslint-disable-next-line @typescript-eslint/no-var-requires
export const rm: typeof import('../core/index') = require('..');

/** Test hooks the addon exports that the package's own types (core/native.ts) leave out. */
interface AddonTestHooks {
  walDebugChooseRedoInNextAppend(session: NativeSession): boolean;
  debugDirSyncFault(session: NativeSession, rule: Record<string, unknown> | null): boolean;
  debugDirSyncFired(session: NativeSession): number;
  bpLockWord(session: NativeSession, bufferId: number): number;
}

/**
 * The addon, loaded by the package's one loader (dist/core/native.js, as the package
 * loads it): tests call native functions and test hooks the public API does not have.
 */
export const addon: NativeAddon & AddonTestHooks = require('../dist/core/native').native;

export const WORKER = path.join(__dirname, 'fixtures', 'worker.cjs');
/** The WAL tests' worker (fixtures/wal-worker.cjs). */
export const WAL_WORKER = path.join(__dirname, 'fixtures', 'wal-worker.cjs');
/** The repository root (the package, as a consumer's node_modules/ringmaster links it). */
export const REPO = path.resolve(__dirname, '..');

type Postmaster = import('../core/index').Postmaster;

export function tempDir(prefix = 'rm-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export const backend = process.env.RINGMASTER_BACKEND === 'threads' ? 'threads' : 'auto';

/** A forked worker driven by RPC messages (see fixtures/worker.cjs). */
export class Worker {
  readonly child: ChildProcess;
  #next = 1;
  #waiting = new Map<number, { resolve: (v: any) => void; reject: (e: any) => void }>();
  readonly events: string[] = [];
  readonly ready: Promise<void>;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;

  constructor(child: ChildProcess) {
    this.child = child;
    let ready!: () => void;
    this.ready = new Promise((r) => (ready = r));
    child.on('message', (m: any) => {
      if (m?.event) {
        this.events.push(m.event);
        if (m.event === 'ready') ready();
        return;
      }
      const w = this.#waiting.get(m?.id);
      if (!w) return;
      this.#waiting.delete(m.id);
      if (m.ok) w.resolve(m.result);
      else w.reject(Object.assign(new Error(m.error.message), { code: m.error.code, name: m.error.name }));
    });
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      for (const [, w] of this.#waiting) w.reject(new Error(`worker ${child.pid} exited (${code ?? signal})`));
      this.#waiting.clear();
      resolve({ code, signal });
    }));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Neither exited nor killed yet. */
  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  call<T = any>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.child.send({ id, cmd, args });
    });
  }

  kill9(): Promise<{ code: number | null; signal: string | null }> {
    this.child.kill('SIGKILL');
    return this.exited;
  }
}

/** fixtures/worker.cjs forked from `pm` and attached (see forkAttached); `env` adds to process.env. */
export function forkWorker(pm: import('../core/index').Postmaster, options: { reaper?: boolean; attach?: boolean; env?: Record<string, string> } = {}): Promise<Worker> {
  return forkAttached(pm, WORKER, {
    reaper: options.reaper ?? true,
    env: options.env ? { ...process.env, ...options.env } : undefined,
    attach: options.attach === false ? false : options.reaper === undefined ? {} : { reaper: options.reaper },
  });
}

/**
 * Forks `script` (an RPC fixture like fixtures/worker.cjs) from `pm`, waits for its 'ready'
 * and attaches it with `attach` as the attach arguments (`false`: stays unattached). `into`
 * (a test's list of workers, see killWorkers) gets it before anything is awaited, so a
 * fixture that fails to start is still cleaned up. `reaper` and `env` go to pm.fork().
 */
export async function forkAttached(
  pm: import('../core/index').Postmaster,
  script: string,
  options: { attach?: Record<string, unknown> | false; into?: Worker[]; reaper?: boolean; env?: NodeJS.ProcessEnv } = {},
): Promise<Worker> {
  const forkOptions: { reaper?: boolean; env?: NodeJS.ProcessEnv } = {};
  if (options.reaper !== undefined) forkOptions.reaper = options.reaper;
  if (options.env) forkOptions.env = options.env;
  const w = new Worker(pm.fork(script, [], forkOptions));
  options.into?.push(w);
  await w.ready;
  if (options.attach !== false) await w.call('attach', options.attach ?? {});
  return w;
}

/** For afterEach: SIGKILLs every worker in `workers` still running, waits for each exit, and empties the list. */
export async function killWorkers(workers: Worker[]): Promise<void> {
  for (const w of workers.splice(0)) if (w.alive) await w.kill9();
}

/**
 * For afterEach with fixtures that stay up through pm.stop() (they do not exit on 'stop'):
 * asks every worker still running to exit, waits for each, and empties the list.
 */
export async function exitWorkers(workers: Worker[]): Promise<void> {
  for (const w of workers.splice(0)) {
    if (w.alive) {
      if (w.child.connected) await w.call('exit').catch(() => {});
      await w.exited;
    }
  }
}

export async function startPm(dir: string, extra: Record<string, unknown> = {}): Promise<import('../core/index').Postmaster> {
  return rm.Postmaster.start({ dataDir: path.join(dir, 'data'), backend, ...extra } as any);
}

/** The WAL the WAL tests start with: 64 KiB segments (a few records cross one) and a 64 KiB buffer. */
export const SMALL_WAL = { segmentSize: 64 << 10, bufferSize: 64 << 10 };

/** Starts a postmaster on `dataDir` with SMALL_WAL changed by `wal`, and the other start options `extra`. */
export function startWithWal(dataDir: string, wal: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<Postmaster> {
  return rm.Postmaster.start({ dataDir, backend, wal: { ...SMALL_WAL, ...wal }, ...extra } as any);
}

/** Forks fixtures/wal-worker.cjs attached to `pm` (into `workers`, for killWorkers); `env` adds to this process's. */
export function forkWalWorker(pm: Postmaster, workers: Worker[], env?: Record<string, string>): Promise<Worker> {
  return forkAttached(pm, WAL_WORKER, { env: env ? { ...process.env, ...env } : undefined, into: workers });
}

/**
 * The end of a multi-process test, in this order: its workers SIGKILLed (and waited for),
 * the fault rule it armed cleared (`clearFaults`; best effort, the postmaster may be
 * stopped already), the postmaster stopped, the scratch directory removed.
 */
export async function teardown(parts: { workers?: Worker[]; pm?: Postmaster | null; dir?: string | null; clearFaults?: boolean }): Promise<void> {
  if (parts.workers) await killWorkers(parts.workers);
  const pm = parts.pm;
  if (pm) {
    if (parts.clearFaults) {
      try {
        pm._native().debugSetFault(0, null);
      } catch {
        /* stopped */
      }
    }
    await pm.stop();
  }
  if (parts.dir) removeDir(parts.dir);
}

/**
 * How a strict TypeScript user compiles against the package (Node16 resolution, so the
 * "exports" map and its "types" conditions apply). `tsc` is the typescript module, passed
 * in so that only the tests that compile load it.
 */
export function strictConsumerOptions(tsc: typeof import('typescript')): import('typescript').CompilerOptions {
  return {
    module: tsc.ModuleKind.Node16,
    moduleResolution: tsc.ModuleResolutionKind.Node16,
    target: tsc.ScriptTarget.ES2022,
    strict: true,
    noEmit: true,
    types: ['node'],
    typeRoots: [path.join(REPO, 'node_modules', '@types')],
  };
}

/**
 * A consumer project that depends on this repository as a user's project depends on the
 * package: `<dir>/app` with node_modules/ringmaster -> the repo (like `npm link`).
 * Remove `dir` when done.
 */
export function consumerApp(prefix: string): { dir: string; app: string } {
  const dir = tempDir(prefix);
  const app = path.join(dir, 'app');
  mkdirSync(path.join(app, 'node_modules'), { recursive: true });
  symlinkSync(REPO, path.join(app, 'node_modules', 'ringmaster'), 'dir');
  writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  return { dir, app };
}

/** Resolves true if `p` settles within `ms`; never a timing assertion, only "did it happen yet". */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let done = false;
  p.then(() => (done = true), () => (done = true));
  const end = Date.now() + ms;
  while (!done && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  return done;
}

export async function waitFor(pred: () => boolean | Promise<boolean>, ms = 10000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

/** A valid buffer-pool page of `size` bytes: fill byte `v` after the 16-byte header, checksum set. */
export function pageImage(v: number, size = 4096): Buffer {
  const p = Buffer.alloc(size, v);
  p.fill(0, 0, 16);
  rm.setPageChecksum(p);
  return p;
}

/**
 * A crash host: a fixture that starts a postmaster and its workers in a process group of
 * its own and reports `{ ack }` / `{ error }` messages, so a test can cut power to all of it.
 */
export function forkCrashHost(script: string, args: string[]): ChildProcess {
  return fork(script, args, { detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** Resolves after `n` acks (each handed to `onAck`); rejects on an `{ error }` or after `timeoutMs`. */
export function untilAcks(h: ChildProcess, n: number, onAck: (ack: any) => void, timeoutMs = 20000): Promise<void> {
  let count = 0;
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${count} acks within ${timeoutMs} ms`)), timeoutMs);
    h.on('message', (m: any) => {
      if (m?.error) {
        clearTimeout(timer);
        reject(new Error(m.error));
      }
      if (m?.ack) {
        onAck(m.ack);  // acks after the n-th count too: they are just as durable
        if (++count === n) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
  });
}

/**
 * SIGKILL of the host's whole process group at once (a power cut); resolves when the host
 * and every other process of its group are gone. A killed worker still exiting holds the
 * data directory's lock, so a restart right after the host alone is gone can be refused.
 */
export async function powerCut(h: ChildProcess): Promise<void> {
  const exited = h.exitCode !== null || h.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => h.once('exit', () => r()));
  try {
    process.kill(-h.pid!, 'SIGKILL');
  } catch {
    /* gone */
  }
  await exited;
  // Bounded: an orphan's zombie stays in the group until its new parent reaps it.
  for (let i = 0; i < 500; i++) {
    try {
      process.kill(-h.pid!, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Runs the power-cut soak (soak/powercut.cjs) with `args` and resolves with its exit status,
 * its result (the JSON on its last stdout line) and its stderr. `env` adds to this process's
 * environment (a key set to undefined is removed). A run that kept its files is cleaned up
 * unless `keepOnFailure` and it failed (a loss to look into: the path is in the result).
 */
export function runPowercutSoak<R extends { kept: string | null; failure: string | null }>(args: string[], timeoutMs: number,
  options: { env?: Record<string, string | undefined>; keepOnFailure?: boolean } = {}): Promise<{ status: number | null; result: R; stderr: string }> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, ...options.env };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'soak', 'powercut.cjs'), '--no-results', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: env as NodeJS.ProcessEnv });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(t);
      const last = out.trim().split('\n').pop() ?? '{}';
      let result: R;
      try {
        result = JSON.parse(last);
      } catch {
        return reject(new Error(`soak printed no result (exit ${status}):\n${err.slice(-3000)}`));
      }
      if (result.kept && !(options.keepOnFailure && result.failure)) rmSync(result.kept, { recursive: true, force: true });
      resolve({ status, result, stderr: err });
    });
  });
}

/**
 * Runs a fixture script that ends by printing one JSON report line (the misuse sequences),
 * and returns that report with the exit code; no report is an error naming `what` and the
 * script's last output.
 */
export function runFixtureReport(script: string, args: string[], what: string, options: { timeoutMs: number; env?: Record<string, string> }): Promise<{ report: any; code: number | null }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, ...args], { timeout: options.timeoutMs, maxBuffer: 1 << 24, env: { ...process.env, ...options.env } }, (e, out, err) => {
      const code = e ? (typeof e.code === 'number' ? e.code : null) : 0;
      try {
        resolve({ report: JSON.parse(out.trim().split('\n').pop() ?? ''), code });
      } catch {
        reject(new Error(`${what}: no report (exit ${code}): ${out.slice(-2000)} ${err.slice(-2000)}`));
      }
    });
  });
}
