// Seeded random sequences of public API calls, valid and not (fixtures/misuse-sequence.cjs),
// each in a process of its own: every failure is a coded error, every op settles once the
// sequence gives its locks back, the shared tables stay sound, a checkpoint still succeeds
// and stop() too. Sequences like these found a completion word that overwrote a pool lock,
// a file closed with dirty pages that failed every later checkpoint, and completions lost
// when a flush refused a batch. A failing seed is cut down with KEEP (see the fixture).
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { runFixtureReport } from '../helpers';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'misuse-sequence.cjs');
const SEEDS = Array.from({ length: 16 }, (_, i) => i + 1);
const OPS = 400;

describe('random misuse sequences', () => {
  for (const seed of SEEDS) {
    // Seed N: coded errors only, nothing left unsettled, sound tables, a working checkpoint and stop.
    it(`seed ${seed}: ${OPS} calls leave no uncoded error, no unsettled op, no damaged table, and a checkpoint and stop that succeed`, async () => {
      const { report, code } = await runFixtureReport(FIXTURE, [String(seed), String(OPS)], `seed ${seed}`, { timeoutMs: 150_000 });
      expect(report.stranded, `seed ${seed}: the loop emptied with ops unsettled: ${JSON.stringify(report)}`).toBeUndefined();
      expect(report.bad, `seed ${seed}`).toEqual([]);
      expect(report.unsettled, `seed ${seed}: ops that never settled`).toBe(0);
      expect(report.integrity.anomalies, `seed ${seed}: integrity after the sequence`).toEqual([]);
      expect(report.checkpointError, `seed ${seed}: checkpoint after the sequence`).toBeNull();
      expect(report.stopError, `seed ${seed}: stop`).toBeNull();
      expect(code, `seed ${seed}: exit code`).toBe(0);
    }, 180_000);
  }
});
