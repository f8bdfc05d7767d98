// The REAL shared WAL with the REAL shared buffer pool (each module's own tests use a
// stand-in for the other): WAL-before-data with injected WAL failures ('link') and a
// flush in progress ('wait'), kill -9 of the whole process group with recovery through
// user redo handlers into the pool (checked against a model of the acknowledged
// updates), and checkpoints with dirty pages. Real forked processes, bounded waits.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker, forkAttached, forkCrashHost, killWorkers, powerCut, removeDir, rm, tempDir, untilAcks, waitFor } from '../helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const P = require('../fixtures/integ-pages.cjs');
const WORKER = path.join(__dirname, '..', 'fixtures', 'integ-worker.cjs');
const HOST = path.join(__dirname, '..', 'fixtures', 'integ-host.cjs');
const OP = { write: 2, fdatasync: 4 };
const EIO = -5;
type Pm = import('../../core/index').Postmaster;

let dir: string;
let dataDir: string;
let pm: Pm | null = null;
let host: ChildProcess | null = null;
const workers: Worker[] = [];

beforeEach(() => {
  dir = tempDir('rm-integ-');
  dataDir = path.join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  // PAGES all-zero pages (an all-zero page is valid: no checksum yet).
  writeFileSync(path.join(dataDir, P.FILE), Buffer.alloc(P.PAGES * P.PS));
});
afterEach(async () => {
  await killWorkers(workers);
  if (host) await powerCut(host);
  host = null;
  if (pm) {
    try {
      pm._native().debugSetFault(0, null);
    } catch {
      /* stopped */
    }
    await pm.stop();
  }
  pm = null;
  removeDir(dir);
});

async function start(extra: Record<string, unknown> = {}): Promise<Pm> {
  pm = await rm.Postmaster.start(P.startOptions(dataDir, extra));
  return pm;
}

async function worker(strategy?: 'link' | 'wait'): Promise<Worker> {
  return forkAttached(pm!, WORKER, { attach: strategy ? { strategy } : {}, into: workers });
}

function diskPage(p: number): Buffer {
  return readFileSync(path.join(dataDir, P.FILE)).subarray(p * P.PS, (p + 1) * P.PS);
}
const diskRow = (p: number, r: number) => diskPage(p).readUInt32LE(P.rowOffset(r));
const diskLsn = (p: number) => diskPage(p).readBigUInt64LE(0);

async function poolRow(db: Pm, file: number, p: number, r: number): Promise<number> {
  const b = await db.buffers.read(file, p);
  try {
    await b.lockShared();
    return Buffer.from(b.page.buffer, b.page.byteOffset, b.page.length).readUInt32LE(P.rowOffset(r));
  } finally {
    b.release();
  }
}

describe('wal + buffer pool: WAL-before-data with the real WAL (link)', () => {
  const cases = [
    { fault: 'WAL write', op: OP.write, trigger: 'flushAll' },
    { fault: 'WAL write', op: OP.write, trigger: 'eviction' },
    { fault: 'WAL fdatasync', op: OP.fdatasync, trigger: 'flushAll' },
    { fault: 'WAL fdatasync', op: OP.fdatasync, trigger: 'eviction' },
  ] as const;
  for (const c of cases) {
    it(`an injected ${c.fault} EIO during writeback by ${c.trigger}: the page write is cancelled, the page stays dirty, the file is unchanged, the WAL is failed`, async () => {
      // An fdatasync is sent by the buffered WAL only (direct: false); its writes by both.
      await start({ pages: 4, ...(c.op === OP.fdatasync ? { wal: { direct: false } } : {}) });
      const file = await P.rowsFile(pm!);
      const before = readFileSync(path.join(dataDir, P.FILE));
      // A worker dirties page 0 with a real WAL record it does not flush.
      const w = await worker();
      const lsn = BigInt(await w.call('set', { file, p: 0, r: 3, v: 0xabcdef }));
      expect(pm!.wal.flushedLsn() < lsn).toBe(true);
      expect(pm!.buffers.stats().dirty).toBe(1);
      const segId = await pm!.wal._segmentFileId(lsn);
      expect(pm!._native().debugSetFault(0, { opMask: 1 << c.op, fileSlot: segId % 65536, error: EIO })).toBe(true);
      if (c.trigger === 'flushAll') {
        await expect(pm!.buffers.flushAll()).rejects.toMatchObject({ code: 'ECANCELED' });
      } else {
        // Pages 1..3 pinned: the only evictable buffer is the dirty page 0.
        const held = [];
        for (let p = 1; p < 4; p++) held.push(await pm!.buffers.read(file, p));
        pm!.buffers.configure({ pinWaitMs: 300 });
        await expect(pm!.buffers.read(file, 4)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_POOL_EXHAUSTED' });
        for (const h of held) h.release();
      }
      expect(pm!._native().debugFaultFired(0)).toBe(1);
      expect(pm!.wal.failed).toBe(true);
      expect(pm!.wal.flushedLsn() < lsn).toBe(true);
      expect(readFileSync(path.join(dataDir, P.FILE)).equals(before)).toBe(true);
      expect(pm!.buffers.stats().dirty).toBe(1);
      expect(pm!.buffers.stats().ioInProgress).toBe(0);
      // The fault was one-shot, but nothing is retried: every later writeback (either
      // process) refuses, and the data file still never sees the page.
      await expect(pm!.buffers.flushAll()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_FAILED' });
      expect(await w.call('flushAll')).toEqual({ ok: false, code: 'ERR_RINGMASTER_WAL_FAILED' });
      await expect(pm!.wal.flush(lsn)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_FAILED' });
      expect(readFileSync(path.join(dataDir, P.FILE)).equals(before)).toBe(true);
      expect(pm!.buffers.stats().dirty).toBe(1);
      expect(await poolRow(pm!, file, 0, 3)).toBe(0xabcdef);  // the change is still in the pool
    });
  }
});

describe("wal + buffer pool: WAL-before-data with the real WAL ('wait')", () => {
  it('a writeback waiting for a busy WAL flusher does not touch the data file until the WAL is durable past the page LSN', async () => {
    await start({ pages: 4 });
    pm!.buffers.configure({ walBeforeData: 'wait' });
    const file = await P.rowsFile(pm!);
    const a = await worker('wait');
    const b = await worker('wait');
    // b holds the WAL flusher role: nobody else can make the WAL durable meanwhile.
    expect(await b.call('takeFlusher')).toBe(true);
    const lsn = BigInt(await a.call('set', { file, p: 2, r: 1, v: 77 }));
    const flushing = pm!.buffers.flushAll();
    let settled = false;
    flushing.then(() => (settled = true), () => (settled = true));
    await waitFor(() => pm!.buffers.stats().ioInProgress === 1, 20000, 'the claimed page write');
    // The flush is in progress (waiting for the WAL): the file must not have the page yet.
    for (let i = 0; i < 20; i++) {
      const pageLsn = diskLsn(2);
      expect(pageLsn <= pm!.wal.flushedLsn()).toBe(true);
      expect(diskRow(2, 1)).toBe(0);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(settled).toBe(false);
    expect(pm!.wal.flushedLsn() < lsn).toBe(true);
    await b.call('releaseFlusher');
    expect(await flushing).toBe(1);
    expect(diskRow(2, 1)).toBe(77);
    expect(diskLsn(2)).toBe(lsn);
    expect(diskLsn(2) <= pm!.wal.flushedLsn()).toBe(true);
    expect(pm!.buffers.stats().dirty).toBe(0);
  });

  it('two processes updating ahead of the WAL under eviction pressure: the data file never holds a page LSN above the durable WAL LSN (checked while writebacks run)', async () => {
    await start({ pages: 4 });
    pm!.buffers.configure({ walBeforeData: 'wait' });
    const file = await P.rowsFile(pm!);
    const ws = [await worker('wait'), await worker('wait')];
    let done = false;
    const churn = Promise.all(ws.map((w, i) => w.call('churn', { file, n: 300, flushEvery: 7, seed: i + 1 }))).finally(() => (done = true));
    let checks = 0;
    let sawData = 0;
    while (!done) {
      const img = readFileSync(path.join(dataDir, P.FILE));
      const durable = pm!.wal.flushedLsn();  // read after the file: it only grows
      for (let p = 0; p < P.PAGES; p++) {
        const pageLsn = img.readBigUInt64LE(p * P.PS);
        if (pageLsn > 0n) sawData++;
        expect(pageLsn <= durable, `page ${p} LSN ${pageLsn} > durable ${durable}`).toBe(true);
      }
      checks++;
      await new Promise((r) => setTimeout(r, 1));
    }
    const writes = await churn;
    expect(writes[0] + writes[1]).toBeGreaterThan(0);  // eviction wrote pages back meanwhile
    expect(checks).toBeGreaterThan(0);
    // Then a checkpoint-style flushAll in a worker: still never ahead of the WAL.
    expect(await ws[0].call('flushAll')).toMatchObject({ ok: true });
    const durable = pm!.wal.flushedLsn();
    for (let p = 0; p < P.PAGES; p++) expect(diskLsn(p) <= durable).toBe(true);
    expect(sawData).toBeGreaterThan(0);
  });
});

interface Ack { round: number; lane: number; seq: number }

async function crashRound(round: number, acks: Ack[], minAcks: number): Promise<void> {
  host = forkCrashHost(HOST, [dataDir, String(round), '3', '2']);
  await untilAcks(host, minAcks, ([r, lane, seq]) => acks.push({ round: r, lane, seq }));
  await powerCut(host);
  host = null;
}

describe('wal + buffer pool: crash recovery through redo handlers into the pool', () => {
  it('a redo handler gets the postmaster being started as its second argument, with a usable buffer pool', async () => {
    await start();
    const file = await P.rowsFile(pm!);
    const lsn = await pm!.wal.append(P.KIND_SET, P.encode(5, 6, 99));
    await P.setRow(pm!, file, 5, 6, 99, lsn);
    await pm!.wal.flush(lsn);
    await pm!.stop({ checkpoint: false });  // no shutdown checkpoint: the page never reached the data file
    pm = null;
    expect(diskRow(5, 6)).toBe(0);
    const seen: unknown[] = [];
    const redo = P.makeRedo({ calls: 0, applied: 0 });
    await start({ redo: { [P.KIND_SET]: async (r: unknown, db: unknown) => { seen.push(db); await redo[P.KIND_SET](r, db); } } });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(pm);
    expect(await poolRow(pm!, await P.rowsFile(pm!), 5, 6)).toBe(99);
  });

  it('kill -9 of the whole group mid-update, 3 rounds on one data directory: the recovered pages equal the model of acknowledged updates', async () => {
    const LANES = 6;
    const acks: Ack[] = [];
    for (let round = 1; round <= 3; round++) {
      await crashRound(round, acks, 100 + Math.floor(Math.random() * 400));
      // Model: for every row the newest acknowledged write (acks of one lane are in order).
      const latest = new Map<number, { round: number; seq: number; v: number }>();
      for (const a of acks) {
        const { g } = P.target(a.round, a.lane, LANES, a.seq);
        const cur = latest.get(g);
        if (!cur || a.round > cur.round || (a.round === cur.round && a.seq > cur.seq)) latest.set(g, { round: a.round, seq: a.seq, v: P.valueOf(a.round, a.lane, a.seq) });
      }
      // Before recovery: no page on disk is ahead of the WAL that survived the crash.
      const img = readFileSync(path.join(dataDir, P.FILE));
      const counter = { calls: 0, applied: 0 };
      await start({ redo: P.makeRedo(counter) });
      const end = pm!.wal.recovery!.endLsn;
      for (let p = 0; p < P.PAGES; p++) expect(img.readBigUInt64LE(p * P.PS) <= end).toBe(true);
      expect(counter.calls).toBe(pm!.wal.recovery!.records);
      expect(counter.calls).toBeGreaterThanOrEqual(acks.length);
      const file = await P.rowsFile(pm!);
      const problems: string[] = [];
      for (let p = 0; p < P.PAGES; p++) {
        for (let r = 0; r < P.ROWS; r++) {
          const g = p * P.ROWS + r;
          const v = await poolRow(pm!, file, p, r);
          const want = latest.get(g);
          if (v === 0) {
            if (want) problems.push(`row ${g}: lost acknowledged ${want.v.toString(16)}`);
            continue;
          }
          const w = P.parseValue(v);
          const t = w.round >= 1 && w.round <= round && w.lane < LANES && w.seq > 0 ? P.target(w.round, w.lane, LANES, w.seq) : null;
          if (!t || t.g !== g) problems.push(`row ${g}: value ${v.toString(16)} was never written to it`);
          else if (want && (w.round < want.round || (w.round === want.round && w.seq < want.seq))) problems.push(`row ${g}: ${v.toString(16)} older than acknowledged ${want.v.toString(16)}`);
        }
      }
      expect(problems).toEqual([]);
      // The recovered pages go to disk with the WAL-before-data check (durable up to end).
      await pm!.buffers.flushAll();
      for (const [g, want] of latest) {
        const v = diskRow(Math.floor(g / P.ROWS), g % P.ROWS);
        const w = P.parseValue(v);
        expect(w.round > want.round || (w.round === want.round && w.seq >= want.seq)).toBe(true);
      }
      // No shutdown checkpoint: the next round's recovery replays every round's records.
      await pm!.stop({ checkpoint: false });
      pm = null;
    }
  });
});

describe('wal + buffer pool: page LSN', () => {
  it('the page LSN never goes backwards: a page loaded from disk keeps its LSN through a markDirty with a lower LSN', async () => {
    await start();
    const file = await P.rowsFile(pm!);
    const lsn = await pm!.wal.append(P.KIND_SET, P.encode(4, 0, 7));
    await P.setRow(pm!, file, 4, 0, 7, lsn);
    await pm!.wal.flush(lsn);
    expect(await pm!.buffers.flushAll()).toBe(1);
    expect(diskLsn(4)).toBe(lsn);
    await pm!.stop();
    pm = null;
    await start();  // an empty pool: page 4 comes back from disk with LSN `lsn`
    const f2 = await P.rowsFile(pm!);
    const b = await pm!.buffers.read(f2, 4);
    expect(b.lsn).toBe(lsn);
    await b.lockExclusive();
    b.page[P.rowOffset(1)] = 1;  // an unlogged (hint-style) change
    b.markDirty(0n);
    expect(b.lsn).toBe(lsn);
    b.release();
    expect(await pm!.buffers.flushAll()).toBe(1);
    expect(diskLsn(4)).toBe(lsn);  // a redo that skips records at or below the page LSN still works
    expect(diskRow(4, 0)).toBe(7);
  });
});

describe('wal + buffer pool: checkpoints with dirty pages', () => {
  it('a checkpoint writes the dirty pages (from another process) to disk; a restart replays only the records after it', async () => {
    await start({ pages: 8 });
    const file = await P.rowsFile(pm!);
    const w = await worker();
    // 10 updates in a worker, WAL not flushed: dirty pages ahead of the WAL.
    for (let i = 0; i < 10; i++) await w.call('set', { file, p: i % 5, r: i % P.ROWS, v: 1000 + i });
    expect(pm!.buffers.stats().dirty).toBe(5);
    const ckpt = await pm!.wal.checkpoint();
    expect(pm!.buffers.stats().dirty).toBe(0);
    expect(pm!.wal.flushedLsn() > ckpt).toBe(true);
    for (let i = 0; i < 10; i++) expect(diskRow(i % 5, i % P.ROWS)).toBe(1000 + i);
    for (let p = 0; p < 5; p++) {
      expect(diskLsn(p) > 0n).toBe(true);
      expect(diskLsn(p) <= ckpt).toBe(true);
    }
    // 4 more updates after the checkpoint (2 of them to pages the checkpoint wrote), durable.
    let last = 0n;
    for (let i = 0; i < 4; i++) last = BigInt(await w.call('set', { file, p: 3 + i, r: 7, v: 2000 + i, flush: i === 3 }));
    expect(pm!.wal.flushedLsn() >= last).toBe(true);
    await w.call('close');
    await w.kill9();
    await pm!.stop({ checkpoint: false });  // no shutdown checkpoint: the 4 pages stay dirty only in the (gone) pool
    pm = null;
    for (let i = 0; i < 4; i++) expect(diskRow(3 + i, 7)).toBe(0);
    const counter = { calls: 0, applied: 0 };
    await start({ redo: P.makeRedo(counter) });
    expect(counter.calls).toBe(4);
    expect(counter.applied).toBe(4);
    expect(pm!.wal.recovery!.fromLsn > 0n).toBe(true);
    const f2 = await P.rowsFile(pm!);
    for (let i = 0; i < 10; i++) {
      const overwritten = (i % 5) >= 3 && i % P.ROWS === 7;
      if (!overwritten) expect(await poolRow(pm!, f2, i % 5, i % P.ROWS)).toBe(1000 + i);
    }
    for (let i = 0; i < 4; i++) expect(await poolRow(pm!, f2, 3 + i, 7)).toBe(2000 + i);
  });

  // The last close of a file writes its dirty pages back first (WAL first); after it the pages' file id names nothing, and a checkpoint could never write them.
  it('closing the last handle of a file whose pages are dirty in the pool writes them first: the next checkpoint succeeds and the file holds them', async () => {
    await start({ pages: 8 });
    const handle = await pm!.files.open(P.FILE);  // the only handle on it
    const file = handle.id;
    for (let i = 0; i < 3; i++) {
      const lsn = await pm!.wal.append(P.KIND_SET, P.encode(i, 4, 3000 + i));
      await P.setRow(pm!, file, i, 4, 3000 + i, lsn);
    }
    expect(pm!.buffers.stats().dirty).toBe(3);
    await handle.close();
    expect(pm!.buffers.stats().dirty).toBe(0);
    for (let i = 0; i < 3; i++) expect(diskRow(i, 4)).toBe(3000 + i);
    expect(diskLsn(2) <= pm!.wal.flushedLsn()).toBe(true);  // WAL before data
    await pm!.wal.checkpoint();
  });

  // Two processes closing the last two handles of a file at once: exactly one of them writes the file's dirty pages back before the file leaves the table.
  it('two processes each closing one of the last two handles of a file with dirty pages, at the same instant, 20 rounds: no page is left dirty, a checkpoint succeeds and the file holds them', async () => {
    await start({ pages: 48 });  // room for every page a round could leave dirty
    const a = await worker();
    const b = await worker();
    const ROUNDS = 20;
    const leaked: number[] = [];  // rounds that left dirty pages behind
    for (let round = 0; round < ROUNDS; round++) {
      const file = await a.call('openRows');
      expect(await b.call('openRows')).toBe(file);  // one entry, two references
      await a.call('set', { file, p: 0, r: round % P.ROWS, v: 5000 + round, flush: true });
      await b.call('set', { file, p: 1, r: round % P.ROWS, v: 6000 + round, flush: true });
      const before = pm!.buffers.stats().dirty;
      const at = Date.now() + 30;
      await Promise.all([a.call('closeRowsAt', { at }), b.call('closeRowsAt', { at })]);
      expect(pm!.stats().files.entries.filter((e: { path: string }) => e.path === P.FILE)).toEqual([]);
      if (pm!.buffers.stats().dirty > before - 2) leaked.push(round);
    }
    expect(leaked).toEqual([]);
    expect(pm!.buffers.stats().dirty).toBe(0);
    await pm!.wal.checkpoint();
    for (let r = 0; r < P.ROWS; r++) {
      const last = ROUNDS - 1 - ((ROUNDS - 1 - r) % P.ROWS);  // the last round that wrote row r
      expect([diskRow(0, r), diskRow(1, r)]).toEqual([5000 + last, 6000 + last]);
    }
  });

  // A page pinned across its file's last close can no longer be written: markDirty refuses it, so no checkpoint fails on it.
  it('markDirty on a page whose file was closed (last handle) is refused with ERR_RINGMASTER_FILE_CLOSED and leaves it clean', async () => {
    await start({ pages: 8 });
    const handle = await pm!.files.open(P.FILE);
    const b = await pm!.buffers.read(handle.id, 1);
    await handle.close();
    await b.lockExclusive();
    b.page[200] = 7;
    expect(() => b.markDirty(pm!.wal.insertLsn())).toThrow(expect.objectContaining({ code: 'ERR_RINGMASTER_FILE_CLOSED' }));
    b.unlock();
    b.release();
    expect(pm!.buffers.stats().dirty).toBe(0);
    await pm!.wal.checkpoint();
  });

  // A page of a file opened read-only could never be written back (EBADF on every write): markDirty refuses it, so no checkpoint or last close fails on it.
  it('markDirty on a page of a file opened read-only is refused with EBADF and leaves it clean: checkpoints and the close still succeed', async () => {
    await start({ pages: 8 });
    const rw = await pm!.files.open(P.FILE);
    const ro = await pm!.files.open(P.FILE, { readOnly: true });
    const b = await pm!.buffers.read(ro, 1);
    await b.lockExclusive();
    b.page[200] = 7;
    expect(() => b.markDirty(pm!.wal.insertLsn())).toThrow(expect.objectContaining({ code: 'EBADF' }));
    b.unlock();
    b.release();
    expect(pm!.buffers.stats().dirty).toBe(0);
    await pm!.wal.checkpoint();
    await ro.close();
    await rw.close();
    await pm!.wal.checkpoint();
  });

  // One file under two ids (opened read-write and read-only): the pool caches it under the first id that tags a page, refuses the other while that one is open, and after its last close a read through the other sees the change.
  it('a file open read-write and read-only is cached under one id: a pool read through the other is refused with ERR_RINGMASTER_FILE_ALIASED, and after the first closes it sees the change', async () => {
    await start({ pages: 8 });
    const rw = await pm!.files.open(P.FILE);
    const ro = await pm!.files.open(P.FILE, { readOnly: true });
    expect(ro.id).not.toBe(rw.id);
    const b = await pm!.buffers.read(rw, 1);
    await b.lockExclusive();
    b.page[200] = 9;
    b.markDirty(pm!.wal.insertLsn());
    b.unlock();
    b.release();
    await expect(pm!.buffers.read(ro, 1)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_FILE_ALIASED' });
    await expect(pm!.buffers.read(ro, 5)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_FILE_ALIASED' });
    await rw.close();  // the last handle of that id: its dirty page is written back first
    const c = await pm!.buffers.read(ro, 1);
    await c.lockShared();
    expect(c.page[200]).toBe(9);
    c.unlock();
    c.release();
    // Now the read-write id is the one refused.
    const rw2 = await pm!.files.open(P.FILE);
    await expect(pm!.buffers.read(rw2, 1)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_FILE_ALIASED' });
    await rw2.close();
    await ro.close();
    await pm!.wal.checkpoint();
  });

  // A checkpoint can land anywhere in an update. With the safe order (the page is
  // dirtied before its WAL record is appended, all under the exclusive lock), none of
  // those places loses the update: if the redo point follows the record, the page is
  // dirty and the checkpoint's writeback waits for the lock and writes the change; if
  // it precedes the record, recovery replays it. (Appending before taking the lock is
  // unsafe: see bufferpool/index.ts markDirty.)
  for (const where of ['between dirtying and the WAL append', 'between the WAL append and setting the page LSN'] as const) {
    it(`a checkpoint ${where} loses nothing across a crash (safe update order)`, async () => {
      await start({ pages: 8 });
      const file = await P.rowsFile(pm!);
      const w = await worker();
      await w.call('begin', { file, p: 1, r: 2, v: 4242 });
      if (where.includes('setting')) await w.call('appendHeld');
      const checkpoint = pm!.wal.checkpoint();  // waits for the page lock in its writeback
      await new Promise((r) => setTimeout(r, 50));
      const lsn = await w.call('finish');  // durable: acknowledged
      await checkpoint;
      expect(pm!.wal.flushedLsn() >= BigInt(lsn)).toBe(true);
      // Crash: nothing but what is on disk survives (no shutdown checkpoint: the pool is not written back).
      await w.kill9();
      await pm!.stop({ checkpoint: false });
      pm = null;
      const counter = { calls: 0, applied: 0 };
      await start({ redo: P.makeRedo(counter) });
      const f2 = await P.rowsFile(pm!);
      expect(await poolRow(pm!, f2, 1, 2)).toBe(4242);
    });
  }
});

describe('wal + buffer pool: a holder killed in the middle of an update', () => {
  it('the page is fenced (ERR_RINGMASTER_PAGE_TORN), a checkpoint refuses it, and a restart recovers every committed update and not the torn one', async () => {
    await start({ redo: P.makeRedo({ calls: 0, applied: 0 }) });
    const file = await P.rowsFile(pm);
    const a = await worker();
    await a.call('set', { file, p: 2, r: 0, v: 11, flush: true });
    await a.call('set', { file, p: 3, r: 1, v: 22, flush: true });
    const exits: any[] = [];
    const torn: any[] = [];
    pm!.on('exit', (e) => exits.push(e));
    pm!.on('pages-torn', (e) => torn.push(e));
    // Half an update: exclusive lock, row changed, markDirty(); killed before its WAL record.
    await a.call('begin', { file, p: 2, r: 1, v: 99 });
    await a.kill9();
    await waitFor(() => exits.length === 1, 10000, 'the exit event');
    expect(exits[0].tornPages).toEqual([{ fileId: file, block: 2, dirty: true }]);
    expect(torn).toEqual([{ pid: a.pid, pages: exits[0].tornPages }]);
    await expect(pm!.buffers.read(file, 2)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_PAGE_TORN' });
    expect(await poolRow(pm!, file, 3, 1)).toBe(22);
    // A checkpoint would either write the unlogged half-change or skip a dirty page: it refuses.
    await expect(pm!.wal.checkpoint()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_PAGE_TORN' });
    expect(diskRow(2, 1)).toBe(0);
    await pm!.stop();
    pm = null;
    // Restart: recovery rebuilds the page from disk + WAL.
    await start({ redo: P.makeRedo({ calls: 0, applied: 0 }) });
    const f2 = await P.rowsFile(pm);
    expect(await poolRow(pm!, f2, 2, 0)).toBe(11);
    expect(await poolRow(pm!, f2, 2, 1)).toBe(0);
    expect(await poolRow(pm!, f2, 3, 1)).toBe(22);
    expect(pm!.buffers.stats().torn).toBe(0);
  });
});
