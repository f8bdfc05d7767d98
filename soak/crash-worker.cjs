// Power-cut soak worker: 8 concurrent sessions append a record and flush it (group
// commit); each acknowledged record is reported with its end LSN.
const path = require('node:path');
const rm = require(path.join(__dirname, '..'));
const { commitRecord } = require('./lanes.cjs');

(async () => {
  const db = await rm.attach();
  const id = process.argv[2];
  const round = process.argv[3];  // ids unique across rounds: a record can only match itself
  let seq = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    for (;;) {
      const rec = `r${round}w${id}:${seq++}`;
      const lsn = await commitRecord(db, 1, Buffer.from(rec.padEnd(60, '.')));
      process.send({ ack: rec, lsn: lsn.toString() });
    }
  }));
})().catch((e) => process.send?.({ error: String(e && e.stack) }));
