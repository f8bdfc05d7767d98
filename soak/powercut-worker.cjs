// Power-cut soak worker (soak/powercut.cjs), forked by powercut-host.cjs. Concurrently:
//  - page lanes: a page update in the documented safe order (lock exclusive -> change ->
//    markDirty() -> wal.append(kind, payload, { page }) -> markDirty(lsn) -> release),
//    then wal.flush; acknowledged only after the flush resolved. The append logs a
//    full-page image with the change when the page needs one (PostgreSQL's
//    full_page_writes rule; the `no-page-images` control appends without the page);
//  - record lanes: a plain WAL record appended and flushed, acknowledged with its LSN;
//  - a checkpointer: db.wal.checkpoint() every 150-600 ms.
// Acknowledgements go to the host (which forwards them to the controller) once per tick.
'use strict';
const path = require('node:path');
const P = require('./powercut-pages.cjs');
const C = require('./powercut-common.cjs');
const { rm } = C;

const a = JSON.parse(process.argv[2]);
const rnd = (n) => Math.floor(Math.random() * n);
const INJECT_ERROR = process.env.POWERCUT_INJECT_ERROR === '1';

let pending = { p: [], r: [], ckpt: 0 };
let scheduled = false;
function progress() {
  if (scheduled) return;
  scheduled = true;
  setImmediate(() => {
    scheduled = false;
    const m = pending;
    pending = { p: [], r: [], ckpt: 0 };
    process.send({ acks: m });
  });
}

let stopping = false;
function fail(e) {
  if (stopping) return;
  stopping = true;
  // After a power cut (LazyFS gone) every IO fails: the controller knows and ignores it.
  process.send?.({ error: String((e && e.stack) || e), code: e && e.code });
}

(async () => {
  const db = await rm.attach();
  void db.wal;  // hooks the pool's writeback to the WAL in this environment
  db.buffers.configure({ waitForOwnLocks: true });  // this worker's page lanes share pages
  const f = db.files.get(a.pagesId);
  process.send({ ready: true, pid: process.pid });

  async function pageLane(lane) {
    for (let seq = 1; !stopping; seq++) {
      const page = rnd(a.pages);
      const value = P.cellValue(page, lane, a.epoch, seq);
      let lsn;
      const b = await db.buffers.read(f, page);
      try {
        await b.lockExclusive();
        const cells = P.cells(b.page);
        Atomics.store(cells, P.cellIndex(lane), value);
        P.stamp(cells, value);  // every part of the page changes: a torn write shows
        b.markDirty();
        // With the page: a full-page image first, in the same reservation, if the page's
        // LSN is at or below the redo point chosen last (the library decides, atomically).
        lsn = await db.wal.append(P.KIND_CELL, P.encodeRecord(page, lane, value), a.pageImages ? { page: b } : undefined);
        b.markDirty(lsn);
      } finally {
        b.release();
      }
      await db.wal.flush(lsn);
      pending.p.push([lane, page, seq]);
      progress();
      // For the controller's own check (test/long/powercut.test.ts): an error reported while
      // LazyFS is alive must fail the round, not pass for LazyFS having crashed by itself.
      if (INJECT_ERROR && a.workerId === 0 && seq === 20) fail(new Error('injected error (POWERCUT_INJECT_ERROR=1)'));
    }
  }

  async function recordLane(k) {
    for (let seq = 1; !stopping; seq++) {
      const id = `e${a.epoch}k${k}:${seq}`;
      const lsn = await db.wal.append(C.KIND_RECORD, C.recordPayload(id));
      await db.wal.flush(lsn);
      pending.r.push([id, lsn.toString()]);
      progress();
    }
  }

  async function checkpointer() {
    while (!stopping) {
      await C.sleep(150 + rnd(450));
      await db.wal.checkpoint();
      pending.ckpt++;
      progress();
    }
  }

  const lanes = Array.from({ length: a.lanes }, (_, l) => pageLane(a.workerId * a.lanes + l));
  const records = Array.from({ length: a.recordLanes }, (_, k) => recordLane(a.workerId * a.recordLanes + k));
  await Promise.all([...lanes, ...records, ...(a.checkpoints ? [checkpointer()] : [])]);
})().catch(fail);
