import { constants } from 'node:os';
import { ESHUTDOWN } from './constants';

const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}
errnoNames.set(ESHUTDOWN, 'ESHUTDOWN');  // Linux; missing from os.constants.errno

/** Name of a (positive or negative) errno value, e.g. `-5` → `"EIO"`. */
export function errnoName(errno: number): string {
  return errnoNames.get(Math.abs(errno)) ?? `E${Math.abs(errno)}`;
}

/**
 * Every error this library raises on purpose has a `code`. IO failures carry the
 * kernel's `errno` (negative, as io_uring reports it) and the op's index in its batch.
 */
export class RingmasterError extends Error {
  readonly code: string;
  readonly errno?: number;
  readonly opIndex?: number;
  constructor(code: string, message: string, extra: { errno?: number; opIndex?: number; cause?: unknown } = {}) {
    super(message, extra.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = 'RingmasterError';
    this.code = code;
    if (extra.errno !== undefined) this.errno = extra.errno;
    if (extra.opIndex !== undefined) this.opIndex = extra.opIndex;
  }
}

/** An op that never ran because an earlier op of its soft-linked chain did not complete in full. */
export class IoCancelledError extends RingmasterError {
  constructor(message: string, opIndex?: number) {
    super('ECANCELED', message, { errno: -constants.errno.ECANCELED, opIndex });
    this.name = 'IoCancelledError';
  }
}

// CORRUPT_RESULT (the result of an op whose shared IO handle another process wrote
// garbage over) is imported from ./constants, not re-exported here: a re-export compiles to
// an accessor property, which turns this module's exports object into a dictionary.
import { CORRUPT_RESULT } from './constants';

export function corruptError(what: string, opIndex?: number): RingmasterError {
  return new RingmasterError('ERR_RINGMASTER_CORRUPT', `${what}: shared state of this IO was corrupted by another process (see stats().corruptReports)`, { errno: CORRUPT_RESULT, opIndex });
}

export function ioError(res: number, what: string, opIndex?: number): RingmasterError {
  if (res === CORRUPT_RESULT) return corruptError(what, opIndex);
  const name = errnoName(res);
  if (name === 'ECANCELED') {
    return new IoCancelledError(`${what}: cancelled (an earlier op of its linked chain failed or was short, or its issuer died)`, opIndex);
  }
  return new RingmasterError(name, `${what} failed: ${name}`, { errno: -Math.abs(res), opIndex });
}

/** Turns an error thrown by the native addon into a typed error, keeping its code. */
export function fromNative(e: unknown): Error {
  if (e instanceof TypeError || e instanceof RangeError || e instanceof RingmasterError) return e;
  if (e instanceof Error) {
    const code = (e as { code?: string }).code ?? 'ERR_RINGMASTER';
    const errno = (e as { errno?: number }).errno;
    return new RingmasterError(code, e.message, { errno });
  }
  return new RingmasterError('ERR_RINGMASTER', String(e));
}

export function typeError(code: string, message: string): TypeError {
  const e = new TypeError(message) as TypeError & { code: string };
  e.code = code;
  return e;
}

export function rangeError(code: string, message: string): RangeError {
  const e = new RangeError(message) as RangeError & { code: string };
  e.code = code;
  return e;
}
