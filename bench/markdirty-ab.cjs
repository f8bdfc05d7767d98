// CPU per PinnedBuffer.markDirty(lsn) on one exclusively locked page, two (or more)
// builds of ringmaster loaded in ONE process and alternated every CHUNK calls (default
// 200000, ROUNDS 40), so that both see the same load on a shared machine. Usage:
//   node bench/markdirty-ab.cjs /path/to/one/tree /path/to/other/tree
// (each tree: dist/ and build/Release/ringmaster.node). Also prints, per round, the
// difference of the two builds' CPU per call (second minus first): its median and
// quartiles say more than the per-build figures on a loaded machine.
const path = require('node:path'); const fs = require('node:fs'); const os = require('node:os');
function tcpu() { const r = process.resourceUsage(); return r.userCPUTime + r.systemCPUTime; }

const roots = process.argv.slice(2).filter((a) => a.startsWith('/'));
const rounds = Number(process.env.ROUNDS || 40), chunk = Number(process.env.CHUNK || 200000);
(async () => {
  const envs = [];
  for (const root of roots) {
    const rm = require(root);
    const dir = path.join(os.tmpdir(), `rm-mdab-${process.pid}-${envs.length}`);
    fs.rmSync(dir, { recursive: true, force: true });
    const db = await rm.open({ dataDir: dir, arenaSize: 4 << 20, bufferPool: { pages: 16, pageSize: 4096 } });
    const f = await db.files.open('x', { create: true });
    const b = await db.buffers.read(f, 0, { mode: 'zero' });
    await b.lockExclusive();
    envs.push({ root, db, dir, b, cpu: [] });
  }
  const run = (e, n) => { for (let i = 0; i < n; i++) e.b.markDirty(1n); };
  for (const e of envs) run(e, chunk);  // warm (JIT)
  for (let r = 0; r < rounds; r++) {
    for (const e of (r % 2 ? [...envs].reverse() : envs)) {
      const c0 = tcpu();
      run(e, chunk);
      e.cpu.push((tcpu() - c0) * 1000 / chunk);  // ns per call
    }
  }
  const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(p * (s.length - 1))]; };
  for (const e of envs) console.log(`${e.root}: CPU/markDirty min ${q(e.cpu, 0).toFixed(1)} p25 ${q(e.cpu, 0.25).toFixed(1)} median ${q(e.cpu, 0.5).toFixed(1)} ns`);
  if (envs.length === 2) {
    const d = envs[1].cpu.map((c, i) => c - envs[0].cpu[i]);
    console.log(`second - first, per round: p25 ${q(d, 0.25).toFixed(1)} median ${q(d, 0.5).toFixed(1)} p75 ${q(d, 0.75).toFixed(1)} ns`);
  }
  for (const e of envs) {
    e.b.unlock();
    e.b.release();
    await e.db.buffers.flushAll();
    await e.db.close();
    fs.rmSync(e.dir, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); process.exit(1); });
