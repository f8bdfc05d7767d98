// CPU per cached 4 KiB read, two (or more) builds of ringmaster loaded in ONE process and
// alternated every CHUNK reads (default 20000, ROUNDS 40), so that both see the same load on
// a shared machine: a before/after comparison that other processes distort far less than
// separate runs. Usage: [QD=16] node bench/cpu-ab.cjs /path/to/old/tree /path/to/new/tree
const path = require('node:path'); const fs = require('node:fs'); const os = require('node:os');
const roots = process.argv.slice(2).filter((a) => a.startsWith('/'));
const rounds = Number(process.env.ROUNDS || 40), chunk = Number(process.env.CHUNK || 20000), qd = Number(process.env.QD || 1);
function tcpu() { const r = process.resourceUsage(); return r.userCPUTime + r.systemCPUTime; }
(async () => {
  const envs = [];
  for (const root of roots) {
    const rm = require(root);
    const dir = path.join(os.tmpdir(), `rm-ab-${process.pid}-${envs.length}`);
    fs.rmSync(dir, { recursive: true, force: true });
    const db = await rm.open({ dataDir: dir, arenaSize: 1 << 20 });
    const f = await db.files.open('x', { create: true });
    await db.write(f, 0, Buffer.alloc(1 << 20, 1));
    const s = Array.from({ length: qd }, () => db.allocate(4096));
    envs.push({ root, db, f, s, dir, cpu: [], wall: [] });
  }
  async function run(e, n) {
    let k = 0;
    await Promise.all(e.s.map(async (sl) => { while (k < n) { k++; await e.db.read(e.f, (k % 256) * 4096, sl); } }));
  }
  for (const e of envs) await run(e, chunk);
  for (let r = 0; r < rounds; r++) {
    for (const e of (r % 2 ? [...envs].reverse() : envs)) {
      const c0 = tcpu(); const t0 = process.hrtime.bigint();
      await run(e, chunk);
      e.cpu.push((tcpu() - c0) / chunk); e.wall.push(Number(process.hrtime.bigint() - t0) / 1000 / chunk);
    }
  }
  const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(p * (s.length - 1))]; };
  for (const e of envs) console.log(`${e.root} qd${qd}: CPU/read min ${q(e.cpu, 0).toFixed(3)} p25 ${q(e.cpu, 0.25).toFixed(3)} median ${q(e.cpu, 0.5).toFixed(3)} us; wall median ${q(e.wall, 0.5).toFixed(3)} us`);
  for (const e of envs) { await e.db.close(); fs.rmSync(e.dir, { recursive: true, force: true }); }
})();
