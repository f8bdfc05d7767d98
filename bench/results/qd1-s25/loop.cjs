const path = require('node:path'); const fs = require('node:fs'); const os = require('node:os');
const rm = require(process.argv[2]);
(async () => {
  const N = Number(process.argv[3]) || 2000000;
  const dir = path.join(os.tmpdir(), `rm-loop-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  const db = await rm.open({ dataDir: dir, arenaSize: 1 << 20 });
  const f = await db.files.open('x', { create: true });
  await db.write(f, 0, Buffer.alloc(1 << 20, 1));
  const s = db.allocate(4096);
  let n = 0;
  const t0 = process.hrtime.bigint();
  while (n < N) { n++; await db.read(f, (n % 256) * 4096, s); }
  console.log(Number(process.hrtime.bigint() - t0) / 1000 / N, 'us wall/read');
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
})();
