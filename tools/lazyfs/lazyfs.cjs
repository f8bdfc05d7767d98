// LazyFS mounts for power-cut tests (soak/powercut.cjs, test/long/powercut.test.ts).
//
// LazyFS is a FUSE file system that keeps every write in its own cache until
// fsync/fdatasync; `clear-cache` drops everything unsynced, as a power failure would
// (README.md beside this file). This module builds it (build.sh), mounts it over a
// directory of real files (`modules=subdir`), sends fault commands through its fifo and
// waits for them to take effect, and unmounts it, also after LazyFS crashed itself
// (torn-op, torn-seq) or the caller failed. It never leaves a FUSE mount behind: every
// mount is unmounted at process exit, and mounts left by a process that died (SIGKILL)
// are found by their owner file and unmounted by the next mount().
//
//   const lazyfs = require('../tools/lazyfs/lazyfs.cjs');
//   const built = lazyfs.ensureBuilt();         // { bin } or { skipped: 'why' }
//   const m = await lazyfs.mount({ bin: built.bin });
//   ... files under m.mnt ...
//   await m.clearCache();                        // the power cut (kill writers first)
//   await m.tornOp(m.rootPath(file), { parts: 2, persist: [1] });  // next write to file is torn, then LazyFS dies
//   await m.waitExit(5000); await m.remount();   // after a LazyFS crash
//   await m.unmount();
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

// Short on purpose: LazyFS reads a fault command with one read() of at most 100 bytes,
// and torn-op/torn-seq name their file by its full path under the real directory.
const PREFIX = 'rmlz-';
const MAX_COMMAND = 99;  // bytes, without the newline
const BUILD_SCRIPT = path.join(__dirname, 'build.sh');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Builds LazyFS (or finds the cached build). Returns { bin, log } or { skipped, log }:
 * `skipped` says why this machine cannot run it (build.sh exit status 3). A build that
 * fails for any other reason throws with its log: that is a real error, not a skip.
 * Synchronous: a cold build takes about a minute (plus apt-get the first time).
 */
function ensureBuilt(options = {}) {
  const args = [BUILD_SCRIPT];
  if (options.buildDir) args.push(options.buildDir);
  const r = spawnSync('bash', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 20 * 60 * 1000 });
  return builtResult(r.status, r.signal, r.stdout, r.stderr, r.error);
}

function builtResult(status, signal, stdout, stderr, error) {
  const last = (stdout || '').trim().split('\n').pop() || '';
  const log = `${stderr || ''}`.trim();
  if (status === 0 && last && fs.existsSync(last)) return { bin: last, log };
  if (status === 3) return { skipped: last.replace(/^skipped: /, ''), log };
  throw new Error(`LazyFS build failed (exit ${status ?? signal}${error ? `, ${error.message}` : ''}):\n${log.slice(-4000)}`);
}

/** ensureBuilt() without blocking the event loop (a test runner's worker stays responsive). */
function ensureBuiltAsync(options = {}) {
  return new Promise((resolve, reject) => {
    const args = [BUILD_SCRIPT];
    if (options.buildDir) args.push(options.buildDir);
    const child = spawn('bash', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const t = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20 * 60 * 1000);
    child.on('error', (e) => { clearTimeout(t); reject(e); });
    child.on('close', (status, signal) => {
      clearTimeout(t);
      try {
        resolve(builtResult(status, signal, out, err, null));
      } catch (e) {
        reject(e);
      }
    });
  });
}

/** Why FUSE mounts cannot work for this process, or null. Cheap: no build, no mount. */
function fuseUnavailable() {
  if (process.platform !== 'linux') return 'LazyFS needs Linux';
  if (!fs.existsSync('/dev/fuse')) return 'no /dev/fuse on this machine';
  if (process.getuid() !== 0) {
    try {
      fs.accessSync('/dev/fuse', fs.constants.R_OK | fs.constants.W_OK);
    } catch {
      const mode = (fs.statSync('/dev/fuse').mode & 0o777).toString(8);
      return `/dev/fuse (mode ${mode}) is not readable and writable by uid ${process.getuid()}: FUSE mounts need root here`;
    }
  }
  return null;
}

function isMounted(mnt) {
  let text;
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return false;
  }
  const want = mnt.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
  return text.split('\n').some((l) => l.split(' ')[4] === want);
}

function pidAlive(pid) {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

// Unmount, whatever state the daemon is in: a clean unmount first, then a lazy one
// (busy mount, or a daemon that died: "Transport endpoint is not connected").
function unmountSync(mnt) {
  if (!isMounted(mnt)) return true;
  const tries = [['fusermount3', ['-u', mnt]], ['fusermount3', ['-u', '-z', mnt]], ['umount', ['-l', mnt]], ['fusermount', ['-u', '-z', mnt]]];
  for (const [cmd, args] of tries) {
    spawnSync(cmd, args, { stdio: 'ignore', timeout: 10000 });
    if (!isMounted(mnt)) return true;
  }
  return !isMounted(mnt);
}

// Whether pid is the LazyFS daemon of mount directory `dir`: it was started with its cwd
// there. A pid read back from a file may since have been given to an unrelated process
// (pids are reused: pid_max is often 32768), and this runs as root: never kill a pid on
// the file's word alone.
function isDaemonOf(pid, dir) {
  if (!pid) return false;
  try {
    return fs.readlinkSync(`/proc/${pid}/cwd`) === fs.realpathSync(dir);
  } catch {
    return false;  // gone, or not ours to look at
  }
}

function killDaemonSync(pid, dir) {
  if (!isDaemonOf(pid, dir)) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

/**
 * Unmounts LazyFS mounts left under `baseDir` (default /tmp) by processes that
 * died without cleaning up (their owner pid is gone), and removes their directories
 * (unless mounted with keepDir).
 * Returns the directories cleaned.
 */
// /tmp when usable (short paths: see MAX_COMMAND), else os.tmpdir().
function defaultBase() {
  try {
    fs.accessSync('/tmp', fs.constants.W_OK | fs.constants.X_OK);
    return '/tmp';
  } catch {
    return os.tmpdir();
  }
}

function cleanupStale(baseDir = defaultBase()) {
  const cleaned = [];
  let entries = [];
  try {
    entries = fs.readdirSync(baseDir).filter((n) => n.startsWith(PREFIX));
  } catch {
    return cleaned;
  }
  for (const name of entries) {
    const dir = path.join(baseDir, name);
    let owner = 0;
    let daemon = 0;
    try {
      owner = Number(fs.readFileSync(path.join(dir, 'owner.pid'), 'utf8'));
      daemon = Number(fs.readFileSync(path.join(dir, 'lazyfs.pid'), 'utf8'));
    } catch {
      /* half-made */
    }
    if (owner && pidAlive(owner)) continue;
    // A file system on a loop device backed by a file on this mount (ext4-on-lazyfs.cjs)
    // goes first: while it holds the image, LazyFS cannot be unmounted.
    if (fs.existsSync(path.join(dir, 'ext4.json'))) require('./ext4-on-lazyfs.cjs').releaseStale(dir);
    const mnt = path.join(dir, 'mnt');
    if (!isMounted(mnt) && !isDaemonOf(daemon, dir)) continue;  // e.g. kept for inspection by a failed run
    if (unmountSync(mnt)) {
      killDaemonSync(daemon, dir);
      // A mount made with keepDir keeps its files (a failed run's evidence).
      if (!fs.existsSync(path.join(dir, 'keep'))) fs.rmSync(dir, { recursive: true, force: true });
      cleaned.push(dir);
    }
  }
  return cleaned;
}

const live = new Set();
let exitHook = false;
function installExitHook() {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const m of live) m._unmountSync();
  });
}

class LazyFsMount {
  constructor(bin, dir, cacheSize, keepDir, logAll) {
    this.logAll = logAll;
    this.bin = bin;
    this.dir = dir;
    this.mnt = path.join(dir, 'mnt');
    this.root = path.join(dir, 'root');
    this.config = path.join(dir, 'lazyfs.toml');
    this.fifo = path.join(dir, 'faults.fifo');
    this.doneFifo = path.join(dir, 'faults-done.fifo');
    this.logFile = path.join(dir, 'lazyfs.log');
    this.cacheSize = cacheSize;
    this.keepDir = keepDir;
    this.child = null;
    this.pid = 0;
    this.exited = null;     // promise: the daemon's exit
    this.crashes = 0;       // exits we did not ask for (torn-op, torn-seq, crash faults)
    this._stopping = false;
    this._done = null;      // socket on the completion fifo
    this._lines = [];
    this._waiters = [];
    this._logOffset = 0;
    this._queue = Promise.resolve();
    // Synchronous functions run before every unmount (also the exit hook's): users of the
    // mount that must let go of it first, e.g. a loop device on an image here.
    this.holders = [];
  }

  _releaseHolders() {
    for (const h of this.holders) {
      try {
        h();
      } catch {
        /* the unmount reports what is still busy */
      }
    }
  }

  /** Path under the real directory of a path under the mount: fault commands name files that way. */
  rootPath(p) {
    const rel = path.isAbsolute(p) ? path.relative(this.mnt, p) : p;
    if (rel.startsWith('..')) throw new Error(`${p} is not under ${this.mnt}`);
    return path.join(this.root, rel);
  }

  get alive() {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  async _start() {
    fs.writeFileSync(this.config, [
      '[faults]',
      `fifo_path="${this.fifo}"`,
      `fifo_path_completed="${this.doneFifo}"`,
      '[cache]',
      'apply_eviction=false',
      '[cache.simple]',
      `custom_size="${this.cacheSize}"`,
      'blocks_per_page=1',
      '[filesystem]',
      `log_all_operations=${this.logAll ? 'true' : 'false'}`,
      `logfile="${this.logFile}"`,
      '',
    ].join('\n'));
    // LazyFS truncates its log when it starts: keep the previous one for a look.
    this._starts = (this._starts ?? 0) + 1;
    if (fs.existsSync(this.logFile)) fs.renameSync(this.logFile, `${this.logFile}.${this._starts - 1}`);
    this._logOffset = 0;
    const out = fs.openSync(path.join(this.dir, 'lazyfs.out'), 'a');
    // Its own process group: a test that SIGKILLs its process group never takes LazyFS with it.
    // The config path is given relative to the daemon's cwd: LazyFS takes a config path
    // containing "-o" (any case, e.g. /tmp/rmlz-oX3.../) for a missing one.
    const child = spawn(this.bin, [this.mnt, '--config-path', path.basename(this.config), '-o', 'modules=subdir', '-o', `subdir=${this.root}`, '-f'], {
      detached: true, cwd: this.dir, stdio: ['ignore', out, out],
    });
    fs.closeSync(out);
    this.child = child;
    this.pid = child.pid;
    fs.writeFileSync(path.join(this.dir, 'lazyfs.pid'), String(child.pid));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      if (!this._stopping) this.crashes++;
      resolve({ code, signal });
    }));
    child.unref();
    const deadline = Date.now() + 30000;
    while (!(isMounted(this.mnt) && this._logHas('running LazyFS'))) {
      if (!this.alive) throw new Error(`LazyFS exited while mounting (${this.child.exitCode ?? this.child.signalCode}): ${this._tail()}`);
      if (Date.now() > deadline) throw new Error(`LazyFS did not mount ${this.mnt} within 30 s: ${this._tail()}`);
      await sleep(20);
    }
    // Read end of the completion fifo, opened read-write so that it never sees EOF while
    // LazyFS restarts (and LazyFS's blocking open of its write end returns at once).
    const fd = fs.openSync(this.doneFifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
    const sock = new net.Socket({ fd, readable: true, writable: false });
    sock.setEncoding('utf8');
    let buf = '';
    sock.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this._lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      this._wake();
    });
    sock.on('error', () => {});
    sock.unref();
    this._done = sock;
  }

  _wake() {
    const w = this._waiters;
    this._waiters = [];
    for (const f of w) f();
  }

  _readLog() {
    try {
      return fs.readFileSync(this.logFile, 'utf8').slice(this._logOffset);
    } catch {
      return '';
    }
  }
  _logHas(s) {
    return this._readLog().includes(s);
  }
  _tail() {
    let t = this._readLog();
    try {
      t += fs.readFileSync(path.join(this.dir, 'lazyfs.out'), 'utf8');
    } catch {
      /* none */
    }
    return t.split('\n').slice(-8).join('\n');
  }

  // One command at a time: LazyFS takes whatever one read() of its fifo returns as one
  // command, so two commands written back to back could be read as one.
  _command(line, waitFor, timeoutMs) {
    if (Buffer.byteLength(line) > MAX_COMMAND) {
      return Promise.reject(new Error(`LazyFS command longer than ${MAX_COMMAND} bytes (LazyFS would cut it and misread the rest): ${line}; use a shorter path (mount({ baseDir }))`));
    }
    const run = async () => {
      if (!this.alive) throw new Error(`LazyFS is not running (command ${line})`);
      const fromLog = this._readLog().length;
      let fd;
      try {
        fd = fs.openSync(this.fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
      } catch (e) {
        // ENXIO: nobody reads the fifo. LazyFS has died (a crash fault fired) and its exit
        // may not have been seen yet: give it a moment, so callers can tell by `alive`.
        if (e.code === 'ENXIO' && (await this.waitExit(2000))) throw new Error(`LazyFS exited before command ${line}`);
        throw new Error(`LazyFS fifo ${this.fifo}: ${e.code} (is LazyFS running?)`);
      }
      try {
        fs.writeSync(fd, `${line}\n`);
      } finally {
        fs.closeSync(fd);
      }
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const r = waitFor(fromLog);
        if (r) return r;
        if (!this.alive) throw new Error(`LazyFS exited during command ${line}: ${this._tail()}`);
        if (Date.now() > deadline) throw new Error(`LazyFS did not complete ${line} within ${timeoutMs} ms: ${this._tail()}`);
        await new Promise((resolve) => {
          const t = setTimeout(resolve, 5);
          this._waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    };
    const p = this._queue.then(run, run);
    this._queue = p.catch(() => {});
    return p;
  }

  /** Drops every unsynced byte (the power cut) and resolves once LazyFS says it is done. */
  clearCache({ timeoutMs = 60000 } = {}) {
    return this._command('lazyfs::clear-cache', () => {
      const i = this._lines.indexOf('finished::clear-cache');
      if (i < 0) return null;
      this._lines.splice(i, 1);
      return true;
    }, timeoutMs);
  }

  _configured(kind) {
    return (fromLog) => {
      const log = this._readLog().slice(fromLog);
      if (log.includes(`configured successfully 'lazyfs::${kind}`)) return true;
      if (/INVALID/.test(log)) throw new Error(`LazyFS refused the ${kind} fault: ${log.split('\n').filter((l) => /INVALID|faults.worker/.test(l)).join(' | ')}`);
      return null;
    };
  }

  /**
   * Arms a torn write: the next write to `file` (a path under `root`: use rootPath) is cut
   * into `parts` equal parts (or `partsBytes`), only the parts in `persist` (1-based)
   * reach the disk, and LazyFS then dies (everything unsynced is lost with it).
   */
  tornOp(file, { parts = 2, partsBytes, persist = [1], timeoutMs = 10000 } = {}) {
    const spec = partsBytes ? `parts_bytes=${partsBytes.join(',')}` : `parts=${parts}`;
    return this._command(`lazyfs::torn-op::file=${file}::persist=${persist.join(',')}::${spec}`, this._configured('torn-op'), timeoutMs);
  }

  /**
   * Arms reordered unsynced writes: in the first run of writes to `file` without an fsync
   * between them (a run counts from its second write), only the writes numbered in
   * `persist` reach the disk; LazyFS dies after the last of them.
   */
  tornSeq(file, { persist = [1, 3], op = 'write', timeoutMs = 10000 } = {}) {
    return this._command(`lazyfs::torn-seq::op=${op}::file=${file}::persist=${persist.join(',')}`, this._configured('torn-seq'), timeoutMs);
  }

  /** Writes every unsynced byte through to the real files (without fsync). */
  cacheCheckpoint({ timeoutMs = 30000 } = {}) {
    return this._command('lazyfs::cache-checkpoint', (fromLog) => (this._readLog().slice(fromLog).includes('checkpoint is done') ? true : null), timeoutMs);
  }

  /** Resolves true once the daemon has exited (a crash fault fired), false after `ms`. */
  async waitExit(ms) {
    if (!this.alive) return true;
    let t;
    const r = await Promise.race([this.exited.then(() => true), new Promise((resolve) => { t = setTimeout(() => resolve(false), ms); })]);
    clearTimeout(t);
    return r;
  }

  _closeFifo() {
    if (this._done) {
      this._done.destroy();
      this._done = null;
    }
    this._lines = [];
  }

  _unmountSync() {
    this._stopping = true;
    this._releaseHolders();
    this._closeFifo();
    const ok = unmountSync(this.mnt);
    this.killDaemon();
    return ok;
  }

  async _stop() {
    this._stopping = true;
    this._releaseHolders();
    this._closeFifo();
    if (!unmountSync(this.mnt)) throw new Error(`could not unmount ${this.mnt} (still busy?)`);
    // After the unmount the daemon leaves its loop by itself; a crashed one is gone already.
    if (!(await this.waitExit(5000))) {
      this.killDaemon();
      await this.waitExit(5000);
    }
  }

  /**
   * SIGKILLs this mount's daemon if it still runs (the power-cut soak's 'lazyfs-crash'
   * fault, and stopping one that hangs). Through the child process: Node knows whether
   * that child has exited, so a pid since reused by another process is never signalled.
   */
  killDaemon() {
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }

  /**
   * Unmounts (after a crash fault, or to drop armed faults and LazyFS's cache) and mounts
   * again over the same real directory: only what reached it survives.
   */
  async remount() {
    await this._stop();
    this._stopping = false;
    await this._start();
  }

  /** Unmounts and removes the directory (the real files too, unless keepDir). */
  async unmount() {
    live.delete(this);
    try {
      await this._stop();
    } finally {
      if (!this.keepDir && !isMounted(this.mnt)) fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/**
 * Mounts LazyFS in a new directory (`dir`, default a fresh `rmlz-*` under `baseDir`,
 * default /tmp: fault commands must stay under 100 bytes, paths included): the files live in dir/root, the mount is dir/mnt. Stale
 * mounts of dead processes are cleaned first.
 */
async function mount(options = {}) {
  const bin = options.bin ?? ensureBuilt().bin;
  if (!bin) throw new Error('LazyFS is not built: use ensureBuilt() and check `skipped`');
  const base = options.baseDir ?? defaultBase();
  cleanupStale(base);
  const dir = options.dir ?? fs.mkdtempSync(path.join(base, PREFIX));
  fs.mkdirSync(path.join(dir, 'mnt'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'root'), { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(dir, 'owner.pid'), String(process.pid));
  if (options.keepDir) fs.writeFileSync(path.join(dir, 'keep'), '');
  // logAllOperations: LazyFS logs every operation it gets (slow; for debugging a test).
  const m = new LazyFsMount(bin, dir, options.cacheSize ?? '128mb', options.keepDir ?? false, options.logAllOperations ?? process.env.LAZYFS_LOG_ALL === '1');
  installExitHook();
  live.add(m);
  try {
    await m._start();
  } catch (e) {
    live.delete(m);
    m._unmountSync();
    if (!m.keepDir) fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return m;
}

module.exports = { ensureBuilt, ensureBuiltAsync, fuseUnavailable, mount, cleanupStale, isMounted, unmountSync, LazyFsMount, PREFIX };
