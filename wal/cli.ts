#!/usr/bin/env node
// `ringmaster waldump DIR [--start LSN]`: prints WAL records like pg_waldump.
// Reads files only (no postmaster needed); stops at the first torn or invalid record.
import path from 'node:path';
import { FLAG_PAIRED_IMAGE, KIND_CHECKPOINT, KIND_PAGE_IMAGE, decodePageImage, formatLsn, kindName, readControl, scanWal } from './format';

function usage(code: number): never {
  (code ? process.stderr : process.stdout).write('usage: ringmaster waldump DATA_DIR [--start LSN]\n' +
    '  --start LSN  start at LSN (hex X/Y or decimal; a record boundary) instead of the last checkpoint\'s redo point\n');
  process.exit(code);
}

function parseLsn(s: string): number {
  const m = /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(s);
  if (m) return parseInt(m[1], 16) * 2 ** 32 + parseInt(m[2], 16);
  if (/^\d+$/.test(s)) return Number(s);
  throw new Error(`bad LSN '${s}'`);
}

export function main(argv: string[]): number {
  const [cmd, ...rest] = argv;
  if (cmd === '-h' || cmd === '--help') usage(0);
  if (cmd !== 'waldump') usage(2);
  let dir: string | undefined;
  let start: number | undefined;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--start') start = parseLsn(rest[++i] ?? '');
    else if (rest[i] === '-h' || rest[i] === '--help') usage(0);
    else if (!dir) dir = rest[i];
    else usage(2);
  }
  if (!dir) usage(2);
  const control = readControl(dir);
  if (!control) {
    process.stderr.write(`waldump: no ${path.join(dir, 'pg_control')}: not a ringmaster WAL directory\n`);
    return 1;
  }
  const seg = control.segmentSize;
  const from = start ?? control.redoLsn;
  process.stdout.write(`control: checkpoint ${formatLsn(control.checkpointLsn)}, redo ${formatLsn(control.redoLsn)}, segment size ${seg}\n`);
  let n = 0;
  const res = scanWal(dir, seg, from, (r) => {
    n++;
    let desc = '';
    if (r.kind === KIND_CHECKPOINT && r.payload.length >= 8) desc = `redo ${formatLsn(r.payload.readBigUInt64LE(0))}`;
    else if (r.kind === KIND_PAGE_IMAGE) {
      const img = decodePageImage(r.payload);
      desc = img ? `file ${img.path} block ${img.block} (${img.data.length} bytes)${r.flags & FLAG_PAIRED_IMAGE ? ', with the next record' : ''}` : 'malformed';
    } else desc = `payload ${r.payload.subarray(0, 16).toString('hex')}${r.payload.length > 16 ? '…' : ''}`;
    const len = Number(r.endLsn - r.lsn);
    process.stdout.write(`kind: ${kindName(r.kind).padEnd(12)} len (rec/tot): ${String(r.payload.length).padStart(6)}/${String(len).padStart(6)}, lsn: ${formatLsn(r.lsn)}, desc: ${desc}\n`);
  }, false);
  process.stdout.write(`${n} records from ${formatLsn(from)} to ${formatLsn(res.endLsn)}; stopped: ${res.stop}\n`);
  return 0;
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`waldump: ${(e as Error).message}\n`);
    process.exitCode = 1;
  }
}
