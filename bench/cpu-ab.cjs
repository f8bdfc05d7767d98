// CPU per cached 4 KiB read, two (or more) builds of ringmaster loaded in ONE process and
// alternated every CHUNK reads (default 20000, ROUNDS 40), so that both see the same load on
// a shared machine: a before/after comparison that other processes distort far less than
// separate runs. Usage: [QD=16] [PROCS=2] node bench/cpu-ab.cjs /path/to/old/tree /path/to/new/tree
// PROCS=2: each build runs as a postmaster plus one forked worker (pm.fork), both reading
// at QD at the same time on their own rings (the default layout: rings = CPUs); the CPU is
// both processes' (all threads), per read of either.
const path = require('node:path'); const fs = require('node:fs'); const os = require('node:os');
function tcpu() { const r = process.resourceUsage(); return r.userCPUTime + r.systemCPUTime; }
const qd = Number(process.env.QD || 1);

async function readLoop(db, f, slices, n) {
  let k = 0;
  await Promise.all(slices.map(async (sl) => { while (k < n) { k++; await db.read(f, (k % 256) * 4096, sl); } }));
}

if (process.argv[2] === '--child') {
  // A forked worker of one build: reads `n` on command, replies with its CPU for them.
  (async () => {
    const rm = require(process.argv[3]);
    const db = await rm.attach();
    const f = await db.files.open('x');
    const s = Array.from({ length: qd }, () => db.allocate(4096));
    process.on('message', async (m) => {
      if (m.cmd === 'close') { await db.close(); process.exit(0); }
      const c0 = tcpu();
      await readLoop(db, f, s, m.n);
      process.send({ cpu: tcpu() - c0 });
    });
    process.send({ ready: true });
  })();
  return;
}

const roots = process.argv.slice(2).filter((a) => a.startsWith('/'));
const rounds = Number(process.env.ROUNDS || 40), chunk = Number(process.env.CHUNK || 20000), procs = Number(process.env.PROCS || 1);
(async () => {
  const envs = [];
  for (const root of roots) {
    const rm = require(root);
    const dir = path.join(os.tmpdir(), `rm-ab-${process.pid}-${envs.length}`);
    fs.rmSync(dir, { recursive: true, force: true });
    const db = procs > 1 ? await rm.Postmaster.start({ dataDir: dir, arenaSize: 1 << 20 }) : await rm.open({ dataDir: dir, arenaSize: 1 << 20 });
    const f = await db.files.open('x', { create: true });
    await db.write(f, 0, Buffer.alloc(1 << 20, 1));
    const s = Array.from({ length: qd }, () => db.allocate(4096));
    const kids = [];
    for (let i = 1; i < procs; i++) {
      const c = db.fork(__filename, ['--child', root], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      await new Promise((res) => c.once('message', res));
      kids.push(c);
    }
    envs.push({ root, db, f, s, dir, kids, cpu: [], wall: [] });
  }
  async function run(e, n) {
    const others = e.kids.map((c) => new Promise((res) => { c.once('message', (m) => res(m.cpu)); c.send({ n }); }));
    await readLoop(e.db, e.f, e.s, n);
    return (await Promise.all(others)).reduce((a, b) => a + b, 0);
  }
  for (const e of envs) await run(e, chunk);
  for (let r = 0; r < rounds; r++) {
    for (const e of (r % 2 ? [...envs].reverse() : envs)) {
      const c0 = tcpu(); const t0 = process.hrtime.bigint();
      const kidCpu = await run(e, chunk);
      e.cpu.push((tcpu() - c0 + kidCpu) / (chunk * procs)); e.wall.push(Number(process.hrtime.bigint() - t0) / 1000 / (chunk * procs));
    }
  }
  const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(p * (s.length - 1))]; };
  for (const e of envs) {
    // Reads another process reaped (and rang this one's doorbell for), out of all reads.
    const ps = e.db.stats().processes;
    const other = ps.reduce((a, p) => a + p.completedByOther, 0), all = ps.reduce((a, p) => a + p.completed, 0);
    console.log(`${e.root} qd${qd}${procs > 1 ? ` procs${procs}` : ''}: CPU/read min ${q(e.cpu, 0).toFixed(3)} p25 ${q(e.cpu, 0.25).toFixed(3)} median ${q(e.cpu, 0.5).toFixed(3)} us; wall median ${q(e.wall, 0.5).toFixed(3)} us; reaped by another process ${other} of ${all}`);
  }
  for (const e of envs) {
    for (const c of e.kids) { c.send({ cmd: 'close' }); await new Promise((res) => c.once('exit', res)); }
    if (e.kids.length) await e.db.stop({ timeoutMs: 3000 }); else await e.db.close();
    fs.rmSync(e.dir, { recursive: true, force: true });
  }
})();
