#!/usr/bin/env node
// Worker kill soak, mixed workload (random SIGKILLs of forked workers that the
// postmaster restarts): `npm run soak -- kill [--workload mixed]
// [--kills N] [--workers W] [--lanes L] [--seconds S]`.
// A postmaster with a buffer pool (fewer buffers than data pages: eviction and
// writeback), a WAL (periodic checkpoints) and a background writer forks W workers
// running WAL commits of page updates, buffer-pool reads and raw linked write/fdatasync
// batches (kill-mixed-worker.cjs). A controller SIGKILLs a random worker every
// 20-220 ms; the postmaster's exit handling cleans its slot and the controller restarts
// it. Checked after each kill (bounded): every survivor keeps making progress (max gap
// between two progress reports, in the worker's own clock, <= 2 s), no buffer stays
// io-in-progress on behalf of the dead process, no IO handle of it stays in use
// (orphans complete). At the end: all handles free, no buffer in IO, no pin left; then
// the postmaster stops WITHOUT flushing the pool, a new one recovers the WAL through
// redo handlers into its buffer pool, and every acknowledged commit must be there (and
// every page consistent); every acknowledged raw record must be on disk intact.
// Writes soak/results/kill-mixed-<backend>.json.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const rm = require(path.join(__dirname, '..'));
const P = require('./kill-mixed-pages.cjs');
const { checkRecords } = require('./raw-records.cjs');

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const KILLS = opt('kills', 200);
const WORKERS = opt('workers', 3);
const LANES = opt('lanes', 4);       // commit sessions per worker
const READERS = opt('readers', 2);   // pool-read sessions per worker
const SECONDS = opt('seconds', 900);
const PAGES = opt('pages', 320);     // data pages
const BUFFERS = opt('buffers', 48);  // pool pages: fewer than PAGES
const STALL_MS = 2000;
const CHECK_MS = 10000;              // bound for a kill's cleanup checks and for liveness
const backendOpt = process.env.RINGMASTER_BACKEND === 'threads' ? 'threads' : 'auto';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function startOptions(dataDir, redo) {
  // 2 MiB arena: pool + WAL buffer still register as fixed buffers under 8 MiB memlock.
  return {
    dataDir, backend: backendOpt, arenaSize: 2 << 20,
    // Every commit changes its page with one Atomics.store of an 8-byte cell, so a killed
    // holder cannot leave a half-done update: the lock is given back without fencing the
    // page (the default, 'fence', would need a crash restart after such kills: see the
    // TPC-B demo and test/multiprocess/wal-bufferpool.test.ts for that path).
    bufferPool: { pages: BUFFERS, pageSize: P.PS, onHolderDeath: 'release' },
    wal: { segmentSize: 1 << 20, bufferSize: 256 << 10, checkpointIntervalMs: 1000, ...(redo ? { redo } : {}) },
  };
}

async function main() {
  if (WORKERS * LANES > P.maxLanes) throw new Error(`at most ${P.maxLanes} lanes in all`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-soak-kill-mixed-'));
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir, { mode: 0o700 });
  fs.writeFileSync(path.join(dataDir, 'pages.dat'), '');
  fs.truncateSync(path.join(dataDir, 'pages.dat'), PAGES * P.PS);  // zero pages are valid
  const pm = await rm.Postmaster.start(startOptions(dataDir));
  const f = await pm.files.open('pages.dat');
  const raw = await pm.files.open('raw.dat', { create: true });
  pm.buffers.startBackgroundWriter({ intervalMs: 50, maxPages: 8 });

  const started = Date.now();
  let failure = null;
  const fail = (why) => { failure = failure ?? why; };
  let stopping = false;
  let epoch = 0;
  let kills = 0;
  let restarts = 0;
  let maxStall = 0;
  let longestSilence = null;  // the longest gap between a worker's progress messages, and what it says
  let maxStartup = 0;
  let stuckBuffers = 0;
  let leakedHandles = 0;
  let orphansAwaited = 0;
  let maxCleanupMs = 0;
  let commitsAcked = 0;
  let poolReads = 0;
  let rawReads = 0;
  const ackLog = [];                               // [lane, epoch, seq, page] per acknowledged commit
  const rawAcked = new Array(WORKERS).fill(0);     // next unacknowledged raw seq per worker id
  const workers = new Map();                       // id -> { child, pid, slot, epoch, lastT, forkedAt, ready }
  const killed = new Map();                        // pid -> kill time
  const checks = [];

  function spawn(id) {
    epoch++;
    if (epoch > 0xffff) return fail('more than 65535 incarnations: the cell epoch would wrap');
    const w = { id, epoch, pid: 0, slot: -1, lastT: 0, forkedAt: Date.now(), ready: false };
    w.child = pm.fork(path.join(__dirname, 'kill-mixed-worker.cjs'),
      [f.id, raw.id, id, epoch, rawAcked[id], LANES, PAGES, READERS].map(String), { stdio: ['ignore', 'inherit', 'inherit'] });
    w.pid = w.child.pid;
    workers.set(id, w);
    w.child.on('message', (m) => {
      if (m.ready) w.slot = m.slot;
      if (m.error) fail(`worker ${id} (pid ${w.pid}): ${m.error}`);
      if (m.t === undefined) return;
      if (!w.lastT) {
        maxStartup = Math.max(maxStartup, m.t - w.forkedAt);
      } else if (m.t - w.lastT > maxStall) {
        maxStall = m.t - w.lastT;
        // What the silence ended with (steps of 500 ms or more) and the kills around it, so
        // a long one says whether a kill, a lock, the WAL or the device held the worker up.
        const from = w.lastT;
        longestSilence = {
          worker: id, pid: w.pid, ms: maxStall, slowSteps: m.slow || [],
          killsDuring: [...killed.values()].filter((k) => k >= from - 1000 && k <= m.t).map((k) => k - from),
        };
      }
      w.lastT = Math.max(w.lastT, m.t);
      w.ready = true;
      for (const [lane, seq, page] of m.c) ackLog.push([lane, w.epoch, seq, page]);
      commitsAcked += m.c.length;
      poolReads += m.reads;
      rawReads += m.rawReads;
      if (m.raw !== undefined) rawAcked[id] = Math.max(rawAcked[id], m.raw);
    });
    w.child.on('exit', (code, signal) => {
      if (workers.get(id) === w) workers.delete(id);
      if (!killed.has(w.pid) && !stopping) fail(`worker ${id} (pid ${w.pid}) exited on its own (code ${code}, signal ${signal})`);
      if (!stopping) setTimeout(() => { if (!stopping) { restarts++; spawn(id); } }, Math.random() * 50);
    });
  }

  // The postmaster's exit handling has cleaned the dead worker's slot (pm 'exit' runs
  // cleanupProcess first): check what it left behind, within CHECK_MS.
  pm.on('exit', (ev) => {
    const at = killed.get(ev.pid);
    if (at === undefined) return;
    checks.push((async () => {
      const t0 = Date.now();
      // Cleanup aborted the dead process's claims whose IO never reached a ring; a claim
      // whose IO is in flight (even if not yet marked submitted) ends with its completion.
      // Either way, none may outlive the bounded wait below.
      const mine = () => pm.buffers.ioInProgress().filter((b) => b.pid === ev.pid);
      // Its in-flight handles are orphans now; each must complete (and free) in time.
      const snap = pm.handleSnapshot();
      const orphans = snap.filter((h) => h.orphan);
      orphansAwaited += orphans.length;
      const stillThere = () => {
        const now = new Set(pm.handleSnapshot().map((h) => `${h.index}:${h.generation}`));
        return orphans.filter((h) => now.has(`${h.index}:${h.generation}`));
      };
      let left = stillThere();
      let bufs = mine();
      while ((left.length || bufs.length) && Date.now() - t0 < CHECK_MS && !pm.closed) {
        await sleep(10);
        left = stillThere();
        bufs = mine();
      }
      if (pm.closed) return;
      maxCleanupMs = Math.max(maxCleanupMs, Date.now() - t0);
      if (bufs.length) {
        stuckBuffers += bufs.length;
        fail(`buffer(s) still io-in-progress for dead pid ${ev.pid} after ${CHECK_MS} ms: ${JSON.stringify(bufs)}`);
      }
      if (left.length) {
        leakedHandles += left.length;
        fail(`${left.length} orphaned IO handle(s) of dead pid ${ev.pid} still in use after ${CHECK_MS} ms`);
      }
      // Survivors (alive at the kill) must each report progress after it.
      const survivors = [...workers.values()].filter((w) => w.pid !== ev.pid && w.ready && w.forkedAt < at);
      while (survivors.some((w) => workers.get(w.id) === w && w.lastT < at) && Date.now() - at < CHECK_MS && !pm.closed) await sleep(10);
      const silent = survivors.filter((w) => workers.get(w.id) === w && w.lastT < at);
      if (silent.length && !pm.closed) fail(`worker(s) ${silent.map((w) => w.id)} made no progress for ${CHECK_MS} ms after a kill`);
    })());
  });

  for (let id = 0; id < WORKERS; id++) spawn(id);
  let lastLog = Date.now();
  while (kills < KILLS && !failure && Date.now() - started < SECONDS * 1000) {
    await sleep(20 + Math.random() * 200);
    if (maxStall > STALL_MS) fail(`a worker made no progress for ${maxStall} ms: ${JSON.stringify(longestSilence)}`);
    const ready = [...workers.values()].filter((w) => w.ready);
    if (ready.length === 0) continue;
    const victim = ready[Math.floor(Math.random() * ready.length)];
    killed.set(victim.pid, Date.now());
    victim.child.kill('SIGKILL');
    kills++;
    if (Date.now() - lastLog > 5000) {
      lastLog = Date.now();
      process.stderr.write(`kills ${kills}/${KILLS}, commits acked ${commitsAcked}, max stall ${maxStall} ms\n`);
    }
  }
  await Promise.all(checks);
  // Quiesce: kill the rest (a crash, not a shutdown), then nothing may stay in use.
  stopping = true;
  const exits = [...workers.values()].map((w) => new Promise((r) => { killed.set(w.pid, Date.now()); w.child.once('exit', r); w.child.kill('SIGKILL'); }));
  await Promise.all(exits);
  await sleep(50);
  await Promise.all(checks);
  const deadline = Date.now() + CHECK_MS;
  while ((pm.handlesInUse() > 0 || pm.buffers.stats().ioInProgress > 0) && Date.now() < deadline) await sleep(20);
  const endHandles = pm.handlesInUse();
  const endStats = pm.buffers.stats();
  if (endHandles) { leakedHandles += endHandles; fail(`${endHandles} IO handles still in use after quiescing`); }
  if (endStats.ioInProgress) { stuckBuffers += endStats.ioInProgress; fail(`${endStats.ioInProgress} buffers still io-in-progress after quiescing`); }
  // Only the postmaster's background writer may pin; it is idle now. A pin left here is
  // a dead process's pin that cleanup missed.
  pm.buffers.stopBackgroundWriter();
  const pinDeadline = Date.now() + 3000;  // a checkpoint's flushAll may still hold pins
  while (pm.buffers.stats().pinned > 0 && Date.now() < pinDeadline) await sleep(20);
  const pinsLeft = pm.buffers.stats().pinned;
  // Whose are they? (a record of a live slot: a leak in the postmaster; none: a dead
  // process's pin that cleanup could not see)
  const pinDiagnosis = pinsLeft ? { records: require(path.join(__dirname, '..', 'dist', 'core', 'native.js')).native.bpPinRecords(pm._native()), processes: pm.stats().processes.map((p) => ({ slot: p.slot, pid: p.pid, kind: p.kind })) } : null;
  const walStats = pm.wal.stats();
  const stats = pm.stats();
  const poolGlobal = endStats.global;
  await pm.stop({ checkpoint: false });  // no shutdown checkpoint, no flushAll: recovery must bring the commits back

  // ---- recovery: a new postmaster replays the WAL into its pool -------------------
  const counters = { records: 0, applied: 0, bad: 0 };
  let fileIdP = null;
  const fileId = (db) => (fileIdP ??= db.files.open('pages.dat').then((h) => h.id));
  const pm2 = await rm.Postmaster.start(startOptions(dataDir, P.makeRedo(fileId, counters)));
  const recovery = pm2.wal.recovery;
  const fid = await fileId(pm2);
  const found = Array.from({ length: PAGES }, () => new BigUint64Array(WORKERS * LANES));
  let inconsistentCells = 0;
  for (let p = 0; p < PAGES; p++) {
    const b = await pm2.buffers.read(fid, p);  // checksum verified on load
    try {
      const c = P.cells(b.page);
      for (let lane = 0; lane < P.maxLanes; lane++) {
        const v = c[P.cellIndex(lane)];
        if (!P.cellOk(p, lane, v) || (v !== 0n && lane >= WORKERS * LANES)) inconsistentCells++;
        else if (lane < WORKERS * LANES) found[p][lane] = v & P.VMASK;
      }
    } finally {
      b.release();
    }
  }
  await pm2.stop();
  let lost = 0;
  for (const [lane, ep, seq, page] of ackLog) {
    if (found[page][lane] < ((BigInt(ep) << 32n) | BigInt(seq))) lost++;
  }
  if (lost) fail(`${lost} acknowledged commits missing after recovery`);
  if (inconsistentCells) fail(`${inconsistentCells} inconsistent cells after recovery`);
  if (counters.bad) fail(`${counters.bad} WAL records with a bad cell check replayed`);

  // ---- raw records: every acknowledged one on disk, intact --------------------------
  const { checked: rawChecked, lost: rawLost } = checkRecords(path.join(dataDir, 'raw.dat'), rawAcked);
  if (rawLost) fail(`${rawLost} acknowledged raw records missing or wrong`);
  if (pinsLeft) fail(`${pinsLeft} buffers still pinned with no process alive (pin records: ${JSON.stringify(pinDiagnosis)})`);
  fs.rmSync(dir, { recursive: true, force: true });

  const result = {
    scenario: 'kill', workload: 'mixed', backend: pm.features.backend, workers: WORKERS, lanesPerWorker: LANES, readersPerWorker: READERS,
    dataPages: PAGES, poolPages: BUFFERS, kills, restarts, seconds: (Date.now() - started) / 1000,
    acknowledgedCommitsChecked: ackLog.length, lost, acknowledgedRawRecordsChecked: rawChecked, rawLost,
    poolReadsVerified: poolReads, rawReadsVerified: rawReads,
    maxStallMs: maxStall, longestSilence, maxWorkerStartupMs: maxStartup, maxKillCleanupMs: maxCleanupMs,
    stuckBuffers, leakedHandles, orphanHandlesAwaited: orphansAwaited, pinsLeft, inconsistentCells,
    faults: stats.rings.reduce((a, r) => a + r.submitLockRepairs + r.completionLockRepairs, 0),
    submitLockRepairs: stats.rings.reduce((a, r) => a + r.submitLockRepairs, 0),
    deadProcessesCleaned: stats.deadProcessesCleaned,
    pool: { evictions: poolGlobal.evictions, writes: poolGlobal.writes, reads: poolGlobal.reads, completedByOther: poolGlobal.completedByOther },
    wal: { commits: walStats.commits, fdatasyncs: walStats.fdatasyncs, paddings: walStats.paddings, flusherTakeovers: walStats.flusherTakeovers },
    recovery: { fromLsn: String(recovery.fromLsn), endLsn: String(recovery.endLsn), records: recovery.records, stop: recovery.stop, replayedApplied: counters.applied },
    ok: !failure, failure,
    command: `${backendOpt === 'threads' ? 'RINGMASTER_BACKEND=threads ' : ''}npm run soak -- kill --workload mixed --kills ${KILLS} --workers ${WORKERS}`,
    machine: { kernel: os.release(), cores: os.cpus().length, node: process.version },
  };
  if (!process.env.SOAK_NO_RESULTS) {
    fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
    fs.writeFileSync(path.join(__dirname, 'results', `kill-mixed-${result.backend}.json`), JSON.stringify(result, null, 2));
  }
  process.stderr.write(`kill soak (mixed, ${result.backend}): ${kills} kills, ${restarts} restarts, ${ackLog.length} acked commits checked, ${lost} lost, ` +
    `${rawChecked} raw records checked, ${rawLost} lost, max stall ${maxStall} ms, stuck buffers ${stuckBuffers}, leaked handles ${leakedHandles}, ` +
    `faults repaired ${result.faults}: ${failure ? `FAIL: ${failure}` : 'OK'}\n`);
  console.log(JSON.stringify(result));
  process.exit(failure ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
