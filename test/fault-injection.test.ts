// Test-only fault injection (RINGMASTER_TEST_HOOKS=1): injected failures surface on
// the right op with a typed error, and break soft-linked chains as the kernel would.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { forkWorker, removeDir, startPm, tempDir } from './helpers';

const OP = { read: 1, write: 2, fsync: 3, fdatasync: 4 };
const EIO = -5;
const ENOSPC = -28;

let dir: string;
let pm: import('../core/index').Postmaster;
beforeEach(async () => {
  dir = tempDir();
  pm = await startPm(dir);
});
afterEach(async () => {
  pm._native().debugSetFault(0, null);
  await pm.stop();
  removeDir(dir);
});

describe('fault injection', () => {
  it('an injected fdatasync EIO cancels the page write linked after it', async () => {
    const wal = await pm.files.open('wal', { create: true });
    const data = await pm.files.open('data', { create: true });
    expect(pm._native().debugSetFault(0, { opMask: 1 << OP.fdatasync, fileSlot: wal.id % 65536, error: EIO })).toBe(true);
    const r = await pm.batch()
      .write(wal, 0, Buffer.from('rec'), { link: true })
      .fdatasync(wal, { link: true })
      .write(data, 0, Buffer.from('page'))
      .submit();
    expect(r[1]).toMatchObject({ ok: false, result: EIO });
    expect((r[1].error as any).code).toBe('EIO');
    expect((r[2].error as any).code).toBe('ECANCELED');
    expect(readFileSync(path.join(pm.dataDir, 'data')).length).toBe(0);
    expect(pm._native().debugFaultFired(0)).toBe(1);
    // A one-shot rule: the next fdatasync succeeds.
    await expect(pm.fdatasync(wal)).resolves.toBeUndefined();
  });

  it('the Nth matching op fails (skip), and a short write breaks a link', async () => {
    const f = await pm.files.open('f', { create: true });
    pm._native().debugSetFault(0, { opMask: 1 << OP.write, skip: 2, error: 0 });
    const r = await pm.batch()
      .write(f, 0, Buffer.from('aaaa'))
      .write(f, 4, Buffer.from('bbbb'))
      .write(f, 8, Buffer.from('cccc'), { link: true })
      .write(f, 12, Buffer.from('dddd'))
      .submit();
    expect(r.map((x) => x.result)).toEqual([4, 4, 2, -125]);
    expect(readFileSync(path.join(pm.dataDir, 'f')).toString()).toBe('aaaabbbb');
  });

  it('a repeating ENOSPC rule fails every write of a worker until cleared', async () => {
    const f = await pm.files.open('g', { create: true });
    const w = await forkWorker(pm);
    pm._native().debugSetFault(0, { opMask: 1 << OP.write, repeat: 1, error: ENOSPC });
    await expect(w.call('write', { file: f.id, offset: 0, data: 'x' })).rejects.toMatchObject({ code: 'ENOSPC' });
    await expect(w.call('write', { file: f.id, offset: 0, data: 'x' })).rejects.toMatchObject({ code: 'ENOSPC' });
    pm._native().debugSetFault(0, null);
    expect(await w.call('write', { file: f.id, offset: 0, data: 'x' })).toBe(1);
    expect(pm.handlesInUse()).toBe(0);
  });
});
