// A checkpoint must not move its redo point past a page dirtied before it that is on no
// disk. The case here: another process claimed the page's write (IO_IN_PROGRESS) and is
// alive but stalled -- SIGSTOPped at the kill point `pool-write-claimed` (armed with
// `stop`) -- so the write was never submitted and the drain barrier cannot cover it.
// Each test: real forked workers, real files, the control file read from disk.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker, forkAttached, killWorkers, pageImage, removeDir, startPm, tempDir, waitFor } from '../helpers';

const PS = 4096;
const BLOCK = 1;
let dir: string;
let pm: import('../../core/index').Postmaster;
const workers: Worker[] = [];
const stopped: number[] = [];

beforeEach(() => {
  dir = tempDir('rm-ckstall-');
});
afterEach(async () => {
  for (const pid of stopped.splice(0)) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      /* gone */
    }
  }
  pm?._native().debugKillPoint('pool-write-claimed', null);
  await killWorkers(workers);
  await pm?.stop({ timeoutMs: 2000 }).catch(() => {});
  pm = undefined as any;
  removeDir(dir);
});

/** A postmaster with a pool and a WAL whose timeoutMs (the checkpoint's deadline) is `timeoutMs`; block BLOCK of 'd' dirty in the pool (byte 100: 77, 1 on disk). */
async function dirtyPage(timeoutMs: number) {
  pm = await startPm(dir, { bufferPool: { pages: 16, pageSize: PS }, wal: { segmentSize: 64 << 10, bufferSize: 64 << 10, timeoutMs } });
  const f = await pm.files.open('d', { create: true });
  writeFileSync(path.join(pm.dataDir, 'd'), Buffer.concat([1, 1, 1, 1].map((v) => pageImage(v))));
  await pm.wal.checkpoint();  // a control file to compare with
  const b = await pm.buffers.read(f.id, BLOCK);
  await b.lockExclusive();
  b.page[100] = 77;
  b.markDirty();
  const bufferId = b.bufferId;
  b.release();
  return { f, bufferId };
}

const onDisk = () => readFileSync(path.join(pm.dataDir, 'd'))[BLOCK * PS + 100];
const control = () => readFileSync(path.join(pm.dataDir, 'pg_control'));
const procState = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'latin1').replace(/^.*\) /, '')[0];

async function spawn(): Promise<Worker> {
  const w = await forkAttached(pm, path.join(__dirname, '..', 'fixtures', 'bufferpool-worker.cjs'));
  workers.push(w);
  return w;
}

/** Worker `w` claims the write of buffer `bufferId` in its flushAll and stops (SIGSTOP) before submitting it. */
async function stallWriter(w: Worker, bufferId: number): Promise<{ flushing: Promise<unknown> }> {
  expect(pm._native().debugKillPoint('pool-write-claimed', { pid: w.pid, stop: true })).toBe(true);
  const flushing = w.call('flushAll');
  flushing.catch(() => {});
  stopped.push(w.pid);
  await waitFor(() => procState(w.pid) === 'T', 10000, 'the writer to stop at pool-write-claimed');
  expect(pm._native().debugKillPointFired('pool-write-claimed')).toBe(1);
  expect(pm.buffers.ioInProgress()).toEqual([expect.objectContaining({ bufferId, pid: w.pid, submitted: false, write: true })]);
  return { flushing };  // (not the promise itself: an async function would wait for it)
}

describe('checkpoint and a page write claimed by a stalled process', () => {
  // The stalled claim: the checkpoint rejects (coded, naming the page) and the control file stays; after SIGCONT the next checkpoint succeeds and the page is on disk.
  it('a writer stopped between claiming a page write and submitting it: the checkpoint rejects with ERR_RINGMASTER_WRITEBACK_TIMEOUT, control file unchanged; after SIGCONT the next one succeeds', async () => {
    const { bufferId } = await dirtyPage(1500);
    const w = await spawn();
    const { flushing } = await stallWriter(w, bufferId);
    const before = control();
    const lastBefore = pm.wal.lastCheckpoint;
    const err: any = await pm.wal.checkpoint().then(() => null, (e) => e);
    expect(err).toMatchObject({ code: 'ERR_RINGMASTER_WRITEBACK_TIMEOUT' });
    expect(err.pages).toEqual([expect.objectContaining({ bufferId, block: BLOCK, ioPid: w.pid, ioSubmitted: false })]);
    expect(err.message).toMatch(new RegExp(`block ${BLOCK} of .*d.*claimed by pid ${w.pid} and never submitted`));
    expect(control().equals(before)).toBe(true);       // no redo point past the unwritten page
    expect(pm.wal.lastCheckpoint).toBe(lastBefore);
    expect(onDisk()).toBe(1);                           // it is on no disk
    expect(procState(w.pid)).toBe('T');                 // still stalled: nothing else ended the claim
    // The stalled process goes on: its write is submitted, and this checkpoint waits for it
    // (or writes the page itself) and covers it.
    process.kill(w.pid, 'SIGCONT');
    await pm.wal.checkpoint();
    expect(control().equals(before)).toBe(false);
    expect(onDisk()).toBe(77);
    expect(await flushing).toBe(1);
    expect(pm.buffers.stats()).toMatchObject({ dirty: 0, ioInProgress: 0, pinned: 0 });
  });

  // flushAll itself (not only the checkpoint) never reports a page left busy as written.
  it('flushAll with a page whose write a stopped process claimed rejects after its timeoutMs, naming the page', async () => {
    const { bufferId } = await dirtyPage(30000);
    const w = await spawn();
    await stallWriter(w, bufferId);
    await expect(pm.buffers.flushAll({ timeoutMs: 300 })).rejects.toMatchObject({
      code: 'ERR_RINGMASTER_WRITEBACK_TIMEOUT',
      pages: [expect.objectContaining({ bufferId, block: BLOCK, ioPid: w.pid, ioSubmitted: false })],
    });
    await expect(pm.buffers.flushAll({ timeoutMs: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    process.kill(w.pid, 'SIGCONT');
    expect(await pm.buffers.flushAll({ timeoutMs: 10000 })).toBeGreaterThanOrEqual(0);
    expect(onDisk()).toBe(77);
  });

  // A dead holder is not a stalled one: slot cleanup ends its claim and the checkpoint writes the page.
  it('a writer killed between claiming a page write and submitting it: cleanup ends the claim, the checkpoint writes the page', async () => {
    const { bufferId } = await dirtyPage(10000);
    const w = await spawn();
    expect(pm._native().debugKillPoint('pool-write-claimed', { pid: w.pid })).toBe(true);
    await expect(w.call('flushAll')).rejects.toThrow(/exited/);
    expect(await w.exited).toMatchObject({ signal: 'SIGKILL' });
    await waitFor(() => pm.buffers.ioInProgress().length === 0, 5000, "the dead writer's claim to end");
    expect(pm.buffers.stats().dirty).toBe(1);           // the aborted write left it dirty
    const before = control();
    await pm.wal.checkpoint();
    expect(pm.wal.lastCheckpoint?.pagesWritten).toBe(1);
    expect(control().equals(before)).toBe(false);
    expect(onDisk()).toBe(77);
    expect(bufferId).toBeGreaterThanOrEqual(0);
  });

  // A live writer whose write is submitted and merely slow (an injected delay): the checkpoint waits for it instead of writing the page again or giving up.
  it('a page write submitted by another process and still in flight: the checkpoint waits for it and counts the page as written', async () => {
    const { bufferId } = await dirtyPage(10000);
    const w = await spawn();
    pm._native().debugSetFault(0, { opMask: 1 << 2, delayUs: 700_000 });
    try {
      const flushing = w.call('flushAll');
      await waitFor(() => pm.buffers.ioInProgress().some((x) => x.bufferId === bufferId && x.submitted), 10000, "the worker's write to be submitted");
      await pm.wal.checkpoint();
      expect(pm.wal.lastCheckpoint?.pagesWritten).toBe(0);  // the worker's write covered it
      expect(onDisk()).toBe(77);
      expect(await flushing).toBe(1);
    } finally {
      pm._native().debugSetFault(0, null);
    }
  });
  // Only the waiting for other processes is timed: the checkpoint's own page writes, slower than wal.timeoutMs, do not use up its wait for another process's write in progress.
  it("a checkpoint whose own page writes outlast wal.timeoutMs (injected delay) still waits timeoutMs for a worker's write in progress, and succeeds", async () => {
    const { f, bufferId } = await dirtyPage(3000);
    const w = await spawn();
    // The worker's write (the first on the file) is late by 4 s, every later one by 2.5 s.
    pm._native().debugSetFault(0, { opMask: 1 << 2, fileSlot: f.id % 65536, delayUs: 4_000_000 });
    pm._native().debugSetFault(1, { opMask: 1 << 2, fileSlot: f.id % 65536, repeat: true, delayUs: 2_500_000 });
    try {
      const flushing = w.call('flushAll');
      await waitFor(() => pm.buffers.ioInProgress().some((x) => x.bufferId === bufferId && x.submitted), 10000, "the worker's write to be submitted");
      for (const blk of [0, 2, 3]) {  // the checkpoint's own pages
        const b = await pm.buffers.read(f.id, blk);
        await b.lockExclusive();
        b.page[100] = 50 + blk;
        b.markDirty();
        b.release();
      }
      // Its first round takes 2.5 s (> timeoutMs) and leaves the worker's page in progress;
      // a deadline counted from the start would have passed before any wait for it.
      await pm.wal.checkpoint();
      expect(pm.wal.lastCheckpoint?.pagesWritten).toBe(3);
      expect(onDisk()).toBe(77);
      expect(await flushing).toBe(1);
    } finally {
      pm._native().debugSetFault(0, null);
      pm._native().debugSetFault(1, null);
    }
  });
});

describe('flushAll measures "written" against the page as it was when it began', () => {
  // bpWrittenSince: a page written after the snapshot and dirtied again counts as written, even with a new write claimed and stalled; one never written does not.
  it('a page written once since the snapshot and dirtied again is covered; its next stalled write is not waited for', async () => {
    const { f, bufferId } = await dirtyPage(30000);
    const N = require('../../dist/core/native.js').native;
    const n = pm._native();
    const flat: number[] = N.bpDirty(n);
    expect(flat).toHaveLength(4);
    const [id, fileId, block, gen] = flat;
    expect([id, fileId, block]).toEqual([bufferId, f.id, BLOCK]);
    expect(N.bpWrittenSince(n, id, fileId, block, gen)).toBe(false);
    // Written by another process, then dirtied again here.
    const w = await spawn();
    expect(await w.call('flushAll')).toBe(1);
    const b = await pm.buffers.read(f.id, BLOCK);
    await b.lockExclusive();
    b.page[101] = 5;
    b.markDirty();
    b.release();
    expect(pm.buffers.stats().dirty).toBe(1);
    expect(N.bpWrittenSince(n, id, fileId, block, gen)).toBe(true);
    // A later snapshot of it is not covered by that write.
    const later: number[] = N.bpDirty(n);
    expect(N.bpWrittenSince(n, later[0], later[1], later[2], later[3])).toBe(false);
    // Its new write claimed by a stopped process: the earlier snapshot is still covered.
    await stallWriter(w, bufferId);
    expect(N.bpWrittenSince(n, id, fileId, block, gen)).toBe(true);
    expect(N.bpWrittenSince(n, later[0], later[1], later[2], later[3])).toBe(false);
  });
});
