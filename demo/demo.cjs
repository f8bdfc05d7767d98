#!/usr/bin/env node
'use strict';
// npm run demo [-- --seconds=20] [-- --threads] [-- --data-dir=DIR] [-- --sessions=16] [-- --accounts=N] [-- --kill-at=S] [-- --pool-pages=N] [-- --min-commits=N] [-- --quiet]
// DEMO_JSON=file writes the summary as JSON; exit status 0 iff the invariant holds after recovery.
// A postmaster on a temp data dir, 2 workers running the TPC-B-like load (bench/tpcb),
// a live progress line; in the forked mode one worker is SIGKILLed mid-run and the
// postmaster forks it again (pm.on('exit')). Then a summary, a restart on the same data
// dir with WAL recovery, and the check sum(accounts) == sum(tellers) == sum(branches) == sum(history).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { MessageChannel } = require('node:worker_threads');
const rm = require(path.join(__dirname, '..'));
const engine = require('../bench/tpcb/engine.cjs');
const { newHist, histMerge, histSummary, round } = require('../bench/lib/common.cjs');

function args() {
  const o = { seconds: 20, threads: false, sessions: 16, workers: 2, dataDir: null, accounts: undefined, killAt: null, quiet: false, poolPages: null, minCommits: 0 };
  const av = process.argv.slice(2);
  for (let i = 0; i < av.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(av[i]);
    if (!m) throw new Error(`demo: unexpected argument ${av[i]}`);
    const v = m[2] !== undefined ? m[2] : (av[i + 1] && !av[i + 1].startsWith('--') ? av[++i] : undefined);
    if (m[1] === 'seconds') o.seconds = Number(v);
    else if (m[1] === 'threads') o.threads = true;
    else if (m[1] === 'sessions') o.sessions = Number(v);
    else if (m[1] === 'data-dir') o.dataDir = v;
    else if (m[1] === 'accounts') o.accounts = Number(v);
    else if (m[1] === 'kill-at') o.killAt = Number(v);
    else if (m[1] === 'quiet') o.quiet = true;
    else if (m[1] === 'pool-pages') o.poolPages = Number(v);
    else if (m[1] === 'min-commits') o.minCommits = Number(v);
    else throw new Error(`demo: unknown option --${m[1]}`);
  }
  if (o.killAt === null) o.killAt = o.seconds / 2;
  return o;
}

function poolOptions(g, o) {
  const pages = o.poolPages || Math.min(4096, engine.poolPagesFor(g, Math.max(20000, o.seconds * 15000)));
  return { pages, arenaSize: pages * 8192 + (4 << 20) };
}

async function main() {
  const o = args();
  const dataDir = o.dataDir || fs.mkdtempSync(path.join(os.tmpdir(), 'ringmaster-demo-'));
  const line = (s) => (process.stdout.isTTY && !o.quiet ? process.stdout.write(`\r${s.padEnd(110)}`) : null);
  const say = (s) => { if (process.stdout.isTTY && !o.quiet) process.stdout.write('\r'.padEnd(112) + '\r'); console.log(s); };
  let g = { ...engine.geometry({ scale: 1, accounts: o.accounts }), workers: o.workers };
  const { pages, arenaSize } = poolOptions(g, o);
  const startOpts = { dataDir, arenaSize, maxProcesses: 16, bufferPool: { pages }, wal: {} };
  say(`demo: data dir ${dataDir}; TPC-B-like scale 1 (${g.branches} branch, ${g.tellers} tellers, ${g.accounts} accounts), ${o.workers} ${o.threads ? 'worker threads (piscina)' : 'forked workers'} x ${o.sessions} sessions, ${o.seconds} s`);
  let pm = await rm.Postmaster.start(startOpts);
  // A postmaster on the same data directory after a crash or a stop: WAL recovery collects
  // the TPC-B records, then they are re-applied through the pages (idempotent by page LSN).
  const startAndRecover = async () => {
    const records = [];
    const p = await rm.Postmaster.start({ ...startOpts, wal: { redo: engine.redoCollector(records) } });
    return { pm: p, rec: await engine.recover(p, { ...g, files: undefined }, records, dataDir) };
  };
  say(`demo: postmaster pid ${process.pid}, backend ${pm.features.backend}${pm.features.fixedBuffers ? ', fixed buffers' : ''}; loading...`);
  g = await engine.load(pm, g);
  say(`demo: loaded and checkpointed (${g.accounts} accounts in ${Math.ceil(g.accounts / engine.RPP)} pages)`);

  const hist = newHist();
  let commits = 0;
  let lastCommits = 0;
  const ioByOther = new Map();  // pid -> max completedByOther seen (slots reset when cleaned)
  const sampleStats = () => {
    try {
      for (const p of pm.stats().processes) ioByOther.set(`${p.kind}:${p.pid}`, Math.max(ioByOther.get(`${p.kind}:${p.pid}`) || 0, p.completedByOther));
    } catch { /* stopping */ }
  };
  const onProgress = (d) => { commits += d.commits; histMerge(hist, d.hist); };
  let w0 = pm.wal.stats();
  let fsyncsBefore = 0;  // fdatasyncs of postmasters replaced by a crash restart
  const t0 = Date.now();
  let stopping = false;
  const events = [];
  let killedPid = null;
  let restarts = 0;
  let crashRestarts = 0;
  let restarting = false;
  const children = new Map();  // worker index -> ChildProcess
  let finish;

  if (!o.threads) {
    const start = (idx) => {
      const c = pm.fork(path.join(__dirname, 'worker.cjs'), [], { stdio: ['ignore', 'inherit', 'inherit'] });
      children.set(idx, c);
      c.on('message', (m) => {
        if (m.ready) c.send({ cmd: 'start', g, worker: idx, sessions: o.sessions });
        else if (m.progress) onProgress(m.progress);
        else if (m.error) say(`demo: worker ${idx} error: ${m.error}`);
      });
      return c;
    };
    // A worker that died holding pages exclusively may have left them half-changed: the
    // pool fences them (ERR_RINGMASTER_PAGE_TORN) and the postmaster does what PostgreSQL
    // does, a crash restart: stop every worker, replay the WAL, fork the workers again.
    const crashRestart = async (e, idx) => {
      restarting = true;
      events.push(`t=${round((Date.now() - t0) / 1000, 1)}s worker ${idx} (pid ${e.pid}) died holding ${e.tornPages.length} page(s) exclusively (maybe half-changed): crash restart -- every worker stopped, WAL replayed, workers forked again`);
      say(`demo: ${events[events.length - 1]}`);
      const gone = [...children.values()].map((c) => new Promise((r) => { if (c.exitCode !== null || c.signalCode !== null) r(); else { c.once('exit', r); c.kill('SIGKILL'); } }));
      await Promise.all(gone);
      fsyncsBefore += pm.wal.stats().fdatasyncs - w0.fdatasyncs;
      // A crash restart takes no shutdown checkpoint (PostgreSQL's neither): a page is torn.
      await pm.stop({ timeoutMs: 5000, checkpoint: false });
      let rec;
      ({ pm, rec } = await startAndRecover());
      g = { ...g, files: rec.files };
      w0 = pm.wal.stats();
      crashRestarts++;
      events.push(`t=${round((Date.now() - t0) / 1000, 1)}s crash restart done: ${rec.records} WAL records re-applied; ${o.workers} workers forked again`);
      say(`demo: ${events[events.length - 1]}`);
      pm.on('exit', onExit);
      restarting = false;
      for (let i = 0; i < o.workers; i++) start(i);
    };
    const onExit = (e) => {
      const idx = [...children].find(([, c]) => c.pid === e.pid);
      if (!idx || stopping || restarting) return;
      if (e.tornPages.length) {
        restarts++;
        crashRestart(e, idx[0]).catch((err) => { say(`demo: crash restart failed: ${err.stack}`); process.exit(1); });
        return;
      }
      const t = round((Date.now() - t0) / 1000, 1);
      events.push(`t=${t}s worker ${idx[0]} (pid ${e.pid}) exited (${e.signal || e.code}); slots cleaned: ${e.slotsCleaned}; postmaster forks it again`);
      say(`demo: ${events[events.length - 1]}`);
      restarts++;
      const c = start(idx[0]);
      c.once('message', () => { events.push(`t=${round((Date.now() - t0) / 1000, 1)}s worker ${idx[0]} restarted as pid ${c.pid}`); say(`demo: ${events[events.length - 1]}`); });
    };
    pm.on('exit', onExit);
    for (let i = 0; i < o.workers; i++) start(i);
    finish = async () => {
      const gone = [...children.values()].map((c) => new Promise((r) => { if (c.exitCode !== null || c.signalCode !== null) r(); else c.once('exit', r); }));
      for (const c of children.values()) { try { c.send({ cmd: 'stop' }); } catch { /* gone */ } }
      await Promise.race([Promise.all(gone), new Promise((r) => setTimeout(r, 10000))]);
    };
  } else {
    const { Piscina } = require('piscina');
    const pool = new Piscina({ filename: path.join(__dirname, 'piscina-task.cjs'), minThreads: o.workers, maxThreads: o.workers, workerData: { token: pm.threadToken() } });
    const stopFlag = new SharedArrayBuffer(4);
    const runs = [];
    for (let i = 0; i < o.workers; i++) {
      const { port1, port2 } = new MessageChannel();
      port1.on('message', (m) => { if (m.progress) onProgress(m.progress); });
      runs.push(pool.run({ g, worker: i, sessions: o.sessions, stopFlag, port: port2 }, { transferList: [port2] }).finally(() => port1.close()));
    }
    events.push('threads mode: no kill (a worker thread cannot be SIGKILLed on its own; the process would go with it)');
    finish = async () => {
      Atomics.store(new Int32Array(stopFlag), 0, 1);
      await Promise.all(runs);
      await pool.destroy();
    };
  }

  const tick = setInterval(() => {
    sampleStats();
    const el = (Date.now() - t0) / 1000;
    const alive = o.threads ? o.workers : [...children.values()].filter((c) => c.exitCode === null && c.signalCode === null && c.connected).length;
    const s = histSummary(hist);
    line(`t=${el.toFixed(0).padStart(3)}s  commits ${String(commits).padStart(8)}  tps(last 1 s) ${String(commits - lastCommits).padStart(6)}  p50 ${s.p50us ?? '-'} µs  p99 ${s.p99us ?? '-'} µs  workers alive ${alive}/${o.workers}  restarts ${restarts}`);
    if (!o.quiet && !process.stdout.isTTY && Math.floor(el) % 5 === 0) console.log(`t=${el.toFixed(0)}s commits ${commits} tps(last 1 s) ${commits - lastCommits} workers alive ${alive}/${o.workers} restarts ${restarts}`);
    lastCommits = commits;
  }, 1000);
  if (!o.threads) {
    setTimeout(() => {
      const c = children.get(0);
      killedPid = c.pid;
      events.push(`t=${round((Date.now() - t0) / 1000, 1)}s SIGKILL worker 0 (pid ${c.pid}) mid-run`);
      say(`demo: ${events[events.length - 1]}`);
      c.kill('SIGKILL');
    }, o.killAt * 1000);
  }
  await new Promise((r) => setTimeout(r, o.seconds * 1000));
  // --min-commits: a slow start (forks, attaches and JIT on a loaded machine) must not
  // leave the run with nothing to check; bounded, the caller's own timeout aside.
  while (commits < o.minCommits && Date.now() - t0 < 60000) await new Promise((r) => setTimeout(r, 100));
  stopping = true;
  sampleStats();
  await finish();
  clearInterval(tick);
  const el = (Date.now() - t0) / 1000;
  const w1 = pm.wal.stats();
  const pool = pm.buffers.stats().global;
  const s = histSummary(hist);
  const fsyncs = fsyncsBefore + w1.fdatasyncs - w0.fdatasyncs;
  const summary = {
    seconds: round(el, 1), commits, tps: round(commits / el), p50us: s.p50us, p99us: s.p99us,
    fdatasyncs: fsyncs, fdatasyncsPerCommit: commits ? round(fsyncs / commits, 4) : null,
    ioCompletedByOtherProcess: [...ioByOther.values()].reduce((a, b) => a + b, 0), bufferPoolReadsCompletedByOther: pool.completedByOther,
    killedPid, restarts, crashRestarts,
  };
  say('');
  say('demo summary:');
  for (const e of events) say(`  ${e}`);
  say(`  ${commits} transactions in ${summary.seconds} s: ${summary.tps} tps; latency p50 ${s.p50us} µs, p99 ${s.p99us} µs`);
  say(`  WAL: ${fsyncs} fdatasyncs for ${commits} commits = ${summary.fdatasyncsPerCommit} per commit (group commit); every commit acknowledged only after wal.flush(commit LSN)`);
  say(`  IOs completed by a process other than the issuer (db.stats().processes[].completedByOther, summed): ${summary.ioCompletedByOtherProcess}; buffer-pool reads completed by another process: ${pool.completedByOther}`);
  const live = await engine.check(pm, g);
  say(`  live invariant before restart: accounts ${live.accounts} tellers ${live.tellers} branches ${live.branches} history ${live.history} (${live.historyRows} rows): ${live.ok ? 'holds' : 'BROKEN'}`);
  await pm.stop({ timeoutMs: 5000 });

  // Restart on the same directory: WAL recovery (records collected by the redo handler,
  // re-applied to the pages idempotently by page LSN), then the invariant.
  let rec;
  ({ pm, rec } = await startAndRecover());
  const g2 = { ...g, files: rec.files, workers: rec.files.history.length };
  const after = await engine.check(pm, g2);
  say(`  restart + recovery: WAL ${JSON.stringify({ fromLsn: String(pm.wal.recovery.fromLsn), endLsn: String(pm.wal.recovery.endLsn), records: pm.wal.recovery.records, stop: pm.wal.recovery.stop })}; ${rec.records} TPC-B records re-applied through the pages (idempotent by page LSN)`);
  say(`  invariant after recovery: sum(accounts) ${after.accounts} == sum(tellers) ${after.tellers} == sum(branches) ${after.branches} == sum(history deltas) ${after.history} (${after.historyRows} rows; ${commits} acknowledged): ${after.ok ? 'HOLDS' : 'BROKEN'}`);
  const durable = after.historyRows >= commits;
  say(`  every acknowledged transaction survived: ${durable ? 'yes' : 'NO'} (${after.historyRows} history rows >= ${commits} acknowledged)`);
  await pm.stop({ timeoutMs: 5000 });
  if (!o.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  const out = { ...summary, liveInvariant: live, invariantAfterRecovery: after, allAcknowledgedDurable: durable, events };
  if (process.env.DEMO_JSON) fs.writeFileSync(process.env.DEMO_JSON, JSON.stringify(out));
  process.exit(after.ok && durable ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
