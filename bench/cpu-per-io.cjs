// CPU time (all threads of the process) per cached 4 KiB read at QD 1 and 16: a
// cost that other load on the machine does not distort. RINGMASTER_WATCH=getevents
// selects the old watcher mode for comparison. Usage: node bench/cpu-per-io.cjs
// CPU time (all threads) per IO: independent of what else loads the machine.
const rm = require(require('node:path').join(__dirname, '..'));
const fs = require('fs');
function cpuMs() { const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10; }
(async () => {
  fs.rmSync(require('node:path').join(require('node:os').tmpdir(), 'rm-cpu-per-io'), { recursive: true, force: true });
  const db = await rm.open({ dataDir: require('node:path').join(require('node:os').tmpdir(), 'rm-cpu-per-io'), arenaSize: 1 << 20 });
  const f = await db.files.open('x', { create: true });
  await db.write(f, 0, Buffer.alloc(1 << 20, 1));
  const s = db.allocate(4096);
  for (const qd of [1, 16]) {
    const N = 200000; let n = 0; const c0 = cpuMs(); const t0 = Date.now();
    await Promise.all(Array.from({ length: qd }, async () => { while (n < N) { n++; await db.read(f, (n % 256) * 4096, s); } }));
    const c = cpuMs() - c0;
    console.log(`${process.env.RINGMASTER_WATCH || 'eventfd'} qd${qd}: ${(c * 1000 / N).toFixed(2)} us CPU per read (wall ${((Date.now() - t0) * 1000 / N).toFixed(2)} us)`);
  }
  await db.close();
})();
