// Shared by the power-cut soak's host and workers (soak/powercut.cjs).
//
// Full-page images, PostgreSQL's full_page_writes rule: the first change of a page after
// a checkpoint's redo point logs an image of the whole page (before the change's own
// record), so that recovery can rebuild a page whose last write was torn. "After the redo
// point" must be decided against the redo point of the checkpoint that recovery will
// start from, and the decision and the appends must not straddle the moment a checkpoint
// chooses that point.
//
// ringmaster does not give a user what that needs (see RELIABILITY.md, "Power cuts"): the
// redo LSN is not public, it is published only when the checkpoint ends (a page first
// changed during the checkpoint's flush would be judged against the previous one), and
// no append can be checked against it atomically (PostgreSQL re-checks RedoRecPtr inside
// XLogInsert and redoes the record with the image if it moved). So this soak fences its
// own checkpoints, as an application would have to:
//
//   - a page update holds a *section* (a shared count) from its image decision to its
//     record's append;
//   - a checkpoint (the postmaster's interval checkpoints and the workers' own, all
//     through fencedCheckpoint) takes the fence: it blocks new sections, waits for the
//     running ones, reads insertLsn() (no page record can be appended until the fence
//     is released, so the redo point the library chooses next is past no page change
//     that this value misses), starts the checkpoint, whose redo point is chosen
//     synchronously inside checkpoint() when no other checkpoint runs (one at a time
//     here), and releases the fence;
//   - until that checkpoint ends and its redo point is published here, every page update
//     logs an image (`active`); after it, an image is logged when the page LSN is at or
//     below the published redo point.
//
// Layout of the fence (64 bytes of arena, made by the host, offset passed to workers):
// i32[0] mutex (one fenced checkpoint at a time), i32[1] writer (blocks new sections),
// i32[2] sections in progress, i32[3] active (a checkpoint chose its redo point and has
// not ended), u64 at byte 16: the redo point of the last checkpoint that ended.
'use strict';
const path = require('node:path');
const rm = require(path.join(__dirname, '..'));
const addon = require(path.join(__dirname, '..', 'build', 'Release', 'ringmaster.node'));  // internal: walState (the redo LSN is not public)

const FENCE_BYTES = 64;
const MUTEX = 0;
const WRITER = 1;
const SECTIONS = 2;
const ACTIVE = 3;
const KIND_RECORD = 2;   // a plain WAL commit (kill-mixed-pages.cjs uses kind 1 for page cells)
const RECORD_BYTES = 40; // payload of a plain record: its id, padded

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function fenceView(db, offset) {
  const bytes = db.arenaSlice(offset, FENCE_BYTES).bytes;
  return {
    i32: new Int32Array(bytes.buffer, bytes.byteOffset, 4),
    redo: new BigInt64Array(bytes.buffer, bytes.byteOffset + 16, 1),
  };
}

// Every append of the soak (page images, page records, plain records) is made in a
// section. Enters one; resolves with the redo point to judge the page against
// (-1n while a checkpoint is between choosing its redo point and ending: log an image).
async function enterSection(f) {
  for (;;) {
    if (Atomics.load(f.i32, WRITER) === 0) {
      Atomics.add(f.i32, SECTIONS, 1);
      if (Atomics.load(f.i32, WRITER) === 0) {
        if (Atomics.load(f.i32, ACTIVE) !== 0) return -1n;
        return Atomics.load(f.redo, 0);
      }
      Atomics.sub(f.i32, SECTIONS, 1);
    }
    await sleep(1);
  }
}

function leaveSection(f) {
  Atomics.sub(f.i32, SECTIONS, 1);
}

// Runs db.wal.checkpoint() (through `run`, the original method) under the fence.
async function fencedCheckpoint(db, f, run) {
  const deadline = Date.now() + 120000;
  while (Atomics.compareExchange(f.i32, MUTEX, 0, 1) !== 0) {
    if (Date.now() > deadline) throw new Error('fence: another checkpoint held it for 120 s');
    await sleep(2);
  }
  try {
    Atomics.store(f.i32, WRITER, 1);
    let p;
    try {
      while (Atomics.load(f.i32, SECTIONS) !== 0) {
        if (Date.now() > deadline) throw new Error('fence: page-update sections did not drain in 120 s');
        await sleep(1);
      }
      const redo = db.wal.insertLsn();
      Atomics.store(f.i32, ACTIVE, 1);
      p = run().then((r) => {
        // Every append of this soak is made in a section, so nothing was appended between
        // insertLsn() above and the library's choice: they must be equal. If not, the
        // library chose its redo point later (after an await), and this fence no longer
        // proves the image rule: say so rather than report torn pages as lost.
        const chosen = addon.walState(db._native()).redoLsn;
        if (chosen !== redo) throw new Error(`fence: the checkpoint chose redo ${chosen}, not ${redo} (does checkpoint() still choose its redo point before its first await?)`);
        Atomics.store(f.redo, 0, redo);
        return r;
      });
    } finally {
      Atomics.store(f.i32, WRITER, 0);
    }
    return await p;
  } finally {
    Atomics.store(f.i32, ACTIVE, 0);
    Atomics.store(f.i32, MUTEX, 0);
  }
}

function recordPayload(id) {
  return Buffer.from(id.padEnd(RECORD_BYTES, '.'));
}
function recordId(payload) {
  return payload.toString('latin1').replace(/\.+$/, '');
}

module.exports = { FENCE_BYTES, KIND_RECORD, RECORD_BYTES, fenceView, enterSection, leaveSection, fencedCheckpoint, recordPayload, recordId, sleep, rm };
