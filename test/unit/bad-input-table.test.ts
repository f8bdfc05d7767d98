// The bad-input table (fixtures/bad-input-cases.cjs): every row is a misuse of the
// public API that must fail with its exact error class and code and change nothing.
// Every row runs here (the postmaster); the rows that need no postmaster also run in a
// worker thread and in a forked worker. The suite runs on both backends and as a
// non-root user with an 8 MiB memlock (.ci/matrix), so every row does too.
// RELIABILITY.md's summary of the table is checked against it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker as ThreadWorker } from 'node:worker_threads';
import { backend, forkWorker, removeDir, rm, tempDir, Worker } from '../helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const { cases, runCases, summary } = require('../fixtures/bad-input-cases.cjs');

let dir: string;
let pm: import('../../core/index').Postmaster;
let plain: import('../../core/index').Postmaster;
let ctx: any;
let fresh = 0;
const TABLE = Buffer.from('the contents of table.0 that no misuse may change');

beforeAll(async () => {
  dir = tempDir('rm-badtable-');
  pm = await rm.Postmaster.start({
    dataDir: path.join(dir, 'data'), backend, arenaSize: 8 << 20,
    bufferPool: { pages: 16, pageSize: 4096 }, wal: { segmentSize: 64 << 10, bufferSize: 64 << 10 },
  } as any);
  plain = await rm.Postmaster.start({ dataDir: path.join(dir, 'plain'), backend, arenaSize: 1 << 20 } as any);
  const file = await pm.files.open('table.0', { create: true });
  await pm.write(file, 0, TABLE);
  ctx = {
    rm, db: pm, plain, file, backend, cluster,
    dataDir: pm.dataDir,
    token: pm.threadToken(),
    word: pm.completionWord(),
    tableSize: TABLE.length,
    workerPath: path.join(__dirname, '..', 'fixtures', 'worker.cjs'),
    lastFresh: '',
    fresh() {
      ctx.lastFresh = path.join(dir, `fresh-${fresh++}`, 'data');
      return ctx.lastFresh;
    },
  };
});
afterAll(async () => {
  await plain.stop();
  await pm.stop();
  removeDir(dir);
});

function check(report: { name: string; cls: string | null; code: string | null; message: string | null; problem: string | null }, k: any): void {
  expect(report.cls, `${k.name}: ${report.message ?? 'nothing was thrown'}`).toBe(k.cls);
  expect(report.code, `${k.name}: ${report.message}`).toBe(k.code);
  expect(report.problem, k.name).toBeNull();
}

describe('the bad-input table', () => {
  it('has at least 80 rows, each with a class and a code, grouped by area', () => {
    expect(cases.length).toBeGreaterThanOrEqual(80);
    for (const k of cases) {
      expect(['TypeError', 'RangeError', 'RingmasterError']).toContain(k.cls);
      expect(k.code).toMatch(/^(ERR_INVALID_ARG_TYPE|ERR_INVALID_ARG_VALUE|ERR_OUT_OF_RANGE|ERR_RINGMASTER_[A-Z_]+)$/);
      if (k.code.startsWith('ERR_RINGMASTER')) expect(Object.keys(rm.ERROR_CODES)).toContain(k.code);
      // Node's argument codes go with TypeError/RangeError, ours with RingmasterError.
      expect(k.cls === 'RingmasterError', k.name).toBe(k.code.startsWith('ERR_RINGMASTER'));
    }
    expect(new Set(cases.map((k: any) => k.name)).size).toBe(cases.length);
  });

  describe.each([...new Set<string>(cases.map((k: any) => k.area))])('%s', (area) => {
    it.each(cases.filter((k: any) => k.area === area).map((k: any) => [k.name, k]))('%s', async (_name, k) => {
      const [report] = await runCases(ctx, [k]);
      check(report, k);
    });
  });

  it('after every row, the postmaster still does IO, and table.0 is unchanged', async () => {
    const out = Buffer.alloc(TABLE.length);
    expect(await pm.read(ctx.file, 0, out)).toBe(TABLE.length);
    expect(out.equals(TABLE)).toBe(true);
    expect(pm.handlesInUse()).toBe(0);
    expect(pm.buffers.stats().pinned).toBe(0);
    expect(await pm.wal.append(1, Buffer.from('still appends'))).toBeGreaterThan(0n);
    expect(pm.closed).toBe(false);
  });

  it('the rows that need no postmaster, in a worker thread: the same class and code', async () => {
    const t = new ThreadWorker(path.join(__dirname, '..', 'fixtures', 'bad-input-thread.cjs'), {
      workerData: { token: pm.threadToken(), fileId: ctx.file.id, tableSize: TABLE.length },
    });
    // Listened for now: a worker's last message and its 'exit' can be emitted in one tick.
    const exited = new Promise((r) => t.once('exit', r));
    const reports: any[] = await new Promise((resolve, reject) => {
      t.once('message', resolve);
      t.once('error', reject);
    });
    await exited;
    const rows = cases.filter((k: any) => k.where === 'anywhere');
    expect(reports.map((r) => r.name)).toEqual(rows.map((k: any) => k.name));
    reports.forEach((r, i) => check(r, rows[i]));
  });

  it('the rows that need no postmaster, in a forked worker: the same class and code', async () => {
    const w: Worker = await forkWorker(pm);
    try {
      const reports: any[] = await w.call('badInputCases', { file: ctx.file.id, tableSize: TABLE.length });
      const rows = cases.filter((k: any) => k.where === 'anywhere');
      expect(reports.map((r) => r.name)).toEqual(rows.map((k: any) => k.name));
      reports.forEach((r, i) => check(r, rows[i]));
    } finally {
      await w.call('exit').catch(() => {});
      await w.exited;
    }
  });

  it("RELIABILITY.md's summary of the table is current", () => {
    const text = readFileSync(path.join(__dirname, '..', '..', 'RELIABILITY.md'), 'utf8');
    for (const [area, n, anywhere] of summary()) {
      expect(text, `RELIABILITY.md row for ${area}`).toContain(`| ${area} | ${n} | ${anywhere} |`);
    }
    expect(text).toContain(`| total | ${cases.length} | ${cases.filter((k: any) => k.where === 'anywhere').length} |`);
  });
});
