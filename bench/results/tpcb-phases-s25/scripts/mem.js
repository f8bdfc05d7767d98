// random reads over a 256 MiB array + small object churn, operations per 5 s slice
const a = new Int32Array(64 << 20);
for (let i = 0; i < a.length; i++) a[i] = i * 2654435761 | 0;
let t0 = Date.now(), out = [], x = 1, objs = [];
while (Date.now() - t0 < 60000) {
  for (let i = 0; i < 100000; i++) { x = a[(x >>> 0) & (a.length - 1)] ^ i; if ((i & 63) === 0) objs.push({ x, i }); }
  if (objs.length > 100000) objs = [];
  const s = Math.floor((Date.now() - t0) / 5000);
  out[s] = (out[s] || 0) + 1;
}
console.log(process.argv[2], out.join(' '), x);
