'use strict';
// One participant of a measured point: a forked ringmaster worker (pm.fork), a ringmaster
// worker thread (attach(token)), or a plain Node process (fs.promises). Driven by
// messages { id, cmd, args } -> { id, ok, result | error }.
const path = require('node:path');
const { isMainThread, parentPort, workerData } = require('node:worker_threads');
const { rmLoop, nodeLoop } = require('./loops.cjs');
const { ROOT } = require('./common.cjs');

const role = isMainThread ? process.argv[2] : workerData.role;
let db = null;
let armed = null;

const hr = () => Number(process.hrtime.bigint());

function spin(ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* a busy JS thread */ }
}

const handlers = {
  async attach(a) {
    const rm = require(ROOT);
    if (role === 'rm-thread') db = await rm.attach(workerData.token);
    else db = await rm.attach(undefined, { ...(a.reaper === undefined ? {} : { reaper: a.reaper }), ...(a.wakeSliceUs ? { wakeSliceUs: a.wakeSliceUs } : {}) });
    db.on && db.on('stop', () => db.close());
    return { slot: db.slot, features: db.features };
  },
  async run(o) {
    if (role === 'node') return nodeLoop(o, o.seed);
    return rmLoop(db, o.fileId, o, o.seed);
  },
  // handoff: wait (in this process) on a completion word another process's IO will set
  async arm({ offset, timeoutMs = 5000 }) {
    armed = db.waitCompletionWord(offset, { timeoutMs }).then((v) => ({ tWake: hr(), value: v }));
    return true;
  },
  async wakeInfo() {
    return db._native().wakeInfo();
  },
  async collect() {
    const r = await armed;
    armed = null;
    return r;
  },
  // handoff: submit an op whose completion sets the word; optionally keep the JS thread busy
  async fire({ offset, busyMs = 0, quietMs = 0 }) {
    const t0 = hr();
    const p = db.batch().nop({ completionWord: offset }).submit();
    // Ops go to the kernel at the end of the turn; flush now instead, so that t1 is taken
    // right after the enter, as before, and a busy A (below) has submitted its op first.
    db._flushStaged();
    const t1 = hr();
    if (busyMs) spin(busyMs);
    // t0: before the batch is built (upper bound of the completion time is t1: a NOP
    // completes inside A's io_uring_enter); t1 - t0 is A's whole submit call.
    const [r] = await p;
    const t2 = hr();
    // The reply wakes the driver process: held back `quietMs` so that it does not compete
    // with B for the 2 cores while B resumes (bench/wake/handoff.c's A sleeps there too).
    if (quietMs) await new Promise((res) => setTimeout(res, quietMs));
    return { t0, t1, t2, ok: r.ok, reapedBy: r.reapedBy };
  },
  async close() {
    if (db) await db.close();
    db = null;
    // A forked participant is done: leave, so pm.stop() need not wait for its timeout.
    if (isMainThread) setTimeout(() => process.exit(0), 20);
    return true;
  },
};

function onMessage(m, reply) {
  if (!m || typeof m !== 'object' || m.id === undefined) return;
  const h = handlers[m.cmd];
  Promise.resolve()
    .then(() => {
      if (!h) throw new Error(`unknown command ${m.cmd}`);
      return h(m.args || {});
    })
    .then((result) => reply({ id: m.id, ok: true, result }), (e) => reply({ id: m.id, ok: false, error: `${e.code || ''} ${e.message}` }));
}

if (isMainThread) {
  process.on('message', (m) => onMessage(m, (r) => process.send(r)));
  process.send({ event: 'ready' });
} else {
  parentPort.on('message', (m) => onMessage(m, (r) => parentPort.postMessage(r)));
  parentPort.postMessage({ event: 'ready' });
}
void path;
