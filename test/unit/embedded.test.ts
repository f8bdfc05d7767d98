// Embedded mode: the postmaster runs in this process with no children.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { backend, removeDir, rm, tempDir } from '../helpers';

let dir: string;
let db: import('../../core/index').Postmaster;

beforeEach(async () => {
  dir = tempDir();
  db = await rm.open({ dataDir: path.join(dir, 'data'), backend });
});
afterEach(async () => {
  await db.close();
  removeDir(dir);
});

describe('embedded', () => {
  it('reports its backend and features once, in pm.features', () => {
    expect(['io_uring', 'threads']).toContain(db.features.backend);
    if (backend === 'threads') expect(db.features.backend).toBe('threads');
    expect(typeof db.features.backendReason).toBe('string');
    expect(db.features.kernel).toMatch(/^Linux /);
    if (db.features.backend === 'io_uring') expect(db.features.fixedFiles).toBe(true);
  });

  it('write then read round-trips through a private buffer', async () => {
    const f = await db.files.open('a.dat', { create: true });
    expect(await db.write(f, 4096, Buffer.from('hello ringmaster'))).toBe(16);
    const out = new Uint8Array(16);
    expect(await db.read(f, 4096, out)).toBe(16);
    expect(Buffer.from(out).toString()).toBe('hello ringmaster');
    expect(readFileSync(path.join(db.dataDir, 'a.dat')).subarray(4096).toString()).toBe('hello ringmaster');
  });

  it('write then read round-trips through arena memory (fixed buffers when registered)', async () => {
    const f = await db.files.open('b.dat', { create: true });
    const src = db.allocate(8192);
    for (let i = 0; i < 8192; i++) src.bytes[i] = i & 0xff;
    expect(await db.write(f, 0, src)).toBe(8192);
    const dst = db.allocate(8192);
    expect(await db.read(f, 0, dst)).toBe(8192);
    expect(Buffer.compare(Buffer.from(src.bytes), Buffer.from(dst.bytes))).toBe(0);
  });

  it('O_DIRECT reads and writes work with arena slices', async () => {
    const f = await db.files.open('direct.dat', { create: true, direct: true });
    const s = db.allocate(4096);
    s.bytes.fill(7);
    expect(await db.write(f, 8192, s)).toBe(4096);
    const t = db.allocate(4096);
    expect(await db.read(f, 8192, t)).toBe(4096);
    expect(t.bytes.every((b) => b === 7)).toBe(true);
  });

  it('a short read at end of file resolves with the bytes read', async () => {
    const f = await db.files.open('short.dat', { create: true });
    await db.write(f, 0, Buffer.from('abc'));
    expect(await db.read(f, 0, new Uint8Array(100))).toBe(3);
    expect(await db.read(f, 1000, new Uint8Array(100))).toBe(0);
  });

  it('fsync and fdatasync resolve', async () => {
    const f = await db.files.open('s.dat', { create: true });
    await db.write(f, 0, Buffer.from('x'));
    await expect(db.fsync(f)).resolves.toBeUndefined();
    await expect(db.fdatasync(f)).resolves.toBeUndefined();
  });

  it('offsets beyond 4 GiB and bigint offsets work', async () => {
    const f = await db.files.open('big.dat', { create: true });
    const off = 5n * 1024n * 1024n * 1024n + 3n;
    await db.write(f, off, Buffer.from('far'));
    const out = new Uint8Array(3);
    await db.read(f, Number(off), out);
    expect(Buffer.from(out).toString()).toBe('far');
  });

  it('many concurrent IOs, more than there are IO handles, all complete (back-pressure)', async () => {
    await db.close();
    db = await rm.open({ dataDir: path.join(dir, 'data'), backend, ringEntries: 8 });
    const f = await db.files.open('bp.dat', { create: true });
    const writes = [];
    for (let i = 0; i < 200; i++) writes.push(db.write(f, i * 8, Buffer.from(String(i).padStart(8, '0'))));
    expect((await Promise.all(writes)).every((n) => n === 8)).toBe(true);
    const out = new Uint8Array(200 * 8);
    await db.read(f, 0, out);
    for (let i = 0; i < 200; i++) expect(Buffer.from(out.subarray(i * 8, i * 8 + 8)).toString()).toBe(String(i).padStart(8, '0'));
    expect(db.handlesInUse()).toBe(0);
  });

  it('the file id means the same file through files.get', async () => {
    const f = await db.files.open('id.dat', { create: true });
    const g = db.files.get(f.id);
    expect(g.path).toBe('id.dat');
    await db.write(g, 0, Buffer.from('same'));
    const out = new Uint8Array(4);
    await db.read(f, 0, out);
    expect(Buffer.from(out).toString()).toBe('same');
  });

  it('data directory is created 0700 and files 0600', async () => {
    const { statSync } = await import('node:fs');
    await db.files.open('perm.dat', { create: true });
    expect(statSync(db.dataDir).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(db.dataDir, 'perm.dat')).mode & 0o777).toBe(0o600);
  });

  it('a completion word is set by whoever completes the IO', async () => {
    const f = await db.files.open('cw.dat', { create: true });
    const w = db.completionWord();
    expect(db.completionWordResult(w)).toBeUndefined();
    await db.write(f, 0, Buffer.from('12345'), { completionWord: w });
    expect(db.completionWordResult(w)).toBe(5);
  });

  it('stats count submissions and completions', async () => {
    const f = await db.files.open('st.dat', { create: true });
    await db.write(f, 0, Buffer.from('x'));
    const s = db.stats();
    const me = s.processes.find((p: any) => p.slot === db.slot);
    expect(me.submitted).toBeGreaterThanOrEqual(1);
    expect(me.completed).toBeGreaterThanOrEqual(1);
    expect(s.corruptReports).toBe(0);
  });
});

describe('chains', () => {
  it('write(WAL) -> fdatasync -> read sees the write: a linked chain runs in order', async () => {
    const wal = await db.files.open('wal', { create: true });
    const data = await db.files.open('data', { create: true });
    const seen = new Uint8Array(8);
    const r = await db.batch()
      .write(wal, 0, Buffer.from('walrec01'), { link: true })
      .fdatasync(wal, { link: true })
      .write(data, 0, Buffer.from('pagedata'), { link: true })
      .read(data, 0, seen)
      .submit();
    expect(r.map((x) => x.op)).toEqual(['write', 'fdatasync', 'write', 'read']);
    expect(r.every((x) => x.ok)).toBe(true);
    expect(Buffer.from(seen).toString()).toBe('pagedata');
  });

  it('a failing first op cancels the rest of a soft-linked chain with IoCancelledError', async () => {
    await db.files.open('ro', { create: true });
    const ro = await db.files.open('ro', { readOnly: true });
    const data = await db.files.open('d2', { create: true });
    const r = await db.batch()
      .write(ro, 0, Buffer.from('x'), { link: true })
      .fdatasync(ro, { link: true })
      .write(data, 0, Buffer.from('never'))
      .submit();
    expect(r[0].ok).toBe(false);
    expect((r[0].error as any).code).toBe('EBADF');
    for (const x of r.slice(1)) {
      expect(x.ok).toBe(false);
      expect(x.error).toBeInstanceOf(rm.IoCancelledError);
      expect((x.error as any).code).toBe('ECANCELED');
    }
    expect(readFileSync(path.join(db.dataDir, 'd2')).length).toBe(0);
  });

  it('a short read breaks a soft link', async () => {
    const f = await db.files.open('sr', { create: true });
    await db.write(f, 0, Buffer.from('abc'));
    const r = await db.batch().read(f, 0, new Uint8Array(10), { link: true }).write(f, 100, Buffer.from('z')).submit();
    expect(r[0].result).toBe(3);
    expect((r[1].error as any).code).toBe('ECANCELED');
  });

  it('a hardlink continues after a failure', async () => {
    await db.files.open('ro2', { create: true });
    const ro = await db.files.open('ro2', { readOnly: true });
    const data = await db.files.open('d3', { create: true });
    const r = await db.batch().write(ro, 0, Buffer.from('x'), { hardlink: true }).write(data, 0, Buffer.from('ran')).submit();
    expect(r[0].ok).toBe(false);
    expect(r[1].ok).toBe(true);
    expect(readFileSync(path.join(db.dataDir, 'd3')).toString()).toBe('ran');
  });

  it('link()/hardlink()/drain() modify the last op', async () => {
    const f = await db.files.open('lk', { create: true });
    const r = await db.batch().write(f, 0, Buffer.from('a')).link().fsync(f).hardlink().nop().drain().submit();
    expect(r.map((x) => x.ok)).toEqual([true, true, true]);
  });

  it('unlinked ops of one batch all complete, each with its own result', async () => {
    const f = await db.files.open('many', { create: true });
    const b = db.batch();
    for (let i = 0; i < 32; i++) b.write(f, i * 4, Buffer.from(String(i).padStart(4, '0')));
    const r = await b.submit();
    expect(r).toHaveLength(32);
    expect(r.every((x) => x.ok && x.result === 4)).toBe(true);
  });
});
