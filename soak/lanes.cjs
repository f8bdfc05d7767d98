// The sessions the soak workers run (kill-worker.cjs, kill-mixed-worker.cjs,
// powercut-worker.cjs, crash-worker.cjs), in one place so every soak exercises the same
// sequence of calls:
//  - commitCell: a page lane's update in the documented safe order (lock exclusive ->
//    change -> markDirty() -> wal.append -> markDirty(lsn) -> release), then wal.flush;
//  - commitRecord: a plain WAL record appended, then flushed (group commit);
//  - rawBatch / rawReadBack: linked write -> ... -> fdatasync batches of checksummed
//    records to a worker's own region of a raw file (raw-records.cjs), and read-backs;
//  - ackBatcher: acknowledgements sent to the controller once per tick, not once each.
// Each resolves only once what it acknowledges is durable.
'use strict';
const { REC, REGION_BYTES } = require('./raw-records.cjs');

const rnd = (n) => Math.floor(Math.random() * n);

/**
 * Awaits `p`; when it took `SLOW_MS` or more, calls `slow(what, ms)`. A soak that finds a
 * worker silent for long then names the step it was waiting in, not only the silence.
 */
const SLOW_MS = 500;
async function step(slow, what, p) {
  if (!slow) return p;
  const t0 = Date.now();
  try {
    return await p;
  } finally {
    const ms = Date.now() - t0;
    if (ms >= SLOW_MS) slow(what, ms);
  }
}

/**
 * One page-lane commit: sets cell `lane` of `page` to `value` (layout `P`: kill-mixed-pages.cjs
 * or powercut-pages.cjs). `stamp`: also set every part's stamp (powercut-pages.cjs), so a torn
 * write shows; `image`: append with `{ page }`, so the WAL logs a full-page image first when the
 * page needs one; `onApplied()`: called once the change is in the pool, before the flush.
 * Resolves with the record's LSN once it is durable.
 */
async function commitCell(db, file, P, page, lane, value, { stamp = false, image = false, onApplied, slow } = {}) {
  let lsn;
  const b = await step(slow, 'commit: buffers.read', db.buffers.read(file, page));
  try {
    await step(slow, 'commit: lockExclusive', b.lockExclusive());
    const cells = P.cells(b.page);
    Atomics.store(cells, P.cellIndex(lane), value);
    if (stamp) P.stamp(cells, value);
    b.markDirty();
    // With the page: a full-page image first, in the same reservation, if the page's LSN is
    // at or below the redo point chosen last (the library decides, atomically).
    lsn = await step(slow, 'commit: wal.append', db.wal.append(P.KIND_CELL, P.encodeRecord(page, lane, value), image ? { page: b } : undefined));
    b.markDirty(lsn);
  } finally {
    b.release();
  }
  onApplied?.();
  await step(slow, 'commit: wal.flush', db.wal.flush(lsn));
  return lsn;
}

/** Appends one WAL record and flushes it: resolves with its end LSN once it is durable. */
async function commitRecord(db, kind, payload) {
  const lsn = await db.wal.append(kind, payload);
  await db.wal.flush(lsn);
  return lsn;
}

/**
 * One linked batch of 1..8 records `record(seq)` at `region + seq * REC` of `file`, then
 * fdatasync. Resolves with the next sequence number once the records are durable.
 */
async function rawBatch(db, file, region, seq, record) {
  const n = 1 + rnd(8);
  if ((seq + n) * REC > REGION_BYTES) throw new Error('region full: the soak ran longer than its layout allows');
  const batch = db.batch();
  for (let i = 0; i < n; i++) batch.write(file, region + (seq + i) * REC, record(seq + i), { link: true });
  batch.fdatasync(file);
  const res = await batch.submit();
  if (!res.every((r) => r.ok)) throw new Error(`batch failed: ${res.map((r) => r.result).join(',')}`);
  return seq + n;
}

/** Reads back a random record of [start, seq) and checks it: false when there is none yet. */
async function rawReadBack(db, file, region, start, seq, record) {
  if (seq <= start + 1) return false;
  const k = start + rnd(seq - start);
  const out = new Uint8Array(REC);
  await db.read(file, region + k * REC, out);
  if (Buffer.compare(Buffer.from(out), record(k)) !== 0) throw new Error(`record ${k} read back wrong`);
  return true;
}

/**
 * Acknowledgements collected in `pending()` (a fresh object from `empty()`) and sent with
 * `send(m)` once per turn of the event loop.
 */
function ackBatcher(empty, send) {
  let m = empty();
  let scheduled = false;
  return {
    pending: () => m,
    progress() {
      if (scheduled) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        const out = m;
        m = empty();
        send(out);
      });
    },
  };
}

module.exports = { rnd, step, commitCell, commitRecord, rawBatch, rawReadBack, ackBatcher };
