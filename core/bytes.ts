// What a caller may pass as bytes: any ArrayBufferView (a Uint8Array or Buffer, any
// other TypedArray, a DataView) over any ArrayBuffer: plain, resizable, a
// SharedArrayBuffer (growable or not), a Buffer pool slice, the arena. A view whose
// memory is gone (detached, or out of bounds of an ArrayBuffer resized smaller after the
// view was made) or that is empty where bytes are needed is refused with a coded error,
// never turned into a silent zero-length IO.
import { markAsUntransferable } from 'node:worker_threads';
import { rangeError, typeError } from './errors';

// %TypedArray%.prototype.at validates its receiver: it throws a TypeError for a view that
// is detached or out of bounds, which the byteLength getter reports as plain 0.
const typedArrayAt = (Object.getPrototypeOf(Uint8Array.prototype) as { at: (this: unknown, i: number) => unknown }).at;

function isDetached(b: ArrayBufferLike): boolean {
  if (typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer) return false;
  const d = (b as { detached?: boolean }).detached;  // Node 21+
  if (typeof d === 'boolean') return d;
  if (b.byteLength !== 0) return false;
  try {
    new Uint8Array(b as ArrayBuffer);
    return false;
  } catch {
    return true;
  }
}

// Only called for a view that reports 0 bytes: why?
function emptyReason(v: ArrayBufferView): 'detached' | 'out-of-bounds' | 'empty' {
  let buffer: ArrayBufferLike;
  try {
    buffer = v.buffer;
  } catch {
    return 'detached';
  }
  if (isDetached(buffer)) return 'detached';
  try {
    if (v instanceof DataView) void v.byteLength;  // throws when out of bounds
    else typedArrayAt.call(v, 0);
  } catch {
    return 'out-of-bounds';
  }
  return 'empty';
}

/**
 * The bytes of `v` as a Uint8Array over the same memory. `what` names the argument in
 * errors. With `allowEmpty`, a zero-length view is accepted (a WAL record may be empty),
 * but never a detached or out-of-bounds one.
 */
export function viewBytes(v: unknown, what: string, options: { allowEmpty?: boolean } = {}): Uint8Array {
  if (!ArrayBuffer.isView(v)) {
    throw typeError('ERR_INVALID_ARG_TYPE', `${what} must be a Uint8Array (or Buffer, another TypedArray, a DataView)${v === null ? ', got null' : `, got ${typeof v}`}`);
  }
  let u: Uint8Array;
  if (v instanceof Uint8Array) {
    u = v;
  } else {
    let len: number;
    try {
      len = v.byteLength;
    } catch {
      len = 0;  // a DataView out of bounds (or detached): classified below
    }
    u = len > 0 ? new Uint8Array(v.buffer, v.byteOffset, len) : new Uint8Array(0);
  }
  if (u.byteLength === 0) {
    const why = emptyReason(v);
    if (why === 'detached') throw typeError('ERR_INVALID_ARG_VALUE', `${what} is detached (its ArrayBuffer was transferred): it has no memory left`);
    if (why === 'out-of-bounds') throw rangeError('ERR_OUT_OF_RANGE', `${what} is out of bounds: its resizable ArrayBuffer was resized smaller than the view`);
    if (!options.allowEmpty) throw rangeError('ERR_OUT_OF_RANGE', `${what} is empty: an IO needs at least one byte`);
  }
  return u;
}

/**
 * Keeps `u`'s memory where it is while an IO uses it. The kernel (or a pool thread)
 * writes into or reads from it until the IO completes; a reference keeps it from being
 * collected, and marking its ArrayBuffer untransferable keeps postMessage and
 * structuredClone from detaching it (they copy it instead, Node 20, or throw, Node 21+),
 * as Node does for its own Buffer pool. A SharedArrayBuffer can be neither detached nor
 * shrunk. What is left (ArrayBuffer.prototype.transfer() or resize() during the IO) is
 * caught when the IO completes: see `changedDuringIo`.
 */
export function pinForIo(u: Uint8Array): void {
  const b = u.buffer;
  if (typeof SharedArrayBuffer !== 'undefined' && b instanceof SharedArrayBuffer) return;
  markAsUntransferable(b);
}

/** The view lost (part of) the memory an IO of `len` bytes used: detached or shrunk meanwhile. */
export function changedDuringIo(u: Uint8Array, len: number): boolean {
  return u.byteLength < len;
}
