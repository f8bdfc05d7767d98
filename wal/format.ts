// On-disk formats of the WAL: segment file names, the record header, the control
// file, and a sequential reader that stops at the first torn or invalid record.
// Used by recovery (wal/index.ts) and by `ringmaster waldump` (wal/cli.ts).
import fs from 'node:fs';
import path from 'node:path';

import { native } from '../core/native';

const addon = native;

export const HEADER_SIZE = 24;
export const REC_MAGIC = 0x52574c31;
export const KIND_PAD = 0;
export const KIND_CHECKPOINT = 0xfff0;
export const KIND_PAGE_IMAGE = 0xfff1;
/**
 * Record flag: a full-page image appended with the change record that follows it, in one
 * reservation (`append(kind, payload, { page })`). Recovery applies it only if that record
 * follows it: an image without its change would put an unlogged change on disk.
 */
export const FLAG_PAIRED_IMAGE = 1;
/** User record kinds are 1..USER_KIND_MAX; the rest are reserved. */
export const USER_KIND_MAX = 0xfeff;
export const WAL_DIR = 'pg_wal';
export const CONTROL_FILE = 'pg_control';
const CONTROL_MAGIC = 0x54434d52;  // "RMCT"
const CONTROL_SIZE = 64;
/** Largest record the reader accepts (a garbage length must not make it read forever). */
export const MAX_RECORD = 256 << 20;

export function crc32c(b: Uint8Array): number {
  return addon.walCrc32c(b) >>> 0;
}

export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** PostgreSQL-style 24 hex digits: timeline 1, then the 64-bit segment number. */
export function segmentName(segno: number): string {
  return '00000001' + segno.toString(16).toUpperCase().padStart(16, '0');
}

export function parseSegmentName(name: string): number | null {
  if (!/^00000001[0-9A-F]{16}$/.test(name)) return null;
  const n = parseInt(name.slice(8), 16);
  return Number.isSafeInteger(n) ? n : null;
}

export function formatLsn(lsn: bigint | number): string {
  const v = BigInt(lsn);
  return `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase().padStart(8, '0')}`;
}

export function kindName(kind: number): string {
  if (kind === KIND_PAD) return 'PADDING';
  if (kind === KIND_CHECKPOINT) return 'CHECKPOINT';
  if (kind === KIND_PAGE_IMAGE) return 'PAGE_IMAGE';
  return `USER(${kind})`;
}

// ---- control file -----------------------------------------------------------------

export interface ControlData {
  segmentSize: number;
  checkpointLsn: number;
  redoLsn: number;
  time: number;
}

export class ControlFileError extends Error {
  code = 'ERR_RINGMASTER_WAL_CONTROL';
}

/** null if there is no control file; throws if it exists but is corrupt. */
export function readControl(dataDir: string): ControlData | null {
  let b: Buffer;
  try {
    b = fs.readFileSync(path.join(dataDir, CONTROL_FILE));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  if (b.length !== CONTROL_SIZE || b.readUInt32LE(0) !== CONTROL_MAGIC || b.readUInt32LE(4) !== 1) {
    throw new ControlFileError(`control file ${CONTROL_FILE} is not a ringmaster control file (or has another version)`);
  }
  if (crc32c(b.subarray(0, 60)) !== b.readUInt32LE(60)) throw new ControlFileError(`control file ${CONTROL_FILE} fails its CRC check`);
  return {
    segmentSize: Number(b.readBigUInt64LE(8)),
    checkpointLsn: Number(b.readBigUInt64LE(16)),
    redoLsn: Number(b.readBigUInt64LE(24)),
    time: Number(b.readBigUInt64LE(32)),
  };
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Atomic update: write a temp file, fsync it, rename over, fsync the directory.
 * `syncDir` (relative to `dataDir`) replaces the plain directory fsync: the WAL passes the
 * library's, which counts it and honours the failed state and its test hooks.
 */
export function writeControl(dataDir: string, c: ControlData, hooks: { beforeRename?: () => void; syncDir?: (relDir: string) => void } = {}): void {
  const b = Buffer.alloc(CONTROL_SIZE);
  b.writeUInt32LE(CONTROL_MAGIC, 0);
  b.writeUInt32LE(1, 4);
  b.writeBigUInt64LE(BigInt(c.segmentSize), 8);
  b.writeBigUInt64LE(BigInt(c.checkpointLsn), 16);
  b.writeBigUInt64LE(BigInt(c.redoLsn), 24);
  b.writeBigUInt64LE(BigInt(c.time), 32);
  b.writeUInt32LE(crc32c(b.subarray(0, 60)), 60);
  const tmp = path.join(dataDir, CONTROL_FILE + '.tmp');
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, b, 0, b.length, 0);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  hooks.beforeRename?.();  // test hook: a kill point between the synced temp file and the rename
  fs.renameSync(tmp, path.join(dataDir, CONTROL_FILE));
  if (hooks.syncDir) hooks.syncDir('.');
  else fsyncDir(dataDir);
}

export { fsyncDir };

// ---- reading records -----------------------------------------------------------------

export interface WalRecord {
  /** Start LSN of the record. */
  lsn: bigint;
  /** LSN just past the record (what `append` returned for it). */
  endLsn: bigint;
  kind: number;
  /** Header flags (`FLAG_PAIRED_IMAGE` on a page image appended with its change record). */
  flags: number;
  payload: Buffer;
}

export interface ScanResult {
  records: WalRecord[];
  /** First LSN after the last valid record: where new records go. */
  endLsn: number;
  /** Why the scan stopped. */
  stop: 'end-of-wal' | 'missing-segment' | 'bad-magic' | 'bad-lsn' | 'bad-length' | 'bad-crc' | 'torn';
}

/** Reads segment files lazily (one cached at a time). */
class SegmentReader {
  #cache = new Map<number, Buffer | null>();
  constructor(readonly walDir: string, readonly segSize: number) {}
  #seg(segno: number): Buffer | null {
    if (!this.#cache.has(segno)) {
      if (this.#cache.size > 2) this.#cache.delete(this.#cache.keys().next().value as number);
      let b: Buffer | null = null;
      try {
        b = fs.readFileSync(path.join(this.walDir, segmentName(segno)));
      } catch {
        b = null;
      }
      this.#cache.set(segno, b);
    }
    return this.#cache.get(segno)!;
  }
  /** n bytes at lsn, or null if a segment is missing or short. */
  read(lsn: number, n: number): Buffer | null {
    const out = Buffer.allocUnsafe(n);
    let done = 0;
    while (done < n) {
      const p = lsn + done;
      const segno = Math.floor(p / this.segSize);
      const off = p - segno * this.segSize;
      const s = this.#seg(segno);
      if (!s || s.length <= off) return null;
      const k = Math.min(n - done, this.segSize - off, s.length - off);
      if (k <= 0) return null;
      s.copy(out, done, off, off + k);
      done += k;
    }
    return out;
  }
}

/** Scans records from `startLsn`, verifying each header, self-LSN and CRC. */
export function scanWal(dataDir: string, segSize: number, startLsn: number, onRecord?: (r: WalRecord) => void, keep = true): ScanResult {
  const reader = new SegmentReader(path.join(dataDir, WAL_DIR), segSize);
  const records: WalRecord[] = [];
  let pos = startLsn;
  let stop: ScanResult['stop'] = 'end-of-wal';
  for (;;) {
    const h = reader.read(pos, HEADER_SIZE);
    if (!h) {
      stop = 'missing-segment';
      break;
    }
    const total = h.readUInt32LE(4);
    const lsn = Number(h.readBigUInt64LE(8));
    const magic = h.readUInt32LE(20);
    if (magic !== REC_MAGIC) {
      stop = h.every((x) => x === 0) ? 'end-of-wal' : 'bad-magic';
      break;
    }
    if (lsn !== pos) {
      stop = 'bad-lsn';
      break;
    }
    if (total < HEADER_SIZE || total > MAX_RECORD) {
      stop = 'bad-length';
      break;
    }
    const rec = reader.read(pos, total);
    if (!rec) {
      stop = 'torn';
      break;
    }
    if (crc32c(rec.subarray(4)) !== rec.readUInt32LE(0)) {
      stop = 'bad-crc';
      break;
    }
    const kind = rec.readUInt16LE(16);
    const r: WalRecord = { lsn: BigInt(pos), endLsn: BigInt(pos + align8(total)), kind, flags: rec.readUInt16LE(18), payload: rec.subarray(HEADER_SIZE) };
    if (kind !== KIND_PAD) {
      if (keep) records.push(r);
      onRecord?.(r);
    }
    pos += align8(total);
  }
  return { records, endLsn: pos, stop };
}

/** Payload of a full-page image: u64 block, u32 path length, u32 data length, path, data. */
export function encodePageImage(relPath: string, block: number, data: Uint8Array): Buffer {
  const p = Buffer.from(relPath);
  const b = Buffer.alloc(16 + p.length + data.length);
  b.writeBigUInt64LE(BigInt(block), 0);
  b.writeUInt32LE(p.length, 8);
  b.writeUInt32LE(data.length, 12);
  p.copy(b, 16);
  b.set(data, 16 + p.length);
  return b;
}

export function decodePageImage(payload: Buffer): { path: string; block: number; data: Buffer } | null {
  if (payload.length < 16) return null;
  const block = Number(payload.readBigUInt64LE(0));
  const pl = payload.readUInt32LE(8);
  const dl = payload.readUInt32LE(12);
  if (16 + pl + dl !== payload.length || pl === 0) return null;
  return { block, path: payload.subarray(16, 16 + pl).toString(), data: payload.subarray(16 + pl) };
}
