// Mixed kill soak worker (soak/kill-mixed.cjs). Concurrent sessions:
//  - commit lanes: page update in the documented safe order (lock -> change ->
//    markDirty() -> wal.append -> markDirty(lsn) -> release), then wal.flush; the
//    commit is acknowledged to the controller only after the flush resolved;
//  - pool readers: random pages under the shared lock; every cell must be consistent
//    and this worker's own applied updates must be visible (read-your-writes);
//  - one raw session: linked write -> ... -> fdatasync batches of checksummed records
//    to its own region of raw.dat, acknowledged after the fdatasync, and read-backs.
// Progress goes to the controller once per tick with this process's clock (`t`), so
// stalls are measured in the worker's time, not the (possibly busy) controller's.
const path = require('node:path');
const rm = require(path.join(__dirname, '..'));
const P = require('./kill-mixed-pages.cjs');
const L = require('./lanes.cjs');

const [pagesId, rawId, workerId, epoch, rawStart, lanes, pages, readers] = process.argv.slice(2).map(Number);
const { REGION_BYTES, record } = require('./raw-records.cjs');
const REGION = workerId * REGION_BYTES;
const rawRecord = (seq) => record(workerId, seq);

const acks = L.ackBatcher(() => ({ c: [], raw: undefined, reads: 0, rawReads: 0, slow: [] }), (m) => process.send({ t: Date.now(), ...m }));
const progress = () => acks.progress();
// Steps that took 500 ms or more go with the next progress message (the controller
// names them when it reports a long silence).
const slow = (what, ms) => { acks.pending().slow.push([what, ms]); progress(); };

function fail(e) {
  process.send?.({ error: String((e && e.stack) || e) });
  setTimeout(() => process.exit(1), 100);
}

(async () => {
  const db = await rm.attach();
  void db.wal;  // hooks the pool's writeback to the WAL in this environment
  db.buffers.configure({ waitForOwnLocks: true });  // this worker's lanes and readers share pages
  const f = db.files.get(pagesId);
  const raw = db.files.get(rawId);
  const { rnd } = L;
  // lane (global) -> Map(page -> version applied in the pool by this incarnation)
  const applied = new Map();
  const myLanes = Array.from({ length: lanes }, (_, l) => workerId * lanes + l);
  for (const lane of myLanes) applied.set(lane, new Map());
  process.send({ ready: true, pid: process.pid, slot: db.slot });

  async function commitLane(lane) {
    for (let seq = 1; ; seq++) {
      const page = rnd(pages);
      const value = P.cellValue(page, lane, epoch, seq);
      await L.commitCell(db, f, P, page, lane, value, { onApplied: () => applied.get(lane).set(page, value & P.VMASK), slow });
      acks.pending().c.push([lane, seq, page]);
      progress();
    }
  }

  async function reader() {
    for (;;) {
      const page = rnd(pages);
      const b = await L.step(slow, 'reader: buffers.read', db.buffers.read(f, page));
      try {
        await L.step(slow, 'reader: lockShared', b.lockShared());
        const c = P.cells(b.page);
        for (let lane = 0; lane < P.maxLanes; lane++) {
          const v = c[P.cellIndex(lane)];
          if (!P.cellOk(page, lane, v)) throw new Error(`page ${page} cell ${lane} inconsistent: ${v.toString(16)}`);
        }
        for (const lane of myLanes) {
          const want = applied.get(lane).get(page);
          if (want !== undefined && (c[P.cellIndex(lane)] & P.VMASK) < want) {
            throw new Error(`page ${page} lost lane ${lane}'s applied update ${want.toString(16)} (has ${c[P.cellIndex(lane)].toString(16)})`);
          }
        }
      } finally {
        b.release();
      }
      acks.pending().reads++;
      progress();
    }
  }

  async function rawSession() {
    let seq = rawStart;
    for (;;) {
      seq = await L.step(slow, 'raw: linked writes + fdatasync', L.rawBatch(db, raw, REGION, seq, rawRecord));
      acks.pending().raw = seq;  // records [.., seq) are durable
      progress();
      if (Math.random() < 0.5 && await L.step(slow, 'raw: read back', L.rawReadBack(db, raw, REGION, rawStart, seq, rawRecord))) acks.pending().rawReads++;
    }
  }

  await Promise.all([...myLanes.map(commitLane), ...Array.from({ length: readers }, reader), rawSession()]);
})().catch(fail);
