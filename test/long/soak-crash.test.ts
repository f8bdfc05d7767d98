// A CI-sized run of the power-cut soak (soak/crash.cjs): the whole process group is
// SIGKILLed mid-commit, the WAL tail past the last acknowledged LSN is torn, and
// recovery must return every acknowledged record. Long run: RELIABILITY.md.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

describe('crash soak (short)', () => {
  it('6 power cuts with torn WAL tails: every acknowledged record recovered, nothing invented', () => {
    const r = spawnSync(process.execPath, [path.join(__dirname, '..', '..', 'soak', 'crash.cjs'), '--rounds', '6', '--workers', '2', '--tear'], {
      encoding: 'utf8', timeout: 120000, env: { ...process.env, SOAK_NO_RESULTS: '1' },
    });
    const result = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
    expect(result.failure).toBeNull();
    expect(result.losses).toBe(0);
    expect(result.acknowledgedRecordsChecked).toBeGreaterThan(0);
    expect(r.status).toBe(0);
  });
});
