// One page's exclusive content lock, hammered by P forked processes (lock, release, again:
// no work in between, the worst case for hand-over). Prints acquisitions/s over all
// processes, each process's share, and the wait statistics.
// Usage: node bench/lock-contention.cjs [P=8] [ms=3000]
'use strict';
const path = require('node:path');
const os = require('node:os');
const fs = require('node:fs');
const rm = require(path.join(__dirname, '..'));

if (process.argv[2] === 'child') {
  (async () => {
    const db = await rm.attach();
    const f = db.files.get(Number(process.argv[3]));
    const ms = Number(process.argv[4]);
    process.send('ready');
    await new Promise((r) => process.once('message', r));
    let n = 0;
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const b = await db.buffers.read(f, 0);
      await b.lockExclusive();
      b.release();
      n++;
    }
    process.send({ n, stats: db.buffers.stats().process });
    await db.close();
    process.exit(0);
  })();
} else {
  (async () => {
    const P = Number(process.argv[2] || 8);
    const ms = Number(process.argv[3] || 3000);
    const dataDir = path.join(os.tmpdir(), `rm-lock-contention-${process.pid}`);
    const pm = await rm.Postmaster.start({ dataDir, maxProcesses: P + 4, bufferPool: { pages: 64 } });
    try {
      const f = await pm.files.open('t', { create: true });
      (await pm.buffers.read(f, 0, { mode: 'zero' })).release();
      const ws = Array.from({ length: P }, () => pm.fork(__filename, ['child', String(f.id), String(ms)], { stdio: ['ignore', 'inherit', 'inherit'] }));
      await Promise.all(ws.map((w) => new Promise((r) => w.once('message', r))));
      const done = ws.map((w) => new Promise((r) => w.once('message', r)));
      for (const w of ws) w.send('go');
      const out = await Promise.all(done);
      const n = out.reduce((a, o) => a + o.n, 0);
      const sum = (k) => out.reduce((a, o) => a + o.stats[k], 0);
      const waits = sum('lockWaits');
      console.log(`P=${P}: ${Math.round((n / ms) * 1000)} acquisitions/s; per process ${out.map((o) => o.n).join(' ')}; ` +
        `${waits} waited (avg ${waits ? (sum('lockWaitMs') / waits).toFixed(3) : 0} ms), wake-ups ${pm.buffers.stats().global.lockWakeups}, hand-overs ${pm.buffers.stats().global.lockHandoffs}`);
    } finally {
      await pm.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  })().catch((e) => { console.error(e); process.exit(1); });
}
