// The raw kill-soak record (soak/kill.cjs, soak/kill-mixed.cjs and their workers): 64-byte
// records, a checksummed body tagged with worker id and sequence, each worker writing to
// its own 1 GiB (sparse) region of one file.
const fs = require('node:fs');

const REC = 64;
const REGION_BYTES = 2 ** 30;  // 16M records per worker id

function checksum(b, at) {
  let sum = 0;
  for (let i = 0; i < REC - 4; i++) sum = (sum * 33 + b[at + i]) >>> 0;
  return sum;
}

function record(workerId, seq) {
  const b = Buffer.alloc(REC);
  b.write(`w${workerId}:${String(seq).padStart(10, '0')}:`, 0, 'latin1');
  for (let i = 24; i < REC - 4; i++) b[i] = (seq * 31 + i) & 0xff;
  b.writeUInt32LE(checksum(b, 0), REC - 4);
  return b;
}

const offsetOf = (workerId, seq) => workerId * REGION_BYTES + seq * REC;

// Every acknowledged record (acked[id] = next unacknowledged seq of worker id) is on disk
// in `file`, intact. Read region by region, in chunks.
function checkRecords(file, acked) {
  const fd = fs.openSync(file, 'r');
  let checked = 0;
  let lost = 0;
  const CHUNK = 65536;
  const buf = Buffer.alloc(CHUNK * REC);
  try {
    for (let id = 0; id < acked.length; id++) {
      for (let first = 0; first < acked[id]; first += CHUNK) {
        const count = Math.min(CHUNK, acked[id] - first);
        const got = fs.readSync(fd, buf, 0, count * REC, offsetOf(id, first));
        for (let k = 0; k < count; k++) {
          const tag = `w${id}:${String(first + k).padStart(10, '0')}:`;
          const intact = (k + 1) * REC <= got && buf.toString('latin1', k * REC, k * REC + tag.length) === tag &&
            checksum(buf, k * REC) === buf.readUInt32LE(k * REC + REC - 4);
          if (!intact) lost++;
          checked++;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return { checked, lost };
}

module.exports = { REC, REGION_BYTES, record, offsetOf, checkRecords };
