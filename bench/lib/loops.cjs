'use strict';
// The measured inner loops: `depth` lanes per process, each a closed loop of one random
// read of `bs` bytes at a time (like fio's iodepth with iodepth_batch=1).
const fs = require('node:fs');
const { performance } = require('node:perf_hooks');
const { newHist, histAdd } = require('./common.cjs');

function rng(seed) {
  let x = (seed >>> 0) || 0x12345;
  return () => {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    return x;
  };
}

// `warmupMs` of the same load runs first, unmeasured: with many processes on few cores
// each one's JIT needs its share of the CPU before the numbers mean anything.
async function lanes(depth, durationMs, seed, pages, bs, readOne, warmupMs = 0) {
  const hist = newHist();
  let ops = 0;
  let errors = 0;
  let firstError = null;
  const rand = rng(seed);
  const t0 = performance.now() + warmupMs;
  const end = t0 + durationMs;
  // Sampled by the first op of the window, not by a timer: a loop whose reads complete
  // inline runs on microtasks alone and would starve the timer until the end.
  let cpu0 = null;
  async function lane(i) {
    for (;;) {
      const s = performance.now();
      if (s >= end) break;
      if (!cpu0 && s >= t0) cpu0 = process.cpuUsage();
      const off = (rand() % pages) * bs;
      try {
        const n = await readOne(i, off);
        if (n !== bs) throw new Error(`short read ${n}`);
      } catch (e) {
        errors++;
        firstError = firstError || `${e.code || ''} ${e.message}`;
        if (errors > 100) return;
        continue;
      }
      if (s < t0) continue;
      histAdd(hist, (performance.now() - s) * 1e6);
      ops++;
    }
  }
  const ps = [];
  for (let i = 0; i < depth; i++) ps.push(lane(i));
  await Promise.all(ps);
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0 || undefined);  // every thread of this process (JS, native, libuv)
  return { ops, elapsedMs, iops: ops / (elapsedMs / 1000), hist, errors, firstError, cpuUs: cpu0 ? cpu.user + cpu.system : 0 };
}

/** ringmaster: each lane reads into its own arena slice (fixed buffer when registered). */
async function rmLoop(db, fileId, o, seed) {
  const slices = [];
  for (let i = 0; i < o.depth; i++) slices.push(db.allocate(o.bs));
  const pages = Math.floor(o.fileSize / o.bs);
  // warm-up: a few reads so the first-use costs are not measured
  for (let i = 0; i < Math.min(o.depth, 8); i++) await db.read(fileId, i * o.bs, slices[i]);
  return lanes(o.depth, o.durationMs, seed, pages, o.bs, (i, off) => db.read(fileId, off, slices[i]), o.warmupMs || 0);
}

function hasIoUringFd() {
  try {
    for (const fd of fs.readdirSync('/proc/self/fd')) {
      try {
        if (fs.readlinkSync(`/proc/self/fd/${fd}`).includes('io_uring')) return true;
      } catch { /* raced */ }
    }
  } catch { /* no procfs */ }
  return false;
}

/** Node fs.promises (libuv threadpool, or libuv's io_uring with UV_USE_IO_URING=1). */
async function nodeLoop(o, seed) {
  const flags = fs.constants.O_RDONLY | (o.direct ? fs.constants.O_DIRECT : 0);
  const fh = await fs.promises.open(o.file, flags);
  const big = Buffer.allocUnsafeSlow(o.depth * o.bs + 8192);
  let base = 0;
  if (o.direct) {
    // JS cannot see a buffer's address: find the first offset O_DIRECT accepts (malloc aligns to 16).
    base = -1;
    for (let k = 0; k * 16 <= 4096; k++) {
      try {
        fs.readSync(fh.fd, big, k * 16, o.bs, 0);
        base = k * 16;
        break;
      } catch (e) {
        if (e.code !== 'EINVAL') throw e;
      }
    }
    if (base < 0) throw new Error('no O_DIRECT-aligned offset found in the buffer');
  }
  const bufs = [];
  for (let i = 0; i < o.depth; i++) bufs.push(big.subarray(base + i * o.bs, base + (i + 1) * o.bs));
  const pages = Math.floor(o.fileSize / o.bs);
  for (let i = 0; i < Math.min(o.depth, 8); i++) await fh.read(bufs[i], 0, o.bs, i * o.bs);
  const r = await lanes(o.depth, o.durationMs, seed, pages, o.bs, async (i, off) => (await fh.read(bufs[i], 0, o.bs, off)).bytesRead, o.warmupMs || 0);
  r.ioUringFd = hasIoUringFd();
  await fh.close();
  return r;
}

module.exports = { rmLoop, nodeLoop, hasIoUringFd };
