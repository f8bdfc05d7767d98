// Waits that hold up under contention, across real forked processes: buffer content-lock
// waiters queue in shared memory; a release wakes only whom it lets run (an exclusive
// waiter alone, or a run of shared ones) and nobody more while a woken waiter has not
// retried; a woken waiter that loses a race gets the lock handed over next; a waiter that
// dies or times out leaves the queue; a releaser killed in the middle of a wake or a
// hand-over is repaired by the next holder of the queue lock. A read that finds every
// buffer pinned waits for an unpin. Counted in stats (lockWaits, lockWaitMs, lockWakeups,
// lockHandoffs, lockTimeouts, pinWaits).
import { afterEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { Worker, addon, forkAttached, settlesWithin, startPm, teardown, tempDir, waitFor } from '../helpers';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'bufferpool-worker.cjs');
const N = addon;
const PS = 4096;
const HANDOFF = 0x20000000;  // content-lock word bits (native/buffer_pool.h)
const WAKING = 0x10000000;

let dir: string | null = null;
let pm: import('../../core/index').Postmaster | null = null;
const workers: Worker[] = [];
let exits: { pid: number }[] = [];

afterEach(async () => {
  await teardown({ workers, pm, dir });
  pm = null;
  dir = null;
});

async function setup(pages = 16) {
  dir = tempDir('rm-lockq-');
  pm = await startPm(dir, { bufferPool: { pages, pageSize: PS } });
  exits = [];
  pm.on('exit', (e) => exits.push(e));
  const f = await pm.files.open('d', { create: true });
  await pm.write(f, 0, new Uint8Array(PS * 8));
  return f;
}

async function worker(): Promise<Worker> {
  return forkAttached(pm!, FIXTURE, { into: workers });
}

const g = () => pm!.buffers.stats().global;
const waiters = () => pm!.buffers.stats().lockWaiters;

/** `w` asks for the lock and is queued (the pool counts one more waiter). */
async function queue(w: Worker, file: number, block: number, mode: 'exclusive' | 'shared' = 'exclusive', extra: Record<string, unknown> = {}): Promise<void> {
  const before = waiters();
  await w.call('lockStart', { file, block, mode, keep: 'k', ...extra });
  await waitFor(() => waiters() === before + 1, 10000, 'the request to be queued');
}

describe('content-lock wait queue', () => {
  it('each release of an exclusive lock wakes exactly one queued process, and they get it in queue order', async () => {
    const f = await setup();
    const a = await pm!.buffers.read(f, 1);
    await a.lockExclusive();
    const ws = [await worker(), await worker(), await worker()];
    for (const w of ws) await queue(w, f.id, 1);
    const g0 = g();
    const order: number[] = [];
    const done = ws.map((w, i) => w.call('lockAwait', { keep: 'k' }).then((r: any) => { order.push(i); return r; }));
    a.unlock();
    // One wake per release: the woken one holds the lock while the others still wait.
    expect(await done[0]).toMatchObject({ ok: true });
    expect(await settlesWithin(Promise.race([done[1], done[2]]), 200)).toBe(false);
    expect(g().lockWakeups + g().lockHandoffs - g0.lockWakeups - g0.lockHandoffs).toBe(1);
    await ws[0].call('release', { keep: 'k' });
    expect(await done[1]).toMatchObject({ ok: true });
    await ws[1].call('release', { keep: 'k' });
    expect(await done[2]).toMatchObject({ ok: true });
    await ws[2].call('release', { keep: 'k' });
    expect(order).toEqual([0, 1, 2]);
    const g1 = g();
    expect(g1.lockWakeups + g1.lockHandoffs - g0.lockWakeups - g0.lockHandoffs).toBe(3);  // never a storm
    expect(g1.lockWaits - g0.lockWaits).toBe(0);  // counted when they queued, before g0
    expect(g1.lockWaits).toBeGreaterThanOrEqual(3);
    expect(g1.lockWaitMs).toBeGreaterThan(0);
    expect(waiters()).toBe(0);
    a.release();
  });

  it('shared requests queued behind an exclusive holder are all woken by its release: they can run together', async () => {
    const f = await setup();
    const a = await pm!.buffers.read(f, 2);
    await a.lockExclusive();
    const ws = [await worker(), await worker()];
    for (const w of ws) await queue(w, f.id, 2, 'shared');
    const g0 = g();
    a.unlock();
    const rs = await Promise.all(ws.map((w) => w.call('lockAwait', { keep: 'k' })));
    expect(rs).toEqual([expect.objectContaining({ ok: true }), expect.objectContaining({ ok: true })]);
    expect(g().lockWakeups - g0.lockWakeups).toBe(2);  // one release, both shared waiters
    for (const w of ws) await w.call('release', { keep: 'k' });
    a.release();
  });

  it('a woken waiter that loses its retry to a barging holder gets the lock handed over next; nobody barges meanwhile', async () => {
    const f = await setup();
    const id = (await pm!.buffers.read(f, 3)).bufferId;  // pinned (released below)
    const word = () => N.bpLockWord(pm!._native(), id);
    const a = await pm!.buffers.read(f, 3);
    await a.lockExclusive();
    const [w1, w2] = [await worker(), await worker()];
    await queue(w1, f.id, 3);
    const busy = w1.call('spin', { ms: 600 });  // w1 is woken but cannot retry yet
    await new Promise((r) => setTimeout(r, 50));
    a.unlock();
    expect(word() & WAKING).toBe(WAKING);
    await a.lockExclusive();  // barges: the lock was free and nobody had asked for a hand-over
    await busy;
    // w1's retry lost: it is back at the head and has asked for the next release.
    await waitFor(() => (word() & HANDOFF) !== 0, 10000, 'HANDOFF after the lost retry');
    await queue(w2, f.id, 3);  // behind w1, however soon the lock is free
    const g0 = g();
    const r1 = w1.call('lockAwait', { keep: 'k' });
    const r2 = w2.call('lockAwait', { keep: 'k' });
    a.unlock();
    expect(await r1).toMatchObject({ ok: true });
    expect(g().lockHandoffs - g0.lockHandoffs).toBe(1);
    expect(await settlesWithin(r2, 100)).toBe(false);
    await w1.call('release', { keep: 'k' });
    expect(await r2).toMatchObject({ ok: true });
    await w2.call('release', { keep: 'k' });
    expect(word() & (HANDOFF | WAKING)).toBe(0);
    a.release();
  });

  it('a queued waiter killed with SIGKILL leaves the queue (slot cleanup); the release reaches the next one', async () => {
    const f = await setup();
    const a = await pm!.buffers.read(f, 4);
    await a.lockExclusive();
    const [w1, w2] = [await worker(), await worker()];
    await queue(w1, f.id, 4);
    await queue(w2, f.id, 4);
    await w1.kill9();
    await waitFor(() => exits.some((e) => e.pid === w1.pid), 10000, 'the dead waiter to be cleaned up');
    expect(waiters()).toBe(1);
    a.unlock();
    expect(await w2.call('lockAwait', { keep: 'k' })).toMatchObject({ ok: true });
    await w2.call('release', { keep: 'k' });
    a.release();
  });

  it('a woken waiter killed before it retried gives the wake back: the next waiter is woken', async () => {
    const f = await setup();
    const a = await pm!.buffers.read(f, 5);
    await a.lockExclusive();
    const [w1, w2] = [await worker(), await worker()];
    await queue(w1, f.id, 5);
    await queue(w2, f.id, 5);
    w1.call('spin', { ms: 5000 }).catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    a.unlock();  // wakes w1 only (it cannot run), and no more wakes while it has not retried
    const r2 = w2.call('lockAwait', { keep: 'k' });
    expect(await settlesWithin(r2, 200)).toBe(false);
    await w1.kill9();
    expect(await r2).toMatchObject({ ok: true });
    await w2.call('release', { keep: 'k' });
    a.release();
  });

  it('a waiter that times out leaves the queue; the one behind it gets the lock', async () => {
    const f = await setup();
    const a = await pm!.buffers.read(f, 6);
    await a.lockExclusive();
    const [w1, w2] = [await worker(), await worker()];
    await queue(w1, f.id, 6, 'exclusive', { lockWaitMs: 300 });
    await queue(w2, f.id, 6);
    expect(await w1.call('lockAwait', { keep: 'k' })).toMatchObject({ ok: false, code: 'ERR_RINGMASTER_LOCK_TIMEOUT' });
    expect(waiters()).toBe(1);
    expect(g().lockTimeouts).toBe(1);
    a.unlock();
    expect(await w2.call('lockAwait', { keep: 'k' })).toMatchObject({ ok: true });
    await w2.call('release', { keep: 'k' });
    a.release();
  });

  for (const point of ['lock-wake', 'lock-handoff'] as const) {
    it(`a releaser killed at '${point}' (queue lock held, the waiter neither woken nor granted yet): the waiter still gets the lock`, async () => {
      const f = await setup();
      const id = (await pm!.buffers.read(f, 7)).bufferId;
      const word = () => N.bpLockWord(pm!._native(), id);
      const [b, w1] = [await worker(), await worker()];
      await b.call('lockStart', { file: f.id, block: 7, keep: 'h' });
      expect(await b.call('lockAwait', { keep: 'h' })).toMatchObject({ ok: true });
      await queue(w1, f.id, 7);
      if (point === 'lock-handoff') {
        // Into HANDOFF: w1 is woken while busy, b takes the lock back, w1's retry loses.
        const busy = w1.call('spin', { ms: 600 });
        await new Promise((r) => setTimeout(r, 50));
        await b.call('unlock', { keep: 'h' });
        await b.call('relock', { keep: 'h' });
        await busy;
        await waitFor(() => (word() & HANDOFF) !== 0, 10000, 'HANDOFF');
      }
      expect(await b.call('armKillPoint', { name: point })).toBe(true);
      await expect(b.call('unlock', { keep: 'h' })).rejects.toThrow(/exited/);
      expect(pm!._native().debugKillPointFired(point)).toBe(1);
      // The next holder of the queue lock (w1's own re-look, at most a second away, or the
      // dead process's slot cleanup) repairs the queue and finishes the release.
      expect(await w1.call('lockAwait', { keep: 'k' })).toMatchObject({ ok: true });
      expect(pm!.buffers.stats().lockQueueRepairs).toBeGreaterThanOrEqual(1);
      expect(pm!.buffers.stats().torn).toBe(0);  // b had released: nothing to fence
      await w1.call('release', { keep: 'k' });
      await waitFor(() => exits.some((e) => e.pid === b.pid), 10000, 'b cleaned up');
      expect(word()).toBe(0);
    });
  }
});

describe('own holds', () => {
  it("this environment's writeback holding a page shared does not make its own exclusive request a self-deadlock: the request waits", async () => {
    const f = await setup();
    const a = await pm!.buffers.read(f, 1);
    await a.lockExclusive();
    a.page[100] = 7;
    a.markDirty();
    a.release();
    // The page write (op 2) is delayed: flushAll holds the page's shared lock meanwhile.
    pm!._native().debugSetFault(0, { opMask: 1 << 2, fileSlot: f.id % 65536, delayUs: 400_000 });
    try {
      const flushing = pm!.buffers.flushAll();
      await waitFor(() => pm!.buffers.stats().ioInProgress === 1, 10000, 'the writeback to be in flight');
      const b = await pm!.buffers.read(f, 1);
      await b.lockExclusive();  // before the fix: ERR_RINGMASTER_SELF_DEADLOCK at once
      expect(await flushing).toBe(1);
      b.release();
    } finally {
      pm!._native().debugSetFault(0, null);
    }
    // A user's own shared hold still makes an exclusive request fail at once.
    const c = await pm!.buffers.read(f, 1);
    const d = await pm!.buffers.read(f, 1);
    await c.lockShared();
    await expect(d.lockExclusive()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SELF_DEADLOCK' });
    c.release();
    d.release();
  });
});

describe('pool exhausted', () => {
  it('a read that finds every buffer pinned waits for an unpin in another process, then gets its page', async () => {
    const f = await setup(4);
    const w = await worker();
    for (let b = 0; b < 4; b++) await w.call('read', { file: f.id, block: b, keep: `p${b}` });
    const g0 = pm!.buffers.stats().process;
    const r = pm!.buffers.read(f, 5);
    expect(await settlesWithin(r, 300)).toBe(false);
    await w.call('release', { keep: 'p2' });
    const b = await r;
    expect(b.block).toBe(5);
    b.release();
    const s = pm!.buffers.stats().process;
    expect(s.pinWaits - g0.pinWaits).toBe(1);
    expect(s.pinWaitMs).toBeGreaterThan(0);
  });

  it('the wait is bounded: ERR_RINGMASTER_POOL_EXHAUSTED after pinWaitMs, and the registration is gone', async () => {
    const f = await setup(4);
    const w = await worker();
    for (let b = 0; b < 4; b++) await w.call('read', { file: f.id, block: b, keep: `p${b}` });
    pm!.buffers.configure({ pinWaitMs: 200 });
    await expect(pm!.buffers.read(f, 6)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_POOL_EXHAUSTED' });
    pm!.buffers.configure({ pinWaitMs: 5000 });
    await w.call('release', { keep: 'p0' });
    (await pm!.buffers.read(f, 6)).release();
  });
});
