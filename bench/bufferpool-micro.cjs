// Buffer pool hot paths: hit (valid page, pin+release), and miss (page-cache-warm file,
// 8 KiB page read into the pool, evicting clean pages). CPU time of all threads per op.
const rm = require(require('node:path').join(__dirname, '..'));
const fs = require('fs');
function cpuMs() { const f = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 10; }
(async () => {
  const backend = process.env.RINGMASTER_BACKEND === 'threads' ? 'threads' : 'auto';
  fs.rmSync(require('node:path').join(require('node:os').tmpdir(), 'rm-bufferpool-micro'), { recursive: true, force: true });
  const pm = await rm.Postmaster.start({ dataDir: require('node:path').join(require('node:os').tmpdir(), 'rm-bufferpool-micro'), backend, arenaSize: 64 << 20, bufferPool: { pages: 1024 } });
  const f = await pm.files.open('t', { create: true });
  await pm.write(f, 0, Buffer.alloc(4096 * 8192));  // 4096 blocks of zeros (valid: all-zero pages)
  for (const [label, blocks] of [['hit', 512], ['miss', 4096]]) {
    for (let b = 0; b < 512; b++) (await pm.buffers.read(f, b)).release();  // warm
    const N = 100000; const c0 = cpuMs(); const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) (await pm.buffers.read(f, (i * 7919) % blocks)).release();
    const wallUs = Number(process.hrtime.bigint() - t0) / 1000 / N;
    console.log(`${backend} bufferpool ${label}: ${((cpuMs() - c0) * 1000 / N).toFixed(2)} us CPU/op, ${wallUs.toFixed(2)} us wall/op`);
  }
  const st = pm.buffers.stats();
  console.log(JSON.stringify(st.global));
  await pm.stop();
})().catch((e) => { console.error(e); process.exit(1); });
