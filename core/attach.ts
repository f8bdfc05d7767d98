// Attaching from a forked worker (fds handed over by pm.fork / pm.clusterFork) or from
// a worker thread of an already attached process (a token from db.threadToken()).
import { readFileSync } from 'node:fs';
import { Features, Ringmaster, ThreadToken } from './ringmaster';
import { RingmasterError, fromNative, rangeError, typeError } from './errors';
import { optionsObject } from './io';
import { RUN_STOPPED, native } from './native';
import { ATTACH_ENV } from './postmaster';
import { shareDataDir } from './datadir-lock';
import { inheritedWakeSlice, wakeSliceOption } from './options';

let forkedAttached = false;

export interface AttachOptions {
  /** Run watcher threads that reap completions in this process (default true). */
  reaper?: boolean;
  submitTimeoutMs?: number;
  /**
   * The scheduler slice, µs, this thread (and, in a forked worker, its watcher threads)
   * asks for: 0 (the kernel's) or 100..100000. A forked worker's default is the
   * postmaster's `wakeSliceUs`; a worker thread's is 0.
   */
  wakeSliceUs?: number;
}

/**
 * In a worker started by `pm.fork()`/`pm.clusterFork()`: `attach()`.
 * In a worker thread: `attach(token)` with the token from `db.threadToken()`.
 */
export async function attach(token?: ThreadToken, options: AttachOptions = {}): Promise<Ringmaster> {
  optionsObject('attach', options, ['reaper', 'submitTimeoutMs', 'wakeSliceUs']);
  const wakeSliceUs = options.wakeSliceUs === undefined ? undefined : wakeSliceOption('options.wakeSliceUs', options.wakeSliceUs);
  if (options.reaper !== undefined && typeof options.reaper !== 'boolean') throw typeError('ERR_INVALID_ARG_TYPE', 'options.reaper must be a boolean');
  if (options.submitTimeoutMs !== undefined) {
    const v = options.submitTimeoutMs;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError('ERR_INVALID_ARG_TYPE', 'options.submitTimeoutMs must be an integer');
    if (v < 1 || v > 2 ** 31 - 1) throw rangeError('ERR_OUT_OF_RANGE', `options.submitTimeoutMs must be in 1..2^31-1, got ${v}`);
  }
  if (token !== undefined) {
    // A thread shares its process's watcher threads: it never starts its own.
    if (options.reaper !== undefined) throw typeError('ERR_INVALID_ARG_VALUE', 'attach(token, { reaper }): worker threads never run watchers (their process\'s watchers reap for them); reaper applies to forked workers');
    // The thread's own slice only: the process's watchers are not this thread's.
    if (wakeSliceUs) native.setWakeSlice(wakeSliceUs, false);
    return attachThread(token, options);
  }
  const raw = process.env[ATTACH_ENV];
  if (!raw) {
    throw new RingmasterError('ERR_RINGMASTER_NOT_FORKED', `this process was not started by pm.fork() or pm.clusterFork() (no ${ATTACH_ENV} in its environment); worker threads pass a token: attach(db.threadToken())`);
  }
  if (forkedAttached) throw new RingmasterError('ERR_RINGMASTER_ALREADY_ATTACHED', 'this process is already attached; use the handle attach() returned');
  let spec: { v: number; lockStamp?: string; memfd: number; ringFds: number[]; eventFds?: number[]; postmasterPid: number; features: Features; reaper: boolean; wakeSliceUs?: number };
  try {
    spec = JSON.parse(raw);
  } catch {
    throw new RingmasterError('ERR_RINGMASTER_ATTACH', `${ATTACH_ENV} is not valid JSON`);
  }
  if (spec?.v !== 1 || !Number.isInteger(spec.memfd) || !Array.isArray(spec.ringFds)) throw new RingmasterError('ERR_RINGMASTER_ATTACH', `${ATTACH_ENV} has an unknown format`);
  // Before attaching: the watcher threads it starts read the process's setting.
  const slice = wakeSliceUs ?? inheritedWakeSlice(spec.wakeSliceUs);
  if (slice) native.setWakeSlice(slice, true);
  let session;
  try {
    session = native.attachForked(spec.memfd, spec.ringFds, { reaper: options.reaper ?? spec.reaper ?? true, eventFds: Array.isArray(spec.eventFds) ? spec.eventFds : [] });
  } catch (e) {
    throw fromNative(e);
  }
  // While this process is attached, no new postmaster may take the data directory, even
  // if ours dies: this process can still have writes in flight on its rings.
  let hold: { release(): void };
  try {
    hold = shareDataDir(session.info().dataDir, spec.lockStamp);
  } catch (e) {
    session.detach();
    throw e;
  }
  forkedAttached = true;
  const { sameAddress: _ignored, ...features } = spec.features;
  const db = new Ringmaster(session, features, options.submitTimeoutMs);
  db.once('close', () => hold.release());
  if (process.send) {
    const onMessage = (m: unknown) => {
      if (m && typeof m === 'object' && (m as { ringmaster?: string }).ringmaster === 'stop') db.emit('stop');
    };
    process.on('message', onMessage);
    let poll: NodeJS.Timeout | null = null;
    const onDisconnect = () => {
      process.off('message', onMessage);
      if (db.closed) return;
      if (!postmasterGone(spec.postmasterPid)) {
        // The channel closes as the postmaster dies, before its parent reaps it (a zombie
        // still answers kill(pid, 0)), and a postmaster killed with IO in flight takes a
        // while to exit: look again until it is gone (or it closed the channel and lives).
        poll = setTimeout(onDisconnect, 50);
        poll.unref();
        return;
      }
      // The postmaster is gone: nobody will clean up or stop in order. Refuse new IO everywhere.
      try {
        db._native().setRunState(RUN_STOPPED);
      } catch {
        /* closed */
      }
      db.emit('postmaster-exit');
    };
    process.once('disconnect', onDisconnect);
    // Tell the postmaster this worker made it (pm.whenAttached, 'worker-attached'); a
    // child that ends before this is reported there as 'worker-failed'.
    try {
      process.send({ ringmaster: 'attached', slot: db.slot }, undefined, {}, () => {});
    } catch {
      /* the channel is already closing: the postmaster sees the exit instead */
    }
    // Our listeners must not keep the worker alive once it closed its handle.
    db.once('close', () => {
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      if (poll) clearTimeout(poll);
    });
  }
  return db;
}

/** The process is gone, a zombie, or exiting. */
function postmasterGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const PF_EXITING = 0x4;
    return fields[0] === 'Z' || fields[0] === 'X' || (Number(fields[6]) & PF_EXITING) !== 0;
  } catch {
    return true;
  }
}

function attachThread(token: ThreadToken, options: AttachOptions): Ringmaster {
  if (token === null || typeof token !== 'object' || typeof token.ringmasterSegment !== 'number' ||
      token.features === null || typeof token.features !== 'object') {
    throw typeError('ERR_INVALID_ARG_TYPE', 'attach(token): token must come from db.threadToken()');
  }
  let session;
  try {
    session = native.attachThread(token.ringmasterSegment);
  } catch (e) {
    throw fromNative(e);
  }
  const { sameAddress: _ignored, ...features } = token.features;
  return new Ringmaster(session, features, options.submitTimeoutMs);
}
