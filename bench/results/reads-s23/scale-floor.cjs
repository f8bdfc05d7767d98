'use strict';
// Floors without ringmaster: how much CPU per iteration does a Node process pay when a
// second one runs the same loop at the same time on this 2-core VM?
//   node scale-floor.cjs MODE PROCS N [FILE]
//   MODE promise: an async loop of N awaits of a function that returns a resolved promise
//                 (the JS shape of a QD 1 read loop, no IO)
//        pread:   an async loop of N fs.readSync(4 KiB) page-cache hits at (k % 256) * 4096
//                 of FILE (each process opens FILE itself), one await per read
// Prints CPU ns per iteration (user + system, all threads) of each process.
const { fork } = require('node:child_process');
const fs = require('node:fs');

const [mode, procsArg, nArg, file] = process.argv.slice(2);
const procs = Number(procsArg), n = Number(nArg);

async function loop() {
  let acc = 0;
  if (mode === 'promise') {
    const f = async (k) => (k * 2654435761) >>> 0;
    for (let k = 0; k < n; k++) acc ^= await f(k);
  } else {
    const fd = fs.openSync(file, 'r');
    const buf = Buffer.alloc(4096);
    const f = async (k) => fs.readSync(fd, buf, 0, 4096, (k % 256) * 4096);
    for (let k = 0; k < n; k++) acc += await f(k);
    fs.closeSync(fd);
  }
  return acc;
}

if (process.argv[6] === '--child') {
  process.once('message', async () => {
    await loop();  // warm-up (JIT)
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await loop();
    const c = process.cpuUsage(c0);
    process.send({ cpuNs: ((c.user + c.system) * 1000) / n, wallNs: Number(process.hrtime.bigint() - t0) / n });
  });
  process.send({ ready: true });
} else {
  (async () => {
    const kids = [];
    for (let i = 0; i < procs; i++) {
      const c = fork(__filename, [mode, procsArg, nArg, file || '-', '--child'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      await new Promise((res) => c.once('message', res));
      kids.push(c);
    }
    const res = await Promise.all(kids.map((c) => new Promise((r) => { c.once('message', r); c.send('go'); })));
    for (const c of kids) c.kill();
    const load = fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
    console.log(`${mode} procs=${procs}: CPU ns/iter ${res.map((r) => r.cpuNs.toFixed(0)).join(' ')}; wall ns/iter ${res.map((r) => r.wallNs.toFixed(0)).join(' ')}; load1 ${load}`);
  })();
}
