// A real ext4 between the system under test and LazyFS, for power cuts below a real file
// system (soak/powercut.cjs --fs ext4-lazyfs, test/long/ext4-powercut.test.ts).
//
// LazyFS (lazyfs.cjs) is a FUSE file system: run on it directly, a test sees what FUSE does
// with its writes and syncs, not what a disk file system does (an O_DIRECT | O_DSYNC write
// that io_uring issues asynchronously reaches LazyFS without a sync, for one). Here an image
// file on a LazyFS mount is attached to a loop device, formatted ext4 and mounted; the files
// under test live on that ext4. The loop device declares a volatile write cache and no FUA,
// so the block layer sends it every flush ext4 asks for (REQ_PREFLUSH, and FUA emulated as a
// flush after the write), and the loop driver turns each into an fsync of the image file: an
// fsync on LazyFS. Whatever ext4 wrote but never flushed is therefore only in LazyFS's cache,
// which a power cut drops: the disk comes back as of its last completed flush, and the next
// mount replays ext4's journal over that, as after a real power cut.
//
//   const ext4 = require('../tools/lazyfs/ext4-on-lazyfs.cjs');
//   const why = ext4.unavailable();              // null, or why it cannot run here
//   const d = await ext4.mount({ bin });         // ext4 mounted at d.mnt
//   ... files under d.mnt; kill everything that writes there, then:
//   await d.powerCut();                          // LazyFS SIGKILLed: every unflushed byte is gone
//   await d.remount();                           // LazyFS back, loop attached, ext4 mounted (journal replayed)
//   await d.unmount();
//
// The power cut is the LazyFS daemon's SIGKILL, not clear-cache: ext4 keeps running after its
// writers are gone (journal commits, writeback), and a flush landing between a clear-cache
// and the daemon's end would make durable a journal commit block whose journal blocks were
// just dropped, which no disk does. A killed daemon answers nothing more: every later IO of
// the old ext4 fails, and what LazyFS had not been told to sync is gone at one instant.
//
// Loop devices and mounts are global: free devices are taken with `losetup -f`, and only
// devices backed by this mount's own image are ever detached. The state lives in
// `<dir>/ext4.json` (owner pid, loop device, image, mount point); the ext4 mount and the loop
// device are released before LazyFS is unmounted (also at process exit, through LazyFS's
// exit hook), and those of an owner that died (SIGKILL) are released by the next mount() or
// lazyfs.cleanupStale(), which find them by path: an ext4 mounted on `<dir>/ext4`, a loop
// device whose backing file is under `<dir>/mnt/`. Nothing here kills a process.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const lazyfs = require('./lazyfs.cjs');

const STATE = 'ext4.json';
const TOOLS = ['losetup', 'mkfs.ext4', 'mount', 'umount'];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function run(cmd, args, { timeout = 60000 } = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout });
  return { ok: r.status === 0, out: (r.stdout || '').trim(), err: `${(r.stderr || '').trim()}${r.error ? ` ${r.error.message}` : ''}${r.signal ? ` (${r.signal})` : ''}`, status: r.status };
}
function must(cmd, args, opts) {
  const r = run(cmd, args, opts);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.err}`);
  return r.out;
}

function hasTool(name) {
  // /usr/sbin may be missing from a user's PATH: look there too.
  return run('sh', ['-c', `command -v ${name} || test -x /usr/sbin/${name} || test -x /sbin/${name}`]).ok;
}

/** Why ext4-on-LazyFS cannot run for this process, or null. Cheap: no build, no mount. */
function unavailable() {
  if (process.platform !== 'linux') return 'ext4 on a loop device needs Linux';
  if (process.getuid() !== 0) return `loop devices and ext4 mounts need root (uid ${process.getuid()})`;
  if (!fs.existsSync('/dev/loop-control')) return 'no /dev/loop-control (no loop device driver here)';
  const missing = TOOLS.filter((t) => !hasTool(t));
  if (missing.length) return `missing ${missing.join(', ')} (util-linux, e2fsprogs)`;
  return lazyfs.fuseUnavailable();
}

// Mount points in /proc/self/mountinfo: [{ mnt, fstype, source }].
function mounts() {
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const unescape = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
  return text.split('\n').filter(Boolean).map((l) => {
    const f = l.split(' ');
    const dash = f.indexOf('-');
    return { mnt: unescape(f[4]), fstype: f[dash + 1], source: unescape(f[dash + 2] || '') };
  });
}

// Loop devices and their backing files: [{ dev: '/dev/loopN', backing }].
function loops() {
  const out = [];
  let names = [];
  try {
    names = fs.readdirSync('/sys/block').filter((n) => /^loop\d+$/.test(n));
  } catch {
    return out;
  }
  for (const n of names) {
    try {
      const backing = fs.readFileSync(`/sys/block/${n}/loop/backing_file`, 'utf8').trim();
      out.push({ dev: `/dev/${n}`, backing });
    } catch {
      /* not attached */
    }
  }
  return out;
}

// Unmounts every ext4 mounted on `mnt` (a clean umount first, which flushes when the disk
// still answers; a lazy one when it is busy or the disk is gone).
function unmountExt4Sync(mnt) {
  for (let i = 0; i < 8 && mounts().some((m) => m.mnt === mnt && m.fstype === 'ext4'); i++) {
    if (!run('umount', [mnt], { timeout: 30000 }).ok) run('umount', ['-l', mnt], { timeout: 30000 });
  }
  return !mounts().some((m) => m.mnt === mnt && m.fstype === 'ext4');
}

// Detaches the loop devices backed by a file under `under` (this mount's own image). A
// device still in use (a lazily unmounted ext4 not yet released) is marked to detach
// itself when the last user goes (LOOP_CLR_FD sets autoclear then).
function detachLoopsSync(under) {
  for (const l of loops()) {
    if (l.backing.startsWith(`${under}/`)) run('losetup', ['-d', l.dev]);
  }
}

/**
 * Releases the ext4 mount and loop devices of a stale LazyFS directory `dir` (its owner has
 * died). Called by lazyfs.cleanupStale() for a directory holding ext4.json, before it
 * unmounts LazyFS; safe when nothing is left.
 */
function releaseStale(dir) {
  unmountExt4Sync(path.join(dir, 'ext4'));
  detachLoopsSync(path.join(dir, 'mnt'));
}

class Ext4OnLazyFs {
  constructor(m, options) {
    this.lazyfs = m;
    this.dir = m.dir;
    this.mnt = path.join(m.dir, 'ext4');        // on the real file system, beside LazyFS's dirs
    this.image = path.join(m.mnt, 'disk.img');  // on LazyFS
    this.imageSize = options.imageSize;
    this.mountOptions = options.mountOptions;
    this.loop = null;
    this.mkfsOptions = options.mkfsOptions;
    this.attaches = 0;
  }

  get alive() {
    return this.lazyfs.alive;
  }
  /** Promise of the LazyFS daemon's exit (the current one's). */
  get exited() {
    return this.lazyfs.exited;
  }
  /** LazyFS exits nobody asked for (it crashes by itself now and then). */
  get crashes() {
    return this.lazyfs.crashes;
  }
  waitExit(ms) {
    return this.lazyfs.waitExit(ms);
  }
  /** SIGKILLs the LazyFS daemon (the cut itself; powerCut() waits for it and releases the devices). */
  killDaemon() {
    this.lazyfs.killDaemon();
  }

  _writeState() {
    const tmp = path.join(this.dir, `${STATE}.tmp`);
    fs.writeFileSync(tmp, JSON.stringify({ owner: process.pid, loop: this.loop, image: this.image, mnt: this.mnt }));
    fs.renameSync(tmp, path.join(this.dir, STATE));
  }

  _attachLoop() {
    this.loop = must('losetup', ['-f', '--show', this.image]);
    this._writeState();
    this.attaches++;
  }

  async _format() {
    must('truncate', ['-s', this.imageSize, this.image]);
    try {
      this._attachLoop();
    } catch (e) {
      // Root with /dev/loop-control and still no loop device (a container without them,
      // all taken): the machine cannot run this, which is a skip, not a failure.
      e.skipped = `no loop device could be attached: ${e.message.split('\n')[0]}`;
      throw e;
    }
    // No discard (LazyFS has no hole punching) and no lazy init: the inode tables and the
    // journal are written now, not by a kernel thread in the middle of a round. mkfs
    // flushes the device at its end: the empty file system is durable.
    must('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=0,lazy_journal_init=0', ...this.mkfsOptions, this.loop], { timeout: 120000 });
    this._mountExt4();
  }

  _mountExt4() {
    fs.mkdirSync(this.mnt, { recursive: true, mode: 0o700 });
    must('mount', ['-t', 'ext4', ...(this.mountOptions ? ['-o', this.mountOptions] : []), this.loop, this.mnt]);
  }

  // The ext4 unmounted (cleanly if the disk still answers), this mount's loop devices detached.
  _releaseSync() {
    const ok = unmountExt4Sync(this.mnt);
    detachLoopsSync(this.lazyfs.mnt);
    this.loop = null;
    try {
      this._writeState();
    } catch {
      /* the directory is going */
    }
    return ok;
  }

  /**
   * The power cut: SIGKILLs LazyFS (every byte ext4 wrote and the "disk" was not told to
   * flush is gone, at once), then lets go of the dead ext4 and the loop device. Kill the
   * processes that write to the ext4 first (or not, to cut under them: their IO then fails).
   */
  async powerCut() {
    this.lazyfs.killDaemon();
    if (!(await this.lazyfs.waitExit(10000))) throw new Error('LazyFS did not exit after SIGKILL within 10 s');
    this._releaseSync();
  }

  /**
   * Mounts again after a power cut (or LazyFS crashing by itself): LazyFS over the same real
   * files, a loop device on the image, ext4 mounted (it replays its journal). Only what was
   * flushed before the cut is there. Called with LazyFS alive, it is a clean restart.
   */
  async remount() {
    this._releaseSync();
    // A lazily unmounted ext4 may still hold the old loop device (and so LazyFS busy) for a
    // moment after its last user is gone.
    for (let i = 0; i < 50 && loops().some((l) => l.backing.startsWith(`${this.lazyfs.mnt}/`)); i++) await sleep(20);
    await this.lazyfs.remount();
    this._attachLoop();
    this._mountExt4();
  }

  /** Unmounts ext4, detaches the loop device, unmounts LazyFS (and removes the directory unless keepDir). */
  async unmount() {
    this._releaseSync();
    for (let i = 0; i < 50 && loops().some((l) => l.backing.startsWith(`${this.lazyfs.mnt}/`)); i++) await sleep(20);
    await this.lazyfs.unmount();
  }
}

/**
 * A throwaway mount and unmount: null when ext4 on LazyFS works here, else why not (the
 * cheap checks of unavailable(), then what the attempt ran into). `bin`: LazyFS's binary.
 */
async function probe(bin) {
  const why = unavailable();
  if (why) return why;
  try {
    const d = await mount({ bin, imageSize: '16M', cacheSize: '64mb' });
    await d.unmount();
    return null;
  } catch (e) {
    return e.skipped ?? `ext4 on LazyFS failed to mount: ${e.message.split('\n')[0]}`;
  }
}

/**
 * Mounts LazyFS (lazyfs.mount: `bin`, `cacheSize`, `baseDir`, `keepDir`), creates an image
 * of `imageSize` (default 128M) on it, attaches a free loop device, formats it ext4 and
 * mounts it at `<dir>/ext4` (returned as `.mnt`). LazyFS's cache (`cacheSize`, default
 * '512mb') must hold everything unflushed at once: keep it larger than the image.
 */
async function mount(options = {}) {
  const why = unavailable();
  if (why) throw new Error(`ext4 on LazyFS cannot run here: ${why}`);
  const m = await lazyfs.mount({ bin: options.bin, cacheSize: options.cacheSize ?? '512mb', baseDir: options.baseDir, keepDir: options.keepDir, logAllOperations: options.logAllOperations });
  const d = new Ext4OnLazyFs(m, { imageSize: options.imageSize ?? '128M', mountOptions: options.mountOptions, mkfsOptions: options.mkfsOptions ?? [] });
  // Before LazyFS goes (unmount, remount, process exit), ext4 and the loop device go.
  m.holders.push(() => d._releaseSync());
  try {
    d._writeState();
    await d._format();
  } catch (e) {
    await d.unmount().catch(() => {});
    throw e;
  }
  return d;
}

/** lazyfs.cleanupStale(), which also releases the ext4 mounts and loop devices of dead owners. */
function cleanupStale(baseDir) {
  return lazyfs.cleanupStale(baseDir);
}

module.exports = { unavailable, probe, mount, releaseStale, cleanupStale, loops, mounts, Ext4OnLazyFs, STATE };
