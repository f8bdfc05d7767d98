// Recovery and record kinds: a record whose kind has no redo handler stops the start with
// an error naming the kind and the LSN (PostgreSQL refuses an unknown resource manager),
// before anything is replayed and without changing the WAL; `wal.onUnknownKind: 'skip'`
// skips such records on purpose. The WAL's own kinds (checkpoint, full-page image) need
// no handler.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { addon, removeDir, rm, startWithWal, tempDir } from '../helpers';


let dir: string;
let dataDir: string;
let pm: import('../../core/index').Postmaster | null = null;

beforeEach(() => {
  dir = tempDir('rm-kinds-');
  dataDir = path.join(dir, 'data');
});
afterEach(async () => {
  if (pm) await pm.stop({ checkpoint: false });
  pm = null;
  removeDir(dir);
});

type Redo = Record<number, (r: { kind: number; payload: Buffer }) => void>;
const start = (wal: Record<string, unknown> = {}) => startWithWal(dataDir, wal, { arenaSize: 2 << 20 });

/** The WAL files' bytes, to show a failed start changed nothing. */
function walImage(): string {
  const d = path.join(dataDir, 'pg_wal');
  return readdirSync(d).sort().map((f) => `${f}:${readFileSync(path.join(d, f)).toString('base64')}`).join('|') + readFileSync(path.join(dataDir, 'pg_control')).toString('base64');
}

/** Appends 1,1,1,7,1,1 (kind 7 carries 'seven'); returns the start LSN of the kind-7 record. */
async function appendMixed(db: import('../../core/index').Postmaster): Promise<bigint> {
  let at = 0n;
  for (const [i, kind] of [1, 1, 1, 7, 1, 1].entries()) {
    if (kind === 7) at = db.wal.insertLsn();  // one appender: the next record starts here
    await db.wal.append(kind, Buffer.from(kind === 7 ? 'seven' : `one ${i}`));
  }
  await db.wal.flush();
  return at;
}

describe('recovery: record kinds without a redo handler', () => {
  it('stop the start with ERR_RINGMASTER_WAL_UNKNOWN_KIND naming the kind and the LSN; nothing is replayed and the WAL is unchanged', async () => {
    pm = await start();
    const at = await appendMixed(pm);
    await pm.stop({ checkpoint: false });
    pm = null;
    const image = walImage();
    const calls: string[] = [];
    const err = await start({ redo: { 1: (r) => { calls.push(r.payload.toString()); } } as Redo }).then(() => null, (e) => e);
    expect(err).toMatchObject({ name: 'RingmasterError', code: 'ERR_RINGMASTER_WAL_UNKNOWN_KIND', kind: 7, lsn: at });
    expect(err.message).toContain('kind 7');
    expect(err.message).toContain(rm.formatLsn(at));
    expect(err.message).toContain("onUnknownKind: 'skip'");
    expect(calls).toEqual([]);           // checked before the first handler runs
    expect(walImage()).toBe(image);      // the tail was not cut, nothing was rewritten
    // With a handler for every kind, the same directory recovers everything.
    const got: string[] = [];
    pm = await start({ redo: { 1: (r) => { got.push(r.payload.toString()); }, 7: (r) => { got.push(r.payload.toString()); } } as Redo });
    expect(got).toEqual(['one 0', 'one 1', 'one 2', 'seven', 'one 4', 'one 5']);
    expect(pm.wal.recovery).toMatchObject({ records: 6, skipped: 0 });
  });

  it("wal.onUnknownKind: 'skip' skips them and counts them in recovery.skipped", async () => {
    pm = await start();
    await appendMixed(pm);
    await pm.stop({ checkpoint: false });
    const got: string[] = [];
    pm = await start({ onUnknownKind: 'skip', redo: { 1: (r) => { got.push(r.payload.toString()); } } as Redo });
    expect(got).toEqual(['one 0', 'one 1', 'one 2', 'one 4', 'one 5']);
    expect(pm.wal.recovery).toMatchObject({ records: 6, skipped: 1 });
  });

  it('a start with no redo handlers at all fails on the first record too', async () => {
    pm = await start();
    await pm.wal.flush(await pm.wal.append(3, Buffer.from('x')));
    await pm.stop({ checkpoint: false });
    pm = null;
    await expect(start()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_UNKNOWN_KIND', kind: 3, message: expect.stringContaining('wal.redo has none') });
  });

  it('a reserved kind this version does not write is named as such, and skip skips it', async () => {
    pm = await start();
    addon.walAppend(pm._native(), 0xff05, Buffer.from('from a newer version?'));
    await pm.wal.flush();
    await pm.stop({ checkpoint: false });
    pm = null;
    await expect(start()).rejects.toMatchObject({ code: 'ERR_RINGMASTER_WAL_UNKNOWN_KIND', kind: 0xff05, message: expect.stringContaining('reserved kind 0xff05') });
    pm = await start({ onUnknownKind: 'skip' });
    expect(pm.wal.recovery).toMatchObject({ records: 1, skipped: 1 });
  });

  it("the WAL's own kinds need no handler: a checkpoint record and a full-page image recover without one", async () => {
    pm = await start();
    await pm.wal.checkpoint();
    const page = Buffer.alloc(4096, 0x5a);
    await pm.wal.flush(await pm.wal.appendPageImage('img.dat', 2, page));
    await pm.stop({ checkpoint: false });
    pm = await start();
    expect(pm.wal.recovery).toMatchObject({ records: 2, skipped: 0 });
    expect(readFileSync(path.join(dataDir, 'img.dat')).subarray(2 * 4096).equals(page)).toBe(true);
  });

  it('onUnknownKind takes only error or skip', async () => {
    await expect(start({ onUnknownKind: 'ignore' })).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  });
});
