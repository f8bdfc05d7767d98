'use strict';
// Cross-process waits on words a CQE's completion action changes, outside completion words:
//   pool-read: process A has claimed the read of a cold block; B reads the block and waits
//     for A's IO (the buffer's io_seq); A submits the read (a cached buffered read: it
//     completes inside A's io_uring_enter). handoff = B's read resolves - A's submit returned.
//   wal-flush: B has appended a record; A holds the flusher role with its chain (covering B's
//     record) built; B calls flush() and waits on flush_seq; A issues the chain (one
//     O_DIRECT | O_DSYNC write with walSync 'dsync'). handoff = B's flush resolves - A's
//     submit returned.
// A is `reaper: false` and so is the postmaster (B reaps: its watcher and, with direct
// waits, its own JS thread), as in bench/workloads/handoff.cjs's b-reaps; `--all-reap`
// makes every process reap (the defaults). CLOCK_MONOTONIC (process.hrtime) across processes.
//
// usage: node bench/direct-waits.cjs pool-read|wal-flush [iterations=400] [--all-reap]
// prints one JSON line: p50/p99/max of the handoff and from A's submit start, B's wakes.
const path = require('node:path');
const fs = require('node:fs');
const os = require('node:os');
const ROOT = path.resolve(__dirname, '..');
const hr = () => Number(process.hrtime.bigint());

if (process.argv[2] === 'child') {
  const rm = require(ROOT);
  const N = require(path.join(ROOT, 'dist', 'core', 'native.js')).native;
  let db = null;
  let claimed = null;
  let armed = null;
  const handlers = {
    async attach({ reaper }) {
      db = await rm.attach(undefined, { reaper });
      return db.slot;
    },
    async wakeInfo() {
      return db._native().wakeInfo();
    },
    // pool-read, A: pin the block and claim its read, unsubmitted.
    async claim({ file, block }) {
      const r = N.bpPin(db._native(), file, block);
      if (r[0] !== 0) throw new Error(`pin failed: ${r}`);
      const s = N.bpStartIo(db._native(), r[1], 0, false, true);
      if (s[0] !== 1) throw new Error(`claim failed: ${s}`);
      claimed = { id: r[1], seq: s[1], file, block };
      return true;
    },
    // pool-read, A: submit the claimed read as the pool does (CK_BUFFER_READ_DONE).
    async fire() {
      const { id, seq, file, block } = claimed;
      claimed = null;
      const i = N.bpInfo(db._native());
      const ops = [{ fields: [1, 0, file, block * i.pageSize, i.pageSize, i.pagesOffset + id * i.pageSize, 2, (seq & 0xfffff) * 2 ** 32 + id], buffer: undefined, name: 'read' }];
      const t0 = hr();
      const p = db._submit(undefined, ops, [], { now: true, onSubmitted: () => N.bpSubmitted(db._native(), id, seq) });
      const t1 = hr();
      const [res] = await p;
      N.bpUnpin(db._native(), id);
      await new Promise((r) => setTimeout(r, 2));  // the reply does not compete with B's wake
      return { t0, t1, ok: res.result === i.pageSize };
    },
    // pool-read, B: read the block (A's claim in progress: a wait for its IO); returns once waiting.
    async armRead({ file, block }) {
      const w0 = db.buffers.stats().process.ioWaits;
      armed = db.buffers.read(file, block).then((b) => {
        const t = hr();
        b.release();
        return { tWake: t };
      });
      for (let k = 0; k < 100 && db.buffers.stats().process.ioWaits === w0; k++) await new Promise((r) => setImmediate(r));
      return db.buffers.stats().process.ioWaits > w0;
    },
    // wal-flush, B: append a record (not flushed yet).
    async append({ data }) {
      return (await db.wal.append(1, Buffer.from(data))).toString();
    },
    // wal-flush, B: wait for `lsn` to be durable.
    async armFlush({ lsn }) {
      armed = db.wal.flush(BigInt(lsn)).then(() => ({ tWake: hr() }));
      for (let k = 0; k < 4; k++) await new Promise((r) => setImmediate(r));
      return true;
    },
    // wal-flush, A: append and flush, the chain held back (this JS thread spins) until the
    // arena byte `flag` is set; records when its submit call began and returned.
    async holdFlush({ data, flag }) {
      const view = db.arenaSlice(flag, 1).bytes;
      const submit = db._submit.bind(db);
      let t0 = 0;
      let t1 = 0;
      db._submit = (ring, ops, keep, opts) => {
        db._submit = submit;
        const deadline = Date.now() + 10000;
        while (view[0] === 0 && Date.now() < deadline) { /* holding the role, chain built */ }
        t0 = hr();
        const p = submit(ring, ops, keep, { ...opts, now: true });
        t1 = hr();
        return p;
      };
      const lsn = await db.wal.append(1, Buffer.from(data));
      // Flushed from a timer: this reply is sent before the submit spins.
      armed = new Promise((r) => setTimeout(r, 0)).then(() => db.wal.flush(lsn)).then(() => ({ t0, t1 }));
      return true;
    },
    async collect() {
      const r = await armed;
      armed = null;
      return r;
    },
    async close() {
      await db.close();
      setTimeout(() => process.exit(0), 20);
      return true;
    },
  };
  process.on('message', (m) => {
    const h = handlers[m.cmd];
    Promise.resolve().then(() => h(m.args || {})).then((result) => process.send({ id: m.id, ok: true, result }), (e) => process.send({ id: m.id, ok: false, error: `${e.code || ''} ${e.message}` }));
  });
  process.send({ event: 'ready' });
  return;
}

const { Peer, addProbe } = require('./lib/peer.cjs');

async function main() {
  const scenario = process.argv[2];
  const iterations = Number(process.argv[3] || 400);
  const allReap = process.argv.includes('--all-reap');
  if (scenario !== 'pool-read' && scenario !== 'wal-flush') throw new Error('usage: direct-waits.cjs pool-read|wal-flush [iterations] [--all-reap]');
  const rm = require(ROOT);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-direct-'));
  const total = iterations + 5;
  const opts = { dataDir: path.join(dir, 'data'), arenaSize: 32 << 20, reaper: allReap, maxProcesses: 8 };
  if (scenario === 'pool-read') opts.bufferPool = { pages: total + 16, pageSize: 4096 };
  else opts.wal = { walSync: 'dsync', bufferSize: 1 << 20, segmentSize: 16 << 20 };
  const pm = await rm.Postmaster.start(opts);
  try {
    const A = new Peer(pm.fork(__filename, ['child'], { reaper: allReap }), 'proc');
    const B = new Peer(pm.fork(__filename, ['child'], { reaper: true }), 'proc');
    let at = 'attach';
    addProbe(() => ({ at, A: A.pending(), B: B.pending() }));
    await A.ready;
    await B.ready;
    await A.call('attach', { reaper: allReap });
    await B.call('attach', { reaper: true });
    let file = null;
    let flag = null;
    const native = require(path.join(ROOT, 'dist', 'core', 'native.js')).native;
    if (scenario === 'pool-read') {
      file = await pm.files.open('d', { create: true });
      const page = Buffer.alloc(4096 * total);  // all-zero pages: valid without a checksum
      fs.writeFileSync(path.join(pm.dataDir, 'd'), page);
    } else {
      flag = pm.allocate(8, { align: 8 });
    }
    const handoff = [];
    const fromSubmit = [];
    const submitCall = [];
    let bad = 0;
    let b0 = null;
    for (let i = 0; i < total; i++) {
      at = `iteration ${i}`;
      if (i === 5) b0 = await B.call('wakeInfo');
      let a;
      let b;
      if (scenario === 'pool-read') {
        await A.call('claim', { file: file.id, block: i });
        if (!(await B.call('armRead', { file: file.id, block: i }))) { bad++; }
        await new Promise((r) => setTimeout(r, 1));  // everyone idle before the IO
        a = await A.call('fire');
        b = await B.call('collect');
      } else {
        const lsn = await B.call('append', { data: `B ${i}` });
        flag.bytes[0] = 0;
        await A.call('holdFlush', { data: `A ${i}`, flag: flag.offset });
        const t = Date.now();
        while (native.walState(pm._native()).flusher < 0 && Date.now() - t < 5000) await new Promise((r) => setImmediate(r));
        await B.call('armFlush', { lsn });
        await new Promise((r) => setTimeout(r, 1));  // B asleep in its wait (A spins, holding the role)
        flag.bytes[0] = 1;
        a = await A.call('collect');
        b = await B.call('collect');
      }
      if (i < 5) continue;
      handoff.push((b.tWake - a.t1) / 1000);
      fromSubmit.push((b.tWake - a.t0) / 1000);
      submitCall.push((a.t1 - a.t0) / 1000);
    }
    const b1 = await B.call('wakeInfo');
    const pct = (arr, p) => {
      const s = [...arr].sort((x, y) => x - y);
      return s.length ? Math.round(s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] * 10) / 10 : null;
    };
    const out = {
      scenario, allReap, samples: handoff.length, bad,
      handoffP50us: pct(handoff, 50), handoffP99us: pct(handoff, 99), handoffMaxUs: pct(handoff, 100),
      fromSubmitP50us: pct(fromSubmit, 50), fromSubmitP99us: pct(fromSubmit, 99),
      submitCallP50us: pct(submitCall, 50), submitCallP99us: pct(submitCall, 99),
      bWakes: b0 && { cqWakes: b1.cqWakes - b0.cqWakes, doorbells: b1.doorbells - b0.doorbells, reapedHere: b1.reapedHere - b0.reapedHere },
    };
    if (scenario === 'wal-flush') out.walSync = pm.wal.stats().walSync;
    await A.call('close').catch(() => {});
    await B.call('close').catch(() => {});
    console.log(JSON.stringify(out));
  } finally {
    await pm.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
