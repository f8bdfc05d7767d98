// every 100 ms: thread CPU time of 200k dependent random reads within an N-MiB array; median per 5 s
const MiB = +process.argv[3] || 8;
const a = new Int32Array(MiB << 18); for (let i = 0; i < a.length; i++) a[i] = (Math.random() * a.length) | 0;
const t0 = Date.now(); let cur = [], slice = 0, res = [], x = 0;
const tick = () => {
  const c0 = process.cpuUsage(); for (let j = 0; j < 200000; j++) x = a[x]; const c = process.cpuUsage(c0);
  cur.push(c.user + c.system);
  const s = Math.floor((Date.now() - t0) / 5000);
  if (s !== slice) { cur.sort((p, q) => p - q); res.push(cur[cur.length >> 1]); cur = []; slice = s; }
  if (Date.now() - t0 < +process.argv[2]) setTimeout(tick, 20); else console.log('l3probe', MiB, res.join(' '), x);
};
tick();
