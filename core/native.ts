// Loads the compiled addon. It is built from source by `npm install` (node-gyp).
import path from 'node:path';

export interface NativeInfo {
  segmentId: number;
  slot: number;
  homeRing: number;
  backend: 'io_uring' | 'threads';
  topology: 'shared' | 'per-process';
  rings: number;
  ringEntries: number;
  cqEntries: number;
  sqpoll: boolean;
  fixedBuffers: boolean;
  fixedBuffersErrno: number;
  fixedFiles: boolean;
  sameAddress: boolean;
  maxHandles: number;
  maxFiles: number;
  maxProcesses: number;
  arenaSize: number;
  segmentSize: number;
  postmasterPid: number;
  features: number;
  dataDir: string;
}

/** Named kill points (test hooks): a process arriving at an armed one SIGKILLs itself. */
export type KillPointName =
  | 'handles-reserved' | 'sqes-reserved' | 'sqes-published' | 'cqe-delivered'
  | 'wal-written' | 'checkpoint-pages-flushed' | 'checkpoint-record-durable' | 'checkpoint-control-written'
  | 'wake-before-reap' | 'lock-wake' | 'lock-handoff'
  | 'wal-page-image-copied' | 'checkpoint-redo-choosing' | 'checkpoint-redo-chosen';

export interface NativeSession {
  /** The staging area (10 float64 per op), the completion buffer (4 int32 per op), the control words and the staged ops' private buffers, shared with native/submission.h. */
  setStage(fields: Float64Array, out: Int32Array, ctl: Int32Array, buffers: (Uint8Array | undefined)[]): void;
  /** Submits staged ops [ctl[4], ctl[5]): how many went is in ctl[3] (their quads in `out`); undefined if the environment is terminating. */
  flush(): void;
  /** Collects this environment's completions into `out`: returns how many quads. */
  collect(): number;
  /** This environment's wake channel and how often each kind of wakeup came (diagnostics, tests). */
  wakeInfo(): { channel: 'ring' | 'eventfd'; selfWake: boolean; reaps: boolean; selfWakes: number; doorbells: number; sweeps: number; swept: number; reapedHere: number };
  openFile(path: string, flags: number, mode: number): number;
  /** true: closed or released; false: not open; `{ fsync }`: the last handle of a file with unsynced writes (sync it, then close again; `force` closes anyway). */
  closeFile(id: number, force?: boolean): boolean | { fsync: boolean };
  fileInfo(id: number): { path: string; flags: number; slot: number } | null;
  fileRef(id: number): boolean;
  arena(): ArrayBuffer;
  arenaAlloc(size: number, align: number): number;
  info(): NativeInfo;
  stats(): import('./ringmaster').RingmasterStats;
  forkFds(): { memfd: number; ringFds: number[]; eventFds: number[] };
  cleanupProcess(pid: number): number;
  sweepDeadSlots(): number;
  reapNow(ring?: number): number;
  setRunState(state: number): void;
  /** The postmaster's shutdown checkpoint: this environment may submit while the segment is stopping. */
  setShutdownExempt(on: boolean): void;
  runState(): number;
  inflight(): number;
  handlesInUse(): number;
  handleSnapshot(): [number, number, number, number, number, number][];
  detach(): void;
  waitWord(offset: number, value: number): number;
  cancelWait(id: number): void;
  regionSet(name: string, offset: number, size: number): void;
  regionGet(name: string): { offset: number; size: number } | null;
  debugHoldLock(ring: number, which: 'submit' | 'complete', midSubmit?: boolean): boolean;
  debugSubmitRawNop(ring: number, userData: bigint): boolean;
  /** Test hooks only: garbage over a whole shared table, or over `count` random entries. Returns entries written (false: hooks off / no such region). */
  debugScribble(region: 'handles' | 'files' | 'bufferDescriptors' | 'mappingTable', seed: number, count?: number): number | false;
  verifyHandles(repair: boolean): { found: number; repaired: number; anomalies: { index: number; problem: string; word: string; repaired: boolean }[] };
  /** Test hooks only: install (or clear, with null) fault rule `index`. */
  debugSetFault(index: number, rule: { opMask?: number; fileSlot?: number; kind?: number; skip?: number; repeat?: boolean | number; error?: number; delayUs?: number } | null): boolean;
  debugFaultFired(index: number): number;
  debugKillPoint(name: KillPointName, rule: { pid?: number; skip?: number } | null): boolean;
  debugKillPointFired(name: KillPointName): number;
  killPoint(name: KillPointName, probe?: boolean): boolean;
  _onCompletions?: (count: number) => void;
}

export interface NativeAddon {
  /** The second argument is ignored (completions reach `NativeSession._onCompletions`). */
  createSegment(options: Record<string, unknown>, unused?: unknown): NativeSession;
  attachForked(memfd: number, ringFds: number[], options: { reaper: boolean; eventFds?: number[] }): NativeSession;
  attachThread(segmentId: number): NativeSession;
  probe(): { ok: boolean; errno: number; code: string; features: number; kernel: string };
}

export const RUN_RUNNING = 1;
export const RUN_STOPPING = 2;
export const RUN_STOPPED = 3;

// eslint-disable-next-line @typescript-eslint/no-var-requires
export const native: NativeAddon = require(path.join(__dirname, '..', '..', 'build', 'Release', 'ringmaster.node'));
