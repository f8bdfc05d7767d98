// Bad input to the WAL: every case fails with a typed error and leaves the WAL usable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { addon, backend, removeDir, rm, tempDir } from '../helpers';

let dir: string;
let pm: import('../../core/index').Postmaster;
const wal = { segmentSize: 64 << 10, bufferSize: 64 << 10 };

beforeAll(async () => {
  dir = tempDir('rm-walbad-');
  pm = await rm.Postmaster.start({ dataDir: path.join(dir, 'data'), backend, wal } as any);
});
afterAll(async () => {
  await pm.stop();
  removeDir(dir);
});

function startWith(w: unknown, sub = 'x') {
  return rm.Postmaster.start({ dataDir: path.join(dir, sub), backend, wal: w } as any);
}

describe('wal: bad input', () => {
  it.each([
    ['kind 0 (reserved for padding)', () => pm.wal.append(0, new Uint8Array(1)), 'ERR_OUT_OF_RANGE'],
    ['kind 0xFFF0 (reserved)', () => pm.wal.append(0xfff0, new Uint8Array(1)), 'ERR_OUT_OF_RANGE'],
    ['kind 70000', () => pm.wal.append(70000, new Uint8Array(1)), 'ERR_OUT_OF_RANGE'],
    ['kind as a string', () => pm.wal.append('1' as any, new Uint8Array(1)), 'ERR_INVALID_ARG_TYPE'],
    ['kind 1.5', () => pm.wal.append(1.5, new Uint8Array(1)), 'ERR_INVALID_ARG_TYPE'],
    ['payload a string', () => pm.wal.append(1, 'abc' as any), 'ERR_INVALID_ARG_TYPE'],
    ['payload null', () => pm.wal.append(1, null as any), 'ERR_INVALID_ARG_TYPE'],
    ['record larger than half the buffer', () => pm.wal.append(1, new Uint8Array(40 << 10)), undefined],
    ['flush(-1n)', () => pm.wal.flush(-1n), 'ERR_OUT_OF_RANGE'],
    ['flush("x")', () => pm.wal.flush('x' as any), 'ERR_INVALID_ARG_TYPE'],
    ['flush(1.5)', () => pm.wal.flush(1.5), 'ERR_OUT_OF_RANGE'],
    ['flush beyond the end of the WAL', () => pm.wal.flush(1n << 50n), 'ERR_OUT_OF_RANGE'],
    ['appendPageImage escaping the data dir', () => pm.wal.appendPageImage('../x', 0, new Uint8Array(8)), 'ERR_INVALID_ARG_VALUE'],
    ['appendPageImage absolute path', () => pm.wal.appendPageImage('/etc/passwd', 0, new Uint8Array(8)), 'ERR_INVALID_ARG_VALUE'],
    ['appendPageImage negative block', () => pm.wal.appendPageImage('rel', -1, new Uint8Array(8)), 'ERR_OUT_OF_RANGE'],
    ['appendPageImage empty image', () => pm.wal.appendPageImage('rel', 0, new Uint8Array(0)), 'ERR_OUT_OF_RANGE'],
    ['appendPageImage unknown file id', () => pm.wal.appendPageImage(123456, 0, new Uint8Array(8)), 'ERR_RINGMASTER_BAD_FILE'],
  ])('%s is rejected', async (_name, fn, code) => {
    const p = (async () => fn())();
    if (code) await expect(p).rejects.toMatchObject({ code });
    else await expect(p).rejects.toBeInstanceOf(RangeError);
  });

  it.each([
    ['wal: null', null, 'ERR_INVALID_ARG_TYPE'],
    ['an unknown wal option', { ...wal, bogus: 1 }, 'ERR_INVALID_ARG_VALUE'],
    ['bufferSize not a multiple of 4096', { ...wal, bufferSize: (64 << 10) + 1 }, 'ERR_OUT_OF_RANGE'],
    ['bufferSize too small', { ...wal, bufferSize: 4096 }, 'ERR_OUT_OF_RANGE'],
    ['segmentSize not a multiple of 4096', { ...wal, segmentSize: (64 << 10) + 100 }, 'ERR_OUT_OF_RANGE'],
    ['segmentSize as a string', { ...wal, segmentSize: '1M' }, 'ERR_INVALID_ARG_TYPE'],
    ["walSync: 'sometimes'", { ...wal, walSync: 'sometimes' }, 'ERR_INVALID_ARG_VALUE'],
    ['direct: "yes"', { ...wal, direct: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
    ['commitDelayUs: -1', { ...wal, commitDelayUs: -1 }, 'ERR_OUT_OF_RANGE'],
    ['redo for kind 0', { ...wal, redo: { 0: () => {} } }, 'ERR_OUT_OF_RANGE'],
    ['redo handler not a function', { ...wal, redo: { 5: 'x' } }, 'ERR_INVALID_ARG_TYPE'],
    ['redo not an object', { ...wal, redo: 5 }, 'ERR_INVALID_ARG_TYPE'],
  ])('Postmaster.start with %s is rejected', async (_name, w, code) => {
    await expect(startWith(w)).rejects.toMatchObject({ code });
  });

  it('a corrupt control file stops the start (never silently starts a fresh WAL)', async () => {
    const p = await startWith(wal, 'ctl');
    await p.stop();
    writeFileSync(path.join(dir, 'ctl', 'pg_control'), Buffer.alloc(64, 0x5a));
    await expect(startWith(wal, 'ctl')).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_CONTROL' });
  });

  it('a WAL missing the checkpoint record the control file names is refused (ERR_RINGMASTER_WAL_CORRUPT)', async () => {
    const p = await startWith(wal, 'lost');
    await p.wal.flush(await p.wal.append(1, Buffer.from('x')));
    await p.wal.checkpoint();
    await p.stop();
    for (const f of readdirSync(path.join(dir, 'lost', 'pg_wal'))) rmSync(path.join(dir, 'lost', 'pg_wal', f));
    await expect(startWith(wal, 'lost')).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_CORRUPT' });
  });

  it('a segment size different from the existing WAL is rejected', async () => {
    const p = await startWith(wal, 'segsz');
    await p.stop();
    await expect(startWith({ ...wal, segmentSize: 128 << 10 }, 'segsz')).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_CONTROL' });
  });

  it('a redo handler that throws stops the start with its error (no half-recovered service)', async () => {
    const p = await startWith(wal, 'redoerr');
    await p.wal.flush(await p.wal.append(4, Buffer.from('boom')));
    await p.stop();
    await expect(startWith({ ...wal, redo: { 4: () => { throw Object.assign(new Error('redo failed'), { code: 'E_USER' }); } } }, 'redoerr'))
      .rejects.toMatchObject({ code: 'E_USER' });
    // Handlers registered with Wal.onRedo before the start are used too.
    const seen: string[] = [];
    rm.Wal.onRedo(4, (r) => { seen.push(r.payload.toString()); });
    const p2 = await startWith(wal, 'redoerr');
    await p2.stop();
    expect(seen).toEqual(['boom']);
    expect(() => rm.Wal.onRedo(0, () => {})).toThrow(RangeError);
  });

  it('a module function given something that is not a session throws ERR_INVALID_ARG_TYPE, even an object with its prototype', () => {
    const s = pm._native();
    const fake = Object.create(Object.getPrototypeOf(s));
    for (const bad of [fake, {}, null, 1]) {
      expect(() => addon.walState(bad)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
      expect(() => addon.walCount(bad, 1, 0, 0)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    }
    expect(addon.walFailed(s)).toBe(0);
  });

  it('the WAL functions bound to a session (walBind) throw ERR_RINGMASTER_DETACHED once it is closed', async () => {
    const db = await rm.open({ dataDir: path.join(dir, 'bound'), backend, wal } as any);
    const fns = addon.walBind(db._native());
    const end = await db.wal.append(1, new Uint8Array(3));
    expect(fns.insertedUpto()).toBe(Number(end));
    expect(fns.failed()).toBe(0);
    await db.close();
    for (const call of [() => fns.insertedUpto(), () => fns.count(1, 0, 0), () => fns.role('flusher', true), () => fns.append(1, new Uint8Array(1)), () => fns.publish(0)]) {
      expect(call).toThrow(expect.objectContaining({ code: 'ERR_RINGMASTER_DETACHED' }));
    }
    expect(() => addon.walBind({} as any)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('after all of that the WAL still commits', async () => {
    const l = await pm.wal.append(1, new Uint8Array([1, 2, 3]));
    await pm.wal.flush(l);
    expect(pm.wal.flushedLsn() >= l).toBe(true);
  });
});
