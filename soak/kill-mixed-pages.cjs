// Page format of the mixed kill soak, shared by the controller, its workers and the
// recovery check. Page p of pages.dat: the pool's 16-byte header, then one 8-byte cell
// per lane (lane = worker id * lanes per worker + session). A commit of lane L on page p
// sets cell L to
//   check:16 | epoch:16 | seq:32      (version = epoch:seq, ordered)
// with ONE 8-byte Atomics.store, so a worker SIGKILLed mid-update cannot leave a torn
// cell, only a whole new value that may be unlogged (killed before its WAL append). An
// epoch is one worker incarnation (global counter), so versions of a restarted lane are
// always above anything its dead predecessor wrote, logged or not. `check` ties a value
// to its page and lane: a page from the wrong block or a torn page fails it.
const PS = 4096;
const KIND_CELL = 1;
const VMASK = (1n << 48n) - 1n;

function check16(page, lane, epoch, seq) {
  let h = Math.imul(page + 0x9e37, 0x85ebca6b) ^ Math.imul(lane + 0x7f4a, 0xc2b2ae35);
  h = Math.imul(h ^ epoch, 0x27d4eb2f) ^ seq;
  h = Math.imul(h ^ (h >>> 15), 0x165667b1);
  return (h ^ (h >>> 13)) & 0xffff;
}

function cellValue(page, lane, epoch, seq) {
  return (BigInt(check16(page, lane, epoch, seq)) << 48n) | (BigInt(epoch) << 32n) | BigInt(seq >>> 0);
}

function decodeCell(v) {
  return { check: Number(v >> 48n), epoch: Number((v >> 32n) & 0xffffn), seq: Number(v & 0xffffffffn), version: v & VMASK };
}

// A cell is consistent if it is zero (never written) or its check matches its place.
function cellOk(page, lane, v) {
  if (v === 0n) return true;
  const c = decodeCell(v);
  return c.check === check16(page, lane, c.epoch, c.seq);
}

const cells = (bytes) => new BigUint64Array(bytes.buffer, bytes.byteOffset, bytes.length / 8);
const cellIndex = (lane) => 2 + lane;  // after the 16-byte page header
const maxLanes = PS / 8 - 2;

function encodeRecord(page, lane, value) {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(page, 0);
  b.writeUInt32LE(lane, 4);
  b.writeBigUInt64LE(value, 8);
  return b;
}
function decodeRecord(payload) {
  return { page: payload.readUInt32LE(0), lane: payload.readUInt32LE(4), value: payload.readBigUInt64LE(8) };
}

// Redo into the pool: the cell keeps the higher version (idempotent, order-insensitive).
// `layout`: where the cells are (powercut-pages.cjs spreads them over the page).
function makeRedo(fileId, counters, layout = { cellIndex, maxLanes }) {
  const { cellIndex: at, maxLanes: lanes } = layout;
  return {
    [KIND_CELL]: async (rec, db) => {
      const { page, lane, value } = decodeRecord(rec.payload);
      counters.records++;
      if (lane >= lanes || !cellOk(page, lane, value)) {
        counters.bad++;
        return;
      }
      const b = await db.buffers.read(await fileId(db), page);
      try {
        await b.lockExclusive();
        const c = cells(b.page);
        if ((c[at(lane)] & VMASK) < (value & VMASK)) {
          Atomics.store(c, at(lane), value);
          b.markDirty(rec.endLsn);
          counters.applied++;
        }
      } finally {
        b.release();
      }
    },
  };
}

module.exports = { PS, KIND_CELL, VMASK, check16, cellValue, decodeCell, cellOk, cells, cellIndex, maxLanes, encodeRecord, decodeRecord, makeRedo };
