// Property-based fuzzing of the WAL record scanner (recovery's decoder): whatever bytes
// of the segment files are flipped or wherever a file is cut, the scan never throws and
// returns a prefix of the true record sequence (never a record that was not written,
// never a corrupted payload, never records past a damaged one).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { cpSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { backend, removeDir, rm, tempDir } from '../helpers';
// eslint-disable-next-line @typescript-eslint/no-var-requires
const { scanWal } = require('../../dist/wal/format.js');

const SEG = 64 << 10;
let dir: string;
let baseline: { lsn: bigint; kind: number; payload: Buffer }[];
let segFiles: string[];

beforeAll(async () => {
  dir = tempDir('rm-walfuzz-');
  const pm = await rm.Postmaster.start({ dataDir: path.join(dir, 'base'), backend, arenaSize: 2 << 20, wal: { segmentSize: SEG, bufferSize: SEG } } as any);
  let lsn = 0n;
  for (let i = 0; i < 1500; i++) {
    const payload = Buffer.alloc(4 + ((i * 37) % 200), String.fromCharCode(97 + (i % 26)));
    payload.writeUInt32LE(i, 0);  // distinct payloads: a misplaced record cannot match
    lsn = await pm.wal.append(1 + (i % 7), payload);
  }
  await pm.wal.flush(lsn);
  await pm.stop();
  const walDir = path.join(dir, 'base', 'pg_wal');
  segFiles = readdirSync(walDir).sort();
  baseline = scanWal(path.join(dir, 'base'), SEG, SEG).records.map((r: any) => ({ lsn: r.lsn, kind: r.kind, payload: Buffer.from(r.payload) }));
});
afterAll(() => removeDir(dir));

let round = 0;
function mutatedCopy(flips: { file: number; at: number; xor: number }[], cut: { file: number; at: number } | null): string {
  const d = path.join(dir, `case-${round++}`);
  cpSync(path.join(dir, 'base'), d, { recursive: true });
  const walDir = path.join(d, 'pg_wal');
  for (const f of flips) {
    const p = path.join(walDir, segFiles[f.file % segFiles.length]);
    const b = readFileSync(p);
    if (b.length === 0) continue;
    b[f.at % b.length] ^= f.xor;
    writeFileSync(p, b);
  }
  if (cut) {
    const p = path.join(walDir, segFiles[cut.file % segFiles.length]);
    truncateSync(p, cut.at % (statSync(p).size + 1));
  }
  return d;
}

describe('wal scanner fuzzing', () => {
  it('the unmodified WAL scans to every record written', () => {
    expect(baseline.length).toBe(1500);
  });

  it('random byte flips and truncations: the scan returns a prefix of the true records, never more or different', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ file: fc.nat(), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 6 }),
        fc.option(fc.record({ file: fc.nat(), at: fc.nat() }), { nil: null }),
        (flips, cut) => {
          const d = mutatedCopy(flips, cut);
          try {
            const res = scanWal(d, SEG, SEG);
            expect(res.records.length).toBeLessThanOrEqual(baseline.length);
            res.records.forEach((r: any, i: number) => {
              expect(r.lsn).toBe(baseline[i].lsn);
              expect(r.kind).toBe(baseline[i].kind);
              expect(Buffer.compare(Buffer.from(r.payload), baseline[i].payload)).toBe(0);
            });
          } finally {
            removeDir(d);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
