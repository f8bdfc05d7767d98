// Integration points for the modules that keep shared state in the segment. The
// postmaster calls each module's `init` after creating the segment (before any fork),
// so every region a module needs exists before a worker can attach; in every process
// the module finds its state again by region name (`db._regionGet(name)`).
import type { Ringmaster } from './ringmaster';
import type { Batch } from './ringmaster';
import type { IoResult } from './io';
import { RingmasterError } from './errors';

/**
 * What the buffer pool needs from the WAL to honour WAL-before-data. The WAL module
 * installs itself with `db.buffers.setWalHook(hook)` when both are configured.
 */
export interface WalHook {
  /** LSN up to which the WAL is durable now (readable in any process). */
  flushedLsn(): bigint;
  /** Resolves once the WAL is durable up to `lsn` (group commit). */
  flush(lsn: bigint): Promise<void>;
  /**
   * Adds to `batch` the ops that make the WAL durable up to `lsn` (write(s) then
   * fdatasync), the last one soft-linked so an op the caller adds next runs only after
   * the WAL is durable. Returns a callback the caller must invoke with that batch's
   * results (in order) so the WAL can publish the new flushed LSN (or enter its failed
   * state), or `null` if it cannot add them now (then the caller uses `flush`).
   */
  appendFlushChain(batch: Batch, lsn: bigint): ((results: IoResult[], firstIndex: number) => void) | null;
}

/** What a module's options are checked against before anything exists. */
export interface ModuleContext {
  /** The arena as it will be created (arenaSize rounded up to 4 KiB). */
  arenaSize: number;
  maxProcesses: number;
}

export interface ModuleHooks {
  /**
   * Postmaster only, before the data directory or the segment is touched: throws for
   * bad or contradictory options; returns the arena bytes `init` will allocate (each
   * allocation rounded up to 4 KiB), so that a start that cannot fit fails first.
   */
  validate(options: unknown, context: ModuleContext): { arenaBytes: number };
  /** Postmaster only, once, before any fork: create and publish shared state. */
  init(db: Ringmaster, options: unknown): void | Promise<void>;
}

const registry = new Map<string, ModuleHooks>();

export function registerModule(name: string, hooks: ModuleHooks): void {
  registry.set(name, hooks);
}

export async function initModules(db: Ringmaster, options: Record<string, unknown>): Promise<void> {
  for (const [name, hooks] of registry) {
    if (options[name] !== undefined) await hooks.init(db, options[name]);
  }
}

/**
 * Checks every configured module's options, then that their arena needs fit together
 * (a pool and a WAL buffer that each fit but not both used to fail half-way through
 * start, after recovery had already run). Throws ERR_RINGMASTER_ARENA_TOO_SMALL.
 */
export function validateModules(options: Record<string, unknown>, context: ModuleContext): void {
  const needs: string[] = [];
  let total = 0;
  for (const [name, hooks] of registry) {
    if (options[name] === undefined) continue;
    const { arenaBytes } = hooks.validate(options[name], context);
    total += arenaBytes;
    needs.push(`${name} ${arenaBytes}`);
  }
  if (total > context.arenaSize) {
    throw new RingmasterError('ERR_RINGMASTER_ARENA_TOO_SMALL',
      `the configured modules need ${total} bytes of arena (${needs.join(' + ')}), more than arenaSize (${context.arenaSize}): raise arenaSize or shrink bufferPool.pages / wal.bufferSize`);
  }
}
