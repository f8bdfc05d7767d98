// Seeded random misuse sequences (fixtures/misuse-ops.cjs) in 3 forked workers, or 3 worker
// threads, at once against one postmaster's buffer pool, WAL and files, one of them killed
// mid-sequence, beside an honest worker that updates pages under the rules
// (fixtures/misuse-multiprocess.cjs, one process per seed and mode): every failure is a
// coded error, every op settles once its sequence gives its locks back, the shared tables
// stay sound, every acknowledged honest update is in the pool, on disk and in the WAL, and
// a checkpoint and stop() succeed. Sequences like these found a page of a file opened
// read-only that markDirty accepted and no writeback could ever write (EBADF on every
// checkpoint). A failing seed is cut down with ONLY, KEEP, KEEPk and KILLAT (see the fixture).
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { runFixtureReport } from '../helpers';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'misuse-multiprocess.cjs');
const OPS = 400;
const RUNS: Array<{ mode: 'fork' | 'threads'; seeds: number[] }> = [
  { mode: 'fork', seeds: [2, 3, 4, 5, 6, 7] },
  { mode: 'threads', seeds: [1, 2, 3, 4, 5, 6] },
];

const runSeed = (seed: number, mode: string, env: Record<string, string> = {}) =>
  runFixtureReport(FIXTURE, [String(seed), mode, String(OPS)], `seed ${seed}`, { timeoutMs: 170_000, env });

for (const { mode, seeds } of RUNS) {
  describe(`random misuse sequences at once in 3 ${mode === 'fork' ? 'forked workers' : 'worker threads'}, one killed, beside an honest worker`, () => {
    for (const seed of seeds) {
      // Seed N: coded errors only, nothing unsettled, sound tables, every acknowledged update kept, a working checkpoint and stop.
      it(`seed ${seed}: no uncoded error, no unsettled op, no damaged table, no acknowledged update lost, and a checkpoint and stop that succeed`, async () => {
        const { report, code } = await runSeed(seed, mode);
        const all = JSON.stringify(report);
        expect(report.allDone, `seed ${seed}: every misusing worker not killed reported its end: ${all}`).toBe(true);
        expect(report.bad, `seed ${seed}`).toEqual([]);
        expect(report.unsettled, `seed ${seed}: ops that never settled: ${all}`).toBe(0);
        expect(report.closeErrors, `seed ${seed}: a worker's close()`).toEqual([]);
        expect(report.integrity.anomalies, `seed ${seed}: integrity after the sequences`).toEqual([]);
        expect(report.honest.acked, `seed ${seed}: the honest worker got updates acknowledged`).toBeGreaterThan(0);
        expect(report.lost, `seed ${seed}: acknowledged page updates missing from the pool or the disk`).toEqual([]);
        expect(report.lostRecords, `seed ${seed}: acknowledged WAL records missing`).toEqual([]);
        expect(report.checkpointError, `seed ${seed}: checkpoint after the sequences`).toBeNull();
        expect(report.stopError, `seed ${seed}: stop`).toBeNull();
        expect(code, `seed ${seed}: exit code`).toBe(0);
      }, 180_000);
    }
  });
}

describe('the lost-update check catches a loss (positive control)', () => {
  // An acknowledged page zeroed on disk after stop() is reported lost: the check reads what it claims to.
  it('seed 2, forked workers, with the latest acknowledged page zeroed on disk: reported lost on disk', async () => {
    const { report } = await runSeed(2, 'fork', { BREAK_DISK: '1' });
    expect(report.honest.acked).toBeGreaterThan(0);
    expect(report.lost.filter((l: { where: string }) => l.where === 'disk').length).toBe(1);
    expect(report.lost.filter((l: { where: string }) => l.where === 'pool')).toEqual([]);
  }, 180_000);
});
