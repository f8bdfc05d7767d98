// Real forked processes sharing the postmaster's rings over real files.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import cluster from 'node:cluster';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker as ThreadWorker } from 'node:worker_threads';
import { Worker, WORKER, addon, forkAttached, forkWorker, killWorkers, removeDir, settlesWithin, startPm, tempDir, waitFor } from '../helpers';

let dir: string;
let pm: import('../../core/index').Postmaster;
const workers: Worker[] = [];

async function spawn(options: { reaper?: boolean } = {}): Promise<Worker> {
  const w = await forkWorker(pm, options);
  workers.push(w);
  return w;
}

beforeEach(async () => {
  dir = tempDir();
  pm = await startPm(dir);
});
afterEach(async () => {
  await killWorkers(workers);
  await pm.stop({ timeoutMs: 2000 });
  removeDir(dir);
});

const isUring = () => pm.features.backend === 'io_uring';

describe('forked workers', () => {
  it('two forked workers and a worker thread use the same ring at once', async () => {
    const f = await pm.files.open('shared.dat', { create: true });
    const [a, b] = [await spawn(), await spawn()];
    const n = 200;
    const job = (w: Worker, tag: string, base: number) => {
      const ops = [];
      for (let i = 0; i < n; i++) ops.push({ op: 'write', file: f.id, offset: base + i * 7, data: `${tag}${String(i).padStart(6, '0')}` });
      const chunks = [];
      for (let i = 0; i < ops.length; i += 50) chunks.push(w.call('batch', { ops: ops.slice(i, i + 50) }));
      return Promise.all(chunks);
    };
    const thread = new ThreadWorker(path.join(__dirname, '..', 'fixtures', 'thread.cjs'), {
      workerData: { token: pm.threadToken(), fileId: f.id, base: 2 * n * 7, n, tag: 'T' },
    });
    const threadDone = new Promise<any>((resolve) => thread.once('message', resolve));
    const [ra, rb, rt] = await Promise.all([job(a, 'A', 0), job(b, 'B', n * 7), threadDone]);
    expect(rt.error).toBeUndefined();
    expect(ra.flat().every((r: any) => r.ok)).toBe(true);
    expect(rb.flat().every((r: any) => r.ok)).toBe(true);
    const content = readFileSync(path.join(pm.dataDir, 'shared.dat')).toString();
    for (let i = 0; i < n; i++) {
      expect(content.substr(i * 7, 7)).toBe(`A${String(i).padStart(6, '0')}`);
      expect(content.substr(n * 7 + i * 7, 7)).toBe(`B${String(i).padStart(6, '0')}`);
      expect(content.substr(2 * n * 7 + i * 7, 7)).toBe(`T${String(i).padStart(6, '0')}`);
    }
    const slots = new Set([pm.slot, (await a.call('stats')).processes.length >= 3 ? 'ok' : 'few']);
    expect(slots.has('ok')).toBe(true);
    await thread.terminate();
  });

  it('a worker uses a registered file it never opened itself', async () => {
    const f = await pm.files.open('fixed.dat', { create: true });
    const w = await spawn();
    expect(await w.call('write', { file: f.id, offset: 10, data: 'from-worker' })).toBe(11);
    expect(readFileSync(path.join(pm.dataDir, 'fixed.dat')).subarray(10).toString()).toBe('from-worker');
    expect(await w.call('read', { file: f.id, offset: 10, length: 11 })).toBe('from-worker');
  });

  it('a worker writes and reads through arena memory (fixed buffers, address translated when needed)', async () => {
    const f = await pm.files.open('arena.dat', { create: true });
    const w = await spawn();
    const payload = 'x'.repeat(3000) + 'END';
    expect(await w.call('write', { file: f.id, offset: 0, data: payload, arena: true })).toBe(payload.length);
    expect(await w.call('read', { file: f.id, offset: 0, length: payload.length, arena: true })).toBe(payload);
    expect(readFileSync(path.join(pm.dataDir, 'arena.dat')).toString()).toBe(payload);
  });

  it('a worker mapped at another address still does arena IO (fixed buffers by the registrant\'s address)', async () => {
    const f = await pm.files.open('translated.dat', { create: true });
    const w = new Worker(pm.fork(WORKER, [], { env: { ...process.env, RINGMASTER_FORCE_TRANSLATION: '1' } }));
    workers.push(w);
    await w.ready;
    const info = await w.call('attach');
    expect(info.sameAddress).toBe(false);
    const payload = 'translated-' + 'y'.repeat(5000);
    expect(await w.call('write', { file: f.id, offset: 4096, data: payload, arena: true })).toBe(payload.length);
    expect(await w.call('read', { file: f.id, offset: 4096, length: payload.length, arena: true })).toBe(payload);
    expect(readFileSync(path.join(pm.dataDir, 'translated.dat')).subarray(4096).toString()).toBe(payload);
  });

  it('a chain write(WAL) -> fdatasync -> write(data) submitted by a worker completes in order', async () => {
    const wal = await pm.files.open('wal', { create: true });
    const data = await pm.files.open('data', { create: true });
    const w = await spawn();
    const r = await w.call('batch', {
      ops: [
        { op: 'write', file: wal.id, offset: 0, data: 'WALREC', opts: { link: true } },
        { op: 'fdatasync', file: wal.id, opts: { link: true } },
        { op: 'write', file: data.id, offset: 0, data: 'PAGE', opts: { link: true } },
        { op: 'read', file: data.id, offset: 0, length: 4 },
      ],
    });
    expect(r.map((x: any) => x.ok)).toEqual([true, true, true, true]);
    expect(r[3].data).toBe('PAGE');
  });

  it('a failing first op of a worker chain cancels the rest with ECANCELED', async () => {
    await pm.files.open('ro', { create: true });
    const ro = await pm.files.open('ro', { readOnly: true });
    const data = await pm.files.open('data2', { create: true });
    const w = await spawn();
    const r = await w.call('batch', {
      ops: [
        { op: 'write', file: ro.id, offset: 0, data: 'x', opts: { link: true } },
        { op: 'fdatasync', file: ro.id, opts: { link: true } },
        { op: 'write', file: data.id, offset: 0, data: 'never' },
      ],
    });
    expect(r[0]).toMatchObject({ ok: false, code: 'EBADF' });
    expect(r[1]).toMatchObject({ ok: false, code: 'ECANCELED', name: 'IoCancelledError' });
    expect(r[2]).toMatchObject({ ok: false, code: 'ECANCELED', name: 'IoCancelledError' });
    expect(readFileSync(path.join(pm.dataDir, 'data2')).length).toBe(0);
  });

  it('a hardlinked chain in a worker continues after a failure', async () => {
    await pm.files.open('ro3', { create: true });
    const ro = await pm.files.open('ro3', { readOnly: true });
    const data = await pm.files.open('data3', { create: true });
    const w = await spawn();
    const r = await w.call('batch', {
      ops: [
        { op: 'write', file: ro.id, offset: 0, data: 'x', opts: { hardlink: true } },
        { op: 'write', file: data.id, offset: 0, data: 'ran' },
      ],
    });
    expect(r[0].ok).toBe(false);
    expect(r[1].ok).toBe(true);
  });

  it('process B reaps an IO that process A submitted, and A\'s promise resolves', async () => {
    const f = await pm.files.open('reap.dat', { create: true });
    const a = await spawn({ reaper: false });  // A runs no watcher: someone else must reap
    const b = await spawn({ reaper: true });
    const before = (await b.call('stats')).processes.find((p: any) => p.pid === b.pid);
    const r = await a.call('batch', { ops: [{ op: 'write', file: f.id, offset: 0, data: 'reaped elsewhere' }] });
    expect(r[0].ok).toBe(true);
    const aSlot = (await a.call('stats')).processes.find((p: any) => p.pid === a.pid).slot;
    if (isUring()) {
      expect(r[0].reapedBy).not.toBe(aSlot);  // the postmaster's or B's watcher reaped it
      const procs = (await b.call('stats')).processes;
      const reapers = procs.filter((p: any) => p.pid !== a.pid).reduce((s: number, p: any) => s + p.reaped, 0);
      expect(reapers).toBeGreaterThan(before ? 0 : -1);
      expect(procs.find((p: any) => p.pid === a.pid).completedByOther).toBeGreaterThanOrEqual(1);
    } else {
      expect(r[0].reapedBy).toBe(aSlot);  // threads backend: the issuer's own pool completes its IO
    }
  });

  it('a worker whose JS thread is busy does not delay its IO completing for others', async () => {
    const fifo = path.join(pm.dataDir, 'fifo');
    execFileSync('mkfifo', ['-m', '0600', fifo]);
    const f = await pm.files.open('fifo');
    const a = await spawn();
    const word = pm.completionWord();
    const ticket = await a.call('start', { ops: [{ op: 'read', file: f.id, offset: 0, length: 5, opts: { completionWord: word } }] });
    const busy = a.call('busy', { ms: 4000 });  // A's JS thread now never yields
    await new Promise((r) => setTimeout(r, 100));
    writeFileSync(fifo, 'hello');  // the read can complete now
    await waitFor(() => pm.completionWordResult(word) !== undefined, 10000, 'completion word');
    expect(pm.completionWordResult(word)).toBe(5);
    expect(await settlesWithin(busy, 0)).toBe(false);  // ...and A was still busy when it did
    await busy;
    const r = await a.call('await', { ticket });
    expect(r[0]).toMatchObject({ ok: true, result: 5, data: 'hello' });
  });

  it('a third process awaiting a completion word wakes when another process\'s IO completes', async () => {
    const fifo = path.join(pm.dataDir, 'fifo4');
    execFileSync('mkfifo', ['-m', '0600', fifo]);
    const f = await pm.files.open('fifo4');
    const [a, c] = [await spawn(), await spawn()];
    const word = pm.completionWord();
    await a.call('start', { ops: [{ op: 'read', file: f.id, offset: 0, length: 3, opts: { completionWord: word } }] });
    const waiterC = c.call('waitWord', { offset: word, timeoutMs: 15000 });
    const waiterPm = pm.waitCompletionWord(word, { timeoutMs: 15000 });
    expect(await settlesWithin(waiterC, 200)).toBe(false);  // nothing completed yet
    writeFileSync(fifo, 'xyz');
    expect(await waiterC).toBe(3);
    expect(await waiterPm).toBe(3);
  });

  it('waitCompletionWord resolves undefined after its timeout, and leaves nothing behind', async () => {
    const w = pm.completionWord();
    expect(await pm.waitCompletionWord(w, { timeoutMs: 50 })).toBeUndefined();
  });

  it('a wait with a shorter timeout than one already pending times out first', async () => {
    // The environment's waits share one timer armed for the earliest deadline: a later,
    // shorter wait must move it forward.
    const long = pm.waitCompletionWord(pm.completionWord(), { timeoutMs: 60000 });
    expect(await pm.waitCompletionWord(pm.completionWord(), { timeoutMs: 50 })).toBeUndefined();
    expect(await settlesWithin(long, 100)).toBe(false);
  });

  it('a wait woken before its timeout leaves no referenced timer behind', async () => {
    const refTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = refTimers();
    const w = pm.completionWord();
    const waiting = pm.waitCompletionWord(w, { timeoutMs: 60000 });
    await pm.batch().nop({ completionWord: w }).submit();
    expect(await waiting).toBe(0);
    // A timer still armed for the deadline would keep the process alive for a minute.
    expect(refTimers()).toBe(before);
  });

  it('wakeSliceUs: a forked worker\'s JS thread and watcher threads ask for the slice, inherited from the postmaster or given to attach()', async () => {
    // Custom EEVDF slices (sched_setattr's sched_runtime on SCHED_OTHER) came in Linux 6.12.
    const [maj, min] = os.release().split('.').map(Number);
    if (maj < 6 || (maj === 6 && min < 12)) return;
    const sliced = (threads: { tid: number; slice: number | null }[]) => threads.filter((t) => t.slice === 100000).map((t) => t.tid);
    const plain = await spawn();
    const plainSlices = await plain.call('slices');
    if (plainSlices.every((t: { slice: number | null }) => t.slice === null)) return;  // se.slice not shown
    expect(sliced(plainSlices)).toEqual([]);  // the default: the kernel's slice everywhere
    const w = await forkAttached(pm, WORKER, { attach: { wakeSliceUs: 100 }, into: workers });
    const threads = await w.call('slices');
    // The JS thread (tid = pid) and this process's watcher threads, not libuv's or V8's.
    expect(sliced(threads)).toContain(w.pid);
    expect(sliced(threads).length).toBeGreaterThanOrEqual(isUring() ? 2 : 1);
    expect(sliced(threads).length).toBeLessThan(threads.length);
    // Inherited: a postmaster started with the option hands it to its forked workers.
    const dir2 = tempDir();
    const pm2 = await startPm(dir2, { wakeSliceUs: 100 });
    try {
      const own = readFileSync('/proc/self/sched', 'utf8');
      expect(/se\.slice\s*:\s*(\d+)/.exec(own)?.[1]).toBe('100000');
      const child = await forkWorker(pm2);
      workers.push(child);
      expect(sliced(await child.call('slices'))).toContain(child.pid);
    } finally {
      await killWorkers(workers);
      await pm2.stop({ timeoutMs: 2000 });
      removeDir(dir2);
      addon.setWakeSlice(0, true);  // this test process's threads back to the kernel's slice
    }
  });

  it('drain waits for IO in flight from another process on the same ring', async () => {
    const fifo = path.join(pm.dataDir, 'fifo2');
    execFileSync('mkfifo', ['-m', '0600', fifo]);
    const ff = await pm.files.open('fifo2');
    const d = await pm.files.open('drained.dat', { create: true });
    const a = await spawn();
    const b = await spawn();
    // A drain is ring-wide: both processes name ring 0 (their home rings may differ).
    const ticket = await a.call('start', { ops: [{ op: 'read', file: ff.id, offset: 0, length: 3 }], ring: 0 });
    await new Promise((r) => setTimeout(r, 100));
    const drained = b.call('batch', { ops: [{ op: 'write', file: d.id, offset: 0, data: 'after', opts: { drain: true } }], ring: 0 });
    expect(await settlesWithin(drained, 500)).toBe(false);  // held back by A's pending read
    writeFileSync(fifo, 'abc');
    const ra = await a.call('await', { ticket });
    const rb = await drained;
    expect(ra[0]).toMatchObject({ ok: true, data: 'abc' });
    expect(rb[0]).toMatchObject({ ok: true, result: 5 });
  });

  it('barrier() waits for IO in flight on every ring; a drain on another ring does not', async () => {
    const dir2 = tempDir('rm-barrier-');
    const pm2 = await startPm(dir2, { rings: 2 });
    try {
      const fifo = path.join(pm2.dataDir, 'fifo3');
      execFileSync('mkfifo', ['-m', '0600', fifo]);
      const ff = await pm2.files.open('fifo3');
      const read = pm2.batch({ ring: 1 }).read(ff, 0, new Uint8Array(3)).submit();
      await new Promise((r) => setTimeout(r, 50));
      const other = pm2.batch({ ring: 0 }).nop({ drain: true }).submit();
      if (pm2.features.backend === 'io_uring') expect((await other)[0].ok).toBe(true);  // ring 0 has nothing in flight
      const barrier = pm2.barrier();
      expect(await settlesWithin(barrier, 300)).toBe(false);  // held back by ring 1's pending read
      writeFileSync(fifo, 'xyz');
      await barrier;
      expect((await read)[0]).toMatchObject({ ok: true, result: 3 });
      await other;
    } finally {
      await pm2.stop();
      removeDir(dir2);
    }
  });

  it('a cluster worker attaches through pm.clusterFork', async () => {
    const f = await pm.files.open('cluster.dat', { create: true });
    cluster.setupPrimary({ exec: WORKER });
    const cw = pm.clusterFork(cluster);
    const w = new Worker(cw.process);
    workers.push(w);
    await w.ready;
    await w.call('attach');
    expect(await w.call('write', { file: f.id, offset: 0, data: 'clustered' })).toBe(9);
    expect(readFileSync(path.join(pm.dataDir, 'cluster.dat')).toString()).toBe('clustered');
  });

  it('IO of 4 workers interleaved with the postmaster\'s own IO all lands', async () => {
    const f = await pm.files.open('mix.dat', { create: true });
    const ws = await Promise.all([spawn(), spawn(), spawn(), spawn()]);
    const jobs = ws.map((w, k) => {
      const ops = [];
      for (let i = 0; i < 64; i++) ops.push({ op: 'write', file: f.id, offset: (k * 64 + i) * 4, data: String(k * 64 + i).padStart(4, '0') });
      return w.call('batch', { ops });
    });
    const own = [];
    for (let i = 0; i < 64; i++) own.push(pm.write(f, (256 + i) * 4, Buffer.from(String(256 + i).padStart(4, '0'))));
    await Promise.all([...jobs, ...own]);
    const c = readFileSync(path.join(pm.dataDir, 'mix.dat')).toString();
    for (let i = 0; i < 320; i++) expect(c.substr(i * 4, 4)).toBe(String(i).padStart(4, '0'));
    expect(pm.handlesInUse()).toBe(0);
  });
});
