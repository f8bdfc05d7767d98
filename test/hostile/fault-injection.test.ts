// Test-only fault injection (RINGMASTER_TEST_HOOKS=1): injected failures surface on
// the right op with a typed error, and break soft-linked chains as the kernel would.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { forkWorker, removeDir, startPm, tempDir } from '../helpers';

const OP = { read: 1, write: 2, fsync: 3, fdatasync: 4 };
const EIO = -5;
const ENOSPC = -28;

let dir: string;
let pm: import('../../core/index').Postmaster;
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

  it('a delayed write completes late with its full result; the op linked after it waits for it, an unrelated op does not', async () => {
    const a = await pm.files.open('delayed', { create: true });
    const c = await pm.files.open('other', { create: true });
    pm._native().debugSetFault(0, { opMask: 1 << OP.write, fileSlot: a.id % 65536, delayUs: 300_000 });
    const order: string[] = [];
    const chain = pm.batch()
      .write(a, 0, Buffer.from('AAAA'), { link: true })
      .write(a, 0, Buffer.from('BBBB'))
      .submit()
      .then((r) => { order.push('chain'); return r; });
    await pm.write(c, 0, Buffer.from('C'));
    order.push('unrelated');
    const r = await chain;
    expect(r.map((x) => x.result)).toEqual([4, 4]);
    expect(order).toEqual(['unrelated', 'chain']);
    // The linked write ran after the delayed one, not before it.
    expect(readFileSync(path.join(pm.dataDir, 'delayed')).toString()).toBe('BBBB');
    expect(pm._native().debugFaultFired(0)).toBe(1);
    expect(pm.handlesInUse()).toBe(0);
  });
});

describe('fault injection: WAL', () => {
  it('an fdatasync slower than wal.timeoutMs: a waiting commit gets ETIMEDOUT and is not reported durable; it is once the sync lands', async () => {
    await pm.stop();
    // The buffered WAL (its write -> fdatasync chain): the fdatasync is what is slow.
    pm = await startPm(dir, { wal: { segmentSize: 64 << 10, bufferSize: 64 << 10, timeoutMs: 200, direct: false } });
    const first = await pm.wal.append(1, Buffer.from('first'));
    pm._native().debugSetFault(0, { opMask: 1 << OP.fdatasync, delayUs: 1_000_000 });
    const slow = pm.wal.flush(first);  // becomes the flusher; its fdatasync is delayed
    await new Promise((r) => setTimeout(r, 20));
    const second = await pm.wal.append(1, Buffer.from('second'));
    let flushedAtTimeout = -1n;
    await expect(pm.wal.flush(second).catch((e) => { flushedAtTimeout = pm.wal.flushedLsn(); throw e; }))
      .rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(flushedAtTimeout).toBeLessThan(second);
    await slow;  // the delayed sync lands: the first record is durable
    expect(pm.wal.flushedLsn()).toBeGreaterThanOrEqual(first);
    await pm.wal.flush(second);
    expect(pm.wal.flushedLsn()).toBeGreaterThanOrEqual(second);
    expect(pm._native().debugFaultFired(0)).toBe(1);
  });
});
