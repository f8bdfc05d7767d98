const path = require('node:path'); const fs = require('node:fs'); const os = require('node:os');
const rm = require(process.env.RMROOT || require('node:path').join(__dirname, '..', '..', '..'));
(async () => {
  const N = Number(process.argv[2]) || 200000;
  const dir = path.join(os.tmpdir(), `rm-qd1-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  const db = await rm.open({ dataDir: dir, arenaSize: 1 << 20 });
  const f = await db.files.open('x', { create: true });
  await db.write(f, 0, Buffer.alloc(1 << 20, 1));
  const s = db.allocate(4096);
  for (let n = 0; n < 20000; n++) await db.read(f, (n % 256) * 4096, s);
  const r0 = process.resourceUsage(); const t0 = process.hrtime.bigint();
  for (let n = 0; n < N; n++) await db.read(f, (n % 256) * 4096, s);
  const r1 = process.resourceUsage(); const wall = Number(process.hrtime.bigint() - t0) / 1000 / N;
  const u = (r1.userCPUTime - r0.userCPUTime) / N, sy = (r1.systemCPUTime - r0.systemCPUTime) / N;
  console.log(`qd1 cpu ${(u + sy).toFixed(3)} us (user ${u.toFixed(3)} sys ${sy.toFixed(3)}) wall ${wall.toFixed(3)} vcsw/op ${((r1.voluntaryContextSwitches - r0.voluntaryContextSwitches) / N).toFixed(4)}`);
  await db.close(); fs.rmSync(dir, { recursive: true, force: true });
})();
