// The fault matrix: every injectable fault × every path that issues IO.
// Each cell asserts where the fault surfaces (which caller, which typed code), that
// nothing is reported durable that is not, and that the system recovers (a one-shot
// fault: the next attempt works) or enters its documented failed state (the WAL).
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pageImage, startPm, teardown, tempDir } from '../helpers';

const OP = { read: 1, write: 2, fdatasync: 4 } as const;
const PS = 4096;
type Fault = 'EIO' | 'ENOSPC' | 'short' | 'ECANCELED' | 'delay';
const FAULTS: Fault[] = ['EIO', 'ENOSPC', 'short', 'ECANCELED', 'delay'];
const ERRNO: Record<string, number> = { EIO: -5, ENOSPC: -28, ECANCELED: -125 };

function rule(op: keyof typeof OP, fault: Fault): Record<string, number> {
  const r: Record<string, number> = { opMask: 1 << OP[op] };
  if (fault === 'delay') r.delayUs = 50_000;
  else r.error = fault === 'short' ? 0 : ERRNO[fault];
  return r;
}

let dir: string | null = null;
let pm: import('../../core/index').Postmaster | null = null;
afterEach(async () => {
  await teardown({ pm, dir, clearFaults: true });
  pm = null;
  dir = null;
});

async function setup(extra: Record<string, unknown> = {}) {
  dir = tempDir('rm-fmx-');
  pm = await startPm(dir, extra);
  return pm;
}

describe('fault matrix: raw IO', () => {
  for (const op of ['read', 'write', 'fdatasync'] as const) {
    for (const fault of FAULTS) {
      if (op === 'fdatasync' && fault === 'short') continue;  // no length: a short sync is a success
      it(`${op} × ${fault}`, async () => {
        const p = await setup();
        const f = await p.files.open('raw.dat', { create: true });
        await p.write(f, 0, Buffer.alloc(64, 0x61));
        const attempt = () => op === 'read' ? p.read(f, 0, new Uint8Array(64))
          : op === 'write' ? p.write(f, 0, Buffer.alloc(64, 0x62)) : p.fdatasync(f);
        p._native().debugSetFault(0, rule(op, fault));
        if (fault === 'EIO' || fault === 'ENOSPC' || fault === 'ECANCELED') {
          await expect(attempt()).rejects.toMatchObject({ code: fault, errno: ERRNO[fault] });
          if (op === 'write') expect(readFileSync(path.join(p.dataDir, 'raw.dat'))[0]).toBe(0x61);  // never reached the file
        } else if (fault === 'short') {
          expect(await attempt()).toBe(32);
        } else {
          expect(await attempt()).toBe(op === 'fdatasync' ? undefined : 64);
        }
        expect(p._native().debugFaultFired(0)).toBe(1);
        expect(p.handlesInUse()).toBe(0);
        // One-shot: the next attempt works in full.
        expect(await attempt()).toBe(op === 'fdatasync' ? undefined : 64);
      });
    }
  }
});

describe('fault matrix: WAL flush', () => {
  for (const op of ['write', 'fdatasync'] as const) {
    for (const fault of FAULTS) {
      if (op === 'fdatasync' && fault === 'short') continue;
      const fails = fault === 'EIO' || fault === 'ENOSPC' || fault === 'short';
      it(`WAL ${op} × ${fault}: ${fails ? 'the WAL enters its failed state, nothing more is reported durable' : 'the flush completes (a cancelled op is written again)'}`, async () => {
        // An fdatasync is sent by the buffered WAL only (direct: false); its writes by both.
        const p = await setup({ wal: { segmentSize: 64 << 10, bufferSize: 64 << 10, ...(op === 'fdatasync' ? { direct: false } : {}) } });
        const failedEvents: unknown[] = [];
        p.on('wal-failed', (e: unknown) => failedEvents.push(e));
        await p.wal.flush(await p.wal.append(1, Buffer.from('durable before')));
        const before = p.wal.flushedLsn();
        const end = await p.wal.append(1, Buffer.from('under fault'));
        p._native().debugSetFault(0, rule(op, fault));
        if (fails) {
          await expect(p.wal.flush(end)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_FAILED' });
          expect(p.wal.flushedLsn()).toBe(before);
          // fsyncgate: never cleared, even though the next write would succeed.
          p._native().debugSetFault(0, null);
          await expect(p.wal.append(1, Buffer.from('after'))).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_FAILED' });
          await expect(p.wal.flush(end)).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_FAILED' });
          await new Promise((r) => setTimeout(r, 10));
          expect(failedEvents.length).toBeGreaterThanOrEqual(1);
        } else {
          await p.wal.flush(end);
          expect(p.wal.flushedLsn()).toBeGreaterThanOrEqual(end);
          expect(failedEvents).toEqual([]);
        }
        expect(p._native().debugFaultFired(0)).toBe(1);
      });
    }
  }
});

describe('fault matrix: buffer pool', () => {
  for (const fault of FAULTS) {
    it(`page read × ${fault}`, async () => {
      const p = await setup({ bufferPool: { pages: 8, pageSize: PS } });
      const f = await p.files.open('pages.dat', { create: true });
      await p.write(f, 3 * PS, pageImage(7));
      p._native().debugSetFault(0, rule('read', fault));
      const expected = fault === 'ECANCELED' || fault === 'delay' ? null  // retried with our own read / just late
        : fault === 'short' ? 'ERR_RINGMASTER_SHORT_READ' : fault;
      if (expected) {
        await expect(p.buffers.read(f, 3)).rejects.toMatchObject({ code: expected });
      } else {
        const b = await p.buffers.read(f, 3);
        expect(b.page[100]).toBe(7);
        b.release();
      }
      // Nothing is left pinned or io-in-progress; the next read of the page works.
      expect(p.buffers.stats()).toMatchObject({ pinned: 0, ioInProgress: 0 });
      const b = await p.buffers.read(f, 3);
      expect(b.page[100]).toBe(7);
      b.release();
      expect(p.handlesInUse()).toBe(0);
    });

    it(`page writeback × ${fault}`, async () => {
      const p = await setup({ bufferPool: { pages: 8, pageSize: PS } });
      const f = await p.files.open('pages.dat', { create: true });
      await p.write(f, 2 * PS, pageImage(1));
      const b = await p.buffers.read(f, 2);
      await b.lockExclusive();
      b.page[200] = 0x5a;
      b.markDirty();
      b.unlock();
      b.release();
      p._native().debugSetFault(0, rule('write', fault));
      const onDisk = () => readFileSync(path.join(p.dataDir, 'pages.dat'))[2 * PS + 200];
      if (fault === 'delay') {
        expect(await p.buffers.flushAll()).toBe(1);
        expect(onDisk()).toBe(0x5a);
      } else {
        await expect(p.buffers.flushAll()).rejects.toMatchObject({ code: fault === 'short' ? 'EIO' : fault });
        // The page stays dirty (it is retried), and the torn/failed write is not "clean".
        expect(p.buffers.stats().dirty).toBe(1);
        expect(await p.buffers.flushAll()).toBe(1);
        expect(onDisk()).toBe(0x5a);
      }
      expect(p.buffers.stats()).toMatchObject({ pinned: 0, ioInProgress: 0, dirty: 0 });
    });
  }

  it('checkpoint × a page write failing every time: the checkpoint rejects and names no redo point past the unwritten page', async () => {
    const p = await setup({ bufferPool: { pages: 8, pageSize: PS }, wal: { segmentSize: 64 << 10, bufferSize: 64 << 10 } });
    const f = await p.files.open('pages.dat', { create: true });
    await p.write(f, 0, pageImage(1));
    const first = await p.wal.checkpoint();
    const controlCkpt = () => readFileSync(path.join(p.dataDir, 'pg_control')).readBigUInt64LE(16);
    expect(controlCkpt()).toBe(first);
    const b = await p.buffers.read(f, 0);
    await b.lockExclusive();
    b.page[300] = 0x77;
    b.markDirty();
    const lsn = await p.wal.append(1, Buffer.from('page 0 byte 300 = 0x77'));
    b.markDirty(lsn);
    b.unlock();
    b.release();
    p._native().debugSetFault(0, { ...rule('write', 'EIO'), fileSlot: f.id % 65536, repeat: 1 });
    await expect(p.wal.checkpoint()).rejects.toMatchObject({ code: 'EIO' });
    expect(controlCkpt()).toBe(first);  // the control file still names the old checkpoint
    p._native().debugSetFault(0, null);
    expect(await p.wal.checkpoint()).toBeGreaterThan(first);
    expect(controlCkpt()).toBeGreaterThan(first);
    expect(readFileSync(path.join(p.dataDir, 'pages.dat'))[300]).toBe(0x77);
  });
});
