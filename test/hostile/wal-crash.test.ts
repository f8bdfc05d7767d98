// kill -9 of a whole postmaster process group (postmaster + WAL workers appending and
// committing concurrently) at a random moment, then recovery: every record a client saw
// acknowledged as durable is present and readable. Repeated on the same data directory,
// with each walSync (write -> fdatasync chains, and single O_DSYNC writes).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { backend, forkCrashHost, powerCut, removeDir, rm, tempDir, untilAcks } from '../helpers';

const HOST = path.join(__dirname, '..', 'fixtures', 'wal-host.cjs');

let dir: string;
let host: ChildProcess | null = null;
beforeEach(() => {
  dir = tempDir('rm-walcrash-');
});
afterEach(async () => {
  if (host) await powerCut(host);
  removeDir(dir);
});

async function crashRound(dataDir: string, walSync: string, acked: Set<string>, minAcks: number): Promise<void> {
  host = forkCrashHost(HOST, [dataDir, '3', walSync]);
  await untilAcks(host, minAcks, (ack) => acked.add(ack));
  await powerCut(host);  // the whole group (postmaster and workers) dies at once, mid-commit
  host = null;
}

describe.each(['fdatasync', 'dsync'])('wal: crash recovery, walSync %s', (walSync) => {
  it('kill -9 of the whole process group at a random moment, 3 times: every acknowledged record is recovered', async () => {
    const dataDir = path.join(dir, 'data');
    const acked = new Set<string>();
    for (let round = 0; round < 3; round++) {
      await crashRound(dataDir, walSync, acked, 30 + Math.floor(Math.random() * 150));
      const found = new Set<string>();
      const pm = await rm.Postmaster.start({
        dataDir, backend,
        // Kind 2: this test's own 'after crash' records of earlier rounds (nothing to redo).
        wal: { segmentSize: 64 << 10, bufferSize: 64 << 10, walSync, redo: { 1: (r: any) => { found.add(r.payload.toString().replace(/\.+$/, '')); }, 2: () => {} } },
      } as any);
      try {
        expect(pm.wal.stats().walSync).toBe(walSync);
        const missing = [...acked].filter((id) => !found.has(id));
        expect(missing).toEqual([]);
        expect(pm.wal.recovery!.records).toBeGreaterThanOrEqual(acked.size);
        // The recovered WAL takes new commits at once.
        await pm.wal.flush(await pm.wal.append(2, Buffer.from(`after crash ${round}`)));
      } finally {
        await pm.stop();
      }
    }
  });
});
