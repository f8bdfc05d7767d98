// Durability of data files (native/file_sync.h, core/durability.ts): a checkpoint syncs
// exactly the data files written since the last one -- by the postmaster, a forked
// worker or a worker thread, through page writeback or users' writes, and a file whose
// last handle closed syncs itself -- before the redo point moves; a write that lands
// after a file was synced is synced by the next checkpoint; a failed sync (fsyncgate)
// fails the checkpoint for good and recovery from the old redo point repairs the file;
// every create, rename and removal path syncs its directory (checked with the directory
// sync log and an injected directory-sync failure, which LazyFS cannot show).
// SIGKILL keeps the page cache, so none of this is a power cut: the LazyFS soak is.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, realpathSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Worker as ThreadWorker } from 'node:worker_threads';
import { Worker, addon, backend, forkWalWorker, forkWorker, killWorkers, removeDir, rm, startWithWal, tempDir } from '../helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const P = require('../fixtures/integ-pages.cjs');
const SYNC_THREAD = path.join(__dirname, '..', 'fixtures', 'sync-thread.cjs');
const OP = { write: 2, fsync: 3, fdatasync: 4 };
const SYNCS = (1 << OP.fsync) | (1 << OP.fdatasync);
const SEG = 64 << 10;
type Pm = import('../../core/index').Postmaster;

let dir: string;
let dataDir: string;
let pm: Pm | null;
const workers: Worker[] = [];

beforeEach(() => {
  dir = tempDir('rm-dur-');
  dataDir = path.join(dir, 'data');
  pm = null;
});
afterEach(async () => {
  await killWorkers(workers);
  if (pm) {
    try {
      pm._native().debugSetFault(0, null);
      dirFault(pm, null);
    } catch {
      /* stopped */
    }
    await pm.stop();
  }
  pm = null;
  delete process.env.RINGMASTER_DEBUG_SKIP_DATA_SYNC;
  removeDir(dir);
});

const dirFault = (p: Pm, rule: Record<string, unknown> | null) => addon.debugDirSyncFault(p._native(), rule);

const start = (extra: Record<string, unknown> = {}): Promise<Pm> => startWithWal(dataDir, {}, { arenaSize: 2 << 20, ...extra });
const walWorker = (p: Pm, env?: Record<string, string>) => forkWalWorker(p, workers, env);

function inThread(p: Pm, data: Record<string, unknown>): Promise<any> {
  const t = new ThreadWorker(SYNC_THREAD, { workerData: { token: p.threadToken(), ...data } });
  return new Promise((resolve, reject) => {
    t.once('message', (m) => (m.error ? reject(Object.assign(new Error(m.error), { code: m.code })) : resolve(m)));
    t.once('error', reject);
  });
}

const synced = (p: Pm) => p.wal.lastCheckpoint!.syncedFiles.map((f) => [f.path, f.fsync]).sort();
const syncedIds = (p: Pm) => p.wal.lastCheckpoint!.syncedFiles.map((f) => f.id).sort();
const entry = (p: Pm, id: number) => p.stats().files.entries.find((e: { id: number }) => e.id === id);
const controlCkpt = () => readFileSync(path.join(dataDir, 'pg_control')).readBigUInt64LE(16);

describe('durability: a checkpoint syncs exactly what was written', () => {
  it('the files written since the last checkpoint, each once: fsync after create or growth, fdatasync for overwrites', async () => {
    pm = await start();
    const a = await pm.files.open('a.dat', { create: true });
    const b = await pm.files.open('b.dat', { create: true });
    await pm.files.open('c.dat', { create: true });
    const before = pm.stats().files.syncs;
    await pm.wal.checkpoint();
    expect(synced(pm)).toEqual([['a.dat', true], ['b.dat', true], ['c.dat', true]]);  // created: their inodes
    await pm.write(a, 0, Buffer.alloc(4096, 1));  // grows a.dat
    await pm.wal.checkpoint();
    expect(synced(pm)).toEqual([['a.dat', true]]);
    await pm.write(a, 100, Buffer.alloc(100, 2));  // inside its size
    await pm.wal.checkpoint();
    expect(synced(pm)).toEqual([['a.dat', false]]);
    await pm.write(b, 0, Buffer.alloc(10, 3));
    await pm.write(b, 0, Buffer.alloc(10, 4));
    await pm.wal.checkpoint();
    expect(synced(pm)).toEqual([['b.dat', true]]);
    await pm.wal.checkpoint();
    expect(synced(pm)).toEqual([]);  // nothing written: nothing synced
    expect(pm.stats().files.syncs - before).toBe(6);
    expect(pm.stats().files.entries.every((e: { pending: boolean }) => !e.pending)).toBe(true);
  });

  it('buffer-pool writeback (checkpoint, eviction, background writer) marks the data file', async () => {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(path.join(dataDir, P.FILE), Buffer.alloc(P.PAGES * P.PS));
    pm = await rm.Postmaster.start(P.startOptions(dataDir, { pages: 4 }));
    const file = await P.rowsFile(pm);
    await pm.wal.checkpoint();
    // Dirty 6 pages through a 4-page pool: evictions write some back, the checkpoint the rest.
    for (let p = 0; p < 6; p++) {
      const lsn = await pm.wal.append(P.KIND_SET, P.encode(p, 1, 100 + p));
      await P.setRow(pm, file, p, 1, 100 + p, lsn);
    }
    await pm.wal.checkpoint();
    expect(syncedIds(pm)).toEqual([file]);
    expect(pm.wal.lastCheckpoint!.syncedFiles[0].fsync).toBe(false);  // pages inside the file
    const lsn = await pm.wal.append(P.KIND_SET, P.encode(1, 2, 7));
    await P.setRow(pm, file, 1, 2, 7, lsn);
    const bg = pm.buffers.startBackgroundWriter({ intervalMs: 5, maxPages: 8 });
    while (pm.buffers.stats().dirty > 0) await new Promise((r) => setTimeout(r, 5));
    bg.stop();
    expect(entry(pm, file).pending).toBe(true);  // written by the background writer, not synced yet
    await pm.wal.checkpoint();
    expect(syncedIds(pm)).toEqual([file]);
  });

  it('writes by a forked worker are synced by the postmaster\'s checkpoint, and the postmaster\'s by a worker\'s checkpoint', async () => {
    pm = await start();
    const f = await pm.files.open('shared.dat', { create: true });
    await pm.wal.checkpoint();
    const w = await walWorker(pm);
    await w.call('write', { file: f.id, offset: 0, data: 'from the worker' });
    const own: number = await w.call('open', { path: 'worker-own.dat', opts: { create: true } });
    await w.call('write', { file: own, offset: 0, data: 'its own file' });
    await pm.wal.checkpoint();
    expect(syncedIds(pm)).toEqual([f.id, own].sort());
    await pm.write(f, 0, Buffer.from('from the postmaster'));
    expect(await w.call('checkpointSynced')).toEqual([f.id]);
    await pm.wal.checkpoint();
    expect(syncedIds(pm)).toEqual([]);  // the worker's checkpoint covered it
  });

  it('writes by a worker thread are synced by the postmaster\'s checkpoint, and the postmaster\'s by a thread\'s checkpoint', async () => {
    pm = await start();
    const f = await pm.files.open('t.dat', { create: true });
    await pm.wal.checkpoint();
    expect((await inThread(pm, { fileId: f.id, write: { offset: 0, data: 'from a thread' } })).written).toBe(13);
    await pm.wal.checkpoint();
    expect(syncedIds(pm)).toEqual([f.id]);
    await pm.write(f, 0, Buffer.from('from the postmaster'));
    expect((await inThread(pm, { checkpoint: true })).synced).toEqual([f.id]);
    expect(entry(pm, f.id).pending).toBe(false);
  });

  it('the last close of a written file syncs it (any process); a close that is not the last does not', async () => {
    pm = await start();
    const f = await pm.files.open('closing.dat', { create: true });
    const again = await pm.files.open('closing.dat');  // same identity: a second reference
    expect(again.id).toBe(f.id);
    await pm.wal.checkpoint();
    await pm.write(f, 0, Buffer.from('unsynced'));
    const s0 = pm.stats().files.syncs;
    await again.close();
    expect(pm.stats().files.syncs).toBe(s0);  // not the last handle: the request stays in the table
    expect(entry(pm, f.id).pending).toBe(true);
    await f.close();
    expect(pm.stats().files.syncs).toBe(s0 + 1);
    expect(entry(pm, f.id)).toBeUndefined();
    // A forked worker's last close syncs too, though the postmaster checkpoints.
    const w = await walWorker(pm);
    const id: number = await w.call('open', { path: 'worker-closing.dat', opts: { create: true } });
    await w.call('write', { file: id, offset: 0, data: 'worker data' });
    await w.call('closeFile', { file: id });
    expect(pm.stats().files.syncs).toBe(s0 + 2);
    await pm.wal.checkpoint();
    expect(synced(pm)).toEqual([]);
  });

  it('a last close waits for a write still in flight on the file before it syncs', async () => {
    pm = await start();
    const f = await pm.files.open('slow.dat', { create: true });
    await pm.wal.checkpoint();
    pm._native().debugSetFault(0, { opMask: 1 << OP.write, fileSlot: f.id % 65536, delayUs: 300_000 });
    let writeDone = false;
    const w = pm.write(f, 0, Buffer.from('late write')).then(() => (writeDone = true));
    const s0 = pm.stats().files.syncs;
    await f.close();
    expect(writeDone).toBe(true);  // the sync came after it
    expect(pm.stats().files.syncs).toBe(s0 + 1);
    await w;
  });

  it('a write that lands while the checkpoint syncs its file is synced by the next checkpoint, never dropped', async () => {
    pm = await start();
    const f = await pm.files.open('race.dat', { create: true });
    await pm.write(f, 0, Buffer.alloc(64, 1));
    // The checkpoint's sync of race.dat is held back 300 ms; a write lands meanwhile.
    pm._native().debugSetFault(0, { opMask: SYNCS, fileSlot: f.id % 65536, delayUs: 300_000 });
    const ck = pm.wal.checkpoint();
    while (pm._native().debugFaultFired(0) === 0) await new Promise((r) => setTimeout(r, 2));
    await pm.write(f, 0, Buffer.alloc(64, 2));
    await ck;
    expect(syncedIds(pm)).toEqual([f.id]);
    expect(entry(pm, f.id).pending).toBe(true);  // the late write is the next checkpoint's
    await pm.wal.checkpoint();
    expect(syncedIds(pm)).toEqual([f.id]);
    expect(entry(pm, f.id).pending).toBe(false);
  });

  for (const point of ['handles-reserved', 'sqes-reserved', 'sqes-published'] as const) {
    it(`a writer SIGKILLed at ${point} (after its handles are reserved; ${point === 'handles-reserved' ? 'before' : 'after'} it marks the file) never holds a checkpoint back`, async () => {
      pm = await start();
      if (point === 'sqes-published' && pm.features.backend !== 'io_uring') return;  // an io_uring point
      const exits: number[] = [];
      pm.on('exit', (e) => exits.push(e.pid));
      const f = await pm.files.open('killed-writer.dat', { create: true });
      await pm.wal.checkpoint();
      const w = await forkWorker(pm);
      workers.push(w);
      expect(pm._native().debugKillPoint(point, { pid: w.pid })).toBe(true);
      await expect(w.call('write', { file: f.id, offset: 0, data: 'never acknowledged' })).rejects.toThrow(/exited/);
      expect(pm._native().debugKillPointFired(point)).toBe(1);
      while (!exits.includes(w.pid)) await new Promise((r) => setTimeout(r, 5));  // slot cleaned
      await pm.wal.checkpoint();  // the barrier does not wait for the dead writer's handles
      // A mark without a write costs one sync of the file; a write that may have landed is synced.
      expect(syncedIds(pm)).toEqual(point === 'handles-reserved' ? [] : [f.id]);
      expect(pm.handlesInUse()).toBe(0);
    });
  }

  it('test hook RINGMASTER_DEBUG_SKIP_DATA_SYNC: that process\'s checkpoints skip the data-file syncs and nothing else', async () => {
    pm = await start();
    const f = await pm.files.open('skip.dat', { create: true });
    await pm.wal.checkpoint();
    await pm.write(f, 0, Buffer.from('x'));
    process.env.RINGMASTER_DEBUG_SKIP_DATA_SYNC = '1';
    const s0 = pm.stats().files.syncs;
    const ck = await pm.wal.checkpoint();
    expect(controlCkpt()).toBe(ck);  // the checkpoint itself completed
    expect(pm.wal.lastCheckpoint!.syncsSkipped).toBe(true);
    expect(synced(pm)).toEqual([]);
    expect(pm.stats().files.syncs).toBe(s0);
    delete process.env.RINGMASTER_DEBUG_SKIP_DATA_SYNC;
    // In a forked worker's environment; and without RINGMASTER_TEST_HOOKS=1 it does nothing.
    expect(await (await walWorker(pm, { RINGMASTER_DEBUG_SKIP_DATA_SYNC: '1' })).call('checkpointSynced')).toEqual([]);
    expect(await (await walWorker(pm, { RINGMASTER_DEBUG_SKIP_DATA_SYNC: '1', RINGMASTER_TEST_HOOKS: '0' })).call('checkpointSynced')).toEqual([f.id]);
  });
});

describe('durability: fsyncgate', () => {
  it('EIO from a data-file sync at checkpoint: it rejects, the control file keeps the old checkpoint, the WAL fails, and recovery from the old redo point rebuilds the page', async () => {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(path.join(dataDir, P.FILE), Buffer.alloc(P.PAGES * P.PS));
    const counter = { calls: 0, applied: 0 };
    pm = await rm.Postmaster.start(P.startOptions(dataDir, { redo: P.makeRedo(counter) }));
    const failures: Error[] = [];
    pm.on('wal-failed', (e) => failures.push(e));
    const file = await P.rowsFile(pm);
    const first = await pm.wal.checkpoint();
    // The documented safe update order, then the commit.
    const b = await pm.buffers.read(file, 2);
    await b.lockExclusive();
    new DataView(b.page.buffer, b.page.byteOffset, b.page.length).setUint32(P.rowOffset(3), 77, true);
    b.markDirty();
    const lsn = await pm.wal.append(P.KIND_SET, P.encode(2, 3, 77));
    b.markDirty(lsn);
    b.release();
    await pm.wal.flush(lsn);
    pm._native().debugSetFault(0, { opMask: SYNCS, fileSlot: file % 65536, error: -5 });
    await expect(pm.wal.checkpoint()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SYNC_FAILED', errno: -5 });
    expect(pm._native().debugFaultFired(0)).toBe(1);
    expect(controlCkpt()).toBe(first);
    expect(pm.stats().files).toMatchObject({ failedErrno: 5, failedPath: P.FILE, failures: 1 });
    // For good: the fault is gone, and a retried sync would "succeed" with the data gone.
    pm._native().debugSetFault(0, null);
    await expect(pm.wal.checkpoint()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SYNC_FAILED' });
    expect(controlCkpt()).toBe(first);
    expect(pm.wal.failed).toBe(true);
    await expect(pm.wal.append(P.KIND_SET, P.encode(0, 0, 1))).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_FAILED' });
    await new Promise((r) => setTimeout(r, 250));  // the postmaster's poll reports it
    expect(failures.length).toBeGreaterThan(0);
    await pm.stop();
    // What the failed fsync may have left: the kernel dropped the written page.
    const fd = openSync(path.join(dataDir, P.FILE), 'r+');
    writeSync(fd, Buffer.alloc(P.PS), 0, P.PS, 2 * P.PS);
    closeSync(fd);
    pm = await rm.Postmaster.start(P.startOptions(dataDir, { redo: P.makeRedo(counter) }));
    expect(counter.applied).toBeGreaterThan(0);
    const r = await pm.buffers.read(await P.rowsFile(pm), 2);
    await r.lockShared();
    expect(new DataView(r.page.buffer, r.page.byteOffset, r.page.length).getUint32(P.rowOffset(3), true)).toBe(77);
    r.release();
    expect(pm.stats().files.failedErrno).toBe(0);  // a new run
    expect(await pm.wal.checkpoint()).toBeGreaterThan(0n);
  });

  it('a user\'s fsync that fails, in another process, fails every later checkpoint (the error is reported once per file)', async () => {
    pm = await start();
    const f = await pm.files.open('user.dat', { create: true });
    await pm.write(f, 0, Buffer.from('user data'));
    await pm.wal.checkpoint();
    const w = await forkWorker(pm);
    workers.push(w);
    pm._native().debugSetFault(0, { opMask: SYNCS, fileSlot: f.id % 65536, error: -5 });
    const [r] = await w.call('batch', { ops: [{ op: 'fsync', file: f.id }] });
    expect(r).toMatchObject({ ok: false, code: 'EIO' });
    await expect(pm.wal.checkpoint()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SYNC_FAILED', errno: -5 });
    // A last close that has something to sync refuses too (and leaves nothing behind).
    await pm.write(f, 0, Buffer.from('more'));
    await expect(f.close()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SYNC_FAILED' });
    expect(entry(pm, f.id)).toBeUndefined();
  });

  it('a failed sync at a last close rejects the close and fails the checkpoints after it', async () => {
    pm = await start();
    const f = await pm.files.open('close-fail.dat', { create: true });
    await pm.write(f, 0, Buffer.from('x'));
    const first = await pm.wal.checkpoint();
    await pm.write(f, 0, Buffer.from('y'));
    pm._native().debugSetFault(0, { opMask: SYNCS, fileSlot: f.id % 65536, error: -28 });
    await expect(f.close()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SYNC_FAILED', errno: -28 });
    expect(entry(pm, f.id)).toBeUndefined();  // closed: the failed state, not the entry, holds checkpoints back
    await expect(pm.wal.checkpoint()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SYNC_FAILED' });
    expect(controlCkpt()).toBe(first);
  });

  it('a sync that never ran (ECANCELED) rejects the checkpoint without the failed state; the next one syncs the file', async () => {
    pm = await start();
    const f = await pm.files.open('cancel.dat', { create: true });
    await pm.write(f, 0, Buffer.from('x'));
    const first = await pm.wal.checkpoint();
    await pm.write(f, 0, Buffer.from('y'));
    pm._native().debugSetFault(0, { opMask: SYNCS, fileSlot: f.id % 65536, error: -125 });
    await expect(pm.wal.checkpoint()).rejects.toMatchObject({ code: 'ECANCELED' });
    expect(controlCkpt()).toBe(first);
    expect(pm.stats().files.failedErrno).toBe(0);
    expect(entry(pm, f.id).pending).toBe(true);
    await pm.wal.checkpoint();
    expect(syncedIds(pm)).toEqual([f.id]);
  });
});

describe('durability: directory syncs (LazyFS passes create/rename/unlink through, so these are checked here)', () => {
  const recent = (p: Pm): string[] => p.stats().files.recentDirSyncs;

  it('a start that makes the data directory syncs each parent it made; a fresh WAL syncs pg_wal\'s name, each new segment, the control file and the cut', async () => {
    const deep = path.join(dir, 'a', 'b', 'data');
    pm = await rm.Postmaster.start({ dataDir: deep, backend } as any);
    const real = realpathSync(dir);
    expect(recent(pm)).toEqual([path.join(real, 'a', 'b'), path.join(real, 'a'), real]);
    await pm.stop();
    pm = await start();
    // data made in dir; pg_wal made; segment 1 made; control file renamed; the tail cut; segment 2 made.
    expect(recent(pm)).toEqual([realpathSync(dir), '.', 'pg_wal', '.', 'pg_wal', 'pg_wal']);
  });

  it('files.open({ create }) syncs the new file\'s directory and those above it, before it resolves; an existing file needs none', async () => {
    pm = await start();
    const n0 = pm.stats().files.dirSyncs;
    await pm.files.open('top.dat', { create: true });
    expect(recent(pm).slice(-1)).toEqual(['.']);
    mkdirSync(path.join(pm.dataDir, 'sub', 'deeper'), { recursive: true });
    await pm.files.open('sub/deeper/x.dat', { create: true });
    expect(recent(pm).slice(-3)).toEqual(['sub/deeper', 'sub', '.']);
    const n1 = pm.stats().files.dirSyncs;
    expect(n1 - n0).toBe(4);
    await pm.files.open('sub/deeper/x.dat', { create: true });  // exists: no new name
    await pm.files.open('top.dat');
    expect(pm.stats().files.dirSyncs).toBe(n1);
    // A failed directory sync fails the open (and is the failed state, as a failed file sync).
    dirFault(pm, { path: 'sub', error: -5 });
    await expect(pm.files.open('sub/y.dat', { create: true })).rejects.toMatchObject({ code: 'EIO' });
    expect(pm.stats().files).toMatchObject({ failedErrno: 5, dirFailures: 1 });
    await expect(pm.wal.checkpoint()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SYNC_FAILED' });
  });

  it('making a new WAL segment syncs pg_wal: a failed sync there fails the flush and the WAL', async () => {
    pm = await start();
    dirFault(pm, { path: 'pg_wal', error: -5 });
    const rec = Buffer.alloc(2000, 0x41);
    let last = 0n;
    for (let i = 0; i < 40; i++) last = await pm.wal.append(1, rec);  // crosses into segment 2: segment 3 is made
    await expect(pm.wal.flush(last)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SYNC_FAILED' });
    expect(dirFault(pm, null)).toBe(true);
    expect(addon.debugDirSyncFired(pm._native())).toBe(1);
    expect(pm.wal.failed).toBe(true);
  });

  it('a checkpoint syncs the directory after renaming the control file and after recycling segments; a failure at either rejects it', async () => {
    pm = await start({ wal: { segmentSize: SEG, bufferSize: 64 << 10, keepSegments: 1 } });
    const rec = Buffer.alloc(2000, 0x41);
    const fill = async (n: number) => {
      let last = 0n;
      for (let i = 0; i < n; i++) last = await pm!.wal.append(1, rec);
      await pm!.wal.flush(last);
    };
    await fill(80);  // into segment 3, mid-way
    const before = readdirSync(path.join(dataDir, 'pg_wal')).sort();
    await pm.wal.checkpoint();
    expect(readdirSync(path.join(dataDir, 'pg_wal')).sort()).not.toEqual(before);  // recycled
    expect(recent(pm).slice(-2)).toEqual(['.', 'pg_wal']);
    await pm.wal.checkpoint();  // nothing to recycle: only the control file's directory
    expect(recent(pm).slice(-3)).toEqual(['.', 'pg_wal', '.']);
    // A failed sync of pg_wal after recycling rejects the checkpoint (and is the failed state).
    await fill(80);
    const ctl = controlCkpt();
    dirFault(pm, { path: 'pg_wal', error: -5 });
    await expect(pm.wal.checkpoint()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SYNC_FAILED' });
    expect(addon.debugDirSyncFired(pm._native())).toBe(1);
    expect(controlCkpt()).toBeGreaterThan(ctl);  // the control file was written and synced before the recycling
  });

  it('a failed sync of the data directory after the control file\'s rename rejects the checkpoint', async () => {
    pm = await start();
    await pm.wal.checkpoint();
    dirFault(pm, { path: '.', error: -5 });
    await expect(pm.wal.checkpoint()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SYNC_FAILED' });
    expect(addon.debugDirSyncFired(pm._native())).toBe(1);
  });

  it('recovery that makes a data file from a full-page image syncs its directory', async () => {
    pm = await start();
    const lsn = await pm.wal.appendPageImage('made-by-recovery.dat', 0, Buffer.alloc(4096, 9));
    await pm.wal.flush(lsn);
    await pm.stop();  // no checkpoint: recovery replays the image
    pm = await start();
    expect(readFileSync(path.join(dataDir, 'made-by-recovery.dat'))[100]).toBe(9);
    expect(recent(pm)[0]).toBe('.');  // made the file: its name synced, before the WAL's own syncs
  });
});
