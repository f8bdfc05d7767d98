// Power cuts under a real ext4: the power-cut soak (soak/powercut.cjs --fs ext4-lazyfs) with
// the data directory on ext4, on a loop device, on an image file on LazyFS
// (tools/lazyfs/ext4-on-lazyfs.cjs). ext4 sends the "disk" its flushes (the loop device turns
// each into an fsync on LazyFS), so the cut drops exactly what ext4 never had flushed: this is
// where wal.direct + walSync 'dsync' (O_DIRECT | O_DSYNC segments, no sync op: ext4 completes
// the write with FUA or a flush) is tested, which LazyFS alone cannot judge under io_uring.
// Needs root (loop devices, mounts), /dev/loop-control, losetup, mkfs.ext4 and FUSE;
// elsewhere (the non-root leg) every test is skipped with the reason. The soaks pick their
// backends themselves, so they run in the leg without RINGMASTER_BACKEND only (the threads
// leg would repeat them). Long runs: RELIABILITY.md.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { runPowercutSoak } from '../helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const lazyfs = require('../../tools/lazyfs/lazyfs.cjs');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ext4 = require('../../tools/lazyfs/ext4-on-lazyfs.cjs');

const SOAK = path.join(__dirname, '..', '..', 'soak', 'powercut.cjs');
let skipReason: string | null = null;
let bin: string | null = null;

beforeAll(async () => {
  skipReason = ext4.unavailable();
  if (!skipReason) {
    const built = await lazyfs.ensureBuiltAsync();  // cached in tools/lazyfs/.build
    if (built.skipped) skipReason = built.skipped;
    else bin = built.bin;
  }
  // A loop device may still be refused (a container): one throwaway mount says.
  if (!skipReason) skipReason = await ext4.probe(bin);
  if (skipReason) console.warn(`ext4 power-cut tests skipped: ${skipReason}`);
}, 30 * 60 * 1000);

function skipIfUnavailable(ctx: { skip: (note?: string) => never }): void {
  if (skipReason) ctx.skip(`ext4 on LazyFS cannot run here: ${skipReason}`);
}
function skipSoakIfUnavailable(ctx: { skip: (note?: string) => never }): void {
  skipIfUnavailable(ctx);
  if (process.env.RINGMASTER_BACKEND) ctx.skip('the soaks here choose their backend with --backend: run in the leg without RINGMASTER_BACKEND');
}

interface SoakResult {
  ok: boolean; failure: string | null; skipped?: string; fs: string; rounds: number; controlCaught: boolean | null;
  walInForce: { walSync: string; direct: boolean; backend: string } | null; walMismatches: number;
  pageUpdatesAcknowledged: number; pageUpdatesLost: number; cellRegressions: number; inconsistentCells: number;
  recordsAcknowledged: number; recordsLost: number; replayShrunk: number; foreignRecords: number;
  unreadablePages: number; redoBadRecords: number; recoveries: number; recoveriesCut: number; finalRecoveryRetries: number;
  workerErrorsBeforeCut: number;
  faults: { clear: number; 'lazyfs-crash': { killed: number; unplanned: number } };
  kept: string | null;
}

// --backend decides, not the leg's RINGMASTER_BACKEND. A run that lost something keeps its
// files (the path is printed) to look into.
function soak(args: string[], timeoutMs: number) {
  return runPowercutSoak<SoakResult>(['--fs', 'ext4-lazyfs', ...args], timeoutMs, { env: { RINGMASTER_BACKEND: undefined }, keepOnFailure: true });
}

const summary = (r: SoakResult) => JSON.stringify({
  rounds: r.rounds, failure: r.failure, wal: r.walInForce, pageUpdatesAcknowledged: r.pageUpdatesAcknowledged, pageUpdatesLost: r.pageUpdatesLost,
  recordsAcknowledged: r.recordsAcknowledged, recordsLost: r.recordsLost, faults: r.faults, kept: r.kept,
});

// Every acknowledged page update and commit recovered, after `rounds` cuts, each recovery checked.
function expectNothingLost(r: SoakResult, status: number | null, stderr: string, rounds: number): void {
  if (r.failure) console.log(stderr.split('\n').filter((l) => /^round|FAIL|kept/.test(l)).join('\n'));
  expect(r.skipped).toBeUndefined();
  expect(r.fs).toBe('ext4-lazyfs');
  expect(r.rounds).toBe(rounds);
  expect(r.recoveries + r.recoveriesCut).toBe(rounds + 1 + r.finalRecoveryRetries);
  expect(r.recoveries).toBeGreaterThanOrEqual(2);
  expect(r.workerErrorsBeforeCut).toBe(0);
  expect(r.recordsAcknowledged).toBeGreaterThan(0);
  expect(r.pageUpdatesAcknowledged).toBeGreaterThan(0);
  expect(r.recordsLost + r.replayShrunk + r.foreignRecords).toBe(0);
  expect(r.pageUpdatesLost + r.cellRegressions + r.inconsistentCells + r.unreadablePages + r.redoBadRecords).toBe(0);
  expect(r.walMismatches).toBe(0);
  expect(r.failure).toBeNull();
  expect(status).toBe(0);
}

// Both cuts: SIGKILL of LazyFS after the workers are killed (clear), and under running workers.
const CUTS = ['--faults', 'clear,lazyfs-crash'];

describe('power cuts under ext4 on LazyFS (soak/powercut.cjs --fs ext4-lazyfs, short)', () => {
  it("wal direct + walSync 'dsync' on io_uring: the WAL sees ext4 and sends no sync op, and every acknowledged commit and page update survives the cuts", async (ctx) => {
    skipSoakIfUnavailable(ctx);
    const { status, result, stderr } = await soak(['--backend', 'io_uring', '--variant', 'direct-dsync', '--rounds', '4', '--workers', '2', '--max-ms', '900', ...CUTS], 150000);
    console.log(`ext4 powercut direct-dsync io_uring: ${summary(result)}`);
    // On ext4 the WAL keeps O_DSYNC under io_uring (on FUSE it would fall back to fdatasync).
    expect(result.walInForce).toEqual({ walSync: 'dsync', direct: true, backend: 'io_uring' });
    expectNothingLost(result, status, stderr, 4);
  }, 180000);

  it("wal direct + walSync 'dsync' on the threads backend: every acknowledged commit and page update survives the cuts", async (ctx) => {
    skipSoakIfUnavailable(ctx);
    const { status, result, stderr } = await soak(['--backend', 'threads', '--variant', 'direct-dsync', '--rounds', '3', '--workers', '2', '--max-ms', '900', ...CUTS], 150000);
    console.log(`ext4 powercut direct-dsync threads: ${summary(result)}`);
    expect(result.walInForce).toEqual({ walSync: 'dsync', direct: true, backend: 'threads' });
    expectNothingLost(result, status, stderr, 3);
  }, 180000);

  it('the buffered WAL (wal.direct false: writes linked to fdatasync) on io_uring: every acknowledged commit and page update survives the cuts', async (ctx) => {
    skipSoakIfUnavailable(ctx);
    const { status, result, stderr } = await soak(['--backend', 'io_uring', '--rounds', '3', '--workers', '2', '--max-ms', '900', ...CUTS], 150000);
    console.log(`ext4 powercut fdatasync io_uring: ${summary(result)}`);
    expect(result.walInForce).toEqual({ walSync: 'fdatasync', direct: false, backend: 'io_uring' });
    expectNothingLost(result, status, stderr, 3);
  }, 180000);

  it("positive control: direct + 'dsync' segments opened without O_DSYNC (no sync op, no flush) lose acknowledged commits under ext4", async (ctx) => {
    skipSoakIfUnavailable(ctx);
    // RINGMASTER_DEBUG_SKIP_WAL_DSYNC=1: the O_DIRECT writes reach the loop device, and so
    // LazyFS, but nothing makes ext4 flush them. No checkpoints: their syncs flush the whole
    // disk (the WAL writes before them too), and every lost commit stays in the replay range.
    const { status, result } = await soak(['--backend', 'io_uring', '--variant', 'direct-dsync', '--control', 'skip-dsync', '--rounds', '6', '--workers', '2',
      '--faults', 'clear', '--checkpoint-ms', '0', '--no-worker-checkpoints'], 150000);
    console.log(`ext4 powercut control skip-dsync: ${summary(result)}`);
    expect(result.walInForce).toEqual({ walSync: 'dsync', direct: true, backend: 'io_uring' });
    expect(result.recordsLost + result.pageUpdatesLost).toBeGreaterThan(0);
    expect(result.controlCaught).toBe(true);
    expect(status).toBe(0);
  }, 180000);

  it('faults that tear writes to one file at LazyFS are refused under ext4, with the reason', () => {
    for (const faults of ['torn-op', 'clear,torn-seq', 'torn-op-wal']) {
      const r = spawnSync(process.execPath, [SOAK, '--no-results', '--fs', 'ext4-lazyfs', '--faults', faults, '--rounds', '1'], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/--fs ext4-lazyfs: .*tear or reorder the writes to one file at LazyFS.*use --faults clear,lazyfs-crash/);
    }
    const r = spawnSync(process.execPath, [SOAK, '--no-results', '--fs', 'ext4-lazyfs', '--control', 'no-page-images', '--rounds', '1'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/no-page-images needs torn page writes/);
  });
});

describe('ext4 on LazyFS (tools/lazyfs/ext4-on-lazyfs.cjs)', () => {
  const opened: { unmount(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const d of opened) await d.unmount().catch(() => {});
  });
  const ourLoops = (dir: string) => ext4.loops().filter((l: { backing: string }) => l.backing.startsWith(`${dir}/`));

  it('a cut keeps what ext4 flushed (O_DIRECT | O_DSYNC, fsync) and drops what it did not (buffered, O_DIRECT alone); nothing is left attached after unmount', async (ctx) => {
    skipIfUnavailable(ctx);
    // commit=600: ext4's periodic journal commit (every 5 s by default) would flush the disk
    // and make the unflushed files below durable if the machine is slow enough.
    const d = await ext4.mount({ bin, mountOptions: 'commit=600' });
    opened.push(d);
    expect(fs.statfsSync(d.mnt).type).toBe(0xef53);  // ext4, not FUSE
    const dd = (name: string, oflag: string) => execFileSync('dd', ['if=/dev/urandom', `of=${path.join(d.mnt, name)}`, 'bs=4096', 'count=4', 'status=none', ...(oflag ? [`oflag=${oflag}`] : [])]);
    fs.writeFileSync(path.join(d.mnt, 'fsynced'), 'x'.repeat(10000));
    const fd = fs.openSync(path.join(d.mnt, 'fsynced'), 'r+');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    dd('direct-dsync', 'direct,dsync');
    // After the last flush (any flush makes every earlier write durable, these too):
    dd('direct', 'direct');
    dd('buffered', '');
    const before = fs.readFileSync(path.join(d.mnt, 'direct-dsync'));
    await d.powerCut();
    expect(ourLoops(d.lazyfs.mnt)).toEqual([]);
    await d.remount();  // journal replayed
    expect(fs.readFileSync(path.join(d.mnt, 'direct-dsync')).equals(before)).toBe(true);
    expect(fs.readFileSync(path.join(d.mnt, 'fsynced'), 'utf8')).toBe('x'.repeat(10000));
    const size = (n: string) => (fs.existsSync(path.join(d.mnt, n)) ? fs.statSync(path.join(d.mnt, n)).size : 0);
    expect(size('buffered')).toBe(0);
    expect(size('direct')).toBe(0);
    const lazyMnt = d.lazyfs.mnt;
    await d.unmount();
    expect(ourLoops(lazyMnt)).toEqual([]);
    expect(ext4.mounts().some((m: { mnt: string }) => m.mnt.startsWith(d.dir))).toBe(false);
    expect(fs.existsSync(d.dir)).toBe(false);
  }, 60000);

  it("the ext4 mount and loop device of an owner that was SIGKILLed are released by the next cleanup, and only they", async (ctx) => {
    skipIfUnavailable(ctx);
    const bystander = await ext4.mount({ bin });  // alive owner (this process): never touched
    opened.push(bystander);
    const script = `const e = require(${JSON.stringify(path.join(__dirname, '..', '..', 'tools', 'lazyfs', 'ext4-on-lazyfs.cjs'))});
      e.mount({ bin: ${JSON.stringify(bin)} }).then((d) => { require('fs').writeFileSync(d.mnt + '/f', 'y'); process.stdout.write(d.dir + '\\n'); process.kill(process.pid, 'SIGKILL'); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60000 });
    const dir = r.stdout.trim();
    expect(r.signal).toBe('SIGKILL');
    expect(ourLoops(path.join(dir, 'mnt')).length).toBe(1);
    expect(ext4.mounts().some((m: { mnt: string; fstype: string }) => m.mnt === path.join(dir, 'ext4') && m.fstype === 'ext4')).toBe(true);
    expect(ext4.cleanupStale(path.dirname(dir))).toContain(dir);
    expect(ourLoops(path.join(dir, 'mnt'))).toEqual([]);
    expect(ext4.mounts().some((m: { mnt: string }) => m.mnt.startsWith(dir))).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
    // The live one is intact.
    expect(ourLoops(bystander.lazyfs.mnt).length).toBe(1);
    fs.writeFileSync(path.join(bystander.mnt, 'still'), 'here');
    expect(fs.readFileSync(path.join(bystander.mnt, 'still'), 'utf8')).toBe('here');
  }, 90000);
});
