// What a new user needs on day one: LSNs that cross process.send (lsnToString /
// lsnFromString), the data directory visible in every worker and thread, and a forked
// worker that dies before attaching is reported ('worker-failed', pm.whenAttached, or a
// printed warning), never a primary that exits 0 with nothing said. (Typed events and
// stats: test/packaging/public-types.test.ts.)
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { realpathSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker as ThreadWorker } from 'node:worker_threads';
import { Worker, backend, forkAttached, killWorkers, removeDir, rm, tempDir, waitFor } from '../helpers';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'day-one-worker.cjs');
const EXITS_EARLY = path.join(__dirname, '..', 'fixtures', 'exits-early.cjs');
const REPO = path.resolve(__dirname, '..', '..');

let dir: string;
let pm: import('../../core/index').Postmaster | null = null;
const workers: Worker[] = [];

beforeEach(() => {
  dir = tempDir('rm-dayone-');
});
afterEach(async () => {
  await killWorkers(workers);
  if (pm) await pm.stop();
  pm = null;
  removeDir(dir);
});

async function start(extra: Record<string, unknown> = {}) {
  pm = await rm.Postmaster.start({ dataDir: path.join(dir, 'data'), backend, arenaSize: 2 << 20, ...extra } as never);
  return pm;
}

async function worker(): Promise<Worker> {
  return forkAttached(pm!, FIXTURE, { attach: false, into: workers });
}

describe('LSNs across processes', () => {
  it('lsnToString / lsnFromString round-trip every LSN, in the PostgreSQL text form', () => {
    for (const v of [0n, 1n, 0xffffffffn, 1n << 32n, 0x16b374d848n, BigInt(Number.MAX_SAFE_INTEGER), (1n << 64n) - 1n]) {
      const s = rm.lsnToString(v);
      expect(s).toMatch(/^[0-9A-F]{1,8}\/[0-9A-F]{8}$/);
      expect(rm.lsnFromString(s)).toBe(v);
      expect(JSON.parse(JSON.stringify({ s })).s).toBe(s);
    }
    expect(rm.lsnToString(0x16b374d848n)).toBe('16/B374D848');
    expect(rm.lsnToString(0x16b374d848n)).toBe(rm.formatLsn(0x16b374d848n));
    expect(rm.lsnToString(65536)).toBe('0/00010000');  // a number works too
    expect(rm.lsnFromString('16/b374d848')).toBe(0x16b374d848n);
  });

  it('bad LSNs are coded errors', () => {
    expect(() => rm.lsnToString(-1n)).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }));
    expect(() => rm.lsnToString(1n << 64n)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => rm.lsnToString(1.5)).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => rm.lsnToString('0/0' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    for (const bad of ['', '0', '0/', '/1', '1/2/3', 'G/0', '123456789/0', ' 0/0', '0/0 ']) {
      expect(() => rm.lsnFromString(bad), bad).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' }));
    }
    expect(() => rm.lsnFromString(5 as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('a worker sends an LSN over the default JSON channel as text; the primary flushes to it, and the other way round (a bigint would throw)', async () => {
    await start({ wal: { segmentSize: 64 << 10, bufferSize: 64 << 10 } });
    const w = await worker();
    await w.call('attach');
    // Why the helpers exist: the default 'json' serialization cannot carry a bigint.
    expect(() => w.child.send({ lsn: 1n })).toThrow(TypeError);
    const text: string = await w.call('append', { data: 'from the worker' });
    const lsn = rm.lsnFromString(text);
    expect(lsn > 0n).toBe(true);
    expect(lsn <= pm!.wal.insertLsn()).toBe(true);
    await pm!.wal.flush(lsn);
    expect(pm!.wal.flushedLsn() >= lsn).toBe(true);
    await pm!.wal.flush(Number(lsn));  // LSNs stay below 2^53: a number is exact too
    const mine = await pm!.wal.append(1, Buffer.from('from the primary'));
    const flushed = rm.lsnFromString(await w.call('flush', { lsn: rm.lsnToString(mine) }));
    expect(flushed >= mine).toBe(true);
    await w.call('close');
  });
});

describe('the data directory', () => {
  it('db.dataDir is the same absolute path in the postmaster, a forked worker and a worker thread', async () => {
    await start();
    const expected = realpathSync(path.join(dir, 'data'));
    expect(pm!.dataDir).toBe(expected);
    const w = await worker();
    expect((await w.call('attach')).dataDir).toBe(expected);
    await w.call('close');
    const t = new ThreadWorker(`
      const { workerData, parentPort } = require('node:worker_threads');
      const rm = require(${JSON.stringify(REPO)});
      rm.attach(workerData.token).then(async (db) => { const d = db.dataDir; await db.close(); parentPort.postMessage(d); },
        (e) => parentPort.postMessage({ error: e.message }));`, { eval: true, workerData: { token: pm!.threadToken() } });
    const fromThread = await new Promise((resolve, reject) => { t.once('message', resolve); t.once('error', reject); });
    await t.terminate();
    expect(fromThread).toBe(expected);
  });
});

describe('pm.fork(): a worker that ends before attaching is reported', () => {
  const cases: [string, string, string[], { code: number | null }][] = [
    ['its module does not resolve', path.join(__dirname, '..', 'fixtures', 'no-such-worker.cjs'), [], { code: 1 }],
    ['it throws at top level', EXITS_EARLY, ['throw'], { code: 1 }],
    ['it exits with an error code first', EXITS_EARLY, ['exit3'], { code: 3 }],
    ['it exits 0 without attaching', EXITS_EARLY, ['exit0'], { code: 0 }],
  ];
  for (const [what, modulePath, args, { code }] of cases) {
    it(`${what}: 'worker-failed', whenAttached rejects, 'exit' says attached: false`, async () => {
      await start();
      const failed: import('../../core/index').WorkerFailure[] = [];
      const exits: import('../../core/index').ProcessExit[] = [];
      pm!.on('worker-failed', (f) => failed.push(f));
      pm!.on('exit', (e) => exits.push(e));
      const child = pm!.fork(modulePath, args, { stdio: ['ignore', 'ignore', 'ignore'] });
      const err = await pm!.whenAttached(child).then(() => null, (e) => e);
      expect(err).toMatchObject({ name: 'RingmasterError', code: 'ERR_RINGMASTER_WORKER_FAILED' });
      expect(err.message).toContain(path.basename(modulePath));
      await waitFor(() => exits.length === 1, 10000, 'the exit event');
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ pid: child.pid, modulePath, code, signal: null });
      expect(failed[0].error).toBe(err);
      expect(exits[0]).toMatchObject({ pid: child.pid, code, attached: false, slotsCleaned: 0 });
      // Asked again later: the same answer at once.
      await expect(pm!.whenAttached(child)).rejects.toBe(err);
    });
  }

  it('a process that cannot be spawned at all: worker-failed with the spawn error as cause, and no crash without an error listener', async () => {
    await start();
    const failed: import('../../core/index').WorkerFailure[] = [];
    pm!.on('worker-failed', (f) => failed.push(f));
    const child = pm!.fork(EXITS_EARLY, [], { execPath: path.join(dir, 'no-such-node') });
    await expect(pm!.whenAttached(child)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WORKER_FAILED', cause: { code: 'ENOENT' } });
    expect(failed).toEqual([expect.objectContaining({ pid: undefined, code: null, signal: null })]);
    expect(pm!.children.size).toBe(0);
  });

  it("a worker that attaches: 'worker-attached' with its slot, whenAttached resolves (also after the fact), 'exit' says attached: true", async () => {
    await start();
    const attached: import('../../core/index').WorkerAttached[] = [];
    const exits: import('../../core/index').ProcessExit[] = [];
    pm!.on('worker-attached', (a) => attached.push(a));
    pm!.on('exit', (e) => exits.push(e));
    const w = await worker();
    const p = pm!.whenAttached(w.child, { timeoutMs: 20000 });
    const { slot } = await w.call('attach');
    expect(await p).toEqual({ pid: w.pid, slot });
    expect(attached).toEqual([{ pid: w.pid, slot }]);
    expect(await pm!.whenAttached(w.child)).toEqual({ pid: w.pid, slot });
    await w.call('close');
    await w.kill9();
    await waitFor(() => exits.length === 1, 10000, 'the exit event');
    expect(exits[0].attached).toBe(true);
  });

  it('whenAttached: a timeout, and arguments that are not this postmaster\'s children', async () => {
    await start();
    pm!.on('worker-failed', () => {});  // the worker is killed unattached at the end: expected
    const w = await worker();  // listening, but never told to attach
    await expect(pm!.whenAttached(w.child, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    await expect(pm!.whenAttached({} as never)).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
    await expect(pm!.whenAttached(w.child, { timeoutMs: -1 })).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  });

  it('without a worker-failed listener a warning is printed: a primary script whose worker module does not resolve does not end silently', async () => {
    const script = path.join(dir, 'primary.mjs');
    writeFileSync(script, [
      `import { Postmaster } from ${JSON.stringify(path.join(REPO, 'dist', 'index.mjs'))};`,
      `const pm = await Postmaster.start({ dataDir: ${JSON.stringify(path.join(dir, 'data'))}, backend: ${JSON.stringify(backend)}, arenaSize: 1 << 20 });`,
      "pm.fork('./worker-that-is-not-there.mjs', [], { stdio: ['ignore', 'ignore', 'ignore'] });",
      '',
    ].join('\n'));
    const stderr = await new Promise<string>((resolve) => {
      execFile(process.execPath, [script], { cwd: dir, timeout: 30000, env: { ...process.env, NODE_OPTIONS: '' } }, (_err, _out, err) => resolve(err));
    });
    expect(stderr).toContain('RINGMASTER_WORKER_FAILED');
    expect(stderr).toContain('worker-that-is-not-there.mjs');
  });
});
