// One owner per data directory (policy half; the OFD locks are native/datadir_lock.h).
// The postmaster locks <dataDir>/postmaster.pid before it changes anything in the
// directory and keeps the lock until stop(); each forked worker holds a shared lock
// while attached, so a new postmaster also waits for the workers of one that died.
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { RingmasterError, fromNative } from './errors';
import { native } from './native';
import { ESHUTDOWN } from './constants';

const addon = native;

const LOCKED = 0;
const HELD_BY_POSTMASTER = 1;

/** Who holds (or last held) a data directory, as its lock file says. */
export interface DataDirHolder {
  pid: number;
  startedAt: string;
  /** Identifies one postmaster's tenure: a forked worker checks it before it attaches. */
  stamp: string;
}

function parse(content: string): DataDirHolder | null {
  const [pid, startedAt, stamp] = content.split('\n');
  if (!/^\d+$/.test(pid ?? '') || !startedAt || !stamp) return null;
  return { pid: Number(pid), startedAt, stamp };
}

function describe(h: DataDirHolder | null): string {
  return h ? `pid ${h.pid}, started ${h.startedAt}` : 'a postmaster that is still starting';
}

function lockedError(dataDir: string, lockPath: string, holder: DataDirHolder | null, workers: boolean, pids: number[]): RingmasterError {
  const who = pids.length ? `; processes holding it: ${pids.join(', ')}` : '';
  const message = workers
    ? `data directory '${dataDir}' is still in use by forked workers of an earlier postmaster (${describe(holder)}), which has exited; ` +
      `they may still write to its files: stop them, then start again (lock file ${lockPath}${who})`
    : `data directory '${dataDir}' is in use by another postmaster (${describe(holder)}); one postmaster per data directory (lock file ${lockPath}${who})`;
  const e = new RingmasterError('ERR_RINGMASTER_DATADIR_LOCKED', message) as RingmasterError & { holder?: { pid: number; startedAt: string } | null; lockFile?: string; holderPids?: number[] };
  e.holder = holder ? { pid: holder.pid, startedAt: holder.startedAt } : null;
  e.lockFile = lockPath;
  e.holderPids = pids;
  return e;
}

/**
 * Processes with the lock file open (the lock's holders: the kernel does not report OFD
 * lock owners). Only processes whose /proc entries this user may read are seen.
 */
function openers(lockPath: string): number[] {
  const pids: number[] = [];
  let procs: string[];
  try {
    procs = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return pids;
  }
  for (const pid of procs) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === lockPath) {
          pids.push(Number(pid));
          break;
        }
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return pids;
}

// SIGKILLed but not gone yet: a process killed with IO in flight first waits for that IO
// (and keeps its locks) while it exits. Such a holder is waited for, not reported.
function dying(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const PF_EXITING = 0x4;
    if ((Number(fields[6]) & PF_EXITING) !== 0 || fields[0] === 'Z' || fields[0] === 'X') return true;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const SIGKILL_BIT = 1n << 8n;
    for (const key of ['SigPnd', 'ShdPnd']) {
      const m = new RegExp(`^${key}:\\s*([0-9a-f]+)`, 'm').exec(status);
      if (m && (BigInt(`0x${m[1]}`) & SIGKILL_BIT) !== 0n) return true;
    }
    return false;
  } catch {
    return true;  // gone already
  }
}

/** How long a new postmaster waits for holders that are already dying (killed with IO in flight). */
const DYING_WAIT_MS = 10_000;

export class DataDirLock {
  readonly stamp: string;
  #fd: number;
  private constructor(fd: number, stamp: string) {
    this.#fd = fd;
    this.stamp = stamp;
  }

  /**
   * Takes the directory for this postmaster, or throws ERR_RINGMASTER_DATADIR_LOCKED
   * naming the holder. Creates nothing but the lock file.
   */
  static async acquire(dataDir: string): Promise<DataDirLock> {
    const stamp = randomBytes(8).toString('hex');
    const content = `${process.pid}\n${new Date().toISOString()}\n${stamp}\n${dataDir}\n`;
    const deadline = Date.now() + DYING_WAIT_MS;
    let unseen = 0;
    let scannedAt = -Infinity;
    let pids: number[] = [];
    let waitable = false;
    for (;;) {
      let r;
      try {
        r = addon.dataDirLock(dataDir, content);
      } catch (e) {
        throw fromNative(e);
      }
      if (r.status === LOCKED) return new DataDirLock(r.fd!, stamp);
      // Who holds it (a /proc scan: thousands of system calls, so not on every retry).
      if (Date.now() - scannedAt >= 250) {
        pids = openers(r.path);
        // No visible holder: it exited between the lock attempt and the scan (look again
        // at once), or it is another user's process (then refuse after a few tries).
        const vanished = pids.length === 0 && ++unseen <= 3;
        scannedAt = vanished ? -Infinity : Date.now();
        waitable = vanished || (pids.length > 0 && pids.every(dying));
      }
      if (waitable && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        continue;
      }
      throw await DataDirLock.#refusal(dataDir, r, pids);
    }
  }

  static async #refusal(dataDir: string, r: { status: number; previous: string; path: string }, pids: number[]): Promise<RingmasterError> {
    let holder = parse(r.previous);
    // A postmaster that won the lock an instant ago may not have written its identity yet.
    for (let i = 0; i < 20 && !holder && r.status === HELD_BY_POSTMASTER; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      try {
        holder = parse(readFileSync(r.path, 'utf8'));
      } catch {
        /* gone: report what we have */
      }
    }
    return lockedError(dataDir, r.path, holder, r.status !== HELD_BY_POSTMASTER, pids);
  }

  /** Releases the directory (idempotent); `clean`: empty the lock file (a clean stop). */
  release(clean: boolean): void {
    if (this.#fd < 0) return;
    addon.dataDirUnlock(this.#fd, clean);
    this.#fd = -1;
  }
}

/**
 * A forked worker's hold on its postmaster's data directory. Refuses (ESHUTDOWN) when
 * the lock file no longer names the postmaster that forked it: that one is gone and
 * the directory may already belong to another.
 */
export function shareDataDir(dataDir: string, stamp: string | undefined): { release(): void } {
  let r;
  try {
    r = addon.dataDirShare(dataDir);
  } catch (e) {
    const err = fromNative(e) as RingmasterError;
    throw new RingmasterError('ESHUTDOWN', `cannot attach: the lock file of data directory '${dataDir}' is unusable (${err.message})`, { errno: -ESHUTDOWN, cause: err });
  }
  const holder = parse(r.content);
  if (stamp !== undefined && holder?.stamp !== stamp) {
    addon.dataDirUnlock(r.fd, false);
    throw new RingmasterError('ESHUTDOWN',
      `cannot attach: the postmaster that forked this worker no longer owns data directory '${dataDir}' (${holder ? `it now belongs to ${describe(holder)}` : 'its lock file is empty'})`,
      { errno: -ESHUTDOWN });
  }
  let fd = r.fd;
  return {
    release() {
      if (fd < 0) return;
      addon.dataDirUnlock(fd, false);
      fd = -1;
    },
  };
}
