// The shared write-ahead log (issue 4). Native state part: native/wal_napi.cc.
import { registerModule } from '../core/modules';
import type { Ringmaster } from '../core/ringmaster';

export interface WalOptions {
  /** WAL segment file size in bytes. */
  segmentSize?: number;
}

/** Per-environment handle on the shared WAL (`db.wal`). */
export class Wal {
  readonly db: Ringmaster;
  constructor(db: Ringmaster) {
    this.db = db;
  }
}

registerModule('wal', {
  init(_db: Ringmaster, _options: unknown): void {
    // Filled in by the WAL issue.
  },
});
