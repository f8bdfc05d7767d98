// Shared by the power-cut soak's host and workers (soak/powercut.cjs).
//
// Full-page images (PostgreSQL's full_page_writes rule: the first change of a page after
// a checkpoint's redo point logs an image of the whole page, so that recovery, which
// starts at that redo point, can rebuild a page whose last write was torn) come from the
// library: the workers append each page change with `db.wal.append(kind, payload,
// { page })`, which logs the image in the same reservation when the page needs one,
// decided atomically against a checkpoint choosing its redo point (wal/README.md). The
// soak needs no fence of its own around its checkpoints any more.
'use strict';
const path = require('node:path');
const rm = require(path.join(__dirname, '..'));

const KIND_RECORD = 2;   // a plain WAL commit (kill-mixed-pages.cjs uses kind 1 for page cells)
const RECORD_BYTES = 40; // payload of a plain record: its id, padded

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function recordPayload(id) {
  return Buffer.from(id.padEnd(RECORD_BYTES, '.'));
}
function recordId(payload) {
  return payload.toString('latin1').replace(/\.+$/, '');
}

module.exports = { KIND_RECORD, RECORD_BYTES, recordPayload, recordId, sleep, rm };
