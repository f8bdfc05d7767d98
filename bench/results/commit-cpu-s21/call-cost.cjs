'use strict';
// CPU per native call on the commit path, bound (walBind) against the exported form that
// checks and unwraps the session argument, and the microtask hold of the flusher role
// (an await on a nextTick) against releasing and retaking the role:
//   node bench/results/commit-cpu-s21/call-cost.cjs [tree=.]
const path = require('node:path'), fs = require('node:fs'), os = require('node:os');
(async () => {
  const root = path.resolve(process.argv[2] || '.');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-call-cost-'));
  const rm = require(root);
  const db = await rm.open({ dataDir: dir, arenaSize: 8 << 20, wal: {} });
  const addon = require(path.join(root, 'dist/core/native')).native;
  const s = db._native();
  const fns = addon.walBind(s);
  const N = 200000;
  const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
  const time = async (f) => { const t = cpu(); await f(); return +((cpu() - t) / N).toFixed(3); };
  for (let rep = 0; rep < 3; rep++) {
    console.log(JSON.stringify({
      boundCallUs: await time(() => { for (let i = 0; i < N; i++) fns.insertedUpto(); }),
      exportedCallUs: await time(() => { for (let i = 0; i < N; i++) addon.walInsertedUpto(s); }),
      roleTakeAndReleaseBoundUs: await time(() => { for (let i = 0; i < N; i++) { fns.role('flusher', true); fns.role('flusher', false); } }),
      roleTakeAndReleaseExportedUs: await time(() => { for (let i = 0; i < N; i++) { addon.walRole(s, 'flusher', true); addon.walRole(s, 'flusher', false); } }),
      awaitNextTickUs: await time(async () => { for (let i = 0; i < N; i++) await new Promise((r) => process.nextTick(r)); }),
      load: os.loadavg()[0],
    }));
  }
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
})();
