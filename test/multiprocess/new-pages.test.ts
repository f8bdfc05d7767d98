// Reading a page that does not exist yet: `buffers.read(file, block, { mode: 'extend' })`
// reads the block, or gives a zeroed page when the block lies wholly past the end of the
// file; its writeback extends the file. A file that ends *inside* the block is not a new
// page (those bytes exist: a torn extension or a truncated file) and stays an error, and
// so does a plain read past the end. Several processes extending the same block get the
// same buffer, and nobody's change is zeroed by another's extension.
import { afterEach, describe, expect, it } from 'vitest';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker, forkAttached, pageImage, startPm, teardown, tempDir } from '../helpers';

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'bufferpool-worker.cjs');
const PS = 4096;

let dir: string | null = null;
let pm: import('../../core/index').Postmaster | null = null;
const workers: Worker[] = [];

afterEach(async () => {
  await teardown({ workers, pm, dir });
  pm = null;
  dir = null;
});

async function setup(pages: number) {
  dir = tempDir('rm-newpages-');
  pm = await startPm(dir, { bufferPool: { pages, pageSize: PS } });
  return pm;
}

async function worker(): Promise<Worker> {
  return forkAttached(pm!, FIXTURE, { into: workers });
}

function disk(name: string): Buffer {
  return readFileSync(path.join(pm!.dataDir, name));
}

describe("buffer pool: mode 'extend' (read it, or a new zeroed page)", () => {
  it('a block past the end of a new file is a zeroed, valid, clean page; its writeback extends the file; the holes before it read as zero pages', async () => {
    await setup(16);
    const f = await pm!.files.open('new.dat', { create: true });
    const reads = pm!.buffers.stats().global.reads;
    const b = await pm!.buffers.read(f, 7, { mode: 'extend' });
    expect(b.page.every((x) => x === 0)).toBe(true);
    expect(b.lsn).toBe(0n);
    expect(pm!.buffers.stats().global.reads).toBe(reads + 1);  // it did look at the file
    expect(pm!.buffers.stats().dirty).toBe(0);                // clean: nothing to write yet
    expect(statSync(path.join(pm!.dataDir, 'new.dat')).size).toBe(0);
    await b.lockExclusive();
    b.page.set([1, 2, 3], 100);
    b.markDirty(5n);
    b.release();
    expect(await pm!.buffers.flushAll()).toBe(1);
    const bytes = disk('new.dat');
    expect(bytes.length).toBe(8 * PS);
    const page = bytes.subarray(7 * PS);
    expect([...page.subarray(100, 103)]).toEqual([1, 2, 3]);
    expect(page.readBigUInt64LE(0)).toBe(5n);           // the page LSN
    expect(page.readUInt32LE(8)).not.toBe(0);            // the checksum the writeback stored
    // Blocks 0..6 are a hole: they exist now and read as zero pages (an all-zero page is valid).
    for (let blk = 0; blk < 7; blk++) {
      const h = await pm!.buffers.read(f, blk);
      expect(h.page.every((x) => x === 0)).toBe(true);
      h.release();
    }
    // Read back through the pool after eviction-free re-read: the same bytes.
    const again = await pm!.buffers.read(f, 7);
    expect([...again.page.subarray(100, 103)]).toEqual([1, 2, 3]);
    again.release();
    expect(pm!.buffers.stats().pinned).toBe(0);
  });

  it('an existing block is read as it is (extend never zeroes data)', async () => {
    await setup(16);
    const f = await pm!.files.open('d.dat', { create: true });
    writeFileSync(path.join(pm!.dataDir, 'd.dat'), Buffer.concat([pageImage(1), pageImage(2), pageImage(3)]));
    const b = await pm!.buffers.read(f, 2, { mode: 'extend' });
    expect(b.page[100]).toBe(3);
    b.release();
  });

  it('a plain read past the end fails with ERR_RINGMASTER_PAST_EOF naming the file, leaks no pin, and the same block can then be extended', async () => {
    await setup(16);
    const f = await pm!.files.open('new.dat', { create: true });
    const err = await pm!.buffers.read(f, 3).then(() => null, (e) => e);
    expect(err).toMatchObject({ name: 'RingmasterError', code: 'ERR_RINGMASTER_PAST_EOF' });
    expect(err.message).toContain("'new.dat'");
    expect(err.message).toContain("mode: 'extend'");
    expect(pm!.buffers.stats().pinned).toBe(0);
    const b = await pm!.buffers.read(f, 3, { mode: 'extend' });
    expect(b.page.every((x) => x === 0)).toBe(true);
    b.release();
    expect(pm!.buffers.stats().pinned).toBe(0);
  });

  it('async flows of one environment reading the same block past the end at once: plain reads all fail, extending ones all get the page (no livelock)', async () => {
    await setup(16);
    const f = await pm!.files.open('new.dat', { create: true });
    // Reads complete inside the submitting call here: each flow's retry used to meet the
    // other's newer error, claim again, and the JS thread never yielded.
    const plain = await Promise.all([0, 1, 2].map(() => pm!.buffers.read(f, 5).then(() => null, (e) => e.code)));
    expect(plain).toEqual(['ERR_RINGMASTER_PAST_EOF', 'ERR_RINGMASTER_PAST_EOF', 'ERR_RINGMASTER_PAST_EOF']);
    const got = await Promise.all([0, 1, 2].map(() => pm!.buffers.read(f, 6, { mode: 'extend' })));
    expect(new Set(got.map((b) => b.bufferId)).size).toBe(1);
    for (const b of got) {
      expect(b.page.every((x) => x === 0)).toBe(true);
      b.release();
    }
    expect(pm!.buffers.stats().pinned).toBe(0);
  });

  it('a file that ends inside the block is ERR_RINGMASTER_SHORT_READ in every mode but zero: the bytes there are not replaced', async () => {
    await setup(16);
    const f = await pm!.files.open('torn.dat', { create: true });
    const torn = Buffer.concat([pageImage(1), pageImage(9).subarray(0, PS / 2)]);
    writeFileSync(path.join(pm!.dataDir, 'torn.dat'), torn);
    for (const mode of ['normal', 'extend'] as const) {
      const err = await pm!.buffers.read(f, 1, { mode }).then(() => null, (e) => e);
      expect(err, mode).toMatchObject({ code: 'ERR_RINGMASTER_SHORT_READ' });
      expect(err.message).toContain("'torn.dat'");
    }
    expect(pm!.buffers.stats().pinned).toBe(0);
    expect(await pm!.buffers.flushAll()).toBe(0);
    expect(disk('torn.dat').equals(torn)).toBe(true);
    const ok = await pm!.buffers.read(f, 0, { mode: 'extend' });
    expect(ok.page[100]).toBe(1);
    ok.release();
  });

  it('three processes extending the same new blocks at once get the same buffer per block, and every change survives', async () => {
    await setup(64);
    const f = await pm!.files.open('race.dat', { create: true });
    const [a, b] = [await worker(), await worker()];
    const blocks = Array.from({ length: 40 }, (_, i) => i);
    const mine = async () => {
      const ids: number[] = [];
      for (const block of blocks) {
        const p = await pm!.buffers.read(f, block, { mode: 'extend' });
        await p.lockExclusive();
        p.page[300] = 0x33;
        p.markDirty(1n);
        ids.push(p.bufferId);
        p.release();
      }
      return ids;
    };
    const [ia, ib, ip] = await Promise.all([
      a.call('extendWrite', { file: f.id, blocks, at: 100, value: 0x11 }),
      b.call('extendWrite', { file: f.id, blocks, at: 200, value: 0x22 }),
      mine(),
    ]);
    expect(ia).toEqual(ip);
    expect(ib).toEqual(ip);
    expect(new Set(ip).size).toBe(blocks.length);
    expect(pm!.buffers.stats().pinned).toBe(0);
    expect(await pm!.buffers.flushAll()).toBe(blocks.length);
    const bytes = disk('race.dat');
    expect(bytes.length).toBe(blocks.length * PS);
    for (const block of blocks) {
      const p = bytes.subarray(block * PS, (block + 1) * PS);
      expect([p[100], p[200], p[300]], `block ${block}`).toEqual([0x11, 0x22, 0x33]);
    }
  });

  it('a plain reader racing an extending one gets either ERR_RINGMASTER_PAST_EOF or the new page; the extending one always gets the page', async () => {
    await setup(64);
    const f = await pm!.files.open('mixed.dat', { create: true });
    const a = await worker();
    for (let block = 0; block < 20; block++) {
      const [plain, ext] = await Promise.all([
        a.call('readCatch', { file: f.id, block }),
        pm!.buffers.read(f, block, { mode: 'extend' }).then((p) => { const z = p.page.every((x) => x === 0); p.release(); return z; }),
      ]);
      expect(ext).toBe(true);
      expect([{ ok: true }, { ok: false, code: 'ERR_RINGMASTER_PAST_EOF' }]).toContainEqual(plain);
    }
    expect(pm!.buffers.stats().pinned).toBe(0);
  });
});
