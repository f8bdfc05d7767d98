'use strict';
// Workload: what the shutdown checkpoint costs at stop() and saves at the next start.
// A postmaster with a buffer pool and a WAL dirties N pages (one WAL record each, the safe
// update order, flushed), then stops either with the shutdown checkpoint (the default:
// pages written back, checkpoint record, control file) or without it (`checkpoint: false`,
// the anchor: what stop() did before), and starts again on the same directory: with the
// checkpoint recovery replays nothing, without it every record is replayed into the pool.
// In-process, real files; one postmaster at a time.
const fs = require('node:fs');
const path = require('node:path');
const { mdTable, svgBars, round, ROOT } = require('../lib/common.cjs');

const KIND_SET = 1;
const PAGE = 8192;

async function point(rm, dataDir, dirty, checkpoint) {
  fs.rmSync(dataDir, { recursive: true, force: true });
  const pages = Math.max(64, dirty);
  let file = null;
  let replayed = 0;
  const redo = {
    [KIND_SET]: async (rec, db) => {
      replayed++;
      file = file || await db.files.open('t.0', { create: true });
      const blk = rec.payload.readUInt32LE(0);
      const b = await db.buffers.read(file, blk, { mode: 'extend' });
      await b.lockExclusive();
      if (b.lsn < rec.endLsn) {
        b.page.set(rec.payload.subarray(4, 12), 16);
        b.markDirty(rec.endLsn);
      }
      b.release();
    },
  };
  const opts = { dataDir, arenaSize: pages * PAGE + (8 << 20), maxProcesses: 8, bufferPool: { pages, pageSize: PAGE }, wal: { redo } };
  const pm = await rm.Postmaster.start(opts);
  file = await pm.files.open('t.0', { create: true });
  let last = 0n;
  for (let blk = 0; blk < dirty; blk++) {
    const b = await pm.buffers.read(file, blk, { mode: 'extend' });
    await b.lockExclusive();
    const rec = Buffer.alloc(12);
    rec.writeUInt32LE(blk, 0);
    rec.writeBigUInt64LE(BigInt(blk + 1), 4);
    b.page.set(rec.subarray(4, 12), 16);
    b.markDirty();
    last = await pm.wal.append(KIND_SET, rec);
    b.markDirty(last);
    b.release();
  }
  if (dirty) await pm.wal.flush(last);
  let report = null;
  pm.on('shutdown-checkpoint', (r) => { report = r; });
  let t = process.hrtime.bigint();
  await pm.stop({ checkpoint, timeoutMs: 60000 });
  const stopMs = Number(process.hrtime.bigint() - t) / 1e6;
  file = null;
  replayed = 0;
  t = process.hrtime.bigint();
  const pm2 = await rm.Postmaster.start(opts);
  const startMs = Number(process.hrtime.bigint() - t) / 1e6;
  const records = pm2.wal.recovery.records;
  await pm2.stop({ checkpoint: false });
  fs.rmSync(dataDir, { recursive: true, force: true });
  return {
    dirty, checkpoint, stopMs: round(stopMs, 1), startMs: round(startMs, 1), replayed, records,
    checkpointMs: report ? round(report.ms, 1) : null, ok: report ? report.ok : null,
  };
}

module.exports = {
  name: 'shutdown',
  title: 'stop() with the shutdown checkpoint vs without (checkpoint: false): time to stop, time to start again',
  async run(ctx) {
    // eslint-disable-next-line global-require
    const rm = require(ROOT);
    const sizes = ctx.smoke ? [0, 32] : [0, 256, 2048, 8192];
    const rows = [];
    for (const dirty of sizes) {
      for (const checkpoint of [true, false]) {
        ctx.progress(`shutdown: ${dirty} dirty pages, checkpoint ${checkpoint}`);
        const reps = [];
        for (let i = 0; i < ctx.repeat; i++) reps.push(await point(rm, path.join(ctx.dataDir, 'shutdown'), dirty, checkpoint));
        // The median repetition by stop time.
        reps.sort((a, b) => a.stopMs - b.stopMs);
        rows.push(reps[Math.floor(reps.length / 2)]);
      }
    }
    return { pageSize: PAGE, rows };
  },
  render(res) {
    const label = (r) => `${r.dirty} pages, ${r.checkpoint ? 'checkpoint' : 'checkpoint: false'}`;
    const md = mdTable(
      ['dirty pages (8 KiB)', 'stop()', 'stop() ms', 'of it: checkpoint ms', 'next start ms', 'records replayed'],
      res.rows.map((r) => [r.dirty, r.checkpoint ? 'default (shutdown checkpoint)' : 'checkpoint: false', r.stopMs, r.checkpointMs ?? '–', r.startMs, r.replayed]),
    );
    const svg = svgBars({
      title: 'stop() and the next start, ms', yLabel: 'ms', groups: res.rows.map(label), series: ['stop()', 'next start'],
      values: res.rows.map((r) => [r.stopMs, r.startMs]),
    });
    return { md: `Each point: N pages dirtied (one WAL record each, flushed), then stop(), then a start on the same directory. With the shutdown checkpoint the next start replays nothing; with \`checkpoint: false\` (what stop() did before) it replays every record into the pool.\n\n${md}`, svg };
  },
};
