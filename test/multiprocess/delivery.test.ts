// Delivery and submission paths: completions reach the issuer's own JS thread (its event
// loop polls a wake fd: a private ring with self-wake messages and a doorbell futex wait,
// or an eventfd), cross-process waiters are woken directly, and the ops of one JS turn go
// to the kernel together. Real forked processes, real files; counters, not timing.
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker, backend, forkWorker, killWorkers, removeDir, rm, settlesWithin, startPm, tempDir, waitFor } from '../helpers';

let dir: string | undefined;
let pm: import('../../core/index').Postmaster | undefined;
let db: import('../../core/index').Ringmaster | undefined;
const workers: Worker[] = [];

afterEach(async () => {
  await killWorkers(workers);
  if (pm) await pm.stop({ timeoutMs: 2000 });
  if (db) await db.close();
  pm = undefined;
  db = undefined;
  if (dir) removeDir(dir);
  dir = undefined;
});

const uring = () => (pm ?? db)!.features.backend === 'io_uring';

function spin(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) { /* a JS thread that does not yield */ }
}

async function worker(options: { reaper?: boolean } = {}): Promise<Worker> {
  const w = await forkWorker(pm!, options);
  workers.push(w);
  return w;
}

// A file of `blocks` 4 KiB blocks, block b filled with byte b + 1, opened O_DIRECT.
async function directFile(h: import('../../core/index').Ringmaster, name: string, blocks = 4) {
  const plain = await h.files.open(name, { create: true });
  const buf = Buffer.alloc(blocks * 4096);
  for (let b = 0; b < blocks; b++) buf.fill(b + 1, b * 4096, (b + 1) * 4096);
  await h.write(plain, 0, buf);
  await h.fsync(plain);
  return h.files.open(name, { direct: true });
}

describe('delivery: the issuer settles its own completions on its JS thread', () => {
  it('a completion that lands while the JS thread is busy settles once it yields, woken by its own message, no watcher involved', async () => {
    dir = tempDir('rm-deliv-');
    db = await rm.open({ dataDir: path.join(dir, 'data'), backend, arenaSize: 1 << 20 } as any);
    const f = await directFile(db, 'd');
    const s = db.allocate(4096);
    const before = db.stats().rings[0];
    const wake0 = db._native().wakeInfo();
    const p = db.read(f, 4096, s);
    await null;  // end of the turn: the read goes to the kernel
    // It completes (O_DIRECT, tens of microseconds) while this thread spins. The spin stays
    // under the loop's 250 ms safety sweep, so the sweep's timer, which libuv runs before
    // polling, is not what collects it when the thread yields.
    spin(100);
    expect(await settlesWithin(p, 0)).toBe(false);  // nothing ran on this thread meanwhile
    expect(await p).toBe(4096);
    expect(s.bytes[0]).toBe(2);
    // The message (threads backend: the eventfd write) is counted when the loop's poll takes it, which may come
    // after the promise settled (a sweep timer that ran first, as the other tests here
    // allow for): wait for it, bounded, rather than for one poll phase (seen failing once in
    // eight runs on an idle machine).
    if (uring()) await waitFor(() => db!._native().wakeInfo().selfWakes > wake0.selfWakes, 5000, "the read's self-wake message");
    else await waitFor(() => db!._native().wakeInfo().doorbells > wake0.doorbells, 5000, "the pool thread's eventfd write");
    const wake1 = db._native().wakeInfo();
    if (uring()) {
      expect(wake0).toMatchObject({ channel: 'ring', selfWake: true });
      expect(wake1.selfWakes).toBeGreaterThan(wake0.selfWakes);      // its own MSG_RING woke it
      expect(wake1.reapedHere).toBeGreaterThan(wake0.reapedHere);    // ... and it reaped the CQE itself
      expect(db.stats().rings[0].reapedByWatchers).toBe(before.reapedByWatchers);  // no watcher woke for it
    } else {
      expect(wake0.channel).toBe('eventfd');
      expect(wake1.doorbells).toBeGreaterThan(wake0.doorbells);  // the pool thread wrote the eventfd
    }
  });

  it('completions that arrive together reach JS in growing chunks: the reads their continuations start go to the kernel before the rest are settled', async () => {
    dir = tempDir('rm-deliv-');
    db = await rm.open({ dataDir: path.join(dir, 'data'), backend, arenaSize: 1 << 20 } as any);
    const N = 16;
    const f = await directFile(db, 'd', N);
    const slices = Array.from({ length: N }, () => db!.allocate(4096));
    // The setup's ops started the loop's 250 ms sweep timer; it stops at its first run
    // with nothing in flight. The reads below start it afresh, so it is not due while
    // they complete (else it could collect them first, as it may).
    await new Promise((r) => setTimeout(r, 600));
    const swept0 = db._native().wakeInfo().swept;
    const seen: number[] = [];  // per settled first read: the ring's enters when its continuation ran
    const second: Promise<number>[] = [];
    const first = slices.map((s, i) => db!.read(f, i * 4096, s).then((n) => {
      seen.push(uring() ? db!.stats().rings[0].enters : 0);
      second.push(db!.read(f, ((i + 1) % N) * 4096, s));  // the lane's next read
      return n;
    }));
    await null;  // end of the turn: the 16 reads go to the kernel in one enter
    spin(50);    // they all complete while this thread is busy, and reach it in one wake
    expect(await Promise.all(first)).toEqual(Array(N).fill(4096));
    expect(await Promise.all(second)).toEqual(Array(N).fill(4096));
    slices.forEach((s, i) => expect(s.bytes[0]).toBe(((i + 1) % N) + 1));
    if (uring()) {
      // Settled all at once, every continuation would see the same count (the new reads
      // would go out together after the last one). In chunks of 2, 4, 8, ... the reads of
      // the first chunk were submitted before the later chunks' continuations ran.
      expect(seen.length).toBe(N);
      expect(seen[N - 1]).toBeGreaterThan(seen[0]);
      expect(new Set(seen).size).toBeGreaterThanOrEqual(3);
    }
    // Nothing was left for the 250 ms safety sweep: the flushes inside the delivery left
    // what they reaped to its next chunk, which took it.
    expect(db._native().wakeInfo().swept).toBe(swept0);
  });

  it('a hard-linked chain (write -> fdatasync) is woken by its own message, even when its first op fails; a soft-linked one is not', async () => {
    dir = tempDir('rm-deliv-');
    db = await rm.open({ dataDir: path.join(dir, 'data'), backend, arenaSize: 1 << 20 } as any);
    const f = await db.files.open('x', { create: true });
    const ro = await db.files.open('x', { readOnly: true });
    const watchers = () => (uring() ? db!.stats().rings[0].reapedByWatchers : 0);
    const w0 = db._native().wakeInfo();
    const r0 = watchers();
    const hard = await db.batch().write(f, 0, Buffer.from('commit')).hardlink().fdatasync(f).submit();
    expect(hard.map((r) => r.ok)).toEqual([true, true]);
    // The first op fails (EBADF): a hard link still runs the sync and then the message.
    const failed = await db.batch().write(ro, 0, Buffer.from('X')).hardlink().fdatasync(f).submit();
    expect(failed[0].error?.code).toBe('EBADF');
    expect(failed[1].ok).toBe(true);
    if (uring()) {
      // One message per chain, after its last op (it may land after the chain was
      // collected: a sweep on a loaded machine can take the CQEs first).
      await waitFor(() => db!._native().wakeInfo().selfWakes - w0.selfWakes >= 2, 5000, "both chains' self-wake messages");
      expect(db._native().wakeInfo().selfWakes - w0.selfWakes).toBe(2);
      expect(watchers()).toBe(r0);  // no watcher woke for either chain
    }
    const w1 = db._native().wakeInfo();
    // A soft link can break and cancel the message with the rest: that chain stays with the reapers.
    const soft = await db.batch().write(ro, 0, Buffer.from('X')).link().fdatasync(f).submit();
    expect(soft[0].error?.code).toBe('EBADF');
    expect(soft[1].error?.code).toBe('ECANCELED');
    const ok = await db.batch().write(f, 0, Buffer.from('commit')).link().fdatasync(f).submit();
    expect(ok.map((r) => r.ok)).toEqual([true, true]);
    if (uring()) expect(db._native().wakeInfo().selfWakes).toBe(w1.selfWakes);
  });

  it('a WAL commit (append + flush: a soft-linked chain that asks for the self-wake) is woken by its own message, with no watcher in between', async () => {
    dir = tempDir('rm-deliv-');
    db = await rm.open({ dataDir: path.join(dir, 'data'), backend, arenaSize: 4 << 20, wal: {} } as any);
    const payload = Buffer.alloc(100, 0x61);
    await db.wal.flush(await db.wal.append(1, payload));  // opens the segment
    const w0 = db._native().wakeInfo();
    const r0 = uring() ? db.stats().rings[0].reapedByWatchers : 0;
    const s0 = db.wal.stats();
    for (let i = 0; i < 20; i++) await db.wal.flush(await db.wal.append(1, payload));
    const s1 = db.wal.stats();
    expect(s1.fdatasyncs - s0.fdatasyncs).toBe(20);
    if (uring()) {
      // One message per commit (the first flush's may land after w0 was read).
      await waitFor(() => db!._native().wakeInfo().selfWakes - w0.selfWakes >= 20, 5000, 'a self-wake message per commit');
      expect(db._native().wakeInfo().selfWakes - w0.selfWakes).toBeLessThanOrEqual(21);
      expect(db.stats().rings[0].reapedByWatchers).toBe(r0);
    }
  });

  it('drains and barriers still work on a ring after self-woken ops (a self-wake never disables IOSQE_IO_DRAIN)', async () => {
    dir = tempDir('rm-deliv-');
    db = await rm.open({ dataDir: path.join(dir, 'data'), backend, arenaSize: 1 << 20 } as any);
    const f = await directFile(db, 'd');
    const s = db.allocate(4096);
    const wake0 = db._native().wakeInfo();
    // O_DIRECT reads: self-woken once one has gone asynchronous (on a fast device the first
    // ones may complete inside the enter and be reaped inline, with no message).
    for (let i = 0; i < 256; i++) {
      expect(await db.read(f, 4096 * (i % 4), s)).toBe(4096);
      if (i >= 3 && (!uring() || db._native().wakeInfo().selfWakes > wake0.selfWakes)) break;
    }
    if (uring()) expect(db._native().wakeInfo().selfWakes).toBeGreaterThan(wake0.selfWakes);
    // A drained op on the same ring, then a barrier over every ring: both must succeed.
    const [res] = await db.batch({ ring: 0 }).nop({ drain: true }).submit();
    expect(res.ok, String(res.error)).toBe(true);
    const w = await db.batch({ ring: 0 }).read(f, 0, s).drain().submit();
    expect(w[0].ok, String(w[0].error)).toBe(true);
    await db.barrier();
    expect(s.bytes[0]).toBe(1);
  });

  it('a busy issuer does not hold up a waiter in another process, who is woken directly', async () => {
    dir = tempDir('rm-deliv-');
    pm = await startPm(dir, { arenaSize: 1 << 20 });
    const f = await directFile(pm, 'd');
    const a = await worker();
    const b = await worker({ reaper: false });  // B reaps nothing: someone else takes A's CQE
    const word = pm.completionWord();
    const waiting = b.call('waitWordWake', { offset: word, timeoutMs: 20000 });
    await new Promise((r) => setTimeout(r, 100));  // B's wait is registered
    const busy = a.call('directReadBusy', { file: f.id, busyMs: 3000, word });
    const got = await waiting;
    expect(got.r).toBe(4096);
    expect(await settlesWithin(busy, 0)).toBe(false);  // A was still spinning when B resumed
    if (uring()) {
      expect(got.before.channel).toBe('ring');
      expect(got.after.doorbells).toBeGreaterThan(got.before.doorbells);  // its armed futex wait fired
    } else {
      expect(got.after.doorbells).toBeGreaterThan(got.before.doorbells);
    }
    expect((await busy).n).toBe(4096);
  });

  it("a process waiting on a completion word is woken by the shared ring's CQ signal itself, not only by a watcher's doorbell", async () => {
    dir = tempDir('rm-deliv-');
    pm = await startPm(dir, { arenaSize: 1 << 20, reaper: false });
    const a = await worker({ reaper: false });  // A's NOPs go to the reapers: the CQ signal is on
    const b = await worker();                    // B reaps: its watcher and, while it waits, its own JS thread
    let cqWakes = 0;
    let reapedByB = 0;
    const watcherReaps = () => pm!.stats().rings.reduce((n: number, r: { reapedByWatchers: number }) => n + r.reapedByWatchers, 0);
    const w0 = watcherReaps();
    for (let i = 0; i < 10; i++) {
      const word = pm.completionWord();
      const waiting = b.call('waitWordWake', { offset: word, timeoutMs: 20000 });
      await new Promise((r) => setTimeout(r, 20));  // B's wait is registered, its loop asleep
      expect(await a.call('nopWord', { offset: word })).toBe(true);
      const got = await waiting;
      expect(got.r).toBe(0);
      cqWakes += got.after.cqWakes - got.before.cqWakes;
      reapedByB += got.after.reapedHere - got.before.reapedHere;
    }
    if (uring()) {
      // Every NOP's CQE signalled the ring's eventfd, and B's poll on it fired: B's JS
      // thread was woken by the kernel, beside the one watcher the signal wakes (which of
      // the two then reaps is a race; together they took every NOP).
      expect(cqWakes).toBeGreaterThanOrEqual(10);
      expect(reapedByB + watcherReaps() - w0).toBeGreaterThanOrEqual(10);
    } else {
      expect(cqWakes).toBe(0);  // the threads backend has no CQ to poll
    }
  });

  it('a process that waits on nothing (its direct waits resolved or timed out) is not woken by other processes\' CQEs', async () => {
    dir = tempDir('rm-deliv-');
    pm = await startPm(dir, { arenaSize: 1 << 20, reaper: false });
    const a = await worker({ reaper: false });
    const inline = await worker();  // reaps its own NOP inside its enter: the CQ signal is off then
    const b = await worker();
    // Three ways a direct wait ends: the CQ poll fires, the wait times out, a doorbell.
    const w1 = pm.completionWord();
    const first = b.call('waitWordWake', { offset: w1, timeoutMs: 20000 });
    await new Promise((r) => setTimeout(r, 20));
    await a.call('nopWord', { offset: w1 });
    expect((await first).r).toBe(0);
    expect((await b.call('waitWordWake', { offset: pm.completionWord(), timeoutMs: 30 })).r).toBe('timeout');
    const w3 = pm.completionWord();
    const third = b.call('waitWordWake', { offset: w3, timeoutMs: 20000 });
    await new Promise((r) => setTimeout(r, 20));
    await inline.call('nopWord', { offset: w3 });
    expect((await third).r).toBe(0);
    await new Promise((r) => setTimeout(r, 20));
    // B waits on nothing now: A's IO (reaped by the watchers, which wake for it) and the
    // postmaster's wait on it do not wake B's JS thread.
    const before = await b.call('wakeInfo');
    for (let i = 0; i < 10; i++) {
      const word = pm.completionWord();
      const waiting = pm.waitCompletionWord(word, { timeoutMs: 20000 });
      expect(await a.call('nopWord', { offset: word })).toBe(true);
      expect(await waiting).toBe(0);
    }
    const after = await b.call('wakeInfo');
    expect(after.cqWakes).toBe(before.cqWakes);
    expect(after.doorbells).toBe(before.doorbells);
  });

  it("a waiter whose JS thread is busy does not hold up another process's IO: the watchers still reap it", async () => {
    dir = tempDir('rm-deliv-');
    pm = await startPm(dir, { arenaSize: 1 << 20, reaper: false });
    const a = await worker({ reaper: false });
    const b = await worker();  // the only reaping process; its JS thread spins with a direct wait registered
    const mine = pm.completionWord();
    const busy = b.call('waitWordBusy', { offset: mine, busyMs: 1500 });
    await new Promise((r) => setTimeout(r, 100));  // B registered its wait and spins
    const other = pm.completionWord();
    const waiting = pm.waitCompletionWord(other, { timeoutMs: 20000 });
    expect(await a.call('nopWord', { offset: other })).toBe(true);  // reaped by B's watcher, which rang A
    expect(await waiting).toBe(0);
    expect(await settlesWithin(busy, 0)).toBe(false);  // B was still spinning
    expect(await a.call('nopWord', { offset: mine })).toBe(true);
    expect(await busy).toBe(0);
  });

  it("a process reaps its own rings' completions (its flush, its wake, its sweep), never another process's home ring's", async () => {
    dir = tempDir('rm-deliv-');
    pm = await startPm(dir, { arenaSize: 1 << 20, rings: 2 });
    if (!uring()) return;  // the threads backend has no rings to reap
    const f = await directFile(pm, 'd');
    const cached = await pm.files.open('c', { create: true });
    await pm.write(cached, 0, Buffer.alloc(4096, 9));
    const a = await worker();
    const aSlot = (await a.call('info')).slot;
    expect((await a.call('info')).homeRing).toBe(1);
    expect(pm._native().info().homeRing).toBe(0);
    const other0 = pm.stats().processes.find((p) => p.slot === aSlot)!.completedByOther;
    // A's O_DIRECT read completes while A's JS spins: its CQE waits in ring 1 for A (it has
    // its self-wake; no watcher is asked to reap it, and one takes entries nobody demands
    // only after a second of sweeps).
    const busy = a.call('directReadBusy', { file: f.id, busyMs: 400 });
    await new Promise((r) => setTimeout(r, 100));
    // Meanwhile this process reads from the page cache on ring 0: each flush reaps inline.
    const s = pm.allocate(4096);
    for (let i = 0; i < 20; i++) expect(await pm.read(cached, 0, s)).toBe(4096);
    expect((await busy).n).toBe(4096);
    // A took its completion itself: nobody reaped it for A and rang A's doorbell.
    expect(pm.stats().processes.find((p) => p.slot === aSlot)!.completedByOther).toBe(other0);
  });

  it('a postmaster started with reaper: false and no process that reaps still completes its IO (its sweep reaps a ring nobody took) and takes its shutdown checkpoint', async () => {
    dir = tempDir('rm-deliv-');
    pm = await startPm(dir, { arenaSize: 1 << 20, reaper: false, bufferPool: { pages: 8, pageSize: 4096 } });
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => { if (w.code) warnings.push(w.code); };
    process.on('warning', onWarning);
    try {
      const f = await pm.files.open('d', { create: true });
      const s = pm.allocate(4096);
      s.bytes.fill(0);  // an all-zero page: valid for the pool without a checksum
      // Nobody else is attached to reap it: before the backstop, this never settled.
      const write = pm.write(f, 0, s.bytes);
      expect(await settlesWithin(write, 10000)).toBe(true);
      expect(await write).toBe(4096);
      const b = await pm.buffers.read(f, 0);
      expect(b.page[0]).toBe(0);
      await b.lockExclusive();
      b.page.fill(5);
      b.markDirty();
      b.release();
      if (uring()) expect(pm._native().wakeInfo().stalledReaps).toBeGreaterThan(0);
      const stopped = pm.stop({ timeoutMs: 10000 });
      pm = undefined;
      await stopped;
      await new Promise((r) => setImmediate(r));
      expect(warnings).not.toContain('RINGMASTER_NO_SHUTDOWN_CHECKPOINT');
      const data = readFileSync(path.join(dir, 'data', 'd'));
      expect(data[0]).toBe(5);  // the dirty page reached the file at stop
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('a doorbell rung while the woken environment runs JS (before it re-arms its wait) is delivered as that JS returns, not by the sweep', async () => {
    dir = tempDir('rm-deliv-');
    pm = await startPm(dir, { arenaSize: 1 << 20 });
    const a = await worker();
    const w1 = pm.completionWord();
    const w2 = pm.completionWord();
    let sweepsAfterFirst = -1;
    let setWhileFirstRan = false;
    const second = pm.waitCompletionWord(w2, { timeoutMs: 20000 }).then((r) => ({ r, sweeps: pm!._native().wakeInfo().sweeps }));
    const first = pm.waitCompletionWord(w1, { timeoutMs: 20000 }).then(() => {
      // Still inside the delivery of w1: A completes w2 and rings this environment now.
      const done = a.call('nopWord', { offset: w2 });
      done.catch(() => {});
      const end = Date.now() + 15000;
      while (pm!.completionWordResult(w2) === undefined && Date.now() < end) { /* JS that does not yield */ }
      setWhileFirstRan = pm!.completionWordResult(w2) !== undefined;
      sweepsAfterFirst = pm!._native().wakeInfo().sweeps;
      return done;
    });
    await new Promise((r) => setTimeout(r, 50));  // both waits registered, the loop asleep
    expect(await a.call('nopWord', { offset: w1 })).toBe(true);
    expect(await first).toBe(true);
    expect(setWhileFirstRan).toBe(true);
    const got = await second;
    expect(got.r).toBe(0);
    // Seen by the scan after the re-arm, before the loop could run the 250 ms sweep.
    expect(got.sweeps).toBe(sweepsAfterFirst);
  });

  it.runIf(backend !== 'threads')('the issuer killed between the kernel posting its CQE and its loop reaping it: the IO is reaped by another process and reported', async () => {
    dir = tempDir('rm-deliv-');
    pm = await startPm(dir, { arenaSize: 1 << 20 });
    const f = await directFile(pm, 'd');
    const exits: any[] = [];
    pm.on('exit', (e) => exits.push(e));
    // A submits to its home ring (slot % rings): count over every ring. After `before` only
    // A does IO, so any CQE reaped by a watcher or by the postmaster's own loop is A's.
    // Which one reaps it is a race: a watcher after cleanup orphans the handle (counted as
    // an orphan reaped), or the postmaster's 250 ms sweep in the window between A's death
    // and the postmaster learning of it (delivered to A's slot, freed by its cleanup).
    const reapedByOthers = () =>
      pm!.stats().rings.reduce((n: number, r: { orphansReaped: number; reapedByWatchers: number }) => n + r.orphansReaped + r.reapedByWatchers, 0) +
      pm!._native().wakeInfo().reapedHere;
    // The window is A's own: when the read completes before A's submitting enter returns
    // (a device that answers within the enter), A reaps the CQE in its submit path and dies
    // at its next wake with nothing left to reap. Then the scenario did not happen: try
    // again with a new A (at most 5 tries; it must happen in one).
    let reapedElsewhere = false;
    for (let attempt = 0; attempt < 5 && !reapedElsewhere; attempt++) {
      const a = await worker();
      const before = reapedByOthers();
      // A's loop dies as it wakes for its read's completion: the CQE is in the shared CQ,
      // posted in A's own task context, and nobody has reaped it.
      expect(pm._native().debugKillPoint('wake-before-reap', { pid: a.pid })).toBe(true);
      a.call('directReadBusy', { file: f.id, busyMs: 0 }).catch(() => {});
      expect((await a.exited).signal).toBe('SIGKILL');
      expect(pm._native().debugKillPointFired('wake-before-reap')).toBe(1);
      await waitFor(() => exits.length === attempt + 1, 10000, "cleanup of A's slot");
      expect(exits[attempt].slotsCleaned).toBe(1);
      // Its orphaned handle is reaped (the orphan demands a watcher) and freed.
      await waitFor(() => pm!.handlesInUse() === 0, 10000, 'the orphan to be reaped');
      reapedElsewhere = reapedByOthers() > before;
    }
    expect(reapedElsewhere).toBe(true);
    pm._native().debugKillPoint('wake-before-reap', null);
  });
});

describe('submission: the ops of one turn go to the kernel together', () => {
  it('16 reads started in one turn take one io_uring_enter', async () => {
    dir = tempDir('rm-deliv-');
    db = await rm.open({ dataDir: path.join(dir, 'data'), backend } as any);
    const f = await db.files.open('x', { create: true });
    await db.write(f, 0, Buffer.alloc(65536, 7));
    const enters0 = uring() ? db.stats().rings[0].enters : 0;
    const bufs = Array.from({ length: 16 }, () => new Uint8Array(4096));
    const n = await Promise.all(bufs.map((b, i) => db!.read(f, i * 4096, b)));
    expect(n.every((x) => x === 4096)).toBe(true);
    expect(bufs.every((b) => b[0] === 7 && b[4095] === 7)).toBe(true);
    if (uring()) expect(db.stats().rings[0].enters - enters0).toBe(1);
  });

  it('thousands of ops staged in one tick, more than there are IO handles: all complete, in few enters', async () => {
    dir = tempDir('rm-deliv-');
    db = await rm.open({ dataDir: path.join(dir, 'data'), backend, ringEntries: 64 } as any);
    const f = await db.files.open('x', { create: true });
    const N = 4000;
    const src = Buffer.alloc(N * 8);
    for (let i = 0; i < N; i++) src.writeUInt32LE(i, i * 8);
    await db.write(f, 0, src);
    const enters0 = uring() ? db.stats().rings[0].enters : 0;
    const outs = Array.from({ length: N }, () => new Uint8Array(8));
    const reads = outs.map((o, i) => db!.read(f, i * 8, o));  // one synchronous loop: one turn
    const batches = Array.from({ length: 100 }, (_, i) => db!.batch().nop().write(f, N * 8 + i * 4, Buffer.from('BBBB')).submit());
    const got = await Promise.all(reads);
    const br = await Promise.all(batches);
    expect(got.every((x) => x === 8)).toBe(true);
    for (let i = 0; i < N; i++) expect(Buffer.from(outs[i]).readUInt32LE(0)).toBe(i);
    expect(br.every((r) => r.length === 2 && r.every((x) => x.ok))).toBe(true);
    expect(readFileSync(path.join(db.info.dataDir, 'x')).subarray(N * 8).toString()).toBe('BBBB'.repeat(100));
    if (uring()) {
      // 64 handles: each enter carries up to a ring's worth, more flushes follow completions.
      const enters = db.stats().rings[0].enters - enters0;
      expect(enters).toBeLessThan(N / 8);
    }
    expect(db.handlesInUse()).toBe(0);
  });

  it('a ring full in the middle of a turn: chains are never split, links never cross batches, everything lands', async () => {
    dir = tempDir('rm-deliv-');
    db = await rm.open({ dataDir: path.join(dir, 'data'), backend, ringEntries: 8 } as any);
    const f = await db.files.open('x', { create: true });
    const ro = await db.files.open('x', { readOnly: true });
    // 30 chains write -> write -> fdatasync and, in between, a batch whose last op asks
    // to link on and whose write fails: the next batch must run regardless. All in one
    // turn, on an 8-entry ring (the single ops carry self-wakes where they pay off).
    const chains: Promise<import('../../core/index').IoResult[]>[] = [];
    const loners: Promise<import('../../core/index').IoResult[]>[] = [];
    for (let i = 0; i < 30; i++) {
      chains.push(db.batch().write(f, i * 8, Buffer.from(`a${String(i).padStart(3, '0')}`), { link: true })
        .write(f, i * 8 + 4, Buffer.from(`b${String(i).padStart(3, '0')}`), { link: true }).fdatasync(f).submit());
      loners.push(db.batch().write(ro, 1000 + i, Buffer.from('X')).link().submit());  // EBADF, "linked" past its batch
      loners.push(db.batch().write(f, 2000 + i, Buffer.from('Y')).submit());          // must not be cancelled
    }
    // An 8-op chain: a whole SQ for one submit.
    const long = db.batch();
    for (let k = 0; k < 8; k++) long.write(f, 3000 + k, Buffer.from('L'), { link: k < 7 });
    const longRes = long.submit();
    const cr = await Promise.all(chains);
    const lr = await Promise.all(loners);
    expect(cr.every((r) => r.every((x) => x.ok))).toBe(true);
    for (let i = 0; i < 30; i += 2) {
      expect(lr[i][0]).toMatchObject({ ok: false });
      expect(lr[i][0].error).toMatchObject({ code: 'EBADF' });
      expect(lr[i + 1][0]).toMatchObject({ ok: true, result: 1 });
    }
    expect((await longRes).every((x) => x.ok)).toBe(true);
    const data = readFileSync(path.join(db.info.dataDir, 'x'));
    for (let i = 0; i < 30; i++) expect(data.subarray(i * 8, i * 8 + 8).toString()).toBe(`a${String(i).padStart(3, '0')}b${String(i).padStart(3, '0')}`);
    expect(data.subarray(2000, 2030).toString()).toBe('Y'.repeat(30));
    expect(data.subarray(3000, 3008).toString()).toBe('L'.repeat(8));
    expect(db.handlesInUse()).toBe(0);
  });

  it('a batch refused by validation is rejected alone; the ops staged with it in the same turn go', async () => {
    dir = tempDir('rm-deliv-');
    db = await rm.open({ dataDir: path.join(dir, 'data'), backend } as any);
    const f = await db.files.open('x', { create: true });
    const before = db.write(f, 0, Buffer.from('1'));
    const bad = db.batch().write(f, 1, Buffer.from('2')).write(f, 2, { offset: 2 ** 40, length: 1 } as any).submit()
      .then(() => 'resolved', (e) => e);
    const after = db.write(f, 3, Buffer.from('4'));
    expect(await before).toBe(1);
    expect(await bad).toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    expect(await after).toBe(1);
    const data = readFileSync(path.join(db.info.dataDir, 'x'));
    expect(data[1]).toBe(0);  // nothing of the refused batch was submitted
    expect(data.subarray(0, 1).toString() + data.subarray(3, 4).toString()).toBe('14');
  });

  // The flush collects the environment's other completions before it finds a batch invalid: those must still settle.
  it('an op in flight whose completion a flush collects while refusing a batch still settles', async () => {
    dir = tempDir('rm-deliv-');
    db = await rm.open({ dataDir: path.join(dir, 'data'), backend, bufferPool: { pages: 16, pageSize: 8192 } } as any);
    const f = await db.files.open('x', { create: true });
    const sync = db.fdatasync(f);  // completes in a kernel worker, after its flush
    // A pool read submits at once (flushing the fdatasync with it) and fails: the block is past the end.
    await expect(db.buffers.read(f, 7)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_PAST_EOF' });
    const next = db.fdatasync(f);
    const bad = db.batch().nop({ completionWord: 1 }).submit();  // refused: not a word's alignment
    await expect(bad).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await next;
    expect(await settlesWithin(sync, 10000)).toBe(true);
    await sync;
    expect(db.handlesInUse()).toBe(0);
  });

  it('an op started just before the postmaster stops goes out before the segment refuses new IO', async () => {
    dir = tempDir('rm-deliv-');
    pm = await startPm(dir);
    const f = await pm.files.open('x', { create: true });
    const w = pm.write(f, 0, Buffer.from('in time'));
    const stopped = pm.stop();
    expect(await w).toBe(7);
    await stopped;
    pm = undefined;
  });
});
