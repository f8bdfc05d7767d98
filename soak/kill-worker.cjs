// Soak worker: appends fixed-size records to its own region of a shared file in
// linked batches (write -> write -> ... -> fdatasync), reads back a random earlier
// record, and acknowledges each record to the controller only after its fdatasync
// completed. The controller SIGKILLs workers at random moments.
const path = require('node:path');
const rm = require(path.join(__dirname, '..'));

const { REC, REGION_BYTES, record: rawRecord } = require('./raw-records.cjs');

const [fileId, regionArg, startSeqArg] = process.argv.slice(2).map(Number);
const REGION = regionArg * REGION_BYTES;
const record = (seq) => rawRecord(regionArg, seq);

(async () => {
  const db = await rm.attach();
  const f = db.files.get(fileId);
  let seq = startSeqArg;
  process.send({ ready: true, pid: process.pid });
  for (;;) {
    const n = 1 + Math.floor(Math.random() * 8);
    if ((seq + n) * REC > REGION_BYTES) throw new Error('region full: the soak ran longer than its layout allows');
    const b = db.batch();
    for (let i = 0; i < n; i++) b.write(f, REGION + (seq + i) * REC, record(seq + i), { link: true });
    b.fdatasync(f);
    const res = await b.submit();
    if (!res.every((r) => r.ok)) throw new Error(`batch failed: ${res.map((r) => r.result).join(',')}`);
    seq += n;
    process.send({ ack: seq });  // records [start, seq) are durable
    if (seq > startSeqArg + 1 && Math.random() < 0.3) {
      const k = startSeqArg + Math.floor(Math.random() * (seq - startSeqArg));
      const out = new Uint8Array(REC);
      await db.read(f, REGION + k * REC, out);
      if (Buffer.compare(Buffer.from(out), record(k)) !== 0) throw new Error(`record ${k} read back wrong`);
    }
  }
})().catch((e) => {
  process.send?.({ error: e.message });
  process.exit(1);
});
