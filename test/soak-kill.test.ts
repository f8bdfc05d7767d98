// A CI-sized run of the worker kill soak (soak/kill.cjs): random SIGKILLs of workers
// that write and fdatasync records; the postmaster restarts them. The long run
// (npm run soak -- kill) is reported in RELIABILITY.md.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

describe('kill soak (short)', () => {
  it('10 random SIGKILLs of 3 writing workers: no acknowledged record lost, no stall, no leak', () => {
    const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'soak', 'kill.cjs'), '--kills', '10', '--workers', '3', '--seconds', '60'], {
      encoding: 'utf8', timeout: 90000, env: { ...process.env, SOAK_NO_RESULTS: '1' },
    });
    const last = r.stdout.trim().split('\n').pop() ?? '{}';
    const result = JSON.parse(last);
    expect(result.failure).toBeNull();
    expect(result.kills).toBe(10);
    expect(result.losses).toBe(0);
    expect(result.leakedHandles).toBe(0);
    expect(result.acknowledgedRecordsChecked).toBeGreaterThan(0);
    expect(r.status).toBe(0);
  });
});
