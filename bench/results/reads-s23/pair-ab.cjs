'use strict';
// What does a second process reading at the same time cost the first one, per cached
// 4 KiB read at QD 1? One build, a postmaster and one forked worker. Each round measures
// the postmaster's CPU per read (all its threads) over CHUNK reads, in three modes, in a
// rotated order, so that all three see the same machine:
//   alone:      the worker is idle
//   with-same:  the worker reads the same file at the same time (its own home ring)
//   with-other: the worker reads another file at the same time (its own home ring)
// The worker spins until the postmaster raises a flag in the arena, so it reads for the
// whole of the postmaster's chunk.
// Usage: [CHUNK=20000] [ROUNDS=30] [PATTERN=seq|random] node pair-ab.cjs /path/to/build
const path = require('node:path'); const fs = require('node:fs'); const os = require('node:os');
const pattern = process.env.PATTERN || 'seq';
const PAGES = 16384;  // 64 MiB files
function tcpu() { const r = process.resourceUsage(); return r.userCPUTime + r.systemCPUTime; }
function pageOf(k, rand) {
  if (pattern === 'seq') return k % 256;
  rand.x ^= rand.x << 13; rand.x >>>= 0; rand.x ^= rand.x >>> 17; rand.x ^= rand.x << 5; rand.x >>>= 0;
  return rand.x % PAGES;
}

if (process.argv[2] === '--child') {
  (async () => {
    const rm = require(process.argv[3]);
    const db = await rm.attach();
    const files = { same: await db.files.open('x'), other: await db.files.open('y') };
    const s = db.allocate(4096);
    const flag = db.arenaSlice(Number(process.argv[4]), 8);
    const rand = { x: 7919 };
    process.on('message', async (m) => {
      if (m.cmd === 'close') { await db.close(); process.exit(0); }
      const f = files[m.file];
      const c0 = tcpu();
      let n = 0;
      while (flag.bytes[0] === 0) { await db.read(f, pageOf(n, rand) * 4096, s); n++; }
      process.send({ cpu: tcpu() - c0, n });
    });
    process.send({ ready: true });
  })();
  return;
}

const root = process.argv[2];
const rounds = Number(process.env.ROUNDS || 30), chunk = Number(process.env.CHUNK || 20000);
(async () => {
  const rm = require(root);
  const dir = path.join(os.tmpdir(), `rm-pair-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  const db = await rm.Postmaster.start({ dataDir: dir, arenaSize: 4 << 20 });
  const x = await db.files.open('x', { create: true });
  const y = await db.files.open('y', { create: true });
  const mib = Buffer.alloc(1 << 20, 1);
  for (let i = 0; i < PAGES / 256; i++) { await db.write(x, i << 20, mib); await db.write(y, i << 20, mib); }
  const s = db.allocate(4096);
  const flag = db.allocate(8);
  const kid = db.fork(__filename, ['--child', root, String(flag.offset)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise((res) => kid.once('message', res));
  const rand = { x: 12345 };
  async function readChunk() {
    for (let k = 0; k < chunk; k++) await db.read(x, pageOf(k, rand) * 4096, s);
  }
  async function measure(mode) {
    let kidDone = null;
    if (mode !== 'alone') {
      flag.bytes[0] = 0;
      kidDone = new Promise((res) => kid.once('message', res));
      kid.send({ file: mode === 'with-same' ? 'same' : 'other' });
      await new Promise((r) => setTimeout(r, 20));  // the worker is reading
    }
    const c0 = tcpu();
    await readChunk();
    const cpu = (tcpu() - c0) / chunk;
    if (kidDone) { flag.bytes[0] = 1; const k = await kidDone; kidReads.push(k.n / chunk); kidCpu.push(k.cpu / k.n); }
    return cpu;
  }
  const kidReads = [], kidCpu = [];
  const modes = ['alone', 'with-same', 'with-other'];
  const res = { alone: [], 'with-same': [], 'with-other': [] };
  for (const m of modes) await measure(m);  // warm-up
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < modes.length; j++) { const m = modes[(j + r) % modes.length]; res[m].push(await measure(m)); }
  }
  const med = (a) => { const q = [...a].sort((u, v) => u - v); return q[Math.floor(q.length / 2)]; };
  const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  console.log(`${root} ${pattern}: postmaster CPU/read median (us): ${modes.map((m) => `${m} ${med(res[m]).toFixed(3)}`).join(', ')}; worker: reads per postmaster chunk ${med(kidReads).toFixed(2)}, CPU/read ${med(kidCpu).toFixed(3)}; load1 ${load}`);
  kid.send({ cmd: 'close' });
  await new Promise((r) => kid.once('exit', r));
  await db.stop({ timeoutMs: 3000 });
  fs.rmSync(dir, { recursive: true, force: true });
})();
