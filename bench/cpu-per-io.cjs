// CPU time (all threads of the process: user + system) per cached 4 KiB read at QD 1
// and QD 16, one process, embedded: a cost that other load on the machine distorts far
// less than latency. The wake channel the environment got is printed with it
// (RINGMASTER_WAKE=eventfd forces the fallback channel; RINGMASTER_BACKEND=threads the
// threads backend; RINGMASTER_WATCH=getevents the first watcher design).
// Usage: node bench/cpu-per-io.cjs [reads per depth, default 200000]
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const rm = require(path.join(__dirname, '..'));

function cpu() {
  const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  const tick = 10;  // ms per clock tick (USER_HZ 100)
  return { user: Number(f[11]) * tick, sys: Number(f[12]) * tick };
}

(async () => {
  const N = Number(process.argv[2]) || 200000;
  const dir = path.join(os.tmpdir(), `rm-cpu-per-io-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  const db = await rm.open({ dataDir: dir, arenaSize: 1 << 20 });
  const f = await db.files.open('x', { create: true });
  await db.write(f, 0, Buffer.alloc(1 << 20, 1));
  const s = db.allocate(4096);
  const w = db._native().wakeInfo();
  const what = `${db.features.backend}, wake ${w.channel}${w.selfWake ? '+self' : ''}`;
  for (const qd of [1, 16]) {
    let n = 0;
    const c0 = cpu();
    const t0 = process.hrtime.bigint();
    await Promise.all(Array.from({ length: qd }, async () => { while (n < N) { n++; await db.read(f, (n % 256) * 4096, s); } }));
    const c1 = cpu();
    const wall = Number(process.hrtime.bigint() - t0) / 1000 / N;
    const user = ((c1.user - c0.user) * 1000) / N;
    const sys = ((c1.sys - c0.sys) * 1000) / N;
    console.log(`${what} qd${qd}: ${(user + sys).toFixed(2)} us CPU per read (user ${user.toFixed(2)}, system ${sys.toFixed(2)}); wall ${wall.toFixed(2)} us`);
  }
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
})();
