'use strict';
// A load participant for durable-commits and tpcb: a forked ringmaster worker
// (pm.fork, argv[2] === 'fork'), a ringmaster worker thread (workerData.token), or a
// better-sqlite3 process (argv[2] === 'sqlite'). Messages { id, cmd, args } -> { id, ok, result | error }.
// 'run' args: { kind: 'commits'|'tpcb', sessions, durationMs, g, worker, sqlite: { file, synchronous } }
const path = require('node:path');
const { isMainThread, parentPort, workerData } = require('node:worker_threads');
const { newHist, histAdd } = require('../lib/common.cjs');
const engine = require('./engine.cjs');

const ROOT = path.resolve(__dirname, '..', '..');
const role = isMainThread ? process.argv[2] : 'thread';
let db = null;
let sdb = null;

// The measured window starts after `warmupMs` (a.warmupMs, default 0) of the same load:
// a transaction counts if it starts inside the window. Warm-up lets every process's JIT
// settle first (with 16 processes on 2 cores, compiling alone took a quarter of the CPU
// in the first seconds).
function windowOf(a) {
  const start = Date.now() + (a.warmupMs || 0);
  return { start, end: start + a.durationMs };
}

async function rmRun(a) {
  const hist = newHist();
  const warm = newHist();
  const counts = [0, 0, 0];  // commits: in the warm-up, in the window, in the window during a checkpoint
  const { start, end } = windowOf(a);
  const payload = Buffer.alloc(100, 0x61);
  let eng = null;
  if (a.kind === 'tpcb') eng = await engine.Engine.open(db, a.g, a.worker);
  // a.checkpointFlag: arena offset of a word the postmaster sets while it checkpoints; a
  // commit that saw it set at its start or its end counts as "during a checkpoint".
  const flag = a.checkpointFlag !== undefined ? new Int32Array(db.arenaSlice(a.checkpointFlag, 4).bytes.buffer, a.checkpointFlag, 1) : null;
  const during = newHist();
  const hists = [warm, hist, during];
  const cpu = cpuWindow(start);
  await Promise.all(Array.from({ length: a.sessions }, async () => {
    for (;;) {
      const now = Date.now();
      if (now >= end) break;
      cpu.tick(now);
      const t0 = process.hrtime.bigint();
      const in0 = flag ? Atomics.load(flag, 0) : 0;
      if (eng) await eng.txn();
      else await db.wal.flush(await db.wal.append(1, payload));
      const ns = Number(process.hrtime.bigint() - t0);
      // The warm-up runs the window's own code, one call site for every histogram (the
      // warm-up's is thrown away): a loop that skipped it in the warm-up had never run the
      // code below, and V8's optimised session loop bailed out on it at the window's first
      // commit ("insufficient type feedback"), in every process, so the window began with
      // the loop deoptimised and recompiling.
      // (Every comparison and call here runs in the warm-up too: only the boolean tests
      // pick other constants in the window, which needs no type feedback.)
      const checkpointing = flag !== null && (in0 !== 0 || Atomics.load(flag, 0) !== 0);
      const k = now >= start ? (checkpointing ? 2 : 1) : 0;
      histAdd(hists[k], ns);
      counts[k]++;
    }
  }));
  const cpuUs = cpu.done();
  const commitsDuring = counts[2];
  const commits = counts[1] + commitsDuring;
  return flag ? { commits, hist, during, commitsDuring, cpuUs, csw: cpu.csw } : { commits, hist, cpuUs, csw: cpu.csw };
}

// CPU time (all threads of this process) spent inside the measured window [start, end):
// sampled by the first transaction that starts in it and at the end (not by timers, which
// a loop running on microtasks alone would starve).
function cpuWindow(start) {
  let at0 = null;
  let ru0 = null;
  let sampled = false;
  let last = -Infinity;
  const out = {
    // Sampled every 50 ms of the warm-up too (thrown away), by the same code: that code
    // then has type feedback before the window (V8 allocates a function's feedback only
    // after several calls), so running it at the window's start does not deoptimise the
    // session loop it is inlined into.
    tick(now) {
      if (sampled || (now < start && now - last < 50)) return;
      last = now;
      at0 = process.cpuUsage();
      ru0 = process.resourceUsage();
      if (now >= start) sampled = true;
    },
    done() {
      if (!sampled) return 0;
      const d = process.cpuUsage(at0);
      const ru = process.resourceUsage();
      // context switches in the window (this process, all threads): voluntary = sleeps
      out.csw = { vol: ru.voluntaryContextSwitches - ru0.voluntaryContextSwitches, invol: ru.involuntaryContextSwitches - ru0.involuntaryContextSwitches };
      return d.user + d.system;
    },
    csw: null,
  };
  return out;
}

function sqliteOpen(a) {
  const Database = require('better-sqlite3');
  sdb = new Database(a.sqlite.file);
  sdb.pragma('journal_mode = WAL');
  sdb.pragma(`synchronous = ${a.sqlite.synchronous}`);
  sdb.pragma('busy_timeout = 10000');
}

function sqliteRun(a) {
  if (!sdb) sqliteOpen(a);
  const hist = newHist();
  const { start, end } = windowOf(a);
  const payload = Buffer.alloc(100, 0x61);
  let step;
  if (a.kind === 'commits') {
    // BEGIN IMMEDIATE, as in tpcb: a plain autocommit INSERT starts deferred, and with two
    // processes the busy handler's sleeps (not the fsync) would set the rate.
    const ins = sdb.prepare('INSERT INTO log(data) VALUES (?)');
    const tx = sdb.transaction(() => ins.run(payload));
    step = () => tx.immediate();
  } else {
    const g = a.g;
    let seed = (process.pid * 2654435761) >>> 0 || 1;
    const rnd = (n) => { seed ^= seed << 13; seed >>>= 0; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0; return (seed % n) + 1; };
    const ua = sdb.prepare('UPDATE accounts SET abalance = abalance + ? WHERE aid = ?');
    const sa = sdb.prepare('SELECT abalance FROM accounts WHERE aid = ?');
    const ut = sdb.prepare('UPDATE tellers SET tbalance = tbalance + ? WHERE tid = ?');
    const ub = sdb.prepare('UPDATE branches SET bbalance = bbalance + ? WHERE bid = ?');
    const ih = sdb.prepare('INSERT INTO history(tid, bid, aid, delta, mtime, filler) VALUES (?, ?, ?, ?, ?, ?)');
    const tx = sdb.transaction((aid, tid, bid, delta) => {
      ua.run(delta, aid); sa.get(aid); ut.run(delta, tid); ub.run(delta, bid);
      ih.run(tid, bid, aid, delta, Date.now(), '');
    });
    // BEGIN IMMEDIATE: take the write lock up front (as pgbench's row locks would), no
    // SQLITE_BUSY upgrade deadlocks between processes.
    step = () => tx.immediate(rnd(g.accounts), rnd(g.tellers), rnd(g.branches), rnd(10001) - 5001);
  }
  // The warm-up runs the window's code too, as in rmRun (no bail-out at the window's start).
  const warm = newHist();
  const hists = [warm, hist];
  const counts = [0, 0];
  const cpu = cpuWindow(start);
  for (;;) {
    const now = Date.now();
    if (now >= end) break;
    cpu.tick(now);
    const t0 = process.hrtime.bigint();
    step();
    const k = now >= start ? 1 : 0;
    histAdd(hists[k], Number(process.hrtime.bigint() - t0));
    counts[k]++;
  }
  return { commits: counts[1], hist, cpuUs: cpu.done() };
}

const handlers = {
  async attach(a = {}) {
    const rm = require(ROOT);
    db = role === 'thread' ? await rm.attach(workerData.token) : await rm.attach();
    // Each process writes back what it evicts: the strategy is set per environment.
    if (a.walBeforeData) db.buffers.configure({ walBeforeData: a.walBeforeData });
    return { slot: db.slot, pid: process.pid };
  },
  async run(a) {
    if (role === 'sqlite') return sqliteRun(a);
    return rmRun(a);
  },
  async stats() {
    return { wal: db.wal.stats(), pool: db.buffers.stats() };
  },
  async close() {
    if (db) await db.close();
    if (sdb) sdb.close();
    db = null;
    if (isMainThread) setTimeout(() => process.exit(0), 20);
    return true;
  },
};

function onMessage(m, reply) {
  if (!m || typeof m !== 'object' || m.id === undefined) return;
  Promise.resolve().then(() => handlers[m.cmd](m.args || {}))
    .then((result) => reply({ id: m.id, ok: true, result }), (e) => reply({ id: m.id, ok: false, error: `${e.code || ''} ${e.stack || e.message}` }));
}

if (isMainThread) {
  process.on('message', (m) => onMessage(m, (r) => process.send(r)));
  process.send({ event: 'ready' });
} else {
  parentPort.on('message', (m) => onMessage(m, (r) => parentPort.postMessage(r)));
  parentPort.postMessage({ event: 'ready' });
}
