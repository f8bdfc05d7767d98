// CI-sized runs of the worker kill soak (soak/kill.cjs): random SIGKILLs of forked
// workers that the postmaster restarts. The mixed workload (WAL commits of page
// updates in the buffer pool, pool reads, raw linked batches; recovery at the end) and
// the raw one. The long runs (npm run soak -- kill) are reported in RELIABILITY.md.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

function soak(workload: 'mixed' | 'raw') {
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', '..', 'soak', 'kill.cjs'), '--workload', workload, '--kills', '10', '--workers', '3', '--seconds', '60'], {
    encoding: 'utf8', timeout: 110000, env: { ...process.env, SOAK_NO_RESULTS: '1' },
  });
  const last = r.stdout.trim().split('\n').pop() || '{}';
  return { r, result: JSON.parse(last) };
}

describe('kill soak (short)', () => {
  it('mixed: 10 random SIGKILLs of 3 workers committing, reading the pool and writing raw: nothing lost, stuck, leaked or stalled > 2 s', () => {
    const { r, result } = soak('mixed');
    expect(result.failure, r.stderr).toBeNull();
    expect(result.kills).toBe(10);
    expect(result.lost).toBe(0);
    expect(result.rawLost).toBe(0);
    expect(result.stuckBuffers).toBe(0);
    expect(result.leakedHandles).toBe(0);
    expect(result.pinsLeft).toBe(0);
    expect(result.inconsistentCells).toBe(0);
    expect(result.maxStallMs, JSON.stringify(result.longestSilence)).toBeLessThanOrEqual(2000);  // the issue's criterion, in the workers' own clocks
    expect(result.acknowledgedCommitsChecked).toBeGreaterThan(0);
    expect(r.status).toBe(0);
  }, 120000);

  it('raw: 10 random SIGKILLs of 3 writing workers: no acknowledged record lost, no stall, no leak', () => {
    const { r, result } = soak('raw');
    expect(result.failure, r.stderr).toBeNull();
    expect(result.kills).toBe(10);
    expect(result.losses).toBe(0);
    expect(result.leakedHandles).toBe(0);
    expect(result.acknowledgedRecordsChecked).toBeGreaterThan(0);
    expect(r.status).toBe(0);
  }, 120000);
});
