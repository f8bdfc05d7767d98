// Hostile shared memory: a forked worker writes garbage into the IO handle
// table, the buffer descriptors or the buffer mapping table (a few random entries, or
// all of them) while the postmaster and another forked worker keep doing IO. Every op
// must end in correct data or a typed error, within the loop's watchdog; nobody
// crashes; the corruption is counted; checkIntegrity({ repair }) brings IO back; and
// the postmaster still stops cleanly.
import { afterEach, describe, expect, it } from 'vitest';
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Worker, forkAttached, rm, startPm, teardown, tempDir, waitFor } from '../helpers';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'hostile-worker.cjs');
// eslint-disable-next-line @typescript-eslint/no-var-requires
const loop = require('../fixtures/hostile-loop.cjs');
const PS = 4096;
const BLOCKS = 64;
const SUBMIT_TIMEOUT_MS = 2000;  // back-pressure bound when garbage makes every handle look busy

type Tally = { ops: number; ok: number; wrong: number; hung: number; errors: Record<string, number>; untyped: string[] };

let dir: string | null = null;
let pm: import('../../core/index').Postmaster | null = null;
const workers: Worker[] = [];

afterEach(async () => {
  await teardown({ workers, pm, dir });
  pm = null;
  dir = null;
});

async function worker(): Promise<Worker> {
  return forkAttached(pm!, FIXTURE, { attach: { submitTimeoutMs: SUBMIT_TIMEOUT_MS }, into: workers });
}

function errorCount(t: Tally): number {
  return Object.values(t.errors).reduce((a, b) => a + b, 0);
}

// Correct data or a typed error, never a hang or an untyped failure.
function expectOnlyTypedOutcomes(t: Tally): void {
  expect(t.untyped).toEqual([]);
  expect(t.hung).toBe(0);
  expect(t.wrong).toBe(0);
  if (process.env.RINGMASTER_TEST_VERBOSE) console.log(JSON.stringify(t));
}

async function bothProgress(a: Worker, mine: { tally: Tally }, field: 'ops' | 'ok', by: number, what: string): Promise<void> {
  const a0 = (await a.call<Tally>('tally'))[field];
  const m0 = mine.tally[field];
  await waitFor(async () => (await a.call<Tally>('tally'))[field] >= a0 + by && mine.tally[field] >= m0 + by, 60000, what);
}

async function quitCleanly(ws: Worker[]): Promise<void> {
  for (const w of ws) {
    await w.call('quit');
    expect(await w.exited).toEqual({ code: 0, signal: null });
  }
}

async function scribble(s: Worker, region: string, count: number | 'all', a: Worker, mine: { tally: Tally }): Promise<number> {
  let written = 0;
  if (count === 'all') return s.call<number>('scribble', { region, seed: 0xdead });
  // A few garbage entries among live ones, several times while IO goes on.
  for (let round = 0; round < 5; round++) {
    written += await s.call<number>('scribble', { region, seed: 1000 + round, count });
    await bothProgress(a, mine, 'ops', 4, 'IO to go on between scribbles');
  }
  return written;
}

describe('hostile shared memory: the IO handle table', () => {
  for (const count of [6, 'all'] as const) {
    it(`a worker scribbles ${count === 'all' ? 'the whole handle table' : `${count} random handles, 5 times,`} while the postmaster and a worker do IO`, async () => {
      dir = tempDir('rm-hostile-');
      pm = await startPm(dir, { ringEntries: 32, submitTimeoutMs: SUBMIT_TIMEOUT_MS });
      await (await pm.files.open('io.dat', { create: true })).close();
      const a = await worker();
      const s = await worker();
      await a.call('startLoop', { kind: 'io', path: 'io.dat', base: 0 });
      const mine = loop.start(pm, { kind: 'io', path: 'io.dat', base: 1 << 20 });
      await bothProgress(a, mine, 'ok', 5, 'IO before the scribble');
      expect(pm.checkIntegrity().anomalies).toEqual([]);  // no false alarms on a busy, healthy table
      const reports0 = pm.stats().corruptReports;

      expect(await scribble(s, 'handles', count, a, mine)).toBeGreaterThan(0);
      await bothProgress(a, mine, 'ops', count === 'all' ? 2 : 4, 'IO to go on (or fail) after the scribble');

      const report = pm.checkIntegrity({ repair: true });
      expect(report.found).toBeGreaterThan(0);
      expect(report.repaired).toBeGreaterThan(0);
      expect(report.anomalies.every((x) => x.structure === 'ioHandle')).toBe(true);
      await bothProgress(a, mine, 'ok', 5, 'IO to succeed again after the repair');

      const ta = await a.call<Tally>('stopLoop');
      const tm = await mine.stop();
      expectOnlyTypedOutcomes(ta);
      expectOnlyTypedOutcomes(tm);
      // Garbage that happens to read as FREE is legitimately reused; everything else is found.
      if (count === 'all') expect(report.found).toBeGreaterThan(pm.info.maxHandles / 2);
      const st = pm.stats();
      expect(st.corruptReports).toBeGreaterThan(reports0);
      expect(st.integrityRepairs).toBeGreaterThan(0);
      await quitCleanly([a, s]);
      await pm.stop();
      pm = null;
    });
  }
});

describe('hostile shared memory: an op in flight', () => {
  it('a read parked on a FIFO whose handle is scribbled fails with ERR_RINGMASTER_CORRUPT (and runs its completion action) instead of waiting forever', async () => {
    dir = tempDir('rm-hostile-');
    pm = await startPm(dir, { ringEntries: 32, submitTimeoutMs: SUBMIT_TIMEOUT_MS });
    const fifo = path.join(pm.dataDir, 'p.fifo');
    execFileSync('mkfifo', [fifo]);
    const f = await pm.files.open('p.fifo');
    const word = pm.completionWord();
    const target = new Uint8Array(16);
    const pending = pm.read(f, 0, target, { completionWord: word });
    pending.catch(() => {});
    const s = await worker();
    await waitFor(() => pm!.handlesInUse() > 0, 10000, 'the read to be in flight');
    expect(await s.call<number>('scribble', { region: 'handles', seed: 42 })).toBe(pm.info.maxHandles);
    // Before the fix nothing ever settled this promise: its CQE is (rightly) rejected as corrupt.
    await expect(pending).rejects.toMatchObject({ code: 'ERR_RINGMASTER_CORRUPT' });
    expect(pm.completionWordResult(word)).toBe(-117);  // the action ran, with the issuer's own copy of its argument
    expect(pm.stats().corruptHandles).toBe(1);
    // Let the parked read finish (its CQE is then counted as corrupt, never delivered).
    const w = openSync(fifo, 'w');
    writeSync(w, Buffer.from('0123456789abcdef'));
    closeSync(w);
    pm.checkIntegrity({ repair: true });
    await quitCleanly([s]);
    await pm.stop();
    pm = null;
  });
});

describe('hostile shared memory: the buffer pool', () => {
  const cases = [
    ['bufferDescriptors', 4], ['bufferDescriptors', 'all'], ['mappingTable', 8], ['mappingTable', 'all'],
  ] as const;
  for (const [region, count] of cases) {
    it(`a worker scribbles ${count === 'all' ? `all of ${region}` : `${count} random entries of ${region}, 5 times,`} while the postmaster and a worker read pages`, async () => {
      dir = tempDir('rm-hostile-');
      const data = path.join(dir, 'data');
      mkdirSync(data, { recursive: true });
      const file = Buffer.alloc(BLOCKS * PS);
      for (let b = 0; b < BLOCKS; b++) {
        const page = new Uint8Array(file.buffer, file.byteOffset + b * PS, PS);
        new DataView(page.buffer, page.byteOffset, PS).setBigUint64(16, BigInt(b), true);
        page[100] = b % 251;
        rm.setPageChecksum(page);
      }
      writeFileSync(path.join(data, 'pages.dat'), file);
      pm = await startPm(dir, { bufferPool: { pages: 32, pageSize: PS }, submitTimeoutMs: SUBMIT_TIMEOUT_MS });
      const a = await worker();
      const s = await worker();
      await a.call('startLoop', { kind: 'pool', path: 'pages.dat', blocks: BLOCKS });
      const mine = loop.start(pm, { kind: 'pool', path: 'pages.dat', blocks: BLOCKS });
      await bothProgress(a, mine, 'ok', 10, 'page reads before the scribble');
      expect(pm.checkIntegrity().anomalies).toEqual([]);  // no false alarms on a busy, healthy pool
      const reports0 = pm.stats().corruptReports;

      expect(await scribble(s, region, count, a, mine)).toBeGreaterThan(0);
      await bothProgress(a, mine, 'ops', 10, 'page reads to go on (or fail) after the scribble');

      const report = pm.checkIntegrity({ repair: true });
      expect(report.found).toBeGreaterThan(0);
      expect(report.repaired).toBeGreaterThan(0);
      // After the repair the pool is consistent again: a second scan finds nothing.
      await bothProgress(a, mine, 'ok', 10, 'page reads to succeed again after the repair');
      expect(pm.checkIntegrity().found).toBe(0);

      const ta = await a.call<Tally>('stopLoop');
      const tm = await mine.stop();
      expectOnlyTypedOutcomes(ta);
      expectOnlyTypedOutcomes(tm);
      if (count === 'all') {
        expect(ta.errors.ERR_RINGMASTER_CORRUPT ?? 0).toBeGreaterThan(0);
        expect(tm.errors.ERR_RINGMASTER_CORRUPT ?? 0).toBeGreaterThan(0);
      }
      expect(pm.stats().corruptReports).toBeGreaterThan(reports0);
      await quitCleanly([a, s]);
      await pm.stop();
      pm = null;
    });
  }
});
