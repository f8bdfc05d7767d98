'use strict';
// A demo worker (forked by the postmaster, or a piscina thread via demo/piscina-task.cjs):
// runs TPC-B-like transactions until told to stop, reporting commits and latencies.
const path = require('node:path');
const rm = require(path.join(__dirname, '..'));
const engine = require('../bench/tpcb/engine.cjs');
const { newHist, histAdd } = require('../bench/lib/common.cjs');

/** Runs `sessions` sessions until stop() returns true; report(delta) every 250 ms. */
async function runLoad(db, { g, worker, sessions }, stop, report) {
  const eng = await engine.Engine.open(db, g, worker);
  let commits = 0;
  let hist = newHist();
  const flush = () => { report({ commits, hist }); commits = 0; hist = newHist(); };
  const timer = setInterval(flush, 250);
  await Promise.all(Array.from({ length: sessions }, async () => {
    while (!stop()) {
      const t0 = process.hrtime.bigint();
      await eng.txn();
      histAdd(hist, Number(process.hrtime.bigint() - t0));
      commits++;
    }
  }));
  clearInterval(timer);
  flush();
}

if (require.main === module) {
  let stopping = false;
  let done = null;
  process.on('message', async (m) => {
    if (m.cmd === 'start') {
      const db = await rm.attach();
      done = runLoad(db, m, () => stopping, (d) => process.send({ progress: d }))
        .then(async () => { await db.close(); process.send({ stopped: true }); setTimeout(() => process.exit(0), 20); })
        .catch((e) => { process.send({ error: String(e && e.stack) }); process.exit(1); });
    } else if (m.cmd === 'stop') {
      stopping = true;
    }
  });
  process.send({ ready: true });
}

module.exports = { runLoad };
