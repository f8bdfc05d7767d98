// The shared buffer pool (issue 3). Native state part: native/bufferpool_napi.cc.
import { registerModule } from '../core/modules';
import type { Ringmaster } from '../core/ringmaster';

export interface BufferPoolOptions {
  /** Number of pages in the pool. */
  pages?: number;
  /** Page size in bytes: 4096..32768, a power of two (default 8192). */
  pageSize?: number;
}

/** Per-environment handle on the shared buffer pool (`db.buffers`). */
export class BufferPool {
  readonly db: Ringmaster;
  constructor(db: Ringmaster) {
    this.db = db;
  }
}

registerModule('bufferPool', {
  init(_db: Ringmaster, _options: unknown): void {
    // Filled in by the buffer pool issue.
  },
});
