// Bad input: every mistake a caller can make is reported with the right error class
// (TypeError / RangeError / RingmasterError) and a stable `code`, and never costs
// anything: the handle, the file, the arena and the IO handles stay usable afterwards.
//
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker, WORKER, backend, exitWorkers, forkAttached, removeDir, rm, startPm, startWithWal, tempDir, waitFor } from '../helpers';

type Postmaster = import('../../core/index').Postmaster;
type Ringmaster = import('../../core/index').Ringmaster;
type FileHandle = import('../../core/index').FileHandle;
type ErrorClass = new (...args: any[]) => Error;

let dir: string;
let pms: Postmaster[];
let workers: Worker[];

beforeEach(() => {
  dir = tempDir('rm-bad-input-');
  pms = [];
  workers = [];
});

afterEach(async () => {
  // Workers first: the fixture does not exit on 'stop', so pm.stop() would wait for it.
  await exitWorkers(workers);
  for (const pm of pms) await pm.stop();
  removeDir(dir);
});

/** Starts a postmaster in this test's temp dir; afterEach stops it. */
async function start(extra: Record<string, unknown> = {}): Promise<Postmaster> {
  const pm = await startPm(dir, extra);
  pms.push(pm);
  return pm;
}

async function fork(pm: Postmaster, options: { attach?: boolean } = {}): Promise<Worker> {
  // Registered before attaching so that a failed attach still gets cleaned up.
  return forkAttached(pm, WORKER, { reaper: true, attach: options.attach === false ? false : {}, into: workers });
}

/**
 * Runs `fn` (sync throw or async rejection both count) and asserts the error's exact
 * class and `code`. Returns the error for further checks.
 */
async function expectError(fn: () => unknown, cls: ErrorClass, code: string): Promise<any> {
  let err: unknown;
  let threw = false;
  try {
    await fn();
  } catch (e) {
    threw = true;
    err = e;
  }
  expect(threw, `expected ${cls.name} ${code}, but nothing was thrown`).toBe(true);
  expect(err, `expected ${cls.name} ${code}, got ${String(err)}`).toBeInstanceOf(cls);
  // TypeError and RangeError are distinct; a RingmasterError must not be a TypeError/RangeError.
  if (cls === TypeError) expect(err).not.toBeInstanceOf(RangeError);
  if (cls === RangeError) expect(err).not.toBeInstanceOf(TypeError);
  expect((err as { code?: unknown }).code, `code of: ${String(err)}`).toBe(code);
  return err;
}

/** The handle still does IO on `f`, and no IO handle is left behind. */
async function stillWorks(db: Ringmaster, f: FileHandle | number, offset = 0): Promise<void> {
  const data = Buffer.from(`still works @${offset}`);
  expect(await db.write(f, offset, data)).toBe(data.length);
  const out = new Uint8Array(data.length);
  expect(await db.read(f, offset, out)).toBe(data.length);
  expect(Buffer.from(out).equals(data)).toBe(true);
  expect(db.handlesInUse()).toBe(0);
}

const dataDirOf = () => path.join(dir, 'data');

// ---------------------------------------------------------------------------------------

describe('Postmaster.start options', () => {
  it('missing dataDir is a TypeError ERR_INVALID_ARG_TYPE', async () => {
    await expectError(() => rm.Postmaster.start({} as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => rm.Postmaster.start({ rings: 1 } as any), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('an empty or non-string dataDir is a TypeError ERR_INVALID_ARG_TYPE', async () => {
    await expectError(() => rm.Postmaster.start({ dataDir: '' }), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => rm.Postmaster.start({ dataDir: 42 } as any), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('options that are not an object are a TypeError ERR_INVALID_ARG_TYPE', async () => {
    await expectError(() => rm.Postmaster.start(null as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => rm.Postmaster.start(undefined as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => rm.Postmaster.start(dataDirOf() as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => rm.open(null as any), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('a numeric option of the wrong type is a TypeError ERR_INVALID_ARG_TYPE and creates nothing', async () => {
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), rings: '2' } as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), maxFiles: 10n } as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), arenaSize: 65536.5 }), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), ringEntries: NaN }), TypeError, 'ERR_INVALID_ARG_TYPE');
    // Options are validated before the data directory is created.
    expect(existsSync(dataDirOf())).toBe(false);
  });

  it('a boolean option given a string is a TypeError ERR_INVALID_ARG_TYPE', async () => {
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), sqpoll: 'yes' } as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), fixedBuffers: 1 } as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), reaper: null } as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    expect(existsSync(dataDirOf())).toBe(false);
  });

  it('ringEntries that is not a power of two is a RangeError ERR_OUT_OF_RANGE', async () => {
    for (const ringEntries of [100, 6, 4095, 12]) {
      await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), ringEntries }), RangeError, 'ERR_OUT_OF_RANGE');
    }
    expect(existsSync(dataDirOf())).toBe(false);
  });

  it('ringEntries outside 4..4096 is a RangeError ERR_OUT_OF_RANGE', async () => {
    for (const ringEntries of [0, 1, 2, 8192, -4]) {
      await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), ringEntries }), RangeError, 'ERR_OUT_OF_RANGE');
    }
  });

  it('rings outside 1..64 is a RangeError ERR_OUT_OF_RANGE', async () => {
    for (const rings of [0, -1, 65, 1000]) {
      await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), rings }), RangeError, 'ERR_OUT_OF_RANGE');
    }
    expect(existsSync(dataDirOf())).toBe(false);
  });

  it('other numeric options out of range are a RangeError ERR_OUT_OF_RANGE', async () => {
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), arenaSize: 100 }), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), maxFiles: 65536 }), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), maxProcesses: 0 }), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), submitTimeoutMs: 0 }), RangeError, 'ERR_OUT_OF_RANGE');
  });

  it('an unknown option is a TypeError ERR_INVALID_ARG_VALUE', async () => {
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), ringEntires: 64 } as any), TypeError, 'ERR_INVALID_ARG_VALUE');
    await expectError(() => rm.open({ dataDir: dataDirOf(), dataDirectory: 'x' } as any), TypeError, 'ERR_INVALID_ARG_VALUE');
    expect(existsSync(dataDirOf())).toBe(false);
  });

  it('a bogus backend is a TypeError ERR_INVALID_ARG_VALUE (even when RINGMASTER_BACKEND overrides it)', async () => {
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), backend: 'epoll' } as any), TypeError, 'ERR_INVALID_ARG_VALUE');
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), backend: 'IO_URING' } as any), TypeError, 'ERR_INVALID_ARG_VALUE');
  });

  it('a bogus topology is a TypeError ERR_INVALID_ARG_VALUE', async () => {
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), topology: 'per-thread' } as any), TypeError, 'ERR_INVALID_ARG_VALUE');
  });

  it('a dataDir that is a regular file is a TypeError ERR_INVALID_ARG_VALUE', async () => {
    const file = path.join(dir, 'not-a-dir');
    writeFileSync(file, 'keep me');
    await expectError(() => rm.Postmaster.start({ dataDir: file, backend }), TypeError, 'ERR_INVALID_ARG_VALUE');
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });

  it('a failed start leaves nothing running: a good start afterwards works', async () => {
    await expectError(() => rm.Postmaster.start({ dataDir: dataDirOf(), ringEntries: 3 }), RangeError, 'ERR_OUT_OF_RANGE');
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    await stillWorks(pm, f);
    expect(pm.stats().processes).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------

describe('files.open', () => {
  it('an empty path is a TypeError ERR_INVALID_ARG_VALUE', async () => {
    const pm = await start();
    await expectError(() => pm.files.open(''), TypeError, 'ERR_INVALID_ARG_VALUE');
    await expectError(() => pm.files.open('', { create: true }), TypeError, 'ERR_INVALID_ARG_VALUE');
  });

  it('a non-string path is a TypeError ERR_INVALID_ARG_TYPE', async () => {
    const pm = await start();
    for (const p of [42, null, undefined, Buffer.from('a.dat'), { toString: () => 'a.dat' }]) {
      await expectError(() => pm.files.open(p as any, { create: true }), TypeError, 'ERR_INVALID_ARG_TYPE');
    }
  });

  it("a path escaping the data directory via '../x' is ERR_RINGMASTER_PATH_ESCAPE and creates nothing outside", async () => {
    const pm = await start();
    await expectError(() => pm.files.open('../x', { create: true }), rm.RingmasterError, 'ERR_RINGMASTER_PATH_ESCAPE');
    mkdirSync(path.join(pm.dataDir, 'sub'));
    await expectError(() => pm.files.open('sub/../../x', { create: true }), rm.RingmasterError, 'ERR_RINGMASTER_PATH_ESCAPE');
    expect(existsSync(path.join(dir, 'x'))).toBe(false);
    const f = await pm.files.open('ok.dat', { create: true });
    await stillWorks(pm, f);
  });

  it("an absolute path like '/etc/passwd' is ERR_RINGMASTER_PATH_ESCAPE", async () => {
    const pm = await start();
    await expectError(() => pm.files.open('/etc/passwd', { readOnly: true }), rm.RingmasterError, 'ERR_RINGMASTER_PATH_ESCAPE');
    // Even an absolute path that names a file inside the data directory.
    writeFileSync(path.join(pm.dataDir, 'in.dat'), 'x');
    await expectError(() => pm.files.open(path.join(pm.dataDir, 'in.dat')), rm.RingmasterError, 'ERR_RINGMASTER_PATH_ESCAPE');
  });

  it('a symlink inside dataDir pointing outside is ERR_RINGMASTER_PATH_ESCAPE and the target is untouched', async () => {
    const pm = await start();
    const outside = path.join(dir, 'outside.dat');
    writeFileSync(outside, 'secret');
    symlinkSync(outside, path.join(pm.dataDir, 'link-abs'));
    symlinkSync('../outside.dat', path.join(pm.dataDir, 'link-rel'));
    mkdirSync(path.join(pm.dataDir, 'sub'));
    symlinkSync('..', path.join(pm.dataDir, 'sub', 'up'));
    for (const p of ['link-abs', 'link-rel']) {
      await expectError(() => pm.files.open(p), rm.RingmasterError, 'ERR_RINGMASTER_PATH_ESCAPE');
      await expectError(() => pm.files.open(p, { create: true, truncate: true }), rm.RingmasterError, 'ERR_RINGMASTER_PATH_ESCAPE');
    }
    await expectError(() => pm.files.open('sub/up/../outside.dat'), rm.RingmasterError, 'ERR_RINGMASTER_PATH_ESCAPE');
    expect(readFileSync(outside, 'utf8')).toBe('secret');
  });

  it("a pg_wal that is a symbolic link out of the data directory is refused at start with ERR_RINGMASTER_PATH_ESCAPE; the link's target is left as it was", async () => {
    const elsewhere = path.join(dir, 'wal-elsewhere');
    mkdirSync(elsewhere);
    writeFileSync(path.join(elsewhere, 'keep'), 'mine');
    mkdirSync(path.join(dir, 'data'));
    symlinkSync(elsewhere, path.join(dir, 'data', 'pg_wal'));
    const e = await expectError(() => startWithWal(path.join(dir, 'data')), rm.RingmasterError, 'ERR_RINGMASTER_PATH_ESCAPE');
    expect(e.message).toMatch(/'pg_wal' leads out of the data directory/);
    expect(readdirSync(elsewhere)).toEqual(['keep']);  // refused before anything was written there
    expect(readFileSync(path.join(elsewhere, 'keep'), 'utf8')).toBe('mine');
  });

  it('opening a missing file without create is a RingmasterError ENOENT', async () => {
    const pm = await start();
    const e = await expectError(() => pm.files.open('missing.dat'), rm.RingmasterError, 'ENOENT');
    expect(e.errno).toBe(-2);
    expect(existsSync(path.join(pm.dataDir, 'missing.dat'))).toBe(false);
    await expectError(() => pm.files.open('nodir/missing.dat', { create: true }), rm.RingmasterError, 'ENOENT');
  });

  it('opening a directory is a RingmasterError EISDIR', async () => {
    const pm = await start();
    mkdirSync(path.join(pm.dataDir, 'sub'));
    await expectError(() => pm.files.open('sub'), rm.RingmasterError, 'EISDIR');
    await expectError(() => pm.files.open('.'), rm.RingmasterError, 'EISDIR');
  });

  it('an unknown file option is a TypeError ERR_INVALID_ARG_VALUE', async () => {
    const pm = await start();
    await expectError(() => pm.files.open('a.dat', { create: true, append: true } as any), TypeError, 'ERR_INVALID_ARG_VALUE');
    await expectError(() => pm.files.open('a.dat', { creat: true } as any), TypeError, 'ERR_INVALID_ARG_VALUE');
    expect(existsSync(path.join(pm.dataDir, 'a.dat'))).toBe(false);
  });

  it('a non-boolean file option is a TypeError ERR_INVALID_ARG_TYPE', async () => {
    const pm = await start();
    await expectError(() => pm.files.open('a.dat', { create: 'yes' } as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => pm.files.open('a.dat', { create: true, direct: 1 } as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    expect(existsSync(path.join(pm.dataDir, 'a.dat'))).toBe(false);
  });

  it('file options that are not an object are a TypeError ERR_INVALID_ARG_TYPE', async () => {
    const pm = await start();
    await expectError(() => pm.files.open('a.dat', null as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => pm.files.open('a.dat', 'rw' as any), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('a path longer than 215 bytes is a RangeError ERR_OUT_OF_RANGE', async () => {
    const pm = await start();
    await expectError(() => pm.files.open('x'.repeat(216), { create: true }), RangeError, 'ERR_OUT_OF_RANGE');
  });

  it('a path containing a NUL byte is a TypeError ERR_INVALID_ARG_VALUE', async () => {
    const pm = await start();
    await expectError(() => pm.files.open('a.dat\0../../etc/passwd', { create: true }), TypeError, 'ERR_INVALID_ARG_VALUE');
  });

  it('a full file table is a RingmasterError EMFILE, and closing a file makes room again', async () => {
    const pm = await start({ maxFiles: 2 });
    const a = await pm.files.open('a.dat', { create: true });
    const b = await pm.files.open('b.dat', { create: true });
    await expectError(() => pm.files.open('c.dat', { create: true }), rm.RingmasterError, 'EMFILE');
    await stillWorks(pm, a);
    await stillWorks(pm, b);
    await a.close();
    const c = await pm.files.open('c.dat', { create: true });
    await stillWorks(pm, c);
  });
});

// ---------------------------------------------------------------------------------------

describe('IO arguments', () => {
  it('write with a negative offset is a RangeError ERR_OUT_OF_RANGE', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    await expectError(() => pm.write(f, -1, Buffer.from('x')), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.read(f, -4096, new Uint8Array(1)), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.write(f, -Infinity, Buffer.from('x')), RangeError, 'ERR_OUT_OF_RANGE');
    await stillWorks(pm, f);
  });

  it('a NaN offset is a TypeError ERR_INVALID_ARG_TYPE', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    await expectError(() => pm.write(f, NaN, Buffer.from('x')), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => pm.read(f, NaN, new Uint8Array(1)), TypeError, 'ERR_INVALID_ARG_TYPE');
    await stillWorks(pm, f);
  });

  it('a non-numeric offset is a TypeError ERR_INVALID_ARG_TYPE', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    for (const off of ['0', null, undefined, {}]) {
      await expectError(() => pm.write(f, off as any, Buffer.from('x')), TypeError, 'ERR_INVALID_ARG_TYPE');
    }
    await stillWorks(pm, f);
  });

  it('a fractional offset is a RangeError ERR_OUT_OF_RANGE', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    await expectError(() => pm.write(f, 1.5, Buffer.from('x')), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.read(f, 4096.0001, new Uint8Array(1)), RangeError, 'ERR_OUT_OF_RANGE');
    expect(readFileSync(path.join(pm.dataDir, 'a.dat')).length).toBe(0);
    await stillWorks(pm, f);
  });

  it('an offset beyond 2^53-1 (or Infinity) is a RangeError ERR_OUT_OF_RANGE', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    await expectError(() => pm.write(f, 2 ** 53, Buffer.from('x')), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.write(f, 2 ** 64, Buffer.from('x')), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.write(f, Infinity, Buffer.from('x')), RangeError, 'ERR_OUT_OF_RANGE');
    await stillWorks(pm, f);
  });

  it('a negative or too large bigint offset is a RangeError ERR_OUT_OF_RANGE (a valid bigint works)', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    await expectError(() => pm.write(f, -1n, Buffer.from('x')), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.read(f, -(2n ** 63n), new Uint8Array(1)), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.write(f, 2n ** 53n, Buffer.from('x')), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.write(f, 2n ** 64n, Buffer.from('x')), RangeError, 'ERR_OUT_OF_RANGE');
    expect(await pm.write(f, 8192n, Buffer.from('big'))).toBe(3);
    const out = new Uint8Array(3);
    expect(await pm.read(f, 8192n, out)).toBe(3);
    expect(Buffer.from(out).toString()).toBe('big');
    await stillWorks(pm, f);
  });

  it('a string as the IO buffer is a TypeError ERR_INVALID_ARG_TYPE', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    await expectError(() => pm.write(f, 0, 'hello' as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => pm.read(f, 0, 'hello' as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    expect(readFileSync(path.join(pm.dataDir, 'a.dat')).length).toBe(0);
    await stillWorks(pm, f);
  });

  it('a plain array, an ArrayBuffer itself or null as the IO buffer is a TypeError ERR_INVALID_ARG_TYPE (views of every kind are fine: buffers.test.ts)', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    for (const buf of [[104, 105], new ArrayBuffer(8), new SharedArrayBuffer(8), null, undefined, 7]) {
      await expectError(() => pm.write(f, 0, buf as any), TypeError, 'ERR_INVALID_ARG_TYPE');
      await expectError(() => pm.batch().read(f, 0, buf as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    }
    expect(readFileSync(path.join(pm.dataDir, 'a.dat')).length).toBe(0);
    await stillWorks(pm, f);
  });

  it('a forged file id is ERR_RINGMASTER_BAD_FILE and releases its IO handles', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    // Next slot, same slot with another generation, arbitrary, generation out of range.
    for (const id of [f.id + 1, f.id + 65536, 123456, 2 ** 52]) {
      await expectError(() => pm.write(id, 0, Buffer.from('x')), rm.RingmasterError, 'ERR_RINGMASTER_BAD_FILE');
    }
    // A batch whose second op names a forged id submits nothing: the first op never runs.
    const r = pm.batch().write(f, 0, Buffer.from('first')).write(999999, 0, Buffer.from('x'));
    await expectError(() => r.submit(), rm.RingmasterError, 'ERR_RINGMASTER_BAD_FILE');
    expect(readFileSync(path.join(pm.dataDir, 'a.dat')).length).toBe(0);
    expect(pm.handlesInUse()).toBe(0);
    await stillWorks(pm, f);
  });

  it('a negative, fractional or non-numeric file id is a TypeError ERR_INVALID_ARG_TYPE', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    for (const id of [-1, 1.5, NaN, '0', null, { id: f.id }]) {
      await expectError(() => pm.write(id as any, 0, Buffer.from('x')), TypeError, 'ERR_INVALID_ARG_TYPE');
      await expectError(() => pm.fsync(id as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    }
    await stillWorks(pm, f);
  });

  it('IO on a closed FileHandle is ERR_RINGMASTER_FILE_CLOSED', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    await f.close();
    await expectError(() => pm.write(f, 0, Buffer.from('x')), rm.RingmasterError, 'ERR_RINGMASTER_FILE_CLOSED');
    await expectError(() => pm.read(f, 0, new Uint8Array(1)), rm.RingmasterError, 'ERR_RINGMASTER_FILE_CLOSED');
    await expectError(() => pm.fdatasync(f), rm.RingmasterError, 'ERR_RINGMASTER_FILE_CLOSED');
    expect(pm.handlesInUse()).toBe(0);
    await stillWorks(pm, await pm.files.open('a.dat'));
  });

  it('a file whose last handle closed, then used by its id, is ERR_RINGMASTER_BAD_FILE', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    const other = pm.files.get(f.id);
    await other.close();
    expect(await pm.write(f, 0, Buffer.from('x'))).toBe(1);  // f still holds a reference
    const id = f.id;
    await f.close();
    await expectError(() => pm.write(id, 0, Buffer.from('x')), rm.RingmasterError, 'ERR_RINGMASTER_BAD_FILE');
    await expectError(() => pm.fsync(id), rm.RingmasterError, 'ERR_RINGMASTER_BAD_FILE');
    expect(pm.handlesInUse()).toBe(0);
    await stillWorks(pm, await pm.files.open('a.dat'));
  });

  it('a stale file id whose table slot was reused is ERR_RINGMASTER_BAD_FILE, never the new file', async () => {
    const pm = await start({ maxFiles: 1 });
    const old = await pm.files.open('old.dat', { create: true });
    const staleId = old.id;
    await old.close();
    const fresh = await pm.files.open('new.dat', { create: true });
    expect(fresh.id).not.toBe(staleId);
    await expectError(() => pm.write(staleId, 0, Buffer.from('stale')), rm.RingmasterError, 'ERR_RINGMASTER_BAD_FILE');
    expect(readFileSync(path.join(pm.dataDir, 'new.dat')).length).toBe(0);
    await stillWorks(pm, fresh);
  });

  it('writing to a file opened readOnly is a RingmasterError EBADF and the file is unchanged', async () => {
    const pm = await start();
    writeFileSync(path.join(pm.dataDir, 'ro.dat'), 'original');
    const f = await pm.files.open('ro.dat', { readOnly: true });
    const e = await expectError(() => pm.write(f, 0, Buffer.from('XXXX')), rm.RingmasterError, 'EBADF');
    expect(e.errno).toBe(-9);
    const out = new Uint8Array(8);
    expect(await pm.read(f, 0, out)).toBe(8);
    expect(Buffer.from(out).toString()).toBe('original');
    expect(readFileSync(path.join(pm.dataDir, 'ro.dat'), 'utf8')).toBe('original');
    expect(pm.handlesInUse()).toBe(0);
  });

  it('a private buffer on an sqpoll postmaster is a RingmasterError EOPNOTSUPP (arena slices work)', async () => {
    // backend 'auto' (RINGMASTER_BACKEND=threads still forces the fallback, which keeps
    // the arena-only rule); sqpoll with an explicit backend: 'threads' is a contradiction.
    const pm = await start({ sqpoll: true, backend: 'auto' });
    const f = await pm.files.open('a.dat', { create: true });
    await expectError(() => pm.write(f, 0, Buffer.from('private')), rm.RingmasterError, 'EOPNOTSUPP');
    expect(pm.handlesInUse()).toBe(0);
    const s = pm.allocate(4096);
    s.bytes.fill(0x41);
    expect(await pm.write(f, 0, s)).toBe(4096);
    const t = pm.allocate(4096);
    expect(await pm.read(f, 0, t)).toBe(4096);
    expect(t.bytes.every((b) => b === 0x41)).toBe(true);
    expect(pm.handlesInUse()).toBe(0);
  });

  it('op options that are not an object, or a non-boolean link flag, are a TypeError ERR_INVALID_ARG_TYPE', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    await expectError(() => pm.write(f, 0, Buffer.from('x'), 'link' as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => pm.write(f, 0, Buffer.from('x'), null as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => pm.write(f, 0, Buffer.from('x'), { link: 1 } as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => pm.batch().nop({ drain: 'yes' } as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await stillWorks(pm, f);
  });
});

// ---------------------------------------------------------------------------------------

describe('arena and completion words', () => {
  it('an arena slice outside the arena is a RangeError ERR_OUT_OF_RANGE', async () => {
    const pm = await start({ arenaSize: 65536 });
    const size = pm.info.arenaSize;
    expect(size).toBe(65536);
    expect(() => pm.arenaSlice(size - 10, 100)).toThrow(RangeError);
    await expectError(() => pm.arenaSlice(size - 10, 100), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.arenaSlice(size, 1), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.arenaSlice(-1, 8), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.arenaSlice(0, 1.5), RangeError, 'ERR_OUT_OF_RANGE');
    expect(pm.arenaSlice(size - 10, 10).length).toBe(10);
  });

  it('a forged arena slice outside the arena passed to IO is a RangeError ERR_OUT_OF_RANGE and releases its handles', async () => {
    const pm = await start({ arenaSize: 65536 });
    const f = await pm.files.open('a.dat', { create: true });
    const size = pm.info.arenaSize;
    const forged = [{ offset: size, length: 4096 }, { offset: size - 10, length: 4096 }, { offset: 2 ** 40, length: 1 }];
    for (const s of forged) {
      await expectError(() => pm.write(f, 0, s as any), RangeError, 'ERR_OUT_OF_RANGE');
      await expectError(() => pm.read(f, 0, s as any), RangeError, 'ERR_OUT_OF_RANGE');
    }
    await expectError(() => pm.write(f, 0, { offset: -4096, length: 10 } as any), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.write(f, 0, { offset: 0, length: 0.5 } as any), RangeError, 'ERR_OUT_OF_RANGE');
    expect(readFileSync(path.join(pm.dataDir, 'a.dat')).length).toBe(0);
    expect(pm.handlesInUse()).toBe(0);
    await stillWorks(pm, f);
  });

  it('allocate(0), allocate(-1) and fractional sizes are a RangeError ERR_OUT_OF_RANGE', async () => {
    const pm = await start();
    for (const n of [0, -1, -4096, 1.5]) {
      await expectError(() => pm.allocate(n), RangeError, 'ERR_OUT_OF_RANGE');
    }
    expect(pm.allocate(8).length).toBe(8);
  });

  it('allocating beyond the arena is ERR_RINGMASTER_ARENA_FULL and consumes nothing', async () => {
    const pm = await start({ arenaSize: 65536 });
    await expectError(() => pm.allocate(65536 + 4096), rm.RingmasterError, 'ERR_RINGMASTER_ARENA_FULL');
    await expectError(() => pm.allocate(2 ** 40), rm.RingmasterError, 'ERR_RINGMASTER_ARENA_FULL');
    // The whole arena is still there...
    const all = pm.allocate(65536);
    expect(all.offset).toBe(0);
    expect(all.length).toBe(65536);
    // ...and now it is full.
    await expectError(() => pm.allocate(1, { align: 1 }), rm.RingmasterError, 'ERR_RINGMASTER_ARENA_FULL');
    await expectError(() => pm.completionWord(), rm.RingmasterError, 'ERR_RINGMASTER_ARENA_FULL');
    const f = await pm.files.open('a.dat', { create: true });
    await stillWorks(pm, f);
  });

  it('allocate with a non-power-of-two alignment is a RangeError ERR_OUT_OF_RANGE', async () => {
    const pm = await start();
    await expectError(() => pm.allocate(8, { align: 3 }), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.allocate(8, { align: 0 }), RangeError, 'ERR_OUT_OF_RANGE');
  });

  it('an op with a misaligned completion word is a RangeError ERR_OUT_OF_RANGE and touches nothing', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    const cw = pm.completionWord();
    expect(cw % 8).toBe(0);
    for (const bad of [cw + 1, cw + 2, cw + 3]) {
      await expectError(() => pm.write(f, 0, Buffer.from('x'), { completionWord: bad }), RangeError, 'ERR_OUT_OF_RANGE');
    }
    expect(pm.completionWordResult(cw)).toBeUndefined();
    expect(readFileSync(path.join(pm.dataDir, 'a.dat')).length).toBe(0);
    expect(pm.handlesInUse()).toBe(0);
    // The word still works for a good op.
    expect(await pm.write(f, 0, Buffer.from('abc'), { completionWord: cw })).toBe(3);
    expect(pm.completionWordResult(cw)).toBe(3);
  });

  it('an op with a completion word outside the arena is a RangeError ERR_OUT_OF_RANGE', async () => {
    const pm = await start({ arenaSize: 65536 });
    const f = await pm.files.open('a.dat', { create: true });
    const size = pm.info.arenaSize;
    await expectError(() => pm.write(f, 0, Buffer.from('x'), { completionWord: size }), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.write(f, 0, Buffer.from('x'), { completionWord: size - 4 }), RangeError, 'ERR_OUT_OF_RANGE');
    await expectError(() => pm.write(f, 0, Buffer.from('x'), { completionWord: -8 }), RangeError, 'ERR_OUT_OF_RANGE');
    expect(pm.handlesInUse()).toBe(0);
    await stillWorks(pm, f);
  });

  it('completionWordResult at a misaligned offset is a RangeError ERR_OUT_OF_RANGE', async () => {
    const pm = await start();
    const cw = pm.completionWord();
    await expectError(() => pm.completionWordResult(cw + 2), RangeError, 'ERR_OUT_OF_RANGE');
  });
});

// ---------------------------------------------------------------------------------------

describe('batches', () => {
  it('an op both linked and hard-linked is a TypeError ERR_INVALID_ARG_VALUE', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    const b = pm.batch();
    await expectError(() => b.write(f, 0, Buffer.from('x'), { link: true, hardlink: true }), TypeError, 'ERR_INVALID_ARG_VALUE');
    expect(b.length).toBe(0);
    await expectError(() => pm.write(f, 0, Buffer.from('x'), { link: true, hardlink: true }), TypeError, 'ERR_INVALID_ARG_VALUE');
    // The batch is still usable.
    const res = await b.write(f, 0, Buffer.from('ok')).submit();
    expect(res.map((r) => r.ok)).toEqual([true]);
    expect(pm.handlesInUse()).toBe(0);
  });

  it('link(), hardlink() or drain() on an empty batch is ERR_RINGMASTER_EMPTY_BATCH', async () => {
    const pm = await start();
    const b = pm.batch();
    await expectError(() => b.link(), rm.RingmasterError, 'ERR_RINGMASTER_EMPTY_BATCH');
    await expectError(() => b.hardlink(), rm.RingmasterError, 'ERR_RINGMASTER_EMPTY_BATCH');
    await expectError(() => b.drain(), rm.RingmasterError, 'ERR_RINGMASTER_EMPTY_BATCH');
    expect(b.length).toBe(0);
    const res = await b.nop().submit();
    expect(res).toHaveLength(1);
    expect(res[0].ok).toBe(true);
  });

  it('submitting an empty batch is a RangeError ERR_OUT_OF_RANGE', async () => {
    const pm = await start();
    const b = pm.batch();
    await expectError(() => b.submit(), RangeError, 'ERR_OUT_OF_RANGE');
    // A rejected empty submit does not count as a submission.
    const res = await b.nop().submit();
    expect(res[0].ok).toBe(true);
    expect(pm.handlesInUse()).toBe(0);
  });

  it('submitting a batch twice is ERR_RINGMASTER_BATCH_SUBMITTED and the first results stand', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    const b = pm.batch().write(f, 0, Buffer.from('once'));
    const first = await b.submit();
    expect(first[0]).toMatchObject({ op: 'write', ok: true, result: 4 });
    await expectError(() => b.submit(), rm.RingmasterError, 'ERR_RINGMASTER_BATCH_SUBMITTED');
    await expectError(() => b.write(f, 4, Buffer.from('again')), rm.RingmasterError, 'ERR_RINGMASTER_BATCH_SUBMITTED');
    await expectError(() => b.nop(), rm.RingmasterError, 'ERR_RINGMASTER_BATCH_SUBMITTED');
    expect(readFileSync(path.join(pm.dataDir, 'a.dat'), 'utf8')).toBe('once');
    expect(pm.handlesInUse()).toBe(0);
  });

  it('submitting a batch twice without awaiting the first is ERR_RINGMASTER_BATCH_SUBMITTED', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    const b = pm.batch().write(f, 0, Buffer.from('1')).write(f, 1, Buffer.from('2'));
    const p1 = b.submit();
    const p2 = b.submit();
    await expectError(() => p2, rm.RingmasterError, 'ERR_RINGMASTER_BATCH_SUBMITTED');
    expect((await p1).map((r) => r.result)).toEqual([1, 1]);
    expect(readFileSync(path.join(pm.dataDir, 'a.dat'), 'utf8')).toBe('12');
    expect(pm.handlesInUse()).toBe(0);
  });

  it('a batch larger than ringEntries is a RangeError ERR_OUT_OF_RANGE (one ring)', async () => {
    const pm = await start({ ringEntries: 4, rings: 1 });
    const f = await pm.files.open('a.dat', { create: true });
    // ringEntries ops is fine...
    const ok = pm.batch();
    for (let i = 0; i < 4; i++) ok.write(f, i, Buffer.from([0x30 + i]));
    expect((await ok.submit()).every((r) => r.ok)).toBe(true);
    // ...one more is not, and nothing of it is written.
    const big = pm.batch();
    for (let i = 0; i < 5; i++) big.write(f, 100 + i, Buffer.from('x'));
    await expectError(() => big.submit(), RangeError, 'ERR_OUT_OF_RANGE');
    expect(readFileSync(path.join(pm.dataDir, 'a.dat'), 'utf8')).toBe('0123');
    expect(pm.handlesInUse()).toBe(0);
  });

  it('a batch larger than ringEntries is a RangeError ERR_OUT_OF_RANGE (two rings)', async () => {
    const pm = await start({ ringEntries: 4, rings: 2 });
    const b = pm.batch();
    for (let i = 0; i < 8; i++) b.nop();
    await expectError(() => b.submit(), RangeError, 'ERR_OUT_OF_RANGE');
    expect(pm.handlesInUse()).toBe(0);
  });

  it('a ring index out of range in db.batch({ ring }) is a RangeError ERR_OUT_OF_RANGE', async () => {
    const pm = await start({ rings: 1 });
    for (const ring of [1, 2, 64, -1, 0.5]) {
      await expectError(() => pm.batch({ ring }), RangeError, 'ERR_OUT_OF_RANGE');
    }
    const res = await pm.batch({ ring: 0 }).nop().submit();
    expect(res[0].ok).toBe(true);
  });

  it('every configured ring index is accepted by db.batch({ ring }) on either backend', async () => {
    const pm = await start({ rings: 2 });
    for (const ring of [0, 1]) {
      const res = await pm.batch({ ring }).nop().submit();
      expect(res[0].ok).toBe(true);
    }
    await expectError(() => pm.batch({ ring: 2 }), RangeError, 'ERR_OUT_OF_RANGE');
  });

  it('batch options that are not an object are a TypeError ERR_INVALID_ARG_TYPE', async () => {
    const pm = await start();
    await expectError(() => pm.batch(null as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => pm.batch(1 as any), TypeError, 'ERR_INVALID_ARG_TYPE');
  });
});

// ---------------------------------------------------------------------------------------

describe('lifecycle', () => {
  it('IO after db.close() is ERR_RINGMASTER_CLOSED', async () => {
    const db = await rm.open({ dataDir: dataDirOf(), backend });
    pms.push(db);
    const f = await db.files.open('a.dat', { create: true });
    const b = db.batch().write(f, 0, Buffer.from('late'));
    await db.close();
    await expectError(() => db.write(f, 0, Buffer.from('x')), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    await expectError(() => db.read(f, 0, new Uint8Array(1)), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    await expectError(() => db.fsync(f), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    await expectError(() => b.submit(), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    await expectError(() => db.reapCompletions(), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    expect(readFileSync(path.join(dataDirOf(), 'a.dat')).length).toBe(0);
  });

  it('files.open and files.get after close are ERR_RINGMASTER_CLOSED', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    await pm.stop();
    await expectError(() => pm.files.open('a.dat'), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    await expectError(() => pm.files.open('b.dat', { create: true }), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    await expectError(() => pm.files.get(f.id), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    expect(existsSync(path.join(dataDirOf(), 'b.dat'))).toBe(false);
  });

  it('arena, stats and handle counts after close are ERR_RINGMASTER_CLOSED', async () => {
    const pm = await start();
    await pm.close();
    await expectError(() => pm.allocate(4096), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    await expectError(() => pm.completionWord(), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    await expectError(() => pm.handlesInUse(), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    await expectError(() => pm.stats(), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    await expectError(() => pm.sweepDeadProcesses(), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
  });

  it('pm.fork after stop is ERR_RINGMASTER_CLOSED; a non-string module path is a TypeError ERR_INVALID_ARG_TYPE', async () => {
    const pm = await start();
    await expectError(() => pm.fork(42 as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await pm.stop();
    await expectError(() => pm.fork(path.join(__dirname, '..', 'fixtures', 'worker.cjs')), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    expect(pm.children.size).toBe(0);
  });

  it('closing a FileHandle twice is ERR_RINGMASTER_FILE_CLOSED', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    const g = await pm.files.open('b.dat', { create: true });
    await f.close();
    expect(f.closed).toBe(true);
    await expectError(() => f.close(), rm.RingmasterError, 'ERR_RINGMASTER_FILE_CLOSED');
    // Other files are not affected.
    await stillWorks(pm, g);
  });

  it('files.get() counts a reference: the file stays open until every handle is closed, and a handle closes once', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    const g = pm.files.get(f.id);
    await g.close();
    await expectError(() => g.close(), rm.RingmasterError, 'ERR_RINGMASTER_FILE_CLOSED');
    expect(pm.files.get(f.id).path).toBe('a.dat');  // still open: f (and this get) hold it
  });

  it('opening a path that is already open returns the same file id (one identity, never two aliases)', async () => {
    const pm = await start();
    const a = await pm.files.open('same.dat', { create: true });
    const b = await pm.files.open('same.dat');
    const c = await pm.files.open('./same.dat');
    expect(b.id).toBe(a.id);
    expect(c.id).toBe(a.id);
    const d = await pm.files.open('same.dat', { direct: true });  // different access: its own entry
    expect(d.id).not.toBe(a.id);
    await a.close();
    await b.close();
    expect(await pm.write(c, 0, Buffer.from('still open'))).toBe(10);
  });

  it('closing a FileHandle after its Ringmaster closed is ERR_RINGMASTER_CLOSED and leaves the file open', async () => {
    const pm = await start();
    const t = await rm.attach(pm.threadToken());
    const f = await t.files.open('a.dat', { create: true });
    await t.close();
    await expectError(() => f.close(), rm.RingmasterError, 'ERR_RINGMASTER_CLOSED');
    expect(pm.files.get(f.id).path).toBe('a.dat');
    expect(f.closed).toBe(false);
  });

  it('files.get of an unknown or closed id is ERR_RINGMASTER_BAD_FILE; a non-number id is a TypeError', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    for (const id of [f.id + 1, 424242, -1, 1.5, NaN, 2 ** 60]) {
      await expectError(() => pm.files.get(id), rm.RingmasterError, 'ERR_RINGMASTER_BAD_FILE');
    }
    await expectError(() => pm.files.get(String(f.id) as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => pm.files.get(BigInt(f.id) as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    const closedId = f.id;
    await f.close();
    await expectError(() => pm.files.get(closedId), rm.RingmasterError, 'ERR_RINGMASTER_BAD_FILE');
  });
});

// ---------------------------------------------------------------------------------------

describe('attach', () => {
  it('rm.attach() in a process not started by pm.fork is ERR_RINGMASTER_NOT_FORKED', async () => {
    expect(process.env.RINGMASTER_ATTACH).toBeUndefined();
    await expectError(() => rm.attach(), rm.RingmasterError, 'ERR_RINGMASTER_NOT_FORKED');
    // Also when a postmaster is running in this process.
    const pm = await start();
    await expectError(() => rm.attach(undefined, { reaper: false }), rm.RingmasterError, 'ERR_RINGMASTER_NOT_FORKED');
    expect(pm.stats().processes).toHaveLength(1);
  });

  it('attach options that are not an object are a TypeError ERR_INVALID_ARG_TYPE', async () => {
    await expectError(() => rm.attach(undefined, null as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    await expectError(() => rm.attach(undefined, 'reaper' as any), TypeError, 'ERR_INVALID_ARG_TYPE');
  });

  it('attach(token) with a garbage token is a TypeError ERR_INVALID_ARG_TYPE', async () => {
    const pm = await start();
    for (const t of [null, 'token', 42, {}, { ringmasterSegment: String(pm.info.segmentId), features: pm.features }, [pm.info.segmentId]]) {
      await expectError(() => rm.attach(t as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    }
    expect(pm.stats().processes).toHaveLength(1);
  });

  it('attach(token) for a segment not mapped in this process is ERR_RINGMASTER_NOT_ATTACHED', async () => {
    const pm = await start();
    const token = pm.threadToken();
    const forged = { ...token, ringmasterSegment: token.ringmasterSegment + 1 };
    await expectError(() => rm.attach(forged), rm.RingmasterError, 'ERR_RINGMASTER_NOT_ATTACHED');
    await expectError(() => rm.attach({ ...token, ringmasterSegment: 12345 }), rm.RingmasterError, 'ERR_RINGMASTER_NOT_ATTACHED');
    expect(pm.stats().processes).toHaveLength(1);
  });

  it('attach(token) after its postmaster stopped is ERR_RINGMASTER_NOT_ATTACHED', async () => {
    const pm = await start();
    const token = pm.threadToken();
    await pm.stop();
    await expectError(() => rm.attach(token), rm.RingmasterError, 'ERR_RINGMASTER_NOT_ATTACHED');
  });

  it('attach(token) when every process slot is taken is ERR_RINGMASTER_NO_SLOTS', async () => {
    const pm = await start({ maxProcesses: 1 });
    await expectError(() => rm.attach(pm.threadToken()), rm.RingmasterError, 'ERR_RINGMASTER_NO_SLOTS');
    expect(pm.stats().processes).toHaveLength(1);
    await stillWorks(pm, await pm.files.open('a.dat', { create: true }));
  });

  it('attach(token) without features is a TypeError ERR_INVALID_ARG_TYPE and claims no slot', async () => {
    const pm = await start();
    const token = { ringmasterSegment: pm.info.segmentId };
    await expectError(() => rm.attach(token as any), TypeError, 'ERR_INVALID_ARG_TYPE');
    expect(pm.stats().processes).toHaveLength(1);
  });
});

// ---------------------------------------------------------------------------------------

describe('forked workers', () => {
  it('a forked worker calling attach twice gets ERR_RINGMASTER_ALREADY_ATTACHED and keeps working', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    const w = await fork(pm);
    expect(await w.call('attachTwice')).toBe('ERR_RINGMASTER_ALREADY_ATTACHED');
    await expect(w.call('attach')).rejects.toMatchObject({ name: 'RingmasterError', code: 'ERR_RINGMASTER_ALREADY_ATTACHED' });
    expect(pm.stats().processes).toHaveLength(2);
    expect(await w.call('write', { file: f.id, offset: 0, data: 'from worker' })).toBe(11);
    expect(await w.call('read', { file: f.id, offset: 0, length: 11 })).toBe('from worker');
    expect(await w.call('handlesInUse')).toBe(0);
  });

  it('a worker attaching when every process slot is taken gets ERR_RINGMASTER_NO_SLOTS', async () => {
    const pm = await start({ maxProcesses: 2 });
    const f = await pm.files.open('a.dat', { create: true });
    const w1 = await fork(pm);
    const w2 = await fork(pm, { attach: false });
    await expect(w2.call('attach')).rejects.toMatchObject({ name: 'RingmasterError', code: 'ERR_RINGMASTER_NO_SLOTS' });
    expect(pm.stats().processes).toHaveLength(2);
    expect(await w1.call('write', { file: f.id, offset: 0, data: 'w1' })).toBe(2);
    await stillWorks(pm, f, 100);
  });

  it('a worker refused with ERR_RINGMASTER_NO_SLOTS can attach once a slot is free', async () => {
    const pm = await start({ maxProcesses: 2 });
    const f = await pm.files.open('a.dat', { create: true });
    const w1 = await fork(pm);
    const w2 = await fork(pm, { attach: false });
    await expect(w2.call('attach')).rejects.toMatchObject({ name: 'RingmasterError', code: 'ERR_RINGMASTER_NO_SLOTS' });
    expect(await w1.call('close')).toBe(true);
    expect(pm.stats().processes).toHaveLength(1);
    await w2.call('attach');
    expect(await w2.call('write', { file: f.id, offset: 0, data: 'w2' })).toBe(2);
  });

  it('a worker submitting after pm.stop() began gets a RingmasterError ESHUTDOWN', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    const w = await fork(pm);
    expect(await w.call('write', { file: f.id, offset: 0, data: 'before' })).toBe(6);
    const stopping = pm.stop({ timeoutMs: 60000 });
    // 'stop' reaches the worker after the run state left RUNNING.
    await waitFor(() => w.events.includes('stop'), 30000, "the worker's stop event");
    await expect(w.call('write', { file: f.id, offset: 0, data: 'after!' })).rejects.toMatchObject({ name: 'RingmasterError', code: 'ESHUTDOWN' });
    await expect(w.call('batch', { ops: [{ op: 'nop' }] })).rejects.toMatchObject({ name: 'RingmasterError', code: 'ESHUTDOWN' });
    await w.call('exit');
    await w.exited;
    await stopping;
    expect(readFileSync(path.join(dataDirOf(), 'a.dat'), 'utf8')).toBe('before');
  });

  it('a worker writing to a file the postmaster closed gets ERR_RINGMASTER_BAD_FILE', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    const g = await pm.files.open('b.dat', { create: true });
    const w = await fork(pm);
    expect(await w.call('write', { file: f.id, offset: 0, data: 'one' })).toBe(3);
    await f.close();
    await expect(w.call('write', { file: f.id, offset: 0, data: 'two' })).rejects.toMatchObject({ name: 'RingmasterError', code: 'ERR_RINGMASTER_BAD_FILE' });
    await expect(w.call('read', { file: f.id, offset: 0, length: 3 })).rejects.toMatchObject({ name: 'RingmasterError', code: 'ERR_RINGMASTER_BAD_FILE' });
    expect(readFileSync(path.join(pm.dataDir, 'a.dat'), 'utf8')).toBe('one');
    // The worker is fine otherwise.
    expect(await w.call('write', { file: g.id, offset: 0, data: 'ok' })).toBe(2);
    expect(await w.call('handlesInUse')).toBe(0);
  });

  it("a worker opening '../x' gets ERR_RINGMASTER_PATH_ESCAPE", async () => {
    const pm = await start();
    const w = await fork(pm);
    await expect(w.call('open', { path: '../x', opts: { create: true } })).rejects.toMatchObject({ name: 'RingmasterError', code: 'ERR_RINGMASTER_PATH_ESCAPE' });
    await expect(w.call('open', { path: '/etc/passwd', opts: { readOnly: true } })).rejects.toMatchObject({ name: 'RingmasterError', code: 'ERR_RINGMASTER_PATH_ESCAPE' });
    await expect(w.call('open', { path: '', opts: {} })).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    expect(existsSync(path.join(dir, 'x'))).toBe(false);
    const id = await w.call('open', { path: 'w.dat', opts: { create: true } });
    expect(await w.call('write', { file: id, offset: 0, data: 'fine' })).toBe(4);
  });

  it('a worker doing IO after closing its own handle gets ERR_RINGMASTER_CLOSED', async () => {
    const pm = await start();
    const f = await pm.files.open('a.dat', { create: true });
    const w = await fork(pm);
    expect(await w.call('close')).toBe(true);
    await expect(w.call('write', { file: f.id, offset: 0, data: 'x' })).rejects.toMatchObject({ name: 'RingmasterError', code: 'ERR_RINGMASTER_CLOSED' });
    await expect(w.call('open', { path: 'b.dat', opts: { create: true } })).rejects.toMatchObject({ name: 'RingmasterError', code: 'ERR_RINGMASTER_CLOSED' });
    // Its slot is gone; the postmaster carries on.
    expect(pm.stats().processes).toHaveLength(1);
    await stillWorks(pm, f);
  });
});

// ---------------------------------------------------------------------------------------

describe('back-pressure is not failure', () => {
  it('64 concurrent writes through 4 IO handles (ringEntries 4, 1 ring) all succeed', async () => {
    const pm = await start({ ringEntries: 4, rings: 1 });
    expect(pm.info.maxHandles).toBe(4);
    const f = await pm.files.open('a.dat', { create: true });
    const writes = Array.from({ length: 64 }, (_, i) => pm.write(f, i * 8, Buffer.from(`w${String(i).padStart(7, '0')}`)));
    const results = await Promise.all(writes);
    expect(results).toEqual(new Array(64).fill(8));
    const content = readFileSync(path.join(pm.dataDir, 'a.dat'), 'latin1');
    expect(content).toBe(Array.from({ length: 64 }, (_, i) => `w${String(i).padStart(7, '0')}`).join(''));
    expect(pm.handlesInUse()).toBe(0);
  });

  it('full-ring batches and single ops mixed past the handle limit all succeed, and reads see the data', async () => {
    const pm = await start({ ringEntries: 4, rings: 1 });
    const f = await pm.files.open('a.dat', { create: true });
    const batches = Array.from({ length: 16 }, (_, k) => {
      const b = pm.batch();
      for (let i = 0; i < 4; i++) b.write(f, (k * 4 + i) * 4, Buffer.from(`${String(k * 4 + i).padStart(3, '0')}|`));
      return b.submit();
    });
    const singles = Array.from({ length: 16 }, (_, i) => pm.write(f, 4096 + i, Buffer.from([0x61 + i])));
    const [bres, sres] = await Promise.all([Promise.all(batches), Promise.all(singles)]);
    expect(bres.flat().every((r) => r.ok && r.result === 4)).toBe(true);
    expect(sres).toEqual(new Array(16).fill(1));
    const reads = Array.from({ length: 64 }, (_, i) => {
      const out = new Uint8Array(4);
      return pm.read(f, i * 4, out).then((n) => Buffer.from(out.subarray(0, n)).toString());
    });
    expect(await Promise.all(reads)).toEqual(Array.from({ length: 64 }, (_, i) => `${String(i).padStart(3, '0')}|`));
    expect(pm.handlesInUse()).toBe(0);
  });

  it('a bad op in the middle of back-pressured traffic fails alone', async () => {
    const pm = await start({ ringEntries: 4, rings: 1 });
    const f = await pm.files.open('a.dat', { create: true });
    const good = Array.from({ length: 32 }, (_, i) => pm.write(f, i, Buffer.from([0x41 + (i % 26)])));
    const bad = [
      pm.write(999999, 0, Buffer.from('x')).catch((e) => e),
      pm.write(f, -1, Buffer.from('x')).catch((e) => e),
    ];
    expect(await Promise.all(good)).toEqual(new Array(32).fill(1));
    const [badFile, badOffset] = await Promise.all(bad);
    expect(badFile).toBeInstanceOf(rm.RingmasterError);
    expect(badFile.code).toBe('ERR_RINGMASTER_BAD_FILE');
    expect(badOffset).toBeInstanceOf(RangeError);
    expect(badOffset.code).toBe('ERR_OUT_OF_RANGE');
    expect(pm.handlesInUse()).toBe(0);
  });
});
