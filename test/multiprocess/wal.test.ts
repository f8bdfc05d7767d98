// The shared WAL: group commit across forked processes, linked WAL-before-data chains,
// fsync failure (fsyncgate), dead inserters and flushers, recovery, checkpoints, waldump.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, statfsSync, truncateSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Worker, forkWalWorker, rm, startWithWal, teardown, tempDir, waitFor } from '../helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const fmt: typeof import('../../wal/format') = require('../../dist/wal/format');
const CLI = path.join(__dirname, '..', '..', 'dist', 'wal', 'cli.js');
const OP = { write: 2, fdatasync: 4 };
const EIO = -5;
const SEG = 64 << 10;

let dir: string;
let dataDir: string;
let pm: import('../../core/index').Postmaster | null;
const workers: Worker[] = [];

const start = (wal: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) => startWithWal(dataDir, wal, extra);
const walWorker = (p: import('../../core/index').Postmaster) => forkWalWorker(p, workers);

beforeEach(() => {
  dir = tempDir('rm-wal-');
  dataDir = path.join(dir, 'data');
  pm = null;
});
afterEach(async () => {
  await teardown({ workers, pm, dir, clearFaults: true });
});

async function restart(wal: Record<string, unknown> = {}) {
  await pm!.stop();
  pm = await start(wal);
  return pm;
}

describe('wal: append and group commit', () => {
  it('appends from several processes concurrently; every flushed record is durable and recovered in LSN order', async () => {
    pm = await start();
    const ws = await Promise.all([walWorker(pm), walWorker(pm), walWorker(pm)]);
    const results = await Promise.all(ws.map((w, i) => w.call('commit', { n: 20, lanes: 4, tag: `w${i}` })));
    const all = results.flat() as { lsn: string; payload: string }[];
    expect(all.length).toBe(240);
    expect(new Set(all.map((r) => r.lsn)).size).toBe(240);  // distinct reservations
    const flushed = pm.wal.flushedLsn();
    for (const r of all) expect(BigInt(r.lsn) <= flushed).toBe(true);
    const seen: { lsn: bigint; payload: string }[] = [];
    await Promise.all(ws.map((w) => w.call('close')));
    await pm.stop();
    pm = await start({ redo: { 1: (r: any) => { seen.push({ lsn: r.lsn, payload: r.payload.toString() }); } } });
    expect(pm.wal.recovery!.tornTail).toBe(false);
    const byLsn = [...all].sort((a, b) => (BigInt(a.lsn) < BigInt(b.lsn) ? -1 : 1)).map((r) => r.payload);
    expect(seen.map((s) => s.payload)).toEqual(byLsn);
  });

  it('fdatasyncs per commit fall below 1 with 16 concurrent committers (1 committer: one per commit)', async () => {
    pm = await start();
    const s0 = pm.wal.stats();
    for (let i = 0; i < 20; i++) await pm.wal.flush(await pm.wal.append(1, Buffer.from(`solo ${i}`)));
    const s1 = pm.wal.stats();
    const solo = (s1.fdatasyncs - s0.fdatasyncs) / (s1.commits - s0.commits);
    expect(solo).toBe(1);
    const ws = await Promise.all([walWorker(pm), walWorker(pm), walWorker(pm), walWorker(pm)]);
    await Promise.all(ws.map((w, i) => w.call('commit', { n: 10, lanes: 4, tag: `g${i}` })));  // 16 committers
    const s2 = pm.wal.stats();
    const commits = s2.commits - s1.commits;
    const group = (s2.fdatasyncs - s1.fdatasyncs) / commits;
    expect(commits).toBe(160);
    expect(group).toBeLessThan(1);
    expect(group).toBeLessThan(solo);
  });

  // A started postmaster with its WAL segment open and the flusher role let go, and the
  // flush_seq and flush counts to measure from.
  async function startCountingFlushSeq() {
    pm = await start();
    const addon = require('../../dist/core/native').native;
    const seq = () => addon.walState(pm!._native()).flushSeq as number;
    await pm.wal.flush(await pm.wal.append(1, Buffer.from('warm')));  // the segment is open
    // The flusher holds the role until the microtasks its settling started have run (a
    // commit that follows at once reuses it): let it go before counting.
    await new Promise((r) => setImmediate(r));
    return { addon, seq, q0: seq(), f0: pm.wal.stats().flushes };
  }

  it('a flusher keeps the role for a flush its own environment still waits for: one flush_seq bump per flush, not two', async () => {
    // Every bump of flush_seq rings every process waiting on the WAL. A publication bumps
    // it; so did every release of the flusher role, even when the releasing environment
    // had another flush waiting that took the role straight back.
    const { seq, q0, f0 } = await startCountingFlushSeq();
    const first = pm.wal.flush(await pm.wal.append(1, Buffer.from('one')));  // its flush takes 'one' now
    const second = pm.wal.flush(await pm.wal.append(1, Buffer.from('two')));  // appended while it is in flight
    await Promise.all([first, second]);
    await new Promise((r) => setImmediate(r));  // its release, as above
    expect(pm.wal.stats().flushes - f0).toBe(2);
    // Two publications and one release (it was publication, release, publication, release).
    expect(seq() - q0).toBe(3);
    expect(pm.wal.flushedLsn()).toBe(pm.wal.insertLsn());
  });

  it('a session that commits again as soon as its commit resolves keeps the flusher role: one flush_seq bump per commit, one release at the end', async () => {
    // Releasing and retaking the role between two commits of one session was two more
    // native calls and a bump (which rings every waiting process) per commit.
    const { addon, seq, q0, f0 } = await startCountingFlushSeq();
    for (let i = 0; i < 20; i++) await pm.wal.flush(await pm.wal.append(1, Buffer.from(`c${i}`)));
    await new Promise((r) => setImmediate(r));  // the role is let go once the loop stops committing
    expect(pm.wal.stats().flushes - f0).toBe(20);
    expect(seq() - q0).toBe(21);  // 20 publications, 1 release
    expect(addon.walState(pm._native()).flusher).toBe(-1);  // nobody holds the role now
    expect(pm.wal.flushedLsn()).toBe(pm.wal.insertLsn());
  });

  it('a full circular buffer makes appenders wait for the flusher, never overwrite unflushed bytes', async () => {
    pm = await start({ bufferSize: 64 << 10 });
    const big = new Uint8Array(20000).fill(7);
    const lsns = await Promise.all(Array.from({ length: 12 }, () => pm!.wal.append(2, big)));  // ~240 KB > buffer
    await pm.wal.flush(lsns.reduce((a, b) => (a > b ? a : b)));
    expect(pm.wal.stats().spaceWaits).toBeGreaterThan(0);
    let n = 0;
    await restart({ redo: { 2: (r: any) => { expect(r.payload.every((x: number) => x === 7)).toBe(true); n++; } } });
    expect(n).toBe(12);
  });

  it('processes filling the buffer concurrently wait for each other\'s flushes; nothing is lost or overwritten', async () => {
    pm = await start({ bufferSize: 64 << 10 });
    const ws = await Promise.all([walWorker(pm), walWorker(pm), walWorker(pm)]);
    await Promise.all(ws.map((w, i) => w.call('appendMany', { n: 40, size: 3000 + i * 100, tag: `p${i}` })));  // ~370 KB
    await Promise.all(ws.map((w) => w.call('flush', {})));
    expect(pm.wal.stats().spaceWaits).toBeGreaterThan(0);
    await Promise.all(ws.map((w) => w.call('close')));
    const seen = new Set<string>();
    await restart({ redo: { 1: (r: any) => { seen.add(r.payload.toString()); } } });
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 40; j++) expect(seen.has(`p${i}:${j}:`.padEnd(3000 + i * 100, String.fromCharCode(65 + (j % 26))))).toBe(true);
    }
    expect(seen.size).toBe(120);
  });

  it('commitDelayUs groups commits too', async () => {
    pm = await start({ commitDelayUs: 2000 });
    await Promise.all(Array.from({ length: 8 }, async (_, i) => pm!.wal.flush(await pm!.wal.append(1, Buffer.from(`d${i}`)))));
    const s = pm.wal.stats();
    expect(s.commits).toBe(8);
    expect(s.fdatasyncs).toBeLessThan(8);
  });

  it("walSync 'dsync' commits without fdatasync ops and recovers", async () => {
    pm = await start({ walSync: 'dsync' });
    const l = await pm.wal.append(1, Buffer.from('dsync'));
    await pm.wal.flush(l);
    expect(pm.wal.flushedLsn() >= l).toBe(true);
    let got = '';
    await restart({ walSync: 'dsync', redo: { 1: (r: any) => { got = r.payload.toString(); } } });
    expect(got).toBe('dsync');
  });
});

// Whether `d`'s file system accepts an O_DIRECT open (what the WAL probes at start).
function directIo(d: string): boolean {
  const probe = path.join(d, 'o-direct-probe');
  try {
    closeSync(openSync(probe, constants.O_CREAT | constants.O_RDWR | constants.O_DIRECT));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EINVAL') return false;
    throw e;
  } finally {
    rmSync(probe, { force: true });
  }
}

describe('wal: O_DIRECT', () => {
  it('by default the WAL is O_DIRECT | O_DSYNC where the file system has direct IO: a forked worker commits with no sync op, and every commit recovers', async () => {
    pm = await start();
    const direct = directIo(dir);
    // On FUSE under io_uring O_DSYNC is not trusted and the fdatasync chain stays (RELIABILITY.md).
    const fuse = statfsSync(dir).type === 0x65735546 && pm.features.backend === 'io_uring';
    expect(pm.wal.stats()).toMatchObject({ direct, walSync: direct && !fuse ? 'dsync' : 'fdatasync' });
    const w = await walWorker(pm);
    const lsn = BigInt(await w.call('append', { data: 'from the worker' }));
    expect(await w.call('flushCode', { lsn: lsn.toString() })).toBe('ok');
    await pm.wal.flush(await pm.wal.append(1, Buffer.from('from the postmaster')));
    const got: string[] = [];
    await restart({ redo: { 1: (r: any) => { got.push(r.payload.toString()); } } });
    expect(got).toEqual(['from the worker', 'from the postmaster']);
    expect(readdirSync(path.join(dataDir, 'pg_wal')).filter((f) => !/^[0-9A-F]{24}$/.test(f))).toEqual([]);  // the probe file is gone
  });

  it('on a file system without O_DIRECT (ramfs) the default WAL is buffered with its fdatasync chain; an explicit direct: true fails the start with EINVAL before recovery changes anything', async (ctx) => {
    if (process.getuid?.() !== 0) ctx.skip();  // mounting ramfs needs root
    const mnt = path.join(dir, 'ramfs');
    mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'ramfs', '-o', 'mode=0700', 'none', mnt], { stdio: 'ignore' });
    } catch {
      ctx.skip();  // no ramfs here (or no mount permission in this container)
    }
    let p: import('../../core/index').Postmaster | null = null;
    try {
      expect(directIo(mnt)).toBe(false);
      const d = path.join(mnt, 'data');
      p = await startWithWal(d, {});
      expect(p.wal.stats()).toMatchObject({ direct: false, walSync: 'fdatasync' });
      const s0 = p.wal.stats().fdatasyncs;
      await p.wal.flush(await p.wal.append(1, Buffer.from('buffered')));
      expect(p.wal.stats().fdatasyncs).toBeGreaterThan(s0);
      await p.stop();
      p = null;
      const before = readFileSync(path.join(d, 'pg_control'));
      const segs = readdirSync(path.join(d, 'pg_wal')).sort();
      await expect(startWithWal(d, { direct: true })).rejects.toMatchObject({ code: 'EINVAL', message: expect.stringMatching(/does not support O_DIRECT/) });
      expect(readFileSync(path.join(d, 'pg_control')).equals(before)).toBe(true);
      expect(readdirSync(path.join(d, 'pg_wal')).sort()).toEqual(segs);
      let got = '';
      p = await startWithWal(d, { redo: { 1: (r: any) => { got = r.payload.toString(); } } });
      expect(got).toBe('buffered');
    } finally {
      await p?.stop().catch(() => {});
      execFileSync('umount', ['-l', mnt], { stdio: 'ignore' });
    }
  });

  it('direct: true writes whole aligned blocks from the arena and recovers every record', async (ctx) => {
    try {
      pm = await start({ direct: true });
    } catch (e) {
      if ((e as any).code === 'EINVAL') ctx.skip();  // the temp filesystem has no O_DIRECT (tmpfs)
      throw e;
    }
    const ends: bigint[] = [];
    await Promise.all(Array.from({ length: 6 }, async (_, i) => {
      for (let j = 0; j < 15; j++) {
        const l = await pm!.wal.append(1, Buffer.from(`d${i}-${j}`.padEnd(100 + j * 37, '.')));
        await pm!.wal.flush(l);
        ends.push(l);
      }
    }));
    let n = 0;
    await restart({ direct: true, redo: { 1: () => { n++; } } });
    expect(n).toBe(90);
    // The block holding the recovered end is rewritten whole by the next flush: earlier records survive it.
    await pm.wal.flush(await pm.wal.append(1, Buffer.from('tail')));
    n = 0;
    await restart({ direct: true, redo: { 1: () => { n++; } } });
    expect(n).toBe(91);
  });
});

describe('wal: WAL-before-data chains and fsyncgate', () => {
  it('appendFlushChain: WAL write -> fdatasync -> page write land in order and publish the flushed LSN', async () => {
    pm = await start();
    const data = await pm.files.open('data', { create: true });
    const lsn = await pm.wal.append(1, Buffer.from('page change'));
    const b = pm.batch();
    const cb = pm.wal.appendFlushChain(b, lsn);
    expect(cb).not.toBeNull();
    b.write(data, 0, Buffer.from('PAGE'));
    const res = await b.submit();
    cb!(res, 0);
    expect(res.every((r) => r.ok)).toBe(true);
    expect(pm.wal.flushedLsn() >= lsn).toBe(true);
    expect(readFileSync(path.join(pm.dataDir, 'data')).toString()).toBe('PAGE');
  });

  it('an injected WAL write failure cancels the linked page write (file unchanged) and fails the WAL', async () => {
    pm = await start();
    const data = await pm.files.open('data', { create: true });
    const events: any[] = [];
    pm.on('wal-failed', (e) => events.push(e));
    const lsn = await pm.wal.append(1, Buffer.from('will not be durable'));
    const segId = await pm.wal._segmentFileId(lsn);
    pm._native().debugSetFault(0, { opMask: 1 << OP.write, fileSlot: segId % 65536, error: EIO });
    const b = pm.batch();
    const cb = pm.wal.appendFlushChain(b, lsn)!;
    const first = b.length;
    b.write(data, 0, Buffer.from('PAGE'));
    const res = await b.submit();
    cb(res, 0);
    expect(res[0].result).toBe(EIO);
    expect(res.slice(1).every((r) => r.result === -125)).toBe(true);  // fdatasync and the page write: ECANCELED
    expect(res[first].ok).toBe(false);
    expect(statSync(path.join(pm.dataDir, 'data')).size).toBe(0);
    expect(pm.wal.failed).toBe(true);
    expect(pm.wal.flushedLsn() < lsn).toBe(true);
    await expect(pm.wal.flush(lsn)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_FAILED' });
    await waitFor(() => events.length > 0, 5000, 'wal-failed event');
    expect(events[0].code).toBe('ERR_RINGMASTER_WAL_FAILED');
  });

  it('a WAL write or fdatasync completing with EFAULT (what Linux gives a SIGKILLed submitter\'s re-issued request) is written again, not fsyncgate', async () => {
    // Found by the mixed kill soak: a killed flusher's fixed-buffer WAL write came back
    // EFAULT (io_req_task_submit on an exiting task) and failed the WAL for everyone.
    // The buffered WAL, which sends both ops (an O_DIRECT | O_DSYNC one sends writes only).
    pm = await start({ direct: false });
    for (const op of [OP.write, OP.fdatasync]) {
      const lsn = await pm.wal.append(1, Buffer.from(`survives an EFAULT on op ${op}`));
      const segId = await pm.wal._segmentFileId(lsn);
      pm._native().debugSetFault(0, { opMask: 1 << op, fileSlot: segId % 65536, error: -14 });
      await pm.wal.flush(lsn);
      expect(pm._native().debugFaultFired(0)).toBe(1);
      pm._native().debugSetFault(0, null);
      expect(pm.wal.failed).toBe(false);
      expect(pm.wal.flushedLsn() >= lsn).toBe(true);
    }
  });

  it('an injected fdatasync EIO fails the WAL for good: no false durability, later flushes and appends reject everywhere', async () => {
    pm = await start({ direct: false });
    const w = await walWorker(pm);
    const before = pm.wal.flushedLsn();
    const lsn = await pm.wal.append(1, Buffer.from('x'));
    const segId = await pm.wal._segmentFileId(lsn);
    pm._native().debugSetFault(0, { opMask: 1 << OP.fdatasync, fileSlot: segId % 65536, error: EIO });
    await expect(pm.wal.flush(lsn)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_FAILED' });
    expect(pm.wal.flushedLsn()).toBe(before);
    expect(pm._native().debugFaultFired(0)).toBe(1);
    // The rule was one-shot: a retried fdatasync would succeed, but the WAL never retries and reports success.
    await expect(pm.wal.flush(lsn)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_FAILED' });
    await expect(pm.wal.append(1, Buffer.from('y'))).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_FAILED' });
    expect(await w.call('flushCode', { lsn: lsn.toString() })).toBe('ERR_RINGMASTER_WAL_FAILED');
    await expect(w.call('append', { data: 'z' })).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_FAILED' });
    expect(pm.wal.flushedLsn()).toBe(before);
  });

  it("a worker's failed fdatasync is reported by the postmaster ('wal-failed') and fails the postmaster's flushes", async () => {
    pm = await start({ direct: false });
    const events: any[] = [];
    pm.on('wal-failed', (e) => events.push(e));
    const w = await walWorker(pm);
    const lsn = BigInt(await w.call('append', { data: 'from the worker' }));
    const segId = await pm.wal._segmentFileId(lsn);
    pm._native().debugSetFault(0, { opMask: 1 << OP.fdatasync, fileSlot: segId % 65536, error: EIO });
    expect(await w.call('flushCode', { lsn: lsn.toString() })).toBe('ERR_RINGMASTER_WAL_FAILED');
    await waitFor(() => events.length > 0, 5000, "the postmaster's wal-failed event");
    expect(events[0].errno).toBe(EIO);
    await expect(pm.wal.flush(lsn)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_FAILED' });
  });
});

describe('wal: publication', () => {
  for (const walSync of ['fdatasync', 'dsync'] as const) {
    it(`walSync '${walSync}': a commit waiting in another process is published by the chain's completion while the flusher's JS thread is busy`, async () => {
      // The sync (fdatasync) or the last O_DSYNC write carries the LSN it makes durable;
      // whichever process reaps it publishes. Without that the waiter would wait for the
      // blocked flusher's settle and time out (timeoutMs).
      pm = await start({ walSync, timeoutMs: 20000 });
      expect(pm.wal.stats().walSync).toBe(walSync);
      const flag = pm.allocate(8, { align: 8 });
      flag.bytes[0] = 0;
      const w = await walWorker(pm);
      const mine = await pm.wal.append(1, Buffer.from('from the postmaster'));
      const reply = w.call('flushThenBlock', { data: 'from the blocked flusher', flag: flag.offset });
      // The worker holds the role while its JS thread spins, so this commit is published
      // only by the completion of the worker's chain (or a later chain of its).
      await waitFor(() => pm!.wal.stats().flushes > 0, 10000, "the worker's flush to be submitted");
      await pm.wal.flush(mine);
      expect(pm.wal.flushedLsn()).toBeGreaterThanOrEqual(mine);
      flag.bytes[0] = 1;
      const r = await reply;
      expect(BigInt(r.flushed)).toBeGreaterThanOrEqual(BigInt(r.lsn));
    });
  }
});

describe('wal: the flusher role and user code', () => {
  it("a flusher whose commit continuation runs long does not keep the role while another process's record waits for a flush", async () => {
    // The flusher keeps its role across the microtasks its settling started (a session
    // that commits again at once is flushed without a release), but not when a record of
    // another environment is already past the flushed LSN: that environment would wait
    // for this thread's user code. The postmaster appends after the worker's chain was
    // collected; its flush must resolve while the worker's continuation still runs.
    pm = await start({ timeoutMs: 20000 });
    const other = pm.allocate(8, { align: 8 });
    const done = pm.allocate(8, { align: 8 });
    other.bytes[0] = 0;
    done.bytes[0] = 0;
    const w = await walWorker(pm);
    await w.call('flush', {});  // the worker's WAL view and segment are ready
    const flushes = pm.wal.stats().flushes;
    const reply = w.call('commitThenBusy', { data: 'from the worker', other: other.offset, done: done.offset, busyMs: 3000 });
    await waitFor(() => pm!.wal.stats().flushes > flushes, 10000, "the worker's flush to be submitted");
    const mine = await pm.wal.append(1, Buffer.from('from the postmaster'));
    other.bytes[0] = 1;
    await pm.wal.flush(mine);
    const workerStillBusy = done.bytes[0] === 0;
    await reply;
    expect(workerStillBusy).toBe(true);
    expect(pm.wal.flushedLsn()).toBeGreaterThanOrEqual(mine);
  });
});

describe('wal: dead participants', () => {
  it('an inserter killed mid-copy does not wedge the WAL: its range becomes padding, later records flush and recover', async () => {
    pm = await start();
    const a = await pm.wal.append(1, Buffer.from('before'));
    await pm.wal.flush(a);
    const w = await walWorker(pm);
    w.call('abandonAndDie', { data: 'half a record that never finishes' }).catch(() => {});
    await w.exited;
    const b = await pm.wal.append(1, Buffer.from('after'));
    await pm.wal.flush(b);  // resolves only once the dead range is padded (slot cleanup)
    expect(pm.wal.stats().paddings).toBe(1);
    const seen: string[] = [];
    await restart({ redo: { 1: (r: any) => { seen.push(r.payload.toString()); } } });
    expect(seen).toEqual(['before', 'after']);
    expect(pm.wal.recovery!.tornTail).toBe(false);
  });

  it('a flusher that dies holding the role is replaced', async () => {
    pm = await start();
    const w = await walWorker(pm);
    expect(await w.call('takeFlusherAndDie').catch(() => 'died')).toBe('died');
    const l = await pm.wal.append(1, Buffer.from('after the dead flusher'));
    await pm.wal.flush(l);
    expect(pm.wal.flushedLsn() >= l).toBe(true);
    expect(pm.wal.stats().flusherTakeovers).toBeGreaterThanOrEqual(1);
  });
});

describe('wal: recovery, checkpoints, full-page images, waldump', () => {
  it('recovery replays through user redo handlers and the result equals the model', async () => {
    pm = await start();
    const ws = await Promise.all([walWorker(pm), walWorker(pm)]);
    // Each record is "key=value"; the model applies them in LSN order.
    const res = await Promise.all(ws.map((w, i) => w.call('commit', { kind: 3, n: 25, lanes: 2, tag: `k${i % 2}` })));
    const recs = (res.flat() as { lsn: string; payload: string }[]).sort((a, b) => (BigInt(a.lsn) < BigInt(b.lsn) ? -1 : 1));
    const model = new Map<string, string>();
    for (const r of recs) {
      const [k, lane, i] = r.payload.split(':');
      model.set(`${k}:${lane}`, i);
    }
    await Promise.all(ws.map((w) => w.call('close')));
    const state = new Map<string, string>();
    await restart({
      redo: {
        3: async (r: any) => {
          await new Promise((x) => setImmediate(x));  // async handlers are awaited in order
          const [k, lane, i] = r.payload.toString().split(':');
          state.set(`${k}:${lane}`, i);
        },
      },
    });
    expect(state).toEqual(model);
  });

  it('a torn tail is detected and cut; earlier records survive, and the cut record never reappears', async () => {
    pm = await start();
    const ends: bigint[] = [];
    for (let i = 0; i < 10; i++) ends.push(await pm.wal.append(1, Buffer.from(`rec ${i}`.padEnd(40, '-'))));
    await pm.wal.flush(ends[9]);
    await pm.stop();
    pm = null;
    // Corrupt the last record's payload on disk (a torn write).
    const last = Number(ends[8]);
    const segno = Math.floor(last / SEG);
    const f = openSync(path.join(dataDir, 'pg_wal', fmt.segmentName(segno)), 'r+');
    writeSync(f, Buffer.from('TORN'), 0, 4, (last % SEG) + 30);
    closeSync(f);
    const seen: string[] = [];
    pm = await start({ redo: { 1: (r: any) => { seen.push(r.payload.toString().trim()); } } });
    expect(pm.wal.recovery!.tornTail).toBe(true);
    expect(pm.wal.recovery!.stop).toBe('bad-crc');
    expect(seen.length).toBe(9);
    expect(seen[8].startsWith('rec 8')).toBe(true);
    expect(pm.wal.insertLsn()).toBe(ends[8]);
    const l = await pm.wal.append(1, Buffer.from('new'));
    await pm.wal.flush(l);
    seen.length = 0;
    await restart({ redo: { 1: (r: any) => { seen.push(r.payload.toString().trim()); } } });
    expect(seen.length).toBe(10);
    expect(seen[9]).toBe('new');
    expect(pm.wal.recovery!.tornTail).toBe(false);
  });

  it('a truncated segment (missing tail bytes) is detected as torn', async () => {
    pm = await start();
    const a = await pm.wal.append(1, Buffer.from('kept'));
    const b = await pm.wal.append(1, Buffer.alloc(3000, 1));
    await pm.wal.flush(b);
    await pm.stop();
    pm = null;
    // Zero the second half of the last record, as a lost write would leave it.
    const f = openSync(path.join(dataDir, 'pg_wal', fmt.segmentName(Math.floor(Number(a) / SEG))), 'r+');
    writeSync(f, Buffer.alloc(1500), 0, 1500, (Number(a) % SEG) + 1600);
    closeSync(f);
    const seen: string[] = [];
    pm = await start({ redo: { 1: (r: any) => { seen.push(r.payload.toString()); } } });
    expect(seen).toEqual(['kept']);
    expect(pm.wal.recovery!.tornTail).toBe(true);
  });

  it('a segment file cut short inside the last record: the record is cut, the earlier ones stay on disk for later restarts', async () => {
    pm = await start();
    const a = await pm.wal.append(1, Buffer.from('first'));
    await pm.wal.append(1, Buffer.from('second'));
    const c = await pm.wal.append(1, Buffer.alloc(2000, 2));
    await pm.wal.flush(c);
    await pm.stop();
    pm = null;
    const segFile = path.join(dataDir, 'pg_wal', fmt.segmentName(Math.floor(Number(a) / SEG)));
    truncateSync(segFile, (Number(c) % SEG) - 1000);
    for (let round = 0; round < 2; round++) {
      const seen: string[] = [];
      pm = await start({ redo: { 1: (r: any) => { seen.push(r.payload.toString()); } } });
      expect(seen).toEqual(['first', 'second']);
      expect(statSync(segFile).size).toBe(SEG);  // extended in place, never replaced
      await pm.stop();
      pm = null;
    }
  });

  it('checkpoints bound replay, recycle old segments, and survive a restart', async () => {
    pm = await start({ keepSegments: 1 });
    for (let i = 0; i < 40; i++) await pm.wal.append(1, Buffer.alloc(4000, i));  // ~160 KB: several 64 KiB segments
    await pm.wal.flush();
    const before = readdirSync(path.join(dataDir, 'pg_wal')).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    const ck = await pm.wal.checkpoint();
    const after = readdirSync(path.join(dataDir, 'pg_wal')).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    expect(after[0] > before[0]).toBe(true);  // old segments recycled or removed
    const l = await pm.wal.append(1, Buffer.from('after checkpoint'));
    await pm.wal.flush(l);
    const seen: string[] = [];
    await restart({ keepSegments: 1, redo: { 1: (r: any) => { seen.push(r.payload.toString()); } } });
    expect(seen).toEqual(['after checkpoint']);
    expect(pm.wal.recovery!.fromLsn <= ck).toBe(true);
    // The checkpoint's barrier, record and control file work from a worker too.
    const l2 = await pm.wal.append(1, Buffer.from('again'));
    await pm.wal.flush(l2);
    const w = await walWorker(pm);
    const ck2 = BigInt(await w.call('checkpoint'));
    expect(ck2 > l2 - 1n).toBe(true);
    expect(fmt.readControl(dataDir)!.checkpointLsn).toBe(Number(ck2));
  });

  it('the size-triggered checkpointer runs on its own', async () => {
    pm = await start({ checkpointWalBytes: 32 << 10 });
    for (let i = 0; i < 20; i++) await pm.wal.flush(await pm.wal.append(1, Buffer.alloc(4000, i)));
    await waitFor(() => fmt.readControl(dataDir)!.checkpointLsn > 0, 10000, 'a checkpoint');
  });

  it('full-page images repair a torn data page at recovery', async () => {
    pm = await start();
    const data = await pm.files.open('rel', { create: true });
    const page = new Uint8Array(8192).fill(0xab);
    await pm.write(data, 8192, page);
    const l = await pm.wal.appendPageImage('rel', 1, page);
    await pm.wal.flush(l);
    await pm.stop();
    pm = null;
    const f = openSync(path.join(dataDir, 'rel'), 'r+');
    writeSync(f, Buffer.alloc(4096, 0x11), 0, 4096, 8192);  // torn: half the page is new garbage
    closeSync(f);
    pm = await start();
    const back = readFileSync(path.join(dataDir, 'rel')).subarray(8192, 16384);
    expect(Buffer.compare(back, Buffer.from(page))).toBe(0);
  });

  it('ringmaster waldump prints the records like pg_waldump', async () => {
    pm = await start();
    await pm.wal.append(7, Buffer.from('hello'));
    await pm.wal.appendPageImage('rel', 3, new Uint8Array(16));
    await pm.wal.flush();
    await pm.wal.checkpoint();
    await pm.wal.flush(await pm.wal.append(9, Buffer.from('after')));
    const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8'));
    expect(pkg.bin.ringmaster).toBe('dist/wal/cli.js');
    const out = execFileSync(process.execPath, [CLI, 'waldump', dataDir], { encoding: 'utf8' });
    expect(out).toMatch(/kind: CHECKPOINT/);
    expect(out).toMatch(/kind: USER\(9\)\s+len \(rec\/tot\):\s+5\/\s+32, lsn: 0\/[0-9A-F]{8}/);
    expect(out).toMatch(/2 records from .* stopped: end-of-wal/);
    const all = execFileSync(process.execPath, [CLI, 'waldump', dataDir, '--start', fmt.formatLsn(BigInt(SEG))], { encoding: 'utf8' });
    expect(all).toMatch(/USER\(7\)/);
    expect(all).toMatch(/PAGE_IMAGE .*file rel block 3/);
    expect(() => execFileSync(process.execPath, [CLI, 'waldump', path.join(dir, 'nope')], { stdio: 'pipe' })).toThrow();
  });
});
