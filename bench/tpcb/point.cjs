'use strict';
// Runs one durable-commits / tpcb point in a fresh process; prints one JSON line.
// spec: { engine: 'rm'|'sqlite'|'node', kind: 'commits'|'tpcb', procs, sessions, durationMs, dataDir, mode: 'fork'|'threads', g, synchronous,
//         walSync: 'fdatasync'|'dsync' (ringmaster's wal.walSync; absent: the library's default), walDirect (wal.direct; absent: the library's default) }
const fs = require('node:fs');
const path = require('node:path');
const { fork } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const { newHist, histAdd, histMerge, histSummary, round } = require('../lib/common.cjs');
const engine = require('./engine.cjs');
const { Peer, closePeers, phase, addProbe } = require('../lib/peer.cjs');

const ROOT = path.resolve(__dirname, '..', '..');
const WORKER = path.join(__dirname, 'worker.cjs');

function combine(parts, durationMs, extraCpuUs = 0) {
  const hist = newHist();
  let commits = 0;
  let cpuUs = extraCpuUs;
  let csw = null;
  for (const p of parts) {
    histMerge(hist, p.hist); if (p.during) histMerge(hist, p.during); commits += p.commits; cpuUs += p.cpuUs || 0;
    if (p.csw) { csw = csw || { vol: 0, invol: 0 }; csw.vol += p.csw.vol; csw.invol += p.csw.invol; }
  }
  // CPU time of every process in the measured window (all threads), per commit.
  return { commits, commitsPerSec: round(commits / (durationMs / 1000)), ...histSummary(hist), cpuPerCommitUs: commits ? round(cpuUs / commits, 1) : null,
    // context switches of the workers in the measured window, per commit (voluntary: sleeps)
    ...(csw && commits ? { cswPerCommit: { vol: round(csw.vol / commits, 2), invol: round(csw.invol / commits, 2) } } : {}) };
}

// TPCB_PERF_CTL=<fifo>: writes 'enable' / 'disable' there at the measured window's start
// and end, for `perf stat|record -D -1 --control fifo:<fifo>` (counts of the window alone,
// not of the load, the warm-up or the shutdown's writeback).
function perfControl(cmd) {
  const fifo = process.env.TPCB_PERF_CTL;
  if (fifo) fs.writeFileSync(fifo, `${cmd}\n`);
}

// TPCB_SLICES=<file>: every TPCB_SLICE_MS (default 5000) of the run (warm-up included) the
// postmaster appends one JSON line there: the transactions appended to the WAL in the slice
// (every process's, from the shared counter), the CPU of the postmaster and every worker by
// thread name (/proc/<pid>/task/<tid>/stat, clock ticks -> µs), their voluntary and
// involuntary switches, RSS, and the pool's counters: how the CPU per transaction moves
// over a long run, and in which threads.
function threadTicks(pids) {
  const by = {};
  let vol = 0, invol = 0, rssKiB = 0;
  for (const pid of pids) {
    let tids = [];
    try { tids = fs.readdirSync(`/proc/${pid}/task`); } catch { continue; }
    try { rssKiB += Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]); } catch { /* gone */ }
    for (const tid of tids) {
      try {
        const st = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const name = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        const key = tid === String(pid) ? (pid === process.pid ? 'pm:main' : 'js') : name.replace(/[0-9]+$/, '');
        by[key] = (by[key] || 0) + Number(f[11]) + Number(f[12]);
        const ss = fs.readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
        vol += Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(ss)[1]);
        invol += Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(ss)[1]);
      } catch { /* thread gone */ }
    }
  }
  return { by, vol, invol, rssKiB };
}

function startSlices(pm, peers, g) {
  const file = process.env.TPCB_SLICES;
  if (!file) return () => {};
  const every = Number(process.env.TPCB_SLICE_MS || 5000);
  const tick = 1e6 / 100;  // USER_HZ
  const pids = () => [process.pid, ...peers.map((p) => p.target.pid).filter(Boolean)];
  const t0 = Date.now();
  const take = () => ({ t: Date.now(), appends: pm.wal.stats().appends, th: threadTicks(pids()), pool: g ? pm.buffers.stats() : null });
  let prev = take();
  const timer = setInterval(() => {
    const cur = take();
    const n = cur.appends - prev.appends;
    const cpu = {};
    let total = 0;
    for (const k of Object.keys(cur.th.by)) { const d = (cur.th.by[k] - (prev.th.by[k] || 0)) * tick; total += d; if (d) cpu[k] = round(n ? d / n : 0, 1); }
    const pool = cur.pool ? Object.fromEntries(Object.entries(cur.pool.global).filter(([k, v]) => typeof v === 'number' && v !== prev.pool.global[k]).map(([k, v]) => [k, round((v - prev.pool.global[k]) / (n || 1), 4)])) : null;
    fs.appendFileSync(file, `${JSON.stringify({ s: round((cur.t - t0) / 1000, 1), mono: round(Number(process.hrtime.bigint()) / 1e9, 3), tps: round(n / ((cur.t - prev.t) / 1000)), cpuUsPerTx: round(n ? total / n : 0, 1), byThread: cpu, volPerTx: round((cur.th.vol - prev.th.vol) / (n || 1), 3), involPerTx: round((cur.th.invol - prev.th.invol) / (n || 1), 3), rssMiB: round(cur.th.rssKiB / 1024), dirty: cur.pool && cur.pool.dirty, valid: cur.pool && cur.pool.valid, poolPerTx: pool, load1: round(require('node:os').loadavg()[0], 2) })}\n`);
    prev = cur;
  }, every);
  return () => clearInterval(timer);
}

function freshDir(spec, tag) {
  const dir = path.join(spec.dataDir, `${tag}-${process.pid}`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

async function rmPoint(spec) {
  const rm = require(ROOT);
  const dir = freshDir(spec, 'rm');
  let g = spec.kind === 'tpcb' ? { ...engine.geometry(spec.g), workers: spec.procs } : null;
  // spec.poolPages: a pool smaller than the data, so evictions write dirty pages back. By
  // default the pool holds the data set up to 256 MiB (PostgreSQL's shared_buffers in the
  // pgbench anchor); beyond that the postmaster runs the background writer, as PostgreSQL
  // runs its bgwriter (without it every miss waited for a dirty victim's write: 394 tps
  // against 7,328 at scale 64, 2 workers).
  const want = g ? engine.poolPagesFor(g, spec.historyRows || 100000) : 32;
  const pages = spec.poolPages || Math.min(32768, want);
  const bgWriter = spec.bgWriter !== undefined ? spec.bgWriter : g && !spec.poolPages && pages < want ? { intervalMs: 10, maxPages: 256 } : null;
  phase('postmaster start');
  const pm = await rm.Postmaster.start({
    // The pool's descriptors, wait cells and pin tables, the WAL buffer and the loader's buffers need room too.
    dataDir: dir, maxProcesses: spec.procs + 4, arenaSize: pages * (8192 + 256) + (8 << 20),
    ringEntries: 1024, bufferPool: { pages }, wal: { bufferSize: 1 << 20, segmentSize: 16 << 20, ...(spec.walSync ? { walSync: spec.walSync } : {}), ...(spec.walDirect !== undefined ? { direct: spec.walDirect } : {}) },
  });
  const peers = [];
  const dropProbe = addProbe(() => ({ wal: pm.wal.stats(), participants: peers.map((p) => p.pending()) }));
  try {
    phase('load');
    if (g) g = await engine.load(pm, g);
    phase('participants start');
    for (let i = 0; i < spec.procs; i++) {
      peers.push(spec.mode === 'threads'
        ? new Peer(new Worker(WORKER, { workerData: { token: pm.threadToken() } }), 'thread')
        : new Peer(pm.fork(WORKER, ['fork'], { stdio: ['ignore', 'inherit', 'inherit'] }), 'proc'));
    }
    if (spec.walBeforeData) pm.buffers.configure({ walBeforeData: spec.walBeforeData });
    if (bgWriter) pm.buffers.startBackgroundWriter(bgWriter);
    for (const p of peers) { await p.ready; await p.call('attach', { walBeforeData: spec.walBeforeData }); }
    phase('run');
    const stopSlices = startSlices(pm, peers, g);
    const w0 = pm.wal.stats();
    // spec.checkpointEveryMs: the postmaster checkpoints on this period while the load runs,
    // and raises an arena word meanwhile so the participants can tell which commits overlapped.
    const flagSlice = spec.checkpointEveryMs ? pm.allocate(8, { align: 8 }) : null;
    const flag = flagSlice ? new Int32Array(flagSlice.bytes.buffer, flagSlice.offset, 1) : null;
    const ckpts = [];
    let loadDone = false;
    const checkpointer = (async () => {
      if (!flag) return;
      while (!loadDone) {
        await new Promise((r) => setTimeout(r, spec.checkpointEveryMs));
        if (loadDone) break;
        const t0 = process.hrtime.bigint();
        Atomics.store(flag, 0, 1);
        try {
          await pm.wal.checkpoint();
        } finally {
          Atomics.store(flag, 0, 0);
        }
        const ms = Number(process.hrtime.bigint() - t0) / 1e6;
        const lc = pm.wal.lastCheckpoint;  // phases, where the library reports them
        ckpts.push(lc ? { ms, flushMs: lc.flushMs, barrierMs: lc.barrierMs, syncMs: lc.syncMs, pages: lc.pagesWritten, files: lc.syncedFiles.length, fsyncs: lc.syncedFiles.filter((f) => f.fsync).length, skipped: lc.syncsSkipped } : { ms });
      }
    })();
    // The postmaster's own CPU (its watchers reap for everyone) in the measured window;
    // with worker threads the workers' cpuUsage is this same process's, counted once here.
    let pmCpu0 = null;
    let pmRu0 = null;
    let pool0 = null;
    const pmTimer = setTimeout(() => { pmCpu0 = process.cpuUsage(); pmRu0 = process.resourceUsage(); pool0 = g ? pm.buffers.stats().global : null; perfControl('enable'); }, spec.warmupMs || 0);  // this loop idles: timers run
    const runArgs = { kind: spec.kind, sessions: spec.sessions, durationMs: spec.durationMs, warmupMs: spec.warmupMs, g, ...(flagSlice ? { checkpointFlag: flagSlice.offset } : {}) };
    const parts = await Promise.all(peers.map((p, i) => p.call('run', { ...runArgs, worker: i }))).finally(() => { loadDone = true; });
    clearTimeout(pmTimer);
    stopSlices();
    perfControl('disable');
    const pmCpu = process.cpuUsage(pmCpu0 || undefined);
    const pmRu = process.resourceUsage();
    // The pool's counters in the measured window (before the invariant check reads every page).
    const pool1 = g ? pm.buffers.stats().global : null;
    phase('results');
    await checkpointer;
    if (spec.mode === 'threads') for (const p of parts) p.cpuUs = 0;
    const w1 = pm.wal.stats();
    const res = combine(parts, spec.durationMs, pmCpu0 ? pmCpu.user + pmCpu.system : 0);
    if (flag) {
      const during = newHist();
      let commitsDuring = 0;
      for (const p of parts) { histMerge(during, p.during); commitsDuring += p.commitsDuring; }
      res.outside = histSummary(parts.reduce((h, p) => histMerge(h, p.hist), newHist()));
      res.during = { commits: commitsDuring, ...histSummary(during) };
      res.checkpoints = ckpts;
    }
    if (pmRu0 && res.commits) res.pmCswPerCommit = { vol: round((pmRu.voluntaryContextSwitches - pmRu0.voluntaryContextSwitches) / res.commits, 2), invol: round((pmRu.involuntaryContextSwitches - pmRu0.involuntaryContextSwitches) / res.commits, 2) };
    res.fdatasyncs = w1.fdatasyncs - w0.fdatasyncs;
    res.walCommits = w1.commits - w0.commits;
    // Both counted over the whole run (warm-up included), so their ratio holds.
    res.fdatasyncsPerCommit = res.walCommits ? round(res.fdatasyncs / res.walCommits, 4) : null;
    res.backend = pm.features.backend;
    res.walSync = w1.walSync;  // the setting in force, whether chosen or the default
    res.walDirect = w1.direct;
    res.poolPages = pages;
    res.dataPages = want;
    res.bgWriter = bgWriter;
    if (g) {
      res.invariant = await engine.check(pm, g);
      res.pool = pm.buffers.stats().global;
      if (pool0 && res.commits) res.poolPerCommit = Object.fromEntries(Object.keys(pool1).map((k) => [k, round((pool1[k] - pool0[k]) / res.commits, 4)]));
    }
    phase('participants close');
    await closePeers(peers);
    return res;
  } finally {
    phase('postmaster stop');
    dropProbe();
    await pm.stop({ timeoutMs: 3000 });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function sqlitePoint(spec) {
  const Database = require('better-sqlite3');
  const dir = freshDir(spec, 'sqlite');
  const file = path.join(dir, 'bench.sqlite');
  const g = spec.kind === 'tpcb' ? engine.geometry(spec.g) : null;
  // spec.templateDir: the loaded tables are kept there and copied for the next point of the
  // same geometry (loading 25.6 M accounts takes minutes; copying the file, seconds).
  const template = g && spec.templateDir ? path.join(spec.templateDir, `tpcb-s${g.scale}-a${g.accounts}.sqlite`) : null;
  if (template && fs.existsSync(template)) fs.copyFileSync(template, file);
  else { phase('sqlite load'); await sqliteLoad(file, g); }
  if (template && !fs.existsSync(template)) {
    fs.mkdirSync(spec.templateDir, { recursive: true });
    fs.copyFileSync(file, `${template}.tmp`);
    fs.renameSync(`${template}.tmp`, template);
  }
  return sqliteRunPoint(spec, dir, file, g);
}

async function sqliteLoad(file, g) {
  const Database = require('better-sqlite3');
  const d = new Database(file);
  d.pragma('journal_mode = WAL');
  if (!g) d.exec('CREATE TABLE log(id INTEGER PRIMARY KEY, data BLOB)');
  else {
    d.exec(`CREATE TABLE branches(bid INTEGER PRIMARY KEY, bbalance INTEGER, filler TEXT);
      CREATE TABLE tellers(tid INTEGER PRIMARY KEY, bid INTEGER, tbalance INTEGER, filler TEXT);
      CREATE TABLE accounts(aid INTEGER PRIMARY KEY, bid INTEGER, abalance INTEGER, filler TEXT);
      CREATE TABLE history(tid INTEGER, bid INTEGER, aid INTEGER, delta INTEGER, mtime INTEGER, filler TEXT);`);
    const fill = ' '.repeat(84);
    d.transaction(() => {
      const b = d.prepare('INSERT INTO branches VALUES (?, 0, ?)');
      for (let i = 1; i <= g.branches; i++) b.run(i, fill);
      const t = d.prepare('INSERT INTO tellers VALUES (?, ?, 0, ?)');
      for (let i = 1; i <= g.tellers; i++) t.run(i, 1 + ((i - 1) % g.branches), fill);
      const a = d.prepare('INSERT INTO accounts VALUES (?, ?, 0, ?)');
      for (let i = 1; i <= g.accounts; i++) a.run(i, 1 + ((i - 1) % g.branches), fill);
    })();
  }
  d.close();  // checkpoints the WAL into the main file: the file alone is the database
}

async function sqliteRunPoint(spec, dir, file, g) {
  const Database = require('better-sqlite3');
  const peers = [];
  phase('sqlite run');
  addProbe(() => ({ participants: peers.map((p) => p.pending()) }));
  try {
    for (let i = 0; i < spec.procs; i++) peers.push(new Peer(fork(WORKER, ['sqlite'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), 'proc'));
    for (const p of peers) await p.ready;
    const parts = await Promise.all(peers.map((p) => p.call('run', { kind: spec.kind, sessions: 1, durationMs: spec.durationMs, warmupMs: spec.warmupMs, g, sqlite: { file, synchronous: spec.synchronous } })));
    const res = combine(parts, spec.durationMs);
    res.settings = `journal_mode=WAL, synchronous=${spec.synchronous}, busy_timeout=10000, ${spec.procs} process(es), one connection each, BEGIN IMMEDIATE`;
    if (g) {
      const c = new Database(file);
      const s = (q) => c.prepare(q).pluck().get();
      res.invariant = { accounts: s('SELECT sum(abalance) FROM accounts'), tellers: s('SELECT sum(tbalance) FROM tellers'), branches: s('SELECT sum(bbalance) FROM branches'), history: s('SELECT sum(delta) FROM history') };
      res.invariant.ok = res.invariant.accounts === res.invariant.tellers && res.invariant.tellers === res.invariant.branches && res.invariant.branches === res.invariant.history;
      c.close();
    }
    for (const p of peers) await p.call('close').catch(() => {});
    return res;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// Node fs, one committing session (durable commits only): append a 100-byte record to a
// zero-filled, preallocated log and fdatasync it, `await`ed one after the other, as a
// JS engine on Node's own fs would. UV_USE_IO_URING in the environment picks the
// threadpool (0) or libuv's io_uring (1).
async function nodePoint(spec) {
  const dir = freshDir(spec, 'node');
  const file = path.join(dir, 'log');
  const size = 16 << 20;
  fs.writeFileSync(file, Buffer.alloc(size));
  const fd = fs.openSync(file, 'r+');
  fs.fdatasyncSync(fd);
  fs.closeSync(fd);
  const fh = await fs.promises.open(file, 'r+');
  const payload = Buffer.alloc(100, 0x61);
  const hist = newHist();
  let commits = 0;
  let pos = 0;
  phase(`node fs run (UV_USE_IO_URING=${process.env.UV_USE_IO_URING ?? 'unset'})`);
  const end = Date.now() + spec.durationMs;
  try {
    while (Date.now() < end) {
      const t0 = process.hrtime.bigint();
      await fh.write(payload, 0, payload.length, pos);
      await fh.datasync();
      histAdd(hist, Number(process.hrtime.bigint() - t0));
      commits++;
      pos = (pos + payload.length) % (size - payload.length);
    }
  } finally {
    await fh.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const res = combine([{ commits, hist }], spec.durationMs);
  res.settings = `fs.promises FileHandle.write + datasync per commit, UV_USE_IO_URING=${process.env.UV_USE_IO_URING ?? 'default'}`;
  return res;
}

async function main() {
  const spec = JSON.parse(process.argv[2]);
  const res = spec.engine === 'sqlite' ? await sqlitePoint(spec) : spec.engine === 'node' ? await nodePoint(spec) : await rmPoint(spec);
  process.stdout.write(`${JSON.stringify(res)}\n`);
}

main().then(() => process.exit(0), (e) => {
  process.stdout.write(`${JSON.stringify({ error: `${e.code || ''} ${e.stack || e.message}` })}\n`);
  process.exit(1);
});
