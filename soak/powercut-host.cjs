// Power-cut soak host (soak/powercut.cjs): in its own process group (the controller
// SIGKILLs the whole group), on the LazyFS mount. Starts a postmaster, which recovers
// (full-page images, then the redo handlers into the buffer pool), reports what it
// recovered (every page's cells, the plain records replayed, pages it could not read),
// and, unless `verifyOnly`, waits for 'go' and runs the round: the background writer,
// checkpoints every `checkpointIntervalMs` and W forked workers (powercut-worker.cjs).
// Everything the workers acknowledge is forwarded.
'use strict';
const path = require('node:path');
const P = require('./powercut-pages.cjs');
const C = require('./powercut-common.cjs');
const { rm } = C;

const a = JSON.parse(process.argv[2]);
const send = (m) => process.send(m);
// The controller is gone (it died, or was killed without cleaning up): so is the round.
process.on('disconnect', () => process.kill(0, 'SIGKILL'));

(async () => {
  const replayed = [];
  const counters = { records: 0, applied: 0, bad: 0 };
  let fileIdP = null;
  const fileId = (db) => (fileIdP ??= db.files.open('pages.dat').then((h) => h.id));
  const redo = {
    ...P.makeRedo(fileId, counters),
    [C.KIND_RECORD]: (r) => { replayed.push([C.recordId(r.payload), r.endLsn.toString()]); },
  };
  const t0 = Date.now();
  let pm;
  try {
    pm = await rm.Postmaster.start({
      dataDir: a.dataDir,
      arenaSize: 2 << 20,
      ...(a.maxFiles ? { maxFiles: a.maxFiles } : {}),
      backend: process.env.RINGMASTER_BACKEND === 'threads' ? 'threads' : 'auto',
      bufferPool: { pages: a.buffers, pageSize: P.PS },
      wal: {
        segmentSize: a.segmentSize, bufferSize: a.walBufferSize, keepSegments: a.keepSegments,
        checkpointIntervalMs: a.verifyOnly ? 0 : a.checkpointIntervalMs,
        direct: a.variant === 'direct' || a.variant === 'direct-dsync', walSync: a.variant === 'dsync' || a.variant === 'direct-dsync' ? 'dsync' : 'fdatasync',
        redo,
      },
    });
  } catch (e) {
    send({ recoveryError: `${e.code ?? ''} ${e.message}`.trim() });
    return;
  }
  const recoveryMs = Date.now() - t0;
  const rec = pm.wal.recovery;
  // Count the postmaster's interval checkpoints.
  let checkpoints = 0;
  const original = pm.wal.checkpoint.bind(pm.wal);
  pm.wal.checkpoint = () => original().then((r) => {
    checkpoints++;
    return r;
  });
  const f = await pm.files.open('pages.dat');
  // The page check: every cell of every page, through the pool (checksums verified).
  const cells = [];
  const unreadable = [];
  for (let p = 0; p < a.pages; p++) {
    try {
      const b = await pm.buffers.read(f, p);
      try {
        const c = P.cells(b.page);
        const row = [];
        for (let lane = 0; lane < P.maxLanes; lane++) row.push(c[P.cellIndex(lane)].toString(16));
        cells.push(row);
      } finally {
        b.release();
      }
    } catch (e) {
      unreadable.push({ page: p, code: e.code, message: e.message });
      cells.push(null);
    }
  }
  send({
    recovered: {
      fromLsn: rec.fromLsn.toString(), endLsn: rec.endLsn.toString(), records: rec.records, stop: rec.stop, tornTail: rec.tornTail,
      recoveryMs, cells, unreadable, replayed, redoApplied: counters.applied, redoBad: counters.bad,
      // The WAL's settings in force: with walSync 'dsync' it sends no sync op (the segments
      // are O_DSYNC), unless it fell back to the fdatasync chain (FUSE under io_uring).
      wal: { walSync: pm.wal.stats().walSync, direct: pm.wal.stats().direct, backend: pm.features.backend },
    },
  });
  if (a.verifyOnly) return;  // the controller kills this process group once it has checked
  await new Promise((resolve) => process.once('message', resolve));  // 'go'
  process.on('message', (m) => {
    if (m === 'insertLsn') send({ insertLsn: pm.wal.insertLsn().toString() });
  });

  // Positive control on the WAL side: every fdatasync submitted through the rings
  // completes with success without reaching the kernel (a test hook; the rules live in
  // the shared segment, so they hold in the workers too). Acknowledged commits must be lost.
  if (a.control === 'skip-fdatasync') {
    if (!pm._native().debugSetFault(0, { opMask: 1 << 4 /* fdatasync */, error: 0, repeat: 1 })) {
      send({ error: 'skip-fdatasync needs RINGMASTER_TEST_HOOKS=1' });
      return;
    }
  }

  pm.buffers.startBackgroundWriter({ intervalMs: 40, maxPages: 4 });
  pm.on('wal-failed', (e) => send({ error: `wal-failed: ${e.message}`, code: e.code }));

  let ready = 0;
  for (let i = 0; i < a.workers; i++) {
    const args = {
      pagesId: f.id, workerId: i, epoch: a.epochs[i],
      lanes: a.lanes, recordLanes: a.recordLanes, pages: a.pages, checkpoints: a.workerCheckpoints,
      pageImages: a.control !== 'no-page-images',
    };
    const w = pm.fork(path.join(__dirname, 'powercut-worker.cjs'), [JSON.stringify(args)], { stdio: ['ignore', 'inherit', 'inherit'] });
    w.on('message', (m) => {
      if (m.ready && ++ready === a.workers) send({ running: true });
      if (m.acks || m.error) send({ worker: i, ...m });
    });
    w.on('exit', (code, signal) => send({ workerExit: i, code, signal }));
  }
  // Progress of the round's machinery, for the results (the group dies without warning).
  setInterval(() => {
    try {
      const g = pm.buffers.stats().global;
      const w = pm.wal.stats();
      send({ stats: { checkpoints, evictions: g.evictions, pageWrites: g.writes, pageReads: g.reads, walAppends: w.appends, walFdatasyncs: w.fdatasyncs, pageImages: w.pageImages, imageRetries: w.imageRetries, insertLsn: pm.wal.insertLsn().toString() } });
    } catch {
      /* closing */
    }
  }, 100).unref();
})().catch((e) => send({ error: String((e && e.stack) || e), code: e && e.code }));
