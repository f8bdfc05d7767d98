// Soak worker: appends fixed-size records to its own region of a shared file in
// linked batches (write -> write -> ... -> fdatasync), reads back a random earlier
// record, and acknowledges each record to the controller only after its fdatasync
// completed. The controller SIGKILLs workers at random moments.
const path = require('node:path');
const rm = require(path.join(__dirname, '..'));

const { REGION_BYTES, record: rawRecord } = require('./raw-records.cjs');
const L = require('./lanes.cjs');

const [fileId, regionArg, startSeqArg] = process.argv.slice(2).map(Number);
const REGION = regionArg * REGION_BYTES;
const record = (seq) => rawRecord(regionArg, seq);

(async () => {
  const db = await rm.attach();
  const f = db.files.get(fileId);
  let seq = startSeqArg;
  process.send({ ready: true, pid: process.pid });
  for (;;) {
    seq = await L.rawBatch(db, f, REGION, seq, record);
    process.send({ ack: seq });  // records [start, seq) are durable
    if (Math.random() < 0.3) await L.rawReadBack(db, f, REGION, startSeqArg, seq, record);
  }
})().catch((e) => {
  process.send?.({ error: e.message });
  process.exit(1);
});
