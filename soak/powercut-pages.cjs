// Page format of the power-cut soak: kill-mixed-pages.cjs's cells (one 8-byte cell per
// lane, `check:16 | epoch:16 | seq:32`, set with one Atomics.store), but
//  - spread over the whole page instead of packed after the header, and
//  - with a stamp in every 512-byte part of the page (its last 8 bytes), which every
//    update sets to the update's cell value.
// So any torn write of a page (LazyFS torn-op: some of its 2, 4 or 8 parts reach the disk)
// mixes two versions in a way the page checksum sees, and only a full-page image can
// repair it. With packed cells a tear would mostly leave the old or the new page, whole.
// Stamps are not logged or replayed: nothing checks them but the checksum.
'use strict';
const K = require('./kill-mixed-pages.cjs');

const PART_SLOTS = 512 / 8;
const STAMPS = Array.from({ length: K.PS / 512 }, (_, k) => k * PART_SLOTS + PART_SLOTS - 1);
// Cell slots: after the 16-byte header, not a stamp.
const SLOTS = [];
for (let i = 2; i < K.PS / 8; i++) if (!STAMPS.includes(i)) SLOTS.push(i);
const maxLanes = SLOTS.length;
const STRIDE = 193;  // prime, not a factor of SLOTS.length: lanes 0, 1, 2, ... land far apart
const cellIndex = (lane) => SLOTS[(lane * STRIDE) % SLOTS.length];

function stamp(cells, value) {
  for (const i of STAMPS) Atomics.store(cells, i, value);
}

// Redo into the pool: kill-mixed-pages.cjs's, with these cells.
const makeRedo = (fileId, counters) => K.makeRedo(fileId, counters, { cellIndex, maxLanes });

module.exports = { ...K, maxLanes, cellIndex, stamp, makeRedo };
