// Data integrity under concurrency: inline reaping, foreign reaping and doorbell
// delivery must never hand an op another op's result.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { removeDir, tempDir } from '../helpers';

describe('integrity', () => {
  it('2 processes x 32 concurrent reads: every read returns exactly the block asked for', () => {
    const dir = tempDir();
    try {
      const r = spawnSync(process.execPath, [path.join(__dirname, '..', 'fixtures', 'integrity.cjs'), path.join(dir, 'd'), '1'], { encoding: 'utf8', timeout: 60000 });
      const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}');
      expect(out.pm.n).toBeGreaterThan(100);
      expect(out.child.n).toBeGreaterThan(100);
      expect(out.pm.bad + out.child.bad).toBe(0);
      expect(r.status).toBe(0);
    } finally {
      removeDir(dir);
    }
  });
});
