// Soak worker: appends fixed-size records to its own region of a shared file in
// linked batches (write -> write -> ... -> fdatasync), reads back a random earlier
// record, and acknowledges each record to the controller only after its fdatasync
// completed. The controller SIGKILLs workers at random moments.
const path = require('node:path');
const rm = require(path.join(__dirname, '..'));

const REC = 64;
const [fileId, regionArg, startSeqArg] = process.argv.slice(2).map(Number);
const REGION_BYTES = 2 ** 30;  // 1 GiB (sparse) per worker id: 16M records
const REGION = regionArg * REGION_BYTES;

function record(seq) {
  const b = Buffer.alloc(REC);
  b.write(`w${regionArg}:${String(seq).padStart(10, '0')}:`, 0, 'latin1');
  for (let i = 24; i < REC - 4; i++) b[i] = (seq * 31 + i) & 0xff;
  let sum = 0;
  for (let i = 0; i < REC - 4; i++) sum = (sum * 33 + b[i]) >>> 0;
  b.writeUInt32LE(sum, REC - 4);
  return b;
}

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
