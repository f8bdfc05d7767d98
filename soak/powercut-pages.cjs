// Page format of the power-cut soak: kill-mixed-pages.cjs's cells (one 8-byte cell per
// lane, `check:16 | epoch:16 | seq:32`, set with one Atomics.store), but spread over the
// whole page instead of packed after the header. A torn page write (LazyFS torn-op: some
// 1/2, 1/4 or 1/8 parts of the write reach the disk) then really mixes two versions of
// the page: the header's checksum no longer matches, and only a full-page image can
// repair it. Packed cells all sit in the first part, so a tear would leave either the
// old or the new page, whole.
'use strict';
const K = require('./kill-mixed-pages.cjs');

const SLOTS = K.PS / 8 - 2;                  // 8-byte slots after the 16-byte header
const STRIDE = 193;                          // prime to SLOTS (510): lanes 0, 1, 2, ... land far apart
const cellIndex = (lane) => 2 + ((lane * STRIDE) % SLOTS);

// Redo into the pool: the cell keeps the higher version (idempotent, order-insensitive).
function makeRedo(fileId, counters) {
  return {
    [K.KIND_CELL]: async (rec, db) => {
      const { page, lane, value } = K.decodeRecord(rec.payload);
      counters.records++;
      if (lane >= K.maxLanes || !K.cellOk(page, lane, value)) {
        counters.bad++;
        return;
      }
      const b = await db.buffers.read(await fileId(db), page);
      try {
        await b.lockExclusive();
        const c = K.cells(b.page);
        if ((c[cellIndex(lane)] & K.VMASK) < (value & K.VMASK)) {
          Atomics.store(c, cellIndex(lane), value);
          b.markDirty(rec.endLsn);
          counters.applied++;
        }
      } finally {
        b.release();
      }
    },
  };
}

module.exports = { ...K, cellIndex, makeRedo };
