// Worker threads (plain worker_threads and piscina) attach to their process's rings.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker as ThreadWorker } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { Worker, forkWorker, killWorkers, removeDir, startPm, tempDir, waitFor } from '../helpers';

let dir: string;
let pm: import('../../core/index').Postmaster;
const workers: Worker[] = [];
const THREAD = path.join(__dirname, '..', 'fixtures', 'thread.cjs');

beforeEach(async () => {
  dir = tempDir();
  pm = await startPm(dir);
});
afterEach(async () => {
  await killWorkers(workers);
  await pm.stop({ timeoutMs: 2000 });
  removeDir(dir);
});

function runThread(workerData: Record<string, unknown>): Promise<any> {
  const t = new ThreadWorker(THREAD, { workerData: { token: pm.threadToken(), ...workerData } });
  return new Promise((resolve, reject) => {
    t.once('message', (m) => t.terminate().then(() => resolve(m)));
    t.once('error', reject);
  });
}

function expectRecords(file: string, tag: string, base: number, n: number): void {
  const c = readFileSync(path.join(pm.dataDir, file)).toString('latin1');
  for (let i = 0; i < n; i++) expect(c.substr(base + i * 7, 7)).toBe(`${tag}${String(i).padStart(6, '0')}`);
}

describe('worker threads', () => {
  it('three worker_threads attach with a token, each with a process slot of its own', async () => {
    const f = await pm.files.open('t.dat', { create: true });
    const rs = await Promise.all([0, 1, 2].map((k) => runThread({ fileId: f.id, base: k * 700, n: 100, tag: String(k) })));
    for (const r of rs) expect(r.error).toBeUndefined();
    // Slots are per JS environment (a finished thread's slot may be reused by the next).
    expect(rs.every((r) => Number.isInteger(r.slot) && r.slot !== pm.slot)).toBe(true);
    for (let k = 0; k < 3; k++) expectRecords('t.dat', String(k), k * 700, 100);
    await waitFor(() => pm.stats().processes.length === 1, 5000, 'thread slots to be released');
  });

  it('piscina pool threads attach lazily and share the rings', async () => {
    const f = await pm.files.open('p.dat', { create: true });
    const pool = new Piscina({ filename: path.join(__dirname, '..', 'fixtures', 'piscina-task.cjs'), minThreads: 2, maxThreads: 2, workerData: { token: pm.threadToken() } });
    const tasks = [];
    for (let i = 0; i < 40; i++) tasks.push(pool.run({ fileId: f.id, offset: i * 5, text: String(i).padStart(5, '0') }));
    const results = await Promise.all(tasks);
    expect(results.every((r) => r.n === 5)).toBe(true);
    expect(new Set(results.map((r) => r.slot)).size).toBeLessThanOrEqual(2);
    const c = readFileSync(path.join(pm.dataDir, 'p.dat')).toString();
    for (let i = 0; i < 40; i++) expect(c.substr(i * 5, 5)).toBe(String(i).padStart(5, '0'));
    await pool.destroy();
    // A pool thread that ends without closing is detached by its environment's cleanup hook.
    await waitFor(() => pm.stats().processes.length === 1, 5000, 'pool thread slots to be released');
    expect(pm.handlesInUse()).toBe(0);
  });

  it('a worker thread inside a forked worker attaches to the same rings', async () => {
    const f = await pm.files.open('nested.dat', { create: true });
    const w = await forkWorker(pm);
    workers.push(w);
    const r = await w.call('threadWrite', { file: f.id, base: 0, n: 50, tag: 'N' });
    expect(r.done).toBe(true);
    expectRecords('nested.dat', 'N', 0, 50);
  });

  it('a thread terminated with IO in flight leaves no leaked handles', async () => {
    const f = await pm.files.open('term.dat', { create: true });
    const t = new ThreadWorker(THREAD, { workerData: { token: pm.threadToken(), fileId: f.id, base: 0, n: 2000, tag: 'K', announce: true } });
    // Terminate once it is attached and submitting (terminations during attach: next test).
    await new Promise((r) => t.once('message', r));
    await new Promise((r) => setTimeout(r, 5));
    await t.terminate();
    await waitFor(() => pm.handlesInUse() === 0, 10000, 'handles to be freed');
    await waitFor(() => pm.stats().processes.length === 1, 5000, 'slot release');
    expect(await pm.write(f, 0, Buffer.from('still works'))).toBe(11);
  });

  it('threads terminated at random moments, many inside attach(): the process survives, no slot or handle leaks', async () => {
    // Regression: a terminating environment made session construction fail, and
    // node-addon-api aborted the whole process (Error::New on a null env).
    const f = await pm.files.open('attach-term.dat', { create: true });
    for (let i = 0; i < 120; i++) {
      const t = new ThreadWorker(THREAD, { workerData: { token: pm.threadToken(), fileId: f.id, base: 0, n: 20, tag: 'T' } });
      t.on('error', () => {});
      await new Promise((r) => setTimeout(r, Math.random() * 40));
      await t.terminate();
    }
    await waitFor(() => pm.handlesInUse() === 0, 10000, 'handles to be freed');
    await waitFor(() => pm.stats().processes.length === 1, 5000, 'every thread slot to be released');
    expect(await pm.write(f, 0, Buffer.from('still works'))).toBe(11);
  });
});
