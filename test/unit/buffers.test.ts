// Every buffer a user can pass: every TypedArray kind and DataViews, over plain,
// resizable and shared (growable) ArrayBuffers, Buffer pool slices and the arena, at
// offsets -- supported, bytes exactly round-tripped -- and every state a buffer can be
// in -- detached, out of bounds of a shrunk resizable buffer, empty -- refused with a
// coded TypeError/RangeError, on every path that takes bytes (read, write, batch,
// wal.append, appendPageImage, setPageChecksum, redo), in this process, in a worker
// thread (with memory shared with the main thread) and in a forked worker. Also what a
// buffer resized or detached while its IO is in flight turns into.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker as ThreadWorker } from 'node:worker_threads';
import { Worker, backend, exitWorkers, forkWorker, removeDir, rm, tempDir } from '../helpers';

// eslint-disable-next-line @typescript-eslint/no-var-requires
const kinds = require('../fixtures/buffer-kinds.cjs');
const OP = { read: 1, write: 2 };
const WAL = { segmentSize: 1 << 20, bufferSize: 256 << 10 };

let dir: string;
let pm: import('../../core/index').Postmaster | null;
let workers: Worker[];

beforeEach(() => {
  dir = tempDir('rm-buffers-');
  pm = null;
  workers = [];
});
afterEach(async () => {
  await exitWorkers(workers);
  if (pm) await pm.stop();
  removeDir(dir);
});

async function start(extra: Record<string, unknown> = {}) {
  pm = await rm.Postmaster.start({ dataDir: path.join(dir, 'data'), backend, arenaSize: 4 << 20, wal: WAL, ...extra } as any);
  return pm;
}

describe('every kind of buffer, on every path', () => {
  it('in this process: supported kinds round-trip exactly; refused kinds get a coded error and change nothing', async () => {
    const db = await start();
    const f = await db.files.open('kinds.dat', { create: true });
    const report = await kinds.run(db, f, {});
    expect(report.failures).toEqual([]);
    expect(report.checks).toBeGreaterThan(200);
    expect(db.handlesInUse()).toBe(0);
  });

  it('wal.append of every kind: recovery hands each payload back byte for byte, and a redo handler can write it to a file', async () => {
    const db = await start();
    const f = await db.files.open('kinds.dat', { create: true });
    const appended: [string, string][] = [];
    const report = await kinds.run(db, f, { walKinds: appended });
    expect(report.failures).toEqual([]);
    await db.wal.flush();
    await db.stop();
    pm = null;
    const replayed: string[] = [];
    let written = 0;
    await start({
      wal: {
        ...WAL,
        redo: {
          1: async (r: any, p: any) => {
            if (r.payload.length === 0) return;  // the empty records the refused-kinds pass appended
            replayed.push(Buffer.from(r.payload).toString('hex'));
            const g = await p.files.open('redo.dat', { create: true });
            written += await p.write(g, written, r.payload);  // the payload as a redo handler gets it
            await g.close();
          },
        },
      },
    });
    expect(replayed).toEqual(appended.map(([, hex]) => hex));
    expect(readFileSync(path.join(pm!.dataDir, 'redo.dat')).toString('hex')).toBe(appended.map(([, hex]) => hex).join(''));
    // The last page image (of the last kind) was written back by recovery.
    expect(readFileSync(path.join(pm!.dataDir, 'images.dat')).toString('hex')).toBe(appended[appended.length - 1][1]);
  });

  it('setPageChecksum takes any view of a page, and refuses a detached or shrunk one', async () => {
    const page = (mk: (n: number) => ArrayBufferView) => {
      const v = mk(4096);
      kinds.fill(v, 3);
      return v;
    };
    const ref = rm.setPageChecksum(page((n) => new Uint8Array(n)));
    expect(rm.setPageChecksum(page((n) => new Uint8Array(new SharedArrayBuffer(n))))).toBe(ref);
    expect(rm.setPageChecksum(page((n) => new DataView(new ArrayBuffer(n + 8), 8)))).toBe(ref);
    expect(rm.setPageChecksum(page((n) => new Float64Array(n / 8)))).toBe(ref);
    for (const [name, make, cls, code] of kinds.badKinds(null).filter(([n]: [string]) => !n.includes('arena'))) {
      let err: any = null;
      try {
        rm.setPageChecksum(make());
      } catch (e) {
        err = e;
      }
      expect(err?.constructor.name, name).toBe(cls);
      expect(err?.code, name).toBe(code);
    }
  });

  it('in a worker thread, with views of a SharedArrayBuffer the main thread made', async () => {
    const db = await start();
    const f = await db.files.open('kinds.dat', { create: true });
    const sab = new SharedArrayBuffer(4096);
    const t = new ThreadWorker(path.join(__dirname, '..', 'fixtures', 'buffer-kinds-thread.cjs'), {
      workerData: { token: db.threadToken(), fileId: f.id, sab, base: 1 << 20 },
    });
    // Listened for now: a worker's last message and its 'exit' can be emitted in one tick.
    const exited = new Promise((r) => t.once('exit', r));
    const report: any = await new Promise((resolve, reject) => {
      t.once('message', resolve);
      t.once('error', reject);
    });
    await exited;
    expect(report.failures).toEqual([]);
    expect(report.checks).toBeGreaterThan(200);
    expect(Buffer.from(new Uint8Array(sab, 100, 21)).toString()).toBe('written by the thread');
  });

  it('in a forked worker', async () => {
    const db = await start();
    const f = await db.files.open('kinds.dat', { create: true });
    const w = await forkWorker(db);
    workers.push(w);
    const report = await w.call('bufferKinds', { file: f.id, base: 2 << 20 });
    expect(report.failures).toEqual([]);
    expect(report.checks).toBeGreaterThan(200);
  });
});

describe('a buffer changed while its IO is in flight', () => {
  // Delayed ops (test hooks) stay in flight long enough to change their buffer meanwhile.
  function delay(db: import('../../core/index').Postmaster, file: { id: number }, op: 'read' | 'write', us = 300_000) {
    expect(db._native().debugSetFault(0, { opMask: 1 << OP[op], fileSlot: file.id % 65536, delayUs: us })).toBe(true);
  }

  it('transferring it to another thread (postMessage / structuredClone) cannot detach it: the read lands in it', async () => {
    const db = await start();
    const f = await db.files.open('t.dat', { create: true });
    await db.write(f, 0, Buffer.from('landed in place!'));
    delay(db, f, 'read');
    const ab = new ArrayBuffer(16);
    const view = new Uint8Array(ab);
    const reading = db.read(f, 0, view);
    // Node 20 copies an untransferable buffer instead of detaching it; Node 21+ throws.
    try {
      const copy = structuredClone(ab, { transfer: [ab] });
      expect(copy.byteLength).toBe(16);
    } catch (e) {
      expect((e as Error).name).toBe('DataCloneError');
    }
    expect(ab.byteLength).toBe(16);
    expect(await reading).toBe(16);
    expect(Buffer.from(view).toString()).toBe('landed in place!');
    db._native().debugSetFault(0, null);
  });

  for (const op of ['read', 'write'] as const) {
    it(`a resizable buffer shrunk during a ${op}: the ${op} fails with ERR_RINGMASTER_BUFFER_CHANGED, never reports success`, async () => {
      const db = await start();
      const f = await db.files.open('r.dat', { create: true });
      await db.write(f, 0, Buffer.alloc(4096, 7));
      const ab = new ArrayBuffer(4096, { maxByteLength: 8192 });
      const view = new Uint8Array(ab);  // length-tracking
      delay(db, f, op);
      const p = op === 'read' ? db.read(f, 0, view) : db.write(f, 0, view);
      ab.resize(1024);
      await expect(p).rejects.toMatchObject({ code: 'ERR_RINGMASTER_BUFFER_CHANGED', errno: -14 });
      db._native().debugSetFault(0, null);
      // Fixed-length view pushed out of bounds by the shrink: the same.
      const ab2 = new ArrayBuffer(4096, { maxByteLength: 8192 });
      const fixed = new Uint8Array(ab2, 0, 4096);
      delay(db, f, op);
      const [r] = await (async () => {
        const q = db.batch()[op](f, 0, fixed).submit();
        ab2.resize(0);
        return q;
      })();
      expect(r.ok).toBe(false);
      expect(r.error).toMatchObject({ code: 'ERR_RINGMASTER_BUFFER_CHANGED' });
      db._native().debugSetFault(0, null);
      expect(db.handlesInUse()).toBe(0);
    });
  }

  it.runIf(typeof (ArrayBuffer.prototype as any).transfer === 'function')('a buffer detached with ArrayBuffer.prototype.transfer() during a read: ERR_RINGMASTER_BUFFER_CHANGED', async () => {
    const db = await start();
    const f = await db.files.open('d.dat', { create: true });
    await db.write(f, 0, Buffer.alloc(64, 1));
    delay(db, f, 'read');
    const ab = new ArrayBuffer(64);
    const p = db.read(f, 0, new Uint8Array(ab));
    const moved = (ab as any).transfer();
    await expect(p).rejects.toMatchObject({ code: 'ERR_RINGMASTER_BUFFER_CHANGED' });
    expect(moved.byteLength).toBe(64);
    db._native().debugSetFault(0, null);
  });

  it('a resizable WAL payload shrunk while append() waits for room in the WAL buffer is refused, not appended short', async () => {
    const db = await start({ wal: { segmentSize: 1 << 20, bufferSize: 64 << 10 } });
    const a = await db.wal.append(1, Buffer.alloc(30 << 10, 1));
    await db.wal.append(1, Buffer.alloc(30 << 10, 2));
    // The WAL's write is slow: the third record waits for the first two to be flushed.
    const seg = await db.wal._segmentFileId(a);
    expect(db._native().debugSetFault(0, { opMask: 1 << 2, fileSlot: seg % 65536, delayUs: 300_000 })).toBe(true);
    const ab = new ArrayBuffer(30 << 10, { maxByteLength: 64 << 10 });
    const payload = new Uint8Array(ab);
    const p = db.wal.append(1, payload);
    await new Promise((r) => setTimeout(r, 50));
    ab.resize(10);
    await expect(p).rejects.toMatchObject({ code: 'ERR_RINGMASTER_BUFFER_CHANGED' });
    db._native().debugSetFault(0, null);
    expect(await db.wal.append(1, Buffer.from('still works'))).toBeGreaterThan(a);
  });
});
