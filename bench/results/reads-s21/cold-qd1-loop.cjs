// Random O_DIRECT 4 KiB reads at QD 1 over a 64 MiB file: wall, CPU (all threads) and
// voluntary switches per read. Usage: node cold-qd1-loop.cjs [reads]  (RMROOT: another build)
const path = require('node:path'); const fs = require('node:fs'); const os = require('node:os');
const rm = require(process.env.RMROOT || path.join(__dirname, '..', '..', '..'));
(async () => {
  const dir = path.join(os.tmpdir(), `rm-cold-qd1-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  const db = await rm.open({ dataDir: dir, arenaSize: 4 << 20 });
  const w = await db.files.open('x', { create: true });
  for (let i = 0; i < 64; i++) await db.write(w, i << 20, Buffer.alloc(1 << 20, i + 1));
  await db.fsync(w);
  const f = await db.files.open('x', { readOnly: true, direct: true });
  const s = db.allocate(4096); const N = Number(process.argv[2]) || 5000; const pages = 16384;
  let x = 12345; const rand = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  for (let n = 0; n < 500; n++) await db.read(f, (rand() % pages) * 4096, s);
  const r0 = process.resourceUsage(); const t0 = process.hrtime.bigint();
  for (let n = 0; n < N; n++) await db.read(f, (rand() % pages) * 4096, s);
  const r1 = process.resourceUsage();
  console.log(`cold qd1: wall ${(Number(process.hrtime.bigint() - t0) / 1000 / N).toFixed(1)} us, CPU ${((r1.userCPUTime + r1.systemCPUTime - r0.userCPUTime - r0.systemCPUTime) / N).toFixed(2)} us, voluntary switches ${((r1.voluntaryContextSwitches - r0.voluntaryContextSwitches) / N).toFixed(2)} per read`);
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
})();
