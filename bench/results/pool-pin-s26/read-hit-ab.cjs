// CPU per buffer-pool read that hits (buffers.read of a cached page + release), two builds of
// ringmaster loaded in ONE process and alternated every CHUNK reads (default 50000, ROUNDS 30),
// so that both see the same load. Usage: node read-hit-ab.cjs /tree/one /tree/two
// (each tree: dist/ and build/Release/ringmaster.node). Prints each build's median and the
// median of the per-round differences (second minus first).
const path = require('node:path'); const fs = require('node:fs'); const os = require('node:os');
function tcpu() { const r = process.resourceUsage(); return r.userCPUTime + r.systemCPUTime; }
const roots = process.argv.slice(2).filter((a) => a.startsWith('/'));
const rounds = Number(process.env.ROUNDS || 30), chunk = Number(process.env.CHUNK || 50000);
(async () => {
  const envs = [];
  for (const root of roots) {
    const rm = require(root);
    const dir = path.join(os.tmpdir(), `rm-pinab-${process.pid}-${envs.length}`);
    fs.rmSync(dir, { recursive: true, force: true });
    const db = await rm.open({ dataDir: dir, arenaSize: 4 << 20, bufferPool: { pages: 16, pageSize: 4096 } });
    const f = await db.files.open('x', { create: true });
    for (let b = 0; b < 8; b++) (await db.buffers.read(f, b, { mode: 'zero' })).release();
    envs.push({ root, db, dir, f, cpu: [] });
  }
  const run = async (e, n) => { for (let i = 0; i < n; i++) (await e.db.buffers.read(e.f, i & 7)).release(); };
  for (const e of envs) await run(e, chunk);  // warm (JIT)
  for (let r = 0; r < rounds; r++) {
    for (const e of (r % 2 ? [...envs].reverse() : envs)) {
      const c0 = tcpu();
      await run(e, chunk);
      e.cpu.push((tcpu() - c0) * 1000 / chunk);  // ns per read
    }
  }
  const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(p * (s.length - 1))]; };
  for (const e of envs) console.log(`${e.root}: CPU per pool read (hit) min ${q(e.cpu, 0).toFixed(0)} median ${q(e.cpu, 0.5).toFixed(0)} ns`);
  if (envs.length === 2) {
    const d = envs[1].cpu.map((c, i) => c - envs[0].cpu[i]);
    console.log(`second - first, per round: p25 ${q(d, 0.25).toFixed(1)} median ${q(d, 0.5).toFixed(1)} p75 ${q(d, 0.75).toFixed(1)} ns`);
  }
  for (const e of envs) { await e.db.close(); fs.rmSync(e.dir, { recursive: true, force: true }); }
})().catch((e) => { console.error(e); process.exit(1); });
