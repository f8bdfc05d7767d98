// every 100 ms: CPU time of a fixed loop (thread CPU, so preemption mostly drops out); median per 5 s
const t0 = Date.now(); let cur = [], slice = 0, res = [];
function work() { let x = 0; for (let j = 0; j < 300000; j++) x = (x * 31 + j) | 0; return x; }
const tick = () => {
  const c0 = process.cpuUsage(); work(); const c = process.cpuUsage(c0);
  cur.push(c.user + c.system);
  const s = Math.floor((Date.now() - t0) / 5000);
  if (s !== slice) { cur.sort((a, b) => a - b); res.push(cur[cur.length >> 1]); cur = []; slice = s; }
  if (Date.now() - t0 < +process.argv[2]) setTimeout(tick, 100); else console.log('probe', res.join(' '));
};
tick();
