'use strict';
// Runs one measured point in a fresh process and prints one JSON line on stdout.
// Usage: node point.cjs '<spec json>'
//   spec.engine: 'ringmaster' | 'node' | 'handoff'
const path = require('node:path');
const { fork } = require('node:child_process');
const { Worker } = require('node:worker_threads');
const { ROOT, histMerge, newHist, histSummary, round } = require('./common.cjs');
const { rmLoop, nodeLoop } = require('./loops.cjs');
const { Peer, closePeers, phase, addProbe } = require('./peer.cjs');

const PARTICIPANT = path.join(__dirname, 'participant.cjs');

function rmStartOptions(spec) {
  const o = spec.rm || {};
  const need = spec.procs * (spec.depth || 1) * (spec.bs || 4096) + (1 << 20);
  const arenaSize = Math.max(4 << 20, Math.ceil((need * 1.25) / (1 << 20)) * (1 << 20));
  const inflight = spec.procs * (spec.depth || 1) + 16;
  const maxProcesses = Math.max(16, spec.procs + 2);
  // Without `rings` the library picks the ring count (its default); the IO handles
  // (rings x ringEntries) must still cover every lane of every process.
  const rings = () => o.rings || require(path.join(ROOT, 'dist', 'core', 'ring-defaults.js')).defaultRings(maxProcesses, ringEntries);
  let ringEntries = 256;
  while (ringEntries * rings() < inflight && ringEntries < 4096) ringEntries *= 2;
  const opts = {
    dataDir: spec.dataDir,
    arenaSize,
    ringEntries,
    sqpoll: !!o.sqpoll,
    fixedBuffers: o.fixedBuffers !== false,
    reaper: o.pmReaper !== false,
    maxProcesses,
  };
  if (o.rings) opts.rings = o.rings;
  if (o.topology) opts.topology = o.topology;
  return opts;
}

function combine(parts, spec) {
  const hist = newHist();
  let iops = 0;
  let ops = 0;
  let errors = 0;
  let firstError = null;
  let cpuUs = 0;
  for (const p of parts) {
    histMerge(hist, p.hist);
    iops += p.iops;
    ops += p.ops;
    errors += p.errors;
    firstError = firstError || p.firstError;
    cpuUs += p.cpuUs || 0;
  }
  // CPU time of every participating process (all their threads) per op; worker threads
  // share their process's clock, so only forked participants add up (spec.mode threads: the first alone).
  const cpuPerOpUs = ops && spec.mode !== 'threads' ? round(cpuUs / ops, 2) : null;
  return { iops: round(iops), mbps: round((iops * spec.bs) / (1 << 20), 1), ops, errors, firstError, ...histSummary(hist), cpuPerOpUs };
}

async function ringmasterPoint(spec) {
  const rm = require(ROOT);
  const opts = rmStartOptions(spec);
  phase('postmaster start');
  const pm = await rm.Postmaster.start(opts);
  const peers = [];
  const dropProbe = addProbe(() => ({ participants: peers.map((p) => p.pending()) }));
  try {
    phase('participants start');
    const file = await pm.files.open(path.basename(spec.file), { direct: !!spec.direct, readOnly: true });
    const mode = spec.mode || 'fork';
    for (let i = 1; i < spec.procs; i++) {
      let p;
      if (mode === 'threads') {
        p = new Peer(new Worker(PARTICIPANT, { workerData: { role: 'rm-thread', token: pm.threadToken() } }), 'thread');
      } else {
        p = new Peer(pm.fork(PARTICIPANT, ['rm-fork'], { stdio: ['ignore', 'inherit', 'inherit'], reaper: (spec.rm || {}).workerReaper !== false }), 'proc');
      }
      peers.push(p);
    }
    for (const p of peers) {
      await p.ready;
      await p.call('attach', {});
    }
    phase('run');
    const run = { ...spec, fileId: file.id };
    const before = pm.stats();
    const parts = await Promise.all([
      rmLoop(pm, file.id, run, 1),
      ...peers.map((p, i) => p.call('run', { ...run, seed: 1000 + i * 7919 })),
    ]);
    const after = pm.stats();
    const res = combine(parts, spec);
    const f = pm.features;
    res.features = { backend: f.backend, backendReason: f.backendReason, fixedBuffers: f.fixedBuffers, fixedBuffersReason: f.fixedBuffersReason, fixedFiles: f.fixedFiles, sqpoll: f.sqpoll, topology: f.topology, rings: f.rings, ringEntries: f.ringEntries };
    res.options = opts;
    res.mode = mode;
    res.ringStats = ringDelta(before, after);
    res.processStats = processDelta(before, after);
    phase('participants close');
    await closePeers(peers);
    return res;
  } finally {
    phase('postmaster stop');
    dropProbe();
    await pm.stop({ timeoutMs: 3000 });
  }
}

// Per environment over the run: ops submitted and completed, of them reaped by another
// process (completedByOther), and CQEs it reaped for anyone.
function processDelta(a, b) {
  try {
    const was = new Map((a.processes || []).map((p) => [p.slot, p]));
    return (b.processes || []).map((p) => {
      const q = was.get(p.slot) || {};
      const d = (k) => p[k] - (q[k] || 0);
      return { slot: p.slot, kind: p.kind, submitted: d('submitted'), completed: d('completed'), completedByOther: d('completedByOther'), reaped: d('reaped') };
    });
  } catch {
    return null;
  }
}

function ringDelta(a, b) {
  try {
    const ra = a.rings || [];
    const rb = b.rings || [];
    return rb.map((r, i) => ({ sqes: r.sqes - (ra[i] ? ra[i].sqes : 0), enters: r.enters - (ra[i] ? ra[i].enters : 0), cqes: r.cqes - (ra[i] ? ra[i].cqes : 0) }));
  } catch {
    return null;
  }
}

async function nodePoint(spec) {
  const peers = [];
  phase(`node fs run (UV_USE_IO_URING=${process.env.UV_USE_IO_URING ?? 'unset'})`);
  addProbe(() => ({ participants: peers.map((p) => p.pending()) }));
  for (let i = 1; i < spec.procs; i++) peers.push(new Peer(fork(PARTICIPANT, ['node'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), 'proc'));
  for (const p of peers) await p.ready;
  const parts = await Promise.all([nodeLoop(spec, 1), ...peers.map((p, i) => p.call('run', { ...spec, seed: 1000 + i * 7919 }))]);
  for (const p of peers) p.target.kill();
  const res = combine(parts, spec);
  res.libuvIoUring = parts.every((p) => p.ioUringFd);
  res.uvUseIoUring = process.env.UV_USE_IO_URING || null;
  res.threadpool = Number(process.env.UV_THREADPOOL_SIZE || 4);
  return res;
}

// Cross-process handoff: A submits a NOP carrying a completion word; B waits on that word.
async function handoffPoint(spec) {
  const rm = require(ROOT);
  const sc = spec.scenario;
  const pm = await rm.Postmaster.start({ dataDir: spec.dataDir, arenaSize: 4 << 20, reaper: !!sc.pmReaper, maxProcesses: 8 });
  try {
    const A = new Peer(pm.fork(PARTICIPANT, ['rm-fork'], { stdio: ['ignore', 'inherit', 'inherit'], reaper: sc.aReaper }), 'proc');
    const B = new Peer(pm.fork(PARTICIPANT, ['rm-fork'], { stdio: ['ignore', 'inherit', 'inherit'], reaper: sc.bReaper }), 'proc');
    phase(`handoff ${sc.name || ''}`.trim());
    addProbe(() => ({ participants: [A.pending(), B.pending()] }));
    await A.ready;
    await B.ready;
    const slotA = (await A.call('attach', { reaper: sc.aReaper })).slot;
    const slotB = (await B.call('attach', { reaper: sc.bReaper, wakeSliceUs: sc.bWakeSliceUs || 0 })).slot;
    const words = [];
    for (let i = 0; i < spec.iterations + 5; i++) words.push(pm.completionWord());
    const handoff = [];
    const fromSubmit = [];
    const issuer = [];
    const submitCall = [];
    const reapedBy = {};
    const raw = [];  // spec.samplesOut: every handoff's timestamps, to line up with a sched trace
    let bad = 0;
    // Who took the CQEs and how B was woken: the rings' watcher reaps, B's own reaps and
    // wakes (its CQ polls, doorbells), over the measured handoffs.
    const watcherReaps = () => pm.stats().rings.reduce((n, r) => n + r.reapedByWatchers, 0);
    let w0 = 0;
    let b0 = null;
    const t0 = Date.now();
    for (let i = 0; i < spec.iterations + 5; i++) {
      if (i === 5) {
        w0 = watcherReaps();
        b0 = await B.call('wakeInfo').catch(() => null);
      }
      await B.call('arm', { offset: words[i] });
      await new Promise((r) => setTimeout(r, 1));  // everyone idle (threads asleep) before the IO
      const a = await A.call('fire', { offset: words[i], busyMs: sc.busyMs || 0, quietMs: spec.quietMs ?? 2 });
      const b = await B.call('collect');
      if (b.value === undefined || b.value === null || !a.ok) { bad++; continue; }
      if (i < 5) continue;  // warm-up
      handoff.push((b.tWake - a.t1) / 1000);
      if (spec.samplesOut) raw.push({ t0: a.t0, t1: a.t1, tWake: b.tWake });
      fromSubmit.push((b.tWake - a.t0) / 1000);
      submitCall.push((a.t1 - a.t0) / 1000);
      if (!sc.busyMs) issuer.push((a.t2 - a.t1) / 1000);
      const who = a.reapedBy === slotA ? 'A' : a.reapedBy === slotB ? 'B' : a.reapedBy === pm.slot ? 'postmaster' : String(a.reapedBy);
      reapedBy[who] = (reapedBy[who] || 0) + 1;
      if (Date.now() - t0 > spec.maxMs) break;
    }
    const wakes = {};
    if (b0) {
      const b1 = await B.call('wakeInfo');
      wakes.watcherReaps = watcherReaps() - w0;
      for (const k of ['reapedHere', 'cqWakes', 'doorbells', 'selfWakes', 'sweeps']) if (typeof b1[k] === 'number') wakes[`b_${k}`] = b1[k] - b0[k];
    }
    await A.call('close').catch(() => {});
    await B.call('close').catch(() => {});
    if (spec.samplesOut) require('fs').writeFileSync(spec.samplesOut, JSON.stringify({ aPid: A.target.pid, bPid: B.target.pid, samples: raw }));
    const pct = (arr, p) => {
      if (!arr.length) return null;
      const s = [...arr].sort((x, y) => x - y);
      return round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)], 1);
    };
    return {
      samples: handoff.length, failed: bad, reapedBy, wakes,
      handoffP50us: pct(handoff, 50), handoffP99us: pct(handoff, 99), handoffMaxUs: pct(handoff, 100),
      fromSubmitP50us: pct(fromSubmit, 50), fromSubmitP99us: pct(fromSubmit, 99),
      submitCallP50us: pct(submitCall, 50), submitCallP99us: pct(submitCall, 99),
      negativeHandoffs: handoff.filter((v) => v < 0).length,
      issuerResolveP50us: pct(issuer, 50), issuerResolveP99us: pct(issuer, 99),
      features: { backend: pm.features.backend, fixedBuffers: pm.features.fixedBuffers },
    };
  } finally {
    await pm.stop({ timeoutMs: 3000 });
  }
}

async function main() {
  const spec = JSON.parse(process.argv[2]);
  let res;
  if (spec.engine === 'ringmaster') res = await ringmasterPoint(spec);
  else if (spec.engine === 'node') res = await nodePoint(spec);
  else if (spec.engine === 'handoff') res = await handoffPoint(spec);
  else throw new Error(`unknown engine ${spec.engine}`);
  process.stdout.write(`${JSON.stringify(res)}\n`);
}

main().then(() => process.exit(0), (e) => {
  process.stdout.write(`${JSON.stringify({ error: `${e.code || ''} ${e.message}` })}\n`);
  process.exit(1);
});
