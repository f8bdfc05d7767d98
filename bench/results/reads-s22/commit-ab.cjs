// CPU and io_uring_enter calls per commit with S sessions (wal.append + wal.flush) in one process, two builds
// alternated: does delivering completions in chunks split group commits or add enters?
// usage: [S=32] [N=3000] [ROUNDS=10] node commit-ab.cjs OLD_TREE NEW_TREE
const path = require('node:path'); const fs = require('node:fs'); const os = require('node:os');
const roots = process.argv.slice(2); const S = Number(process.env.S || 32), N = Number(process.env.N || 3000), R = Number(process.env.ROUNDS || 10);
function tcpu() { const r = process.resourceUsage(); return r.userCPUTime + r.systemCPUTime; }
(async () => {
  const envs = [];
  for (const root of roots) {
    const rm = require(root); const dir = path.join(os.tmpdir(), `r22c-${process.pid}-${envs.length}`); fs.rmSync(dir, { recursive: true, force: true });
    const db = await rm.open({ dataDir: dir, arenaSize: 8 << 20, wal: {} });
    envs.push({ root, db, dir, cpu: [], enters: [] });
  }
  const payload = Buffer.alloc(100, 1);
  async function run(e, n) { let k = 0; await Promise.all(Array.from({ length: S }, async () => { while (k < n) { k++; await e.db.wal.flush(await e.db.wal.append(1, payload)); } })); }
  for (const e of envs) await run(e, 300);
  for (let r = 0; r < R; r++) for (const e of (r % 2 ? [...envs].reverse() : envs)) {
    const en0 = e.db.stats().rings.reduce((a, x) => a + x.enters, 0); const c0 = tcpu(); await run(e, N);
    e.cpu.push((tcpu() - c0) / N); e.enters.push((e.db.stats().rings.reduce((a, x) => a + x.enters, 0) - en0) / N);
  }
  const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  for (const e of envs) console.log(`${e.root} S=${S}: CPU/commit median ${med(e.cpu).toFixed(2)} us (min ${Math.min(...e.cpu).toFixed(2)}); enters/commit ${med(e.enters).toFixed(3)}`);
  for (const e of envs) { await e.db.close(); fs.rmSync(e.dir, { recursive: true, force: true }); }
})();
