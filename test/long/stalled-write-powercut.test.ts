// A checkpoint next to a page write claimed by a stalled process, then a power cut with
// real loss of unsynced data (LazyFS): the acknowledged page update must survive, on disk
// or in the replayed WAL. Host: fixtures/stalled-writer-host.cjs (a postmaster in its own
// process group; the worker that claimed the write is SIGSTOPped before submitting it).
// Skipped where FUSE is unavailable (the non-root leg), like test/long/powercut.test.ts.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { backend, forkCrashHost, powerCut, rm } from '../helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const lazyfs = require('../../tools/lazyfs/lazyfs.cjs');
const HOST = path.join(__dirname, '..', 'fixtures', 'stalled-writer-host.cjs');
const PS = 4096;

let skipReason: string | null = null;
let bin: string | null = null;
const mounts: { unmount(): Promise<void> }[] = [];
let host: ChildProcess | null = null;

beforeAll(async () => {
  skipReason = lazyfs.fuseUnavailable();
  if (!skipReason) {
    const built = await lazyfs.ensureBuiltAsync();
    if (built.skipped) skipReason = built.skipped;
    else bin = built.bin;
  }
  if (skipReason) console.warn(`stalled-write power cut tests skipped: ${skipReason}`);
}, 30 * 60 * 1000);
afterEach(async () => {
  if (host) await powerCut(host);
  host = null;
});
afterAll(async () => {
  for (const m of mounts.splice(0)) await m.unmount().catch(() => {});
});

/** The next message from the host that has `key` (an { error } rejects). */
function next(h: ChildProcess, key: string, timeoutMs = 60000): Promise<any> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${key}' from the host within ${timeoutMs} ms`)), timeoutMs);
    const on = (m: any) => {
      if (m?.error || (m && key in m)) {
        clearTimeout(timer);
        h.off('message', on);
        if (m.error) reject(new Error(m.error));
        else resolve(m);
      }
    };
    h.on('message', on);
  });
}

/** Power cut (the host's whole process group, then LazyFS drops what was not synced), recovery: is the acknowledged update on disk or replayed? */
async function cutAndRecover(h: ChildProcess, m: any, dataDir: string) {
  await powerCut(h);
  host = null;
  await m.clearCache();
  const replayed: string[] = [];
  const pm = await rm.Postmaster.start({
    dataDir, backend,
    wal: { segmentSize: 64 << 10, bufferSize: 64 << 10, redo: { 50: (r: any) => { replayed.push(r.payload.toString()); } } },
  } as any);
  await pm.stop();
  const onDisk = fs.readFileSync(path.join(dataDir, 'd'))[PS + 100];
  const inReplay = replayed.includes('1:100:77');
  return { onDisk, inReplay, lost: onDisk !== 77 && !inReplay };
}

/** A fresh LazyFS mount and the stalled-writer host on a data directory in it. */
async function stalledHostOnLazyFs() {
  const m = await lazyfs.mount({ bin });
  mounts.push(m);
  const dataDir = path.join(m.mnt, 'data');
  const h = forkCrashHost(HOST, [dataDir]);
  host = h;
  return { m, dataDir, h };
}

describe('power cut after a checkpoint next to a stalled page write (LazyFS)', () => {
  // The checkpoint while the write is stalled must not cover the page: after the cut the update is still in the replayed WAL.
  it('a checkpoint while a stopped worker holds the page write claim, then a power cut: the acknowledged update is recovered (replayed)', async (ctx) => {
    if (skipReason) ctx.skip(`no FUSE here: ${skipReason}`);
    const { m, dataDir, h } = await stalledHostOnLazyFs();
    const acked = next(h, 'ack');
    const first = next(h, 'checkpoint');
    await acked;
    const ck = await first;
    const r = await cutAndRecover(h, m, dataDir);
    console.log(`stalled write, checkpoint ${ck.checkpoint}, power cut: ${JSON.stringify(r)}`);
    expect(r.lost).toBe(false);
    expect(ck.checkpoint).toBe('ERR_RINGMASTER_WRITEBACK_TIMEOUT');
    expect(r.inReplay).toBe(true);  // the redo point stayed before the update
  }, 120000);

  // Once the writer goes on, the next checkpoint covers the page: after the cut it is on disk and needs no replay.
  it('after SIGCONT the next checkpoint succeeds, then a power cut: the page is on disk', async (ctx) => {
    if (skipReason) ctx.skip(`no FUSE here: ${skipReason}`);
    const { m, dataDir, h } = await stalledHostOnLazyFs();
    const first = await next(h, 'checkpoint');
    expect(first.checkpoint).toBe('ERR_RINGMASTER_WRITEBACK_TIMEOUT');
    const second = next(h, 'checkpoint');
    h.send({ cont: true });
    expect((await second).checkpoint).toBe('ok');
    const r = await cutAndRecover(h, m, dataDir);
    console.log(`stalled write resumed, checkpoint ok, power cut: ${JSON.stringify(r)}`);
    expect(r).toEqual({ onDisk: 77, inReplay: false, lost: false });
  }, 120000);
});
