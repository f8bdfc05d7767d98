// Encoding of IO requests for the native layer, and the result type. One op is 8
// float64 fields: [op, linkFlags, fileId, offset, length, arenaOffset, kind, kindArg].
import { rangeError, typeError } from './errors';

// The op constants live in ./constants; this module does not re-export them: a re-export
// compiles to accessor properties, which turn this module's exports object into a
// dictionary, and every load from it on the per-op path into a generic property lookup.
import { DRAIN, HARDLINK, LINK } from './constants';

/** Op names by op code (IoOp order). */
export const OP_NAMES = ['nop', 'read', 'write', 'fsync', 'fdatasync'] as const;
export type OpName = (typeof OP_NAMES)[number];

export const OP_FIELDS = 8;

/** A region of the shared arena, from `db.allocate()`. Valid in every attached process. */
export interface ArenaSlice {
  readonly offset: number;
  readonly length: number;
  /** A view of the region in this process (zero-length after this process detaches). */
  readonly bytes: Uint8Array;
}

/**
 * Where a read lands or a write comes from: a private buffer (a Uint8Array or Buffer, any
 * other TypedArray or a DataView, over any ArrayBuffer or SharedArrayBuffer; its bytes
 * are used) or an arena slice.
 */
export type IoBuffer = ArrayBufferView | ArenaSlice;

export interface OpOptions {
  /** Soft link to the next op of the batch: it runs only if this one completes in full. */
  link?: boolean;
  /** Hard link: the next op runs after this one whatever its result. */
  hardlink?: boolean;
  /** Start only after every earlier IO on the ring (of every process) completed; later IO waits for this. */
  drain?: boolean;
  /** Arena offset of an 8-byte completion word set by whichever process reaps this op (see `db.completionWord()`). */
  completionWord?: number;
}

/** The outcome of one op. `result` is the kernel's: bytes for read/write, 0 for fsync, -errno on failure. */
export interface IoResult {
  op: OpName;
  ok: boolean;
  result: number;
  error?: Error;
  /** Process slot that reaped the completion (may be another process than the issuer). */
  reapedBy: number;
}

export interface EncodedOp {
  fields: number[];
  buffer: Uint8Array | undefined;
  name: OpName;
  /** The file's path, when known at submission (error messages name it). */
  path?: string;
}

export function checkOffset(name: string, v: unknown): number {
  if (typeof v === 'bigint') {
    if (v < 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw rangeError('ERR_OUT_OF_RANGE', `${name} must be in 0..2^53-1, got ${v}`);
    return Number(v);
  }
  if (typeof v !== 'number' || Number.isNaN(v)) throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be a non-negative integer or bigint, got ${typeof v === 'number' ? v : typeof v}`);
  if (!Number.isInteger(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) throw rangeError('ERR_OUT_OF_RANGE', `${name} must be a non-negative safe integer, got ${v}`);
  return v;
}

export function linkFlags(o: OpOptions | undefined): number {
  if (o === undefined) return 0;
  if (o === null || typeof o !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', 'op options must be an object');
  checkKeys('op', o, OP_OPTION_KEYS);
  let f = 0;
  for (const k of ['link', 'hardlink', 'drain'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'boolean') throw typeError('ERR_INVALID_ARG_TYPE', `options.${k} must be a boolean`);
  }
  if (o.link) f |= LINK;
  if (o.hardlink) f |= HARDLINK;
  if (o.drain) f |= DRAIN;
  if (o.link && o.hardlink) throw typeError('ERR_INVALID_ARG_VALUE', 'an op is either linked or hard-linked, not both');
  return f;
}

const OP_OPTION_KEYS = ['link', 'hardlink', 'drain', 'completionWord'];

/** Refuses a key `known` does not list (a misspelt option would otherwise be ignored). */
export function checkKeys(what: string, o: object, known: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) throw typeError('ERR_INVALID_ARG_VALUE', `unknown ${what} option '${k}' (known: ${known.join(', ')})`);
  }
}

/** `options` as an object (undefined: {}), or a TypeError. */
export function optionsObject<T extends object>(what: string, options: T | undefined, known: readonly string[]): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw typeError('ERR_INVALID_ARG_TYPE', `${what} options must be an object`);
  checkKeys(what, options, known);
  return options;
}

/** An optional timeout in ms: a non-negative integer up to 2^31-1. */
export function timeoutOption(name: string, v: unknown, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || Number.isNaN(v)) throw typeError('ERR_INVALID_ARG_TYPE', `${name} must be a number of milliseconds`);
  if (!Number.isInteger(v) || v < 0 || v > 2 ** 31 - 1) throw rangeError('ERR_OUT_OF_RANGE', `${name} must be an integer in 0..2^31-1, got ${v}`);
  return v;
}
