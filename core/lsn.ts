// LSNs across process boundaries. An LSN is a bigint (a byte position in the WAL), and
// bigints do not survive `process.send` with the default 'json' serialization (it
// throws). These helpers give the PostgreSQL text form ('16/B374D848': the high and the
// low 32 bits in hex), which survives any channel and sorts like the number when the
// parts are compared as numbers. LSNs stay below 2^53, so `Number(lsn)` is exact too, and
// `db.wal.flush()` accepts a number.
import { rangeError, typeError } from './errors';

const MAX_LSN = (1n << 64n) - 1n;

/** `lsn` (a bigint, or a non-negative safe integer) as PostgreSQL writes it: `'16/B374D848'`. */
export function lsnToString(lsn: bigint | number): string {
  let v: bigint;
  if (typeof lsn === 'bigint') v = lsn;
  else if (typeof lsn === 'number' && Number.isSafeInteger(lsn)) v = BigInt(lsn);
  else throw typeError('ERR_INVALID_ARG_TYPE', `lsn must be a bigint or a safe integer, got ${typeof lsn === 'number' ? lsn : typeof lsn}`);
  if (v < 0n || v > MAX_LSN) throw rangeError('ERR_OUT_OF_RANGE', `lsn must be in 0..2^64-1, got ${v}`);
  return `${(v >> 32n).toString(16).toUpperCase()}/${(v & 0xffffffffn).toString(16).toUpperCase().padStart(8, '0')}`;
}

/** The LSN written by `lsnToString` (or PostgreSQL's pg_lsn text form) as a bigint. */
export function lsnFromString(text: string): bigint {
  if (typeof text !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', `an LSN string must be a string, got ${typeof text}`);
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw typeError('ERR_INVALID_ARG_VALUE', `'${text.slice(0, 40)}' is not an LSN: expected two hex numbers of at most 8 digits, like '16/B374D848'`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}
