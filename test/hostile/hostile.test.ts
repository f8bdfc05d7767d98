// Completions are untrusted input: a CQE whose user_data names no live IO is
// reported and ignored, never dereferenced, and IO keeps working.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeDir, startPm, tempDir, waitFor } from '../helpers';

let dir: string;
let pm: import('../../core/index').Postmaster;
beforeEach(async () => {
  dir = tempDir();
  pm = await startPm(dir);
});
afterEach(async () => {
  await pm.stop();
  removeDir(dir);
});

describe.runIf(process.env.RINGMASTER_BACKEND !== 'threads')('hostile completions', () => {
  const garbage = [
    0xffffffffn,                 // index far out of range
    (7n << 32n) | 3n,            // index in range, generation never issued
    0x123456789abcdefn,          // random
    (1n << 63n) | 0xfffffn,      // high bits set
  ];
  for (const ud of garbage) {
    it(`a CQE with user_data 0x${ud.toString(16)} is counted as corrupt and ignored`, async () => {
      const f = await pm.files.open('h.dat', { create: true });
      const before = pm.stats().rings[0].corruptCqes;
      expect(pm._native().debugSubmitRawNop(0, ud)).toBe(true);
      expect(await pm.write(f, 0, Buffer.from('still fine'))).toBe(10);
      await waitFor(() => pm.stats().rings[0].corruptCqes === before + 1, 10000, 'the corrupt CQE to be reaped');
      expect(pm.stats().corruptReports).toBeGreaterThanOrEqual(1);
      expect(pm.handlesInUse()).toBe(0);
    });
  }

  it('a duplicate CQE for an IO that already completed is stale, not a second completion', async () => {
    const f = await pm.files.open('d.dat', { create: true });
    const [r] = await pm.batch().write(f, 0, Buffer.from('once')).submit();
    expect(r.ok).toBe(true);
    // The handle that IO used is free now (generation bumped): replaying its old user_data must do nothing.
    const s0 = pm.stats().rings[0];
    for (let i = 0; i < 4; i++) expect(pm._native().debugSubmitRawNop(0, BigInt(i))).toBe(true);  // gen 0, indices 0..3
    const bad = () => { const s1 = pm.stats().rings[0]; return s1.corruptCqes + s1.staleCqes - s0.corruptCqes - s0.staleCqes; };
    await waitFor(() => bad() === 4, 10000, 'four replayed CQEs to be reaped and rejected');
    // ...and none of them was taken as the completion of the next IO on a reused handle.
    expect(await pm.write(f, 4, Buffer.from('more'))).toBe(4);
    expect(bad()).toBe(4);
  });
});
