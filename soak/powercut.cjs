#!/usr/bin/env node
// Power-cut soak on LazyFS: `npm run soak -- powercut [--rounds N] [--workers W]
// [--backend io_uring|threads] [--variant fdatasync|direct|dsync|direct-dsync]
// [--faults clear,torn-op,torn-op-wal,torn-seq,lazyfs-crash] [--control none|skip-data-sync|skip-fdatasync|skip-dsync|no-page-images]
// [--fs lazyfs|ext4-lazyfs] [--keep-going] [--min-ms A --max-ms B] [--pages P --buffers B] [--checkpoint-ms T]`.
//
// Unlike the SIGKILL soaks, unsynced data is really lost here. The data directory lives
// on a LazyFS mount (tools/lazyfs), which keeps every write in its own cache until
// fsync/fdatasync. Each round: a postmaster (powercut-host.cjs, its own process group)
// recovers, reports what it recovered, then runs W forked workers (powercut-worker.cjs)
// that update pages in the documented safe order with full-page images, commit plain
// WAL records, and checkpoint now and then; the postmaster checkpoints every
// --checkpoint-ms and runs the background writer; the pool (--buffers) is smaller than
// the data (--pages), so pages are evicted and written back; WAL segments are 64 KiB, so
// they switch and are recycled all the time. At a random moment the controller SIGKILLs
// the whole group and cuts the power, one of (--faults, drawn per round):
//   clear        LazyFS clear-cache: every unsynced byte is gone;
//   torn-op      the next write to the data file is torn (some of its parts reach the
//                disk), then LazyFS dies (with everything unsynced);
//   torn-op-wal  the same for the next write to the current WAL segment;
//   torn-seq     of the next run of unsynced writes to the data file only some reach the
//                disk (reordering), then LazyFS dies;
//   lazyfs-crash (not drawn unless named) the LazyFS daemon is SIGKILLed while the
//                workers run, as when it crashes by itself: everything unsynced is gone and
//                every IO fails (ENOTCONN) until the group is killed.
// LazyFS does crash by itself now and then (a segfault in the daemon): an IO error with no
// fault armed is then a power cut (counted as lazyfs-crash `unplanned`), not a failure.
// The next round's postmaster recovers on the same files. Checked after every recovery,
// against acks.log, which the controller writes outside the mount as acknowledgements
// arrive: every acknowledged page update is in its page (cell version >= acknowledged);
// no cell went backwards since the previous recovery; every cell is consistent; every
// page is readable (checksum: a torn page must have been repaired from its image); every
// acknowledged plain record at or after the redo point is replayed; every record
// replayed by the previous recovery past the redo point is replayed again; nothing that
// was never written is replayed.
//
// --control runs a deliberately broken variant that the checks must catch (the soak then
// succeeds only if it reports the loss; it stops at the first round that shows it and goes
// on past other failures): skip-data-sync sets RINGMASTER_TEST_HOOKS=1 and
// RINGMASTER_DEBUG_SKIP_DATA_SYNC=1 (a checkpoint skips its data-file syncs: page
// updates must be lost); skip-fdatasync makes every fdatasync submitted through the
// rings succeed without reaching the kernel (test hook: acknowledged commits must be lost);
// skip-dsync (with --variant dsync or direct-dsync) sets RINGMASTER_TEST_HOOKS=1 and
// RINGMASTER_DEBUG_SKIP_WAL_DSYNC=1: the WAL opens its segments without O_DSYNC and still
// sends no sync op, so an acknowledged commit is only in the page cache (acknowledged
// commits must be lost: the check that LazyFS does not make every write durable).
//
// --fs ext4-lazyfs puts the data directory on a real ext4 instead of on LazyFS itself: ext4
// on a loop device on an image file on LazyFS (tools/lazyfs/ext4-on-lazyfs.cjs). The loop
// device turns each flush ext4 sends the disk into an fsync of the image, so a cut keeps
// exactly what ext4 had flushed, as a disk losing its write cache, and the next round mounts
// the ext4 again (its journal replayed). The cut there is the LazyFS daemon's SIGKILL: `clear`
// after the group is killed, `lazyfs-crash` under the workers (the default faults: clear).
// torn-op, torn-op-wal, torn-seq and the no-page-images control tear or reorder writes to one
// file at LazyFS, which under ext4 sees only the image: refused. This is where wal.direct +
// walSync 'dsync' under io_uring is tested (on FUSE the WAL falls back to fdatasync there).
// Every recovery checks that the WAL runs with the variant's walSync and direct (the host
// reports wal.stats()): 'dsync' means no sync op is sent.
//
// More options: --lanes L / --record-lanes K (page / plain-record sessions per worker),
// --checkpoint-ms 0 and --no-worker-checkpoints (no checkpoints), --max-files N and
// --keep-segments N (postmaster options), --build-dir D (LazyFS build), --keep (keep the
// files even when it passes), --no-results (or SOAK_NO_RESULTS=1).
// POWERCUT_INJECT_ERROR=1: worker 0 reports an error after its 20th acknowledged page
// update and the controller cuts no power: with LazyFS alive, the first round must fail
// (the check that taking LazyFS's own crashes for power cuts swallows no real error).
//
// Writes soak/results/powercut-[ext4-lazyfs-]<backend>[-<variant>][-<control>].json. Exit status: 0 ok,
// 1 failed (or a control that caught nothing; the files and acks.log are kept, path
// printed), 3 skipped (no usable FUSE, or LazyFS cannot be built here; with --fs ext4-lazyfs
// also not root, no /dev/loop-control, losetup or mkfs.ext4 missing).
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fork } = require('node:child_process');
const lazyfs = require(path.join(__dirname, '..', 'tools', 'lazyfs', 'lazyfs.cjs'));
const ext4 = require(path.join(__dirname, '..', 'tools', 'lazyfs', 'ext4-on-lazyfs.cjs'));
const P = require('./powercut-pages.cjs');
const rm = require(path.join(__dirname, '..'));

const args = process.argv.slice(2);
const has = (name) => args.includes(`--${name}`);
const str = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
};
const num = (name, def) => {
  const v = Number(str(name, def));
  if (!Number.isFinite(v)) throw new Error(`--${name} must be a number`);
  return v;
};

const ROUNDS = num('rounds', 50);
const WORKERS = num('workers', 3);
const LANES = num('lanes', 3);              // page lanes per worker
const RECORD_LANES = num('record-lanes', 2); // plain-record lanes per worker
const PAGES = num('pages', 256);
const BUFFERS = num('buffers', 32);
const MIN_MS = num('min-ms', 300);
const MAX_MS = num('max-ms', 1500);
const CHECKPOINT_MS = num('checkpoint-ms', 300);
const SEGMENT = 64 << 10;
const WAL_BUFFER = 128 << 10;
const TORN_WAIT_MS = 3000;
const KEEP_GOING = has('keep-going');
const BACKEND = str('backend', process.env.RINGMASTER_BACKEND === 'threads' ? 'threads' : 'io_uring');
const VARIANT = str('variant', 'fdatasync');
const CONTROL = str('control', 'none');
const FS = str('fs', 'lazyfs');
const EXT4 = FS === 'ext4-lazyfs';
// The torn faults tear a write to one file at LazyFS; under ext4 LazyFS sees only the image
// of the whole disk (tools/lazyfs/ext4-on-lazyfs.cjs): they do not apply there.
const FILE_FAULTS = ['torn-op', 'torn-op-wal', 'torn-seq'];
const FAULTS = str('faults', CONTROL === 'no-page-images' ? 'torn-op' : EXT4 ? 'clear' : 'clear,torn-op,torn-op-wal,torn-seq').split(',').filter(Boolean);
const WORKER_CHECKPOINTS = !has('no-worker-checkpoints');
const MAX_FILES = str('max-files', null) === null ? undefined : num('max-files', 256);  // default: the library's
const KEEP_SEGMENTS = num('keep-segments', 2);
const INJECT_ERROR = process.env.POWERCUT_INJECT_ERROR === '1';

const usage = () => {
  console.error('usage: npm run soak -- powercut [--rounds N] [--workers W] [--backend io_uring|threads] [--variant fdatasync|direct|dsync|direct-dsync] ' +
    '[--faults clear,torn-op,torn-op-wal,torn-seq,lazyfs-crash] [--control none|skip-data-sync|skip-fdatasync|skip-dsync|no-page-images] [--fs lazyfs|ext4-lazyfs] [--keep-going]');
  process.exit(2);
};
if (!['io_uring', 'threads'].includes(BACKEND) || !['fdatasync', 'direct', 'dsync', 'direct-dsync'].includes(VARIANT) ||
    !['none', 'skip-data-sync', 'skip-fdatasync', 'skip-dsync', 'no-page-images'].includes(CONTROL) ||
    !['lazyfs', 'ext4-lazyfs'].includes(FS) ||
    FAULTS.length === 0 || FAULTS.some((f) => !['clear', 'torn-op', 'torn-op-wal', 'torn-seq', 'lazyfs-crash'].includes(f))) usage();
if (EXT4 && (FAULTS.some((f) => FILE_FAULTS.includes(f)) || CONTROL === 'no-page-images')) {
  console.error(`--fs ext4-lazyfs: ${CONTROL === 'no-page-images' ? '--control no-page-images needs torn page writes, and ' : ''}the faults ${FILE_FAULTS.join(', ')} tear or reorder the writes to ` +
    'one file at LazyFS, which under ext4 sees only the disk image (a torn ext4 block is a test of ext4, not of this library): use --faults clear,lazyfs-crash');
  process.exit(2);
}
if (CONTROL === 'skip-fdatasync' && VARIANT.endsWith('dsync')) {
  console.error('--control skip-fdatasync needs fdatasyncs: not with --variant dsync');
  process.exit(2);
}
if (CONTROL === 'skip-dsync' && !VARIANT.endsWith('dsync')) {
  console.error('--control skip-dsync takes O_DSYNC away from the WAL: only with --variant dsync or direct-dsync');
  process.exit(2);
}
if (WORKERS * LANES > P.maxLanes) throw new Error(`at most ${P.maxLanes} page lanes in all`);

const childEnv = { ...process.env };
if (BACKEND === 'threads') childEnv.RINGMASTER_BACKEND = 'threads';
else delete childEnv.RINGMASTER_BACKEND;
if (CONTROL === 'skip-data-sync') Object.assign(childEnv, { RINGMASTER_TEST_HOOKS: '1', RINGMASTER_DEBUG_SKIP_DATA_SYNC: '1' });
if (CONTROL === 'skip-fdatasync') childEnv.RINGMASTER_TEST_HOOKS = '1';
if (CONTROL === 'skip-dsync') Object.assign(childEnv, { RINGMASTER_TEST_HOOKS: '1', RINGMASTER_DEBUG_SKIP_WAL_DSYNC: '1' });

const rnd = (n) => Math.floor(Math.random() * n);
const pick = (xs) => xs[rnd(xs.length)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function subset(n, k) {  // k distinct numbers of 1..n, sorted
  const all = Array.from({ length: n }, (_, i) => i + 1);
  for (let i = all.length - 1; i > 0; i--) {
    const j = rnd(i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, k).sort((x, y) => x - y);
}
const command = () => `${BACKEND === 'threads' ? 'RINGMASTER_BACKEND=threads ' : ''}npm run soak -- powercut --rounds ${ROUNDS} --workers ${WORKERS}` +
  `${EXT4 ? ` --fs ${FS}` : ''}${VARIANT !== 'fdatasync' ? ` --variant ${VARIANT}` : ''}${CONTROL !== 'none' ? ` --control ${CONTROL}` : ''}` +
  `${str('faults', null) ? ` --faults ${FAULTS.join(',')}` : ''}${str('checkpoint-ms', null) !== null ? ` --checkpoint-ms ${CHECKPOINT_MS}` : ''}${WORKER_CHECKPOINTS ? '' : ' --no-worker-checkpoints'}${MAX_FILES ? ` --max-files ${MAX_FILES}` : ''}${KEEP_SEGMENTS !== 2 ? ` --keep-segments ${KEEP_SEGMENTS}` : ''}${KEEP_GOING ? ' --keep-going' : ''}`;

function writeResult(result) {
  if (!process.env.SOAK_NO_RESULTS && !has('no-results')) {
    const name = `powercut-${EXT4 ? `${FS}-` : ''}${result.backend}${VARIANT !== 'fdatasync' ? `-${VARIANT}` : ''}${CONTROL !== 'none' ? `-${CONTROL}` : ''}.json`;
    fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
    fs.writeFileSync(path.join(__dirname, 'results', name), JSON.stringify(result, null, 2));
  }
  console.log(JSON.stringify(result));
}

function skipped(why) {
  process.stderr.write(`powercut soak: skipped: ${why}\n`);
  console.log(JSON.stringify({ scenario: 'powercut', fs: FS, backend: BACKEND, variant: VARIANT, control: CONTROL, skipped: why }));
  process.exit(3);
}

// io_uring issues an O_DIRECT | O_DSYNC write as an async direct write, which the kernel's
// FUSE client completes without the fsync O_DSYNC asks for: LazyFS never sees it synced and
// drops it at the cut (test/long/powercut.test.ts shows it; a pwrite, the threads backend,
// is synced). So on FUSE under io_uring the WAL keeps its fdatasync chain for direct + dsync,
// and this variant would only repeat --variant direct.
// Under ext4 (--fs ext4-lazyfs) the WAL sees ext4 and uses O_DSYNC; the soak checks that it does.
if (VARIANT === 'direct-dsync' && BACKEND === 'io_uring' && !EXT4) {
  skipped('--variant direct-dsync on io_uring: on FUSE the WAL keeps its fdatasync chain for direct + dsync (FUSE does not sync an async O_DIRECT | O_DSYNC write), which is --variant direct; use --backend threads or --fs ext4-lazyfs');
}

// ---- what the controller knows: acks.log, read back before every check --------------
class Checker {
  constructor(ackLog) {
    this.ackLog = ackLog;
    this.offset = 0;
    this.partial = '';
    this.pageAcks = new Map();      // "page:lane" -> acknowledged versions not yet found lost (ascending)
    this.recordAcks = new Map();    // id -> end LSN (bigint), while at or past the redo point
    this.prevReplay = new Map();    // id -> end LSN: what the previous recovery replayed
    this.prevCells = null;          // page -> lane -> version
    this.maxEpoch = 0;
    this.epochRound = new Map();    // epoch -> the round that handed it out
    this.t = { pageUpdatesAcknowledged: 0, pageUpdatesLost: 0, cellsBehind: 0, cellRegressions: 0, inconsistentCells: 0,
      recordsAcknowledged: 0, recordsVerifiedInReplay: 0, recordsLost: 0, replayShrunk: 0, foreignRecords: 0,
      unreadablePages: 0, redoBadRecords: 0, recoveries: 0 };
    this.verified = new Set();
  }

  readLog() {
    const fd = fs.openSync(this.ackLog, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(size - this.offset);
      fs.readSync(fd, buf, 0, buf.length, this.offset);
      this.offset = size;
      const lines = (this.partial + buf.toString('latin1')).split('\n');
      this.partial = lines.pop();
      for (const l of lines) {
        const w = l.split(' ');
        if (w[0] === 'P') {  // P round lane page epoch seq
          const [lane, page, epoch, seq] = w.slice(2).map(Number);
          const k = `${page}:${lane}`;
          if (!this.pageAcks.has(k)) this.pageAcks.set(k, []);
          this.pageAcks.get(k).push((BigInt(epoch) << 32n) | BigInt(seq));
          this.t.pageUpdatesAcknowledged++;
        } else if (w[0] === 'R') {  // R round id endLsn
          this.recordAcks.set(w[2], BigInt(w[3]));
          this.t.recordsAcknowledged++;
        } else if (w[0] === 'E') {  // E round epoch: an epoch was handed out
          this.maxEpoch = Math.max(this.maxEpoch, Number(w[2]));
          this.epochRound.set(Number(w[2]), Number(w[1]));
        }
      }
    } finally {
      fs.closeSync(fd);
    }
  }

  // Returns a list of problems found in this recovery (empty: all good).
  check(rec) {
    this.readLog();
    this.t.recoveries++;
    const problems = [];
    const from = BigInt(rec.fromLsn);
    // Pages.
    const cells = rec.cells.map((row) => (row ? row.map((h) => BigInt(`0x${h}`)) : null));
    let lost = 0;
    let behind = 0;
    const examples = [];  // the first few cells behind, to look into a loss
    const showVersion = (v) => (v < 0n ? 'unreadable' : v === 0n ? 'nothing' : `epoch ${v >> 32n} (round ${this.epochRound.get(Number(v >> 32n)) ?? '?'}) seq ${v & 0xffffffffn}`);
    for (const [k, versions] of this.pageAcks) {
      const [page, lane] = k.split(':').map(Number);
      const have = cells[page] ? cells[page][lane] & P.VMASK : -1n;
      let i = versions.length;
      while (i > 0 && versions[i - 1] > have) i--;
      if (i < versions.length) {
        if (examples.length < 3) examples.push(`page ${page} lane ${lane}: has ${showVersion(have)}, acknowledged ${showVersion(versions[versions.length - 1])} (${versions.length - i} lost)`);
        lost += versions.length - i;
        behind++;
        versions.length = i;  // counted once
      }
    }
    let inconsistent = 0;
    let regressions = 0;
    const usedLanes = WORKERS * LANES;
    for (let p = 0; p < cells.length; p++) {
      if (!cells[p]) continue;
      for (let lane = 0; lane < P.maxLanes; lane++) {
        const v = cells[p][lane];
        if (!P.cellOk(p, lane, v) || (v !== 0n && lane >= usedLanes)) inconsistent++;
        if (this.prevCells && this.prevCells[p] && (v & P.VMASK) < (this.prevCells[p][lane] & P.VMASK)) regressions++;
      }
    }
    this.prevCells = cells.map((row, p) => row ?? (this.prevCells ? this.prevCells[p] : null));
    this.t.pageUpdatesLost += lost;
    this.t.cellsBehind += behind;
    this.t.inconsistentCells += inconsistent;
    this.t.cellRegressions += regressions;
    this.t.unreadablePages += rec.unreadable.length;
    this.t.redoBadRecords += rec.redoBad;
    if (lost) problems.push(`${lost} acknowledged page updates lost (${behind} cells behind their last acknowledged version; ${examples.join('; ')})`);
    if (regressions) problems.push(`${regressions} cells went back since the previous recovery`);
    if (inconsistent) problems.push(`${inconsistent} inconsistent cells`);
    if (rec.unreadable.length) problems.push(`${rec.unreadable.length} pages unreadable after recovery (e.g. page ${rec.unreadable[0].page}: ${rec.unreadable[0].code} ${rec.unreadable[0].message})`);
    if (rec.redoBad) problems.push(`${rec.redoBad} replayed page records with a bad cell check`);
    // Plain records.
    const replay = new Map(rec.replayed.map(([id, end]) => [id, BigInt(end)]));
    let rlost = 0;
    for (const [id, end] of this.recordAcks) {
      if (end <= from) {  // behind the redo point: no longer replayed, nothing to check
        this.recordAcks.delete(id);
        continue;
      }
      this.verified.add(id);
      if (!replay.has(id)) {
        rlost++;
        this.recordAcks.delete(id);  // counted once
      }
    }
    this.t.recordsVerifiedInReplay = this.verified.size;
    let shrunk = 0;
    for (const [id, end] of this.prevReplay) if (end > from && !replay.has(id)) shrunk++;
    let foreign = 0;
    for (const id of replay.keys()) {
      const m = /^e(\d+)k\d+:\d+$/.exec(id);
      if (!m || Number(m[1]) > this.maxEpoch) foreign++;
    }
    this.prevReplay = replay;
    this.t.recordsLost += rlost;
    this.t.replayShrunk += shrunk;
    this.t.foreignRecords += foreign;
    if (rlost) problems.push(`${rlost} acknowledged WAL records at or after the redo point ${rec.fromLsn} not replayed`);
    if (shrunk) problems.push(`${shrunk} records replayed by the previous recovery are gone`);
    if (foreign) problems.push(`${foreign} replayed records were never written`);
    return problems;
  }
}

// ---- one round --------------------------------------------------------------------
let currentHost = null;
async function main() {
  const unavailable = EXT4 ? ext4.unavailable() : lazyfs.fuseUnavailable();
  if (unavailable) skipped(unavailable);
  const built = lazyfs.ensureBuilt({ buildDir: str('build-dir', undefined) });
  if (built.skipped) skipped(built.skipped);
  // Whatever ends this process, the round's process group goes too (registered before the
  // mount's own exit hook, which unmounts: nothing of the group holds files there then).
  process.on('exit', () => {
    if (currentHost) {
      try {
        process.kill(-currentHost.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  });
  // --fs ext4-lazyfs: the data directory is on ext4, on a loop device, on an image on LazyFS;
  // `m` has the same face (mnt, dir, alive, exited, waitExit, killDaemon, remount, unmount).
  const m = EXT4 ? await ext4.mount({ bin: built.bin, keepDir: true }).catch((e) => (e.skipped ? skipped(e.skipped) : Promise.reject(e)))
    : await lazyfs.mount({ bin: built.bin, keepDir: true });
  process.once('SIGINT', () => process.exit(130));
  process.once('SIGTERM', () => process.exit(143));
  const dataDir = path.join(m.mnt, 'd');  // short: LazyFS fault commands (paths included) must stay under 100 bytes
  const ackLog = path.join(m.dir, 'acks.log');  // on the real file system, outside the mount
  const ackFd = fs.openSync(ackLog, 'a', 0o600);
  // The data file exists durably before the first round (its creation is not under test).
  fs.mkdirSync(dataDir, { mode: 0o700 });
  const pagesPath = path.join(dataDir, 'pages.dat');
  const pfd = fs.openSync(pagesPath, 'w', 0o600);
  fs.writeSync(pfd, Buffer.alloc(PAGES * P.PS), 0, PAGES * P.PS, 0);
  fs.fsyncSync(pfd);
  fs.closeSync(pfd);
  for (const d of [dataDir, m.mnt]) {
    const dfd = fs.openSync(d, 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  }

  const checker = new Checker(ackLog);
  const started = Date.now();
  let failure = null;
  const problemsByRound = [];
  let epoch = 0;
  const faults = { clear: 0, 'torn-op': { armed: 0, fired: 0 }, 'torn-op-wal': { armed: 0, fired: 0 }, 'torn-seq': { armed: 0, fired: 0 }, 'lazyfs-crash': { killed: 0, unplanned: 0 } };
  const machinery = { checkpointsByPostmaster: 0, checkpointsByWorkers: 0, pageImages: 0, imageRetries: 0, evictions: 0, pageWrites: 0, walFdatasyncs: 0, segmentsUsed: 0 };
  let maxRecoveryMs = 0;
  let workerErrorsBeforeCut = 0;
  let recoveriesCut = 0;
  let workerErrorsAfterCut = 0;
  const expectedErrorCodes = {};
  // What the WAL must run with, every round: walSync 'dsync' (no sync op) for the dsync
  // variants, on ext4 under io_uring too (on LazyFS itself direct-dsync is not run there).
  const EXPECTED_WAL = { walSync: VARIANT.endsWith('dsync') ? 'dsync' : 'fdatasync', direct: VARIANT.startsWith('direct') };
  let walInForce = null;
  let walMismatches = 0;

  // Pages whose checksum does not match on disk now (torn writes), before recovery.
  let tornPagesOnDisk = 0;
  function countTornPages() {
    const data = fs.readFileSync(pagesPath);
    let torn = 0;
    for (let p = 0; p < PAGES; p++) {
      const page = Buffer.from(data.subarray(p * P.PS, (p + 1) * P.PS));
      if (page.every((b) => b === 0)) continue;
      const stored = page.readUInt32LE(8);
      if (rm.setPageChecksum(page) >>> 0 !== stored) torn++;
    }
    return torn;
  }

  // Runs one host: recovery + check, then (unless verifyOnly) the round and its cut.
  async function runRound(round, verifyOnly) {
    const roundFault = pick(FAULTS);  // drawn now: 'lazyfs-crash' acts while the workers run
    const torn = countTornPages();
    tornPagesOnDisk += torn;
    const epochs = Array.from({ length: WORKERS }, () => ++epoch);
    for (const e of epochs) fs.writeSync(ackFd, `E ${round} ${e}\n`);
    const hostArgs = {
      dataDir, workers: WORKERS, lanes: LANES, recordLanes: RECORD_LANES, pages: PAGES, buffers: BUFFERS,
      segmentSize: SEGMENT, walBufferSize: WAL_BUFFER, checkpointIntervalMs: CHECKPOINT_MS, variant: VARIANT,
      control: CONTROL, epochs, verifyOnly, workerCheckpoints: WORKER_CHECKPOINTS, maxFiles: MAX_FILES, keepSegments: KEEP_SEGMENTS,
    };
    const host = fork(path.join(__dirname, 'powercut-host.cjs'), [JSON.stringify(hostArgs)], {
      detached: true, env: childEnv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    currentHost = host;
    const exited = new Promise((resolve) => host.once('exit', (code, signal) => resolve({ code, signal })));
    let cut = false;
    let armed = false;
    const armedErrors = [];
    let lastStats = null;
    // SIGKILL the host's process group, and wait until none of it is left (a killed
    // process can still be finishing a FUSE request).
    const killGroup = async () => {
      try {
        process.kill(-host.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await exited;
      for (let i = 0; i < 500; i++) {
        try {
          process.kill(-host.pid, 0);
        } catch {
          return;
        }
        await sleep(10);
      }
    };
    try {
      const outcome = await new Promise((resolveOnce, reject) => {
        let settled = false;
        const resolve = (o) => {
          settled = true;
          resolveOnce(o);
        };
        const watchdog = setTimeout(() => reject(new Error(`round ${round}: no progress in 120 s`)), 120000);
        let timer = null;
        let judging = false;
        const expected = (code) => {
          workerErrorsAfterCut++;
          if (code) expectedErrorCodes[code] = (expectedErrorCodes[code] ?? 0) + 1;
        };
        // LazyFS itself crashes now and then (a segfault in the daemon, no fault armed):
        // every IO then fails (ENOTCONN) and its unsynced data is gone, which is a power
        // cut, only not ours. What went wrong before the cut (an error, a worker or the
        // host exiting, recovery failing) is judged here: if the daemon is gone (its exit
        // may not have been seen yet), the round goes on as that cut; otherwise it is
        // ringmaster's failure. Whatever else happens while judging is its consequence.
        // `error`: { message, code } when a process reported an error (counted), else null.
        const judge = (problem, error) => {
          if (judging || settled) {
            if (!error) return;
            // Settled with the cut still to come (torn-op-wal asks for the insert LSN
            // before it arms): like an error while a fault is armed, it counts only if no
            // fault fires (below). Otherwise something else decided the round already.
            if (settled && !judging && !cut && !armed) armedErrors.push(error.message);
            expected(error.code);
            return;
          }
          judging = true;
          clearTimeout(watchdog);
          if (timer) clearTimeout(timer);
          m.waitExit(2000).then((crashed) => {
            if (crashed) {
              if (error) expected(error.code);
              return resolve({ problems: host._problems ?? [], recovered: host._recovered, cutNow: true, lazyfsCrashed: true });
            }
            if (error) workerErrorsBeforeCut++;
            resolve({ problems: [...(host._problems ?? []), problem], fatal: true });
          });
        };
        // The daemon's exit with no fault armed and no error seen (yet): the same power cut.
        // Errors usually come first; the exit alone decides after a grace period.
        const daemonExited = m.exited;
        daemonExited.then(() => setTimeout(() => {
          if (!cut && !armed && !settled && !judging) judge('LazyFS exited', null);
        }, 1000));
        host.on('message', (msg) => {
          if (msg.recoveryError) return judge(`recovery failed: ${msg.recoveryError}`, null);
          if (msg.recovered) {
            maxRecoveryMs = Math.max(maxRecoveryMs, msg.recovered.recoveryMs);
            const problems = checker.check(msg.recovered);
            const wal = msg.recovered.wal;
            walInForce = wal;
            if (wal.walSync !== EXPECTED_WAL.walSync || wal.direct !== EXPECTED_WAL.direct) {
              walMismatches++;
              problems.push(`the WAL runs walSync '${wal.walSync}', direct ${wal.direct} on ${wal.backend}: --variant ${VARIANT}${EXT4 ? ' on ext4' : ''} expects '${EXPECTED_WAL.walSync}', direct ${EXPECTED_WAL.direct}`);
            }
            if (verifyOnly || (problems.length && (!keepGoing || caught()))) {
              clearTimeout(watchdog);
              return resolve({ problems, recovered: msg.recovered });
            }
            host.send('go');
            host._problems = problems;
            host._recovered = msg.recovered;
            return;
          }
          if (msg.running && !cut && !judging && !settled) {
            if (INJECT_ERROR) return;  // no cut: the injected error ends the round
            if (roundFault === 'lazyfs-crash') {
              // The daemon is killed while the workers run: the path of LazyFS crashing
              // by itself (judge) must turn the errors that follow into a power cut.
              timer = setTimeout(() => m.killDaemon(), MIN_MS + rnd(MAX_MS - MIN_MS + 1));
              return;
            }
            timer = setTimeout(() => {
              clearTimeout(watchdog);
              resolve({ problems: host._problems, recovered: host._recovered, cutNow: true });
            }, MIN_MS + rnd(MAX_MS - MIN_MS + 1));
            return;
          }
          if (msg.stats) lastStats = msg.stats;
          if (msg.acks) {
            const a = msg.acks;
            const e = epochs[msg.worker];
            let lines = '';
            for (const [lane, page, seq] of a.p) lines += `P ${round} ${lane} ${page} ${e} ${seq}\n`;
            for (const [id, end] of a.r) lines += `R ${round} ${id} ${end}\n`;
            if (lines) fs.writeSync(ackFd, lines);
            machinery.checkpointsByWorkers += a.ckpt;
            return;
          }
          if (msg.error) {
            if (cut || armed) {
              // After a torn fault was armed LazyFS may be dead already (its exit event
              // not seen yet): these count only if the fault never fired (below).
              if (!cut) armedErrors.push(msg.error);
              expected(msg.code);
              return;
            }
            return judge(`error before the power cut (${msg.worker !== undefined ? `worker ${msg.worker}` : 'host'}): ${msg.error.split('\n').slice(0, 3).join(' | ')}`, { message: msg.error, code: msg.code });
          }
          if (msg.workerExit !== undefined && !cut && !armed) {
            judge(`worker ${msg.workerExit} exited before the power cut (${msg.code ?? msg.signal})`, null);
          }
        });
        exited.then(({ code, signal }) => {
          if (cut || settled) return;
          if (verifyOnly && code === 0) {
            clearTimeout(watchdog);
            return resolve({ problems: host._problems ?? [], fatal: false });
          }
          judge(`host exited before the power cut (${code ?? signal})`, null);
        });
      });
      if (!outcome.cutNow) return outcome;
      // ---- the power cut ----
      const fault = outcome.lazyfsCrashed ? 'lazyfs-crash' : roundFault;
      let how = fault;
      if (fault === 'lazyfs-crash') {
        cut = true;
        await killGroup();
        if (roundFault === 'lazyfs-crash') faults['lazyfs-crash'].killed++;
        else faults['lazyfs-crash'].unplanned++;
        how = roundFault === 'lazyfs-crash' ? 'lazyfs-crash (daemon killed)' : 'LazyFS crashed by itself (a power cut with no fault armed)';
        await m.remount();
      } else if (fault === 'clear' && EXT4) {
        // Under ext4 the cut is LazyFS's SIGKILL (ext4-on-lazyfs.cjs says why), and ext4
        // must be mounted again to forget what it held in memory.
        cut = true;
        await killGroup();
        await m.powerCut();
        faults.clear++;
        await m.remount();
      } else if (fault === 'clear') {
        cut = true;
        await killGroup();
        try {
          await m.clearCache();
          faults.clear++;
        } catch (e) {
          // LazyFS crashed by itself just before the cut: the same power cut.
          if (m.alive && !(await m.waitExit(1000))) throw e;
          faults['lazyfs-crash'].unplanned++;
          how = 'LazyFS crashed by itself (at the cut)';
          await m.remount();
        }
      } else {
        let targets = [pagesPath];
        let cmd;
        // Arms the fault on each target in turn; one armed earlier may fire (and LazyFS
        // die) while the next is being armed: that is the cut, not an error.
        const armAll = async (arm) => {
          for (const t of targets) {
            try {
              await arm(t);
            } catch (e) {
              if (m.alive && !(await m.waitExit(1000))) throw e;
              return;
            }
            if (!m.alive) return;
          }
        };
        if (fault === 'torn-op-wal') {
          // The next segments (a 64 KiB segment fills in milliseconds here): the first
          // write into one of them is torn.
          const lsn = await new Promise((resolve) => {
            const t = setTimeout(() => resolve(lastStats ? lastStats.insertLsn : String(SEGMENT)), 1000);
            host.on('message', (msg) => {
              if (msg.insertLsn) {
                clearTimeout(t);
                resolve(msg.insertLsn);
              }
            });
            host.send('insertLsn');
          });
          const segno = Number(BigInt(lsn) / BigInt(SEGMENT));
          if (process.env.PC_DEBUG) process.stderr.write(`torn-op-wal: insert lsn ${lsn}, segment ${segno}\n`);
          targets = [1, 2, 3, 4].map((k) => path.join(dataDir, 'pg_wal', rm.segmentName(segno + k)));
        }
        if (fault === 'torn-seq') {
          const persist = subset(5, 1 + rnd(3));
          cmd = () => armAll((t) => m.tornSeq(m.rootPath(t), { persist }));
          how = `torn-seq persist=${persist}`;
        } else {
          // A WAL path is long: at most 4 parts, one kept (the command must fit 100 bytes).
          const parts = fault === 'torn-op-wal' ? pick([2, 4]) : pick([2, 4, 8]);
          const persist = fault === 'torn-op-wal' ? subset(parts, 1) : subset(parts, 1 + rnd(parts - 1));
          cmd = () => armAll((t) => m.tornOp(m.rootPath(t), { parts, persist }));
          how = `${fault} parts=${parts} persist=${persist}`;
        }
        faults[fault].armed++;
        armed = true;
        await cmd();
        const fired = await m.waitExit(TORN_WAIT_MS);
        cut = true;
        await killGroup();
        if (fired) faults[fault].fired++;
        else await m.clearCache();  // it did not fire: a plain power cut, and the remount disarms it
        how += fired ? ' (fired)' : ' (did not fire: clear-cache)';
        await m.remount();
        if (!fired && armedErrors.length) outcome.problems = [...outcome.problems, `error before the power cut: ${armedErrors[0].split('\n').slice(0, 3).join(' | ')}`];
      }
      if (lastStats) {
        machinery.checkpointsByPostmaster += lastStats.checkpoints;
        machinery.evictions += lastStats.evictions;
        machinery.pageWrites += lastStats.pageWrites;
        machinery.walFdatasyncs += lastStats.walFdatasyncs;
        machinery.pageImages += lastStats.pageImages;    // as of the last report (every 100 ms)
        machinery.imageRetries += lastStats.imageRetries;
      }
      return { ...outcome, how, torn };
    } finally {
      cut = true;
      await killGroup();
    }
  }

  // A control stops at the first round that shows what it breaks, and goes on past
  // anything else (today's other losses must not end it before that).
  const caught = () => {
    const t = checker.t;
    if (CONTROL === 'skip-data-sync') return t.pageUpdatesLost + t.cellRegressions > 0;
    if (CONTROL === 'skip-fdatasync' || CONTROL === 'skip-dsync') return t.recordsLost + t.pageUpdatesLost + t.replayShrunk > 0 || /recovery failed: ERR_RINGMASTER_WAL_CORRUPT/.test(failure ?? '');
    if (CONTROL === 'no-page-images') return t.unreadablePages > 0 || /recovery failed: ERR_RINGMASTER_CHECKSUM/.test(failure ?? '');
    return false;
  };
  const keepGoing = KEEP_GOING || CONTROL !== 'none';
  let roundsRun = 0;
  let lastEnd = 0n;
  let finalAttempts = 0;
  for (let round = 0; round <= ROUNDS; round++) {
    const verifyOnly = round === ROUNDS;  // the last recovery only checks
    let outcome;
    try {
      outcome = await runRound(round, verifyOnly);
    } catch (e) {
      outcome = { problems: [e.message], fatal: true };
    }
    // LazyFS crashed during this round's recovery: that recovery was never checked (the
    // next one, on what survived, is).
    if (outcome.lazyfsCrashed && !outcome.recovered) recoveriesCut++;
    if (outcome.recovered) {
      const end = BigInt(outcome.recovered.endLsn);
      machinery.segmentsUsed += Number(end / BigInt(SEGMENT) - lastEnd / BigInt(SEGMENT));
      lastEnd = end;
    }
    if (outcome.problems.length) {
      problemsByRound.push({ round, problems: outcome.problems });
      failure = failure ?? `round ${round}: ${outcome.problems.join('; ')}`;
    }
    const t = checker.t;
    process.stderr.write(`round ${round}${verifyOnly ? ' (final recovery)' : `/${ROUNDS}`}: ${outcome.how ?? ''} | ${tornPagesOnDisk} torn pages seen on disk so far | recovered from ${outcome.recovered?.fromLsn ?? '?'}` +
      ` (${outcome.recovered?.records ?? '?'} records, ${outcome.recovered?.stop ?? '?'}) | acked ${t.pageUpdatesAcknowledged} page updates, ${t.recordsAcknowledged} records;` +
      ` lost ${t.pageUpdatesLost} + ${t.recordsLost}${outcome.problems.length ? ` | ${outcome.problems.join('; ')}` : ''}\n`);
    if (outcome.how && !verifyOnly) roundsRun++;  // a round is a power cut
    if (outcome.fatal || (outcome.problems.length && !keepGoing) || (CONTROL !== 'none' && caught())) break;
    // The final recovery was cut by LazyFS crashing by itself: recover and check again.
    if (verifyOnly && outcome.lazyfsCrashed) {
      if (++finalAttempts < 3) round--;
      else failure = failure ?? `the final recovery was cut by LazyFS crashing ${finalAttempts} times: never checked`;
    }
  }
  fs.closeSync(ackFd);
  checker.readLog();  // acknowledgements of a round whose recovery failed were never checked: count them
  const t = checker.t;
  const lostAnything = t.pageUpdatesLost + t.recordsLost + t.cellRegressions + t.replayShrunk > 0;
  let ok = !failure;
  let controlCaught = null;
  if (CONTROL !== 'none') {
    // The control passes when the harness caught the broken variant losing data.
    // skip-fdatasync: a lost checkpoint record counts too (recovery refuses the WAL);
    // no-page-images: a torn page stays torn (unreadable, or recovery fails on it).
    controlCaught = caught();
    ok = controlCaught;
  }
  // Kept for inspection: a run that failed, or --keep. A positive control that caught what it
  // should is the expected outcome: its directory goes like a passing run's.
  const keep = has('keep') || !ok;
  const result = {
    scenario: 'powercut', fs: FS, backend: BACKEND, variant: VARIANT, control: CONTROL, faultsDrawn: FAULTS, walInForce, walMismatches,
    rounds: roundsRun, workers: WORKERS, pageLanesPerWorker: LANES, recordLanesPerWorker: RECORD_LANES, dataPages: PAGES, poolPages: BUFFERS,
    segmentSize: SEGMENT, checkpointIntervalMs: CHECKPOINT_MS, workerCheckpoints: WORKER_CHECKPOINTS, maxFiles: MAX_FILES ?? 'default', keepSegments: KEEP_SEGMENTS,
    ...t, recoveriesCut, finalRecoveryRetries: finalAttempts, tornPagesOnDiskBeforeRecovery: tornPagesOnDisk, lostAnything, controlCaught, faults, machinery, maxRecoveryMs,
    workerErrorsBeforeCut, workerErrorsAfterCut, errorCodesAfterCut: expectedErrorCodes,
    problemsByRound: problemsByRound.slice(0, 20),
    seconds: (Date.now() - started) / 1000, ok, failure,
    kept: keep ? m.dir : null,
    command: command(),
    machine: { kernel: os.release(), cores: os.cpus().length, node: process.version, lazyfs: 'a47a5ba (tools/lazyfs)', ...(EXT4 ? { fs: 'ext4 (mkfs.ext4 defaults, mount defaults) on a loop device on an image on LazyFS' } : {}) },
  };
  if (keep) {
    await m.unmount().catch(() => {});  // keepDir: the real files and acks.log stay
    process.stderr.write(`kept for inspection: ${m.dir} (${EXT4 ? 'root/disk.img is the ext4 image, d/ in it' : 'root/d'} is the data directory, acks.log the acknowledgements)\n`);
  } else {
    await m.unmount();
    fs.rmSync(m.dir, { recursive: true, force: true });
  }
  process.stderr.write(`powercut soak (${EXT4 ? `${FS}, ` : ''}${BACKEND}, ${VARIANT}${CONTROL !== 'none' ? `, control ${CONTROL}` : ''}): ${roundsRun} rounds, ` +
    `${t.pageUpdatesAcknowledged} page updates and ${t.recordsAcknowledged} records acknowledged, ${t.pageUpdatesLost} page updates and ${t.recordsLost} records lost, ` +
    `${t.unreadablePages} unreadable pages: ${CONTROL !== 'none' ? (controlCaught ? 'control CAUGHT' : 'control NOT caught: FAIL') : failure ? `FAIL: ${failure}` : 'OK'}\n`);
  writeResult(result);
  process.exit(ok ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
