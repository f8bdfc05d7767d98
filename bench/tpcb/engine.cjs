'use strict';
// A TPC-B-like engine ("tpcb-like" of pgbench) on ringmaster's public API only:
// fixed-size rows in 8 KiB pages of the shared buffer pool, one WAL record per transaction,
// page exclusive locks as row locks (taken in a fixed order: account -> history meta ->
// history page -> teller -> branch, so no deadlock; the hottest pages last, so they are
// held the shortest -- pgbench's script also updates the branch last), markDirty(commit
// LSN), and wal.flush(commitLsn) before a transaction is acknowledged (durable commit).
//
// Tables (one file each, page header = bytes 0..16, rows from byte 16):
//   tpcb.branches / tpcb.tellers / tpcb.accounts: 100-byte rows { id u32, pad, balance f64, filler }
//   tpcb.history.<w> (one per worker index w): block 0 = meta { nextRow u32 at 16 },
//     blocks 1.. = 32-byte rows { tid u32, bid u32, aid u32, delta i32, mtime f64, lsn f64 }
// Scale s: s branches, 10 s tellers, 100000 s accounts (accounts can be overridden for tests).
//
// Locks are released before the commit flush (early lock release): a later transaction
// that read this one's changes has a larger commit LSN, so its own flush makes this one
// durable too; nothing aborts in TPC-B.
//
// Recovery: the WAL redo handler (WAL_KIND) only collects records (handlers get no db
// handle); `recover(db, records)` re-applies them to the pages after start, idempotent by
// page LSN (a page whose LSN >= the record's end LSN already has it).
const fs = require('node:fs');
const path = require('node:path');

const WAL_KIND = 0x7c1;
const PAGE = 8192;
const HDR = 16;
const ROW = 100;
const RPP = Math.floor((PAGE - HDR) / ROW);  // 81 rows per page
const HROW = 32;
const HRPP = Math.floor((PAGE - HDR) / HROW);  // 255 history rows per page
const REC = 40;

function geometry(o = {}) {
  const scale = o.scale || 1;
  return { scale, branches: scale, tellers: 10 * scale, accounts: o.accounts || 100000 * scale };
}

function dv(page) {
  return new DataView(page.buffer, page.byteOffset, page.byteLength);
}

/** A process-local async mutex. */
class Mutex {
  constructor() { this.q = []; this.busy = false; }
  async lock() {
    if (!this.busy) { this.busy = true; return; }
    await new Promise((r) => this.q.push(r));
  }
  unlock() {
    const n = this.q.shift();
    if (n) n();
    else this.busy = false;
  }
}

/**
 * Process-local FIFO locks by page: the sessions of one process queue here, in JS, before
 * they take the page's content lock (which belongs to the process: two flows of it asking
 * for one page would be ERR_RINGMASTER_SELF_DEADLOCK). Sessions touching different pages
 * run at once -- one session's account-page read overlaps another's -- where a single
 * per-process mutex around the whole lock phase serialized every miss of the process.
 */
class PageLocks {
  constructor() { this.m = new Map(); }
  async lock(key) {
    const q = this.m.get(key);
    if (!q) { this.m.set(key, []); return; }
    await new Promise((r) => q.push(r));
  }
  unlock(key) {
    const q = this.m.get(key);
    const next = q && q.shift();
    if (next) next();
    else this.m.delete(key);
  }
}

// Every open installs a NEW entry (a new id) in the shared file table, and buffer-pool
// pages are tagged by file id: the postmaster opens the tables once and hands the ids
// (g.files) to every worker, which uses them as they are.
async function openFiles(db, workers) {
  const o = async (name) => (await db.files.open(name, { create: true })).id;
  const f = { branches: await o('tpcb.branches'), tellers: await o('tpcb.tellers'), accounts: await o('tpcb.accounts'), history: [] };
  for (let w = 0; w < workers; w++) f.history.push(await o(`tpcb.history.${w}`));
  return f;
}

/**
 * Creates and fills the tables, then checkpoints (all pages on disk). The table pages are
 * built here (rows, page header, checksum) and written with ringmaster's own batched
 * writes, 64 pages a write, then fdatasync'ed: the buffer pool is empty at this point, so
 * nothing it holds can go stale. (Filling them through the pool, one page at a time with a
 * writeback per eviction, took 40 s at scale 16 on the 2-core machine.)
 */
async function load(db, o = {}) {
  const g = geometry(o);
  const workers = o.workers || 1;
  const f = await openFiles(db, workers);
  const { setPageChecksum } = require(path.resolve(__dirname, '..', '..'));
  const CHUNK = 64;
  const bufs = [db.allocate(CHUNK * PAGE), db.allocate(CHUNK * PAGE)];
  const fill = async (file, rows) => {
    const pages = Math.ceil(rows / RPP);
    let inflight = Promise.resolve();
    for (let first = 0, k = 0; first < pages; first += CHUNK, k ^= 1) {
      const n = Math.min(CHUNK, pages - first);
      const slice = bufs[k];
      await inflight;  // the other buffer's write is done before it is refilled next round
      slice.bytes.fill(0);
      for (let j = 0; j < n; j++) {
        const p = first + j;
        const page = slice.bytes.subarray(j * PAGE, (j + 1) * PAGE);
        const v = dv(page);
        for (let i = 0; i < RPP && p * RPP + i < rows; i++) {
          const off = HDR + i * ROW;
          v.setUint32(off, p * RPP + i + 1, true);
          page.fill(0x20, off + 16, off + ROW);
        }
        setPageChecksum(page);
      }
      inflight = db.write(file, first * PAGE, n === CHUNK ? slice : slice.bytes.subarray(0, n * PAGE)).then(() => {});
    }
    await inflight;
    await db.fdatasync(file);
  };
  await fill(f.branches, g.branches);
  await fill(f.tellers, g.tellers);
  await fill(f.accounts, g.accounts);
  for (const h of f.history) {
    const b = await db.buffers.read(h, 0, { mode: 'zero' });
    await b.lockExclusive();
    b.markDirty(0n);
    b.release();
  }
  await db.buffers.flushAll();
  await db.wal.checkpoint();
  return { ...g, workers, files: f };
}

function rowLoc(id) {  // 1-based id -> page, offset
  const i = id - 1;
  return [Math.floor(i / RPP), HDR + (i % RPP) * ROW];
}

/** One process's (or thread's) session pool running tpcb-like transactions. */
class Engine {
  constructor(db, files, g, worker) {
    this.db = db;
    this.f = files;
    this.g = g;
    this.worker = worker;
    this.hfile = files.history[worker];
    this.pages = new PageLocks();
    this.rec = Buffer.alloc(REC);
    this.seed = (Date.now() ^ (process.pid << 8) ^ (worker * 7919)) >>> 0 || 1;
  }
  static async open(db, g, worker) {
    if (!g.files || g.files.history[worker] === undefined) throw new Error(`tpcb: no history file for worker ${worker} (g.files from load/recover)`);
    return new Engine(db, g.files, g, worker);
  }
  rnd(n) {  // xorshift32, 1..n
    let x = this.seed;
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    this.seed = x;
    return (x % n) + 1;
  }
  /** One transaction; resolves with its commit LSN once it is durable. */
  async txn() {
    const aid = this.rnd(this.g.accounts);
    const tid = this.rnd(this.g.tellers);
    const bid = this.rnd(this.g.branches);
    const delta = this.rnd(10001) - 5001;
    const db = this.db;
    const held = [];
    const keys = [];
    let lsn;
    try {
      const [bp, bo] = rowLoc(bid);
      const [tp, to] = rowLoc(tid);
      const [ap, ao] = rowLoc(aid);
      const pin = async (file, block, mode) => {
        const key = `${file}:${block}`;
        await this.pages.lock(key);
        keys.push(key);
        const b = await db.buffers.read(file, block, mode ? { mode } : {});
        held.push(b);
        await b.lockExclusive();
        return b;
      };
      const A = await pin(this.f.accounts, ap);
      const M = await pin(this.hfile, 0);
      const hrow = dv(M.page).getUint32(HDR, true);
      const hblock = 1 + Math.floor(hrow / HRPP);
      const H = await pin(this.hfile, hblock, hrow % HRPP === 0 ? 'zero' : undefined);
      const T = await pin(this.f.tellers, tp);
      const B = await pin(this.f.branches, bp);
      const now = Date.now();
      const r = this.rec;
      r.writeUInt32LE(aid, 0); r.writeUInt32LE(tid, 4); r.writeUInt32LE(bid, 8); r.writeInt32LE(delta, 12);
      r.writeUInt32LE(this.worker, 16); r.writeUInt32LE(hrow, 20); r.writeDoubleLE(now, 24); r.writeUInt32LE(0, 32);
      // The WAL record first (its copy is synchronous), then every page change in the same
      // JS turn: a kill can only land between the two in that few-µs window.
      lsn = await db.wal.append(WAL_KIND, r);
      applyTo(A, B, T, M, H, { aid, tid, bid, delta, hrow, now }, lsn, true);
      // "SELECT abalance": read it back while still locked
      this.lastBalance = dv(A.page).getFloat64(ao + 8, true);
      void bo; void to;
    } finally {
      for (const b of held.reverse()) b.release();
      for (const k of keys.reverse()) this.pages.unlock(k);
    }
    await db.wal.flush(lsn);
    return lsn;
  }
}

/** Applies a transaction to its five pages (all exclusively locked); skips pages already at >= lsn. */
function applyTo(A, B, T, M, H, x, lsn, force) {
  const add = (buf, id) => {
    if (!force && buf.lsn >= lsn) return;
    const [, off] = rowLoc(id);
    const v = dv(buf.page);
    v.setFloat64(off + 8, v.getFloat64(off + 8, true) + x.delta, true);
    buf.markDirty(lsn);
  };
  add(A, x.aid);
  add(T, x.tid);
  add(B, x.bid);
  if (force || M.lsn < lsn) {
    const v = dv(M.page);
    v.setUint32(HDR, Math.max(v.getUint32(HDR, true), x.hrow + 1), true);
    M.markDirty(lsn);
  }
  if (force || H.lsn < lsn) {
    const v = dv(H.page);
    const off = HDR + (x.hrow % HRPP) * HROW;
    v.setUint32(off, x.tid, true); v.setUint32(off + 4, x.bid, true); v.setUint32(off + 8, x.aid, true);
    v.setInt32(off + 12, x.delta, true); v.setFloat64(off + 16, x.now, true); v.setFloat64(off + 24, Number(lsn), true);
    H.markDirty(lsn);
  }
}

function decode(p) {
  return { aid: p.readUInt32LE(0), tid: p.readUInt32LE(4), bid: p.readUInt32LE(8), delta: p.readInt32LE(12), worker: p.readUInt32LE(16), hrow: p.readUInt32LE(20), now: p.readDoubleLE(24) };
}

/** WAL start options: collects this engine's records during recovery into `into`. */
function redoCollector(into) {
  return { [WAL_KIND]: (r) => { into.push({ endLsn: r.endLsn, x: decode(r.payload) }); } };
}

/**
 * Re-applies collected records to the pages (after Postmaster.start, before any fork),
 * idempotent by page LSN. A page past the end of its file (a history page created after
 * the last checkpoint and never written) is created zeroed.
 */
async function recover(db, g, records, dataDir) {
  let workers = g.workers || 1;
  for (const r of records) workers = Math.max(workers, r.x.worker + 1);
  const f = await openFiles(db, workers);
  g.files = f;
  g.workers = workers;
  const size = (file) => {
    try { return fs.statSync(path.join(dataDir, file)).size; } catch { return 0; }
  };
  let applied = 0;
  const seen = new Set();
  for (const { endLsn, x } of records) {
    const hf = f.history[x.worker];
    const held = [];
    const pin = async (file, name, block) => {
      const key = `${name}:${block}`;
      const mode = !seen.has(key) && (block + 1) * PAGE > size(name) ? 'zero' : undefined;
      seen.add(key);
      const b = await db.buffers.read(file, block, mode ? { mode } : {});
      held.push(b);
      await b.lockExclusive();
      return b;
    };
    try {
      const B = await pin(f.branches, 'tpcb.branches', rowLoc(x.bid)[0]);
      const T = await pin(f.tellers, 'tpcb.tellers', rowLoc(x.tid)[0]);
      const A = await pin(f.accounts, 'tpcb.accounts', rowLoc(x.aid)[0]);
      const M = await pin(hf, `tpcb.history.${x.worker}`, 0);
      const H = await pin(hf, `tpcb.history.${x.worker}`, 1 + Math.floor(x.hrow / HRPP));
      applyTo(A, B, T, M, H, x, endLsn, false);
      applied++;
    } finally {
      for (const b of held.reverse()) b.release();
    }
  }
  // A history file whose meta page never reached the disk (created after the last checkpoint, no record): zero it.
  for (let w = 0; w < workers; w++) {
    if (size(`tpcb.history.${w}`) < PAGE) {
      const m = await db.buffers.read(f.history[w], 0, { mode: seen.has(`tpcb.history.${w}:0`) ? undefined : 'zero' });
      m.release();
    }
  }
  return { records: records.length, applied, files: f };
}

/** Sums every table: the TPC-B invariant is accounts == tellers == branches == history. */
async function check(db, g) {
  const f = g.files;
  const sumRows = async (file, rows) => {
    let s = 0;
    for (let p = 0; p < Math.ceil(rows / RPP); p++) {
      const b = await db.buffers.read(file, p);
      await b.lockShared();
      const v = dv(b.page);
      for (let i = 0; i < RPP && p * RPP + i < rows; i++) s += v.getFloat64(HDR + i * ROW + 8, true);
      b.release();
    }
    return s;
  };
  const accounts = await sumRows(f.accounts, g.accounts);
  const tellers = await sumRows(f.tellers, g.tellers);
  const branches = await sumRows(f.branches, g.branches);
  let history = 0;
  let historyRows = 0;
  for (const h of f.history) {
    const m = await db.buffers.read(h, 0);
    const n = dv(m.page).getUint32(HDR, true);
    m.release();
    historyRows += n;
    for (let blk = 1; blk <= Math.ceil(n / HRPP); blk++) {
      const b = await db.buffers.read(h, blk);
      const v = dv(b.page);
      for (let i = 0; i < HRPP && (blk - 1) * HRPP + i < n; i++) history += v.getInt32(HDR + i * HROW + 12, true);
      b.release();
    }
  }
  const ok = accounts === tellers && tellers === branches && branches === history;
  return { accounts, tellers, branches, history, historyRows, ok };
}

/** Buffer-pool pages to hold the whole data set (plus history growth). */
function poolPagesFor(g, historyRows = 200000) {
  return Math.ceil(g.accounts / RPP) + Math.ceil(g.tellers / RPP) + Math.ceil(g.branches / RPP) + (g.workers || 1) * (1 + Math.ceil(historyRows / HRPP / (g.workers || 1))) + 64;
}

module.exports = { WAL_KIND, PAGE, RPP, HRPP, geometry, load, Engine, redoCollector, recover, check, poolPagesFor, Mutex, PageLocks };
