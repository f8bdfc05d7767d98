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
const L = require('./lanes.cjs');
const { rm } = C;

const a = JSON.parse(process.argv[2]);
const { rnd } = L;
const INJECT_ERROR = process.env.POWERCUT_INJECT_ERROR === '1';

const acks = L.ackBatcher(() => ({ p: [], r: [], ckpt: 0 }), (m) => process.send({ acks: m }));
const progress = () => acks.progress();

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
      // Every part of the page changes (stamp): a torn write shows.
      await L.commitCell(db, f, P, page, lane, value, { stamp: true, image: a.pageImages });
      acks.pending().p.push([lane, page, seq]);
      progress();
      // For the controller's own check (test/long/powercut.test.ts): an error reported while
      // LazyFS is alive must fail the round, not pass for LazyFS having crashed by itself.
      if (INJECT_ERROR && a.workerId === 0 && seq === 20) fail(new Error('injected error (POWERCUT_INJECT_ERROR=1)'));
    }
  }

  async function recordLane(k) {
    for (let seq = 1; !stopping; seq++) {
      const id = `e${a.epoch}k${k}:${seq}`;
      const lsn = await L.commitRecord(db, C.KIND_RECORD, C.recordPayload(id));
      acks.pending().r.push([id, lsn.toString()]);
      progress();
    }
  }

  async function checkpointer() {
    while (!stopping) {
      await C.sleep(150 + rnd(450));
      await db.wal.checkpoint();
      acks.pending().ckpt++;
      progress();
    }
  }

  const lanes = Array.from({ length: a.lanes }, (_, l) => pageLane(a.workerId * a.lanes + l));
  const records = Array.from({ length: a.recordLanes }, (_, k) => recordLane(a.workerId * a.recordLanes + k));
  await Promise.all([...lanes, ...records, ...(a.checkpoints ? [checkpointer()] : [])]);
})().catch(fail);
