'use strict';
// Bytes allocated on the JS heap per commit (append 100 bytes + flush), by allocating
// function: V8's sampling heap profiler with the objects that GC collected included.
//   node bench/results/commit-cpu-s21/alloc.cjs [tree=.] [commits=20000]
const path = require('node:path'), fs = require('node:fs'), os = require('node:os');
const inspector = require('node:inspector');
(async () => {
  const root = path.resolve(process.argv[2] || '.');
  const N = Number(process.argv[3] || 20000);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-alloc-'));
  const rm = require(root);
  const db = await rm.open({ dataDir: dir, arenaSize: 8 << 20, wal: {} });
  const payload = Buffer.alloc(100, 0x61);
  for (let i = 0; i < 2000; i++) await db.wal.flush(await db.wal.append(1, payload));
  const s = new inspector.Session();
  s.connect();
  const post = (m, p) => new Promise((res, rej) => s.post(m, p, (e, r) => (e ? rej(e) : res(r))));
  await post('HeapProfiler.startSampling', { samplingInterval: 256, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
  for (let i = 0; i < N; i++) await db.wal.flush(await db.wal.append(1, payload));
  const { profile } = await post('HeapProfiler.stopSampling');
  const by = new Map();
  let total = 0;
  const walk = (n) => {
    const cf = n.callFrame;
    const name = `${cf.functionName || '(anonymous)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber + 1}`;
    total += n.selfSize;
    if (n.selfSize) by.set(name, (by.get(name) || 0) + n.selfSize);
    for (const c of n.children) walk(c);
  };
  walk(profile.head);
  console.log(`bytes per commit: ${(total / N).toFixed(0)} (the loop itself included)`);
  for (const [k, v] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`${(v / N).toFixed(0).padStart(6)}  ${k}`);
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
})();
