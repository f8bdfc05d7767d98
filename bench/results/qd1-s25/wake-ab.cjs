// CPU per woken op (fdatasync on a tmpfs file: always punted to io-wq, completed by a
// self-wake message, delivered by OnReady -> Deliver -> JS), builds alternated in ONE process.
// Usage: node wake-ab.cjs OLD NEW   (ROUNDS, CHUNK)
const path = require('node:path'); const fs = require('node:fs');
function tcpu() { const r = process.resourceUsage(); return r.userCPUTime + r.systemCPUTime; }
const roots = process.argv.slice(2);
const rounds = Number(process.env.ROUNDS || 20), chunk = Number(process.env.CHUNK || 5000);
(async () => {
  const envs = [];
  for (const root of roots) {
    const rm = require(root);
    const dir = `/dev/shm/rm-wake-${process.pid}-${envs.length}`;
    fs.rmSync(dir, { recursive: true, force: true });
    const db = await rm.open({ dataDir: dir, arenaSize: 1 << 20 });
    const f = await db.files.open('x', { create: true });
    await db.write(f, 0, Buffer.alloc(4096, 1));
    envs.push({ root, db, f, dir, cpu: [], wall: [] });
  }
  const run = async (e, n) => { for (let i = 0; i < n; i++) await e.db.fdatasync(e.f); };
  for (const e of envs) await run(e, chunk);
  for (let r = 0; r < rounds; r++) {
    for (const e of (r % 2 ? [...envs].reverse() : envs)) {
      const c0 = tcpu(); const t0 = process.hrtime.bigint();
      await run(e, chunk);
      e.cpu.push((tcpu() - c0) / chunk); e.wall.push(Number(process.hrtime.bigint() - t0) / 1000 / chunk);
    }
  }
  const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(p * (s.length - 1))]; };
  for (const e of envs) {
    const w = e.db._native().wakeInfo();
    console.log(`${e.root}: CPU/op p25 ${q(e.cpu, 0.25).toFixed(2)} median ${q(e.cpu, 0.5).toFixed(2)} us; wall median ${q(e.wall, 0.5).toFixed(2)} us; selfWakes ${w.selfWakes}`);
    await e.db.close(); fs.rmSync(e.dir, { recursive: true, force: true });
  }
})();
