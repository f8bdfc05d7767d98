// Power cuts with real loss of unsynced data: a CI-sized run of the power-cut soak
// (soak/powercut.cjs) on LazyFS, its positive controls, and the LazyFS mount helper.
// Runs wherever FUSE works (CI's root legs: LazyFS is built from tools/lazyfs, installing
// its Debian packages with apt-get the first time); elsewhere every test is skipped with
// the reason (e.g. the non-root leg: /dev/fuse is root-only). Long runs: RELIABILITY.md.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { rm, runPowercutSoak } from '../helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const lazyfs = require('../../tools/lazyfs/lazyfs.cjs');

let skipReason: string | null = null;
let bin: string | null = null;

beforeAll(async () => {
  skipReason = lazyfs.fuseUnavailable();
  if (!skipReason) {
    const t0 = Date.now();
    const built = await lazyfs.ensureBuiltAsync();  // cached in tools/lazyfs/.build; a cold build (and apt-get) takes minutes
    if (built.skipped) skipReason = built.skipped;
    else bin = built.bin;
    if (Date.now() - t0 > 5000) console.log(`powercut: LazyFS built in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  if (skipReason) console.warn(`powercut tests skipped: ${skipReason}`);
}, 30 * 60 * 1000);

function skipIfNoFuse(ctx: { skip: (note?: string) => never }): void {
  if (skipReason) ctx.skip(`no FUSE here: ${skipReason}`);
}

interface SoakResult {
  ok: boolean; failure: string | null; skipped?: string; rounds: number; controlCaught: boolean | null;
  pageUpdatesAcknowledged: number; pageUpdatesLost: number; cellRegressions: number; inconsistentCells: number;
  recordsAcknowledged: number; recordsVerifiedInReplay: number; recordsLost: number; replayShrunk: number; foreignRecords: number;
  unreadablePages: number; redoBadRecords: number; tornPagesOnDiskBeforeRecovery: number; recoveries: number;
  recoveriesCut: number; finalRecoveryRetries: number;
  workerErrorsBeforeCut: number; workerErrorsAfterCut: number;
  faults: Record<string, number | { armed: number; fired: number } | { killed: number; unplanned: number }>;
  machinery: { checkpointsByPostmaster: number; checkpointsByWorkers: number; pageImages: number; evictions: number; segmentsUsed: number };
  problemsByRound: { round: number; problems: string[] }[];
  kept: string | null;
}

// A failed run keeps its files for a look; a test run prints what it found instead, and
// keeps them only where a failure is not expected (a loss to look into).
function soak(args: string[], timeoutMs: number, env: Record<string, string> = {}, keepOnFailure = false) {
  return runPowercutSoak<SoakResult>(args, timeoutMs, { env, keepOnFailure });
}

const summary = (r: SoakResult) => JSON.stringify({
  rounds: r.rounds, failure: r.failure, pageUpdatesAcknowledged: r.pageUpdatesAcknowledged, pageUpdatesLost: r.pageUpdatesLost,
  recordsAcknowledged: r.recordsAcknowledged, recordsLost: r.recordsLost, unreadablePages: r.unreadablePages,
  tornPagesOnDiskBeforeRecovery: r.tornPagesOnDiskBeforeRecovery, faults: r.faults, machinery: r.machinery,
});

describe('power cuts on LazyFS (soak/powercut.cjs, short)', () => {
  it('clear-cache, torn page and WAL writes, reordered writes: every acknowledged commit recovered, torn pages repaired', async (ctx) => {
    skipIfNoFuse(ctx);
    const { status, result, stderr } = await soak(['--rounds', '8', '--workers', '2', '--max-ms', '900'], 240000, {}, true);
    console.log(`powercut soak: ${summary(result)}`);
    if (result.failure) console.log(stderr.split('\n').filter((l) => /^round|FAIL|kept/.test(l)).join('\n'));
    expect(result.skipped).toBeUndefined();
    expect(result.rounds).toBe(8);
    // Every recovery is checked, except one that LazyFS cut by crashing by itself (a
    // segfault in the daemon now and then: the soak takes it for a power cut, and the next
    // recovery is checked; a cut final recovery runs again).
    expect(result.recoveries + result.recoveriesCut).toBe(9 + result.finalRecoveryRetries);
    expect(result.recoveries).toBeGreaterThanOrEqual(2);
    expect(result.recordsAcknowledged).toBeGreaterThan(0);
    expect(result.pageUpdatesAcknowledged).toBeGreaterThan(0);
    expect(result.machinery.checkpointsByPostmaster + result.machinery.checkpointsByWorkers).toBeGreaterThan(0);
    expect(result.machinery.pageImages).toBeGreaterThan(0);
    // Every acknowledged commit and page update survives; torn pages are repaired from their
    // images; recovery never replays what was not written nor loses what it replayed before.
    expect(result.recordsLost).toBe(0);
    expect(result.replayShrunk).toBe(0);
    expect(result.foreignRecords).toBe(0);
    expect(result.unreadablePages).toBe(0);
    expect(result.redoBadRecords).toBe(0);
    expect(result.inconsistentCells).toBe(0);
    expect(result.pageUpdatesLost).toBe(0);
    expect(result.cellRegressions).toBe(0);
    expect(result.failure).toBeNull();
    expect(status).toBe(0);
  }, 300000);

  it('LazyFS dying under the workers (as when the daemon segfaults) is a power cut: nothing acknowledged lost, a real error still fails', async (ctx) => {
    skipIfNoFuse(ctx);
    // --faults lazyfs-crash: the daemon is SIGKILLed while the workers run, with no fault
    // armed, so the IO errors that follow go the way of LazyFS crashing by itself.
    const { status, result } = await soak(['--rounds', '3', '--workers', '2', '--faults', 'lazyfs-crash', '--max-ms', '900'], 120000, {}, true);
    console.log(`powercut lazyfs-crash: ${summary(result)}`);
    expect(result.rounds).toBe(3);
    const crashes = result.faults['lazyfs-crash'] as { killed: number; unplanned: number };
    expect(crashes.killed + crashes.unplanned).toBe(3);
    expect(result.workerErrorsBeforeCut).toBe(0);
    expect(result.pageUpdatesAcknowledged).toBeGreaterThan(0);
    expect(result.pageUpdatesLost + result.recordsLost + result.cellRegressions + result.replayShrunk + result.unreadablePages).toBe(0);
    expect(result.failure).toBeNull();
    expect(status).toBe(0);
    // And an error reported while LazyFS lives is still a failure.
    // (A worker reports an error after 20 page updates; no power is cut in that run.)
    const injected = await soak(['--rounds', '2', '--workers', '2', '--faults', 'clear'], 120000, { POWERCUT_INJECT_ERROR: '1' });
    expect(injected.result.failure).toMatch(/error before the power cut \(worker 0\): Error: injected error/);
    expect(injected.result.workerErrorsBeforeCut).toBe(1);
    expect(injected.status).toBe(1);
  }, 240000);

  it('positive control: checkpoints that skip their data-file syncs lose acknowledged page updates', async (ctx) => {
    skipIfNoFuse(ctx);
    // RINGMASTER_DEBUG_SKIP_DATA_SYNC=1: checkpoints skip their data-file syncs.
    const { status, result } = await soak(['--rounds', '6', '--workers', '2', '--faults', 'clear', '--control', 'skip-data-sync'], 180000);
    console.log(`powercut control skip-data-sync: ${summary(result)}`);
    expect(result.pageUpdatesLost).toBeGreaterThan(0);
    expect(result.controlCaught).toBe(true);
    expect(status).toBe(0);
  }, 240000);

  it('positive control: fdatasyncs that never reach the disk lose acknowledged commits', async (ctx) => {
    skipIfNoFuse(ctx);
    // No checkpoints: every acknowledged commit is in the replay range, so each lost one
    // shows (with checkpoints the first loss is usually a checkpoint record, and recovery
    // refuses a WAL that ends before it: caught too, but not counted).
    const { status, result } = await soak(['--rounds', '6', '--workers', '2', '--faults', 'clear', '--checkpoint-ms', '0', '--no-worker-checkpoints',
      '--control', 'skip-fdatasync'], 180000);
    console.log(`powercut control skip-fdatasync: ${summary(result)}`);
    expect(result.recordsLost).toBeGreaterThan(0);
    expect(result.controlCaught).toBe(true);
    expect(status).toBe(0);
  }, 240000);

  // walSync 'dsync': the WAL's writes are durable because the segments are O_DSYNC (no sync
  // op). LazyFS must take an O_DSYNC write through FUSE as synced (the kernel sends an fsync
  // after it), and the control below shows that the soak would see it if it were not.
  it("walSync 'dsync' (--variant dsync): every acknowledged commit recovered", async (ctx) => {
    skipIfNoFuse(ctx);
    const { status, result, stderr } = await soak(['--rounds', '4', '--workers', '2', '--max-ms', '900', '--variant', 'dsync'], 180000, {}, true);
    console.log(`powercut soak dsync: ${summary(result)}`);
    if (result.failure) console.log(stderr.split('\n').filter((l) => /^round|FAIL|kept/.test(l)).join('\n'));
    expect(result.rounds).toBe(4);
    expect(result.recordsAcknowledged).toBeGreaterThan(0);
    expect(result.recordsLost + result.replayShrunk + result.pageUpdatesLost + result.cellRegressions + result.unreadablePages).toBe(0);
    expect(result.failure).toBeNull();
    expect(status).toBe(0);
  }, 240000);

  it("positive control: walSync 'dsync' with segments opened without O_DSYNC loses acknowledged commits", async (ctx) => {
    skipIfNoFuse(ctx);
    // RINGMASTER_DEBUG_SKIP_WAL_DSYNC=1: no sync op and no O_DSYNC. No checkpoints, as for
    // skip-fdatasync, so every lost commit is in the replay range and counted.
    const { status, result } = await soak(['--rounds', '6', '--workers', '2', '--faults', 'clear', '--checkpoint-ms', '0', '--no-worker-checkpoints',
      '--variant', 'dsync', '--control', 'skip-dsync'], 180000);
    console.log(`powercut control skip-dsync: ${summary(result)}`);
    expect(result.recordsLost).toBeGreaterThan(0);
    expect(result.controlCaught).toBe(true);
    expect(status).toBe(0);
  }, 240000);

  it('positive control: without full-page images a torn page write is not repaired', async (ctx) => {
    skipIfNoFuse(ctx);
    const { status, result } = await soak(['--rounds', '8', '--workers', '2', '--control', 'no-page-images'], 180000);
    console.log(`powercut control no-page-images: ${summary(result)}`);
    expect(result.tornPagesOnDiskBeforeRecovery).toBeGreaterThan(0);
    expect(result.controlCaught).toBe(true);
    expect(status).toBe(0);
  }, 240000);
});

describe('LazyFS mount helper (tools/lazyfs/lazyfs.cjs)', () => {
  const mounts: { unmount(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const m of mounts) await m.unmount().catch(() => {});
  });

  it('clear-cache drops exactly the unsynced bytes; a torn write reaches the disk in part and LazyFS dies; remount and unmount leave no mount', async (ctx) => {
    skipIfNoFuse(ctx);
    const m = await lazyfs.mount({ bin });
    mounts.push(m);
    const unsynced = path.join(m.mnt, 'unsynced');
    const synced = path.join(m.mnt, 'synced');
    fs.writeFileSync(unsynced, 'gone after the cut');
    const fd = fs.openSync(synced, 'w');
    fs.writeSync(fd, Buffer.alloc(8192, 0x41));
    fs.fsyncSync(fd);
    await m.clearCache();
    expect(fs.readFileSync(unsynced).length).toBe(0);  // created (metadata passes through), data gone
    expect(fs.readFileSync(synced).equals(Buffer.alloc(8192, 0x41))).toBe(true);
    await m.tornOp(m.rootPath(synced), { parts: 4, persist: [1, 3] });
    expect(() => fs.writeSync(fd, Buffer.alloc(8192, 0x42), 0, 8192, 0)).toThrow();  // LazyFS died under the write
    fs.closeSync(fd);
    expect(await m.waitExit(5000)).toBe(true);
    expect(m.crashes).toBe(1);
    await m.remount();
    const back = fs.readFileSync(synced);
    expect([0, 2048, 4096, 6144].map((o) => back[o])).toEqual([0x42, 0x41, 0x42, 0x41]);
    await expect(m.tornOp(`${m.root}/${'x'.repeat(120)}`, {})).rejects.toThrow(/longer than 99 bytes/);
    await m.unmount();
    expect(lazyfs.isMounted(m.mnt)).toBe(false);
    expect(fs.existsSync(m.dir)).toBe(false);
  }, 60000);

  // What the dsync soak relies on: an O_DSYNC write through FUSE reaches LazyFS as a write
  // and an fsync, so it survives the cut. Buffered O_DSYNC writes do on both backends. An
  // O_DIRECT | O_DSYNC write does when it is a pwrite (threads backend), but not when
  // io_uring issues it: the FUSE client completes an async direct write without the fsync
  // that O_DSYNC asks for, so LazyFS cannot judge wal.direct + walSync 'dsync' on io_uring
  // (logged, not asserted: it is the kernel's FUSE client, not this library).
  it('an O_DSYNC write through FUSE is synced at LazyFS (buffered, both backends; direct, threads backend); plain writes are not', async (ctx) => {
    skipIfNoFuse(ctx);
    const m = await lazyfs.mount({ bin });
    mounts.push(m);
    const seen: Record<string, string> = {};
    for (const backend of ['io_uring', 'threads'] as const) {
      for (const [name, flags] of [['plain', {}], ['dsync', { dsync: true }], ['direct', { direct: true }], ['direct+dsync', { direct: true, dsync: true }]] as const) {
        const dataDir = path.join(m.mnt, `${backend}-${name.replace('+', '-')}`);
        fs.mkdirSync(dataDir);
        const file = path.join(dataDir, 'f');
        const fd = fs.openSync(file, 'w');
        fs.writeSync(fd, Buffer.alloc(1 << 20));  // preallocated and synced: the write below does not extend it
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        const db = await rm.open({ dataDir, backend, arenaSize: 1 << 20 } as any);
        const f = await db.files.open('f', flags as any);
        const buf = db.allocate(4096);
        buf.bytes.fill(0x5a);
        expect(await db.write(f, 65536, buf)).toBe(4096);
        await db.close();
        await m.clearCache();
        const got = Buffer.alloc(4096);
        const ufd = fs.openSync(m.rootPath(file), 'r');
        fs.readSync(ufd, got, 0, 4096, 65536);
        fs.closeSync(ufd);
        seen[`${backend} ${name}`] = got.every((b) => b === 0x5a) ? 'synced' : got.every((b) => b === 0) ? 'lost' : 'partial';
      }
    }
    console.log(`O_DSYNC through LazyFS: ${JSON.stringify(seen)}`);
    expect(seen).toMatchObject({
      'io_uring plain': 'lost', 'io_uring dsync': 'synced', 'io_uring direct': 'lost',
      'threads plain': 'lost', 'threads dsync': 'synced', 'threads direct': 'lost', 'threads direct+dsync': 'synced',
    });
  }, 120000);

  // Since io_uring's direct + dsync write is not synced through FUSE (above), the WAL does
  // not rely on it there: with direct + walSync 'dsync' on a FUSE file system under io_uring
  // it keeps the write -> fdatasync chain (and says so); a flushed record survives the cut.
  it("wal direct + walSync 'dsync' on FUSE: io_uring keeps the fdatasync chain, threads use O_DSYNC; a flushed record survives the cut", async (ctx) => {
    skipIfNoFuse(ctx);
    const m = await lazyfs.mount({ bin });
    mounts.push(m);
    const inForce: Record<string, string> = {};
    for (const backend of ['io_uring', 'threads'] as const) {
      const dataDir = path.join(m.mnt, `wal-${backend}`);
      const wal = { direct: true, walSync: 'dsync', checkpointIntervalMs: 0 };
      // A child flushes one record and stays; it is SIGKILLed, then LazyFS drops what was
      // not synced (a clean close would checkpoint and rewrite the WAL's tail block).
      const script = `const rm = require(${JSON.stringify(path.join(__dirname, '..', '..'))});
        rm.open({ dataDir: ${JSON.stringify(dataDir)}, backend: '${backend}', arenaSize: 4 << 20, wal: ${JSON.stringify(wal)} }).then(async (db) => {
          const lsn = await db.wal.append(7, Buffer.from('survives the cut'));
          await db.wal.flush(lsn);
          process.stdout.write(JSON.stringify({ ...db.wal.stats(), backend: db.features.backend }) + '\\n');
          setInterval(() => {}, 1000);
        });`;
      const env = { ...process.env };
      delete env.RINGMASTER_BACKEND;  // the threads CI leg's override would make both runs threads
      const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'], env });
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.split('\n')[0]); });
        child.on('exit', (code) => reject(new Error(`child exited ${code} before flushing`)));
      });
      const stats = JSON.parse(line);
      inForce[stats.backend] = stats.walSync;
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      await m.clearCache();
      const seen: string[] = [];
      const db = await rm.open({ dataDir, backend, arenaSize: 4 << 20, wal: { ...wal, redo: { 7: (r: any) => { seen.push(r.payload.toString()); } } } } as any);
      await db.close();
      expect(seen).toContain('survives the cut');
    }
    expect(inForce).toEqual({ io_uring: 'fdatasync', threads: 'dsync' });
  }, 120000);

  it("cleanup never kills a process whose pid a stale mount's pid file names but which is not that mount's daemon (a reused pid)", async () => {
    const base = fs.mkdtempSync(path.join(os.tmpdir(), 'rm-stale-'));
    const bystander = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
      const dir = path.join(base, `${lazyfs.PREFIX}stale`);
      fs.mkdirSync(path.join(dir, 'mnt'), { recursive: true });
      fs.writeFileSync(path.join(dir, 'owner.pid'), gone.stdout);  // a process that has exited
      fs.writeFileSync(path.join(dir, 'lazyfs.pid'), String(bystander.pid));  // its pid went to someone else
      fs.writeFileSync(path.join(dir, 'keep'), '');
      expect(lazyfs.cleanupStale(base)).toEqual([]);
      await new Promise((r) => setTimeout(r, 100));
      expect(bystander.exitCode).toBe(null);
      expect(bystander.signalCode).toBe(null);
    } finally {
      bystander.kill('SIGKILL');
      fs.rmSync(base, { recursive: true, force: true });
    }
  });

  it('a mount whose owner was SIGKILLed is unmounted by the next cleanup', (ctx) => {
    skipIfNoFuse(ctx);
    const script = `const l = require(${JSON.stringify(path.join(__dirname, '..', '..', 'tools', 'lazyfs', 'lazyfs.cjs'))});
      l.mount({ bin: ${JSON.stringify(bin)} }).then((m) => { process.stdout.write(m.dir + '\\n'); process.kill(process.pid, 'SIGKILL'); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
    const dir = r.stdout.trim();
    expect(r.signal).toBe('SIGKILL');
    expect(lazyfs.isMounted(path.join(dir, 'mnt'))).toBe(true);
    expect(lazyfs.cleanupStale(path.dirname(dir))).toContain(dir);
    expect(lazyfs.isMounted(path.join(dir, 'mnt'))).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
  }, 60000);
});
