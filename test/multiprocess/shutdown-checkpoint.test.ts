// pm.stop() takes a shutdown checkpoint once every worker has exited (as PostgreSQL's
// checkpointer does after the backends are gone): the data files are current and the
// next start replays nothing. `checkpoint: false` opts out. A failed WAL, a torn page or
// the stop's deadline leave it undone (an event says why, a warning is printed) and lose
// nothing: the next start recovers from the WAL. Real forked workers, real files.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker, backend, forkAttached, killWorkers, removeDir, rm, tempDir, waitFor } from '../helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const P = require('../fixtures/integ-pages.cjs');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const fmt: typeof import('../../wal/format') = require('../../dist/wal/format');
const WORKER = path.join(__dirname, '..', 'fixtures', 'integ-worker.cjs');
const OP_FDATASYNC = 4;
const EIO = -5;
type Pm = import('../../core/index').Postmaster;
type Report = import('../../core/index').ShutdownCheckpoint;

let dir: string;
let dataDir: string;
let pm: Pm | null = null;
const workers: Worker[] = [];
const warnings: Error[] = [];
const onWarning = (w: Error) => {
  if ((w as { code?: string }).code === 'RINGMASTER_NO_SHUTDOWN_CHECKPOINT') warnings.push(w);
};

beforeEach(() => {
  dir = tempDir('rm-shutdown-');
  dataDir = path.join(dir, 'data');
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(path.join(dataDir, P.FILE), Buffer.alloc(P.PAGES * P.PS));
  warnings.length = 0;
  process.on('warning', onWarning);
});
afterEach(async () => {
  process.off('warning', onWarning);
  await killWorkers(workers);
  if (pm) await pm.stop({ checkpoint: false });
  pm = null;
  removeDir(dir);
});

async function start(extra: Record<string, unknown> = {}): Promise<Pm> {
  pm = await rm.Postmaster.start(P.startOptions(dataDir, extra));
  return pm;
}

async function worker(closeOnStop: boolean): Promise<Worker> {
  return forkAttached(pm!, WORKER, { attach: { closeOnStop }, into: workers });
}

const diskRow = (p: number, r: number) => readFileSync(path.join(dataDir, P.FILE)).readUInt32LE(p * P.PS + P.rowOffset(r));

async function poolRow(db: Pm, p: number, r: number): Promise<number> {
  const b = await db.buffers.read(await P.rowsFile(db), p);
  try {
    await b.lockShared();
    return Buffer.from(b.page.buffer, b.page.byteOffset, b.page.length).readUInt32LE(P.rowOffset(r));
  } finally {
    b.release();
  }
}

/** Records `'exit'` and `'shutdown-checkpoint'` events in the order they came. */
function watch(db: Pm): { order: string[]; reports: Report[] } {
  const seen = { order: [] as string[], reports: [] as Report[] };
  db.on('exit', () => seen.order.push('exit'));
  db.on('shutdown-checkpoint', (r) => {
    seen.order.push('shutdown-checkpoint');
    seen.reports.push(r);
  });
  return seen;
}

const ROWS: [number, number, number][] = [[0, 1, 101], [1, 2, 102], [2, 3, 103], [3, 4, 104], [4, 5, 105], [5, 6, 106]];

describe('pm.stop(): the shutdown checkpoint', () => {
  it('with a WAL and a buffer pool: after the workers exit, the dirty pages reach the data file, a checkpoint record and the control file name it, and the next start replays nothing', async () => {
    await start();
    const file = await P.rowsFile(pm!);
    const w = await worker(true);
    for (const [p, r, v] of ROWS) await w.call('set', { file, p, r, v, flush: true });
    // One change of the postmaster's own, appended but never flushed (never acknowledged):
    // the checkpoint flushes the WAL first, so it is kept too.
    const lsn = await pm!.wal.append(P.KIND_SET, P.encode(7, 0, 107));
    await P.setRow(pm!, file, 7, 0, 107, lsn);
    for (const [p, r] of ROWS) expect(diskRow(p, r)).toBe(0);  // only in the pool so far
    const seen = watch(pm!);
    await pm!.stop();
    pm = null;
    expect(seen.order).toEqual(['exit', 'shutdown-checkpoint']);  // the worker was gone first
    const [report] = seen.reports;
    expect(report).toMatchObject({ kind: 'checkpoint', ok: true });
    expect(typeof report.lsn).toBe('bigint');
    expect(report.ms).toBeGreaterThanOrEqual(0);
    expect(warnings).toEqual([]);
    for (const [p, r, v] of [...ROWS, [7, 0, 107]]) expect(diskRow(p, r), `row ${p}/${r} on disk`).toBe(v);
    const control = fmt.readControl(dataDir)!;
    expect(BigInt(control.checkpointLsn)).toBe(report.lsn);
    const counter = { calls: 0, applied: 0 };
    await start({ redo: P.makeRedo(counter) });
    expect(counter.calls).toBe(0);
    expect(pm!.wal.recovery).toMatchObject({ records: 1, skipped: 0, tornTail: false });  // the checkpoint record
    for (const [p, r, v] of ROWS) expect(await poolRow(pm!, p, r)).toBe(v);
  });

  it('checkpoint: false writes nothing back and takes no checkpoint: the next start replays every record', async () => {
    await start();
    const file = await P.rowsFile(pm!);
    const w = await worker(true);
    for (const [p, r, v] of ROWS) await w.call('set', { file, p, r, v, flush: true });
    const before = fmt.readControl(dataDir);
    const seen = watch(pm!);
    await pm!.stop({ checkpoint: false });
    pm = null;
    expect(seen.order).toEqual(['exit']);
    for (const [p, r] of ROWS) expect(diskRow(p, r)).toBe(0);
    expect(fmt.readControl(dataDir)).toEqual(before);
    const counter = { calls: 0, applied: 0 };
    await start({ redo: P.makeRedo(counter) });
    expect(counter.calls).toBe(ROWS.length);
    for (const [p, r, v] of ROWS) expect(await poolRow(pm!, p, r)).toBe(v);
  });

  it('a worker that ignores stop while holding a page exclusively is SIGKILLed first; the checkpoint then refuses the torn page and warns; the next start recovers every commit and not the torn change', async () => {
    await start();
    const file = await P.rowsFile(pm!);
    const w = await worker(false);  // never closes: only SIGKILL ends it
    for (const [p, r, v] of ROWS.slice(0, 3)) await w.call('set', { file, p, r, v, flush: true });
    await w.call('begin', { file, p: 2, r: 0, v: 999 });  // half an update, lock held
    const seen = watch(pm!);
    await pm!.stop({ timeoutMs: 300 });
    pm = null;
    expect((await w.exited).signal).toBe('SIGKILL');
    expect(seen.order).toEqual(['exit', 'shutdown-checkpoint']);
    expect(seen.reports[0]).toMatchObject({ kind: 'checkpoint', ok: false, lsn: null, error: { code: 'ERR_RINGMASTER_PAGE_TORN' } });
    await waitFor(() => warnings.length === 1, 5000, 'the RINGMASTER_NO_SHUTDOWN_CHECKPOINT warning');
    expect(warnings[0].message).toContain('recovers from the WAL');
    const counter = { calls: 0, applied: 0 };
    await start({ redo: P.makeRedo(counter) });
    for (const [p, r, v] of ROWS.slice(0, 3)) expect(await poolRow(pm!, p, r)).toBe(v);
    expect(await poolRow(pm!, 2, 0)).toBe(0);
  });

  it('a failed WAL: no checkpoint, no page written past the durable WAL; the next start recovers what was durable', async () => {
    await start({ wal: { direct: false } });  // the buffered WAL: its fdatasync fails
    const file = await P.rowsFile(pm!);
    for (const [p, r, v] of ROWS.slice(0, 2)) {
      const lsn = await pm!.wal.append(P.KIND_SET, P.encode(p, r, v));
      await P.setRow(pm!, file, p, r, v, lsn);
      await pm!.wal.flush(lsn);
    }
    const lsn = await pm!.wal.append(P.KIND_SET, P.encode(6, 1, 666));
    await P.setRow(pm!, file, 6, 1, 666, lsn);
    const seg = await pm!.wal._segmentFileId(lsn);
    pm!._native().debugSetFault(0, { opMask: 1 << OP_FDATASYNC, fileSlot: seg % 65536, error: EIO });
    await expect(pm!.wal.flush(lsn)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_FAILED' });
    pm!._native().debugSetFault(0, null);
    const before = fmt.readControl(dataDir);
    const seen = watch(pm!);
    await pm!.stop();
    pm = null;
    expect(seen.reports).toHaveLength(1);
    expect(seen.reports[0]).toMatchObject({ kind: 'checkpoint', ok: false, error: { code: 'ERR_RINGMASTER_WAL_FAILED' } });
    await waitFor(() => warnings.length === 1, 5000, 'the warning');
    expect(diskRow(6, 1)).toBe(0);  // its WAL record never became durable: the page never reached disk
    expect(fmt.readControl(dataDir)).toEqual(before);
    await start({ redo: P.makeRedo(null) });
    for (const [p, r, v] of ROWS.slice(0, 2)) expect(await poolRow(pm!, p, r)).toBe(v);
  });

  it("is bounded by the stop's time: a page lock the postmaster itself holds makes it time out (ETIMEDOUT); stop still finishes, the control file is unchanged, the next start recovers", async () => {
    await start();
    const file = await P.rowsFile(pm!);
    for (const [p, r, v] of ROWS.slice(0, 3)) {
      const lsn = await pm!.wal.append(P.KIND_SET, P.encode(p, r, v));
      await P.setRow(pm!, file, p, r, v, lsn);
      await pm!.wal.flush(lsn);
    }
    const before = fmt.readControl(dataDir);
    const held = await pm!.buffers.read(file, 1);
    await held.lockExclusive();  // the checkpoint's writeback of page 1 waits for it (lockWaitMs: 30 s)
    const seen = watch(pm!);
    await pm!.stop({ timeoutMs: 100 });
    pm = null;
    expect(seen.reports[0]).toMatchObject({ kind: 'checkpoint', ok: false, error: { code: 'ETIMEDOUT' } });
    await waitFor(() => warnings.length === 1, 5000, 'the warning');
    expect(fmt.readControl(dataDir)).toEqual(before);
    await start({ redo: P.makeRedo(null) });
    for (const [p, r, v] of ROWS.slice(0, 3)) expect(await poolRow(pm!, p, r)).toBe(v);
  });

  it('a buffer pool without a WAL (embedded db.close()): the dirty pages are written back and their file synced', async () => {
    const db = await rm.open({ dataDir, backend, arenaSize: 2 << 20, bufferPool: { pages: 8, pageSize: P.PS } } as never);
    pm = db;
    const f = await db.files.open('plain.dat', { create: true });
    const b = await db.buffers.read(f, 3, { mode: 'extend' });
    await b.lockExclusive();
    b.page.set([7, 8, 9], 200);
    b.markDirty();
    b.release();
    const seen = watch(db);
    await db.close();
    pm = null;
    expect(seen.reports).toEqual([expect.objectContaining({ kind: 'pages', ok: true, lsn: null })]);
    const bytes = readFileSync(path.join(dataDir, 'plain.dat'));
    expect(bytes.length).toBe(4 * P.PS);
    expect([...bytes.subarray(3 * P.PS + 200, 3 * P.PS + 203)]).toEqual([7, 8, 9]);
  });

  it('a WAL without a buffer pool: stop flushes the WAL (appended records become durable) and writes no checkpoint record, so recovery replays them; checkpoint: true writes one', async () => {
    const opts = (redo?: Record<number, (r: { payload: Buffer }) => void>) => ({ dataDir, backend, arenaSize: 2 << 20, wal: { segmentSize: 64 << 10, bufferSize: 64 << 10, ...(redo ? { redo } : {}) } });
    let db = await rm.open(opts() as never);
    pm = db;
    await db.wal.append(1, Buffer.from('a'));  // never flushed by us
    let seen = watch(db);
    await db.close();
    expect(seen.reports).toEqual([expect.objectContaining({ kind: 'wal-flush', ok: true, lsn: null })]);
    const got: string[] = [];
    db = await rm.open(opts({ 1: (r) => { got.push(r.payload.toString()); } }) as never);
    pm = db;
    expect(got).toEqual(['a']);
    await db.wal.flush(await db.wal.append(1, Buffer.from('b')));
    seen = watch(db);
    await db.close({ checkpoint: true });
    expect(seen.reports).toEqual([expect.objectContaining({ kind: 'checkpoint', ok: true })]);
    got.length = 0;
    db = await rm.open(opts({ 1: (r) => { got.push(r.payload.toString()); } }) as never);
    pm = db;
    expect(got).toEqual([]);
  });

  it('stop options are checked before anything stops', async () => {
    await start();
    await expect(pm!.stop({ checkpoint: 'yes' } as never)).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    await expect(pm!.stop({ timeoutMs: -1 })).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    expect(pm!.closed).toBe(false);
    await pm!.wal.flush(await pm!.wal.append(1, Buffer.from('still running')));
  });
});
