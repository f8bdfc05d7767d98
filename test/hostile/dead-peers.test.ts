// kill -9 of a worker at the worst moments: the survivors keep working, nothing leaks.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker, forkWorker, killWorkers, removeDir, startPm, tempDir, waitFor } from '../helpers';

let dir: string;
let pm: import('../../core/index').Postmaster;
const workers: Worker[] = [];
const exits: import('../../core/index').ProcessExit[] = [];

async function spawn(): Promise<Worker> {
  const w = await forkWorker(pm);
  workers.push(w);
  return w;
}

beforeEach(async () => {
  dir = tempDir();
  pm = await startPm(dir);
  exits.length = 0;
  pm.on('exit', (e) => exits.push(e));
});
afterEach(async () => {
  await killWorkers(workers);
  await pm.stop({ timeoutMs: 2000 });
  removeDir(dir);
});

const uring = () => pm.features.backend === 'io_uring';

/** Survivors write `n` records each and read them back: the ring still works for everyone. */
async function survivorsWork(file: import('../../core/index').FileHandle, survivors: Worker[], n = 50): Promise<void> {
  await Promise.all(survivors.map((w, k) => {
    const ops = [];
    for (let i = 0; i < n; i++) ops.push({ op: 'write', file: file.id, offset: (k * n + i) * 6, data: `s${String(k * n + i).padStart(5, '0')}` });
    return w.call('batch', { ops }).then((r: any[]) => expect(r.every((x) => x.ok)).toBe(true));
  }));
  const own = await pm.write(file, 1 << 20, Buffer.from('postmaster'));
  expect(own).toBe(10);
  const c = readFileSync(path.join(pm.dataDir, file.path)).toString('latin1');
  for (let i = 0; i < survivors.length * n; i++) expect(c.substr(i * 6, 6)).toBe(`s${String(i).padStart(5, '0')}`);
}

describe('dead peers', () => {
  it('the postmaster notices a killed worker and frees its slot', async () => {
    const a = await spawn();
    const pid = a.pid;
    expect(pm.stats().processes.some((p: any) => p.pid === pid)).toBe(true);
    await a.kill9();
    await waitFor(() => exits.some((e) => e.pid === pid), 5000, 'exit event');
    expect(exits.find((e) => e.pid === pid)).toMatchObject({ signal: 'SIGKILL', slotsCleaned: 1 });
    expect(pm.stats().processes.some((p: any) => p.pid === pid)).toBe(false);
    expect(pm.stats().deadProcessesCleaned).toBe(1);
  });

  it.runIf(process.env.RINGMASTER_BACKEND !== 'threads')('kill -9 of a worker holding the submission lock: the others keep submitting', async () => {
    const f = await pm.files.open('sub.dat', { create: true });
    const [a, b, c] = [await spawn(), await spawn(), await spawn()];
    expect(await a.call('holdLock', { which: 'submit' })).toBe(true);
    await a.kill9();
    await survivorsWork(f, [b, c]);
    expect(pm.stats().rings[0].submitLockOwnerDied).toBeGreaterThanOrEqual(1);
  });

  it.runIf(process.env.RINGMASTER_BACKEND !== 'threads')('kill -9 in the middle of a submission: its published SQE is cancelled, not submitted by someone else', async () => {
    const f = await pm.files.open('mid.dat', { create: true });
    const [a, b] = [await spawn(), await spawn()];
    expect(await a.call('holdLock', { which: 'submit', midSubmit: true })).toBe(true);
    await a.kill9();
    await survivorsWork(f, [b]);
    const ring = pm.stats().rings[0];
    expect(ring.submitLockRepairs).toBeGreaterThanOrEqual(1);
    await waitFor(() => pm.handlesInUse() === 0, 10000, 'handles to drain');
  });

  it.runIf(process.env.RINGMASTER_BACKEND !== 'threads')('kill -9 of a worker holding the completion lock: completions still flow', async () => {
    const f = await pm.files.open('comp.dat', { create: true });
    const [a, b, c] = [await spawn(), await spawn(), await spawn()];
    expect(await a.call('holdLock', { which: 'complete' })).toBe(true);
    await a.kill9();
    await survivorsWork(f, [b, c]);
    expect(pm.stats().rings[0].completionLockOwnerDied).toBeGreaterThanOrEqual(1);
  });

  it('kill -9 of a worker with 100 IOs in flight: survivors finish, orphans are reaped, no handle leaks', async () => {
    const fifo = path.join(pm.dataDir, 'fifo');
    execFileSync('mkfifo', ['-m', '0600', fifo]);
    const ff = await pm.files.open('fifo');
    const f = await pm.files.open('survive.dat', { create: true });
    const [a, b, c] = [await spawn(), await spawn(), await spawn()];
    const dying = a.call('readsThenDie', { file: ff.id, n: 100 }).catch(() => 'died');
    const work = survivorsWork(f, [b, c], 100);
    expect(await dying).toBe('died');
    await work;
    await waitFor(() => exits.some((e) => e.pid === a.pid), 5000, 'exit event');
    // Every orphan gets a CQE (the kernel completes a dead submitter's requests) or, threads backend, is cancelled by the cleanup.
    await waitFor(() => pm.handlesInUse() === 0, 15000, 'orphaned IO handles to be freed');
    expect(pm.stats().processes.some((p: any) => p.pid === a.pid)).toBe(false);
    await survivorsWork(f, [b, c], 10);
  });

  it('whoever waits on a dead issuer\'s IO is told it failed', async () => {
    const fifo = path.join(pm.dataDir, 'fifo3');
    execFileSync('mkfifo', ['-m', '0600', fifo]);
    const ff = await pm.files.open('fifo3');
    const a = await spawn();
    const word = pm.completionWord();
    await a.call('start', { ops: [{ op: 'read', file: ff.id, offset: 0, length: 4, opts: { completionWord: word } }] });
    await new Promise((r) => setTimeout(r, 100));
    expect(pm.completionWordResult(word)).toBeUndefined();
    await a.kill9();
    await waitFor(() => pm.completionWordResult(word) !== undefined, 10000, 'the completion word');
    expect(pm.completionWordResult(word)).toBeLessThan(0);  // -ECANCELED / -EINTR: never success
    if (uring()) writeFileSync(fifo, 'late');  // nothing must consume this on the dead one's behalf
  });

  it('a worker killed repeatedly while others work never wedges the ring', async () => {
    const f = await pm.files.open('churn.dat', { create: true });
    const b = await spawn();
    for (let round = 0; round < 5; round++) {
      const a = await spawn();
      const burst = a.call('batch', { ops: Array.from({ length: 32 }, (_, i) => ({ op: 'write', file: f.id, offset: 4096 * 64 + i * 8, data: 'zzzzzzzz' })) }).catch(() => null);
      if (uring() && round % 2 === 0) await a.call('holdLock', { which: round % 4 === 0 ? 'submit' : 'complete' });
      await a.kill9();
      await burst;
      await survivorsWork(f, [b], 20);
    }
    await waitFor(() => pm.handlesInUse() === 0, 15000, 'handles to drain');
  });
});
