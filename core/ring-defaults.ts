// How many rings Postmaster.start() creates when the `rings` option is left out.
//
// One ring serializes every submitter on its submit lock, which is held across
// io_uring_enter (the enterer submits every published SQE under its own identity): with one
// ring, cached reads at QD 16 per process stay flat from 1 to 16 processes. A process slot
// submits to ring `slot % rings`, so rings = CPUs gives up to that many processes (and
// threads) a ring of their own -- more runnable submitters than CPUs gain nothing.
//
// Capped by what rings cost: each ring's completion queue holds two entries per IO handle
// (rings x ringEntries), so ring memory grows with rings^2, and for a user without
// CAP_IPC_LOCK the kernel charges it to RLIMIT_MEMLOCK -- per user, across all of that
// user's rings (arena registrations included). Such a user keeps ring memory within a
// third of the limit, leaving the rest for the arena's fixed-buffer registration
// (shared by every ring through IORING_REGISTER_CLONE_BUFFERS where the kernel has it).
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';

/** Upper bound of the default: at 16 rings x 256 entries the rings take about 2.3 MiB. */
export const MAX_DEFAULT_RINGS = 16;

/** Bytes of ring memory (SQ ring, SQEs, CQ ring) for `rings` rings of `entries` entries. */
export function ringMemoryBytes(rings: number, entries: number): number {
  const page = 4096;
  const up = (n: number) => Math.ceil(n / page) * page;
  // Two CQ entries per IO handle (an op's CQE and its self-wake message's), at most the
  // kernel's 65536: native/segment.cc sizes it so.
  const cq = Math.min(2 * Math.max(rings * entries, entries), 65536);
  // The SQ and CQ rings share one mapping (IORING_FEAT_SINGLE_MMAP); the SQE array is its own.
  const perRing = up(64 + Math.max(4 * entries, 16 * cq)) + up(64 * entries);
  return rings * perRing;
}

/** RLIMIT_MEMLOCK (soft) in bytes, Infinity when unlimited or when this process is exempt. */
export function memlockBudget(): number {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const cap = /^CapEff:\s*([0-9a-f]+)/m.exec(status);
    if (cap && (BigInt(`0x${cap[1]}`) & (1n << 14n)) !== 0n) return Infinity;  // CAP_IPC_LOCK (root has it)
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max locked memory'));
    const soft = line?.split(/\s{2,}/)[1];
    if (!soft || soft === 'unlimited') return Infinity;
    const n = Number(soft);
    return Number.isFinite(n) ? n : Infinity;
  } catch {
    return Infinity;
  }
}

export function defaultRings(maxProcesses: number, ringEntries: number, cpus = availableParallelism(), budget = memlockBudget()): number {
  let rings = Math.max(1, Math.min(cpus, maxProcesses, MAX_DEFAULT_RINGS, Math.floor(65536 / ringEntries)));
  while (rings > 1 && ringMemoryBytes(rings, ringEntries) > budget / 3) rings--;
  return rings;
}
