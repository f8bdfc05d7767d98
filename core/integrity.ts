// `checkIntegrity()`'s report, and the checks modules add to it: a module that keeps a
// shared table (the buffer pool's descriptors and mapping table) registers how to scan it,
// so the handle's check covers it without core knowing the module.
import type { NativeSession } from './native';

/** What `checkIntegrity()` found in one shared table entry. */
export interface IntegrityAnomaly {
  structure: 'ioHandle' | 'bufferDescriptor' | 'mappingTable';
  index: number;
  problem: string;
  repaired: boolean;
}

export interface IntegrityReport {
  ok: boolean;
  /** Anomalies found (all of them); `anomalies` lists at most 64 per structure. */
  found: number;
  repaired: number;
  anomalies: IntegrityAnomaly[];
}

/** One module's scan: null when the module has no shared state in this segment. */
export type IntegrityCheck = (session: NativeSession, repair: boolean) =>
  { found: number; repaired: number; anomalies: IntegrityAnomaly[] } | null;

const checks: IntegrityCheck[] = [];

export function registerIntegrityCheck(check: IntegrityCheck): void {
  if (!checks.includes(check)) checks.push(check);
}

export function integrityChecks(): readonly IntegrityCheck[] {
  return checks;
}
