// Misuse of the buffer pool API gets a clear, coded error and never corrupts the pool.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { addon, removeDir, rm, startPm, tempDir, backend } from '../helpers';

const PS = 4096;
let dir: string;
let pm: import('../../core/index').Postmaster;
let f: import('../../core/index').FileHandle;

beforeAll(async () => {
  dir = tempDir('rm-bp-bad-');
  pm = await startPm(dir, { bufferPool: { pages: 8, pageSize: PS } });
  f = await pm.files.open('d', { create: true });
  await pm.write(f, 0, new Uint8Array(PS * 2));
});
afterAll(async () => {
  await pm.stop();
  removeDir(dir);
});

async function startWith(bufferPool: unknown, extra: Record<string, unknown> = {}) {
  const d = tempDir('rm-bp-bad2-');
  try {
    const p = await rm.Postmaster.start({ dataDir: path.join(d, 'data'), backend, bufferPool, ...extra } as any);
    await p.stop();
    return 'started';
  } finally {
    removeDir(d);
  }
}

describe('buffer pool: bad input', () => {
  it('read: file must be a FileHandle or an id', async () => {
    await expect(pm.buffers.read('x' as any, 0)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(pm.buffers.read(-1, 0)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('read: block must be a non-negative integer within the addressable range', async () => {
    await expect(pm.buffers.read(f, -1)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(pm.buffers.read(f, 1.5)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(pm.buffers.read(f, '1' as any)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(pm.buffers.read(f, 2 ** 52)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(pm.buffers.read(f, -1n)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  });

  it('read: unknown mode and bad options', async () => {
    await expect(pm.buffers.read(f, 0, { mode: 'fast' as any })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(pm.buffers.read(f, 0, null as any)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('read: a closed file handle or an unknown file id', async () => {
    const g = await pm.files.open('g', { create: true });
    await g.close();
    await expect(pm.buffers.read(g, 0)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_FILE_CLOSED' });
    await expect(pm.buffers.read(123456789, 0)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_BAD_FILE' });
    expect(pm.buffers.stats().pinned).toBe(0);
  });

  it('releasing twice, and using a released buffer', async () => {
    const b = await pm.buffers.read(f, 0);
    b.release();
    expect(() => b.release()).toThrow(expect.objectContaining({ code: 'ERR_RINGMASTER_BUFFER_RELEASED' }));
    expect(() => b.page).toThrow(expect.objectContaining({ code: 'ERR_RINGMASTER_BUFFER_RELEASED' }));
    await expect(b.lockShared()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_BUFFER_RELEASED' });
    expect(() => b.markDirty(1n)).toThrow(expect.objectContaining({ code: 'ERR_RINGMASTER_BUFFER_RELEASED' }));
    expect(pm.buffers.stats().pinned).toBe(0);
  });

  it('markDirty without the exclusive lock (none, or shared)', async () => {
    const b = await pm.buffers.read(f, 0);
    expect(() => b.markDirty(1n)).toThrow(expect.objectContaining({ code: 'ERR_RINGMASTER_NOT_LOCKED_EXCLUSIVE' }));
    await b.lockShared();
    expect(() => b.markDirty(1n)).toThrow(expect.objectContaining({ code: 'ERR_RINGMASTER_NOT_LOCKED_EXCLUSIVE' }));
    b.release();
    expect(pm.buffers.stats().dirty).toBe(0);
  });

  it('markDirty with a non-bigint or out-of-range LSN', async () => {
    const b = await pm.buffers.read(f, 0);
    await b.lockExclusive();
    expect(() => b.markDirty(1 as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => b.markDirty(-1n)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => b.markDirty(1n << 64n)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    b.release();
  });

  it('unlock without a lock, and locking twice through one handle', async () => {
    const b = await pm.buffers.read(f, 1);
    expect(() => b.unlock()).toThrow(expect.objectContaining({ code: 'ERR_RINGMASTER_NOT_LOCKED' }));
    await b.lockShared();
    await expect(b.lockShared()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_LOCK_HELD' });
    await expect(b.lockExclusive()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_LOCK_HELD' });
    b.unlock();
    b.release();
  });

  it('an exclusive lock that cannot be granted times out instead of hanging', async () => {
    const a = await pm.buffers.read(f, 1);
    const b = await pm.buffers.read(f, 1);
    await a.lockShared();
    pm.buffers.configure({ lockWaitMs: 50, waitForOwnLocks: true });
    await expect(b.lockExclusive()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_LOCK_TIMEOUT' });
    pm.buffers.configure({ lockWaitMs: 30000, waitForOwnLocks: false });
    a.release();
    await b.lockExclusive();
    b.release();
    expect(pm.buffers.stats().lockWaiters).toBe(0);  // the timed-out request left the queue
  });

  it('a lock this environment already holds fails at once with ERR_RINGMASTER_SELF_DEADLOCK, not after lockWaitMs', async () => {
    // lockWaitMs stays 30 s: a request that waited for its own hold would outlive the test.
    const a = await pm.buffers.read(f, 0);
    const b = await pm.buffers.read(f, 0);
    await a.lockExclusive();
    await expect(b.lockExclusive()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SELF_DEADLOCK' });
    await expect(b.lockShared()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SELF_DEADLOCK' });
    a.unlock();
    await a.lockShared();
    await expect(b.lockExclusive()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_SELF_DEADLOCK' });
    await b.lockShared();  // shared + shared by one environment: no conflict
    a.release();
    b.unlock();
    await b.lockExclusive();  // the failed requests left nothing behind
    b.release();
    expect(() => pm.buffers.configure({ waitForOwnLocks: 1 as any })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('start options: page size not a power of two or out of range, unknown keys, too many pages', async () => {
    await expect(startWith({ pageSize: 6000 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(startWith({ pageSize: 1024 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(startWith({ pageSize: 65536 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(startWith({ pages: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(startWith({ pages: 1.5 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(startWith({ size: 3 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('an arena too small for the pool is a clear error', async () => {
    await expect(startWith({ pages: 4096, pageSize: 8192 }, { arenaSize: 1 << 20 })).rejects.toMatchObject({ code: 'ERR_RINGMASTER_ARENA_TOO_SMALL' });
  });

  it('no pool configured: db.buffers says so', async () => {
    const d = tempDir('rm-bp-bad3-');
    const p = await rm.Postmaster.start({ dataDir: path.join(d, 'data'), backend } as any);
    try {
      const g = await p.files.open('x', { create: true });
      await expect(p.buffers.read(g, 0)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_NO_BUFFER_POOL' });
      expect(() => p.buffers.stats()).toThrow(expect.objectContaining({ code: 'ERR_RINGMASTER_NO_BUFFER_POOL' }));
    } finally {
      await p.stop();
      removeDir(d);
    }
  });

  it('setWalHook, configure, stream, prefetch and the background writer validate their arguments', async () => {
    expect(() => pm.buffers.setWalHook({} as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => pm.buffers.configure({ walBeforeData: 'later' as any })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => pm.buffers.configure({ pinWaitMs: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => pm.buffers.configure({ bogus: 1 } as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    await expect(pm.buffers.stream(f, 5, 2).next()).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(pm.buffers.stream(f, 0, 2, { depth: 0 }).next()).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(pm.buffers.prefetch(f, 3 as any)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(() => pm.buffers.startBackgroundWriter({ intervalMs: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });

  it('the native functions reject a non-session, out-of-range buffer ids and short pages', () => {
    const N = addon;
    expect(() => N.bpPin({}, 1, 0)).toThrow(TypeError);
    expect(() => N.bpUnpin(pm._native(), 8)).toThrow(RangeError);
    expect(() => N.bpLock(pm._native(), -1, true)).toThrow(RangeError);
    expect(() => N.bpStartIo(pm._native(), 1e9, 0, false, true)).toThrow(RangeError);
    expect(() => rm.setPageChecksum(new Uint8Array(100))).toThrow(RangeError);
    // Not pinned by this environment: refused, nothing changes.
    expect(N.bpUnpin(pm._native(), 3)).toBe(false);
    expect(() => N.bpLock(pm._native(), 3, true)).toThrow(expect.objectContaining({ code: 'ERR_RINGMASTER_NOT_PINNED' }));
    expect(pm.buffers.stats().pinned).toBe(0);
  });

  it('the pool is still consistent after all of this', async () => {
    const b = await pm.buffers.read(f, 1);
    await b.lockExclusive();
    b.page[50] = 1;
    b.markDirty(2n);
    b.release();
    expect(await pm.buffers.flushAll()).toBe(1);
    expect(pm.buffers.stats()).toMatchObject({ pinned: 0, dirty: 0 });
  });
});
