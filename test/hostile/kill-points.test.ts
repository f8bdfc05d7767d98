// Named kill points (RINGMASTER_TEST_HOOKS=1): a process SIGKILLs itself at an exact
// instruction of the submit, reap, WAL flush or checkpoint path. Each test: the process
// dies there, the survivors keep working, nothing leaks, nothing is reported durable
// that is not, and recovery finds every acknowledged record.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker, backend, forkAttached, forkCrashHost, forkWorker, killWorkers, pageImage, powerCut, removeDir, rm, settlesWithin, startPm, tempDir, untilAcks, waitFor } from '../helpers';

const uring = () => pm.features.backend === 'io_uring';
let dir: string;
let pm: import('../../core/index').Postmaster;
const workers: Worker[] = [];
const exits: import('../../core/index').ProcessExit[] = [];

beforeEach(() => {
  dir = tempDir('rm-killpt-');
  exits.length = 0;
});
afterEach(async () => {
  await killWorkers(workers);
  await pm?.stop({ timeoutMs: 2000 });
  removeDir(dir);
});

async function start(extra: Record<string, unknown> = {}): Promise<void> {
  pm = await startPm(dir, extra);
  pm.on('exit', (e) => exits.push(e));
}

async function spawn(fixture?: string): Promise<Worker> {
  let w: Worker;
  if (fixture) {
    w = await forkAttached(pm, path.join(__dirname, '..', 'fixtures', fixture));
  } else {
    w = await forkWorker(pm);
  }
  workers.push(w);
  return w;
}

/** `w` must die by SIGKILL at kill point `name` (not earlier, not elsewhere) and be cleaned up. */
async function diedAt(w: Worker, name: string, call: Promise<unknown>): Promise<void> {
  await expect(call).rejects.toThrow(/exited/);
  expect(await w.exited).toMatchObject({ signal: 'SIGKILL' });
  expect(pm._native().debugKillPointFired(name as any)).toBe(1);
  await waitFor(() => exits.some((e) => e.pid === w.pid), 5000, 'the exit event and slot cleanup');
}

describe('kill points: submission and completion', () => {
  it('unknown kill point names are a typed error', async () => {
    await start();
    expect(() => pm._native().debugKillPoint('nowhere' as any, {})).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => pm._native().killPoint('nowhere' as any)).toThrow(/unknown kill point/);
    expect(pm._native().killPoint('wal-written', true)).toBe(false);  // not armed: never dies
  });

  for (const point of ['handles-reserved', 'sqes-reserved', 'sqe-prepared', 'sqes-published'] as const) {
    // 'sqe-prepared' is in the io_uring submit path only (the threads backend writes no SQE).
    it.runIf(point !== 'sqe-prepared' || backend !== 'threads')(`a worker dies at '${point}': its handles are freed, nothing it prepared runs later, the others keep submitting`, async () => {
      await start();
      const f = await pm.files.open('kp.dat', { create: true });
      const [a, b] = [await spawn(), await spawn()];
      expect(pm._native().debugKillPoint(point, { pid: a.pid })).toBe(true);
      await diedAt(a, point, a.call('write', { file: f.id, offset: 0, data: 'DEAD-WRITE' }));
      // The survivor and the postmaster: the ring (and on io_uring the submission lock
      // the dead process held) works for everyone.
      const r = await b.call('batch', { ops: Array.from({ length: 20 }, (_, i) => ({ op: 'write', file: f.id, offset: 100 + i * 4, data: `b${String(i).padStart(3, '0')}` })) });
      expect(r.every((x: any) => x.ok)).toBe(true);
      expect(await pm.write(f, 4096, Buffer.from('pm'))).toBe(2);
      // A barrier (a drain on every ring) waits for everything submitted before it: a dead
      // process's half submission must not hold it forever (tb_inflight / an unsubmitted
      // SQE). It also takes the dead process's ring lock, whatever its home ring.
      await pm.barrier();
      await waitFor(() => pm.handlesInUse() === 0, 5000, 'every handle to be free');
      const content = readFileSync(path.join(pm.dataDir, f.path)).toString('latin1');
      if (uring() && point !== 'handles-reserved') {
        // Never submitted under another process's identity (whoever calls io_uring_enter
        // submits every published SQE as itself): the next lock holder repaired the
        // dead one's intent.
        expect(pm.stats().rings.reduce((n: number, x: any) => n + x.submitLockRepairs, 0)).toBeGreaterThanOrEqual(1);
      }
      if (point === 'handles-reserved' || uring()) expect(content.startsWith('DEAD-WRITE')).toBe(false);
    });
  }

  // The window between counting an SQE in the submission intent and marking its handle
  // SUBMITTED (found by the mixed kill soak): with the old order (mark, then count) the
  // handle stayed SUBMITTED with no SQE the repair knew of, nothing ever completed it, and
  // the pool read it carried stayed io-in-progress for the dead pid forever.
  it.runIf(backend !== 'threads')("a worker dies at 'sqe-prepared' in a pool read: the read claim ends, its handle frees, the page reads", async () => {
    await start({ bufferPool: { pages: 16, pageSize: 4096 } });
    const f = await pm.files.open('d', { create: true });
    writeFileSync(path.join(pm.dataDir, 'd'), Buffer.concat([1, 2, 3, 4].map((v) => pageImage(v))));
    const a = await spawn('bufferpool-worker.cjs');
    expect(pm._native().debugKillPoint('sqe-prepared', { pid: a.pid })).toBe(true);
    await diedAt(a, 'sqe-prepared', a.call('read', { file: f.id, block: 2 }));
    await waitFor(() => pm.buffers.ioInProgress().length === 0, 5000, "the dead reader's claim to end");
    const b = await pm.buffers.read(f.id, 2);
    try {
      expect(b.page[100]).toBe(3);
    } finally {
      b.release();
    }
    // A barrier takes every ring's submission lock, the dead reader's too: the repair
    // runs and finds the counted SQE's handle no longer SUBMITTED (not a corruption).
    await pm.barrier();
    expect(pm.stats().rings.reduce((n: number, x: any) => n + x.submitLockRepairs, 0)).toBeGreaterThanOrEqual(1);
    await waitFor(() => pm.handlesInUse() === 0, 5000, 'every handle to be free');
    expect(pm.stats().corruptReports).toBe(0);
  });

  // Threads backend: a chain counted toward drains is counted once, in its slot's own
  // count. With a second, global count a worker killed between the two increments left
  // that one a chain too high for good, and every later drain (a barrier) waited forever.
  it.runIf(backend === 'threads')("a worker dies at 'tb-chain-counted': its count goes with its slot, the next barrier completes", async () => {
    await start();
    const f = await pm.files.open('kp.dat', { create: true });
    const [a, b] = [await spawn(), await spawn()];
    expect(pm._native().debugKillPoint('tb-chain-counted', { pid: a.pid })).toBe(true);
    await diedAt(a, 'tb-chain-counted', a.call('write', { file: f.id, offset: 0, data: 'DEAD-WRITE' }));
    expect(await settlesWithin(pm.barrier(), 10000)).toBe(true);
    const r = await b.call('batch', { ops: [{ op: 'write', file: f.id, offset: 100, data: 'after', opts: { drain: true } }] });
    expect(r.every((x: any) => x.ok)).toBe(true);
    await waitFor(() => pm.handlesInUse() === 0, 5000, 'every handle to be free');
  });

  // A victim's move between mapping chains is two edits, a tag change and a link change,
  // under one partition lock (the mixed kill soak: "the buffer pool's mapping table are
  // corrupt" in a survivor). A worker killed between them must leave chains the next
  // user of that buffer can put right: every page still reads, nothing is reported corrupt.
  for (const point of ['pool-victim-untagged', 'pool-victim-half-inserted'] as const) {
    it(`a worker dies at '${point}': the mapping stays sound and every page reads right afterwards`, async () => {
      await start({ bufferPool: { pages: 8, pageSize: 4096 } });
      const f = await pm.files.open('d', { create: true });
      const N = 48;
      const fill = (i: number) => (i % 250) + 1;
      writeFileSync(path.join(pm.dataDir, 'd'), Buffer.concat(Array.from({ length: N }, (_, i) => pageImage(fill(i)))));
      // A full pool of tagged pages: the worker's miss evicts one of them.
      for (let i = 0; i < 8; i++) (await pm.buffers.read(f.id, i)).release();
      const a = await spawn('bufferpool-worker.cjs');
      expect(pm._native().debugKillPoint(point, { pid: a.pid })).toBe(true);
      await diedAt(a, point, a.call('read', { file: f.id, block: 20 }));
      // Every buffer is reused many times over, the dead evictor's victim among them.
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < N; i++) {
          const b = await pm.buffers.read(f.id, (i * 7 + round) % N);
          try {
            expect(b.page[100]).toBe(fill((i * 7 + round) % N));
          } finally {
            b.release();
          }
        }
      }
      const st = pm.buffers.stats();
      expect([st.corruptMapping, st.corruptDescriptors]).toEqual([0, 0]);
      expect(pm.checkIntegrity().anomalies).toEqual([]);
    });
  }

  // A pin or a shared content lock lives in two places: the descriptor's word (a count,
  // taken and given back by CAS) and the holder's record (what slot cleanup gives back).
  // A worker killed between the two used to leave them disagreeing: after a pin CAS, a pin
  // leaked for good (the buffer never evictable again); after an unpin CAS, cleanup took
  // the pin back a second time, from whoever else held one (a buffer evictable under a
  // live reader). The slot's intent word names the buffer across the window, and cleanup
  // recounts it from the live records.
  describe('pin and shared-lock windows', () => {
    async function poolWithPage() {
      await start({ bufferPool: { pages: 8, pageSize: 4096 } });
      const f = await pm.files.open('d', { create: true });
      writeFileSync(path.join(pm.dataDir, 'd'), Buffer.concat(Array.from({ length: 24 }, (_, i) => pageImage(i + 1))));
      (await pm.buffers.read(f.id, 0)).release();  // block 0 is in the pool: the worker's read is a hit
      return f;
    }
    /** Every buffer is taken by the clock sweep at least once: none stays pinned. */
    async function everyBufferEvictable(f: { id: number }) {
      for (let round = 0; round < 3; round++) {
        for (let i = 1; i < 24; i++) {
          const b = await pm.buffers.read(f.id, i);
          try { expect(b.page[100]).toBe(i + 1); } finally { b.release(); }
        }
      }
    }

    it("a worker dies at 'pool-pin-counted': no pin leaks, the buffer is evicted again", async () => {
      const f = await poolWithPage();
      const a = await spawn('bufferpool-worker.cjs');
      expect(pm._native().debugKillPoint('pool-pin-counted', { pid: a.pid })).toBe(true);
      await diedAt(a, 'pool-pin-counted', a.call('read', { file: f.id, block: 0 }));
      expect(pm.buffers.stats().pinned).toBe(0);
      expect(pm.buffers.stats().recounts).toBeGreaterThanOrEqual(1);  // cleanup recounted, not guessed
      await everyBufferEvictable(f);
      expect(pm.buffers.stats().pinned).toBe(0);
      expect(pm.checkIntegrity().anomalies).toEqual([]);
    });

    it("a worker dies at 'pool-unpin-counted': another process's pin on the same buffer survives the cleanup", async () => {
      const f = await poolWithPage();
      const held = await pm.buffers.read(f.id, 0);
      const a = await spawn('bufferpool-worker.cjs');
      expect(pm._native().debugKillPoint('pool-unpin-counted', { pid: a.pid })).toBe(true);
      await diedAt(a, 'pool-unpin-counted', a.call('read', { file: f.id, block: 0 }));
      // Our pin is still counted: the buffer is never the clock's victim while we hold it.
      expect(pm.buffers.stats().pinned).toBe(1);
      expect(pm.buffers.stats().recounts).toBeGreaterThanOrEqual(1);
      for (let i = 1; i < 24; i++) (await pm.buffers.read(f.id, i)).release();
      expect(held.page[100]).toBe(1);
      expect(pm.buffers.stats().pinned).toBe(1);
      held.release();
      expect(pm.buffers.stats().pinned).toBe(0);
      await everyBufferEvictable(f);
    });

    it("a worker dies at 'pool-shared-lock-counted': no shared hold leaks, an exclusive locker gets in", async () => {
      const f = await poolWithPage();
      pm.buffers.configure({ lockWaitMs: 3000 });
      const a = await spawn('bufferpool-worker.cjs');
      expect(pm._native().debugKillPoint('pool-shared-lock-counted', { pid: a.pid })).toBe(true);
      await diedAt(a, 'pool-shared-lock-counted', a.call('lockStart', { file: f.id, block: 0, mode: 'shared', keep: 'x' }));
      const b = await pm.buffers.read(f.id, 0);
      try {
        await b.lockExclusive();
        b.unlock();
      } finally {
        b.release();
      }
      expect(pm.buffers.stats().pinned).toBe(0);
    });

    it("a worker dies at 'pool-shared-unlock-counted': another process's shared hold survives, no writer gets in under it", async () => {
      const f = await poolWithPage();
      const mine = await pm.buffers.read(f.id, 0);
      await mine.lockShared();
      const [a, c] = [await spawn('bufferpool-worker.cjs'), await spawn('bufferpool-worker.cjs')];
      await a.call('lockStart', { file: f.id, block: 0, mode: 'shared', keep: 'x' });
      expect(await a.call('lockAwait', { keep: 'x' })).toMatchObject({ ok: true });
      expect(pm._native().debugKillPoint('pool-shared-unlock-counted', { pid: a.pid })).toBe(true);
      await diedAt(a, 'pool-shared-unlock-counted', a.call('unlock', { keep: 'x' }));
      // We still hold our shared lock: a writer must wait for it.
      await c.call('lockStart', { file: f.id, block: 0, mode: 'exclusive', keep: 'y', lockWaitMs: 1000 });
      expect(await c.call('lockAwait', { keep: 'y' })).toMatchObject({ ok: false, code: 'ERR_RINGMASTER_LOCK_TIMEOUT' });
      mine.unlock();
      await c.call('relock', { keep: 'y', mode: 'exclusive' });
      await c.call('unlock', { keep: 'y' });
      await c.call('release', { keep: 'y' });
      mine.release();
      expect(pm.buffers.stats().pinned).toBe(0);
    });
  });

  it.runIf(backend !== 'threads')("a worker dies at 'cqe-delivered' holding the completion lock: the next reaper repairs, no completion is lost or doubled", async () => {
    await start();
    if (!uring()) return;
    const f = await pm.files.open('kp.dat', { create: true });
    const [a, b] = [await spawn(), await spawn()];
    expect(pm._native().debugKillPoint('cqe-delivered', { pid: a.pid })).toBe(true);
    // The worker reaps its own completions inline; sooner or later it reaps one and dies.
    const ops = Array.from({ length: 8 }, (_, i) => ({ op: 'write', file: f.id, offset: i * 8, data: `a${i}`.padEnd(8, '.') }));
    const loop = (async () => { for (let i = 0; i < 500; i++) await a.call('batch', { ops }); })();
    await diedAt(a, 'cqe-delivered', loop);
    const r = await b.call('batch', { ops: Array.from({ length: 50 }, (_, i) => ({ op: 'write', file: f.id, offset: 1000 + i * 8, data: `b${i}`.padEnd(8, '.') })) });
    expect(r.every((x: any) => x.ok)).toBe(true);
    expect(await pm.write(f, 8192, Buffer.from('pm'))).toBe(2);
    expect(pm.stats().rings.reduce((n: number, x: any) => n + x.completionLockRepairs, 0)).toBeGreaterThanOrEqual(1);
    await waitFor(() => pm.handlesInUse() === 0, 5000, 'every handle to be free');
  });
});

describe.each(['fdatasync', 'dsync'] as const)('kill points: WAL, walSync %s', (walSync) => {
  // fdatasync: the flusher dies with the write done and the fdatasync never submitted:
  // nothing is published until another flusher writes and syncs the range again.
  // dsync: its O_DSYNC write completed (durable), and the write's completion action
  // published the LSN where it was reaped, as a sync's does: no other flusher is needed
  // to report it durable.
  it("a flusher dies at 'wal-written': published only if what it wrote is durable (dsync), and its role is taken over", async () => {
    await start({ wal: { segmentSize: 64 << 10, bufferSize: 64 << 10, walSync } });
    expect(pm.wal.stats().walSync).toBe(walSync);
    const [a, b] = [await spawn('wal-worker.cjs'), await spawn('wal-worker.cjs')];
    await b.call('commit', { n: 3, tag: 'before' });
    const end = BigInt(await a.call('append', { data: 'written-not-synced' }));
    expect(pm.wal.flushedLsn()).toBeLessThan(end);
    expect(pm._native().debugKillPoint('wal-written', { pid: a.pid })).toBe(true);
    await diedAt(a, 'wal-written', a.call('flush', { lsn: end.toString() }));
    if (walSync === 'fdatasync') expect(pm.wal.flushedLsn()).toBeLessThan(end);  // written, never synced
    else expect(pm.wal.flushedLsn()).toBeGreaterThanOrEqual(end);  // synced by O_DSYNC, published by its completion
    // The dead flusher's role is taken over; the survivor's commits become durable (and
    // with them the dead one's record, written and synced again by someone else).
    const after = await b.call('commit', { n: 3, tag: 'after' });
    expect(after).toHaveLength(3);
    expect(pm.wal.flushedLsn()).toBeGreaterThanOrEqual(end);
    expect(pm.wal.stats().flusherTakeovers).toBeGreaterThanOrEqual(1);
    await b.call('close');
    await pm.stop();
    const found: string[] = [];
    pm = await rm.Postmaster.start({ dataDir: path.join(dir, 'data'), backend, wal: { segmentSize: 64 << 10, bufferSize: 64 << 10, walSync, redo: { 1: (r: any) => { found.push(r.payload.toString()); } } } } as any);
    for (const t of ['before:0:0', 'before:0:2', 'written-not-synced', 'after:0:0', 'after:0:2']) expect(found).toContain(t);
  });

  it("a worker dies mid-checkpoint ('checkpoint-record-durable'): its checkpoint role is released and the next checkpoint succeeds", async () => {
    await start({ wal: { segmentSize: 64 << 10, bufferSize: 64 << 10, walSync } });
    const a = await spawn('wal-worker.cjs');
    await a.call('commit', { n: 5 });
    expect(pm._native().debugKillPoint('checkpoint-record-durable', { pid: a.pid })).toBe(true);
    await diedAt(a, 'checkpoint-record-durable', a.call('checkpoint'));
    const lsn = await pm.wal.checkpoint();
    expect(lsn).toBeGreaterThan(0n);
  });
});

// A postmaster in its own process group checkpoints while its workers commit and dies at
// a point of the checkpoint; then the whole group is killed (a power cut mid-checkpoint).
// Recovery must find every acknowledged record, whatever the control file says.
describe.each(['fdatasync', 'dsync'] as const)('kill points: power cut mid-checkpoint, walSync %s', (walSync) => {
  let host: ChildProcess | null = null;
  afterEach(async () => {
    if (host) await powerCut(host);
    host = null;
  });

  for (const point of ['checkpoint-pages-flushed', 'checkpoint-record-durable', 'checkpoint-control-written'] as const) {
    it(`the postmaster dies at '${point}', then the group: every acknowledged record is recovered, twice`, async () => {
      const dataDir = path.join(dir, 'data');
      const acked = new Set<string>();
      for (let round = 0; round < 2; round++) {
        const h = forkCrashHost(path.join(__dirname, '..', 'fixtures', 'wal-host.cjs'), [dataDir, '2', walSync]);
        host = h;
        const hostExit = new Promise<string | null>((r) => h.once('exit', (_c, sig) => r(sig)));
        let failed: string | null = null;
        h.on('message', (m: any) => { if (m?.error) failed = m.error; });
        await untilAcks(h, 40, (ack) => acked.add(ack));
        h.send({ checkpointDieAt: point });
        expect(await hostExit).toBe('SIGKILL');  // the postmaster died at the point...
        expect(failed).toBeNull();
        await powerCut(h);                        // ...then its workers (power cut)
        host = null;
        // Died between the synced temp file and the rename: the old control file rules.
        if (point === 'checkpoint-control-written') expect(existsSync(path.join(dataDir, 'pg_control.tmp'))).toBe(true);
        const found = new Set<string>();
        pm = await rm.Postmaster.start({
          dataDir, backend,
          wal: { segmentSize: 64 << 10, bufferSize: 64 << 10, walSync, redo: { 1: (r: any) => { found.add(r.payload.toString().replace(/\.+$/, '')); } } },
        } as any);
        expect([...acked].filter((id) => !found.has(id))).toEqual([]);
        // A full checkpoint on the recovered WAL works; what it covers is not replayed again.
        await pm.wal.checkpoint();
        acked.clear();
        await pm.stop();
        pm = undefined as any;
      }
    });
  }
});
