// The shared buffer pool across real forked processes over real files: one IO per
// cold page however many readers, foreign completion, dead issuers, errors that reach
// every waiter and are retryable, eviction under pressure, WAL-before-data.
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { Worker as ThreadWorker } from 'node:worker_threads';
import { Worker, addon, forkAttached, pageImage, rm, startPm, teardown, tempDir, waitFor } from '../helpers';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'bufferpool-worker.cjs');
const PS = 4096;

let dir: string | null = null;
let pm: import('../../core/index').Postmaster | null = null;
const workers: Worker[] = [];

afterEach(async () => {
  await teardown({ workers, pm, dir, clearFaults: true });
  pm = null;
  dir = null;
});

async function setup(pages: number, extra: Record<string, unknown> = {}) {
  dir = tempDir('rm-bp-');
  pm = await startPm(dir, { bufferPool: { pages, pageSize: PS }, ...extra });
  return pm;
}

async function worker(reaper = true): Promise<Worker> {
  return forkAttached(pm!, FIXTURE, { reaper, attach: { reaper }, into: workers });
}

// A page image with a valid checksum: fill byte `v` after the header.

function sum(page: Uint8Array): number {
  let h = 0;
  for (let i = 0; i < page.length; i++) h = (h * 31 + page[i]) >>> 0;
  return h;
}

async function makeFile(name: string, blocks: number, fill = (b: number) => (b % 250) + 1) {
  const f = await pm!.files.open(name, { create: true });
  writeFileSync(path.join(pm!.dataDir, name), Buffer.concat(Array.from({ length: blocks }, (_, b) => pageImage(fill(b)))));
  return f;
}

function diskPage(name: string, block: number): Buffer {
  return readFileSync(path.join(pm!.dataDir, name)).subarray(block * PS, (block + 1) * PS);
}

describe('buffer pool: who an IO completion wakes', () => {
  it('reads and writebacks nobody waits for ring no other process (a process waiting on an unrelated word sleeps through them)', async () => {
    // Every pool IO completion used to ring every process waiting on any shared word:
    // with P processes each miss cost P wakes. Now only an IO somebody waits for does.
    await setup(16);
    const f = await makeFile('d', 64);
    const word = pm!.completionWord();
    const w = await worker();
    const waiting = w.call('waitWordWake', { offset: word, timeoutMs: 30000 });
    await waitFor(() => pm!.stats().processes.length >= 2, 5000, 'the worker attached');
    await new Promise((r) => setTimeout(r, 100));  // its wait is registered
    // 64 misses through a 16-page pool, one at a time, half of them dirtied and written back.
    for (let b = 0; b < 64; b++) {
      const buf = await pm!.buffers.read(f, b);
      if (b % 2 === 0) {
        await buf.lockExclusive();
        buf.page[100] = b;
        buf.markDirty();
      }
      buf.release();
      if (b % 2 === 0) await pm!.buffers.flushAll();
    }
    // The word's own completion: its one wake.
    const plain = await pm!.files.open('w', { create: true });
    writeFileSync(path.join(pm!.dataDir, 'w'), Buffer.alloc(4096, 1));
    expect(await pm!.read(plain, 0, pm!.allocate(4096), { completionWord: word })).toBe(4096);
    const got = await waiting;
    expect(got.r).toBe(4096);
    // 64 reads and 32 writes ended meanwhile; none of them is this worker's business.
    expect(got.after.doorbells - got.before.doorbells).toBeLessThanOrEqual(2);
    expect(diskPage('d', 62)[100]).toBe(62);
  });
});

describe('buffer pool: sharing reads across processes', () => {
  it('two processes read the same cold page at once: exactly one read IO, same bytes', async () => {
    await setup(16);
    const f = await makeFile('d', 4);
    const [a, b] = [await worker(), await worker()];
    const before = pm!.buffers.stats().global.reads;
    const [ra, rb] = await Promise.all([a.call('read', { file: f.id, block: 2 }), b.call('read', { file: f.id, block: 2 })]);
    expect(ra.sum).toBe(rb.sum);
    expect(ra.sum).toBe(sum(pageImage(3)));
    expect(ra.bufferId).toBe(rb.bufferId);
    const g = pm!.buffers.stats().global;
    expect(g.reads - before).toBe(1);
    const sa = await a.call('stats');
    const sb = await b.call('stats');
    // One of them missed and read; the other hit or waited for that IO.
    expect(sa.process.reads + sb.process.reads).toBe(1);
    expect(sa.process.hits + sb.process.hits + sa.process.ioWaits + sb.process.ioWaits).toBe(1);
  });

  it('a reader whose JS thread is busy does not hold up another process needing the same page', async () => {
    await setup(16);
    const f = await makeFile('d', 8);
    // A reaps nothing itself (io_uring): someone else must complete its read.
    const [a, b] = [await worker(false), await worker()];
    const flag = path.join(dir!, 'go');
    // A issues the read and then spins until the flag file exists: its JS thread never
    // yields, so B can only get the page if A's IO completes without A's JS thread.
    const pa = a.call('readThenBusyUntil', { file: f.id, block: 5, flag });
    await waitFor(() => pm!.buffers.stats().global.reads >= 1, 20000, "A's read to be issued");
    const rb = await b.call('read', { file: f.id, block: 5 });
    expect(rb.sum).toBe(sum(pageImage(6)));
    writeFileSync(flag, '1');
    expect(await pa).toBe(rb.sum);
    expect(pm!.buffers.stats().global.reads).toBe(1);
    // With io_uring the read A issued was completed (checksum verified, page marked
    // valid) by another process; the threads backend completes IO in the issuer's pool.
    if (pm!.features.backend === 'io_uring') expect(pm!.buffers.stats().global.completedByOther).toBe(1);
  });

  it('a process killed with reads in flight: another process still gets every page (retried if cancelled)', async () => {
    await setup(64);
    const f = await makeFile('d', 32);
    const a = await worker();
    const b = await worker();
    a.call('readsThenDie', { file: f.id, from: 0, count: 32 }).catch(() => {});
    const exit = await a.exited;
    expect(exit.signal).toBe('SIGKILL');
    const sums = await Promise.all(Array.from({ length: 32 }, (_, i) => b.call('read', { file: f.id, block: i }).then((r) => r.sum)));
    expect(sums).toEqual(Array.from({ length: 32 }, (_, i) => sum(pageImage(i + 1))));
    await waitFor(() => pm!.buffers.stats().ioInProgress === 0, 20000, 'no IO left in progress');
  });

  it('a process killed after claiming a read it never submitted: cleanup ends the claim and others read the page', async () => {
    await setup(16);
    const f = await makeFile('d', 4);
    const a = await worker();
    a.call('claimThenDie', { file: f.id, block: 3 }).catch(() => {});
    expect((await a.exited).signal).toBe('SIGKILL');
    const b = await worker();
    expect((await b.call('read', { file: f.id, block: 3 })).sum).toBe(sum(pageImage(4)));
    await waitFor(() => pm!.buffers.stats().pinned === 0, 20000, "the dead process's pin to go");
  });

  it('a process killed between its claim CAS and its io_seq step: cleanup still ends the claim (found by the mixed kill soak)', async () => {
    await setup(16);
    const f = await makeFile('d', 4);
    const a = await worker();
    a.call('claimNoSeqThenDie', { file: f.id, block: 2 }).catch(() => {});
    expect((await a.exited).signal).toBe('SIGKILL');
    expect(pm!.buffers.ioInProgress()).toEqual([]);
    const b = await worker();
    expect((await b.call('read', { file: f.id, block: 2 })).sum).toBe(sum(pageImage(3)));
  });

  it('a read claimed while the previous IO\'s completer has cleared IO_IN_PROGRESS but not yet stepped io_seq still completes', async () => {
    await setup(16);
    const f = await makeFile('d', 2);
    // A read past EOF fails (ERR_RINGMASTER_PAST_EOF): the page stays tagged, not valid, in its buffer.
    await expect(pm!.buffers.read(f, 5)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_PAST_EOF' });
    expect(pm!.buffers.ioInProgress()).toEqual([]);
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const info = addon.bpInfo(pm!._native());
    let id = -1;  // the descriptor tagged (file, 5): file_id at +8, block at +16
    for (let k = 0; k < info.pages && id < 0; k++) {
      const d = pm!.arenaSlice(info.descOffset + k * info.descSize, 24).bytes;
      const v = new DataView(d.buffer, d.byteOffset, 24);
      if (Number(v.getBigUint64(8, true)) === f.id && Number(v.getBigUint64(16, true)) === 5) id = k;
    }
    expect(id).toBeGreaterThanOrEqual(0);
    // The completer's window: io_seq still odd although the IO has ended.
    const word = pm!.arenaSlice(info.descOffset + id * info.descSize + info.ioSeqField, 4).bytes;
    const dv = new DataView(word.buffer, word.byteOffset, 4);
    dv.setUint32(0, dv.getUint32(0, true) + 1, true);
    writeFileSync(path.join(pm!.dataDir, 'd'), Buffer.concat(Array.from({ length: 6 }, (_, b) => pageImage(b + 1))));
    const b = await pm!.buffers.read(f, 5);  // before the fix: the claim made io_seq even and the read never ended
    expect(b.page[100]).toBe(6);
    b.release();
    expect(dv.getUint32(0, true) % 2).toBe(0);
  });

  it('prefetch and stream: pages come back in order with reads batched', async () => {
    await setup(32);
    const f = await makeFile('d', 24);
    const seen: number[] = [];
    for await (const b of pm!.buffers.stream(f, 0, 24, { depth: 8 })) {
      expect(b.page[100]).toBe(b.block + 1);
      seen.push(b.block);
      b.release();
    }
    expect(seen).toEqual(Array.from({ length: 24 }, (_, i) => i));
    const s1 = pm!.buffers.stats().global;
    expect(s1.reads).toBe(24);
    await pm!.buffers.prefetch(f, [0, 1, 2, 3]);  // already there: no IO
    expect(pm!.buffers.stats().global.reads).toBe(24);
    expect(pm!.buffers.stats().pinned).toBe(0);
    // 16 cold pages: one batch, so (io_uring) one io_uring_enter for all 16 reads.
    const g = await makeFile('e', 16);
    const r0 = pm!.stats().rings[0];
    await pm!.buffers.prefetch(g, Array.from({ length: 16 }, (_, i) => i));
    expect(pm!.buffers.stats().global.reads).toBe(40);
    if (pm!.features.backend === 'io_uring') {
      const r1 = pm!.stats().rings[0];
      expect(r1.sqes - r0.sqes).toBe(16);
      expect(r1.enters - r0.enters).toBeLessThanOrEqual(2);
    }
    for (let i = 0; i < 16; i++) {
      const b = await pm!.buffers.read(g, i);  // hits now
      expect(b.page[100]).toBe(i + 1);
      b.release();
    }
    expect(pm!.buffers.stats().global.reads).toBe(40);
  });
});

describe('buffer pool: errors reach every waiter and are retryable', () => {
  it('an injected read EIO fails every reader; after the fault clears the next read succeeds', async () => {
    await setup(16);
    const f = await makeFile('d', 4);
    const [a, b] = [await worker(), await worker()];
    expect(pm!._native().debugSetFault(0, { opMask: 1 << 1, kind: 2, repeat: 1, error: -5 })).toBe(true);
    const [ra, rb] = await Promise.all([a.call('readCatch', { file: f.id, block: 1 }), b.call('readCatch', { file: f.id, block: 1 })]);
    expect(ra).toEqual({ ok: false, code: 'EIO' });
    expect(rb).toEqual({ ok: false, code: 'EIO' });
    await expect(pm!.buffers.read(f, 1)).rejects.toMatchObject({ code: 'EIO' });
    pm!._native().debugSetFault(0, null);
    expect((await a.call('read', { file: f.id, block: 1 })).sum).toBe(sum(pageImage(2)));
    expect(pm!.buffers.stats().pinned).toBe(0);
  });

  it('a checksum mismatch (page corrupted on disk) fails every reader; a repaired page reads fine', async () => {
    await setup(16);
    const f = await makeFile('d', 4);
    const [a, b] = [await worker(), await worker()];
    const file = path.join(pm!.dataDir, 'd');
    const bytes = readFileSync(file);
    bytes[2 * PS + 500] ^= 0xff;
    writeFileSync(file, bytes);
    const rs = await Promise.all([a.call('readCatch', { file: f.id, block: 2 }), b.call('readCatch', { file: f.id, block: 2 })]);
    expect(rs).toEqual([{ ok: false, code: 'ERR_RINGMASTER_CHECKSUM' }, { ok: false, code: 'ERR_RINGMASTER_CHECKSUM' }]);
    bytes[2 * PS + 500] ^= 0xff;
    writeFileSync(file, bytes);
    expect((await b.call('read', { file: f.id, block: 2 })).sum).toBe(sum(pageImage(3)));
  });

  it('a read past EOF is an error; mode zero creates the page without IO', async () => {
    await setup(8);
    const f = await makeFile('d', 2);
    await expect(pm!.buffers.read(f, 5)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_PAST_EOF' });
    const reads = pm!.buffers.stats().global.reads;
    const z = await pm!.buffers.read(f, 5, { mode: 'zero' });
    expect(z.page.every((x) => x === 0)).toBe(true);
    expect(pm!.buffers.stats().global.reads).toBe(reads);
    await z.lockExclusive();
    z.page[100] = 42;
    z.markDirty(7n);
    z.release();
    expect(await pm!.buffers.flushAll()).toBe(1);
    expect(diskPage('d', 5)[100]).toBe(42);
    expect(diskPage('d', 5).readBigUInt64LE(0)).toBe(7n);
  });
});

describe('buffer pool: pins, locks, eviction', () => {
  it('every buffer pinned: read fails with ERR_RINGMASTER_POOL_EXHAUSTED after a bounded wait, then works once one is released', async () => {
    await setup(4);
    const f = await makeFile('d', 8);
    pm!.buffers.configure({ pinWaitMs: 100 });
    const held = [];
    for (let i = 0; i < 4; i++) held.push(await pm!.buffers.read(f, i));
    await expect(pm!.buffers.read(f, 4)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_POOL_EXHAUSTED' });
    held.pop()!.release();
    const b = await pm!.buffers.read(f, 4);
    expect(b.page[100]).toBe(5);
    b.release();
    for (const h of held) h.release();
    expect(pm!.buffers.stats().global.evictions).toBeGreaterThanOrEqual(1);
  });

  it("a dead process's pins and exclusive lock are released by slot cleanup, and the page it held is fenced as torn", async () => {
    await setup(4);
    const f = await makeFile('d', 4);
    const a = await worker();
    const exits: any[] = [];
    pm!.on('exit', (e) => exits.push(e));
    a.call('lockThenDie', { file: f.id, block: 0 }).catch(() => {});
    await a.exited;
    await waitFor(() => exits.length === 1 && pm!.buffers.stats().pinned === 0, 20000, "the dead process's pin to go");
    expect(exits[0].tornPages).toEqual([{ fileId: f.id, block: 0, dirty: false }]);
    // It may have been mid-update: nobody gets the page (never a hang, never the torn bytes).
    pm!.buffers.configure({ lockWaitMs: 20000 });
    await expect(pm!.buffers.read(f, 0)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_PAGE_TORN' });
    expect(pm!.buffers.stats()).toMatchObject({ torn: 1, pinned: 0, tornPages: [{ fileId: f.id, block: 0 }] });
    // Other pages are unaffected, and so is the lock word: the next locker of another page works.
    const b = await pm!.buffers.read(f, 1);
    await b.lockExclusive();
    b.release();
  });

  // io_uring only: on the threads backend a dead process's IO dies with its pool threads.
  it.runIf(process.env.RINGMASTER_BACKEND !== 'threads')('a claimer killed after submitting its read but before marking it submitted: the claim is left to the read in flight, not aborted under it', async () => {
    await setup(4);
    const f = await makeFile('d', 2);
    const a = await worker();
    // The read stays in flight for a while (injected delay), so cleanup runs before it lands.
    pm!._native().debugSetFault(0, { opMask: 1 << 1 /* read */, fileSlot: f.id % 65536, delayUs: 400_000 });
    const exits: any[] = [];
    pm!.on('exit', (e) => exits.push(e));
    a.call('claimSubmitThenDie', { file: f.id, block: 1 }).catch(() => {});
    await a.exited;
    await waitFor(() => exits.length === 1, 10000, 'cleanup of the dead claimer');
    // Aborting it now would let the buffer be reused while the kernel still reads into it.
    expect(pm!.buffers.ioInProgress().map((b) => b.pid)).toEqual([a.pid]);
    await waitFor(() => pm!.buffers.ioInProgress().length === 0, 10000, 'the read in flight to end the claim');
    const b = await pm!.buffers.read(f, 1);
    expect(b.page[100]).toBe(pageImage(2)[100]);
    b.release();
    expect(pm!.handlesInUse()).toBe(0);
  });

  it("bufferPool.onHolderDeath 'release': a dead holder's exclusive lock is given back without fencing the page", async () => {
    dir = tempDir('rm-bp-');
    pm = await startPm(dir, { bufferPool: { pages: 4, pageSize: PS, onHolderDeath: 'release' } });
    const f = await makeFile('d', 2);
    const a = await worker();
    a.call('lockThenDie', { file: f.id, block: 0 }).catch(() => {});
    await a.exited;
    await waitFor(() => pm!.buffers.stats().pinned === 0, 20000, "the dead process's pin to go");
    const b = await pm!.buffers.read(f, 0);
    await b.lockExclusive();
    b.release();
    expect(pm!.buffers.stats()).toMatchObject({ torn: 0, tornTotal: 0 });
    await expect(startPm(tempDir('rm-bp-'), { bufferPool: { pages: 4, onHolderDeath: 'maybe' } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('a waiter for the exclusive lock of a holder that dies gets ERR_RINGMASTER_PAGE_TORN, not a timeout', async () => {
    await setup(4);
    const f = await makeFile('d', 2);
    const a = await worker();
    expect(await a.call('lockAndHold', { file: f.id, block: 1 })).toBe(true);
    pm!.buffers.configure({ lockWaitMs: 20000 });
    const b = await pm!.buffers.read(f, 1);
    const waiting = b.lockExclusive();
    await a.kill9();
    await expect(waiting).rejects.toMatchObject({ code: 'ERR_RINGMASTER_PAGE_TORN' });
    b.release();
    expect(pm!.buffers.stats().pinned).toBe(0);
  });

  it('exclusive and shared content locks exclude each other across processes', async () => {
    await setup(8);
    const f = await makeFile('d', 2);
    const a = await worker();
    const b = await pm!.buffers.read(f, 1);
    await b.lockExclusive();
    b.page[200] = 77;
    b.markDirty(1n);
    // The worker's shared lock waits for our exclusive one.
    const p = a.call('readBytes', { file: f.id, block: 1, at: 200, n: 1 });
    let done = false;
    p.then(() => (done = true), () => (done = true));
    await new Promise((r) => setTimeout(r, 50));
    expect(done).toBe(false);
    b.unlock();
    expect(await p).toEqual([77]);
    b.release();
  });

  it('a pool smaller than the working set: random writes by 2 processes end up on disk exactly as a model says', async () => {
    await setup(6);
    const BLOCKS = 16;
    const f = await makeFile('d', BLOCKS, () => 0);
    const [a, b] = [await worker(), await worker()];
    const op = fc.record({ block: fc.integer({ min: 0, max: BLOCKS - 1 }), slot: fc.integer({ min: 0, max: 7 }), value: fc.integer({ min: 1, max: 255 }) });
    let round = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), fc.array(op, { minLength: 1, maxLength: 30 }), async (opsA, opsB) => {
        round++;
        // Worker k owns bytes 1000*(k+1)+slot: both write the same pages, never the same byte.
        const model = new Map<string, number>();
        const enc = (k: number, ops: typeof opsA) => ops.map((o) => {
          const at = 1000 * (k + 1) + o.slot;
          model.set(`${o.block}:${at}`, o.value);
          return { block: o.block, at, value: o.value, lsn: round };
        });
        const ea = enc(0, opsA);
        const eb = enc(1, opsB);
        await Promise.all([a.call('writeBlocks', { file: f.id, ops: ea }), b.call('writeBlocks', { file: f.id, ops: eb })]);
        // Through the pool, from a third process.
        for (const [k, v] of model) {
          const [blk, at] = k.split(':').map(Number);
          const page = await pm!.buffers.read(f, blk);
          expect(page.page[at]).toBe(v);
          page.release();
        }
        await pm!.buffers.flushAll();
        const disk = readFileSync(path.join(pm!.dataDir, 'd'));
        for (const [k, v] of model) {
          const [blk, at] = k.split(':').map(Number);
          expect(disk[blk * PS + at]).toBe(v);
        }
        expect(pm!.buffers.stats().dirty).toBe(0);
      }),
      { numRuns: 8 },
    );
    expect(pm!.buffers.stats().global.evictions).toBeGreaterThan(0);
    expect(pm!.buffers.stats().pinned).toBe(0);
  });
});

describe('buffer pool: worker threads', () => {
  it("worker threads share the process's pool; a terminated thread's pins and locks are released by its detach", async () => {
    await setup(16);
    const f = await makeFile('d', 8);
    const mine = await pm!.buffers.read(f, 2);
    const t = new ThreadWorker(path.join(__dirname, '..', 'fixtures', 'bufferpool-thread.cjs'), {
      workerData: { token: pm!.threadToken(), fileId: f.id, blocks: [2, 3, 4], lock: true },
    });
    const m: any = await new Promise((resolve, reject) => { t.once('message', resolve); t.once('error', reject); });
    expect(m.error).toBeUndefined();
    expect(m.out.map((x: any) => x.byte)).toEqual([3, 4, 5]);
    expect(m.out[0].bufferId).toBe(mine.bufferId);  // the same shared buffer
    expect(m.stats.hits).toBe(1);
    expect(m.stats.reads).toBe(2);
    expect(pm!.buffers.stats().pinned).toBe(3);
    await t.terminate();  // never released: the environment's detach gives the pins back
    await waitFor(() => pm!.buffers.stats().pinned === 1, 20000, "the thread's pins to go");
    // Its shared lock went too: the exclusive lock is granted.
    await mine.lockExclusive();
    mine.release();
    expect(pm!.buffers.stats().pinned).toBe(0);
  });
});

describe('buffer pool: WAL-before-data', () => {
  function fakeHook() {
    let durable = 0n;
    const pending: { lsn: bigint; resolve: () => void }[] = [];
    const hook = {
      calls: [] as bigint[],
      flushedLsn: () => durable,
      flush(lsn: bigint): Promise<void> {
        hook.calls.push(lsn);
        return new Promise<void>((resolve) => pending.push({ lsn, resolve: () => { durable = durable > lsn ? durable : lsn; resolve(); } }));
      },
      appendFlushChain: () => null,
      release() {
        for (const p of pending.splice(0)) p.resolve();
      },
      get pending() {
        return pending.length;
      },
    };
    return hook;
  }

  it("eviction never writes a page before the WAL is durable up to its LSN ('wait', slow flush)", async () => {
    await setup(4);
    const f = await makeFile('d', 8, () => 0);
    const hook = fakeHook();
    pm!.buffers.setWalHook(hook, { walBeforeData: 'wait' });
    const b = await pm!.buffers.read(f, 0);
    await b.lockExclusive();
    b.page[300] = 0xab;
    b.markDirty(100n);
    b.release();
    const held = [];
    for (let i = 1; i < 4; i++) held.push(await pm!.buffers.read(f, i));
    // Block 4 needs a buffer: the only candidate is the dirty block 0, whose WAL is not durable.
    const p = pm!.buffers.read(f, 4);
    await waitFor(() => hook.pending > 0, 20000, 'the WAL flush request');
    expect(hook.calls).toEqual([100n]);
    expect(diskPage('d', 0)[300]).toBe(0);  // not written while the flush is pending
    hook.release();
    const b4 = await p;
    expect(diskPage('d', 0)[300]).toBe(0xab);
    expect(diskPage('d', 0).readBigUInt64LE(0)).toBe(100n);
    b4.release();
    for (const h of held) h.release();
  });

  it("'link': the page write is linked after the WAL write and fdatasync; a failed fdatasync cancels it", async () => {
    await setup(8);
    const f = await makeFile('d', 2, () => 0);
    const wal = await pm!.files.open('wal', { create: true });
    let durable = 0n;
    const seen: string[][] = [];
    const hook = {
      flushedLsn: () => durable,
      flush: async () => { throw new Error('flush must not be used in link mode'); },
      appendFlushChain(batch: import('../../core/index').Batch, lsn: bigint) {
        batch.write(wal, 0, Buffer.from(`wal-${lsn}`), { link: true }).fdatasync(wal, { link: true });
        return (results: import('../../core/index').IoResult[], first: number) => {
          seen.push(results.map((r) => `${r.op}:${r.ok}`));
          if (results[first].ok && results[first + 1].ok) durable = lsn;
        };
      },
    };
    pm!.buffers.setWalHook(hook, { walBeforeData: 'link' });
    const b = await pm!.buffers.read(f, 1);
    await b.lockExclusive();
    b.page[400] = 9;
    b.markDirty(55n);
    b.release();
    // fdatasync of the WAL fails: the page write must be cancelled, the page stays dirty.
    pm!._native().debugSetFault(0, { opMask: 1 << 4, error: -5 });
    await expect(pm!.buffers.flushAll()).rejects.toMatchObject({ code: 'ECANCELED' });
    expect(diskPage('d', 1)[400]).toBe(0);
    expect(pm!.buffers.stats().dirty).toBe(1);
    pm!._native().debugSetFault(0, null);
    expect(await pm!.buffers.flushAll()).toBe(1);
    expect(seen).toEqual([['write:true', 'fdatasync:false', 'write:false'], ['write:true', 'fdatasync:true', 'write:true']]);
    expect(diskPage('d', 1)[400]).toBe(9);
    expect(readFileSync(path.join(pm!.dataDir, 'wal')).toString()).toBe('wal-55');
    expect(durable).toBe(55n);
    expect(pm!.buffers.stats().dirty).toBe(0);
  });

  it('a background writer in a worker writes dirty pages back', async () => {
    await setup(8);
    const f = await makeFile('d', 4, () => 0);
    const bw = pm!.buffers.startBackgroundWriter({ intervalMs: 10, maxPages: 4 });
    const a = await worker();
    await a.call('writeBlocks', { file: f.id, ops: [{ block: 2, at: 700, value: 5 }, { block: 3, at: 700, value: 6 }] });
    await waitFor(() => diskPage('d', 2)[700] === 5 && diskPage('d', 3)[700] === 6, 20000, 'the background writer');
    bw.stop();
    expect(pm!.buffers.stats().global.writes).toBeGreaterThanOrEqual(2);
  });

  it('the background writer does not rewrite a page in use every round: the sweep\'s next victims first, the rest on a slow pass', async () => {
    await setup(2048);
    const f = await makeFile('d', 1);
    // Buffers are taken from the clock hand in order while the pool is empty: block b sits in buffer b.
    for (let b = 0; b < 1500; b++) (await pm!.buffers.read(f, b, { mode: 'zero' })).release();
    const dirty = async (block: number, v: number) => {
      const b = await pm!.buffers.read(f, block, { mode: block === 1500 ? 'zero' : undefined });
      await b.lockExclusive();
      b.page[300] = v;
      b.markDirty(0n);
      b.release();
      return b.bufferId;
    };
    expect(await dirty(0, 1)).toBe(0);
    const hot = await dirty(1500, 1);
    expect(hot).toBe(1500);
    const writes0 = pm!.buffers.stats().global.writes;
    // 10 ms rounds; the slow pass covers ceil(2048 x 10 / 120000) = 1 buffer a round, so it
    // reaches buffer 0 in its first round and buffer 1500 no sooner than 15 s from now.
    const bw = pm!.buffers.startBackgroundWriter({ intervalMs: 10, maxPages: 64 });
    try {
      await waitFor(() => diskPage('d', 0)[300] === 1, 20000, 'the slow pass writing buffer 0');
      // The hot page: in use (usage count > 0: the sweep has not passed it), dirtied again and
      // again. Writing it back each round would take its content lock each time, for nothing.
      for (let i = 2; i < 12; i++) {
        await dirty(1500, i);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(pm!.buffers.stats().global.writes - writes0).toBe(1);
    } finally {
      bw.stop();
    }
    // It is still dirty, and flushAll (a checkpoint) writes it.
    expect(pm!.buffers.stats().dirty).toBe(1);
    expect(await pm!.buffers.flushAll()).toBe(1);
  });
});
