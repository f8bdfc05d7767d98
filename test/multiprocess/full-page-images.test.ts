// Full-page images (PostgreSQL's full_page_writes rule) through
// `db.wal.append(kind, payload, { page })`: the first change of a page after a redo point
// is appended together with an image of the page, in one reservation, decided atomically
// against a checkpoint choosing that redo point; recovery applies an image only with its
// change record and makes it visible to later redo handlers. The rule is checked on the
// WAL itself (wal/format.ts's scanner), with a positive control that skips the images.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Worker as ThreadWorker } from 'node:worker_threads';
import fs from 'node:fs';
import path from 'node:path';
import { Worker, addon, backend, forkAttached, killWorkers, removeDir, rm, startPm, tempDir, waitFor } from '../helpers';
import type { WalRecord } from '../../wal/format';

// The built module, as the package uses it (its native addon path is relative to dist/).
const { FLAG_PAIRED_IMAGE, KIND_CHECKPOINT, KIND_PAGE_IMAGE, decodePageImage, scanWal }: typeof import('../../wal/format') = require('../../dist/wal/format');


const KIND_CELL = 7;     // test/fixtures/fpi-worker.cjs: payload block (u32), value (u32)
const CELL = 64;         // the value's offset in the page
const PS = 4096;
const SEG = 4 << 20;     // one segment for each whole test: nothing is recycled before the scan
const FIXTURE = path.join(__dirname, '..', 'fixtures', 'fpi-worker.cjs');

let dir: string;
let pm: import('../../core/index').Postmaster;
const workers: Worker[] = [];
const exits: import('../../core/index').ProcessExit[] = [];

beforeEach(() => {
  dir = tempDir('rm-fpi-');
  exits.length = 0;
});
afterEach(async () => {
  await killWorkers(workers);
  await pm?.stop({ timeoutMs: 2000 });
  removeDir(dir);
});

const dataDir = () => path.join(dir, 'data');

async function start(extra: { pool?: Record<string, unknown>; wal?: Record<string, unknown> } = {}): Promise<void> {
  pm = await startPm(dir, {
    bufferPool: { pages: 32, pageSize: PS, ...extra.pool },
    wal: { segmentSize: SEG, ...extra.wal },
  });
  pm.on('exit', (e) => exits.push(e));
}

async function fork(fixture = FIXTURE): Promise<Worker> {
  return forkAttached(pm, fixture, { into: workers });
}

function payload(block: number, value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(block, 0);
  b.writeUInt32LE(value, 4);
  return b;
}

/** One page change in the safe order, with the page given to append. */
async function change(f: import('../../core/index').FileHandle, block: number, value: number, before?: (page: Uint8Array) => void): Promise<bigint> {
  const b = await pm.buffers.read(f, block, { mode: 'extend' });
  try {
    await b.lockExclusive();
    before?.(b.page);
    new DataView(b.page.buffer, b.page.byteOffset, b.page.length).setUint32(CELL, value, true);
    b.markDirty();
    const lsn = await pm.wal.append(KIND_CELL, payload(block, value), { page: b });
    b.markDirty(lsn);
    return lsn;
  } finally {
    b.release();
  }
}

function records(): WalRecord[] {
  return scanWal(dataDir(), SEG, SEG).records;
}

const images = (rs: WalRecord[]) => rs.filter((r) => r.kind === KIND_PAGE_IMAGE);
const cellBlock = (r: WalRecord) => r.payload.readUInt32LE(0);

/**
 * The full-page-image rule on the WAL: for every redo point (the first LSN, and each
 * checkpoint record's), the first change record of each page at or after it follows a
 * paired image of that page at or after it; and no redo point lies inside an
 * image + change pair. Returns the violations.
 */
function imageRuleViolations(rs: WalRecord[], first = BigInt(SEG)): string[] {
  const out: string[] = [];
  const redos = [first, ...rs.filter((r) => r.kind === KIND_CHECKPOINT).map((r) => r.payload.readBigUInt64LE(0))];
  for (const redo of redos) {
    const seen = new Set<number>();
    for (let i = 0; i < rs.length; i++) {
      const r = rs[i];
      if (r.lsn < redo || r.kind !== KIND_CELL) continue;
      const block = cellBlock(r);
      if (seen.has(block)) continue;
      seen.add(block);
      const prev = rs[i - 1];
      const img = prev?.kind === KIND_PAGE_IMAGE ? decodePageImage(prev.payload) : null;
      if (!img || !(prev.flags & FLAG_PAIRED_IMAGE) || prev.endLsn !== r.lsn || prev.lsn < redo || img.block !== block) {
        out.push(`redo ${redo}: the first change of page ${block} (lsn ${r.lsn}) has no image at or after the redo point`);
      }
    }
  }
  for (let i = 0; i < rs.length; i++) {
    const r = rs[i];
    if (r.kind !== KIND_PAGE_IMAGE || !(r.flags & FLAG_PAIRED_IMAGE)) continue;
    const next = rs[i + 1];
    if (!next || next.lsn !== r.endLsn) {
      out.push(`paired image at ${r.lsn} without its change record`);
      continue;
    }
    for (const redo of redos) if (redo > r.lsn && redo < next.endLsn) out.push(`redo ${redo} splits the image at ${r.lsn} from its change`);
  }
  return out;
}

describe('full-page images: when they are logged', () => {
  // Behaviour: an image is logged with the first change of a page after the redo point
  // (a new page has LSN 0, so its first change too), and not with the changes after it,
  // until the next checkpoint's redo point.
  it('the first change of a page after the redo point logs an image, the later ones do not', async () => {
    await start();
    const f = await pm.files.open('t.dat', { create: true });
    await change(f, 0, 1);   // image: new page
    await change(f, 0, 2);   // none
    await change(f, 1, 1);   // image: new page
    await change(f, 1, 2);   // none
    expect(pm.wal.stats().pageImages).toBe(2);
    await pm.wal.checkpoint();
    await change(f, 0, 3);   // image: first change after the checkpoint's redo point
    await change(f, 0, 4);   // none
    await change(f, 1, 3);   // image
    await pm.wal.flush();
    const rs = records();
    expect(images(rs).map((r) => decodePageImage(r.payload)!.block)).toEqual([0, 1, 0, 1]);
    expect(pm.wal.stats().pageImages).toBe(4);
    expect(imageRuleViolations(rs)).toEqual([]);
  });

  // Behaviour: the image is the page as the change left it, with the change record's end
  // LSN as its page LSN and a valid checksum (users need not call setPageChecksum), in a
  // record flagged as paired with the change record right after it.
  it('the image is the changed page, with the change record\'s end LSN and a valid checksum', async () => {
    await start();
    const f = await pm.files.open('t.dat', { create: true });
    const lsn = await change(f, 3, 0xabcdef, (p) => p.fill(0x5a, 200, 4000));
    await pm.wal.flush();
    const rs = records();
    const [imgRec] = images(rs);
    expect(imgRec.flags & FLAG_PAIRED_IMAGE).toBe(FLAG_PAIRED_IMAGE);
    const img = decodePageImage(imgRec.payload)!;
    expect(img).toMatchObject({ path: 't.dat', block: 3 });
    expect(img.data.readBigUInt64LE(0)).toBe(lsn);
    expect(img.data.readUInt32LE(CELL)).toBe(0xabcdef);
    expect(img.data[200]).toBe(0x5a);
    const copy = Buffer.from(img.data);
    const stored = copy.readUInt32LE(8);
    expect(rm.setPageChecksum(copy) >>> 0).toBe(stored);
    const next = rs[rs.indexOf(imgRec) + 1];
    expect(next).toMatchObject({ kind: KIND_CELL, lsn: imgRec.endLsn, endLsn: lsn });
  });

  // Behaviour: the checkpoint publishes its redo point when it chooses it (before it
  // writes any page), so a page first changed while the checkpoint is flushing is judged
  // against the new redo point and gets its image.
  it('a page changed while a checkpoint is in progress gets an image: the redo point is public from the start', async () => {
    await start();
    const f = await pm.files.open('t.dat', { create: true });
    await change(f, 0, 1);
    await change(f, 1, 1);
    await pm.wal.checkpoint();
    const firstRedo = pm.wal.redoLsn;
    await change(f, 0, 2);   // image (first after firstRedo)
    await change(f, 1, 2);   // image
    await change(f, 1, 3);   // none: page 1's LSN is past firstRedo
    // Hold page 0 (dirty) exclusively: the checkpoint's flushAll waits for it, so the
    // checkpoint stays in progress while page 1 is changed.
    const held = await pm.buffers.read(f, 0);
    await held.lockExclusive();
    const before = pm.wal.insertLsn();
    const ckpt = pm.wal.checkpoint();
    const redo = pm.wal.redoLsn;
    expect(redo).toBe(before);   // chosen and published synchronously, at its start
    expect(redo).toBeGreaterThan(firstRedo);
    const imagesBefore = pm.wal.stats().pageImages;
    await change(f, 1, 4);       // page 1's LSN is below the new redo point: image
    expect(pm.wal.stats().pageImages).toBe(imagesBefore + 1);
    held.release();
    expect(await ckpt).toBeGreaterThan(redo);
    expect(pm.wal.lastCheckpoint!.redoLsn).toBe(redo);
    await change(f, 1, 5);       // none
    expect(pm.wal.stats().pageImages).toBe(imagesBefore + 1);
    await pm.wal.flush();
    expect(imageRuleViolations(records())).toEqual([]);
  });

  // Behaviour: a redo point chosen between an append's decision and its reservation (the
  // test hook makes the append choose one at exactly that instant) is noticed: the
  // reservation made without an image becomes padding and the change is appended again
  // with its image, after the redo point. Without the retry the change would be the
  // page's first after the redo point, with no image.
  it('a reservation decided against a redo point that moved meanwhile is padded and made again with the image', async () => {
    await start();
    const f = await pm.files.open('t.dat', { create: true });
    await change(f, 0, 1);
    await pm.wal.checkpoint();
    await change(f, 0, 2);     // the image after the redo point; page LSN now past it
    const s0 = pm.wal.stats();
    expect(addon.walDebugChooseRedoInNextAppend(pm._native())).toBe(true);
    const at = pm.wal.insertLsn();
    const lsn = await change(f, 0, 3);
    const redo = pm.wal.redoLsn;
    expect(redo).toBe(at);     // the hook chose the end of the WAL before the reservation
    const s1 = pm.wal.stats();
    expect(s1.imageRetries).toBe(s0.imageRetries + 1);
    expect(s1.paddings).toBe(s0.paddings + 1);
    expect(s1.pageImages).toBe(s0.pageImages + 1);
    await pm.wal.flush();
    const rs = records();
    const chg = rs.find((r) => r.endLsn === lsn)!;
    const img = rs[rs.indexOf(chg) - 1];
    expect(img.kind).toBe(KIND_PAGE_IMAGE);
    expect(img.lsn).toBeGreaterThan(redo);   // after the padding that replaced the first reservation
    // The rule, with the hook's redo point (no checkpoint record names it) as one more.
    expect(imageRuleViolations(rs)).toEqual([]);
    const withHookRedo = rs.filter((r) => r.lsn >= redo);
    expect(imageRuleViolations(withHookRedo, redo)).toEqual([]);
  });

  // Behaviour: an odd redo epoch (a checkpointer that died choosing its redo point, before
  // its slot cleanup; or garbage in shared memory) makes every page append log an image,
  // and never wait; the next checkpoint's choice leaves the epoch even again.
  it('an epoch left odd makes appends log images without waiting; the next checkpoint closes it', async () => {
    await start();
    const f = await pm.files.open('t.dat', { create: true });
    await change(f, 0, 1);
    await change(f, 0, 2);
    const st = addon.walState(pm._native());
    const word = pm.arenaSlice(st.redoEpochOffset, 4).bytes;
    const dv = new DataView(word.buffer, word.byteOffset, 4);
    dv.setUint32(0, (dv.getUint32(0, true) | 1) >>> 0, true);  // as a hostile peer (or a dead checkpointer) leaves it
    const s0 = pm.wal.stats().pageImages;
    await change(f, 0, 3);    // page LSN past the redo point, but the epoch is odd: image
    await change(f, 0, 4);
    expect(pm.wal.stats().pageImages).toBe(s0 + 2);
    await pm.wal.checkpoint();
    expect(addon.walState(pm._native()).redoEpoch % 2).toBe(0);
    await change(f, 0, 5);    // image: first after the new redo point
    await change(f, 0, 6);    // none
    expect(pm.wal.stats().pageImages).toBe(s0 + 3);
  });

  // Behaviour: bad arguments are coded errors and append nothing.
  it('refuses a page that is not pinned and locked exclusively by this handle', async () => {
    await start();
    const f = await pm.files.open('t.dat', { create: true });
    const b = await pm.buffers.read(f, 0, { mode: 'extend' });
    const end = pm.wal.insertLsn();
    await expect(pm.wal.append(KIND_CELL, payload(0, 1), { page: b })).rejects.toMatchObject({ code: 'ERR_RINGMASTER_NOT_LOCKED_EXCLUSIVE' });
    await b.lockShared();
    await expect(pm.wal.append(KIND_CELL, payload(0, 1), { page: b })).rejects.toMatchObject({ code: 'ERR_RINGMASTER_NOT_LOCKED_EXCLUSIVE' });
    b.release();
    await expect(pm.wal.append(KIND_CELL, payload(0, 1), { page: b })).rejects.toMatchObject({ code: 'ERR_RINGMASTER_BUFFER_RELEASED' });
    await expect(pm.wal.append(KIND_CELL, payload(0, 1), { page: new Uint8Array(PS) as any })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(pm.wal.append(KIND_CELL, payload(0, 1), { pages: b } as any)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(pm.wal.append(KIND_CELL, payload(0, 1), null as any)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    expect(pm.wal.insertLsn()).toBe(end);
  });

  // Behaviour: a change record plus its image must fit half the WAL buffer, like any record.
  it('a record with an image larger than half the WAL buffer is a RangeError', async () => {
    await start({ pool: { pageSize: 32768 }, wal: { bufferSize: 64 << 10 } });
    const f = await pm.files.open('t.dat', { create: true });
    const b = await pm.buffers.read(f, 0, { mode: 'extend' });
    await b.lockExclusive();
    b.markDirty();
    await expect(pm.wal.append(KIND_CELL, payload(0, 1), { page: b })).rejects.toThrow(RangeError);
    b.release();
  });
});

describe('full-page images: recovery', () => {
  // Behaviour: recovery applies an image appended with its change only if the change
  // record is in the WAL too: a tail cut between them (a torn WAL write) leaves the page
  // as it was, instead of putting the unlogged change on disk.
  it('an image whose change record was cut off is not applied', async () => {
    await start();
    const f = await pm.files.open('t.dat', { create: true });
    await change(f, 0, 1);
    await pm.wal.checkpoint();           // page 0 on disk with value 1
    const lsn = await change(f, 0, 2);   // image (value 2) + change
    await pm.wal.flush(lsn);
    const rs = records();
    const chg = rs.find((r) => r.endLsn === lsn)!;
    await pm.stop({ checkpoint: false });
    // Tear the change record: zero it in the segment file (a WAL write that stopped there).
    const seg = path.join(dataDir(), 'pg_wal', '00000001' + '1'.padStart(16, '0'));
    const fd = fs.openSync(seg, 'r+');
    fs.writeSync(fd, Buffer.alloc(Number(chg.endLsn - chg.lsn)), 0, Number(chg.endLsn - chg.lsn), Number(chg.lsn) - SEG);
    fs.closeSync(fd);
    const seen: number[] = [];
    pm = await rm.Postmaster.start({
      dataDir: dataDir(), backend, bufferPool: { pages: 32, pageSize: PS },
      wal: { segmentSize: SEG, redo: { [KIND_CELL]: (r: WalRecord) => { seen.push(r.payload.readUInt32LE(4)); } } },
    } as any);
    expect(pm.wal.recovery!.images).toEqual({ applied: 0, skipped: 1 });
    // The orphan image is cut with the tail: new records go where it was.
    expect(pm.wal.recovery!.endLsn).toBe(rs[rs.indexOf(chg) - 1].lsn);
    expect(pm.wal.recovery!.tornTail).toBe(true);
    expect(seen).toEqual([]);
    const cell = async () => {
      const g = await pm.files.open('t.dat');
      const b = await pm.buffers.read(g, 0);
      const v = new DataView(b.page.buffer, b.page.byteOffset, b.page.length).getUint32(CELL, true);
      b.release();
      await g.close();
      return v;
    };
    expect(await cell()).toBe(1);
    expect(fs.readFileSync(path.join(dataDir(), 't.dat')).readUInt32LE(CELL)).toBe(1);
    // A record of the same size where the image was, and another restart: nothing of the
    // old image comes back (it is not paired with the new record).
    await pm.wal.flush(await pm.wal.append(KIND_CELL, Buffer.alloc(4096 + 64, 1)));
    await pm.stop({ checkpoint: false });
    pm = await rm.Postmaster.start({
      dataDir: dataDir(), backend, bufferPool: { pages: 32, pageSize: PS },
      wal: { segmentSize: SEG, redo: { [KIND_CELL]: () => {} } },
    } as any);
    expect(pm.wal.recovery!.images).toEqual({ applied: 0, skipped: 0 });
    expect(await cell()).toBe(1);
  });

  // Behaviour: an image recovery writes back is what later redo handlers see through the
  // pool, even when a handler loaded that page into the pool earlier in the same recovery
  // (here: a record whose handler only reads the page). Without putting the image into
  // the pool, the later handler would see the stale copy (no unlogged bytes, old LSN).
  it('a page a redo handler loaded earlier in the recovery shows the image to later handlers', async () => {
    const KIND_READ = 8;
    await start();
    const f = await pm.files.open('t.dat', { create: true });
    await change(f, 0, 1);
    await pm.wal.checkpoint();                        // page 0 on disk: value 1
    await pm.wal.append(KIND_READ, payload(0, 0));   // recovery's handler reads page 0 here
    // The image carries bytes no record logs (hint bits, a stamp): only the image has them.
    const lsn = await change(f, 0, 2, (p) => p.fill(0x77, 1000, 1008));
    await pm.wal.flush(lsn);
    await pm.stop({ checkpoint: false });
    const reads: { value: number; lsn: bigint }[] = [];
    const sets: { value: number; lsn: bigint; stamp: number; endLsn: bigint }[] = [];
    let g: import('../../core/index').FileHandle | null = null;
    const open = async (db: any) => (g ??= await db.files.open('t.dat'));
    pm = await rm.Postmaster.start({
      dataDir: dataDir(), backend, bufferPool: { pages: 32, pageSize: PS },
      wal: {
        segmentSize: SEG,
        redo: {
          [KIND_READ]: async (r: WalRecord, db: any) => {
            const b = await db.buffers.read(await open(db), r.payload.readUInt32LE(0));
            reads.push({ value: new DataView(b.page.buffer, b.page.byteOffset).getUint32(CELL, true), lsn: b.lsn });
            b.release();
          },
          [KIND_CELL]: async (r: WalRecord, db: any) => {
            const b = await db.buffers.read(await open(db), r.payload.readUInt32LE(0));
            await b.lockExclusive();
            const dv = new DataView(b.page.buffer, b.page.byteOffset);
            sets.push({ value: dv.getUint32(CELL, true), lsn: b.lsn, stamp: b.page[1000], endLsn: r.endLsn });
            if (b.lsn < r.endLsn) {
              dv.setUint32(CELL, r.payload.readUInt32LE(4), true);
              b.markDirty(r.endLsn);
            }
            b.release();
          },
        },
      },
    } as any);
    expect(reads).toHaveLength(1);
    expect(reads[0].value).toBe(1);
    expect(pm.wal.recovery!.images).toEqual({ applied: 1, skipped: 0 });
    expect(sets).toEqual([{ value: 2, lsn, stamp: 0x77, endLsn: lsn }]);
    await g!.close();
  });
});

describe('full-page images: processes and threads', () => {
  // Behaviour: with a forked worker and a worker thread changing pages (some of them the
  // same pages) while another forked worker checkpoints in a loop, every change record
  // that is the first of its page after a redo point follows an image of that page at or
  // after the redo point, and no redo point splits an image from its change (scanned on
  // the WAL files).
  it('no change after a redo point without an image at or after it, with checkpoints in a loop in another process', async () => {
    await start();
    const f = await pm.files.open('t.dat', { create: true });
    const [a, ck] = [await fork(), await fork(path.join(__dirname, '..', 'fixtures', 'wal-worker.cjs'))];
    let stop = false;
    let checkpoints = 0;
    const loop = (async () => {
      while (!stop) {
        await ck.call('checkpoint');
        checkpoints++;
      }
    })();
    const thread = new ThreadWorker(FIXTURE, {
      workerData: { token: pm.threadToken(), fileId: f.id, blocks: [8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19], n: 150 },
    });
    const threadDone = new Promise<any>((resolve, reject) => {
      thread.once('message', (m) => (m.error ? reject(new Error(m.error)) : resolve(m.done)));
      thread.once('error', reject);
    });
    const [pr, tr] = await Promise.all([
      a.call('run', { fileId: f.id, blocks: [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19], n: 150 }),
      threadDone,
    ]);
    stop = true;
    await loop;
    expect(pr.changes + tr.changes).toBe(900);
    expect(checkpoints).toBeGreaterThanOrEqual(2);
    const rs = records();
    expect(rs.filter((r) => r.kind === KIND_CELL)).toHaveLength(900);
    expect(rs.filter((r) => r.kind === KIND_CHECKPOINT).length).toBe(checkpoints);
    expect(imageRuleViolations(rs)).toEqual([]);
    // Images were needed after most checkpoints: the checkpoints really interleaved.
    expect(images(rs).length).toBeGreaterThan(20);
  });

  // Positive control for the check above: the same workload appending without `{ page }`
  // (no images) must be reported.
  it('positive control: changes appended without the page are reported by the WAL check', async () => {
    await start();
    const f = await pm.files.open('t.dat', { create: true });
    const [a, ck] = [await fork(), await fork(path.join(__dirname, '..', 'fixtures', 'wal-worker.cjs'))];
    await a.call('run', { fileId: f.id, blocks: [0, 1, 2, 3], n: 20, images: false });
    await ck.call('checkpoint');
    await a.call('run', { fileId: f.id, blocks: [0, 1, 2, 3], n: 20, images: false });
    const v = imageRuleViolations(records());
    expect(v.length).toBeGreaterThanOrEqual(4);
    expect(v[0]).toMatch(/has no image/);
  });
});

describe('full-page images: kill points', () => {
  async function diedAt(w: Worker, name: string, call: Promise<unknown>): Promise<void> {
    await expect(call).rejects.toThrow(/exited/);
    expect(await w.exited).toMatchObject({ signal: 'SIGKILL' });
    expect(pm._native().debugKillPointFired(name as any)).toBe(1);
    await waitFor(() => exits.some((e) => e.pid === w.pid), 5000, 'the exit event and slot cleanup');
  }

  // Behaviour: an appender SIGKILLed in the middle of a page append (image copied into
  // the WAL buffer, change record not) wedges nobody: its slot cleanup pads the whole
  // reservation, the others' appends become durable past it, checkpoints go on, and no
  // image without its change record ever reaches the WAL.
  it("an appender dies at 'wal-page-image-copied': the reservation is padded, nobody is wedged", async () => {
    // 'release': the dead holder's page is given back, not fenced, so a checkpoint can
    // write it (the test is about the WAL, not the torn-page fence).
    await start({ pool: { onHolderDeath: 'release' } });
    const f = await pm.files.open('t.dat', { create: true });
    await change(f, 5, 1);
    const a = await fork();
    expect(pm._native().debugKillPoint('wal-page-image-copied', { pid: a.pid })).toBe(true);
    const pads = pm.wal.stats().paddings;
    await diedAt(a, 'wal-page-image-copied', a.call('change', { fileId: f.id, block: 0, value: 9 }));
    expect(pm.wal.stats().paddings).toBe(pads + 1);
    const lsn = await change(f, 5, 2);
    await pm.wal.flush(lsn);
    expect(pm.wal.flushedLsn()).toBeGreaterThanOrEqual(lsn);
    await pm.wal.checkpoint();
    const rs = records();
    expect(rs.some((r) => r.kind === KIND_CELL && cellBlock(r) === 0)).toBe(false);
    expect(images(rs).some((r) => decodePageImage(r.payload)!.block === 0)).toBe(false);
    expect(imageRuleViolations(rs)).toEqual([]);
    await pm.stop({ checkpoint: false });
    pm = await rm.Postmaster.start({ dataDir: dataDir(), backend, bufferPool: { pages: 32, pageSize: PS }, wal: { segmentSize: SEG, redo: { [KIND_CELL]: () => {} } } } as any);
    expect(pm.wal.recovery!.images.skipped).toBe(0);
  });

  // Behaviour: a checkpointer SIGKILLed while choosing its redo point (epoch odd, nothing
  // published) wedges nobody: a forked appender keeps going, the slot cleanup closes the
  // epoch, the unpublished choice changes nothing, the next checkpoint succeeds.
  it("a checkpointer dies at 'checkpoint-redo-choosing': appends go on, cleanup closes the epoch", async () => {
    await start();
    const f = await pm.files.open('t.dat', { create: true });
    await change(f, 0, 1);
    await pm.wal.checkpoint();
    const redo = pm.wal.redoLsn;
    const [ck, a] = [await fork(path.join(__dirname, '..', 'fixtures', 'wal-worker.cjs')), await fork()];
    const appends = a.call('run', { fileId: f.id, blocks: [0, 1, 2, 3], n: 60 });
    expect(pm._native().debugKillPoint('checkpoint-redo-choosing', { pid: ck.pid })).toBe(true);
    await diedAt(ck, 'checkpoint-redo-choosing', ck.call('checkpoint'));
    expect((await appends).changes).toBe(180);
    const st = addon.walState(pm._native());
    expect(st.redoEpoch % 2).toBe(0);
    expect(pm.wal.redoLsn).toBe(redo);
    await pm.wal.checkpoint();
    expect(pm.wal.redoLsn).toBeGreaterThan(redo);
    await change(f, 0, 2);
    await pm.wal.flush();
    expect(imageRuleViolations(records())).toEqual([]);
  });

  // Behaviour: a checkpointer SIGKILLed after choosing and publishing its redo point
  // wedges nobody: appenders judge pages against the published point (an image for a
  // page changed before it), the role is released by cleanup and the next checkpoint
  // succeeds; recovery starts from the last completed checkpoint and finds every change.
  it("a checkpointer dies at 'checkpoint-redo-chosen': images follow its redo point, the next checkpoint succeeds", async () => {
    await start();
    const f = await pm.files.open('t.dat', { create: true });
    await change(f, 0, 1);
    await change(f, 1, 1);
    await pm.wal.checkpoint();
    const completedRedo = pm.wal.redoLsn;
    await change(f, 0, 2);
    await change(f, 1, 2);     // both pages now past completedRedo
    const ck = await fork(path.join(__dirname, '..', 'fixtures', 'wal-worker.cjs'));
    expect(pm._native().debugKillPoint('checkpoint-redo-chosen', { pid: ck.pid })).toBe(true);
    const at = pm.wal.insertLsn();
    await diedAt(ck, 'checkpoint-redo-chosen', ck.call('checkpoint'));
    expect(pm.wal.redoLsn).toBe(at);
    const s0 = pm.wal.stats().pageImages;
    await change(f, 0, 3);     // below the published (never completed) redo point: image
    expect(pm.wal.stats().pageImages).toBe(s0 + 1);
    const lsn = await change(f, 1, 3);
    await pm.wal.flush(lsn);
    await pm.stop({ checkpoint: false });
    const seen = new Map<number, number>();
    pm = await rm.Postmaster.start({
      dataDir: dataDir(), backend, bufferPool: { pages: 32, pageSize: PS },
      wal: { segmentSize: SEG, redo: { [KIND_CELL]: (r: WalRecord) => { seen.set(cellBlock(r), r.payload.readUInt32LE(4)); } } },
    } as any);
    expect(pm.wal.recovery!.fromLsn).toBe(completedRedo);
    expect([...seen.entries()].sort()).toEqual([[0, 3], [1, 3]]);
    await pm.wal.checkpoint();
  });
});
