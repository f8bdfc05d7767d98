import { constants as fsc } from 'node:fs';
import { RingmasterError, fromNative, rangeError, typeError } from './errors';
import { syncPass, type SyncingHandle } from './durability';

/** Longest relative path the shared file table stores (native/file_table.h kMaxRelPath - 1). */
const MAX_PATH_BYTES = 215;

export interface FileOpenOptions {
  /** Create the file (mode 0600) if it does not exist. */
  create?: boolean;
  /** O_DIRECT: bypass the page cache. Buffers, offsets and lengths must be aligned (arena slices are). */
  direct?: boolean;
  /** O_DSYNC: every write is durable when it completes. */
  dsync?: boolean;
  /** Truncate to zero length on open. */
  truncate?: boolean;
  /** Open read-only. */
  readOnly?: boolean;
}

/**
 * An open data file. Its `id` names the same file in every attached process: pass the
 * number to a worker and `db.files.get(id)` there; no process but the opener needs an fd.
 */
export class FileHandle {
  readonly id: number;
  readonly path: string;
  readonly direct: boolean;
  #db: SyncingHandle;
  #closed = false;
  constructor(db: SyncingHandle, id: number, path: string, direct: boolean) {
    this.#db = db;
    this.id = id;
    this.path = path;
    this.direct = direct;
  }
  get closed(): boolean {
    return this.#closed;
  }
  /**
   * Releases this handle. The file leaves the shared table (for every process) when the
   * last handle on it, in any process, is closed. In-flight IO finishes first in the kernel.
   * The last close of a file written since the last checkpoint syncs it first (the
   * checkpoint would no longer know about it): it rejects with
   * `ERR_RINGMASTER_SYNC_FAILED` if that sync fails (the failed state, as at a
   * checkpoint); if the sync cannot run (stopping, timeout) it rejects with that error
   * and the file stays in the table, with its sync request, for the next checkpoint.
   * Before the last close, the buffer pool writes back the file's dirty pages (WAL
   * first); if that fails, close rejects with the writeback's error and the handle stays
   * open.
   */
  async close(): Promise<void> {
    if (this.#closed) throw new RingmasterError('ERR_RINGMASTER_FILE_CLOSED', `file '${this.path}' is already closed`);
    const n = this.#db._native();  // throws ERR_RINGMASTER_CLOSED, leaving this handle open
    this.#closed = true;
    // IO started on it before close() was called (staged for the end of this turn) goes
    // to the kernel first: it is then in flight, and a last close syncs after it.
    this.#db._flushStaged();
    // Whether this is the last handle is decided, and if not this handle's reference
    // dropped, in one step under the table's lock: two processes closing the last two
    // handles at once cannot both decide "not last" and leave the file's dirty pages with
    // no file to write them to. The last handle keeps its reference while the modules
    // prepare the file (if that fails, a writeback that failed or timed out, this handle
    // stays open); a handle another process adds meanwhile makes the final close below
    // refuse (`reopened`) and the modules prepare again.
    let epoch: number | undefined;
    if (beforeLastCloseHooks.length > 0) {
      const r = n.closeFileUnlessLast(this.id);
      if (r === true) return;
      if (r === false) throw this.#closedByAnother();
      epoch = r.last;
    }
    let prepare = epoch !== undefined;
    for (let attempt = 0; ; attempt++) {
      if (prepare) {
        try {
          for (const hook of beforeLastCloseHooks) await hook(this.#db, this.id);
        } catch (e) {
          this.#closed = false;
          throw e;
        }
        prepare = false;
      }
      const r = n.closeFile(this.id, false, epoch);
      if (r === true) return;
      if (r === false) throw this.#closedByAnother();
      // The last handle of a file that had another handle added (and closed) while the
      // modules prepared it, or of a file with writes no sync pass has covered yet.
      if (attempt >= 8) {
        if ('reopened' in r) {
          this.#closed = false;
          throw new RingmasterError('EBUSY', `file '${this.path}' keeps getting new handles while its last handle closes; this handle stays open`);
        }
        throw new RingmasterError('EBUSY', `file '${this.path}' is still being written through its id while its last handle closes; it stays in the shared table (the next checkpoint syncs it)`);
      }
      if ('reopened' in r) {
        epoch = r.reopened;
        prepare = true;
        continue;
      }
      try {
        await syncPass(this.#db, { fileId: this.id, timeoutMs: 30000 });
      } catch (e) {
        if ((e as { code?: string }).code === 'ERR_RINGMASTER_SYNC_FAILED') {
          n.closeFile(this.id, true);  // the failed state holds every checkpoint back: nothing to keep
        }
        // Otherwise the entry keeps this handle's reference (like a leaked fd) and its
        // sync request, so no checkpoint can forget the file.
        throw e;
      }
    }
  }

  #closedByAnother(): RingmasterError {
    return new RingmasterError('ERR_RINGMASTER_FILE_CLOSED', `file '${this.path}' (id ${this.id}) was already closed by another handle`);
  }
}

/**
 * What a module must do before the last handle of a file closes: the buffer pool writes
 * the file's dirty pages back, since once the file leaves the shared table nothing can
 * write them, and every later checkpoint would fail on them. Registered by the module
 * when it loads (core knows no module).
 */
export type BeforeLastClose = (db: SyncingHandle, fileId: number) => Promise<void>;
const beforeLastCloseHooks: BeforeLastClose[] = [];
export function onBeforeLastClose(hook: BeforeLastClose): void {
  beforeLastCloseHooks.push(hook);
}

export class Files {
  #db: SyncingHandle;
  constructor(db: SyncingHandle) {
    this.#db = db;
  }

  /** Opens `relativePath` inside the data directory and installs it in the shared file table. */
  async open(relativePath: string, options: FileOpenOptions = {}): Promise<FileHandle> {
    if (typeof relativePath !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'file path must be a string');
    if (relativePath.length === 0) throw typeError('ERR_INVALID_ARG_VALUE', 'file path must not be empty');
    if (relativePath.includes('\0')) throw typeError('ERR_INVALID_ARG_VALUE', 'file path must not contain NUL bytes');
    if (Buffer.byteLength(relativePath) > MAX_PATH_BYTES) throw rangeError('ERR_OUT_OF_RANGE', `file path must be at most ${MAX_PATH_BYTES} bytes`);
    if (options === null || typeof options !== 'object') throw typeError('ERR_INVALID_ARG_TYPE', 'file options must be an object');
    for (const k of Object.keys(options)) {
      if (!['create', 'direct', 'dsync', 'truncate', 'readOnly'].includes(k)) throw typeError('ERR_INVALID_ARG_VALUE', `unknown file option '${k}'`);
      if (typeof (options as Record<string, unknown>)[k] !== 'boolean') throw typeError('ERR_INVALID_ARG_TYPE', `file option '${k}' must be a boolean`);
    }
    if (options.readOnly) {
      // O_RDONLY | O_TRUNC truncates on Linux: a read-only open would destroy the file.
      for (const k of ['truncate', 'create', 'dsync'] as const) {
        if (options[k]) throw typeError('ERR_INVALID_ARG_VALUE', `file options readOnly and ${k} contradict each other (${k === 'truncate' ? 'it would empty the file' : k === 'create' ? 'a read-only open must not change the directory' : 'dsync only affects writes'})`);
      }
    }
    let flags = options.readOnly ? fsc.O_RDONLY : fsc.O_RDWR;
    if (options.create) flags |= fsc.O_CREAT;
    if (options.direct) flags |= fsc.O_DIRECT;
    if (options.dsync) flags |= fsc.O_DSYNC;
    if (options.truncate) flags |= fsc.O_TRUNC;
    const n = this.#db._native();
    let id: number;
    try {
      id = n.openFile(relativePath, flags, 0o600);
    } catch (e) {
      throw fromNative(e);
    }
    return new FileHandle(this.#db, id, relativePath, !!options.direct);
  }

  /**
   * A handle for a file another process opened (counted like an open: close it when
   * done). Throws if the id is unknown or closed.
   */
  get(id: number): FileHandle {
    if (typeof id !== 'number') throw typeError('ERR_INVALID_ARG_TYPE', 'file id must be a number');
    const n = this.#db._native();
    const info = n.fileInfo(id);
    if (!info || !n.fileRef(id)) throw new RingmasterError('ERR_RINGMASTER_BAD_FILE', `no open file with id ${id}`);
    return new FileHandle(this.#db, id, info.path, (info.flags & fsc.O_DIRECT) !== 0);
  }
}
